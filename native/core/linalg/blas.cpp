// Argument validation and device routing for linalg (the kernels live in
// gemm*.cpp and blas1*.cpp).
#include "linalg/blas.h"

#include <string>

#include "base/buffer.h"

namespace nnscope::linalg {

namespace {
// Highest element index an m×n row-major view with leading dimension ld touches.
void check_view(const char* name, const void* p, std::size_t rows, std::size_t cols, std::size_t ld) {
  if (rows == 0 || cols == 0) return;
  NNSCOPE_CHECK(p != nullptr, ErrorCode::InvalidArgument, std::string(name) + " is null");
  NNSCOPE_CHECK(ld >= cols, ErrorCode::Shape,
                std::string("leading dimension of ") + name + " (" + std::to_string(ld) +
                    ") is smaller than its row length (" + std::to_string(cols) + ")");
  checked_mul(rows - 1, ld);  // the last row's offset must fit in size_t
}
}  // namespace

void validate(const GemmArgs& g) {
  check_view("A", g.a, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda);
  check_view("B", g.b, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb);
  check_view("C", g.c, g.m, g.n, g.ldc);
  checked_mul(checked_mul(g.m, g.n), g.k == 0 ? 1 : g.k);  // flop count fits
}

void validate(const GemvArgs& g) {
  check_view("A", g.a, g.m, g.n, g.lda);
  const std::size_t xl = g.trans ? g.m : g.n, yl = g.trans ? g.n : g.m;
  if (yl > 0) NNSCOPE_CHECK(g.y != nullptr, ErrorCode::InvalidArgument, "y is null");
  if (xl > 0 && yl > 0) NNSCOPE_CHECK(g.x != nullptr, ErrorCode::InvalidArgument, "x is null");
}

void sgemm(Device device, const GemmArgs& g, const OpContext& ctx) {
  validate(g);
  if (resolve_device(device) == Device::Cuda) return require_gpu().sgemm(g, ctx);
  sgemm_cpu(g, ctx);
}

void sgemv(Device device, const GemvArgs& g, const OpContext& ctx) {
  validate(g);
  if (resolve_device(device) == Device::Cuda) return require_gpu().sgemv(g, ctx);
  sgemv_cpu(g, ctx);
}

double sdot(Device device, std::size_t n, const float* x, const float* y) {
  if (resolve_device(device) == Device::Cuda) return require_gpu().sdot(n, x, y);
  return sdot_cpu(n, x, y);
}

double snrm2(Device device, std::size_t n, const float* x) {
  if (resolve_device(device) == Device::Cuda) return require_gpu().snrm2(n, x);
  return snrm2_cpu(n, x);
}

void saxpy(Device device, std::size_t n, float alpha, const float* x, float* y) {
  if (resolve_device(device) == Device::Cuda) return require_gpu().saxpy(n, alpha, x, y);
  saxpy_cpu(n, alpha, x, y);
}

}  // namespace nnscope::linalg
