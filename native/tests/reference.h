// nnscope native tests: float64 references shared by the CPU and CUDA test files.
#pragma once
#include <cstddef>

#include "linalg/blas.h"

namespace nnscope::test {

// Element (i, j) of alpha·op(A)·op(B) + beta·c0 in float64, reading g.a and g.b
// with their leading dimensions and transposes (beta == 0 ignores c0).
inline double gemm_ref_at(const linalg::GemmArgs& g, std::size_t i, std::size_t j, double c0) {
  double s = 0.0;
  for (std::size_t p = 0; p < g.k; ++p) {
    const double av = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
    const double bv = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
    s += av * bv;
  }
  const double v = double(g.alpha) * s;
  return g.beta != 0.0f ? v + double(g.beta) * c0 : v;
}

}  // namespace nnscope::test
