// Topological landscape profile. See profile.h.
//
// Counts #{samples of b with value ≤ y} for all basins and levels offline: the
// branches are numbered in a DFS pre-order (every subtree is a contiguous range),
// the vertices are added to a Fenwick tree over those positions in increasing
// value, and the queries are answered in increasing y: O((n + Q) log B).
#include "topology/profile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"

namespace nnscope::topology {

LandscapeProfile landscape_profile(const MergeTree& t, const double* f, std::size_t n, const ProfileOptions& o,
                                   const OpContext& ctx) {
  if (t.kind != TreeKind::Join) fail(ErrorCode::InvalidArgument, "topology: the profile needs a join tree");
  if (n != t.vertices || t.segmentation.size() != n)
    fail(ErrorCode::Shape, "topology: profile values do not match the tree (" + std::to_string(n) + " vs " +
                               std::to_string(t.vertices) + " vertices)");
  if (o.levels == 0) fail(ErrorCode::InvalidArgument, "topology: profile levels must be >= 1");
  const double hw = o.half_width_per_sample;
  if (!(hw > 0.0) || !std::isfinite(hw))
    fail(ErrorCode::InvalidArgument, "topology: half_width_per_sample must be finite and > 0");
  const std::size_t B = t.branches.size(), L = o.levels;
  if (B == 0) fail(ErrorCode::InvalidArgument, "topology: empty tree");
  if (B > std::size_t(std::numeric_limits<std::int32_t>::max()) / (L + 1))
    fail(ErrorCode::TooLarge, "topology: too many basins x levels for a profile");
  const std::vector<std::int32_t> order = sweep_order(f, n, false, ctx);

  // Children (CSR), subtree samples and branch counts, sums for the mean.
  std::vector<std::int64_t> samples(B), nsub(B, 1);
  std::vector<double> sum(B, 0.0);
  for (std::size_t b = 0; b < B; ++b) samples[b] = t.branches[b].size;
  for (std::size_t v = 0; v < n; ++v) sum[t.segmentation[v]] += f[v];
  std::vector<std::int32_t> cstart(B + 1, 0);
  for (std::size_t b = 0; b < B; ++b)
    if (t.branches[b].parent >= 0) ++cstart[t.branches[b].parent + 1];
  for (std::size_t b = 0; b < B; ++b) cstart[b + 1] += cstart[b];
  std::vector<std::int32_t> child(cstart[B]), cfill(cstart.begin(), cstart.end() - 1);
  for (std::size_t b = 0; b < B; ++b)
    if (t.branches[b].parent >= 0) child[cfill[t.branches[b].parent]++] = static_cast<std::int32_t>(b);
  for (std::size_t b = B; b-- > 0;) {  // children have larger ids than their parent
    const std::int32_t p = t.branches[b].parent;
    if (p < 0) continue;
    samples[p] += samples[b];
    nsub[p] += nsub[b];
    sum[p] += sum[b];
  }
  auto wider = [&](std::int32_t a, std::int32_t b) { return samples[a] > samples[b] || (samples[a] == samples[b] && a < b); };
  for (std::size_t b = 0; b < B; ++b) std::sort(child.begin() + cstart[b], child.begin() + cstart[b + 1], wider);

  // DFS pre-order positions (parents are visited before children in id order).
  std::vector<std::int32_t> pos(B, -1);
  std::int32_t next = 0;
  for (std::size_t b = 0; b < B; ++b) {
    if (t.branches[b].parent < 0) {
      pos[b] = next;
      next += static_cast<std::int32_t>(nsub[b]);
    }
    std::int32_t p = pos[b] + 1;
    for (std::int32_t k = cstart[b]; k < cstart[b + 1]; ++k) {
      pos[child[k]] = p;
      p += static_cast<std::int32_t>(nsub[child[k]]);
    }
  }

  LandscapeProfile prof;
  prof.basins.resize(B);
  prof.y_min = t.min_value;
  prof.y_max = t.max_value;
  std::vector<double> qy(B * (L + 1));
  for (std::size_t b = 0; b < B; ++b) {
    ProfileBasin& bs = prof.basins[b];
    const Branch& br = t.branches[b];
    bs.branch = static_cast<std::int32_t>(b);
    bs.parent = br.parent;
    bs.samples = samples[b];
    bs.width = 2.0 * hw * double(samples[b]);
    bs.y_min = br.birth_value;
    bs.y_max = br.death_value;
    bs.mean_loss = sum[b] / double(samples[b]);
    bs.y.resize(L + 1);
    bs.half_width.assign(L + 1, 0.0);
  }
  for (const EssentialComponent& e : t.essential) prof.basins[e.branch].y_max = e.last_value;
  for (std::size_t b = 0; b < B; ++b) {
    ProfileBasin& bs = prof.basins[b];
    const double d = bs.y_max - bs.y_min;
    for (std::size_t j = 0; j <= L; ++j)
      bs.y[j] = j == L ? bs.y_max : std::min(bs.y_max, bs.y_min + d * double(j) / double(L));
    std::copy(bs.y.begin(), bs.y.end(), qy.begin() + b * (L + 1));
  }

  // Offline counting.
  const std::vector<std::int32_t> qorder = sweep_order(qy.data(), qy.size(), false, ctx);
  std::vector<std::int32_t> fen(B + 1, 0);
  auto add = [&](std::int32_t i) {
    for (++i; i <= static_cast<std::int32_t>(B); i += i & -i) ++fen[i];
  };
  auto prefix = [&](std::int32_t i) {  // Σ over positions [0, i)
    std::int64_t s = 0;
    for (; i > 0; i -= i & -i) s += fen[i];
    return s;
  };
  std::size_t tv = 0;
  for (std::size_t k = 0; k < qorder.size(); ++k) {
    if ((k & 0xFFFF) == 0) ctx.check();
    const std::size_t q = static_cast<std::size_t>(qorder[k]);
    const double y = qy[q];
    while (tv < n && f[order[tv]] <= y) add(pos[t.segmentation[order[tv++]]]);
    const std::size_t b = q / (L + 1), j = q % (L + 1);
    const std::int64_t c = prefix(pos[b] + static_cast<std::int32_t>(nsub[b])) - prefix(pos[b]);
    prof.basins[b].half_width[j] = hw * double(c);
  }

  // Layout: slots, then polygons.
  auto place = [&](std::int32_t b, double center) {
    prof.basins[b].center = center;
    double total = 0.0;
    for (std::int32_t k = cstart[b]; k < cstart[b + 1]; ++k) total += prof.basins[child[k]].width;
    double x = center - 0.5 * total;
    for (std::int32_t k = cstart[b]; k < cstart[b + 1]; ++k) {
      const std::int32_t c = child[k];
      prof.basins[c].center = x + 0.5 * prof.basins[c].width;
      x += prof.basins[c].width;
    }
  };
  std::vector<std::int32_t> roots;
  for (std::size_t b = 0; b < B; ++b)
    if (t.branches[b].parent < 0) roots.push_back(static_cast<std::int32_t>(b));
  std::sort(roots.begin(), roots.end(), wider);
  double x = 0.0;
  for (std::int32_t r : roots) {
    prof.basins[r].center = x + 0.5 * prof.basins[r].width;
    x += prof.basins[r].width;
  }
  prof.width = x;
  for (std::size_t b = 0; b < B; ++b) place(static_cast<std::int32_t>(b), prof.basins[b].center);  // parents first
  for (ProfileBasin& bs : prof.basins) {
    bs.x.resize(2 * (L + 1));
    bs.py.resize(2 * (L + 1));
    for (std::size_t j = 0; j <= L; ++j) {
      bs.x[j] = bs.center + bs.half_width[j];
      bs.py[j] = bs.y[j];
      bs.x[2 * L + 1 - j] = bs.center - bs.half_width[j];
      bs.py[2 * L + 1 - j] = bs.y[j];
    }
  }
  return prof;
}

}  // namespace nnscope::topology
