// nnscope core, topology family: device dispatch for the ops that have a CUDA
// implementation (steepest-descent basin persistence on grids, brute-force kNN).
// `device` is resolved with resolve_device (Auto → CUDA when a GPU answers);
// `used`, when non-null, receives the device that ran. Results are identical on
// both devices (see basins.h, knn.h).
#pragma once
#include <cstddef>

#include "base/context.h"
#include "base/device.h"
#include "topology/basins.h"
#include "topology/graph.h"
#include "topology/knn.h"

namespace nnscope::topology {

BasinResult basin_persistence(const double* values, const GridShape& grid, Neighborhood nb, Device device,
                              const OpContext& ctx = {}, Device* used = nullptr);

// Exactly one of points32 / points64 is non-null (n×dim, row-major).
CsrGraph knn_graph_on(const float* points32, const double* points64, std::size_t n, std::size_t dim,
                      std::size_t k, KnnSymmetry mode, Device device, const OpContext& ctx = {},
                      Device* used = nullptr);

}  // namespace nnscope::topology
