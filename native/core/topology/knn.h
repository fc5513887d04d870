// nnscope core, topology family: exact brute-force k-nearest-neighbour graphs of
// scattered samples (the papers' kNN graph with k = 4·dim, union or mutual), as
// CsrGraph (graph.h) for the persistence ops.
//
// Distances. The squared Euclidean distance of points p and q in D dims is, by
// definition here, the float64 chain s = 0; for d = 0 … D−1: δ = p_d − q_d (float64),
// s = fma(δ, δ, s). Every tier (generic, AVX2) and the CUDA kernel evaluate exactly
// this, so the same inputs give the same bits and the same neighbours everywhere;
// float32 coordinates are widened exactly first. Ties are broken by lower index:
// row i lists the k points j ≠ i smallest in (distance, j) order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "topology/graph.h"

namespace nnscope::topology {

enum class KnnSymmetry {
  Union,   // i ~ j when j is among i's k nearest or i among j's
  Mutual,  // i ~ j when both hold
};

// Directed neighbour lists: row i = index[i·k .. i·k+k), ascending in (dist2, index);
// dist2 the squared distances as defined above.
struct KnnLists {
  std::size_t n = 0, k = 0;
  std::vector<std::int32_t> index;
  std::vector<double> dist2;
};

// The k nearest neighbours of each of n points (row-major n×dim coordinates). The
// papers use k = 4·dim; the caller passes k.
// Threaded over rows; the result does not depend on the thread count or the ISA tier.
// Errors: InvalidArgument (null points, n < 2, dim = 0, k outside [1, n−1]),
// TooLarge (n ≥ 2^31), NonFinite (a NaN or ±Inf coordinate), Cancelled.
KnnLists knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k, const OpContext& ctx = {});
KnnLists knn_lists(const double* points, std::size_t n, std::size_t dim, std::size_t k, const OpContext& ctx = {});

// The undirected graph of the lists: each adjacency sorted ascending, no duplicates,
// no self loops. Errors: InvalidArgument (lists inconsistent with n·k).
CsrGraph knn_symmetrize(const KnnLists& lists, KnnSymmetry mode = KnnSymmetry::Union);

// knn_lists then knn_symmetrize.
CsrGraph knn_graph(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                   KnnSymmetry mode = KnnSymmetry::Union, const OpContext& ctx = {});
CsrGraph knn_graph(const double* points, std::size_t n, std::size_t dim, std::size_t k,
                   KnnSymmetry mode = KnnSymmetry::Union, const OpContext& ctx = {});

namespace detail {

// Per-ISA distance kernel (knn.cpp generic, knn_avx2.cpp). soa holds dim rows of
// `ld` float64 coordinates (point j's coordinate d at soa[d·ld + j]), zero-padded so
// that ld is a multiple of 8. out[j − j0] = dist2(q, point j) for j in [j0, j1),
// j0 a multiple of 8; entries up to the next multiple of 8 past j1 (≤ ld) may be
// written too (out must have room).
struct KnnKernel {
  const char* name;
  void (*distances)(const double* q, const double* soa, std::size_t ld, std::size_t dim, std::size_t j0,
                    std::size_t j1, double* out);
};
const KnnKernel& knn_kernel();  // the active tier
const KnnKernel& knn_kernel_generic();
const KnnKernel* knn_kernel_avx2();

}  // namespace detail

}  // namespace nnscope::topology
