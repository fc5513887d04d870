// Merge-tree summary metrics. See metrics.h.
#include "topology/metrics.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace nnscope::topology {

namespace {

PersistenceStats stats(const std::vector<double>& p) {
  PersistenceStats s;
  s.count = p.size();
  for (double x : p) {
    s.total += x;
    s.maximum = std::max(s.maximum, x);
  }
  s.average = s.count ? s.total / double(s.count) : 0.0;
  return s;
}

}  // namespace

double persistence_entropy(const std::vector<double>& lifetimes) {
  double total = 0.0;
  for (double x : lifetimes) {
    if (!(x >= 0.0) || !std::isfinite(x))
      fail(ErrorCode::InvalidArgument, "topology: lifetimes must be finite and >= 0");
    total += x;
  }
  if (!(total > 0.0)) return 0.0;
  double h = 0.0;
  for (double x : lifetimes)
    if (x > 0.0) {
      const double q = x / total;
      h -= q * std::log(q);
    }
  return h;
}

TopologyMetrics metrics(const MergeTree& t) {
  TopologyMetrics m;
  m.minima = t.branches.size();
  m.saddles = t.saddles.size();
  m.saddles_with_multiplicity = t.pairs.size();
  m.components = t.essential.size();
  m.range = t.max_value - t.min_value;
  std::vector<double> p;
  p.reserve(t.pairs.size() + t.essential.size());
  for (const MergePair& q : t.pairs) p.push_back(q.persistence);
  m.persistence = stats(p);
  m.entropy = persistence_entropy(p);
  for (const EssentialComponent& e : t.essential) {
    p.push_back(e.persistence);
    m.essential_persistence += e.persistence;
  }
  m.persistence_with_essential = stats(p);
  return m;
}

std::vector<std::int64_t> basin_volumes(const MergeTree& t) {
  std::vector<std::int64_t> v(t.branches.size());
  for (std::size_t b = 0; b < v.size(); ++b) v[b] = t.branches[b].size;
  return v;
}

double smad(const MergeTree& t, const SmadOptions& o) {
  if (t.saddles.empty()) return 0.0;
  const double range = t.max_value - t.min_value;
  const double n = double(t.vertices);
  double sum = 0.0;
  std::size_t count = 0;
  for (const TreeArc& a : t.arcs) {
    if (t.nodes[a.child].type != NodeType::Extremum || t.nodes[a.parent].type != NodeType::Saddle) continue;
    double gap = std::fabs(a.parent_value - a.child_value);
    if (o.normalize) gap = range > 0.0 ? gap / range : 0.0;
    if (o.weighted) gap *= double(t.branches[a.child].size) / n;  // extremum node id = branch id
    sum += gap;
    ++count;
  }
  return count ? sum / double(count) : 0.0;
}

}  // namespace nnscope::topology
