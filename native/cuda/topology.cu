// nnscope CUDA backend: the topology family's device ops (topology.h) — the drivers
// of topology_kernels.cuh over cudaMalloc'd buffers on one non-blocking stream.
#include <cuda_runtime.h>

#include <utility>
#include <vector>

#include "cuda/check.h"
#include "cuda/memory.h"
#include "cuda/topology.h"

namespace nnscope::cuda::tkernels {

template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* stream, A&&... args) {
  kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, "kernel launch");
}

}  // namespace nnscope::cuda::tkernels

#define NNSCOPE_KNS tkernels
#include "cuda/topology_kernels.cuh"

namespace nnscope::cuda {

namespace {

// The drivers' environment on a real GPU: buffers live as long as the call.
class CudaEnv {
 public:
  explicit CudaEnv(int device) : stream_(make_stream_on(device)) {}
  ~CudaEnv() { stream_.synchronize_noexcept(); }

  template <typename T>
  T* alloc(std::size_t count) {
    NNSCOPE_CHECK(count <= std::size_t(-1) / sizeof(T), ErrorCode::TooLarge, "buffer size overflows");
    buffers_.emplace_back(count * sizeof(T));
    return buffers_.back().template as<T>();
  }
  void upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes) copy_to_device(dst, src, bytes, stream());
  }
  void download(void* dst, const void* src, std::size_t bytes) {
    if (bytes) copy_to_host(dst, src, bytes, stream());
    stream_.synchronize();
  }
  void* stream() const noexcept { return stream_.handle(); }

 private:
  static Stream make_stream_on(int device) {
    set_device(device);
    return Stream();
  }
  Stream stream_;
  std::vector<DeviceBuffer> buffers_;  // destroyed before stream_ (declared after it)
};

}  // namespace

topology::BasinResult basins_grid(int device, const double* values, const topology::GridShape& grid,
                                  topology::Neighborhood nb, const OpContext& ctx) {
  CudaEnv env(device);
  return tkernels::run_basins_grid(env, values, grid, nb, ctx);
}

topology::KnnLists knn_lists(int device, const float* points, std::size_t n, std::size_t dim, std::size_t k,
                             const OpContext& ctx) {
  CudaEnv env(device);
  return tkernels::run_knn(env, points, n, dim, k, ctx);
}

topology::KnnLists knn_lists(int device, const double* points, std::size_t n, std::size_t dim, std::size_t k,
                             const OpContext& ctx) {
  CudaEnv env(device);
  return tkernels::run_knn(env, points, n, dim, k, ctx);
}

}  // namespace nnscope::cuda
