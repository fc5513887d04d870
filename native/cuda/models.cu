// nnscope CUDA backend: the GPU objectives of models.h over the kernels and passes
// of models_kernels.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "base/buffer.h"
#include "cuda/check.h"
#include "cuda/linalg.h"
#include "cuda/memory.h"
#include "cuda/models.h"

namespace nnscope::cuda::mkernels {

template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* stream, A&&... args) {
  kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, "kernel launch");
}

inline void gemm_dev(const linalg::GemmArgs& g, void* stream) { sgemm_async(g, stream); }

}  // namespace nnscope::cuda::mkernels

#define NNSCOPE_KNS mkernels
#include "cuda/models_kernels.cuh"

namespace nnscope::cuda {

namespace mk = mkernels;

std::size_t grid_block_points(std::size_t P, std::size_t n_points) {
  const std::size_t ld = (P + 3) / 4 * 4;
  const std::size_t budget = std::size_t(256) << 20;  // bytes of perturbed parameters
  std::size_t m = budget / std::max<std::size_t>(1, ld * sizeof(float));
  m = std::max<std::size_t>(1, std::min<std::size_t>(m, 1024));
  return std::min(m, std::max<std::size_t>(1, n_points));
}

namespace {

Stream make_stream_on(int device) {
  set_device(device);
  return Stream();
}

template <typename T>
DeviceBuffer upload(const std::vector<T>& v, void* stream) {
  DeviceBuffer b(v.size() * sizeof(T));
  if (!v.empty()) copy_to_device(b.data(), v.data(), v.size() * sizeof(T), stream);
  return b;
}

class GpuObjective final : public models::Objective, public DeviceHvp {
 public:
  GpuObjective(int device, std::unique_ptr<models::Objective> cpu, mk::MProblem prob)
      : device_(device), cpu_(std::move(cpu)), stream_(make_stream_on(device)) {
    net_ = std::move(prob.net);
    rows_ = prob.rows;
    head_ = prob.head;
    wd_ = prob.weight_decay;
    P_ = (std::size_t)net_.nparams;
    mk::check_int((std::size_t)rows_.R(), "row counts");
    void* s = stream_.handle();
    const std::size_t floats = mk::carve_work(net_, rows_, nullptr, nullptr);
    work_buf_ = DeviceBuffer(floats * sizeof(float));
    mk::carve_work(net_, rows_, work_buf_.as<float>(), &work_);
    copy_to_device(work_.x, prob.x.data(), prob.x.size() * sizeof(float), s);
    y_ = upload(prob.y, s);
    labels_ = upload(prob.labels, s);
    ic_ = upload(prob.ic_target, s);
    head_.y = y_.as<float>();
    head_.labels = labels_.as<int>();
    head_.ic_target = ic_.as<double>();
    theta_ = DeviceBuffer(P_ * sizeof(float));
    v_ = DeviceBuffer(P_ * sizeof(float));
    out_ = DeviceBuffer(P_ * sizeof(float));
    loss_ = DeviceBuffer(sizeof(double));
    stream_.synchronize();  // the host copies of the problem go out of scope
  }
  ~GpuObjective() override { stream_.synchronize_noexcept(); }

  std::size_t dim() const override { return P_; }
  int device() const override { return device_; }

  double loss(const float* theta, const OpContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    begin(ctx);
    copy_to_device(theta_.data(), theta, P_ * sizeof(float), s());
    mk::run_pass(net_, rows_, work_, head_, mk::kModeLoss, theta_.as<float>(), nullptr, nullptr, loss_.as<double>(),
                 s());
    return finish_loss(theta);
  }

  double loss_grad(const float* theta, float* grad, const OpContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    begin(ctx);
    copy_to_device(theta_.data(), theta, P_ * sizeof(float), s());
    mk::run_pass(net_, rows_, work_, head_, mk::kModeGrad, theta_.as<float>(), nullptr, out_.as<float>(),
                 loss_.as<double>(), s());
    if (wd_ != 0.0) mk::add_decay_launch((mk::mi64)P_, wd_, theta_.as<float>(), out_.as<float>(), s());
    copy_to_host(grad, out_.data(), P_ * sizeof(float), s());
    return finish_loss(theta);
  }

  void hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    begin(ctx);
    copy_to_device(theta_.data(), theta, P_ * sizeof(float), s());
    copy_to_device(v_.data(), v, P_ * sizeof(float), s());
    enqueue_hvp(theta_.as<float>(), v_.as<float>(), out_.as<float>());
    copy_to_host(hv, out_.data(), P_ * sizeof(float), s());
    stream_.synchronize();
    ctx.report(1.0, 1.0);
  }

  // The same passes on the caller's device pointers, on this objective's stream,
  // fenced by events against the caller's stream (models.h).
  void hvp_device(const float* theta, const float* v, float* hv, void* stream, const OpContext& ctx) override {
    NNSCOPE_CHECK(P_ == 0 || (theta && v && hv), ErrorCode::InvalidArgument, "hvp_device: null device pointer");
    std::lock_guard<std::mutex> lock(mu_);
    begin(ctx);
    try {
      inputs_ready_.record(stream);
      check(cudaStreamWaitEvent(static_cast<cudaStream_t>(s()), static_cast<cudaEvent_t>(inputs_ready_.handle()), 0),
            "cudaStreamWaitEvent");
      enqueue_hvp(theta, v, hv);
      hvp_done_.record(s());
      check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(hvp_done_.handle()), 0),
            "cudaStreamWaitEvent");
    } catch (...) {
      // The caller's stream may not be fenced: let nothing of ours outlive the call.
      stream_.synchronize_noexcept();
      throw;
    }
  }

  double loss_grad64(const double* theta, double* grad, const OpContext& ctx) override {
    return cpu_->loss_grad64(theta, grad, ctx);
  }
  void hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) override {
    cpu_->hvp64(theta, v, hv, ctx);
  }

  void loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords, std::size_t n_points,
                 double* out, const OpContext& ctx) override {
    NNSCOPE_CHECK(k == 0 || dirs != nullptr, ErrorCode::InvalidArgument, "loss_grid: directions missing");
    NNSCOPE_CHECK(n_points == 0 || k == 0 || coords != nullptr, ErrorCode::InvalidArgument,
                  "loss_grid: coordinates missing");
    mk::check_int(k, "the number of directions");
    std::lock_guard<std::mutex> lock(mu_);
    begin(ctx);
    if (n_points == 0) return;
    const std::size_t ld = (P_ + 3) / 4 * 4;
    const std::size_t M = grid_block_points(P_, n_points);
    DeviceBuffer d_dirs(checked_mul(k, P_) * sizeof(float));
    DeviceBuffer d_coords(checked_mul(M, k) * sizeof(float));
    DeviceBuffer d_theta(checked_mul(M, ld) * sizeof(float));
    DeviceBuffer d_loss(M * sizeof(double)), d_sq(M * sizeof(double));
    // Declared after the buffers, so destroyed first: on an exception the queued
    // work ends before the buffers are freed.
    struct Drain {
      const Stream& st;
      ~Drain() { st.synchronize_noexcept(); }
    } drain{stream_};
    copy_to_device(theta_.data(), theta0, P_ * sizeof(float), s());
    if (k > 0) copy_to_device(d_dirs.data(), dirs, k * P_ * sizeof(float), s());
    std::vector<double> hl(M), hs(M);
    for (std::size_t b0 = 0; b0 < n_points; b0 += M) {
      ctx.check();
      const std::size_t m = std::min(M, n_points - b0);
      if (k > 0) copy_to_device(d_coords.data(), coords + b0 * k, m * k * sizeof(float), s());
      mk::run_grid_block(net_, rows_, work_, head_, (mk::mi64)m, (int)k, theta_.as<float>(), d_dirs.as<float>(),
                         d_coords.as<float>(), d_theta.as<float>(), (mk::mi64)ld, d_loss.as<double>(),
                         d_sq.as<double>(), s());
      copy_to_host(hl.data(), d_loss.data(), m * sizeof(double), s());
      copy_to_host(hs.data(), d_sq.data(), m * sizeof(double), s());
      stream_.synchronize();
      for (std::size_t q = 0; q < m; ++q) out[b0 + q] = hl[q] + (wd_ != 0.0 ? 0.5 * wd_ * hs[q] : 0.0);
      ctx.report(double(b0 + m), double(n_points));
    }
  }

 private:
  void* s() const noexcept { return stream_.handle(); }
  // out = H·v (+ wd·v) on the objective's stream (every entry written); the shared
  // core of hvp and hvp_device.
  void enqueue_hvp(const float* theta, const float* v, float* out) {
    mk::run_pass(net_, rows_, work_, head_, mk::kModeHvp, theta, v, out, loss_.as<double>(), s());
    if (wd_ != 0.0) mk::add_decay_launch((mk::mi64)P_, wd_, v, out, s());
  }
  void begin(const OpContext& ctx) {
    ctx.check();
    set_device(device_);
  }
  // Waits for the pass, adds wd/2·‖θ‖² (float64, index order, as the CPU objective).
  double finish_loss(const float* theta) {
    double l = 0.0;
    copy_to_host(&l, loss_.data(), sizeof(double), s());
    stream_.synchronize();
    if (wd_ != 0.0) {
      double sq = 0.0;
      for (std::size_t p = 0; p < P_; ++p) sq += double(theta[p]) * double(theta[p]);
      l += 0.5 * wd_ * sq;
    }
    return l;
  }

  std::mutex mu_;
  int device_;
  std::unique_ptr<models::Objective> cpu_;
  Stream stream_;
  Event inputs_ready_, hvp_done_;  // hvp_device's fences (recorded under mu_)
  mk::MNet net_;
  mk::MRows rows_;
  mk::HeadParams head_;
  mk::MWork work_;
  double wd_ = 0.0;
  std::size_t P_ = 0;
  DeviceBuffer work_buf_, y_, labels_, ic_, theta_, v_, out_, loss_;
};

}  // namespace

DeviceHvp& device_hvp(models::Objective& objective) {
  auto* d = dynamic_cast<DeviceHvp*>(&objective);
  NNSCOPE_CHECK(d != nullptr, ErrorCode::InvalidArgument,
                "the objective does not live on this GPU (make it with the CUDA backend's make_mlp_objective / "
                "make_pinn_objective to use its Hessian on the device)");
  return *d;
}

std::unique_ptr<models::Objective> make_gpu_mlp_objective(int device, const models::MlpSpec& spec,
                                                          const models::Dataset& data,
                                                          const std::vector<std::size_t>& indices) {
  // The CPU objective validates spec and data (and is the float64 reference).
  auto cpu = std::make_unique<models::MlpObjective>(spec, data, indices);
  mk::MProblem prob = mk::mlp_problem(spec, data, indices);
  return std::make_unique<GpuObjective>(device, std::move(cpu), std::move(prob));
}

std::unique_ptr<models::Objective> make_gpu_pinn_objective(int device, const models::PinnSpec& spec,
                                                           const models::PinnPoints& points) {
  auto cpu = std::make_unique<models::PinnObjective>(spec, points);
  mk::MProblem prob = mk::pinn_problem(spec, points);
  return std::make_unique<GpuObjective>(device, std::move(cpu), std::move(prob));
}

}  // namespace nnscope::cuda
