// nnscope CUDA backend: the hessian family's device spaces (hessian.h) — SpaceCore
// of hessian_kernels.cuh over cudaMalloc'd memory, one non-blocking stream and the
// device-pointer linalg of linalg.h, with the dense and the objective operator.
#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "cuda/check.h"
#include "cuda/hessian.h"
#include "cuda/linalg.h"
#include "cuda/memory.h"
#include "cuda/models.h"

namespace nnscope::cuda::hkernels {

template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* stream, A&&... args) {
  kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, "kernel launch");
}

}  // namespace nnscope::cuda::hkernels

#define NNSCOPE_KNS hkernels
#include "cuda/hessian_kernels.cuh"

namespace nnscope::cuda {

namespace {

// SpaceCore's environment on a real GPU.
class CudaEnv {
 public:
  using Buffer = DeviceBuffer;

  explicit CudaEnv(int device) : device_(device), stream_(make_stream_on(device)) {}

  void activate() { set_device(device_); }
  int device() const noexcept { return device_; }
  void* stream() const noexcept { return stream_.handle(); }
  Buffer alloc(std::size_t bytes) { return DeviceBuffer(bytes); }

  void upload(void* dst, const void* src, std::size_t bytes) { copy_to_device(dst, src, bytes, stream()); }
  void download(void* dst, const void* src, std::size_t bytes) { copy_to_host(dst, src, bytes, stream()); }
  void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cs()), "device-to-device copy");
  }
  void zero(void* dst, std::size_t bytes) {
    if (bytes == 0) return;
    check(cudaMemsetAsync(dst, 0, bytes, cs()), "cudaMemsetAsync");
  }
  void sync() { stream_.synchronize(); }
  void drain() noexcept { stream_.synchronize_noexcept(); }

  void gemv(const linalg::GemvArgs& g, float* ws) { sgemv_async(g, ws, stream()); }
  std::size_t gemv_ws(const linalg::GemvArgs& g) { return sgemv_workspace_floats(g); }
  void gemm(const linalg::GemmArgs& g) { sgemm_async(g, stream()); }
  void dot(std::size_t n, const float* x, const float* y, double* out, double* ws) {
    sdot_async(n, x, y, out, ws, stream());
  }
  void nrm2(std::size_t n, const float* x, double* out, double* ws) { snrm2_async(n, x, out, ws, stream()); }
  std::size_t reduce_ws() { return reduce_workspace_doubles(); }
  void axpy(std::size_t n, float alpha, const float* x, float* y) { saxpy_async(n, alpha, x, y, stream()); }

 private:
  static Stream make_stream_on(int device) {
    set_device(device);
    return Stream();
  }
  cudaStream_t cs() const noexcept { return static_cast<cudaStream_t>(stream_.handle()); }

  int device_;
  Stream stream_;
};

// SpaceCore on the GPU with the DeviceSpace extras; subclasses supply product().
class GpuCore : public hkernels::SpaceCore<CudaEnv, DeviceSpace> {
 public:
  GpuCore(int device, std::size_t n) : SpaceCore(n, device) {}

  int device() const override { return env().device(); }
  void* stream() const override { return env().stream(); }
  std::size_t stride() const override { return stride_floats(); }
  float* slot_pointer(std::size_t slot) override { return slot_ptr(slot); }
  void synchronize() override { finish(); }
};

// y = A·x, A dense n×n on the device (row pitch = the slot stride, a multiple of 4
// floats, so sgemv's rows load as float4).
class DenseSpace final : public GpuCore {
 public:
  DenseSpace(int device, const float* a, std::size_t n) : GpuCore(device, n) {
    NNSCOPE_CHECK(n == 0 || a != nullptr, ErrorCode::InvalidArgument, "hessian (cuda): the dense matrix is null");
    NNSCOPE_CHECK(n == 0 || stride_floats() <= std::size_t(-1) / sizeof(float) / n, ErrorCode::TooLarge,
                  "hessian (cuda): matrix size overflows");
    env().activate();
    a_ = DeviceBuffer(n * stride_floats() * sizeof(float));
    if (n > 0) {
      env().zero(a_.data(), n * stride_floats() * sizeof(float));
      copy_rows_to_device(a_.data(), stride_floats() * sizeof(float), a, n * sizeof(float), n * sizeof(float), n,
                          env().stream());
    }
    env().sync();  // the caller's matrix may go away
  }
  ~DenseSpace() override { env().drain(); }  // queued GEMVs read a_

 protected:
  void product(const float* x, float* y, const OpContext&) override {
    linalg::GemvArgs g;
    g.trans = false;
    g.m = dim();
    g.n = dim();
    g.alpha = 1.0f;
    g.a = a_.as<float>();
    g.lda = stride_floats();
    g.x = x;
    g.beta = 0.0f;
    g.y = y;
    sgemv_async(g, nullptr, env().stream());
  }

 private:
  DeviceBuffer a_;
};

// y = ∇²L(θ)·x through the objective's device HVP (θ on the device, copied once).
class ObjectiveSpace final : public GpuCore {
 public:
  ObjectiveSpace(int device, DeviceHvp& hvp, const float* theta) : GpuCore(device, hvp.dim()), hvp_(hvp) {
    NNSCOPE_CHECK(hvp.device() == device, ErrorCode::InvalidArgument,
                  "the objective does not live on this GPU (it is on device " + std::to_string(hvp.device()) +
                      ", the space on device " + std::to_string(device) + ")");
    NNSCOPE_CHECK(dim() == 0 || theta != nullptr, ErrorCode::InvalidArgument, "hessian (cuda): theta is null");
    env().activate();
    theta_ = DeviceBuffer(dim() * sizeof(float));
    env().upload(theta_.data(), theta, dim() * sizeof(float));
    env().sync();  // the caller's θ may go away
  }
  ~ObjectiveSpace() override { env().drain(); }  // fenced HVPs read theta_ and the slots

 protected:
  void product(const float* x, float* y, const OpContext& ctx) override {
    hvp_.hvp_device(theta_.as<float>(), x, y, env().stream(), ctx);
  }

 private:
  DeviceHvp& hvp_;
  DeviceBuffer theta_;
};

}  // namespace

std::unique_ptr<DeviceSpace> make_dense_space(int device, const float* a, std::size_t n) {
  return std::make_unique<DenseSpace>(device, a, n);
}

std::unique_ptr<DeviceSpace> make_objective_space(int device, models::Objective& objective, const float* theta) {
  return std::make_unique<ObjectiveSpace>(device, device_hvp(objective), theta);
}

}  // namespace nnscope::cuda
