#include "topology/dispatch.h"

#include <vector>

namespace nnscope::topology {

BasinResult basin_persistence(const double* values, const GridShape& grid, Neighborhood nb, Device device,
                              const OpContext& ctx, Device* used) {
  const Device d = resolve_device(device);
  if (used) *used = d;
  if (d == Device::Cuda) return require_gpu().topology_basins_grid(values, grid, nb, ctx);
  return basins_grid(values, grid, nb, ctx);
}

CsrGraph knn_graph_on(const float* points32, const double* points64, std::size_t n, std::size_t dim,
                      std::size_t k, KnnSymmetry mode, Device device, const OpContext& ctx, Device* used) {
  const Device d = resolve_device(device);
  if (used) *used = d;
  if (d == Device::Cuda) {
    // The GPU path takes float64 coordinates (its distances are exact in float64 like the CPU's).
    std::vector<double> widened;
    if (!points64) {
      widened.assign(points32, points32 + n * dim);
      points64 = widened.data();
    }
    return knn_symmetrize(require_gpu().topology_knn(points64, n, dim, k, ctx), mode);
  }
  return points64 ? knn_graph(points64, n, dim, k, mode, ctx) : knn_graph(points32, n, dim, k, mode, ctx);
}

}  // namespace nnscope::topology
