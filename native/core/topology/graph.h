// nnscope core, topology family: the graphs that persistence runs on — implicit
// regular grids (never materialised) and explicit undirected graphs in CSR form
// (kNN graphs of scattered samples, user graphs). This header fixes the contract
// shared by the CPU sweep, the steepest-descent basins and the CUDA kernels.
//
// Grids. dims n_0 … n_{k−1} (k = 1…8), row-major with the LAST axis fastest:
//     index(i_0, …, i_{k−1}) = ((i_0·n_1 + i_1)·n_2 + i_2)·…
// Neighbourhoods (offsets e ∈ {−1, 0, 1}^k \ {0}, kept when both ends are inside):
//   Axis        — e has exactly one nonzero entry: 2k neighbours (the 1-skeleton of
//                 the cubical complex; what GUDHI's cubical complex uses for H0 on
//                 vertex values).
//   Freudenthal — every nonzero entry of e has the same sign (e or −e ∈ {0,1}^k):
//                 2·(2^k − 1) neighbours; the edges of the Freudenthal / Kuhn
//                 triangulation of the grid.
//   Full        — every e: 3^k − 1 neighbours (Moore / king's moves).
// Order of vertices. Everything compares vertices by (value, index)
// lexicographically in float64 — never a strict comparison on raw values — so
// plateaus and ties are resolved consistently and every vertex is unique.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nnscope::topology {

enum class Neighborhood { Axis, Freudenthal, Full };

inline constexpr std::size_t kMaxGridDims = 8;

// (value, index) order: true when vertex a comes strictly before vertex b.
inline bool vertex_less(double va, std::int64_t a, double vb, std::int64_t b) noexcept {
  return va < vb || (va == vb && a < b);
}

struct GridShape {
  std::vector<std::size_t> dims;  // n_0 … n_{k−1}, each ≥ 1
  std::size_t vertices() const noexcept {
    std::size_t n = dims.empty() ? 0 : 1;
    for (std::size_t v : dims) n *= v;
    return n;
  }
};

// The neighbour offsets of a neighbourhood in k dimensions, each as a vector of k
// entries in {−1, 0, 1}, in a fixed order (lexicographic over e with −1 < 0 < 1).
inline std::vector<std::vector<int>> neighbor_offsets(std::size_t k, Neighborhood nb) {
  std::vector<std::vector<int>> out;
  std::size_t total = 1;
  for (std::size_t i = 0; i < k; ++i) total *= 3;
  std::vector<int> e(k);
  for (std::size_t code = 0; code < total; ++code) {
    std::size_t c = code;
    for (std::size_t i = k; i-- > 0;) {
      e[i] = static_cast<int>(c % 3) - 1;
      c /= 3;
    }
    int nonzero = 0, pos = 0, neg = 0;
    for (int x : e) {
      nonzero += x != 0;
      pos += x > 0;
      neg += x < 0;
    }
    if (nonzero == 0) continue;
    if (nb == Neighborhood::Axis && nonzero != 1) continue;
    if (nb == Neighborhood::Freudenthal && pos != 0 && neg != 0) continue;
    out.push_back(e);
  }
  return out;
}

// An explicit undirected graph in CSR form: the neighbours of vertex v are
// adj[offsets[v] .. offsets[v+1]); symmetric (u in N(v) ⇔ v in N(u)), no self loops.
// Duplicated entries are harmless to the persistence sweep.
struct CsrGraph {
  std::size_t vertices = 0;
  std::vector<std::int64_t> offsets;  // vertices + 1
  std::vector<std::int32_t> adj;
};

}  // namespace nnscope::topology
