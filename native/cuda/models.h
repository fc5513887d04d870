// nnscope CUDA backend: GPU objectives for the native models (models/objective.h).
// A plain C++ header (no CUDA headers): backend.cpp hooks these into
// GpuBackend::make_mlp_objective / make_pinn_objective.
//
// The objective uploads its data once (float32 rows, targets, labels) at
// construction; each call copies θ (and v) in, runs the passes of
// models_kernels.cuh on its own stream (SGEMMs for the layer products, own kernels
// for activations, heads, bias gradients and the loss reduction) and copies the
// result out (hvp_device below: the same passes on device pointers, no copies).
// Results are deterministic (same call, same bits). loss_grad64 / hvp64
// delegate to the CPU objective held inside (the float64 reference). Calls on one
// objective are serialised by a mutex; different objectives may run concurrently.
//
// Throws what the CPU objectives throw for a bad spec or data, DeviceUnavailable /
// Cuda / OutOfMemory from the device, TooLarge when a size exceeds the kernels'
// 32-bit range.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "base/context.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/objective.h"
#include "models/pinn.h"

namespace nnscope::cuda {

std::unique_ptr<models::Objective> make_gpu_mlp_objective(int device, const models::MlpSpec& spec,
                                                          const models::Dataset& data,
                                                          const std::vector<std::size_t>& indices);
std::unique_ptr<models::Objective> make_gpu_pinn_objective(int device, const models::PinnSpec& spec,
                                                           const models::PinnPoints& points);

// The device side of a GPU objective (those made by make_gpu_*_objective): its
// Hessian-vector product on device pointers, for code that keeps its vectors on the
// GPU (the hessian spaces of hessian.h). Lives as long as the objective.
class DeviceHvp {
 public:
  // The device the objective's data lives on.
  virtual int device() const = 0;
  virtual std::size_t dim() const = 0;
  // hv = ∇²L(θ)·v (+ weight_decay·v), the passes of Objective::hvp without the
  // copies: theta, v, hv are device pointers on device() of dim() floats (hv must
  // not overlap theta or v). Asynchronous: the passes run on the objective's stream
  // after the work already enqueued on `stream` (a cudaStream_t as void*; it is
  // made to wait for them with events), so work enqueued on `stream` afterwards
  // sees hv; the host does not wait. theta and v must stay valid until that
  // point of `stream`. Serialised with the objective's other calls (its mutex while
  // enqueuing, its stream on the device). Checks ctx for cancellation first;
  // reports no progress. Throws Cancelled, Cuda, OutOfMemory.
  virtual void hvp_device(const float* theta, const float* v, float* hv, void* stream, const OpContext& ctx) = 0;

 protected:
  ~DeviceHvp() = default;
};

// The device HVP of `objective`, or InvalidArgument when it is not a GPU objective
// of this backend (e.g. a CPU objective: "the objective does not live on this GPU").
DeviceHvp& device_hvp(models::Objective& objective);

// Points per loss_grid block for P parameters (the device holds M × P floats of
// perturbed parameters; cancellation and progress happen between blocks).
std::size_t grid_block_points(std::size_t P, std::size_t n_points);

}  // namespace nnscope::cuda
