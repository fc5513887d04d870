// Tests of the topology family's merge-tree core (topology/mergetree.h,
// metrics.h, profile.h).
//
// Oracles: a brute-force reference that recomputes the connected components of
// every sublevel set by BFS (no union-find) and derives births, deaths (elder
// rule), the segmentation, the essential classes and the merge-tree arcs; closed
// forms (quadratic bowls, separated Gaussian wells, a hand-computed path); exact
// identities (split(f) = join of −f with reversed indices; simplification keeps
// exactly the pairs ≥ ε); brute-force counts for the profile.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cpu_settings.h"
#include "base/context.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "topology/graph.h"
#include "topology/mergetree.h"
#include "topology/metrics.h"
#include "topology/profile.h"
#include "topology_reference.h"

using namespace nnscope;
using namespace nnscope::topology;

namespace {

using test::kAllNeighborhoods;

// ---------------------------------------------------------------- reference
struct AdjGraph {
  std::size_t n = 0;
  std::vector<std::vector<int>> adj;
};

// Explicit grid graph by decoding coordinates and testing every offset.
AdjGraph grid_graph(const std::vector<std::size_t>& dims, Neighborhood nb) {
  AdjGraph g;
  g.n = GridShape{dims}.vertices();
  g.adj.resize(g.n);
  test::for_each_grid_neighbor(GridShape{dims}, nb, [&](std::size_t v, std::size_t u, const std::vector<int>&) {
    g.adj[v].push_back(int(u));
  });
  return g;
}

CsrGraph to_csr(const AdjGraph& a) {
  CsrGraph g;
  g.vertices = a.n;
  g.offsets.assign(a.n + 1, 0);
  for (std::size_t v = 0; v < a.n; ++v) {
    for (int u : a.adj[v]) g.adj.push_back(u);
    g.offsets[v + 1] = std::int64_t(g.adj.size());
  }
  return g;
}

AdjGraph random_graph(std::size_t n, double mean_degree, std::uint64_t seed) {
  AdjGraph g;
  g.n = n;
  g.adj.resize(n);
  const Rng r(seed, 1);
  std::uint64_t k = 0;
  const double p = n > 1 ? mean_degree / double(n - 1) : 0.0;
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b)
      if (r.uniform_at(k++) < p) {
        g.adj[a].push_back(int(b));
        g.adj[b].push_back(int(a));
      }
  return g;
}

// Integer values from {0..range−1} (range > 0: ties and plateaus) or uniform doubles.
std::vector<double> random_values(std::size_t n, int range, std::uint64_t seed) {
  std::vector<double> f(n);
  const Rng r(seed, 2);
  for (std::size_t i = 0; i < n; ++i) f[i] = range > 0 ? double(r.below_at(i, range)) : r.uniform_at(i) * 2 - 1;
  return f;
}

struct RefPair {
  int birth, death;
};
struct Ref {
  std::vector<int> order, rank;
  std::vector<int> minima;                  // in sweep order
  std::vector<RefPair> pairs;               // sorted by (rank death, rank birth)
  std::vector<int> label;                   // elder of the component a vertex joins
  std::vector<std::pair<int, int>> essential;  // (first, last) per component, by first's rank
  std::set<std::pair<int, int>> arcs;       // (child vertex, parent vertex) of the raw tree
};

// Components of the sublevel set {rank ≤ k}, for every k, by BFS.
Ref brute_force(const AdjGraph& g, const std::vector<double>& f, bool descending) {
  const int n = int(g.n);
  Ref r;
  r.order = test::vertex_order<int>(f);
  if (descending) std::reverse(r.order.begin(), r.order.end());
  r.rank.resize(n);
  for (int k = 0; k < n; ++k) r.rank[r.order[k]] = k;
  // elder[k][v]: the earliest vertex of v's component after step k (−1 if absent).
  std::vector<std::vector<int>> elder(n, std::vector<int>(n, -1));
  for (int k = 0; k < n; ++k) {
    std::vector<int>& el = elder[k];
    for (int s = 0; s <= k; ++s) {  // BFS from vertices in sweep order: the start is the elder
      const int src = r.order[s];
      if (el[src] >= 0) continue;
      std::vector<int> q{src};
      el[src] = src;
      for (std::size_t h = 0; h < q.size(); ++h)
        for (int u : g.adj[q[h]])
          if (r.rank[u] <= k && el[u] < 0) {
            el[u] = src;
            q.push_back(u);
          }
    }
  }
  r.label.resize(n);
  std::vector<int> node_parent_step(n, -1);
  std::set<int> is_node;
  for (int k = 0; k < n; ++k) {
    const int v = r.order[k];
    r.label[v] = elder[k][v];
    if (elder[k][v] == v) {
      r.minima.push_back(v);
      is_node.insert(v);
    }
    if (k == 0) continue;
    std::set<int> died, merged;  // previous elders inside v's new component
    for (int u = 0; u < n; ++u)
      if (r.rank[u] < k && elder[k][u] == elder[k][v]) merged.insert(elder[k - 1][u]);
    for (int e : merged)
      if (e != elder[k][v]) died.insert(e);
    std::vector<int> d(died.begin(), died.end());
    std::sort(d.begin(), d.end(), [&](int a, int b) { return r.rank[a] < r.rank[b]; });
    for (int e : d) r.pairs.push_back({e, v});
    if (merged.size() >= 2) is_node.insert(v);
  }
  // Essential classes: per final component, first and last vertex.
  std::map<int, int> last;
  for (int k = 0; k < n; ++k) last[elder[n - 1][r.order[k]]] = r.order[k];
  for (int m : r.minima)
    if (last.count(m)) r.essential.push_back({m, last[m]});
  for (auto& e : r.essential)
    if (!is_node.count(e.second)) is_node.insert(e.second);
  // Arcs: node x → the first later node whose step merges x's component (or its root).
  for (int x : is_node) {
    const int kx = r.rank[x];
    int parent = -1;
    for (int k = kx + 1; k < n && parent < 0; ++k) {
      const int v = r.order[k];
      if (!is_node.count(v) || elder[k][v] != elder[k][x]) continue;
      parent = v;  // v is a node joined to x's component: a merge (or the root)
    }
    if (parent >= 0) r.arcs.insert({x, parent});
  }
  return r;
}

// Checks a raw (keep_zero_persistence) tree against the reference.
void expect_matches(const MergeTree& t, const Ref& r, const std::vector<double>& f) {
  EXPECT_EQ(t.extrema.size(), r.minima.size());
  for (std::size_t i = 0; i < r.minima.size(); ++i) EXPECT_EQ(t.extrema[i], std::int64_t(r.minima[i]));
  EXPECT_EQ(t.pairs.size(), r.pairs.size());
  for (std::size_t i = 0; i < r.pairs.size(); ++i) {
    const MergePair& p = t.pairs[i];
    EXPECT_EQ(p.birth, std::int64_t(r.pairs[i].birth));
    EXPECT_EQ(p.death, std::int64_t(r.pairs[i].death));
    EXPECT_EQ(p.birth_value, f[p.birth]);
    EXPECT_EQ(p.death_value, f[p.death]);
    EXPECT_EQ(p.persistence, std::fabs(f[p.death] - f[p.birth]));
    EXPECT_EQ(t.branches[p.branch].extremum, p.birth);
    EXPECT(p.into < p.branch);
  }
  std::vector<int> branch_of(f.size(), -1);
  for (std::size_t b = 0; b < t.branches.size(); ++b) branch_of[t.branches[b].extremum] = int(b);
  std::vector<std::int64_t> size(t.branches.size(), 0);
  for (std::size_t v = 0; v < f.size(); ++v) {
    EXPECT_EQ(t.segmentation[v], branch_of[r.label[v]]);
    ++size[t.segmentation[v]];
  }
  for (std::size_t b = 0; b < t.branches.size(); ++b) EXPECT_EQ(t.branches[b].size, size[b]);
  EXPECT_EQ(t.essential.size(), r.essential.size());
  for (std::size_t i = 0; i < r.essential.size(); ++i) {
    EXPECT_EQ(t.essential[i].birth, std::int64_t(r.essential[i].first));
    EXPECT_EQ(t.essential[i].last, std::int64_t(r.essential[i].second));
  }
  // Saddles: distinct deaths with multiplicity.
  std::vector<std::int64_t> sad;
  std::vector<std::int32_t> mult;
  for (const RefPair& p : r.pairs) {
    if (sad.empty() || sad.back() != p.death) {
      sad.push_back(p.death);
      mult.push_back(0);
    }
    ++mult.back();
  }
  EXPECT(t.saddles == sad);
  EXPECT(t.saddle_multiplicity == mult);
  // Tree: arcs equal the reference's; a forest with one root per component.
  std::set<std::pair<int, int>> arcs;
  for (const TreeArc& a : t.arcs) {
    arcs.insert({int(a.child_vertex), int(a.parent_vertex)});
    EXPECT_EQ(t.nodes[a.child].vertex, a.child_vertex);
    EXPECT_EQ(t.nodes[a.parent].vertex, a.parent_vertex);
    EXPECT(r.rank[a.child_vertex] < r.rank[a.parent_vertex]);
  }
  EXPECT_EQ(arcs.size(), t.arcs.size());
  EXPECT(arcs == r.arcs);
  EXPECT_EQ(t.arcs.size() + t.roots.size(), t.nodes.size());
}

std::vector<std::size_t> random_dims(std::uint64_t seed, std::size_t max_vertices) {
  const Rng r(seed, 3);
  const std::size_t k = 1 + r.below_at(0, 4);
  std::vector<std::size_t> dims(k);
  for (std::uint64_t attempt = 0;; ++attempt) {
    std::size_t n = 1;
    for (std::size_t i = 0; i < k; ++i) {
      dims[i] = 1 + r.below_at(1 + i + 8 * attempt, k == 1 ? 60 : k == 2 ? 12 : k == 3 ? 6 : 4);
      n *= dims[i];
    }
    if (n <= max_vertices) return dims;
  }
}

MergeTreeOptions raw_opts(TreeKind kind) {
  MergeTreeOptions o;
  o.kind = kind;
  o.keep_zero_persistence = true;
  return o;
}

}  // namespace

// ---------------------------------------------------------------- sort
NNSCOPE_TEST(sweep_order_matches_std_sort) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const std::size_t n = 1 + seed * 397;
    std::vector<double> f = random_values(n, seed % 2 ? 5 : 0, seed);
    const Rng r(seed, 9);
    for (std::size_t i = 0; i < n; ++i) {  // signed zeros, huge, tiny, denormal values
      const double u = r.uniform_at(i);
      if (u < 0.05) f[i] = 0.0;
      else if (u < 0.1) f[i] = -0.0;
      else if (u < 0.12) f[i] = -1e300;
      else if (u < 0.14) f[i] = 4.9e-324;
      else if (u < 0.16) f[i] = -4.9e-324;
    }
    std::vector<std::int32_t> ref = test::vertex_order<std::int32_t>(f);
    EXPECT(sweep_order(f.data(), n, false) == ref);
    std::reverse(ref.begin(), ref.end());
    EXPECT(sweep_order(f.data(), n, true) == ref);
  }
}

// Large inputs run the chunked parallel sort (chunks of ≥ 2^16 keys): the same
// permutation for 1, 2 and 3 threads, with many ties, both directions.
NNSCOPE_TEST(sweep_order_chunked_matches_std_sort) {
  test::CpuSettingsGuard guard;
  for (std::size_t n : {std::size_t(131072), std::size_t(400003)}) {
    std::vector<double> f = random_values(n, 0, n);
    const Rng r(n, 11);
    for (std::size_t i = 0; i < n; ++i) {
      const double u = r.uniform_at(i);
      if (u < 0.3) f[i] = std::floor(f[i] * 64.0) / 64.0;  // plateaus: ties broken by index
      else if (u < 0.32) f[i] = -0.0;
      else if (u < 0.34) f[i] = 0.0;
    }
    std::vector<std::int32_t> ref = test::vertex_order<std::int32_t>(f);
    std::vector<std::int32_t> rev(ref.rbegin(), ref.rend());
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      EXPECT(sweep_order(f.data(), n, false) == ref);
      EXPECT(sweep_order(f.data(), n, true) == rev);
    }
  }
}

// ---------------------------------------------------------------- brute force
NNSCOPE_TEST(join_tree_equals_brute_force_random_graphs) {
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const std::size_t n = 1 + seed % 60;
    const AdjGraph g = random_graph(n, 0.5 + double(seed % 7), seed);
    const std::vector<double> f = random_values(n, seed % 3 == 0 ? 0 : int(1 + seed % 4), seed);
    const CsrGraph csr = to_csr(g);
    for (TreeKind kind : {TreeKind::Join, TreeKind::Split}) {
      const MergeTree t = merge_tree(csr, f.data(), n, raw_opts(kind));
      expect_matches(t, brute_force(g, f, kind == TreeKind::Split), f);
    }
  }
}

NNSCOPE_TEST(join_tree_equals_brute_force_grids) {
  int cases = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const std::vector<std::size_t> dims = random_dims(seed, 150);
    const std::size_t n = GridShape{dims}.vertices();
    const std::vector<double> f = random_values(n, seed % 3 == 0 ? 0 : int(1 + seed % 3), seed + 1000);
    for (Neighborhood nb : kAllNeighborhoods) {
      const AdjGraph g = grid_graph(dims, nb);
      for (TreeKind kind : {TreeKind::Join, TreeKind::Split}) {
        const MergeTree t = merge_tree(GridShape{dims}, nb, f.data(), n, raw_opts(kind));
        expect_matches(t, brute_force(g, f, kind == TreeKind::Split), f);
        // The same graph as CSR gives the same tree.
        const MergeTree c = merge_tree(to_csr(g), f.data(), n, raw_opts(kind));
        EXPECT(c.segmentation == t.segmentation);
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 1200);
}

// Grids past the sort's chunk size and the sweep's cancellation stride: the pairs
// and the segmentation equal a plain reference sweep (std::sort order, a union-find
// without ranks or prefetching, elder minimum per root) on the explicit graph.
NNSCOPE_TEST(join_tree_matches_reference_sweep_large_grids) {
  test::CpuSettingsGuard guard;
  const std::vector<std::vector<std::size_t>> shapes = {{700, 500}, {23, 19, 17, 21}};
  for (std::size_t s = 0; s < shapes.size(); ++s) {
    const std::vector<std::size_t>& dims = shapes[s];
    const std::size_t n = GridShape{dims}.vertices();
    std::vector<double> f = random_values(n, s == 0 ? 0 : 40, 77 + s);  // s = 1: ties on 40 levels
    for (Neighborhood nb : {Neighborhood::Axis, Neighborhood::Freudenthal}) {
      const AdjGraph g = grid_graph(dims, nb);
      const std::vector<std::int32_t> order = test::vertex_order<std::int32_t>(f);
      std::vector<std::int32_t> rank(n), parent(n, -1), elder(n, -1), label(n);
      for (std::size_t i = 0; i < n; ++i) rank[order[i]] = std::int32_t(i);
      auto find = [&](std::int32_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
      };
      std::set<std::pair<std::int32_t, std::int32_t>> want;  // (birth, death) vertices
      for (std::int32_t v : order) {
        parent[v] = v;
        elder[v] = v;
        bool joined = false;  // v already belongs to an earlier component
        for (int u : g.adj[v]) {
          if (rank[u] > rank[v]) continue;
          const std::int32_t a = find(v), b = find(std::int32_t(u));
          if (a == b) continue;
          const bool a_elder = rank[elder[a]] < rank[elder[b]];
          if (joined) want.insert({a_elder ? elder[b] : elder[a], v});  // a second component: a merge at v
          joined = true;
          parent[b] = a;
          elder[a] = a_elder ? elder[a] : elder[b];
        }
        label[v] = elder[find(v)];
      }
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const MergeTree t = merge_tree(GridShape{dims}, nb, f.data(), n, raw_opts(TreeKind::Join));
        std::set<std::pair<std::int32_t, std::int32_t>> got;
        for (const MergePair& p : t.pairs) got.insert({std::int32_t(p.birth), std::int32_t(p.death)});
        EXPECT(got == want);
        EXPECT_EQ(t.pairs.size(), want.size());
        bool same = true;
        for (std::size_t v = 0; v < n; ++v) same &= t.branches[t.segmentation[v]].extremum == label[v];
        EXPECT(same);
      }
    }
  }
}

// Default trees drop exactly the zero-persistence pairs, merging their branches upward.
NNSCOPE_TEST(zero_persistence_pairs_dropped_consistently) {
  int dropped = 0;
  for (std::uint64_t seed = 0; seed < 150; ++seed) {
    const std::vector<std::size_t> dims = random_dims(seed + 7, 150);
    const std::size_t n = GridShape{dims}.vertices();
    const std::vector<double> f = random_values(n, 2, seed + 77);
    for (Neighborhood nb : kAllNeighborhoods) {
      const MergeTree raw = merge_tree(GridShape{dims}, nb, f.data(), n, raw_opts(TreeKind::Join));
      const MergeTree t = merge_tree(GridShape{dims}, nb, f.data(), n);
      std::vector<MergePair> want;
      for (const MergePair& p : raw.pairs)
        if (p.persistence > 0) want.push_back(p);
      dropped += int(raw.pairs.size() - want.size());
      EXPECT_EQ(t.pairs.size(), want.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(t.pairs[i].birth, want[i].birth);
        EXPECT_EQ(t.pairs[i].death, want[i].death);
        EXPECT_EQ(t.extrema[t.pairs[i].branch], want[i].birth);
      }
      EXPECT_EQ(t.extrema.size(), t.pairs.size() + t.essential.size());
      for (std::size_t v = 0; v < n; ++v) {  // nearest ancestor with positive persistence
        std::int32_t b = raw.segmentation[v];
        while (raw.branches[b].parent >= 0 && !(raw.branches[b].death_value - raw.branches[b].birth_value > 0))
          b = raw.branches[b].parent;
        EXPECT_EQ(t.extrema[t.segmentation[v]], raw.branches[b].extremum);
      }
    }
  }
  EXPECT(dropped > 0);
}

NNSCOPE_TEST(split_tree_is_join_tree_of_negated_reversed_field) {
  for (std::uint64_t seed = 0; seed < 120; ++seed) {
    const std::vector<std::size_t> dims = random_dims(seed + 31, 200);
    const std::size_t n = GridShape{dims}.vertices();
    const std::vector<double> f = random_values(n, seed % 2 ? 3 : 0, seed + 5);
    std::vector<double> g(n);
    for (std::size_t j = 0; j < n; ++j) g[j] = -f[n - 1 - j];
    const auto rv = [&](std::int64_t v) { return std::int64_t(n) - 1 - v; };
    for (Neighborhood nb : kAllNeighborhoods)
      for (bool keep : {false, true}) {
        MergeTreeOptions so, jo;
        so.kind = TreeKind::Split;
        so.keep_zero_persistence = jo.keep_zero_persistence = keep;
        const MergeTree s = merge_tree(GridShape{dims}, nb, f.data(), n, so);
        const MergeTree j = merge_tree(GridShape{dims}, nb, g.data(), n, jo);
        EXPECT_EQ(s.pairs.size(), j.pairs.size());
        for (std::size_t i = 0; i < s.pairs.size(); ++i) {
          EXPECT_EQ(s.pairs[i].birth, rv(j.pairs[i].birth));
          EXPECT_EQ(s.pairs[i].death, rv(j.pairs[i].death));
          EXPECT_EQ(s.pairs[i].birth_value, -j.pairs[i].birth_value);
          EXPECT_EQ(s.pairs[i].persistence, j.pairs[i].persistence);
        }
        for (std::size_t v = 0; v < n; ++v) EXPECT_EQ(s.segmentation[v], j.segmentation[rv(v)]);
        EXPECT_EQ(s.essential[0].birth, rv(j.essential[0].birth));
        EXPECT_EQ(s.essential[0].last, rv(j.essential[0].last));
        EXPECT_EQ(s.max_value, -j.min_value);
        EXPECT(std::isinf(s.branches[0].death_value) && s.branches[0].death_value < 0);
      }
  }
}

// ---------------------------------------------------------------- closed forms
NNSCOPE_TEST(quadratic_bowl_has_one_minimum) {
  for (const std::vector<std::size_t>& dims : {std::vector<std::size_t>{41, 41}, std::vector<std::size_t>{17, 19, 13},
                                               std::vector<std::size_t>{9, 8, 7, 9}}) {
    const std::size_t n = GridShape{dims}.vertices(), k = dims.size();
    std::vector<double> f(n);
    double mx = -1;
    for (std::size_t v = 0; v < n; ++v) {
      std::size_t rem = v;
      double s = 0;
      for (std::size_t i = k; i-- > 0;) {
        const double x = double(rem % dims[i]) - 0.4 * double(dims[i]);
        rem /= dims[i];
        s += (1.0 + double(i)) * x * x;
      }
      f[v] = 0.5 * s;
      mx = std::max(mx, f[v]);
    }
    for (Neighborhood nb : kAllNeighborhoods) {
      const MergeTree t = merge_tree(GridShape{dims}, nb, f.data(), n);
      const TopologyMetrics m = metrics(t);
      EXPECT_EQ(m.minima, std::size_t(1));
      EXPECT_EQ(m.saddles, std::size_t(0));
      EXPECT_EQ(m.persistence.count, std::size_t(0));
      EXPECT_EQ(m.persistence.average, 0.0);
      EXPECT_EQ(m.essential_persistence, mx - t.min_value);
      EXPECT_EQ(m.persistence_with_essential.average, mx - t.min_value);
      EXPECT_EQ(t.branches[0].size, std::int64_t(n));
      EXPECT_EQ(smad(t), 0.0);
      EXPECT_EQ(t.nodes.size(), std::size_t(2));  // minimum and the root (global max)
      EXPECT_EQ(t.arcs.size(), std::size_t(1));
    }
  }
}

NNSCOPE_TEST(separated_gaussian_wells) {
  // m wells, σ = 3, centres ≥ 15 apart on a 64×64 grid (tails stay above underflow).
  const std::size_t N = 64;
  const double cx[] = {10, 30, 52, 12, 33, 54, 9, 31, 50}, cy[] = {11, 9, 12, 31, 33, 30, 53, 51, 54};
  const double depth[] = {1.0, 1.3, 0.8, 1.7, 1.1, 0.9, 1.5, 1.25, 0.7};
  for (std::size_t m = 1; m <= 9; ++m) {
    std::vector<double> f(N * N);
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t j = 0; j < N; ++j) {
        double s = 0;
        for (std::size_t w = 0; w < m; ++w) {
          const double dx = double(i) - cx[w], dy = double(j) - cy[w];
          s -= depth[w] * std::exp(-(dx * dx + dy * dy) / 18.0);
        }
        f[i * N + j] = s;
      }
    for (Neighborhood nb : kAllNeighborhoods) {
      const MergeTree t = merge_tree(GridShape{{N, N}}, nb, f.data(), f.size());
      const TopologyMetrics mt = metrics(t);
      EXPECT_EQ(mt.minima, m);
      EXPECT_EQ(mt.saddles, m - 1);
      EXPECT_EQ(mt.saddles_with_multiplicity, m - 1);
      std::set<std::int64_t> centres, found(t.extrema.begin(), t.extrema.end());
      for (std::size_t w = 0; w < m; ++w) centres.insert(std::int64_t(cx[w]) * std::int64_t(N) + std::int64_t(cy[w]));
      EXPECT(centres == found);
      // The deepest well is the essential class; every pair's persistence is below its depth.
      EXPECT_EQ(t.extrema[0], std::int64_t(cx[std::max_element(depth, depth + m) - depth]) * std::int64_t(N) +
                                  std::int64_t(cy[std::max_element(depth, depth + m) - depth]));
      for (const MergePair& p : t.pairs) EXPECT(p.persistence > 0.5 && p.persistence < 1.8);
    }
  }
}

NNSCOPE_TEST(plateau_creates_no_spurious_minimum) {
  // A bowl with a flat disc at the bottom, and a flat terrace ring higher up.
  const std::size_t N = 40;
  std::vector<double> f(N * N);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      const double r2 = (double(i) - 19.3) * (double(i) - 19.3) + (double(j) - 20.6) * (double(j) - 20.6);
      double v = std::max(r2, 40.0);
      if (v > 150 && v < 250) v = 150;
      f[i * N + j] = v;
    }
  for (Neighborhood nb : kAllNeighborhoods) {
    const MergeTree raw = merge_tree(GridShape{{N, N}}, nb, f.data(), f.size(), raw_opts(TreeKind::Join));
    const MergeTree t = merge_tree(GridShape{{N, N}}, nb, f.data(), f.size());
    for (const MergePair& p : raw.pairs) EXPECT_EQ(p.persistence, 0.0);
    EXPECT_EQ(t.extrema.size(), std::size_t(1));
    EXPECT_EQ(t.saddles.size(), std::size_t(0));
    EXPECT_EQ(t.branches[0].size, std::int64_t(N * N));
    EXPECT_EQ(t.branches[0].birth_value, 40.0);
  }
  // The Axis stencil on a disc does produce zero-persistence index minima when kept.
  const MergeTree raw = merge_tree(GridShape{{N, N}}, Neighborhood::Axis, f.data(), f.size(), raw_opts(TreeKind::Join));
  EXPECT(raw.extrema.size() > 1);
}

// ---------------------------------------------------------------- simplification
NNSCOPE_TEST(simplification_removes_exactly_pairs_below_epsilon) {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    const std::vector<std::size_t> dims{30 + seed % 7, 25};
    const std::size_t n = dims[0] * dims[1];
    const std::vector<double> f = random_values(n, seed % 2 ? 0 : 50, seed + 300);
    const MergeTree t = merge_tree(GridShape{dims}, kAllNeighborhoods[seed % 3], f.data(), n);
    std::vector<double> ps;
    for (const MergePair& p : t.pairs) ps.push_back(p.persistence);
    std::sort(ps.begin(), ps.end());
    const double eps = ps[ps.size() / 2];
    for (bool relative : {false, true}) {
      SimplifyOptions so;
      so.relative = relative;
      so.epsilon = relative ? eps / (t.max_value - t.min_value) : eps;
      const double thr = relative ? so.epsilon * (t.max_value - t.min_value) : eps;
      const MergeTree s = simplify(t, so);
      std::vector<const MergePair*> want;
      for (const MergePair& p : t.pairs)
        if (!(p.persistence < thr)) want.push_back(&p);
      EXPECT_EQ(s.pairs.size(), want.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(s.pairs[i].birth, want[i]->birth);
        EXPECT_EQ(s.pairs[i].death, want[i]->death);
        EXPECT(s.pairs[i].persistence >= thr);
      }
      EXPECT_EQ(s.extrema.size(), want.size() + 1);
      std::int64_t total = 0;
      for (const Branch& b : s.branches) total += b.size;
      EXPECT_EQ(total, std::int64_t(n));
      for (std::size_t v = 0; v < n; ++v) {  // removed branches merge into their killer
        std::int32_t b = t.segmentation[v];
        while (t.branches[b].parent >= 0 && t.branches[b].death_value - t.branches[b].birth_value < thr)
          b = t.branches[b].parent;
        EXPECT_EQ(s.extrema[s.segmentation[v]], t.branches[b].extremum);
      }
      EXPECT_EQ(s.arcs.size() + s.roots.size(), s.nodes.size());
    }
    const MergeTree same = simplify(t, SimplifyOptions{});
    EXPECT_EQ(same.pairs.size(), t.pairs.size());
    EXPECT(same.segmentation == t.segmentation);
    SimplifyOptions all;
    all.epsilon = 1e300;
    const MergeTree one = simplify(t, all);
    EXPECT_EQ(one.extrema.size(), std::size_t(1));
    EXPECT_EQ(one.saddles.size(), std::size_t(0));
    EXPECT_EQ(one.arcs.size(), std::size_t(1));
  }
}

// ---------------------------------------------------------------- metrics
NNSCOPE_TEST(metrics_on_hand_computed_path) {
  // Path 0-1-…-6 with f = 3 0 2 1 4 -1 5: minima 5, 1, 3; saddles 2 (kills 3, p = 1)
  // and 4 (kills 1, p = 4); essential 5 → 6, p = 6.
  const std::vector<double> f{3, 0, 2, 1, 4, -1, 5};
  const MergeTree t = merge_tree(GridShape{{7}}, Neighborhood::Axis, f.data(), 7);
  EXPECT(t.extrema == (std::vector<std::int64_t>{5, 1, 3}));
  EXPECT(t.saddles == (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(t.pairs.size(), std::size_t(2));
  EXPECT_EQ(t.pairs[0].birth, 3);
  EXPECT_EQ(t.pairs[0].death, 2);
  EXPECT_EQ(t.pairs[1].birth, 1);
  EXPECT_EQ(t.pairs[1].death, 4);
  EXPECT(t.segmentation == (std::vector<std::int32_t>{1, 1, 1, 2, 0, 0, 0}));
  EXPECT(basin_volumes(t) == (std::vector<std::int64_t>{3, 3, 1}));
  EXPECT_EQ(t.essential[0].last, 6);
  std::set<std::pair<std::int64_t, std::int64_t>> arcs;
  for (const TreeArc& a : t.arcs) arcs.insert({a.child_vertex, a.parent_vertex});
  EXPECT(arcs == (std::set<std::pair<std::int64_t, std::int64_t>>{{5, 4}, {4, 6}, {1, 2}, {2, 4}, {3, 2}}));
  const TopologyMetrics m = metrics(t);
  EXPECT_EQ(m.minima, std::size_t(3));
  EXPECT_EQ(m.saddles, std::size_t(2));
  EXPECT_EQ(m.persistence.count, std::size_t(2));
  EXPECT_EQ(m.persistence.total, 5.0);
  EXPECT_EQ(m.persistence.average, 2.5);
  EXPECT_EQ(m.persistence.maximum, 4.0);
  EXPECT_EQ(m.persistence_with_essential.count, std::size_t(3));
  EXPECT_NEAR(m.persistence_with_essential.average, 11.0 / 3.0, 1e-15);
  EXPECT_EQ(m.persistence_with_essential.maximum, 6.0);
  EXPECT_EQ(m.essential_persistence, 6.0);
  EXPECT_NEAR(m.entropy, -(0.2 * std::log(0.2) + 0.8 * std::log(0.8)), 1e-15);
  EXPECT_EQ(m.range, 6.0);
  // SMAD over the leaf arcs 5→4 (5), 1→2 (2), 3→2 (1).
  EXPECT_NEAR(smad(t), 8.0 / 3.0, 1e-15);
  EXPECT_NEAR(smad(t, {true, false}), 4.0 / 9.0, 1e-15);
  EXPECT_NEAR(smad(t, {false, true}), 22.0 / 21.0, 1e-15);
  // Simplified at ε = 1.5: pair (3, 2) goes, branch 2 merges into branch 1.
  SimplifyOptions so;
  so.epsilon = 1.5;
  const MergeTree s = simplify(t, so);
  EXPECT(s.extrema == (std::vector<std::int64_t>{5, 1}));
  EXPECT(s.saddles == (std::vector<std::int64_t>{4}));
  EXPECT(s.segmentation == (std::vector<std::int32_t>{1, 1, 1, 1, 0, 0, 0}));
  EXPECT_NEAR(smad(s), 4.5, 1e-15);
  so.epsilon = 1.0;  // p = 1 is not below 1: kept
  EXPECT_EQ(simplify(t, so).pairs.size(), std::size_t(2));
  so.epsilon = 0.2;
  so.relative = true;  // 0.2·6 = 1.2
  EXPECT_EQ(simplify(t, so).pairs.size(), std::size_t(1));
  EXPECT_EQ(persistence_entropy({}), 0.0);
  EXPECT_EQ(persistence_entropy({0.0, 0.0}), 0.0);
  EXPECT_NEAR(persistence_entropy({1, 1, 1, 1}), std::log(4.0), 1e-15);
}

NNSCOPE_TEST(multi_merge_multiplicity) {
  // A star: centre 0 (value 5) joined to leaves 1..4 (values 1..4): one 4-fold merge.
  CsrGraph g;
  g.vertices = 5;
  g.offsets = {0, 4, 5, 6, 7, 8};
  g.adj = {1, 2, 3, 4, 0, 0, 0, 0};
  const std::vector<double> f{5, 1, 2, 3, 4};
  const MergeTree t = merge_tree(g, f.data(), 5);
  EXPECT(t.saddles == (std::vector<std::int64_t>{0}));
  EXPECT(t.saddle_multiplicity == (std::vector<std::int32_t>{3}));
  EXPECT_EQ(t.pairs.size(), std::size_t(3));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t.pairs[i].birth, std::int64_t(i + 2));
    EXPECT_EQ(t.pairs[i].death, 0);
    EXPECT_EQ(t.pairs[i].into, 0);
  }
  const TopologyMetrics m = metrics(t);
  EXPECT_EQ(m.saddles, std::size_t(1));
  EXPECT_EQ(m.saddles_with_multiplicity, std::size_t(3));
  EXPECT_EQ(t.roots.size(), std::size_t(1));
  EXPECT_EQ(t.nodes[t.roots[0]].vertex, 0);  // the global max is the saddle itself
  EXPECT_EQ(t.arcs.size(), std::size_t(4));
}

NNSCOPE_TEST(disconnected_graph_has_one_essential_class_per_component) {
  CsrGraph g;  // 0-1-2 and 3-4, 5 isolated
  g.vertices = 6;
  g.offsets = {0, 1, 3, 4, 5, 6, 6};
  g.adj = {1, 0, 2, 1, 4, 3};
  const std::vector<double> f{2, 1, 3, 0, 7, 5};
  const MergeTree t = merge_tree(g, f.data(), 6);
  EXPECT_EQ(t.essential.size(), std::size_t(3));
  EXPECT_EQ(t.essential[0].birth, 3);
  EXPECT_EQ(t.essential[0].last, 4);
  EXPECT_EQ(t.essential[0].vertices, 2);
  EXPECT_EQ(t.essential[1].birth, 1);
  EXPECT_EQ(t.essential[1].last, 2);
  EXPECT_EQ(t.essential[2].birth, 5);
  EXPECT_EQ(t.essential[2].last, 5);
  EXPECT_EQ(t.roots.size(), std::size_t(3));
  EXPECT_EQ(metrics(t).essential_persistence, 7.0 + 2.0 + 0.0);
  const LandscapeProfile p = landscape_profile(t, f.data(), 6);
  EXPECT_EQ(p.width, 6.0);
}

NNSCOPE_TEST(asymmetric_csr_is_symmetrised) {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    const std::size_t n = 5 + seed % 40;
    const AdjGraph g = random_graph(n, 3, seed + 900);
    const std::vector<double> f = random_values(n, 3, seed);
    AdjGraph half = g;  // keep each edge in one direction only, some duplicated
    for (std::size_t v = 0; v < n; ++v) {
      half.adj[v].clear();
      for (int u : g.adj[v])
        if ((u + int(v) + int(seed)) % 2 ? u > int(v) : u < int(v)) half.adj[v].push_back(u);
      if (!half.adj[v].empty()) half.adj[v].push_back(half.adj[v][0]);
    }
    const MergeTree a = merge_tree(to_csr(g), f.data(), n, raw_opts(TreeKind::Join));
    const MergeTree b = merge_tree(to_csr(half), f.data(), n, raw_opts(TreeKind::Join));
    EXPECT(a.segmentation == b.segmentation);
    EXPECT_EQ(a.pairs.size(), b.pairs.size());
  }
}

NNSCOPE_TEST(signed_zeros_tie_by_index) {
  const std::vector<double> f{0.0, -0.0, 0.0};
  const MergeTree t = merge_tree(GridShape{{3}}, Neighborhood::Axis, f.data(), 3, raw_opts(TreeKind::Join));
  EXPECT(t.extrema == (std::vector<std::int64_t>{0}));
  const std::vector<double> g{-0.0, 1.0, 0.0};  // 0 then 2 are minima; 1 merges them
  const MergeTree u = merge_tree(GridShape{{3}}, Neighborhood::Axis, g.data(), 3, raw_opts(TreeKind::Join));
  EXPECT(u.extrema == (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(u.pairs[0].persistence, 1.0);
}

// ---------------------------------------------------------------- profile
NNSCOPE_TEST(profile_hand_computed_path) {
  const std::vector<double> f{3, 0, 2, 1, 4, -1, 5};
  const MergeTree t = merge_tree(GridShape{{7}}, Neighborhood::Axis, f.data(), 7);
  ProfileOptions o;
  o.levels = 6;
  const LandscapeProfile p = landscape_profile(t, f.data(), 7, o);
  EXPECT_EQ(p.width, 7.0);
  const ProfileBasin& r = p.basins[0];
  EXPECT_EQ(r.samples, 7);
  EXPECT_EQ(r.center, 3.5);
  for (std::size_t j = 0; j <= 6; ++j) {
    EXPECT_EQ(r.y[j], -1.0 + double(j));
    EXPECT_EQ(r.half_width[j], 0.5 * double(j + 1));
  }
  EXPECT_EQ(r.mean_loss, 2.0);
  EXPECT_EQ(p.basins[1].samples, 4);
  EXPECT_EQ(p.basins[1].center, 3.5);
  EXPECT_EQ(p.basins[1].width, 4.0);
  EXPECT_EQ(p.basins[1].mean_loss, 1.5);
  EXPECT_EQ(p.basins[1].y_max, 4.0);
  EXPECT_EQ(p.basins[2].samples, 1);
  EXPECT_EQ(p.basins[2].mean_loss, 1.0);
  EXPECT_EQ(p.basins[2].y_max, 2.0);
  EXPECT_EQ(r.x.size(), std::size_t(14));
  EXPECT_EQ(r.x[6], 3.5 + 3.5);
  EXPECT_EQ(r.x[7], 3.5 - 3.5);
  EXPECT_EQ(r.py[13], -1.0);
}

NNSCOPE_TEST(profile_invariants_random) {
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    const std::vector<std::size_t> dims = random_dims(seed + 3, 300);
    const std::size_t n = GridShape{dims}.vertices();
    const std::vector<double> f = random_values(n, seed % 2 ? 4 : 0, seed + 11);
    const MergeTree t = merge_tree(GridShape{dims}, kAllNeighborhoods[seed % 3], f.data(), n);
    ProfileOptions o;
    o.levels = 1 + seed % 9;
    o.half_width_per_sample = seed % 2 ? 0.5 : 1.0;
    const double hw = o.half_width_per_sample;
    const LandscapeProfile p = landscape_profile(t, f.data(), n, o);
    EXPECT_EQ(p.width, 2 * hw * double(n));
    // Brute-force subtree membership.
    const std::size_t B = t.branches.size();
    auto in_subtree = [&](std::int32_t b, std::int32_t a) {  // is b in a's subtree?
      for (; b >= 0; b = t.branches[b].parent)
        if (b == a) return true;
      return false;
    };
    for (std::size_t b = 0; b < B; ++b) {
      const ProfileBasin& bs = p.basins[b];
      EXPECT_EQ(bs.branch, std::int32_t(b));
      double sum = 0;
      std::int64_t cnt = 0;
      for (std::size_t v = 0; v < n; ++v)
        if (in_subtree(t.segmentation[v], std::int32_t(b))) {
          sum += f[v];
          ++cnt;
        }
      EXPECT_EQ(bs.samples, cnt);
      EXPECT_NEAR(bs.mean_loss, sum / double(cnt), 1e-12);
      for (std::size_t j = 0; j <= o.levels; ++j) {
        std::int64_t c = 0;
        for (std::size_t v = 0; v < n; ++v) c += in_subtree(t.segmentation[v], std::int32_t(b)) && f[v] <= bs.y[j];
        EXPECT_EQ(bs.half_width[j], hw * double(c));
        if (j) {
          EXPECT(bs.y[j] >= bs.y[j - 1]);
          EXPECT(bs.half_width[j] >= bs.half_width[j - 1]);
        }
        EXPECT(bs.half_width[j] <= 0.5 * bs.width);
      }
      EXPECT_EQ(bs.half_width[o.levels], 0.5 * bs.width);
      if (bs.parent < 0) {
        EXPECT_EQ(bs.width, 2 * hw * double(n));
        continue;
      }
      const ProfileBasin& pa = p.basins[bs.parent];
      EXPECT(bs.center - 0.5 * bs.width >= pa.center - 0.5 * pa.width - 1e-9);
      EXPECT(bs.center + 0.5 * bs.width <= pa.center + 0.5 * pa.width + 1e-9);
      EXPECT(bs.y_min >= pa.y_min && bs.y_max <= pa.y_max);
      for (std::size_t c = b + 1; c < B; ++c)  // siblings never overlap
        if (p.basins[c].parent == bs.parent) {
          const ProfileBasin& o2 = p.basins[c];
          const double lo = std::max(bs.center - 0.5 * bs.width, o2.center - 0.5 * o2.width);
          const double hi = std::min(bs.center + 0.5 * bs.width, o2.center + 0.5 * o2.width);
          EXPECT(hi <= lo + 1e-9);
        }
    }
  }
}

// ---------------------------------------------------------------- errors, context
NNSCOPE_TEST(bad_input_codes) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> f{1, 2, nan, 4};
  EXPECT_THROWS_CODE(merge_tree(GridShape{{4}}, Neighborhood::Axis, f.data(), 4), ErrorCode::NonFinite);
  f[2] = -inf;
  EXPECT_THROWS_CODE(merge_tree(GridShape{{2, 2}}, Neighborhood::Full, f.data(), 4), ErrorCode::NonFinite);
  f[2] = 3;
  EXPECT_THROWS_CODE(merge_tree(GridShape{{}}, Neighborhood::Axis, f.data(), 0), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(merge_tree(GridShape{{0, 4}}, Neighborhood::Axis, f.data(), 0), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(merge_tree(GridShape{std::vector<std::size_t>(9, 1)}, Neighborhood::Axis, f.data(), 1),
                     ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(merge_tree(GridShape{{5}}, Neighborhood::Axis, f.data(), 4), ErrorCode::Shape);
  EXPECT_THROWS_CODE(merge_tree(GridShape{{1u << 16, 1u << 16}}, Neighborhood::Axis, f.data(), 4),
                     ErrorCode::TooLarge);
  EXPECT_THROWS_CODE(merge_tree(GridShape{{4}}, Neighborhood::Axis, nullptr, 4), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(sweep_order(f.data(), 0, false), ErrorCode::InvalidArgument);
  CsrGraph g;
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 0), ErrorCode::InvalidArgument);
  g.vertices = 4;
  g.offsets = {0, 1, 2, 3};
  g.adj = {1, 0, 3};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 4), ErrorCode::InvalidArgument);  // offsets too short
  g.offsets = {0, 1, 2, 3, 4};
  g.adj = {1, 0, 3, 9};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 4), ErrorCode::InvalidArgument);  // out of range
  g.adj = {1, 0, 3, -1};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 4), ErrorCode::InvalidArgument);
  g.offsets = {0, 2, 1, 3, 4};
  g.adj = {1, 0, 3, 2};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 4), ErrorCode::InvalidArgument);  // decreasing
  g.offsets = {0, 1, 2, 3, 5};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 4), ErrorCode::InvalidArgument);  // not ending at adj.size()
  g.offsets = {0, 1, 2, 3, 4};
  EXPECT_THROWS_CODE(merge_tree(g, f.data(), 3), ErrorCode::Shape);
  const MergeTree t = merge_tree(g, f.data(), 4);
  EXPECT_THROWS_CODE(simplify(t, SimplifyOptions{-1.0, false}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(simplify(t, SimplifyOptions{nan, false}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(landscape_profile(t, f.data(), 3), ErrorCode::Shape);
  ProfileOptions po;
  po.levels = 0;
  EXPECT_THROWS_CODE(landscape_profile(t, f.data(), 4, po), ErrorCode::InvalidArgument);
  po.levels = 4;
  po.half_width_per_sample = 0;
  EXPECT_THROWS_CODE(landscape_profile(t, f.data(), 4, po), ErrorCode::InvalidArgument);
  MergeTreeOptions so;
  so.kind = TreeKind::Split;
  const MergeTree s = merge_tree(g, f.data(), 4, so);
  EXPECT_THROWS_CODE(landscape_profile(s, f.data(), 4), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(persistence_entropy({1.0, -1.0}), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(cancellation_progress_and_thread_determinism) {
  const std::size_t N = 300;
  const std::vector<double> f = random_values(N * N, 0, 42);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  EXPECT_THROWS_CODE(merge_tree(GridShape{{N, N}}, Neighborhood::Axis, f.data(), f.size(), {}, ctx),
                     ErrorCode::Cancelled);
  OpContext pc;
  double last_done = -1, last_total = 0;
  int calls = 0;
  pc.progress = [&](double d, double t) {
    EXPECT(d >= last_done);
    last_done = d;
    last_total = t;
    ++calls;
  };
  const int threads = num_threads();
  set_num_threads(1);
  const MergeTree a = merge_tree(GridShape{{N, N}}, Neighborhood::Freudenthal, f.data(), f.size(), {}, pc);
  set_num_threads(3);
  const MergeTree b = merge_tree(GridShape{{N, N}}, Neighborhood::Freudenthal, f.data(), f.size());
  set_num_threads(threads);
  EXPECT(calls >= 2);
  EXPECT_EQ(last_done, double(N * N));
  EXPECT_EQ(last_total, double(N * N));
  EXPECT(a.segmentation == b.segmentation);
  EXPECT_EQ(a.pairs.size(), b.pairs.size());
  // A random field has many minima; every finite pair's birth precedes its death.
  EXPECT(a.extrema.size() > N * N / 20);
  for (const MergePair& p : a.pairs) EXPECT(vertex_less(p.birth_value, p.birth, p.death_value, p.death));
}
