// TEMPORARY naive kernels (to be replaced by the packed, dispatched GEMM).
#include "linalg/blas.h"

namespace nnscope::linalg {

void sgemm_cpu(const GemmArgs& g, const OpContext& ctx) {
  for (std::size_t i = 0; i < g.m; ++i) {
    ctx.check();
    for (std::size_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < g.k; ++p) {
        const float av = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const float bv = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        s += double(av) * bv;
      }
      float& c = g.c[i * g.ldc + j];
      c = g.alpha * float(s) + (g.beta == 0.0f ? 0.0f : g.beta * c);
    }
  }
}
void sgemv_cpu(const GemvArgs& g, const OpContext& ctx) {
  GemmArgs a;
  (void)a;
  (void)g;
  (void)ctx;
}
double sdot_cpu(std::size_t n, const float* x, const float* y) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * y[i];
  return s;
}
double snrm2_cpu(std::size_t n, const float* x) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return __builtin_sqrt(s);
}
void saxpy_cpu(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace nnscope::linalg
