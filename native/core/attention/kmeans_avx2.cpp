// nnscope core, attention: K-means assignment kernels, AVX2 tier (compiled with
// -mavx2 -mfma). Contract in kmeans_kernels.h.
#include "attention/kmeans_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__)
#include <immintrin.h>

namespace nnscope::attention::detail {
namespace {

// Per-lane state: best value v, its index i, second-best value w.
struct Lane {
  __m256 v, w;
  __m256i i;
};

inline void update(Lane& s, __m256 a, __m256i ia) {
  const __m256 lt = _mm256_cmp_ps(a, s.v, _CMP_LT_OQ);
  s.w = _mm256_blendv_ps(_mm256_min_ps(s.w, a), s.v, lt);
  s.v = _mm256_blendv_ps(s.v, a, lt);
  s.i = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(s.i), _mm256_castsi256_ps(ia), lt));
}

void argmin_rows(std::size_t rows, std::size_t k, const float* g, std::size_t ldg, const float* cn,
                 std::int32_t* label, float* best, float* second) {
  const float finf = __builtin_inff();
  const __m256 inf = _mm256_set1_ps(finf);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(8);
  const std::size_t kv = k / 8 * 8;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* gr = g + r * ldg;
    Lane s0 = {inf, inf, _mm256_set1_epi32(0x7fffffff)}, s1 = s0;
    __m256i idx = lane;
    std::size_t j = 0;
    for (; j + 16 <= kv; j += 16) {
      const __m256 a = _mm256_add_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(cn + j));
      const __m256 b = _mm256_add_ps(_mm256_loadu_ps(gr + j + 8), _mm256_loadu_ps(cn + j + 8));
      update(s0, a, idx);
      update(s1, b, _mm256_add_epi32(idx, step));
      idx = _mm256_add_epi32(idx, _mm256_add_epi32(step, step));
    }
    for (; j < kv; j += 8) {
      update(s0, _mm256_add_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(cn + j)), idx);
      idx = _mm256_add_epi32(idx, step);
    }
    float vs[16], ws[16];
    std::int32_t is[16];
    _mm256_storeu_ps(vs, s0.v);
    _mm256_storeu_ps(vs + 8, s1.v);
    _mm256_storeu_ps(ws, s0.w);
    _mm256_storeu_ps(ws + 8, s1.w);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(is), s0.i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(is + 8), s1.i);
    float mv = finf, w = finf;
    std::int32_t mi = 0x7fffffff;
    int wl = -1;
    for (int q = 0; q < 16; ++q)
      if (vs[q] < mv || (vs[q] == mv && is[q] < mi)) {
        mv = vs[q];
        mi = is[q];
        wl = q;
      }
    for (int q = 0; q < 16; ++q) {
      if (ws[q] < w) w = ws[q];
      if (q != wl && vs[q] < w) w = vs[q];
    }
    for (std::size_t t = kv; t < k; ++t) {  // scalar tail: later indices, strict <
      const float v = gr[t] + cn[t];
      if (v < mv) {
        w = mv;
        mv = v;
        mi = static_cast<std::int32_t>(t);
      } else if (v < w) {
        w = v;
      }
    }
    label[r] = mi;
    best[r] = mv;
    second[r] = w;
  }
}

// exp(x) for x ≤ 0: x clamped at −87.3, x = n·ln2 + r, Cephes expf polynomial,
// 2^n by exponent bits.
inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

double exp_shift_sum(std::size_t n, float* l, const double* w) {
  float mx = l[0];
  for (std::size_t j = 1; j < n; ++j) mx = l[j] > mx ? l[j] : mx;
  const __m256 vm = _mm256_set1_ps(mx);
  __m256d z0 = _mm256_setzero_pd(), z1 = z0;
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(l + j), vm));
    _mm256_storeu_ps(l + j, e);
    z0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)), _mm256_loadu_pd(w + j), z0);
    z1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)), _mm256_loadu_pd(w + j + 4), z1);
  }
  double zs[4];
  _mm256_storeu_pd(zs, _mm256_add_pd(z0, z1));
  double z = (zs[0] + zs[1]) + (zs[2] + zs[3]);
  if (j < n) {
    float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (std::size_t q = j; q < n; ++q) t[q - j] = l[q] - mx;
    float e[8];
    _mm256_storeu_ps(e, exp_neg(_mm256_loadu_ps(t)));
    for (std::size_t q = j; q < n; ++q) {
      l[q] = e[q - j];
      z += double(e[q - j]) * w[q];
    }
  }
  return z;
}

const KmeansKernel kKernel = {"avx2", argmin_rows, exp_shift_sum};

}  // namespace

const KmeansKernel* kmeans_kernel_avx2() { return &kKernel; }

}  // namespace nnscope::attention::detail

#else
namespace nnscope::attention::detail {
const KmeansKernel* kmeans_kernel_avx2() { return nullptr; }
}  // namespace nnscope::attention::detail
#endif
