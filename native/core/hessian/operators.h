// nnscope core, hessian family: the ready-made host operators.
#pragma once
#include <cstddef>

#include "hessian/space.h"
#include "models/objective.h"

namespace nnscope::hessian {

// A dense symmetric n×n matrix (row-major; only symmetry-consistent input is
// meaningful: A is used as given, y = A·x by a threaded GEMV). The matrix is
// borrowed, not copied, and must outlive the operator.
template <typename T>
class DenseOperator final : public Operator<T> {
 public:
  DenseOperator(const T* a, std::size_t n) : a_(a), n_(n) {}
  std::size_t dim() const override { return n_; }
  void apply(const T* x, T* y, const OpContext& ctx) override;

 private:
  const T* a_;
  std::size_t n_;
};

// max_ij |A_ij − A_ji| / max(1, max_ij |A_ij|): the caller's symmetry check.
template <typename T>
double asymmetry(const T* a, std::size_t n);

// The Hessian of a model objective at θ: y = ∇²L(θ)·x by the objective's exact HVP
// (float32: Objective::hvp; float64: Objective::hvp64, the reference path). θ is
// borrowed. The objective's data (full set or a fixed mini-batch) defines which
// Hessian this is.
class ModelOperator final : public Operator<float> {
 public:
  ModelOperator(models::Objective& f, const float* theta) : f_(f), theta_(theta) {}
  std::size_t dim() const override { return f_.dim(); }
  void apply(const float* x, float* y, const OpContext& ctx) override { f_.hvp(theta_, x, y, ctx); }

 private:
  models::Objective& f_;
  const float* theta_;
};

class ModelOperator64 final : public Operator<double> {
 public:
  ModelOperator64(models::Objective& f, const double* theta) : f_(f), theta_(theta) {}
  std::size_t dim() const override { return f_.dim(); }
  void apply(const double* x, double* y, const OpContext& ctx) override { f_.hvp64(theta_, x, y, ctx); }

 private:
  models::Objective& f_;
  const double* theta_;
};

}  // namespace nnscope::hessian
