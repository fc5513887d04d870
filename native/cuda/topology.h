// nnscope CUDA backend: the topology family on the GPU — steepest-descent basins and
// 0-dim persistence on implicit grids, and the brute-force kNN lists. A plain C++
// header (no CUDA headers): backend.cpp hooks these into
// GpuBackend::topology_basins_grid / topology_knn.
//
// Basins: pointers, pointer jumping (until no pointer changes) and the inter-basin
// edge list (deterministic compaction by block prefix sums, vertex order) run on the
// device; the edge list comes back and topology::pairs_from_basin_edges (the CPU's
// own union-find) finishes, so the result equals topology::basins_grid exactly.
// Device memory: about 3·8 bytes per vertex plus 24 bytes per inter-basin edge.
// kNN: one thread per query, candidates tiled through shared memory, per-thread
// insertion-sorted top k in (dist2, index) order; the lists equal
// topology::knn_lists bit for bit. Limits: k ≤ 64, dim ≤ 4096 (InvalidArgument).
// Kernels and drivers: topology_kernels.cuh. Errors as the CPU ops, plus
// OutOfMemory and Cuda.
#pragma once
#include <cstddef>

#include "base/context.h"
#include "topology/basins.h"
#include "topology/knn.h"

namespace nnscope::cuda {

topology::BasinResult basins_grid(int device, const double* values, const topology::GridShape& grid,
                                  topology::Neighborhood nb, const OpContext& ctx);

topology::KnnLists knn_lists(int device, const float* points, std::size_t n, std::size_t dim, std::size_t k,
                             const OpContext& ctx);
topology::KnnLists knn_lists(int device, const double* points, std::size_t n, std::size_t dim, std::size_t k,
                             const OpContext& ctx);

}  // namespace nnscope::cuda
