// nnscope core: dense linear algebra in single precision (row-major).
//
// Every function here has a CPU implementation in this folder; the routed forms
// (gemm, gemv, dot, axpy, nrm2) take a Device and call the GPU backend for
// Device::Cuda. Callers pass a resolved device (resolve_device) or Auto.
#pragma once
#include <cstddef>

#include "base/context.h"
#include "base/device.h"

namespace nnscope::linalg {

// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major with leading dimensions.
// op(A) is m×k: A is m×k (lda ≥ k) or, transposed, k×m (lda ≥ m); likewise op(B)
// is k×n: B is k×n (ldb ≥ n) or, transposed, n×k (ldb ≥ k). ldc ≥ n.
// beta == 0 writes C without reading it (NaN in C does not propagate), as BLAS does.
// m, n or k may be 0 (k == 0 scales C by beta). A, B must not alias C.
// The result is bit-identical for every thread count.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  std::size_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  std::size_t lda = 0;
  const float* b = nullptr;
  std::size_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;
  std::size_t ldc = 0;
};

// y[len] = alpha · op(A) · x + beta · y, A m×n row-major (lda ≥ n); op(A) = A
// (x has n entries, y has m) or Aᵀ (x has m, y has n). beta == 0 ignores y's contents.
struct GemvArgs {
  bool trans = false;
  std::size_t m = 0, n = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  std::size_t lda = 0;
  const float* x = nullptr;
  float beta = 0.0f;
  float* y = nullptr;
};

// Throws ErrorCode::InvalidArgument / Shape when the arguments are inconsistent
// (leading dimensions too small, null pointers with non-zero sizes, sizes whose
// product overflows). Every entry point calls it.
void validate(const GemmArgs& g);
void validate(const GemvArgs& g);

// ---- CPU implementations (multi-threaded over the global pool, ISA dispatch).
void sgemm_cpu(const GemmArgs& g, const OpContext& ctx = {});
void sgemv_cpu(const GemvArgs& g, const OpContext& ctx = {});
// Dot product and Euclidean norm accumulate in double (no overflow or
// cancellation surprises for float inputs) and return double.
double sdot_cpu(std::size_t n, const float* x, const float* y);
double snrm2_cpu(std::size_t n, const float* x);
// y += alpha · x
void saxpy_cpu(std::size_t n, float alpha, const float* x, float* y);

// ---- Device-routed forms.
void sgemm(Device device, const GemmArgs& g, const OpContext& ctx = {});
void sgemv(Device device, const GemvArgs& g, const OpContext& ctx = {});
double sdot(Device device, std::size_t n, const float* x, const float* y);
double snrm2(Device device, std::size_t n, const float* x);
void saxpy(Device device, std::size_t n, float alpha, const float* x, float* y);

}  // namespace nnscope::linalg
