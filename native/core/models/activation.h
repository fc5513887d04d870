// nnscope core (models, internal): elementwise activation kernels with their
// first three derivatives, float32 and float64.
//
// Float32 tanh / sigmoid / exp use branch-free polynomial forms (Cephes-style range
// reduction, within a few ulp of the libm values) written so that the compiler
// vectorises the loops; float64 uses libm. GELU and softplus call libm erf / log1p
// in both precisions.
#pragma once
#include <cstddef>

#include "models/mlp.h"

namespace nnscope::models::detail {

// For a rows × n block (row-major, contiguous): z += bias (per column, when bias is
// not null; z is overwritten), then a = σ(z) and, where the pointers are not null,
// s1 = σ'(z), s2 = σ''(z), s3 = σ'''(z). a is required; s1, s2, s3 may be null.
template <typename T>
void act_forward(Activation act, std::size_t rows, std::size_t n, T* z, const T* bias, T* a, T* s1, T* s2, T* s3);

// Scalar reference forms (float64, libm) for tests: σ and its derivatives at z.
struct ActDerivs {
  double f, d1, d2, d3;
};
ActDerivs act_eval(Activation act, double z);

// Vectorisable float32 exp / tanh (exposed for tests and benches).
void vexp(std::size_t n, const float* x, float* y);
void vtanh(std::size_t n, const float* x, float* y);

}  // namespace nnscope::models::detail
