// nnscope CUDA backend: GPU objectives for the native models (models/objective.h).
// A plain C++ header (no CUDA headers): backend.cpp hooks these into
// GpuBackend::make_mlp_objective / make_pinn_objective.
//
// The objective uploads its data once (float32 rows, targets, labels) at
// construction; each call copies θ (and v) in, runs the passes of
// models_kernels.cuh on its own stream (SGEMMs for the layer products, own kernels
// for activations, heads, bias gradients and the loss reduction) and copies the
// result out. Results are deterministic (same call, same bits). loss_grad64 / hvp64
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

// Points per loss_grid block for P parameters (the device holds M × P floats of
// perturbed parameters; cancellation and progress happen between blocks).
std::size_t grid_block_points(std::size_t P, std::size_t n_points);

}  // namespace nnscope::cuda
