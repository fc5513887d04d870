// nnscope core: level-1/2 kernels, AVX-512F tier (compiled with -mavx512f/vl/bw/dq
// -mavx2 -mfma). Contracts in gemm_kernels.h. Tails use masked loads, so every
// element goes through the same vector arithmetic.
#include "linalg/gemm_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 intrinsics trip its own -W(maybe-)uninitialized on the
// _mm512_undefined_*() placeholders (GCC bug 105593); silence that here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace nnscope::linalg::detail {
namespace {

inline __mmask16 tail_mask(std::size_t r) { return __mmask16((1u << r) - 1u); }  // r < 16

// Fixed-order reduction of four double accumulators.
inline double reduce4(__m512d a0, __m512d a1, __m512d a2, __m512d a3) {
  return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

double dot(std::size_t n, const float* x, const float* y) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    const __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
    a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x0)), _mm512_cvtps_pd(_mm512_castps512_ps256(y0)), a0);
    a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1))),
                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y0), 1))), a1);
    a2 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x1)), _mm512_cvtps_pd(_mm512_castps512_ps256(y1)), a2);
    a3 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x1), 1))),
                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y1), 1))), a3);
  }
  for (; i < n; i += 8) {
    const std::size_t r = n - i < 8 ? n - i : 8;
    const __mmask8 m = __mmask8((1u << r) - 1u);
    const __m256 xv = _mm256_maskz_loadu_ps(m, x + i), yv = _mm256_maskz_loadu_ps(m, y + i);
    a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(xv), _mm512_cvtps_pd(yv), a0);
  }
  return reduce4(a0, a1, a2, a3);
}

double sumsq(std::size_t n, const float* x) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512d d0 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    const __m512d d1 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    const __m512d d2 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16));
    const __m512d d3 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24));
    a0 = _mm512_fmadd_pd(d0, d0, a0);
    a1 = _mm512_fmadd_pd(d1, d1, a1);
    a2 = _mm512_fmadd_pd(d2, d2, a2);
    a3 = _mm512_fmadd_pd(d3, d3, a3);
  }
  for (; i < n; i += 8) {
    const std::size_t r = n - i < 8 ? n - i : 8;
    const __m512d d = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(__mmask8((1u << r) - 1u), x + i));
    a0 = _mm512_fmadd_pd(d, d, a0);
  }
  return reduce4(a0, a1, a2, a3);
}

void axpy(std::size_t n, float alpha, const float* x, float* y) {
  const __m512 va = _mm512_set1_ps(alpha);
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
    __m512 y2 = _mm512_loadu_ps(y + i + 32), y3 = _mm512_loadu_ps(y + i + 48);
    y0 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), y0);
    y1 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + 16), y1);
    y2 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + 32), y2);
    y3 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + 48), y3);
    _mm512_storeu_ps(y + i, y0);
    _mm512_storeu_ps(y + i + 16, y1);
    _mm512_storeu_ps(y + i + 32, y2);
    _mm512_storeu_ps(y + i + 48, y3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    const __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

// Dot products of R rows with x in float, two accumulators per row; the
// per-row operation sequence is the same for every R.
template <int R>
inline __attribute__((always_inline)) void rows_dot(std::size_t n, const float* a, std::size_t lda, const float* x,
                                                    float* out) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  std::size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(a + r * lda + j), x0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(_mm512_loadu_ps(a + r * lda + j + 16), x1, acc1[r]);
    }
  }
  for (; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xFFFF) : tail_mask(n - j);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc0[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + r * lda + j), xv, acc0[r]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}

inline float update(float alpha, float d, float beta, float y) {
  const __m128 sa = _mm_set_ss(alpha), sd = _mm_set_ss(d);
  return _mm_cvtss_f32(beta == 0.0f ? _mm_mul_ss(sa, sd)
                                    : _mm_fmadd_ss(sa, sd, _mm_mul_ss(_mm_set_ss(beta), _mm_set_ss(y))));
}

void gemv_n(std::size_t rows, std::size_t n, float alpha, const float* a, std::size_t lda, const float* x, float beta,
            float* y) {
  float d[4];
  std::size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    rows_dot<4>(n, a + i * lda, lda, x, d);
    for (int r = 0; r < 4; ++r) y[i + r] = update(alpha, d[r], beta, y[i + r]);
  }
  for (; i < rows; ++i) {
    rows_dot<1>(n, a + i * lda, lda, x, d);
    y[i] = update(alpha, d[0], beta, y[i]);
  }
}

// acc[0..cols) = Σ_i x[i]·A[i, 0..cols), rows in order, four rows per pass over acc.
void gemv_t(std::size_t rows, std::size_t cols, const float* a, std::size_t lda, const float* x, float* acc) {
  for (std::size_t j = 0; j < cols; j += 16) {
    const __mmask16 m = cols - j >= 16 ? __mmask16(0xFFFF) : tail_mask(cols - j);
    _mm512_mask_storeu_ps(acc + j, m, _mm512_setzero_ps());
  }
  std::size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float* a0 = a + i * lda;
    const float* a1 = a0 + lda;
    const float* a2 = a1 + lda;
    const float* a3 = a2 + lda;
    const __m512 x0 = _mm512_set1_ps(x[i]), x1 = _mm512_set1_ps(x[i + 1]);
    const __m512 x2 = _mm512_set1_ps(x[i + 2]), x3 = _mm512_set1_ps(x[i + 3]);
    std::size_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      __m512 v = _mm512_loadu_ps(acc + j);
      v = _mm512_fmadd_ps(x0, _mm512_loadu_ps(a0 + j), v);
      v = _mm512_fmadd_ps(x1, _mm512_loadu_ps(a1 + j), v);
      v = _mm512_fmadd_ps(x2, _mm512_loadu_ps(a2 + j), v);
      v = _mm512_fmadd_ps(x3, _mm512_loadu_ps(a3 + j), v);
      _mm512_storeu_ps(acc + j, v);
    }
    if (j < cols) {
      const __mmask16 m = tail_mask(cols - j);
      __m512 v = _mm512_maskz_loadu_ps(m, acc + j);
      v = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, a0 + j), v);
      v = _mm512_fmadd_ps(x1, _mm512_maskz_loadu_ps(m, a1 + j), v);
      v = _mm512_fmadd_ps(x2, _mm512_maskz_loadu_ps(m, a2 + j), v);
      v = _mm512_fmadd_ps(x3, _mm512_maskz_loadu_ps(m, a3 + j), v);
      _mm512_mask_storeu_ps(acc + j, m, v);
    }
  }
  for (; i < rows; ++i) {
    const float* a0 = a + i * lda;
    const __m512 x0 = _mm512_set1_ps(x[i]);
    for (std::size_t j = 0; j < cols; j += 16) {
      const __mmask16 m = cols - j >= 16 ? __mmask16(0xFFFF) : tail_mask(cols - j);
      const __m512 v = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, a0 + j), _mm512_maskz_loadu_ps(m, acc + j));
      _mm512_mask_storeu_ps(acc + j, m, v);
    }
  }
}

const Blas1Kernel kKernel = {"avx512", dot, sumsq, axpy, gemv_n, gemv_t};

}  // namespace

const Blas1Kernel* blas1_kernel_avx512() { return &kKernel; }

}  // namespace nnscope::linalg::detail

#else

namespace nnscope::linalg::detail {
const Blas1Kernel* blas1_kernel_avx512() { return nullptr; }
}  // namespace nnscope::linalg::detail

#endif
