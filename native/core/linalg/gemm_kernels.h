// nnscope core, linalg internals: the per-ISA kernel tables behind sgemm_cpu and
// the level-1/2 routines. Not a public header.
//
// Each tier (generic, AVX2+FMA, AVX-512) lives in its own translation unit, the
// AVX ones compiled with their ISA flags (gemm_avx2.cpp, gemm_avx512.cpp,
// blas1_avx2.cpp, blas1_avx512.cpp). Those files include only this header and
// <immintrin.h>, define everything else with internal linkage, and use no
// standard-library templates, so no inline function compiled with AVX flags can
// be picked by the linker for code that runs on a baseline CPU.
//
// Packed layouts (shared by every tier; mr, nr are the tier's register block):
//  * A block (rows × kc of op(A)): ceil(rows/mr) panels of mr×kc, panel q at
//    offset q·mr·kc, element (r, p) of the panel at [p·mr + r]; rows past the
//    end are zero.
//  * B block (kc × cols of op(B)): ceil(cols/nr) panels of kc×nr, panel q at
//    offset q·nr·kc, element (p, c) at [p·nr + c]; columns past the end are zero.
#pragma once
#include <cstddef>

namespace nnscope::linalg::detail {

struct GemmKernel {
  const char* name;
  int mr, nr;       // register block of the micro-kernel
  std::size_t kc;   // depth of a packed block (the mr×kc A panel stays in L1)
  std::size_t nb;   // columns of the packed B block one task sweeps (kc×nb stays in L2), multiple of nr
  // Packs rows [0, rows) × [0, kc) of op(A). With trans == false element (r, p)
  // is a[r·lda + p], with trans == true a[p·lda + r]. out as described above.
  void (*pack_a)(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out);
  // Packs [0, kc) × cols [0, cols) of op(B): element (p, c) is b[p·ldb + c]
  // (trans == false) or b[c·ldb + p] (trans == true).
  void (*pack_b)(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out);
  // C[rows × cols] = alpha · Ap · Bp + beta · C over packed blocks of depth kc
  // (kc ≥ 1). beta == 0 writes C without reading it. Every element is the same
  // expression, whatever tile (full or edge) it falls in:
  //   acc = fma chain over p = 0..kc-1 in order (mul+add on the generic tier),
  //   C = alpha·acc (beta == 0), or alpha·acc + beta·C (one fma where the tier has it).
  void (*macro)(std::size_t rows, std::size_t cols, std::size_t kc, const float* ap, const float* bp, float alpha,
                float beta, float* c, std::size_t ldc);
};

// Level-1 and level-2 kernels (all single-threaded; the drivers in blas1.cpp split
// the work in thread-count-independent chunks).
struct Blas1Kernel {
  const char* name;
  // sum x[i]·y[i] in double, in a fixed order that depends only on n.
  double (*dot)(std::size_t n, const float* x, const float* y);
  // sum x[i]² in double.
  double (*sumsq)(std::size_t n, const float* x);
  // y += alpha·x (one fma per element where the tier has it).
  void (*axpy)(std::size_t n, float alpha, const float* x, float* y);
  // Non-transposed gemv on rows [0, rows): y[i] = alpha·(A[i,:]·x) + beta·y[i]
  // (beta == 0: y not read). The row dot accumulates in float, same order for
  // every row.
  void (*gemv_n)(std::size_t rows, std::size_t n, float alpha, const float* a, std::size_t lda, const float* x,
                 float beta, float* y);
  // Transposed gemv partial: acc[0..cols) = sum over i in [0, rows) of x[i]·A[i, 0..cols)
  // in row order (acc is overwritten, one fma per row and element where the tier has it).
  void (*gemv_t)(std::size_t rows, std::size_t cols, const float* a, std::size_t lda, const float* x, float* acc);
};

const GemmKernel& gemm_kernel_generic();
// nullptr when the build has no such tier (non-x86 target).
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();

const Blas1Kernel& blas1_kernel_generic();
const Blas1Kernel* blas1_kernel_avx2();
const Blas1Kernel* blas1_kernel_avx512();

// The tables for the active ISA tier (base/cpu.h: active_isa()).
const GemmKernel& gemm_kernel();
const Blas1Kernel& blas1_kernel();

}  // namespace nnscope::linalg::detail
