// Tests of the topology family's graph-side core: steepest-descent basins and 0-dim
// persistence (topology/basins.h) on grids and CSR graphs, the brute-force kNN graph
// (topology/knn.h) and the diagram distances (topology/diagram.h).
//
// Oracles: the components of every sublevel set of the (value, index) filtration
// found by BFS over an adjacency built by brute force from coordinates (hundreds of
// seeded grids and graphs, with plateaus: integer values from a tiny range); a
// vertex-sorted union-find sweep for larger grids; closed forms (1-D sequences,
// bowls, constant fields); a naive O(n²) kNN with full sorting; all partial
// matchings for diagrams of ≤ 6 points; closed forms for one- and two-point diagrams;
// std::stable_sort for the value sort (topology/keysort.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/cpu.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "cpu_settings.h"
#include "harness.h"
#include "topology/basins.h"
#include "topology/diagram.h"
#include "topology/graph.h"
#include "topology/keysort.h"
#include "topology/knn.h"
#include "topology_reference.h"

using namespace nnscope;
using namespace nnscope::topology;

namespace {

using test::expect_same;
using test::kAllNeighborhoods;
using test::random_values;

const double kInf = std::numeric_limits<double>::infinity();
using Adj = std::vector<std::vector<std::int64_t>>;

// ---------------------------------------------------------------- references
// The grid graph from each vertex's decoded coordinates and every offset in
// {-1, 0, 1}^k, filtered by the neighbourhood's rule (axis: one nonzero component;
// Freudenthal: no mixed signs; full: any), independent of the library's stencils.
Adj grid_adjacency(const GridShape& g, Neighborhood nb) {
  const std::size_t n = g.vertices(), k = g.dims.size();
  std::size_t offsets = 1;
  for (std::size_t a = 0; a < k; ++a) offsets *= 3;
  Adj adj(n);
  std::vector<long> coord(k), d(k);
  for (std::size_t u = 0; u < n; ++u) {
    std::size_t r = u;
    for (std::size_t a = k; a-- > 0;) {
      coord[a] = long(r % g.dims[a]);
      r /= g.dims[a];
    }
    for (std::size_t o = 0; o < offsets; ++o) {  // neighbours in increasing index order
      std::size_t q = o;
      for (std::size_t a = k; a-- > 0;) {
        d[a] = long(q % 3) - 1;
        q /= 3;
      }
      bool ok = true;
      int pos = 0, neg = 0, nz = 0;
      std::size_t v = 0;
      for (std::size_t a = 0; a < k; ++a) {
        const long c = coord[a] + d[a];
        if (c < 0 || c >= long(g.dims[a])) ok = false;
        v = v * g.dims[a] + std::size_t(c < 0 ? 0 : c);
        nz += d[a] != 0;
        pos += d[a] > 0;
        neg += d[a] < 0;
      }
      if (!ok || nz == 0) continue;
      if (nb == Neighborhood::Axis && nz != 1) continue;
      if (nb == Neighborhood::Freudenthal && pos && neg) continue;
      adj[u].push_back(std::int64_t(v));
    }
  }
  return adj;
}

Adj csr_adjacency(const CsrGraph& g) {  // undirected union of the entries, no self loops
  Adj adj(g.vertices);
  for (std::size_t v = 0; v < g.vertices; ++v)
    for (std::int64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
      const std::int64_t u = g.adj[e];
      if (u == std::int64_t(v)) continue;
      adj[v].push_back(u);
      adj[u].push_back(std::int64_t(v));
    }
  return adj;
}

// Persistence by brute force: the components of every sublevel set S_t (the first
// t+1 vertices in (value, index) order) by BFS; a component is named by its oldest
// vertex. Between S_{t-1} and S_t the names that vanish die at vertex t.
BasinResult brute_persistence(const std::vector<double>& f, const Adj& adj) {
  const std::size_t n = f.size();
  const std::vector<std::int64_t> order = test::vertex_order(f);
  std::vector<std::size_t> rank(n);
  for (std::size_t t = 0; t < n; ++t) rank[order[t]] = t;
  BasinResult r;
  std::set<std::int64_t> alive_prev;
  for (std::size_t t = 0; t < n; ++t) {
    std::vector<char> seen(n, 0);
    std::set<std::int64_t> alive;
    for (std::size_t s = 0; s <= t; ++s) {
      const std::int64_t start = order[s];
      if (seen[start]) continue;
      // BFS within S_t; start is the oldest of its component (visited in rank order)
      std::queue<std::int64_t> q;
      q.push(start);
      seen[start] = 1;
      while (!q.empty()) {
        const std::int64_t x = q.front();
        q.pop();
        for (std::int64_t y : adj[x])
          if (!seen[y] && rank[y] <= t) {
            seen[y] = 1;
            q.push(y);
          }
      }
      alive.insert(start);
    }
    const std::int64_t v = order[t];
    for (std::int64_t m : alive_prev)
      if (!alive.count(m)) r.pairs.push_back({m, v, f[m], f[v]});
    alive_prev = alive;
  }
  for (std::int64_t m : alive_prev) r.essential.push_back({m, f[m]});
  test::sort_canonical(r);
  // basins: steepest-descent pointers on the explicit adjacency, followed to the end
  std::vector<std::int64_t> ptr(n);
  for (std::size_t v = 0; v < n; ++v) {
    std::int64_t b = std::int64_t(v);
    for (std::int64_t u : adj[v])
      if (vertex_less(f[u], u, f[b], b)) b = u;
    ptr[v] = b;
  }
  r.basin.resize(n);
  for (std::size_t v = 0; v < n; ++v) {
    std::int64_t u = std::int64_t(v);
    while (ptr[u] != u) u = ptr[u];
    r.basin[v] = u;
  }
  return r;
}

// The standard vertex-sorted union-find sweep with the elder rule (for larger inputs).
BasinResult sweep_persistence(const std::vector<double>& f, const Adj& adj) {
  const std::size_t n = f.size();
  const std::vector<std::int64_t> order = test::vertex_order(f);
  std::vector<std::int64_t> parent(n, -1), oldest(n, -1);
  auto find = [&](std::int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  BasinResult r;
  for (std::int64_t v : order) {
    parent[v] = v;
    oldest[v] = v;
    for (std::int64_t u : adj[v]) {
      if (parent[u] < 0) continue;
      std::int64_t a = find(u), b = find(v);
      if (a == b) continue;
      const std::int64_t ma = oldest[a], mb = oldest[b];
      const bool a_old = vertex_less(f[ma], ma, f[mb], mb);
      const std::int64_t young = a_old ? mb : ma;
      if (young != v) r.pairs.push_back({young, v, f[young], f[v]});
      parent[a_old ? b : a] = a_old ? a : b;
    }
  }
  for (std::size_t v = 0; v < n; ++v)
    if (find(std::int64_t(v)) == std::int64_t(v)) r.essential.push_back({oldest[v], f[oldest[v]]});
  test::sort_canonical(r);
  return r;
}

// ---------------------------------------------------------------- kNN references
double canonical_dist2(const double* p, const double* q, std::size_t dim) {
  double s = 0;
  for (std::size_t d = 0; d < dim; ++d) {
    const double delta = p[d] - q[d];
    s = std::fma(delta, delta, s);
  }
  return s;
}

KnnLists naive_knn(const std::vector<double>& x, std::size_t n, std::size_t dim, std::size_t k) {
  KnnLists r;
  r.n = n;
  r.k = k;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, std::int32_t>> all;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) all.push_back({canonical_dist2(&x[i * dim], &x[j * dim], dim), std::int32_t(j)});
    std::sort(all.begin(), all.end());
    for (std::size_t q = 0; q < k; ++q) {
      r.index.push_back(all[q].second);
      r.dist2.push_back(all[q].first);
    }
  }
  return r;
}

// ---------------------------------------------------------------- diagram references
// All partial matchings (unmatched points go to the diagonal): min over them of the
// max (bottleneck) or the sum (W1) of the L∞ costs.
void brute_match(const Diagram& a, const Diagram& b, std::size_t i, std::vector<char>& used, double mx, double sm,
                 double& best_max, double& best_sum) {
  if (i == a.birth.size()) {
    for (std::size_t j = 0; j < b.birth.size(); ++j)
      if (!used[j]) {
        const double c = (b.death[j] - b.birth[j]) / 2;
        mx = std::max(mx, c);
        sm += c;
      }
    best_max = std::min(best_max, mx);
    best_sum = std::min(best_sum, sm);
    return;
  }
  const double diag = (a.death[i] - a.birth[i]) / 2;
  brute_match(a, b, i + 1, used, std::max(mx, diag), sm + diag, best_max, best_sum);
  for (std::size_t j = 0; j < b.birth.size(); ++j) {
    if (used[j]) continue;
    const double c = std::max(std::fabs(a.birth[i] - b.birth[j]), std::fabs(a.death[i] - b.death[j]));
    used[j] = 1;
    brute_match(a, b, i + 1, used, std::max(mx, c), sm + c, best_max, best_sum);
    used[j] = 0;
  }
}

Diagram random_diagram(std::size_t n, std::uint64_t seed, int levels) {
  Rng rng(seed);
  Diagram d;
  for (std::size_t i = 0; i < n; ++i) {
    double b, p;
    if (levels > 0) {
      b = double(rng.below_at(2 * i, std::uint64_t(levels)));
      p = double(rng.below_at(2 * i + 1, std::uint64_t(levels)));
    } else {
      b = rng.gaussian_at(2 * i);
      p = std::fabs(rng.gaussian_at(2 * i + 1));
    }
    d.birth.push_back(b);
    d.death.push_back(b + p);
  }
  return d;
}

}  // namespace

// ================================================================ basins
NNSCOPE_TEST(basins_grid_match_bruteforce) {
  // 1-D … 4-D, all three neighbourhoods, plateaus (2 or 3 levels) and Gaussian values
  int cases = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed)
    for (std::size_t k = 1; k <= 4; ++k) {
      Rng rng(1000 + seed, k);
      GridShape g;
      const std::size_t maxd = k == 1 ? 40 : k == 2 ? 9 : k == 3 ? 4 : 3;
      for (std::size_t a = 0; a < k; ++a) g.dims.push_back(1 + rng.below_at(a, maxd));
      const int levels = seed % 3 == 0 ? 0 : seed % 3 == 1 ? 2 : 3;
      const std::vector<double> f = random_values(g.vertices(), levels, seed * 17 + k);
      for (Neighborhood nb : kAllNeighborhoods) {
        const BasinResult got = basins_grid(f.data(), g, nb);
        expect_same(got, brute_persistence(f, grid_adjacency(g, nb)));
        ++cases;
      }
    }
  EXPECT_EQ(cases, 480);
}

NNSCOPE_TEST(basins_graph_match_bruteforce) {
  // random graphs: disconnected parts, duplicate entries, self loops, one-sided entries
  for (std::uint64_t seed = 0; seed < 250; ++seed) {
    Rng rng(77 + seed);
    const std::size_t n = 1 + rng.below_at(0, 40);
    const std::size_t m = rng.below_at(1, 3 * n + 1);
    std::vector<std::vector<std::int32_t>> lists(n);
    for (std::size_t e = 0; e < m; ++e) {
      const std::int32_t u = std::int32_t(rng.below_at(10 + 2 * e, n)), v = std::int32_t(rng.below_at(11 + 2 * e, n));
      lists[u].push_back(v);
      if (e % 3 != 0) lists[v].push_back(u);  // every third edge is listed on one side only
    }
    CsrGraph g;
    g.vertices = n;
    g.offsets.push_back(0);
    for (auto& l : lists) {
      g.adj.insert(g.adj.end(), l.begin(), l.end());
      g.offsets.push_back(std::int64_t(g.adj.size()));
    }
    const std::vector<double> f = random_values(n, seed % 2 ? 3 : 0, seed);
    expect_same(basins_graph(f.data(), g), brute_persistence(f, csr_adjacency(g)));
  }
}

// basins_grid at 1 and 2 threads (equal, basins included) and against the plain
// vertex-sorted sweep (pairs and essential classes); returns the 1-thread result.
// The caller restores the thread count (test::CpuSettingsGuard).
BasinResult basins_checked_against_sweep(const std::vector<double>& f, const GridShape& g, Neighborhood nb) {
  set_num_threads(1);
  BasinResult one = basins_grid(f.data(), g, nb);
  set_num_threads(2);
  expect_same(basins_grid(f.data(), g, nb), one);
  expect_same(one, sweep_persistence(f, grid_adjacency(g, nb)), false);
  return one;
}

NNSCOPE_TEST(basins_larger_grids_match_sweep) {
  test::CpuSettingsGuard restore;
  struct Case {
    std::vector<std::size_t> dims;
    int levels;
  };
  // The 19⁴ grid (random, degree 8 / 30) spans several row chunks with tiny basins:
  // most basin pairs meet across chunks, where the per-chunk dedupe cannot see them.
  const Case cases[] = {{{61, 73}, 0}, {{61, 73}, 4}, {{13, 11, 17}, 0}, {{7, 6, 5, 8}, 3}, {{2000}, 5},
                        {{19, 19, 19, 19}, 0}, {{19, 19, 19, 19}, 6}};
  for (const Case& c : cases) {
    GridShape g{c.dims};
    const std::vector<double> f = random_values(g.vertices(), c.levels, g.vertices());
    for (Neighborhood nb : kAllNeighborhoods) {
      const BasinResult one = basins_checked_against_sweep(f, g, nb);
      // every pair is born at a basin's minimum; minima = pairs + essential classes
      std::size_t minima = 0;
      for (std::size_t v = 0; v < f.size(); ++v) minima += one.basin[v] == std::int64_t(v);
      EXPECT_EQ(minima, one.pairs.size() + one.essential.size());
      for (const auto& p : one.pairs) {
        EXPECT_EQ(one.basin[p.birth], p.birth);
        EXPECT(p.death_value >= p.birth_value);
      }
    }
  }
}

NNSCOPE_TEST(basins_grid_value_extremes) {
  // Fields that stress the sort by value and the per-chunk bookkeeping, on a grid of
  // several row chunks: signed zeros (equal, so tied by index), values over the whole
  // double range (subnormals to ±DBL_MAX), three levels (heavy ties: one bucket holds
  // a third of the candidates), a constant field with one dip. Against the plain
  // sweep at 1 and 2 threads; values come back with their own sign bits.
  test::CpuSettingsGuard restore;
  const GridShape g{{300, 257}};  // 77,100 vertices, 5 chunks of rows
  const std::size_t n = g.vertices();
  const double specials[] = {-std::numeric_limits<double>::max(), -1e300, -1.0, -5e-324, -0.0, 0.0,
                             5e-324, 2.2e-308, 1e-300, 0.5, 1e300, std::numeric_limits<double>::max()};
  std::vector<std::vector<double>> fields(4, std::vector<double>(n));
  Rng rng(4242);
  for (std::size_t v = 0; v < n; ++v) {
    const std::uint64_t r = rng.below_at(v, 4);
    fields[0][v] = r == 0 ? -0.0 : r == 1 ? 0.0 : r == 2 ? 1.0 : -1.0;
    const double u = rng.uniform_at(n + v) - 0.5;
    fields[1][v] = rng.below_at(2 * n + v, 5) == 0 ? specials[rng.below_at(3 * n + v, 12)]
                                                   : std::ldexp(u, int(rng.below_at(4 * n + v, 2000)) - 1000);
    fields[2][v] = std::floor(3 * rng.uniform_at(5 * n + v));
    fields[3][v] = v == n / 2 ? 6.0 : 7.0;
  }
  for (const auto& f : fields)
    for (Neighborhood nb : kAllNeighborhoods) {
      const BasinResult one = basins_checked_against_sweep(f, g, nb);
      for (const auto& p : one.pairs) {
        EXPECT(std::signbit(p.birth_value) == std::signbit(f[p.birth]));
        EXPECT(std::signbit(p.death_value) == std::signbit(f[p.death]));
      }
    }
}

NNSCOPE_TEST(keysort_orders_like_doubles) {
  // sort_key is monotone and key_value inverts it; KeyBuckets is monotone; the
  // bucket sort radix_sort_run is a stable sort (equal keys keep their order).
  const double xs[] = {-std::numeric_limits<double>::max(), -3.5, -5e-324, -0.0, 0.0, 5e-324, 1.0, 1e300};
  for (std::size_t i = 0; i + 1 < std::size(xs); ++i) {
    EXPECT(sort_key(xs[i]) <= sort_key(xs[i + 1]));
    EXPECT_EQ(sort_key(xs[i]) == sort_key(xs[i + 1]), xs[i] == xs[i + 1]);
    if (xs[i] != 0) EXPECT(key_value(sort_key(xs[i])) == xs[i]);
  }
  EXPECT_EQ(sort_key(-0.0), kZeroKey);
  struct Rec {
    std::uint64_t key;
    std::uint32_t at;
  };
  Rng rng(99);
  for (int trial = 0; trial < 6; ++trial) {
    const std::size_t n = trial < 3 ? 5000 : 40;
    std::vector<Rec> a(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = trial % 3 == 0 ? rng.gaussian_at(i)
                       : trial % 3 == 1 ? std::floor(4 * rng.uniform_at(i))  // heavy ties
                                        : std::ldexp(rng.uniform_at(i), int(rng.below_at(n + i, 80)) - 40);
      a[i] = {sort_key(x), std::uint32_t(i)};
    }
    std::vector<Rec> want = a;
    std::stable_sort(want.begin(), want.end(), [](const Rec& x, const Rec& y) { return x.key < y.key; });
    std::vector<Rec> tmp;
    radix_sort_run(a.data(), n, tmp);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(a[i].key, want[i].key);
      EXPECT_EQ(a[i].at, want[i].at);
    }
    // a sample from the middle of the range: keys outside it clamp to the end buckets
    std::vector<std::uint64_t> sample;
    for (std::size_t i = n / 4; i < 3 * n / 4; i += 7) sample.push_back(want[i].key);
    const KeyBuckets bucket(sample);
    for (std::size_t i = 0; i + 1 < n; ++i) EXPECT(bucket(want[i].key) <= bucket(want[i + 1].key));
    EXPECT_EQ(bucket(0), std::size_t(0));
    EXPECT_EQ(bucket(~std::uint64_t(0)), KeyBuckets::kBuckets - 1);
    if (trial % 3 != 1) EXPECT(bucket(want.back().key) > bucket(want.front().key));  // the buckets spread
  }
}

NNSCOPE_TEST(basins_closed_forms) {
  {  // 1-D: minima 1@1, 1@3, 2@6; saddles 4@2 (vertex 3 is younger), 9@5
    const std::vector<double> f = {3, 1, 4, 1, 5, 9, 2, 6};
    const BasinResult r = basins_grid(f.data(), GridShape{{8}}, Neighborhood::Axis);
    EXPECT_EQ(r.pairs.size(), std::size_t(2));
    EXPECT_EQ(r.pairs[0].birth, 3);
    EXPECT_EQ(r.pairs[0].death, 2);
    EXPECT_EQ(r.pairs[0].death_value, 4.0);
    EXPECT_EQ(r.pairs[1].birth, 6);
    EXPECT_EQ(r.pairs[1].death, 5);
    EXPECT_EQ(r.pairs[1].birth_value, 2.0);
    EXPECT_EQ(r.pairs[1].death_value, 9.0);
    EXPECT_EQ(r.essential.size(), std::size_t(1));
    EXPECT_EQ(r.essential[0].birth, 1);
    const std::vector<std::int64_t> basin = {1, 1, 1, 3, 3, 6, 6, 6};
    EXPECT(r.basin == basin);
  }
  {  // a quadratic bowl: one minimum, no pairs, every vertex in its basin
    GridShape g{{31, 29}};
    std::vector<double> f(g.vertices());
    for (std::size_t i = 0; i < 31; ++i)
      for (std::size_t j = 0; j < 29; ++j) f[i * 29 + j] = 0.5 * (double(i) - 12.3) * (double(i) - 12.3) +
                                                            2.0 * (double(j) - 20.1) * (double(j) - 20.1);
    for (Neighborhood nb : kAllNeighborhoods) {
      const BasinResult r = basins_grid(f.data(), g, nb);
      EXPECT(r.pairs.empty());
      EXPECT_EQ(r.essential.size(), std::size_t(1));
      EXPECT_EQ(r.essential[0].birth, std::int64_t(12 * 29 + 20));
      for (std::int64_t b : r.basin) EXPECT_EQ(b, std::int64_t(12 * 29 + 20));
    }
  }
  {  // a constant field is one plateau: vertex 0 is the only minimum
    GridShape g{{5, 4, 3}};
    std::vector<double> f(g.vertices(), 2.5);
    for (Neighborhood nb : kAllNeighborhoods) {
      const BasinResult r = basins_grid(f.data(), g, nb);
      EXPECT(r.pairs.empty());
      EXPECT_EQ(r.essential.size(), std::size_t(1));
      EXPECT_EQ(r.essential[0].birth, 0);
      for (std::int64_t b : r.basin) EXPECT_EQ(b, 0);
    }
  }
  {  // two wells in 2-D separated by a ridge: pair (shallow well, lowest ridge vertex)
    GridShape g{{3, 7}};
    std::vector<double> f = {5, 5, 5, 5, 5, 5, 5,  //
                             5, 0, 5, 3, 5, 1, 5,  //
                             5, 5, 5, 5, 5, 5, 5};
    const BasinResult r = basins_grid(f.data(), g, Neighborhood::Axis);
    // four minima in (value, index) order: 0@8, 3@10, 1@12 and 5@0 (the plateau's
    // first vertex): three pairs, the essential class at vertex 8
    const BasinResult want = brute_persistence(f, grid_adjacency(g, Neighborhood::Axis));
    expect_same(r, want);
    EXPECT_EQ(r.pairs.size(), std::size_t(3));
    // all die at value 5, in vertex order: the plateau minimum 0 at its neighbour 1
    // (which also touches well 8), then 10 at 3 and 12 at 5 (first row)
    EXPECT_EQ(r.pairs[0].birth, 0);
    EXPECT_EQ(r.pairs[0].death, 1);
    EXPECT_EQ(r.pairs[1].birth, 10);
    EXPECT_EQ(r.pairs[1].death, 3);
    EXPECT_EQ(r.pairs[2].birth, 12);
    EXPECT_EQ(r.pairs[2].death, 5);
    EXPECT_EQ(r.essential[0].birth, 8);
  }
}

NNSCOPE_TEST(basins_pairs_from_edges_contract) {
  // any order and duplicates give the same pairs; bad labels are refused
  const std::vector<double> f = {0, 3, 1, 2, 0.5};
  std::vector<std::int64_t> basin = {0, 0, 2, 2, 4};
  BasinResult r1, r2;
  pairs_from_basin_edges(f.data(), 5, basin, {{0, 2, 1}, {2, 4, 3}, {2, 4, 3}}, r1);
  pairs_from_basin_edges(f.data(), 5, basin, {{4, 2, 3}, {2, 0, 1}}, r2);
  expect_same(r1, r2, false);
  EXPECT_EQ(r1.pairs.size(), std::size_t(2));
  EXPECT_EQ(r1.pairs[0].birth, 2);  // 1@2 dies at 2@3 against 0.5@4
  EXPECT_EQ(r1.pairs[0].death, 3);
  EXPECT_EQ(r1.pairs[1].birth, 4);
  EXPECT_EQ(r1.pairs[1].death, 1);
  BasinResult bad;
  EXPECT_THROWS_CODE(pairs_from_basin_edges(f.data(), 5, {0, 0, 1, 2, 4}, {}, bad), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(pairs_from_basin_edges(f.data(), 5, basin, {{0, 3, 1}}, bad), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(pairs_from_basin_edges(f.data(), 5, basin, {{0, 2, 9}}, bad), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(basins_errors) {
  std::vector<double> f(12, 1.0);
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{}}, Neighborhood::Axis), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{3, 0}}, Neighborhood::Axis), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{1, 1, 1, 1, 1, 1, 1, 1, 2}}, Neighborhood::Full),
                     ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(basins_grid(nullptr, GridShape{{3, 4}}, Neighborhood::Axis), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{std::size_t(1) << 40, std::size_t(1) << 40}}, Neighborhood::Axis),
                     ErrorCode::TooLarge);
  f[7] = std::nan("");
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{3, 4}}, Neighborhood::Axis), ErrorCode::NonFinite);
  f[7] = kInf;
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{3, 4}}, Neighborhood::Axis), ErrorCode::NonFinite);
  f[7] = 1.0;
  CsrGraph g;
  g.vertices = 3;
  g.offsets = {0, 1, 2};
  g.adj = {1, 0};
  EXPECT_THROWS_CODE(basins_graph(f.data(), g), ErrorCode::InvalidArgument);  // offsets too short
  g.offsets = {0, 1, 2, 2};
  g.adj = {1, 5};
  EXPECT_THROWS_CODE(basins_graph(f.data(), g), ErrorCode::InvalidArgument);  // neighbour out of range
  g.offsets = {0, 2, 1, 2};
  g.adj = {1, 0};
  EXPECT_THROWS_CODE(basins_graph(f.data(), g), ErrorCode::InvalidArgument);  // decreasing offsets
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  EXPECT_THROWS_CODE(basins_grid(f.data(), GridShape{{3, 4}}, Neighborhood::Axis, ctx), ErrorCode::Cancelled);
}

// ================================================================ kNN
NNSCOPE_TEST(knn_matches_naive) {
  test::CpuSettingsGuard restore;
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    const std::size_t dim = 1 + seed % 4, n = 20 + 37 * seed;
    std::vector<double> x;
    std::vector<float> xf;
    // odd seeds: integer coordinates in a small box (many exact ties)
    test::random_points(n, dim, seed % 2 ? 4 : 0, seed + 5, x, xf);
    const std::size_t k = std::min<std::size_t>(4 * dim, n - 1);
    const KnnLists want = naive_knn(x, n, dim, k);
    for (Isa isa : {Isa::Generic, Isa::Avx2}) {
      if (int(isa) > int(cpu_isa())) continue;
      set_isa_limit(isa);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const KnnLists a = knn_lists(x.data(), n, dim, k);
        const KnnLists b = knn_lists(xf.data(), n, dim, k);
        EXPECT(a.index == want.index);
        EXPECT(a.dist2 == want.dist2);
        EXPECT(b.index == want.index);
        EXPECT(b.dist2 == want.dist2);
      }
    }
  }
}

NNSCOPE_TEST(knn_grid_points_and_symmetry) {
  // the integer points of a 5×5 grid with k = 8 = 4·dim: union graph = Moore
  // neighbourhood exactly except where a corner or edge point's 8 nearest reach
  // further; check against the lists by definition, union and mutual.
  std::vector<double> x;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) {
      x.push_back(i);
      x.push_back(j);
    }
  const std::size_t n = 25, k = 8;
  const KnnLists l = knn_lists(x.data(), n, 2, k);
  // interior point (2,2) = 12: its 8 nearest are its Moore neighbours, ties by index
  std::vector<std::int32_t> row(l.index.begin() + 12 * k, l.index.begin() + 13 * k);
  const std::vector<std::int32_t> want12 = {7, 11, 13, 17, 6, 8, 16, 18};
  EXPECT(row == want12);
  for (KnnSymmetry mode : {KnnSymmetry::Union, KnnSymmetry::Mutual}) {
    const CsrGraph g = knn_symmetrize(l, mode);
    EXPECT_EQ(g.vertices, n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        auto in = [&](std::size_t a, std::size_t b) {
          return std::find(l.index.begin() + a * k, l.index.begin() + (a + 1) * k, std::int32_t(b)) !=
                 l.index.begin() + (a + 1) * k;
        };
        const bool want = mode == KnnSymmetry::Union ? (in(i, j) || in(j, i)) : (in(i, j) && in(j, i));
        const bool got = std::binary_search(g.adj.begin() + g.offsets[i], g.adj.begin() + g.offsets[i + 1],
                                            std::int32_t(j));
        EXPECT_EQ(got, want);
      }
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT(std::is_sorted(g.adj.begin() + g.offsets[i], g.adj.begin() + g.offsets[i + 1]));
      EXPECT(std::adjacent_find(g.adj.begin() + g.offsets[i], g.adj.begin() + g.offsets[i + 1]) ==
             g.adj.begin() + g.offsets[i + 1]);
    }
  }
  // basins on the union kNN graph of a bowl sampled on the grid: one minimum
  std::vector<double> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = (x[2 * i] - 1) * (x[2 * i] - 1) + (x[2 * i + 1] - 3) * (x[2 * i + 1] - 3);
  const BasinResult r = basins_graph(f.data(), knn_graph(x.data(), n, 2, k));
  EXPECT(r.pairs.empty());
  EXPECT_EQ(r.essential[0].birth, 8);
}

NNSCOPE_TEST(knn_errors) {
  std::vector<double> x(20, 0.0);
  EXPECT_THROWS_CODE(knn_lists(x.data(), 10, 2, 10), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(knn_lists(x.data(), 10, 2, 0), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(knn_lists(x.data(), 1, 2, 1), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(knn_lists(x.data(), 10, 0, 1), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(knn_lists(static_cast<const double*>(nullptr), 10, 2, 1), ErrorCode::InvalidArgument);
  x[3] = std::nan("");
  EXPECT_THROWS_CODE(knn_lists(x.data(), 10, 2, 3), ErrorCode::NonFinite);
  KnnLists bad;
  bad.n = 3;
  bad.k = 1;
  bad.index = {1, 2};
  EXPECT_THROWS_CODE(knn_symmetrize(bad), ErrorCode::InvalidArgument);
  bad.index = {1, 2, 7};
  EXPECT_THROWS_CODE(knn_symmetrize(bad), ErrorCode::InvalidArgument);
}

// ================================================================ diagrams
NNSCOPE_TEST(diagram_distances_match_bruteforce) {
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const int levels = seed % 3 == 0 ? 0 : 4;  // small integers: many tied costs
    const Diagram a = random_diagram(seed % 7, 2 * seed, levels);
    const Diagram b = random_diagram((seed / 7) % 7, 2 * seed + 1, levels);
    std::vector<char> used(b.birth.size(), 0);
    double bmax = kInf, bsum = kInf;
    brute_match(a, b, 0, used, 0.0, 0.0, bmax, bsum);
    EXPECT(bottleneck_distance(a, b) == bmax);
    EXPECT(bottleneck_distance(b, a) == bmax);
    EXPECT_NEAR(wasserstein1_distance(a, b), bsum, 1e-12 * (1 + bsum));
    EXPECT_NEAR(wasserstein1_distance(b, a), bsum, 1e-12 * (1 + bsum));
    EXPECT_EQ(bottleneck_distance(a, a), 0.0);
    EXPECT_EQ(wasserstein1_distance(a, a), 0.0);
  }
}

NNSCOPE_TEST(diagram_closed_forms_and_essential) {
  Diagram empty, one, two;
  one.birth = {1.0};
  one.death = {4.0};
  EXPECT_EQ(bottleneck_distance(one, empty), 1.5);
  EXPECT_EQ(wasserstein1_distance(empty, one), 1.5);
  two.birth = {1.5};
  two.death = {3.0};
  // matched: max(0.5, 1) = 1 < max(1.5, 0.75); W1: min(1, 1.5 + 0.75) = 1
  EXPECT_EQ(bottleneck_distance(one, two), 1.0);
  EXPECT_EQ(wasserstein1_distance(one, two), 1.0);
  two.birth = {10.0};
  two.death = {11.0};
  // far apart: both to the diagonal: bottleneck max(1.5, 0.5), W1 1.5 + 0.5
  EXPECT_EQ(bottleneck_distance(one, two), 1.5);
  EXPECT_EQ(wasserstein1_distance(one, two), 2.0);
  EXPECT_EQ(bottleneck_distance(empty, empty), 0.0);
  // essential classes: matched in sorted order; counts must agree
  Diagram e1 = one, e2 = one;
  e1.essential = {0.0, 5.0};
  e2.essential = {7.0, 1.0};
  EXPECT_EQ(bottleneck_distance(e1, e2), 2.0);
  EXPECT_EQ(wasserstein1_distance(e1, e2), 3.0);
  e2.essential = {1.0};
  EXPECT_EQ(bottleneck_distance(e1, e2), kInf);
  EXPECT_EQ(wasserstein1_distance(e1, e2), kInf);
  // zero-persistence points cost nothing
  Diagram z;
  z.birth = {2.0, 3.0};
  z.death = {2.0, 3.0};
  EXPECT_EQ(bottleneck_distance(z, empty), 0.0);
  EXPECT_EQ(wasserstein1_distance(z, empty), 0.0);
  // errors
  Diagram bad;
  bad.birth = {1.0};
  bad.death = {0.5};
  EXPECT_THROWS_CODE(bottleneck_distance(bad, empty), ErrorCode::InvalidArgument);
  bad.death = {kInf};
  EXPECT_THROWS_CODE(wasserstein1_distance(empty, bad), ErrorCode::NonFinite);
  bad.death = {1.0, 2.0};
  EXPECT_THROWS_CODE(bottleneck_distance(bad, empty), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(diagram_of_basins_shifted_field) {
  // persistence is stable: shifting a field by c moves every point by (c, c), so the
  // bottleneck and W1 distances of the finite parts are |c| and (pairs)·|c| at most,
  // and exactly 0 and 0 for c = 0; the essential births move by c.
  GridShape g{{20, 20}};
  std::vector<double> f = random_values(400, 0, 3), h(400);
  for (std::size_t i = 0; i < 400; ++i) h[i] = f[i] + 0.25;
  auto diagram = [&](const std::vector<double>& v) {
    const BasinResult r = basins_grid(v.data(), g, Neighborhood::Freudenthal);
    Diagram d;
    for (const auto& p : r.pairs) {
      d.birth.push_back(p.birth_value);
      d.death.push_back(p.death_value);
    }
    for (const auto& e : r.essential) d.essential.push_back(e.birth_value);
    return d;
  };
  const Diagram df = diagram(f), dh = diagram(h);
  EXPECT(df.birth.size() > 10);
  EXPECT_NEAR(bottleneck_distance(df, dh), 0.25, 1e-12);
  EXPECT(wasserstein1_distance(df, dh) <= 0.25 * double(df.birth.size() + 1) + 1e-9);
}
