#include "base/device.h"

#include <atomic>

#include "hessian/space.h"
#include "models/objective.h"
#include "topology/basins.h"
#include "topology/knn.h"

namespace nnscope {

namespace {
std::atomic<GpuBackend*> g_backend{nullptr};
}

Device parse_device(const std::string& name) {
  if (name == "auto") return Device::Auto;
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  fail(ErrorCode::UnknownDevice, "unknown device '" + name + "' (expected 'auto', 'cpu' or 'cuda')");
}

const char* device_name(Device d) noexcept {
  switch (d) {
    case Device::Auto: return "auto";
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "cpu";
}

std::unique_ptr<models::Objective> GpuBackend::make_mlp_objective(const models::MlpSpec&, const models::Dataset&,
                                                                  const std::vector<std::size_t>&) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no model kernels");
}

std::unique_ptr<models::Objective> GpuBackend::make_pinn_objective(const models::PinnSpec&, const models::PinnPoints&) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no model kernels");
}

std::unique_ptr<hessian::Space> GpuBackend::make_dense_space(const float*, std::size_t) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no hessian kernels");
}

std::unique_ptr<hessian::Space> GpuBackend::make_objective_space(models::Objective&, const float*) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no hessian kernels");
}

attention::GpuAttention& GpuBackend::attention_ops() {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no attention kernels");
}

topology::BasinResult GpuBackend::topology_basins_grid(const double*, const topology::GridShape&,
                                                      topology::Neighborhood, const OpContext&) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no topology kernels");
}

topology::KnnLists GpuBackend::topology_knn(const double*, std::size_t, std::size_t, std::size_t, const OpContext&) {
  fail(ErrorCode::DeviceUnavailable, "this GPU backend has no topology kernels");
}

GpuBackend* gpu_backend() noexcept { return g_backend.load(std::memory_order_acquire); }
void set_gpu_backend(GpuBackend* backend) noexcept { g_backend.store(backend, std::memory_order_release); }

GpuInfo gpu_info() {
  if (GpuBackend* b = gpu_backend()) return b->info();
  GpuInfo info;
  info.reason = "nnscope was built without CUDA (nvcc was not found or NNSCOPE_CUDA=off)";
  return info;
}

Device resolve_device(Device requested) {
  if (requested == Device::Cpu) return Device::Cpu;
  GpuBackend* b = gpu_backend();
  if (b && b->available()) return Device::Cuda;
  if (requested == Device::Auto) return Device::Cpu;
  fail(ErrorCode::DeviceUnavailable,
       "device 'cuda' is not available: " + (b ? b->unavailable_reason() : gpu_info().reason));
}

GpuBackend& require_gpu() {
  if (resolve_device(Device::Cuda) == Device::Cuda) return *gpu_backend();
  fail(ErrorCode::DeviceUnavailable, "device 'cuda' is not available");
}

}  // namespace nnscope
