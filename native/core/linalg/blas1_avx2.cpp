// nnscope core: level-1/2 kernels, AVX2+FMA tier (compiled with -mavx2 -mfma).
// Contracts in gemm_kernels.h. Tails use masked loads (vmaskmov), so every
// element goes through the same vector arithmetic.
#include "linalg/gemm_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace nnscope::linalg::detail {
namespace {

// Lane mask with the first r (< 8) of 8 lanes on.
inline __m256i mask8(std::size_t r) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r)), idx);
}
inline __m128i mask4(std::size_t r) {
  const __m128i idx = _mm_setr_epi32(0, 1, 2, 3);
  return _mm_cmpgt_epi32(_mm_set1_epi32(int(r)), idx);
}

inline double hsum(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

double dot(std::size_t n, const float* x, const float* y) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), _mm256_cvtps_pd(_mm_loadu_ps(y + i)), a0);
    a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), _mm256_cvtps_pd(_mm_loadu_ps(y + i + 4)), a1);
    a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), _mm256_cvtps_pd(_mm_loadu_ps(y + i + 8)), a2);
    a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), _mm256_cvtps_pd(_mm_loadu_ps(y + i + 12)), a3);
  }
  for (; i < n; i += 4) {
    const __m128i m = mask4(n - i < 4 ? n - i : 4);
    a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_maskload_ps(x + i, m)), _mm256_cvtps_pd(_mm_maskload_ps(y + i, m)), a0);
  }
  return hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
}

double sumsq(std::size_t n, const float* x) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256d d0 = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), d1 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    const __m256d d2 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), d3 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
    a0 = _mm256_fmadd_pd(d0, d0, a0);
    a1 = _mm256_fmadd_pd(d1, d1, a1);
    a2 = _mm256_fmadd_pd(d2, d2, a2);
    a3 = _mm256_fmadd_pd(d3, d3, a3);
  }
  for (; i < n; i += 4) {
    const __m256d d = _mm256_cvtps_pd(_mm_maskload_ps(x + i, mask4(n - i < 4 ? n - i : 4)));
    a0 = _mm256_fmadd_pd(d, d, a0);
  }
  return hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
}

void axpy(std::size_t n, float alpha, const float* x, float* y) {
  const __m256 va = _mm256_set1_ps(alpha);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 y0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    const __m256 y1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
    const __m256 y2 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16));
    const __m256 y3 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24));
    _mm256_storeu_ps(y + i, y0);
    _mm256_storeu_ps(y + i + 8, y1);
    _mm256_storeu_ps(y + i + 16, y2);
    _mm256_storeu_ps(y + i + 24, y3);
  }
  for (; i < n; i += 8) {
    const __m256i m = mask8(n - i < 8 ? n - i : 8);
    const __m256 r = _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
    _mm256_maskstore_ps(y + i, m, r);
  }
}

template <int R>
inline __attribute__((always_inline)) void rows_dot(std::size_t n, const float* a, std::size_t lda, const float* x,
                                                    float* out) {
  __m256 acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + j), x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + j + 8), x1, acc1[r]);
    }
  }
  for (; j < n; j += 8) {
    const __m256i m = mask8(n - j < 8 ? n - j : 8);
    const __m256 xv = _mm256_maskload_ps(x + j, m);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc0[r] = _mm256_fmadd_ps(_mm256_maskload_ps(a + r * lda + j, m), xv, acc0[r]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) out[r] = hsum(_mm256_add_ps(acc0[r], acc1[r]));
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

void gemv_t(std::size_t rows, std::size_t cols, const float* a, std::size_t lda, const float* x, float* acc) {
  for (std::size_t j = 0; j < cols; ++j) acc[j] = 0.0f;
  std::size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float* a0 = a + i * lda;
    const float* a1 = a0 + lda;
    const float* a2 = a1 + lda;
    const float* a3 = a2 + lda;
    const __m256 x0 = _mm256_set1_ps(x[i]), x1 = _mm256_set1_ps(x[i + 1]);
    const __m256 x2 = _mm256_set1_ps(x[i + 2]), x3 = _mm256_set1_ps(x[i + 3]);
    for (std::size_t j = 0; j < cols; j += 8) {
      if (cols - j >= 8) {
        __m256 v = _mm256_loadu_ps(acc + j);
        v = _mm256_fmadd_ps(x0, _mm256_loadu_ps(a0 + j), v);
        v = _mm256_fmadd_ps(x1, _mm256_loadu_ps(a1 + j), v);
        v = _mm256_fmadd_ps(x2, _mm256_loadu_ps(a2 + j), v);
        v = _mm256_fmadd_ps(x3, _mm256_loadu_ps(a3 + j), v);
        _mm256_storeu_ps(acc + j, v);
      } else {
        const __m256i m = mask8(cols - j);
        __m256 v = _mm256_maskload_ps(acc + j, m);
        v = _mm256_fmadd_ps(x0, _mm256_maskload_ps(a0 + j, m), v);
        v = _mm256_fmadd_ps(x1, _mm256_maskload_ps(a1 + j, m), v);
        v = _mm256_fmadd_ps(x2, _mm256_maskload_ps(a2 + j, m), v);
        v = _mm256_fmadd_ps(x3, _mm256_maskload_ps(a3 + j, m), v);
        _mm256_maskstore_ps(acc + j, m, v);
      }
    }
  }
  for (; i < rows; ++i) {
    const float* a0 = a + i * lda;
    const __m256 x0 = _mm256_set1_ps(x[i]);
    for (std::size_t j = 0; j < cols; j += 8) {
      const __m256i m = mask8(cols - j < 8 ? cols - j : 8);
      const __m256 v = _mm256_fmadd_ps(x0, _mm256_maskload_ps(a0 + j, m), _mm256_maskload_ps(acc + j, m));
      _mm256_maskstore_ps(acc + j, m, v);
    }
  }
}

const Blas1Kernel kKernel = {"avx2", dot, sumsq, axpy, gemv_n, gemv_t};

}  // namespace

const Blas1Kernel* blas1_kernel_avx2() { return &kKernel; }

}  // namespace nnscope::linalg::detail

#else

namespace nnscope::linalg::detail {
const Blas1Kernel* blas1_kernel_avx2() { return nullptr; }
}  // namespace nnscope::linalg::detail

#endif
