// nnscope CUDA backend: the device-pointer linalg API (linalg.h) over the kernels of
// linalg_kernels.cuh.
#include <cuda_runtime.h>

#include <climits>
#include <string>
#include <utility>

#include "cuda/check.h"
#include "cuda/linalg.h"

namespace nnscope::cuda::kernels {

// Launches `kernel` with the given configuration on `stream` and checks the launch
// (configuration errors surface here; faults inside the kernel at the next sync).
template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* stream, A&&... args) {
  kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, "kernel launch");
}

}  // namespace nnscope::cuda::kernels

#define NNSCOPE_KNS kernels
#include "cuda/linalg_kernels.cuh"

namespace nnscope::cuda {

namespace {

void require_int(std::size_t v, const char* what) {
  NNSCOPE_CHECK(v <= std::size_t(INT_MAX), ErrorCode::TooLarge,
                std::string("CUDA kernels take ") + what + " up to 2^31-1 (got " + std::to_string(v) + ")");
}

int current_sms() {
  int dev = 0, sms = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return sms > 0 ? sms : 1;
}

}  // namespace

void sgemm_async_tile(const linalg::GemmArgs& g, int tile, void* stream) {
  NNSCOPE_CHECK(tile == 0 || tile == 64 || tile == 128, ErrorCode::InvalidArgument,
                "sgemm tile must be 0, 64 or 128");
  linalg::validate(g);
  if (g.m == 0 || g.n == 0) return;
  require_int(g.n, "n");
  require_int(g.k, "k");
  const kernels::GemmParams p = kernels::gemm_params(g);
  const bool product = g.k > 0 && g.alpha != 0.0f;
  const int sms = product && tile == 0 ? current_sms() : 1;
  kernels::sgemm_launch(static_cast<long long>(g.m), p, g.trans_a, g.trans_b, sms, tile, stream);
}

void sgemm_async(const linalg::GemmArgs& g, void* stream) { sgemm_async_tile(g, 0, stream); }

std::size_t sgemv_workspace_floats(const linalg::GemvArgs& g) {
  return static_cast<std::size_t>(
      kernels::gemv_workspace_floats(g.trans, static_cast<long long>(g.m), static_cast<long long>(g.n)));
}

void sgemv_async(const linalg::GemvArgs& g, float* workspace, void* stream) {
  linalg::validate(g);
  require_int(g.m, "m");
  require_int(g.n, "n");
  if ((g.trans ? g.n : g.m) == 0) return;
  NNSCOPE_CHECK(sgemv_workspace_floats(g) == 0 || workspace != nullptr, ErrorCode::InvalidArgument,
                "sgemv_async: the transposed GEMV of this size needs a workspace");
  const kernels::GemvParams p = kernels::gemv_params(g);
  kernels::sgemv_launch(p, g.trans, workspace, stream);
}

void saxpy_async(std::size_t n, float alpha, const float* x, float* y, void* stream) {
  kernels::saxpy_launch(static_cast<long long>(n), alpha, x, y, stream);
}

std::size_t reduce_workspace_doubles() noexcept { return kernels::kReduceMaxBlocks; }

void sdot_async(std::size_t n, const float* x, const float* y, double* result, double* workspace, void* stream) {
  kernels::dot_launch(static_cast<long long>(n), x, y, result, workspace, stream);
}

void snrm2_async(std::size_t n, const float* x, double* result, double* workspace, void* stream) {
  kernels::nrm2_launch(static_cast<long long>(n), x, result, workspace, stream);
}

namespace {

template <typename K>
void add_attributes(std::vector<KernelAttributes>& out, const char* name, K* kernel) {
  cudaFuncAttributes fa{};
  const cudaError_t e = cudaFuncGetAttributes(&fa, reinterpret_cast<const void*>(kernel));
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  KernelAttributes a;
  a.name = name;
  a.registers = fa.numRegs;
  a.shared_bytes = static_cast<int>(fa.sharedSizeBytes);
  a.local_bytes = static_cast<int>(fa.localSizeBytes);
  a.max_threads = fa.maxThreadsPerBlock;
  a.binary_version = fa.binaryVersion;
  a.ptx_version = fa.ptxVersion;
  out.push_back(std::move(a));
}

}  // namespace

std::vector<KernelAttributes> kernel_attributes() {
  using namespace kernels;
  std::vector<KernelAttributes> v;
  add_attributes(v, "sgemm_tiled<128x128,NN>", &sgemm_tiled<128, 128, false, false>);
  add_attributes(v, "sgemm_tiled<128x128,TN>", &sgemm_tiled<128, 128, true, false>);
  add_attributes(v, "sgemm_tiled<128x128,NT>", &sgemm_tiled<128, 128, false, true>);
  add_attributes(v, "sgemm_tiled<128x128,TT>", &sgemm_tiled<128, 128, true, true>);
  add_attributes(v, "sgemm_tiled<64x64,NN>", &sgemm_tiled<64, 64, false, false>);
  add_attributes(v, "sgemm_tiled<64x64,TT>", &sgemm_tiled<64, 64, true, true>);
  add_attributes(v, "sgemv_n", &sgemv_n);
  add_attributes(v, "sgemv_t", &sgemv_t);
  add_attributes(v, "reduce_partial<dot>", &reduce_partial<false>);
  add_attributes(v, "saxpy", &saxpy_kernel);
  return v;
}

int kernel_image_status(std::string* message) noexcept {
  cudaFuncAttributes fa{};
  const cudaError_t e = cudaFuncGetAttributes(&fa, reinterpret_cast<const void*>(&kernels::sgemm_tiled<128, 128, false, false>));
  if (e == cudaSuccess) return 0;
  (void)cudaGetLastError();
  if (message) {
    try {
      *message = describe(e);
    } catch (...) {
    }
  }
  return static_cast<int>(e);
}

}  // namespace nnscope::cuda
