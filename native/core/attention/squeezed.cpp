// nnscope core, attention: Squeezed Attention on the CPU. Contract in squeezed.h;
// the method is described in ../shared/research/squeezed-attention.md (§ numbers
// below refer to it).
//
// Deviations from the reference code, on purpose (§4 of the note):
//  * softmax of the centroid logits subtracts the max over NON-EMPTY (scored)
//    clusters and sums only over them, so huge logits and empty clusters never
//    give Inf/NaN (the reference's calibration overflowed, then divided 0/0);
//  * K-means reseeds empty clusters (no zero centroids) and is deterministic;
//  * compaction is a per-group scan in token order (ascending, reproducible),
//    not atomics;
//  * GQA is supported (per-query-head or shared-group selection).
#include "attention/squeezed.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "attention/gpu.h"
#include "attention/kmeans_kernels.h"
#include "base/buffer.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"
#include "linalg/blas.h"

namespace nnscope::attention {
namespace {

using std::size_t;

std::string str(size_t v) { return std::to_string(v); }

float resolve_scale(float scale, size_t d) {
  NNSCOPE_CHECK(std::isfinite(scale) && scale >= 0.0f, ErrorCode::InvalidArgument,
                "squeezed attention: scale must be finite and ≥ 0 (0 = 1/√d)");
  return scale > 0.0f ? scale : static_cast<float>(1.0 / std::sqrt(double(d)));
}

void check_kv(const KvView& x, const char* name) {
  NNSCOPE_CHECK(x.storage == Storage::F32 || x.storage == Storage::F16 || x.storage == Storage::BF16,
                ErrorCode::Dtype, std::string(name) + ": unknown storage");
  NNSCOPE_CHECK(x.head_stride == 0 || x.head_stride >= x.tokens, ErrorCode::Shape,
                std::string(name) + ": head_stride smaller than tokens");
  NNSCOPE_CHECK(x.data || x.heads == 0 || x.tokens == 0 || x.d == 0, ErrorCode::InvalidArgument,
                std::string(name) + ": null data");
}

// Queries must match the context (H_q a multiple of H, same d, ≥ 1 token).
void check_queries(const SqueezedContext& c, const Queries& q, const char* what) {
  const std::string p = std::string(what) + ": ";
  NNSCOPE_CHECK(q.heads > 0 && q.tokens > 0, ErrorCode::Shape, p + "queries must have ≥ 1 head and ≥ 1 token");
  NNSCOPE_CHECK(q.d == c.d, ErrorCode::Shape, p + "query dim " + str(q.d) + " ≠ context dim " + str(c.d));
  NNSCOPE_CHECK(q.heads % c.heads == 0, ErrorCode::Shape,
                p + "query heads " + str(q.heads) + " not a multiple of KV heads " + str(c.heads));
  NNSCOPE_CHECK(q.data != nullptr, ErrorCode::InvalidArgument, p + "null queries");
  require_finite(q.data, checked_mul(checked_mul(q.heads, q.tokens), q.d), p + "queries");
}

// Converts `rows` rows of head h starting at t0 to float32 into out.
void rows_f32(const KvView& v, size_t h, size_t t0, size_t rows, float* out) {
  if (v.storage == Storage::F32) {
    std::memcpy(out, v.f32(h, t0), rows * v.d * sizeof(float));
    return;
  }
  for (size_t t = 0; t < rows; ++t) v.row(h, t0 + t, out + t * v.d);
}

// ---------------------------------------------------------------- scoring core
// acc[j] += Σ_rows p_j(row) for m query rows against nc centroids (all scored,
// weights w[j] = n_j > 0). Logits via SGEMM in blocks of rows.
void score_rows(const float* cent, size_t nc, size_t d, const double* w, const float* rows, size_t m, float scale,
                double* acc, AlignedBuffer<float>& logits) {
  if (nc == 0) return;
  const detail::KmeansKernel& K = detail::kmeans_kernel();
  const size_t mb = std::max<size_t>(1, std::min<size_t>(m, (size_t(1) << 16) / nc));
  logits.resize(checked_mul(mb, nc));
  for (size_t r0 = 0; r0 < m; r0 += mb) {
    const size_t rb = std::min(mb, m - r0);
    linalg::GemmArgs g;
    g.trans_b = true;
    g.m = rb;
    g.n = nc;
    g.k = d;
    g.alpha = scale;
    g.a = rows + r0 * d;
    g.lda = d;
    g.b = cent;
    g.ldb = d;
    g.c = logits.data();
    g.ldc = nc;
    linalg::sgemm_cpu(g);
    for (size_t r = 0; r < rb; ++r) {
      float* l = logits.data() + r * nc;
      const double z = K.exp_shift_sum(nc, l, w);
      const double inv = 1.0 / z;  // z ≥ w[argmax]·1 ≥ 1
      for (size_t j = 0; j < nc; ++j) acc[j] += double(l[j]) * inv;
    }
  }
}

// Scores of one group over a subset of a level's centroids: `idx` lists the
// scored clusters (size > 0); out[j] (for every cluster of the level) = average
// score, 0 outside the subset.
struct LevelRef {
  const float* cent;            // [C, d] of this head
  const std::int32_t* sizes;    // [C]
  size_t C;
};

void score_subset(const LevelRef& L, const std::vector<std::int32_t>& idx, size_t d, const float* rows, size_t m,
                  float scale, float* out, AlignedBuffer<float>& logits, std::vector<float>& gathered,
                  std::vector<double>& w, std::vector<double>& acc) {
  std::fill(out, out + L.C, 0.0f);
  const size_t nc = idx.size();
  if (nc == 0) return;
  const float* cent = L.cent;
  if (nc != L.C) {
    gathered.resize(nc * d);
    for (size_t i = 0; i < nc; ++i)
      std::memcpy(gathered.data() + i * d, L.cent + size_t(idx[i]) * d, d * sizeof(float));
    cent = gathered.data();
  }
  w.resize(nc);
  acc.assign(nc, 0.0);
  for (size_t i = 0; i < nc; ++i) w[i] = double(L.sizes[idx[i]]);
  score_rows(cent, nc, d, w.data(), rows, m, scale, acc.data(), logits);
  const double inv_m = 1.0 / double(m);
  for (size_t i = 0; i < nc; ++i) out[idx[i]] = static_cast<float>(acc[i] * inv_m);
}

// Group g → (KV head, first query row, rows).
struct GroupMap {
  size_t groups, G, rows_per_group;
  bool per_query_head;
  size_t kv_head(size_t g) const { return per_query_head ? g / G : g; }
};

GroupMap group_map(const SqueezedContext& c, const Queries& q, GroupPolicy policy) {
  GroupMap m;
  m.G = q.heads / c.heads;
  m.per_query_head = policy == GroupPolicy::PerQueryHead;
  m.groups = m.per_query_head ? q.heads : c.heads;
  m.rows_per_group = m.per_query_head ? q.tokens : m.G * q.tokens;  // a group's rows are contiguous
  return m;
}

size_t ceil_keys(double f, size_t n) {
  const double t = std::ceil(f * double(n));
  if (!(t > 0)) return 0;
  return t >= double(n) ? n : static_cast<size_t>(t);
}

// Validates the selection options against the scores; returns the key target of
// KeepFraction / Budget (0 for Threshold).
size_t select_target(const SqueezedContext& c, const CentroidScores& s, const SelectOptions& opts) {
  const size_t C = c.clusters, nc = c.clustered();
  NNSCOPE_CHECK(s.clusters == C && s.scores.size() == s.groups * C && s.scored.size() == s.groups * C &&
                    s.centroids_scored.size() == s.groups,
                ErrorCode::Shape, "select_keys: scores do not match the context");
  const bool pq = s.policy == GroupPolicy::PerQueryHead;
  NNSCOPE_CHECK(s.groups > 0 && (pq ? s.groups % c.heads == 0 : s.groups == c.heads), ErrorCode::Shape,
                "select_keys: group count does not match the policy");
  NNSCOPE_CHECK(c.labels.size() == c.heads * nc && c.sizes.size() == c.heads * C, ErrorCode::Shape,
                "select_keys: inconsistent context");
  switch (opts.mode) {
    case SelectMode::Threshold:
      NNSCOPE_CHECK(std::isfinite(opts.threshold), ErrorCode::NonFinite, "select_keys: threshold must be finite");
      return 0;
    case SelectMode::KeepFraction:
      NNSCOPE_CHECK(opts.keep_fraction >= 0 && opts.keep_fraction <= 1, ErrorCode::InvalidArgument,
                    "select_keys: keep_fraction must be in [0, 1]");
      return ceil_keys(opts.keep_fraction, nc);
    case SelectMode::Budget:
      return std::min(opts.budget, nc);
    default:
      fail(ErrorCode::InvalidArgument, "select_keys: unknown mode");
  }
}

// Keys to take from each cluster of group g (KV head h): take [C] (zeroed by the
// caller). Returns the clustered keys kept.
size_t group_takes(const SqueezedContext& c, const CentroidScores& s, const SelectOptions& opts, size_t target,
                   size_t g, size_t h, std::int32_t* take, std::vector<std::uint64_t>& order) {
  const size_t C = c.clusters;
  const float* sc = s.scores.data() + g * C;
  const std::uint8_t* ok = s.scored.data() + g * C;
  const std::int32_t* sz = c.sizes.data() + h * C;
  size_t kept = 0;
  if (opts.mode == SelectMode::Threshold) {
    for (size_t j = 0; j < C; ++j)
      if (ok[j] && sz[j] > 0 && double(sc[j]) > opts.threshold) {
        take[j] = sz[j];
        kept += size_t(sz[j]);
      }
    return kept;
  }
  // Ranking by (score desc, cluster index asc), a total order: one 64-bit key per
  // cluster (scores are ≥ 0, so their bit patterns sort like them).
  // Clusters leave a min-heap of these keys best first, until the target is met
  // (only the clusters taken are ordered: O(C + taken·log C)).
  order.clear();
  for (size_t j = 0; j < C; ++j)
    if (ok[j] && sz[j] > 0) {
      float v = sc[j] > 0.0f ? sc[j] : 0.0f;
      std::uint32_t bits;
      std::memcpy(&bits, &v, 4);
      order.push_back((std::uint64_t(0xffffffffu - bits) << 32) | std::uint64_t(j));
    }
  const auto later = std::greater<std::uint64_t>();
  std::make_heap(order.begin(), order.end(), later);
  size_t left = target;
  for (auto end = order.end(); end != order.begin() && left > 0; --end) {
    std::pop_heap(order.begin(), end, later);
    const size_t j = size_t(*(end - 1) & 0xffffffffu);
    const size_t t = std::min(left, size_t(sz[j]));
    take[j] = static_cast<std::int32_t>(t);
    left -= t;
    kept += t;
  }
  return kept;
}

void fill_stats(GroupStats& st, size_t kept, size_t W, size_t N, size_t scored) {
  st.kept_clustered = kept;
  st.kept_keys = kept + W;
  st.kept_fraction = double(kept + W) / double(N);
  st.centroids_scored = scored;
  st.kv_budget = st.kept_fraction + double(scored) / (2.0 * double(N));
}

}  // namespace

// ---------------------------------------------------------------- validation
void validate_context(const SqueezedContext& c) {
  const char* p = "squeezed context: ";
  NNSCOPE_CHECK(c.heads > 0 && c.tokens > 0 && c.d > 0, ErrorCode::Shape,
                std::string(p) + "heads, tokens and d must be positive");
  NNSCOPE_CHECK(c.window < c.tokens, ErrorCode::Shape, std::string(p) + "window must leave ≥ 1 clustered key");
  const size_t nc = c.clustered();
  NNSCOPE_CHECK(c.clusters >= 1 && c.clusters <= nc, ErrorCode::Shape,
                std::string(p) + "clusters must be in [1, N − W]");
  NNSCOPE_CHECK(nc <= size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                std::string(p) + "too many tokens for int32 labels");
  const size_t H = c.heads, C = c.clusters, d = c.d;
  NNSCOPE_CHECK(c.centroids.size() == checked_mul(checked_mul(H, C), d), ErrorCode::Shape,
                std::string(p) + "centroids must be [H, C, d]");
  NNSCOPE_CHECK(c.labels.size() == checked_mul(H, nc), ErrorCode::Shape, std::string(p) + "labels must be [H, N − W]");
  NNSCOPE_CHECK(c.sizes.size() == H * C, ErrorCode::Shape, std::string(p) + "sizes must be [H, C]");
  require_finite(c.centroids.data(), c.centroids.size(), std::string(p) + "centroids");
  std::vector<std::int64_t> count(C);
  for (size_t h = 0; h < H; ++h) {
    std::fill(count.begin(), count.end(), 0);
    const std::int32_t* lab = c.labels.data() + h * nc;
    for (size_t t = 0; t < nc; ++t) {
      NNSCOPE_CHECK(lab[t] >= 0 && size_t(lab[t]) < C, ErrorCode::InvalidArgument,
                    std::string(p) + "label out of range at head " + str(h) + ", key " + str(t));
      ++count[size_t(lab[t])];
    }
    for (size_t j = 0; j < C; ++j)
      NNSCOPE_CHECK(count[j] == c.sizes[h * C + j], ErrorCode::InvalidArgument,
                    std::string(p) + "sizes disagree with the labels at head " + str(h) + ", cluster " + str(j));
  }
  if (c.hierarchical) {
    const size_t C1 = c.coarse_clusters;
    NNSCOPE_CHECK(C1 >= 1 && C1 <= C, ErrorCode::Shape, std::string(p) + "coarse clusters must be in [1, C]");
    NNSCOPE_CHECK(c.coarse_centroids.size() == checked_mul(checked_mul(H, C1), d), ErrorCode::Shape,
                  std::string(p) + "coarse centroids must be [H, C1, d]");
    NNSCOPE_CHECK(c.parent.size() == H * C, ErrorCode::Shape, std::string(p) + "parent must be [H, C]");
    NNSCOPE_CHECK(c.coarse_sizes.size() == H * C1, ErrorCode::Shape, std::string(p) + "coarse sizes must be [H, C1]");
    require_finite(c.coarse_centroids.data(), c.coarse_centroids.size(), std::string(p) + "coarse centroids");
    std::vector<std::int64_t> ks(C1);
    for (size_t h = 0; h < H; ++h) {
      std::fill(ks.begin(), ks.end(), 0);
      for (size_t j = 0; j < C; ++j) {
        const std::int32_t par = c.parent[h * C + j];
        NNSCOPE_CHECK(par >= 0 && size_t(par) < C1, ErrorCode::InvalidArgument,
                      std::string(p) + "parent out of range at head " + str(h) + ", cluster " + str(j));
        ks[size_t(par)] += c.sizes[h * C + j];
      }
      for (size_t j = 0; j < C1; ++j)
        NNSCOPE_CHECK(ks[j] == c.coarse_sizes[h * C1 + j], ErrorCode::InvalidArgument,
                      std::string(p) + "coarse sizes disagree with the fine sizes at head " + str(h));
    }
  }
  const Calibration& k = c.calibration;
  NNSCOPE_CHECK(k.thresholds.size() == k.quantiles.size() && k.coarse_thresholds.size() == k.coarse_quantiles.size(),
                ErrorCode::Shape, std::string(p) + "one threshold per quantile");
  for (double t : k.thresholds)
    NNSCOPE_CHECK(std::isfinite(t), ErrorCode::NonFinite, std::string(p) + "non-finite threshold");
  for (double t : k.coarse_thresholds)
    NNSCOPE_CHECK(std::isfinite(t), ErrorCode::NonFinite, std::string(p) + "non-finite coarse threshold");
}

// ---------------------------------------------------------------- build
SqueezedContext build_context(const KvView& keys, const BuildOptions& opts, const OpContext& ctx) {
  const char* p = "build_context: ";
  check_kv(keys, "build_context keys");
  NNSCOPE_CHECK(keys.heads > 0, ErrorCode::InvalidArgument, std::string(p) + "no heads");
  NNSCOPE_CHECK(keys.tokens > 0, ErrorCode::InvalidArgument, std::string(p) + "no tokens (N = 0)");
  NNSCOPE_CHECK(keys.d > 0, ErrorCode::InvalidArgument, std::string(p) + "d must be positive");
  NNSCOPE_CHECK(keys.data != nullptr, ErrorCode::InvalidArgument, std::string(p) + "null keys");
  NNSCOPE_CHECK(opts.centroid_fraction > 0 && opts.centroid_fraction <= 1, ErrorCode::InvalidArgument,
                std::string(p) + "centroid_fraction must be in (0, 1]");
  NNSCOPE_CHECK(!opts.hierarchical || (opts.coarse_fraction > 0 && opts.coarse_fraction <= 1),
                ErrorCode::InvalidArgument, std::string(p) + "coarse_fraction must be in (0, 1]");
  NNSCOPE_CHECK(keys.tokens <= size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                std::string(p) + "too many tokens for int32 indices");
  const size_t H = keys.heads, N = keys.tokens, d = keys.d;
  checked_mul(checked_mul(H, N), d);

  SqueezedContext c;
  c.heads = H;
  c.tokens = N;
  c.d = d;
  c.window = std::min(opts.window, N - 1);
  const size_t nc = c.clustered();
  size_t C = opts.clusters ? opts.clusters : static_cast<size_t>(std::floor(opts.centroid_fraction * double(nc)));
  C = std::max<size_t>(1, std::min(C, nc));
  c.clusters = C;
  c.hierarchical = opts.hierarchical;
  size_t C1 = 0;
  if (opts.hierarchical) {
    C1 = opts.coarse_clusters ? opts.coarse_clusters
                              : static_cast<size_t>(std::floor(opts.coarse_fraction * double(nc)));
    C1 = std::max<size_t>(1, std::min(C1, C));
    c.coarse_clusters = C1;
    c.coarse_centroids.resize(H * C1 * d);
    c.parent.resize(H * C);
    c.coarse_sizes.resize(H * C1);
  }
  c.centroids.resize(checked_mul(H * C, d));
  c.labels.resize(H * nc);
  c.sizes.resize(H * C);
  c.kmeans_iterations.resize(H);
  c.kmeans_reseeded.resize(H);
  c.kmeans_inertia.resize(H);

  std::vector<float> buf(checked_mul(N, d));
  for (size_t h = 0; h < H; ++h) {
    ctx.check();
    rows_f32(keys, h, 0, N, buf.data());
    require_finite(buf.data(), N * d, "build_context keys (head " + str(h) + ")");
    KmeansOptions ko;
    ko.clusters = C;
    ko.iterations = opts.iterations;
    ko.init = opts.init;
    ko.seed = opts.seed;
    ko.stream = h;
    ko.cosine = true;
    ko.device = opts.device;
    // K-means progress folds into head units: head h at fraction done/total.
    OpContext kctx;
    kctx.cancel = ctx.cancel;
    if (ctx.progress || ctx.progress_value) {
      const double span = opts.hierarchical ? 0.9 : 1.0;
      kctx.progress = [&ctx, h, span, H](double done, double total) {
        if (total > 0) ctx.report(double(h) + span * std::min(1.0, done / total), double(H));
      };
    }
    KmeansResult r = kmeans(buf.data(), nc, d, ko, kctx);
    std::memcpy(c.centroids.data() + h * C * d, r.centroids.data(), C * d * sizeof(float));
    std::memcpy(c.labels.data() + h * nc, r.labels.data(), nc * sizeof(std::int32_t));
    std::memcpy(c.sizes.data() + h * C, r.sizes.data(), C * sizeof(std::int32_t));
    c.kmeans_iterations[h] = r.iterations;
    c.kmeans_reseeded[h] = r.reseeded;
    c.kmeans_inertia[h] = r.inertia;
    if (opts.hierarchical) {
      KmeansOptions k1 = ko;
      k1.clusters = C1;
      k1.stream = H + h;
      OpContext k1ctx;
      k1ctx.cancel = ctx.cancel;
      KmeansResult r1 = kmeans(c.centroids.data() + h * C * d, C, d, k1, k1ctx);
      std::memcpy(c.coarse_centroids.data() + h * C1 * d, r1.centroids.data(), C1 * d * sizeof(float));
      std::memcpy(c.parent.data() + h * C, r1.labels.data(), C * sizeof(std::int32_t));
      std::int32_t* cs = c.coarse_sizes.data() + h * C1;
      std::fill(cs, cs + C1, 0);
      for (size_t j = 0; j < C; ++j) cs[size_t(r1.labels[j])] += r.sizes[j];
    }
    ctx.report(double(h + 1), double(H));
  }
  return c;
}

// ---------------------------------------------------------------- scoring
namespace {

// centroid_scores in parts, so the decoder can fuse its selection into the
// per-group scoring: the checks, the zeroed result, one group's scores.
struct ScoreSetup {
  GroupMap gm;
  float scale = 0;
  bool two = false;
};

ScoreSetup score_checks(const SqueezedContext& c, const Queries& q, const ScoreOptions& opts) {
  check_queries(c, q, "centroid_scores");
  ScoreSetup u;
  u.scale = resolve_scale(opts.scale, c.d);
  NNSCOPE_CHECK(std::isfinite(opts.coarse_threshold), ErrorCode::NonFinite,
                "centroid_scores: coarse threshold must be finite");
  u.gm = group_map(c, q, opts.policy);
  const size_t C = c.clusters, C1 = c.coarse_clusters, d = c.d;
  NNSCOPE_CHECK(c.centroids.size() == c.heads * C * d && c.sizes.size() == c.heads * C, ErrorCode::Shape,
                "centroid_scores: inconsistent context");
  u.two = c.hierarchical && opts.hierarchical;
  if (u.two)
    NNSCOPE_CHECK(c.coarse_centroids.size() == c.heads * C1 * d && c.parent.size() == c.heads * C &&
                      c.coarse_sizes.size() == c.heads * C1,
                  ErrorCode::Shape, "centroid_scores: inconsistent coarse level");
  return u;
}

CentroidScores score_alloc(const SqueezedContext& c, const ScoreOptions& opts, const ScoreSetup& u) {
  const size_t C = c.clusters, C1 = c.coarse_clusters, G = u.gm.groups;
  CentroidScores s;
  s.policy = opts.policy;
  s.groups = G;
  s.clusters = C;
  s.scores.assign(G * C, 0.0f);
  s.scored.assign(G * C, 0);
  s.centroids_scored.assign(G, 0);
  if (u.two) {
    s.coarse_clusters = C1;
    s.coarse_scores.assign(G * C1, 0.0f);
    s.coarse_kept.assign(G * C1, 0);
  }
  return s;
}

struct ScoreScratch {
  AlignedBuffer<float> logits;
  std::vector<float> gathered;
  std::vector<double> w, acc;
  std::vector<std::int32_t> idx, cidx;
};

void score_group(const SqueezedContext& c, const Queries& q, const ScoreOptions& opts, const ScoreSetup& u,
                 size_t g, CentroidScores& s, ScoreScratch& t) {
  const size_t C = c.clusters, C1 = c.coarse_clusters, d = c.d;
  const GroupMap& gm = u.gm;
  const size_t h = gm.kv_head(g);
  const float* rows = q.data + g * gm.rows_per_group * d;
  const LevelRef fine{c.centroids.data() + h * C * d, c.sizes.data() + h * C, C};
  std::uint8_t* sc = s.scored.data() + g * C;
  std::vector<std::int32_t>& idx = t.idx;
  idx.clear();
  if (u.two) {
    const LevelRef coarse{c.coarse_centroids.data() + h * C1 * d, c.coarse_sizes.data() + h * C1, C1};
    std::vector<std::int32_t>& cidx = t.cidx;
    cidx.clear();
    for (size_t j = 0; j < C1; ++j)
      if (coarse.sizes[j] > 0) cidx.push_back(static_cast<std::int32_t>(j));
    float* cs = s.coarse_scores.data() + g * C1;
    score_subset(coarse, cidx, d, rows, gm.rows_per_group, u.scale, cs, t.logits, t.gathered, t.w, t.acc);
    std::uint8_t* kept = s.coarse_kept.data() + g * C1;
    for (size_t j = 0; j < C1; ++j) kept[j] = coarse.sizes[j] > 0 && double(cs[j]) > opts.coarse_threshold;
    const std::int32_t* par = c.parent.data() + h * C;
    for (size_t j = 0; j < C; ++j)
      if (fine.sizes[j] > 0 && kept[size_t(par[j])]) idx.push_back(static_cast<std::int32_t>(j));
    s.centroids_scored[g] = C1 + idx.size();
  } else {
    for (size_t j = 0; j < C; ++j)
      if (fine.sizes[j] > 0) idx.push_back(static_cast<std::int32_t>(j));
    s.centroids_scored[g] = C;
  }
  for (std::int32_t j : idx) sc[j] = 1;
  score_subset(fine, idx, d, rows, gm.rows_per_group, u.scale, s.scores.data() + g * C, t.logits, t.gathered, t.w,
               t.acc);
}

}  // namespace

CentroidScores centroid_scores(const SqueezedContext& c, const Queries& q, const ScoreOptions& opts,
                               const OpContext& ctx) {
  const ScoreSetup u = score_checks(c, q, opts);
  if (resolve_device(opts.device) == Device::Cuda) return gpu_attention().centroid_scores(c, q, opts, ctx);
  CentroidScores s = score_alloc(c, opts, u);
  parallel_for(0, u.gm.groups, 1, [&](size_t g0, size_t g1) {
    ScoreScratch t;
    for (size_t g = g0; g < g1; ++g) {
      ctx.check();
      score_group(c, q, opts, u, g, s, t);
    }
  });
  return s;
}

// ---------------------------------------------------------------- calibration
std::size_t ScorePool::keys() const noexcept {
  std::size_t n = 0;
  for (auto v : counts) n += static_cast<std::size_t>(v);
  return n;
}

void pool_calibration_scores(const SqueezedContext& c, const Queries& calib, GroupPolicy policy, float scale,
                             ScorePool& fine, ScorePool* coarse, const OpContext& ctx, Device device) {
  ScoreOptions so;
  so.policy = policy;
  so.scale = scale;
  so.device = device;
  so.hierarchical = false;  // fine thresholds come from the flat lookup (the reference's τ²)
  const CentroidScores s = centroid_scores(c, calib, so, ctx);
  const GroupMap gm = group_map(c, calib, policy);
  const size_t C = c.clusters;
  for (size_t g = 0; g < s.groups; ++g) {
    const size_t h = gm.kv_head(g);
    for (size_t j = 0; j < C; ++j) {
      const std::int32_t n = c.sizes[h * C + j];
      if (n <= 0) continue;
      fine.scores.push_back(s.scores[g * C + j]);
      fine.counts.push_back(n);
    }
  }
  if (coarse && c.hierarchical) {
    // Coarse scores: a flat lookup over the coarse level with key counts.
    const size_t C1 = c.coarse_clusters, d = c.d;
    NNSCOPE_CHECK(c.coarse_centroids.size() == c.heads * C1 * d && c.coarse_sizes.size() == c.heads * C1,
                  ErrorCode::Shape, "pool_calibration_scores: inconsistent coarse level");
    const float sc = resolve_scale(scale, d);
    std::vector<float> out(s.groups * C1);
    parallel_for(0, s.groups, 1, [&](size_t g0, size_t g1) {
      AlignedBuffer<float> logits;
      std::vector<float> gathered;
      std::vector<double> w, acc;
      std::vector<std::int32_t> idx;
      for (size_t g = g0; g < g1; ++g) {
        ctx.check();
        const size_t h = gm.kv_head(g);
        const LevelRef L{c.coarse_centroids.data() + h * C1 * d, c.coarse_sizes.data() + h * C1, C1};
        idx.clear();
        for (size_t j = 0; j < C1; ++j)
          if (L.sizes[j] > 0) idx.push_back(static_cast<std::int32_t>(j));
        score_subset(L, idx, d, calib.data + g * gm.rows_per_group * d, gm.rows_per_group, sc, out.data() + g * C1,
                     logits, gathered, w, acc);
      }
    });
    for (size_t g = 0; g < s.groups; ++g) {
      const size_t h = gm.kv_head(g);
      for (size_t j = 0; j < C1; ++j) {
        const std::int32_t n = c.coarse_sizes[h * C1 + j];
        if (n <= 0) continue;
        coarse->scores.push_back(out[g * C1 + j]);
        coarse->counts.push_back(n);
      }
    }
  }
}

std::vector<double> pooled_quantiles(const ScorePool& pool, const std::vector<double>& ps) {
  NNSCOPE_CHECK(pool.scores.size() == pool.counts.size(), ErrorCode::Shape,
                "pooled_quantiles: scores and counts differ in length");
  for (double p : ps)
    NNSCOPE_CHECK(p > 0 && p < 1, ErrorCode::InvalidArgument, "pooled_quantiles: quantiles must be in (0, 1)");
  std::vector<size_t> order;
  std::int64_t n = 0;
  for (size_t i = 0; i < pool.scores.size(); ++i) {
    NNSCOPE_CHECK(pool.counts[i] >= 0, ErrorCode::InvalidArgument, "pooled_quantiles: negative count");
    if (pool.counts[i] == 0) continue;
    NNSCOPE_CHECK(std::isfinite(pool.scores[i]), ErrorCode::NonFinite, "pooled_quantiles: non-finite score");
    order.push_back(i);
    n += pool.counts[i];
  }
  NNSCOPE_CHECK(n > 0, ErrorCode::InvalidArgument, "pooled_quantiles: empty pool");
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (pool.scores[a] != pool.scores[b]) return pool.scores[a] < pool.scores[b];
    return a < b;
  });
  std::vector<std::int64_t> cum(order.size());
  std::int64_t run = 0;
  for (size_t i = 0; i < order.size(); ++i) cum[i] = run += pool.counts[order[i]];
  // Value at 0-based position i of the expanded sorted multiset.
  auto at = [&](std::int64_t i) {
    const size_t r = size_t(std::upper_bound(cum.begin(), cum.end(), i) - cum.begin());
    return double(pool.scores[order[r]]);
  };
  std::vector<double> out;
  for (double p : ps) {
    // numpy "linear" (alpha = beta = 1): virtual index n·p + (1 + p·(1 − 1 − 1)) − 1.
    const double v = double(n) * p + (1.0 + p * (1.0 - 1.0 - 1.0)) - 1.0;
    double lo = std::floor(v);
    const double gamma = v - lo;
    std::int64_t i0 = static_cast<std::int64_t>(lo);
    i0 = std::max<std::int64_t>(0, std::min<std::int64_t>(i0, n - 1));
    const std::int64_t i1 = std::min<std::int64_t>(i0 + 1, n - 1);
    const double a = at(i0), b = at(i1);
    const double diff = b - a;
    const double r = gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
    out.push_back(r);
  }
  return out;
}

Calibration calibrate(SqueezedContext& c, const Queries& calib, const CalibrateOptions& opts, const OpContext& ctx) {
  NNSCOPE_CHECK(!opts.quantiles.empty(), ErrorCode::InvalidArgument, "calibrate: no quantiles");
  for (double p : opts.quantiles)
    NNSCOPE_CHECK(p > 0 && p < 1, ErrorCode::InvalidArgument, "calibrate: quantiles must be in (0, 1)");
  for (double p : opts.coarse_quantiles)
    NNSCOPE_CHECK(p > 0 && p < 1, ErrorCode::InvalidArgument, "calibrate: coarse quantiles must be in (0, 1)");
  ScorePool fine, coarse;
  pool_calibration_scores(c, calib, opts.policy, opts.scale, fine, c.hierarchical ? &coarse : nullptr, ctx,
                          opts.device);
  Calibration k;
  k.policy = opts.policy;
  k.quantiles = opts.quantiles;
  k.thresholds = pooled_quantiles(fine, opts.quantiles);
  if (c.hierarchical && !opts.coarse_quantiles.empty()) {
    k.coarse_quantiles = opts.coarse_quantiles;
    k.coarse_thresholds = pooled_quantiles(coarse, opts.coarse_quantiles);
  }
  for (double t : k.thresholds) NNSCOPE_CHECK(std::isfinite(t), ErrorCode::Internal, "calibrate: non-finite threshold");
  c.calibration = k;
  return k;
}

// ---------------------------------------------------------------- selection
SqueezedSelection select_keys(const SqueezedContext& c, const CentroidScores& s, const SelectOptions& opts,
                              const OpContext& ctx) {
  const size_t C = c.clusters, N = c.tokens, nc = c.clustered(), W = c.window;
  const size_t target = select_target(c, s, opts);
  const bool pq = s.policy == GroupPolicy::PerQueryHead;
  const size_t G = pq ? s.groups / c.heads : 1;

  SqueezedSelection sel;
  sel.per_query_head = pq;
  sel.groups = s.groups;
  sel.stats.resize(s.groups);
  // Phase 1: keys to take per (group, cluster); phase 2: CSR offsets; phase 3:
  // compaction straight into the CSR, one pass over the labels in token order.
  std::vector<std::int32_t> takes(s.groups * C, 0);
  std::vector<size_t> kept_of(s.groups, 0);
  parallel_for(0, s.groups, 1, [&](size_t g0, size_t g1) {
    std::vector<std::uint64_t> order;
    for (size_t g = g0; g < g1; ++g) {
      ctx.check();
      const size_t h = pq ? g / G : g;
      kept_of[g] = group_takes(c, s, opts, target, g, h, takes.data() + g * C, order);
    }
  });
  sel.offsets.resize(s.groups + 1);
  sel.offsets[0] = 0;
  for (size_t g = 0; g < s.groups; ++g) sel.offsets[g + 1] = sel.offsets[g] + kept_of[g] + W;
  sel.indices.resize(sel.offsets[s.groups]);
  parallel_for(0, s.groups, 1, [&](size_t g0, size_t g1) {
    for (size_t g = g0; g < g1; ++g) {
      const size_t h = pq ? g / G : g;
      const size_t kept = kept_of[g];
      std::int32_t* take = takes.data() + g * C;
      std::int32_t* o = sel.indices.data() + sel.offsets[g];
      const std::int32_t* lab = c.labels.data() + h * nc;
      // Branch-free: write t, advance when its cluster still has keys to give.
      size_t pos = 0;
      for (size_t t = 0; t < nc && pos < kept; ++t) {
        std::int32_t& r = take[size_t(lab[t])];
        const std::int32_t k = r > 0;
        o[pos] = static_cast<std::int32_t>(t);
        pos += size_t(k);
        r -= k;
      }
      for (size_t t = nc; t < N; ++t) o[pos++] = static_cast<std::int32_t>(t);
      fill_stats(sel.stats[g], kept, W, N, s.centroids_scored[g]);
    }
  });
  return sel;
}

SqueezedSelection select_keys(const SqueezedContext& c, const Queries& q, const SelectOptions& opts,
                              const OpContext& ctx) {
  const CentroidScores s = centroid_scores(c, q, opts.score, ctx);
  return select_keys(c, s, opts, ctx);
}

// ---------------------------------------------------------------- attention
namespace {

void check_fixed(const SqueezedContext& c, const KvView& k, const KvView& v, const char* what) {
  const std::string p = std::string(what) + ": ";
  check_kv(k, "fixed keys");
  check_kv(v, "fixed values");
  NNSCOPE_CHECK(k.heads == c.heads && v.heads == c.heads && k.tokens == c.tokens && v.tokens == c.tokens &&
                    k.d == c.d && v.d == c.d,
                ErrorCode::Shape, p + "fixed K/V must be [H, N, d] of the context");
}

void compose(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
             const KvView& dk, const KvView& dv, bool causal, const SelectOptions& opts, const Output& out,
             SqueezedReport* report, const OpContext& ctx, const char* what) {
  const std::string p = std::string(what) + ": ";
  check_fixed(c, fixed_k, fixed_v, what);
  check_queries(c, q, what);
  check_kv(dk, "dense keys");
  check_kv(dv, "dense values");
  NNSCOPE_CHECK(dk.heads == c.heads && dv.heads == c.heads && dk.d == c.d && dv.d == c.d && dk.tokens == dv.tokens,
                ErrorCode::Shape, p + "dense K/V must be [H, T, d] with the context's H and d");
  if (causal)
    NNSCOPE_CHECK(dk.tokens == q.tokens, ErrorCode::Shape, p + "user K/V must have one row per user query");
  NNSCOPE_CHECK(out.out != nullptr, ErrorCode::InvalidArgument, p + "null output");
  const float scale = resolve_scale(opts.score.scale, c.d);
  const size_t rows = q.heads * q.tokens;
  if (resolve_device(opts.score.device) == Device::Cuda)
    return gpu_attention().squeezed(fixed_k, fixed_v, c, q, dk, dv, causal, opts, out, report, ctx);

  SqueezedSelection sel = select_keys(c, q, opts, ctx);
  std::vector<float> lse_a;
  float* la = out.lse;
  if (!la) {
    lse_a.resize(rows);
    la = lse_a.data();
  }
  sparse_attention(q, fixed_k, fixed_v, sel.view(), scale, Output{out.out, la}, ctx);
  if (dk.tokens > 0) {
    std::vector<float> ob(checked_mul(rows, c.d)), lb(rows);
    DenseOptions dopts;
    dopts.scale = scale;
    dopts.causal = causal;
    dopts.query_offset = 0;
    dense_attention(q, dk, dv, dopts, Output{ob.data(), lb.data()}, ctx);
    merge_partials(rows, c.d, out.out, la, ob.data(), lb.data());
  }
  if (report) report->selection = std::move(sel);
}

}  // namespace

void squeezed_prefill(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
                      const KvView& user_k, const KvView& user_v, const SelectOptions& opts, const Output& out,
                      SqueezedReport* report, const OpContext& ctx) {
  compose(fixed_k, fixed_v, c, q, user_k, user_v, true, opts, out, report, ctx, "squeezed_prefill");
}

void squeezed_decode(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
                     const KvView& tail_k, const KvView& tail_v, const SelectOptions& opts, const Output& out,
                     SqueezedReport* report, const OpContext& ctx) {
  compose(fixed_k, fixed_v, c, q, tail_k, tail_v, false, opts, out, report, ctx, "squeezed_decode");
}

// ---------------------------------------------------------------- decode tail
DecodeTail::DecodeTail(std::size_t heads, std::size_t d, std::size_t capacity) : heads_(heads), d_(d) {
  NNSCOPE_CHECK(heads > 0 && d > 0, ErrorCode::InvalidArgument, "DecodeTail: heads and d must be positive");
  reserve(std::max<std::size_t>(capacity, 1));
}

void DecodeTail::reserve(std::size_t capacity) {
  if (capacity <= capacity_) return;
  const std::size_t n = checked_mul(checked_mul(heads_, capacity), d_);
  std::vector<float> k(n), v(n);
  if (tokens_ > 0)
    for (std::size_t h = 0; h < heads_; ++h) {
      std::memcpy(k.data() + h * capacity * d_, k_.data() + h * capacity_ * d_, tokens_ * d_ * sizeof(float));
      std::memcpy(v.data() + h * capacity * d_, v_.data() + h * capacity_ * d_, tokens_ * d_ * sizeof(float));
    }
  k_.swap(k);
  v_.swap(v);
  capacity_ = capacity;
}

void DecodeTail::append(const float* k, const float* v, std::size_t tokens) {
  NNSCOPE_CHECK(heads_ > 0, ErrorCode::InvalidArgument, "DecodeTail: not initialised");
  if (tokens == 0) return;
  NNSCOPE_CHECK(k && v, ErrorCode::InvalidArgument, "DecodeTail::append: null rows");
  const std::size_t need = tokens_ + tokens;
  if (need > capacity_) reserve(std::max(need, 2 * capacity_));
  for (std::size_t h = 0; h < heads_; ++h) {
    std::memcpy(k_.data() + (h * capacity_ + tokens_) * d_, k + h * tokens * d_, tokens * d_ * sizeof(float));
    std::memcpy(v_.data() + (h * capacity_ + tokens_) * d_, v + h * tokens * d_, tokens * d_ * sizeof(float));
  }
  tokens_ = need;
}

KvView DecodeTail::keys() const noexcept {
  KvView x;
  x.data = k_.data();
  x.storage = Storage::F32;
  x.heads = heads_;
  x.tokens = tokens_;
  x.d = d_;
  x.head_stride = capacity_;
  return x;
}

KvView DecodeTail::values() const noexcept {
  KvView x = keys();
  x.data = v_.data();
  return x;
}


// ---------------------------------------------------------------- decoder
SqueezedDecoder::SqueezedDecoder(std::shared_ptr<const SqueezedContext> c, const KvView& fixed_k,
                                 const KvView& fixed_v, std::size_t capacity, Device device)
    : c_(std::move(c)) {
  NNSCOPE_CHECK(c_ != nullptr, ErrorCode::InvalidArgument, "SqueezedDecoder: null context");
  const SqueezedContext& c0 = *c_;
  check_fixed(c0, fixed_k, fixed_v, "SqueezedDecoder");
  NNSCOPE_CHECK(c0.labels.size() == c0.heads * c0.clustered() && c0.sizes.size() == c0.heads * c0.clusters,
                ErrorCode::Shape, "SqueezedDecoder: inconsistent context");
  device_ = resolve_device(device);
  if (device_ == Device::Cuda) {
    gpu_ = gpu_attention().make_decoder(c0, fixed_k, fixed_v, capacity);
    return;
  }
  tail_ = DecodeTail(c0.heads, c0.d, capacity);
  const size_t H = c0.heads, N = c0.tokens, d = c0.d, C = c0.clusters, nc = c0.clustered();
  NNSCOPE_CHECK(N <= size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                "SqueezedDecoder: too many tokens");
  // Counting sort of each head's clustered tokens by label (stable: token order
  // within a cluster), then the rows copied in that order.
  start_.assign(H * (C + 1), 0);
  token_.resize(H * nc);
  for (size_t h = 0; h < H; ++h) {
    const std::int32_t* lab = c0.labels.data() + h * nc;
    std::int32_t* st = start_.data() + h * (C + 1);
    for (size_t j = 0; j < C; ++j) st[j + 1] = st[j] + c0.sizes[h * C + j];
    NNSCOPE_CHECK(size_t(st[C]) == nc, ErrorCode::Shape, "SqueezedDecoder: cluster sizes do not sum to N_c");
    std::vector<std::int32_t> next(st, st + C);
    std::int32_t* tok = token_.data() + h * nc;
    for (size_t t = 0; t < nc; ++t) {
      const size_t j = size_t(lab[t]);
      NNSCOPE_CHECK(j < C, ErrorCode::InvalidArgument, "SqueezedDecoder: label out of range");
      tok[next[j]++] = static_cast<std::int32_t>(t);
    }
  }
  const size_t eb = storage_bytes(fixed_k.storage), row = d * eb;
  kbuf_.resize(checked_mul(checked_mul(H, N), row));  // cache-line aligned rows, first touched by the copy
  vbuf_.resize(kbuf_.size());
  parallel_for(0, H * N, 1024, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const size_t h = i / N, p = i % N;
      const size_t t = p < nc ? size_t(token_[h * nc + p]) : p;
      const size_t dst = (h * N + p) * row;  // row_index counts elements
      std::memcpy(kbuf_.data() + dst, static_cast<const unsigned char*>(fixed_k.data) + fixed_k.row_index(h, t) * eb,
                  row);
      std::memcpy(vbuf_.data() + dst, static_cast<const unsigned char*>(fixed_v.data) + fixed_v.row_index(h, t) * eb,
                  row);
    }
  });
  k_ = fixed_k;
  k_.data = kbuf_.data();
  k_.head_stride = 0;
  v_ = fixed_v;
  v_.data = vbuf_.data();
  v_.head_stride = 0;
}

SqueezedDecoder::~SqueezedDecoder() = default;

std::size_t SqueezedDecoder::tokens() const { return gpu_ ? gpu_->tokens() : tail_.tokens(); }

void SqueezedDecoder::append(const float* k, const float* v, std::size_t tokens) {
  if (gpu_) return gpu_->append(k, v, tokens);
  tail_.append(k, v, tokens);
}

void SqueezedDecoder::clear() {
  if (gpu_) return gpu_->clear();
  tail_.clear();
}

void SqueezedDecoder::step(const Queries& q, const SelectOptions& opts, const Output& out, SqueezedReport* report,
                           bool indices, const OpContext& ctx) {
  const SqueezedContext& c = *c_;
  check_queries(c, q, "SqueezedDecoder::step");
  NNSCOPE_CHECK(out.out != nullptr, ErrorCode::InvalidArgument, "SqueezedDecoder::step: null output");
  if (gpu_) return gpu_->step(q, opts, out, report, indices, ctx);
  const float scale = resolve_scale(opts.score.scale, c.d);
  ScoreOptions so = opts.score;
  so.device = Device::Cpu;
  const ScoreSetup u = score_checks(c, q, so);
  CentroidScores s = score_alloc(c, so, u);
  const size_t target = select_target(c, s, opts);
  const size_t C = c.clusters, N = c.tokens, nc = c.clustered(), W = c.window, groups = s.groups;
  const bool pq = s.policy == GroupPolicy::PerQueryHead;
  const size_t G = pq ? groups / c.heads : 1;

  // Selected positions in the sorted copy: whole clusters (or the boundary
  // cluster's first keys, its lowest-index ones) in cluster order, then the window.
  // The clusters of a group are ranked (a heap, popped only as far as needed) and
  // its list written by the thread that scored it, while its scores are in cache.
  // Flat lookup with a key target: the kept counts (so the CSR offsets) are known
  // before scoring — min(target, keys in non-empty clusters) — and scoring,
  // ranking and the lists are one parallel pass; otherwise the counts follow the
  // scores and the lists a second pass.
  takes_.assign(groups * C, 0);
  offsets_.assign(groups + 1, 0);
  std::vector<size_t> kept(groups);
  auto write_list = [&](size_t g, std::vector<std::uint64_t>& order) {
    const size_t h = pq ? g / G : g;
    const size_t n = group_takes(c, s, opts, target, g, h, takes_.data() + g * C, order);
    NNSCOPE_CHECK(n == kept[g], ErrorCode::Internal, "SqueezedDecoder: kept count mismatch");
    const std::int32_t* st = start_.data() + h * (C + 1);
    const std::int32_t* take = takes_.data() + g * C;
    std::int32_t* o = pos_.data() + offsets_[g];
    for (size_t j = 0; j < C; ++j)
      for (std::int32_t i = 0; i < take[j]; ++i) *o++ = st[j] + i;
    for (size_t t = nc; t < N; ++t) *o++ = static_cast<std::int32_t>(t);
  };
  const bool known = !u.two && opts.mode != SelectMode::Threshold;
  if (known) {
    for (size_t g = 0; g < groups; ++g) {
      kept[g] = std::min(target, size_t(start_[(pq ? g / G : g) * (C + 1) + C]));  // all non-empty clusters scored
      offsets_[g + 1] = offsets_[g] + kept[g] + W;
    }
    pos_.resize(offsets_[groups]);
  }
  parallel_for(0, groups, 1, [&](size_t g0, size_t g1) {
    ScoreScratch t;
    std::vector<std::uint64_t> order;
    for (size_t g = g0; g < g1; ++g) {
      ctx.check();
      score_group(c, q, so, u, g, s, t);
      if (known) write_list(g, order);
    }
  });
  if (!known) {
    for (size_t g = 0; g < groups; ++g) {
      const float* sc = s.scores.data() + g * C;
      const std::uint8_t* ok = s.scored.data() + g * C;
      const std::int32_t* sz = c.sizes.data() + (pq ? g / G : g) * C;
      size_t n = 0;
      if (opts.mode == SelectMode::Threshold) {
        for (size_t j = 0; j < C; ++j)
          if (ok[j] && sz[j] > 0 && double(sc[j]) > opts.threshold) n += size_t(sz[j]);
      } else {
        for (size_t j = 0; j < C; ++j)
          if (ok[j] && sz[j] > 0) n += size_t(sz[j]);
        n = std::min(n, target);
      }
      kept[g] = n;
      offsets_[g + 1] = offsets_[g] + n + W;
    }
    pos_.resize(offsets_[groups]);
    parallel_for(0, groups, 1, [&](size_t g0, size_t g1) {
      std::vector<std::uint64_t> order;
      for (size_t g = g0; g < g1; ++g) write_list(g, order);
    });
  }
  const size_t rows = q.heads * q.tokens;
  float* la = out.lse;
  if (!la) {
    lse_a_.resize(rows);
    la = lse_a_.data();
  }
  sparse_attention(q, k_, v_, Selection{pos_.data(), offsets_.data(), pq}, scale, Output{out.out, la}, ctx);
  if (tail_.tokens() > 0) {
    out_b_.resize(checked_mul(rows, c.d));
    lse_b_.resize(rows);
    DenseOptions dopts;
    dopts.scale = scale;
    dense_attention(q, tail_.keys(), tail_.values(), dopts, Output{out_b_.data(), lse_b_.data()}, ctx);
    merge_partials(rows, c.d, out.out, la, out_b_.data(), lse_b_.data());
  }
  if (!report) return;
  SqueezedSelection& sel = report->selection;
  sel.per_query_head = pq;
  sel.groups = groups;
  sel.stats.assign(groups, GroupStats{});
  for (size_t g = 0; g < groups; ++g) fill_stats(sel.stats[g], kept[g], W, N, s.centroids_scored[g]);
  sel.indices.clear();
  sel.offsets.clear();
  if (!indices) return;
  // Original token indices, ascending per group.
  sel.offsets = offsets_;
  sel.indices.resize(pos_.size());
  for (size_t g = 0; g < groups; ++g) {
    const size_t h = pq ? g / G : g;
    const std::int32_t* tok = token_.data() + h * nc;
    std::int32_t* o = sel.indices.data() + offsets_[g];
    const std::int32_t* p = pos_.data() + offsets_[g];
    const size_t n = kept[g];
    for (size_t i = 0; i < n; ++i) o[i] = tok[p[i]];
    std::sort(o, o + n);
    for (size_t i = n; i < n + W; ++i) o[i] = p[i];
  }
}

}  // namespace nnscope::attention
