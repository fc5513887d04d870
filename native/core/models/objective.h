// nnscope core: the differentiable objective every optimiser, Hessian operator
// and landscape sampler works with. A model bound to its data (an MLP with a
// dataset, the convection PINN with its collocation points) is an Objective.
#pragma once
#include <cstddef>
#include <vector>

#include "base/context.h"
#include "base/device.h"

namespace nnscope::models {

class Objective {
 public:
  virtual ~Objective() = default;

  // Number of parameters P (the length of theta, grad, v, hv).
  virtual std::size_t dim() const = 0;

  // L(θ). Float32 compute; deterministic for a given thread count and bit-identical
  // across thread counts (fixed data chunking, fixed reduction order).
  virtual double loss(const float* theta, const OpContext& ctx) = 0;
  // L(θ) and ∇L(θ) (reverse mode) into grad[P].
  virtual double loss_grad(const float* theta, float* grad, const OpContext& ctx) = 0;
  // H(θ)·v into hv[P]: exact (forward-over-reverse / R-operator), not finite differences.
  virtual void hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) = 0;

  // Float64 reference paths (same mathematics in double) for verification.
  virtual double loss_grad64(const double* theta, double* grad, const OpContext& ctx) = 0;
  virtual void hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) = 0;

  // out[i] = L(θ₀ + Σ_j coords[i·k + j] · dirs[j·P ..]) for i < n_points: the batched
  // loss over many parameter points (the landscape hot loop). dirs is k×P row-major.
  virtual void loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords,
                         std::size_t n_points, double* out, const OpContext& ctx) = 0;
};

}  // namespace nnscope::models
