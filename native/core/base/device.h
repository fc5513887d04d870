// nnscope core: devices. The core knows GPUs only through the GpuBackend
// interface below; native/cuda implements it and the addon (or a test) installs it
// with set_gpu_backend(). The core never includes a CUDA header.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"

namespace nnscope {

enum class Device { Auto, Cpu, Cuda };

// Parses "auto" | "cpu" | "cuda"; throws ErrorCode::UnknownDevice otherwise.
Device parse_device(const std::string& name);
const char* device_name(Device d) noexcept;

struct GpuInfo {
  bool compiled = false;    // the build includes CUDA kernels
  bool available = false;   // a usable GPU answered
  std::string reason;       // why not available (empty when available)
  int device_count = 0;
  int device = 0;           // the device nnscope uses
  std::string name;
  int cc_major = 0, cc_minor = 0;
  std::size_t total_memory = 0, free_memory = 0;
  int multiprocessors = 0;
  int driver_version = 0, runtime_version = 0;  // CUDA versions as 1000*major + 10*minor
  std::string architectures;                    // compiled targets, e.g. "sm_80 sm_90 compute_90"
};

namespace linalg {
struct GemmArgs;
struct GemvArgs;
}  // namespace linalg
namespace models {
class Objective;
struct MlpSpec;
struct Dataset;
struct PinnSpec;
struct PinnPoints;
}  // namespace models
namespace hessian {
class Space;
}  // namespace hessian
namespace topology {
struct BasinResult;
struct GridShape;
struct KnnLists;
enum class Neighborhood;
}  // namespace topology
namespace attention {
class GpuAttention;
}  // namespace attention

// The GPU side of every op. Pointers are host pointers: the backend stages data
// through device memory itself. Methods may throw nnscope::Error (codes Cuda,
// OutOfMemory, Cancelled, DeviceUnavailable).
class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  // Full report (queries free memory: not for hot paths).
  virtual GpuInfo info() = 0;
  // Cheap, cached after the first probe.
  virtual bool available() = 0;
  virtual std::string unavailable_reason() = 0;

  // ---- linalg (contracts as in linalg/blas.h)
  virtual void sgemm(const linalg::GemmArgs& args, const OpContext& ctx) = 0;
  virtual void sgemv(const linalg::GemvArgs& args, const OpContext& ctx) = 0;
  virtual double sdot(std::size_t n, const float* x, const float* y) = 0;
  virtual void saxpy(std::size_t n, float alpha, const float* x, float* y) = 0;
  virtual double snrm2(std::size_t n, const float* x) = 0;

  // ---- models (contracts as in models/objective.h, mlp.h, pinn.h): objectives whose
  // data lives on the GPU. θ, v, grad, hv, coords stay host pointers; the float64
  // reference paths may run on the CPU.
  // The defaults throw DeviceUnavailable (a backend without these kernels).
  virtual std::unique_ptr<models::Objective> make_mlp_objective(const models::MlpSpec& spec,
                                                                const models::Dataset& data,
                                                                const std::vector<std::size_t>& indices);
  virtual std::unique_ptr<models::Objective> make_pinn_objective(const models::PinnSpec& spec,
                                                                 const models::PinnPoints& points);

  // ---- hessian (contracts as in hessian/space.h): Krylov spaces whose vectors, basis
  // and products stay in device memory. A dense symmetric n×n float32 matrix (copied
  // to the device), or the Hessian at θ of an objective made by make_*_objective of
  // this backend (θ copied; the objective must outlive the space). The defaults throw
  // DeviceUnavailable.
  virtual std::unique_ptr<hessian::Space> make_dense_space(const float* a, std::size_t n);
  virtual std::unique_ptr<hessian::Space> make_objective_space(models::Objective& objective,
                                                               const float* theta);

  // ---- topology (contracts in topology/basins.h, topology/knn.h; GPU limits in
  // cuda/topology.h). The defaults throw DeviceUnavailable.
  virtual topology::BasinResult topology_basins_grid(const double* values, const topology::GridShape& grid,
                                                     topology::Neighborhood nb, const OpContext& ctx);
  virtual topology::KnnLists topology_knn(const double* points, std::size_t n, std::size_t dim, std::size_t k,
                                          const OpContext& ctx);

  // ---- attention (contracts in attention/gpu.h): host pointers in, host results out.
  // The default throws DeviceUnavailable.
  virtual attention::GpuAttention& attention_ops();
};

// The installed backend, or nullptr (a CPU-only build, or nothing installed).
GpuBackend* gpu_backend() noexcept;
void set_gpu_backend(GpuBackend* backend) noexcept;

// info() of the installed backend, or {compiled: false, reason: "..."}.
GpuInfo gpu_info();

// Resolves a request: Auto → Cuda when a backend is installed and a GPU is
// available, else Cpu. Cuda with no usable GPU throws DeviceUnavailable with the
// reason. Never returns Auto.
Device resolve_device(Device requested);

// The backend for a resolved Cuda device (throws DeviceUnavailable if none).
GpuBackend& require_gpu();

}  // namespace nnscope
