// nnscope native tests: references and inputs shared by the topology test files
// (test_topology.cpp, test_topology_graph.cpp, test_cuda_topology.cpp).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "base/rng.h"
#include "harness.h"
#include "topology/basins.h"
#include "topology/graph.h"

namespace nnscope::test {

inline const topology::Neighborhood kAllNeighborhoods[] = {
    topology::Neighborhood::Axis, topology::Neighborhood::Freudenthal, topology::Neighborhood::Full};

// Values: integers from [0, levels) (plateaus and ties) or, with levels = 0, Gaussians.
inline std::vector<double> random_values(std::size_t n, int levels, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> f(n);
  for (std::size_t i = 0; i < n; ++i)
    f[i] = levels > 0 ? double(rng.below_at(i, std::uint64_t(levels))) : rng.gaussian_at(i);
  return f;
}

// n·dim point coordinates in float (xf) and the same values in double (x): integers
// from [0, levels) (many exact distance ties) or, with levels = 0, Gaussians.
inline void random_points(std::size_t n, std::size_t dim, int levels, std::uint64_t seed, std::vector<double>& x,
                          std::vector<float>& xf) {
  Rng rng(seed);
  x.resize(n * dim);
  xf.resize(n * dim);
  for (std::size_t i = 0; i < n * dim; ++i) {
    xf[i] = levels > 0 ? float(rng.below_at(i, std::uint64_t(levels))) : float(rng.gaussian_at(i));
    x[i] = double(xf[i]);
  }
}

// The vertices 0 … n−1 in (value, index) order (std::sort with vertex_less).
template <typename I = std::int64_t>
std::vector<I> vertex_order(const std::vector<double>& f) {
  std::vector<I> order(f.size());
  std::iota(order.begin(), order.end(), I(0));
  std::sort(order.begin(), order.end(), [&](I a, I b) { return topology::vertex_less(f[a], a, f[b], b); });
  return order;
}

// Sorts r.pairs by (death value, death, birth value, birth) and r.essential by
// (birth value, birth): BasinResult's documented order.
inline void sort_canonical(topology::BasinResult& r) {
  using topology::EssentialClass;
  using topology::PersistencePair;
  std::sort(r.pairs.begin(), r.pairs.end(), [](const PersistencePair& x, const PersistencePair& y) {
    if (x.death_value != y.death_value) return x.death_value < y.death_value;
    if (x.death != y.death) return x.death < y.death;
    if (x.birth_value != y.birth_value) return x.birth_value < y.birth_value;
    return x.birth < y.birth;
  });
  std::sort(r.essential.begin(), r.essential.end(), [](const EssentialClass& x, const EssentialClass& y) {
    return topology::vertex_less(x.birth_value, x.birth, y.birth_value, y.birth);
  });
}

// Calls fn(v, u, e) for every vertex v of the grid and every offset e of
// neighbor_offsets(k, nb) (in that order) whose neighbour u = v + e lies inside the
// grid; coordinates are decoded from the row-major index (last axis fastest).
template <typename F>
void for_each_grid_neighbor(const topology::GridShape& g, topology::Neighborhood nb, F&& fn) {
  const std::size_t n = g.vertices(), k = g.dims.size();
  const auto offs = topology::neighbor_offsets(k, nb);
  std::vector<long> x(k);
  for (std::size_t v = 0; v < n; ++v) {
    std::size_t r = v;
    for (std::size_t a = k; a-- > 0;) {
      x[a] = long(r % g.dims[a]);
      r /= g.dims[a];
    }
    for (const auto& e : offs) {
      bool inside = true;
      std::size_t u = 0;
      for (std::size_t a = 0; a < k && inside; ++a) {
        const long y = x[a] + e[a];
        inside = y >= 0 && y < long(g.dims[a]);
        u = u * g.dims[a] + std::size_t(y);
      }
      if (inside) fn(v, u, e);
    }
  }
}

// Whether an offset points forward: its first non-zero component is positive.
inline bool forward_offset(const std::vector<int>& e) {
  for (int c : e)
    if (c != 0) return c > 0;
  return false;
}

// got == want exactly: pairs, essential classes (vertices and values) and, unless
// basins is false, the basin labels.
inline void expect_same(const topology::BasinResult& got, const topology::BasinResult& want, bool basins = true) {
  EXPECT_EQ(got.pairs.size(), want.pairs.size());
  for (std::size_t i = 0; i < got.pairs.size(); ++i) {
    EXPECT_EQ(got.pairs[i].birth, want.pairs[i].birth);
    EXPECT_EQ(got.pairs[i].death, want.pairs[i].death);
    EXPECT(got.pairs[i].birth_value == want.pairs[i].birth_value);
    EXPECT(got.pairs[i].death_value == want.pairs[i].death_value);
  }
  EXPECT_EQ(got.essential.size(), want.essential.size());
  for (std::size_t i = 0; i < got.essential.size(); ++i) {
    EXPECT_EQ(got.essential[i].birth, want.essential[i].birth);
    EXPECT(got.essential[i].birth_value == want.essential[i].birth_value);
  }
  if (basins) EXPECT(got.basin == want.basin);
}

}  // namespace nnscope::test
