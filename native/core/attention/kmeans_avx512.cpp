// nnscope core, attention: K-means assignment kernels, AVX-512F tier (compiled
// with the AVX-512 flags). Contract in kmeans_kernels.h.
#include "attention/kmeans_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX512F__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace nnscope::attention::detail {
namespace {

// Per-lane state: best value v, its index i, second-best value w.
struct Lane {
  __m512 v, w;
  __m512i i;
};

inline void update(Lane& s, __m512 a, __m512i ia) {
  const __mmask16 lt = _mm512_cmp_ps_mask(a, s.v, _CMP_LT_OQ);
  s.w = _mm512_mask_blend_ps(lt, _mm512_min_ps(s.w, a), s.v);
  s.v = _mm512_mask_blend_ps(lt, s.v, a);
  s.i = _mm512_mask_blend_epi32(lt, s.i, ia);
}

// Merge b into a: lexicographic (v, i) minimum; the loser's v joins the seconds.
inline void merge(Lane& a, const Lane& b) {
  const __mmask16 lt = _mm512_cmp_ps_mask(b.v, a.v, _CMP_LT_OQ);
  const __mmask16 eq = _mm512_cmp_ps_mask(b.v, a.v, _CMP_EQ_OQ);
  const __mmask16 take = lt | (eq & _mm512_cmplt_epi32_mask(b.i, a.i));
  const __m512 loser = _mm512_mask_blend_ps(take, b.v, a.v);
  a.w = _mm512_min_ps(_mm512_min_ps(a.w, b.w), loser);
  a.v = _mm512_mask_blend_ps(take, a.v, b.v);
  a.i = _mm512_mask_blend_epi32(take, a.i, b.i);
}

void argmin_rows(std::size_t rows, std::size_t k, const float* g, std::size_t ldg, const float* cn,
                 std::int32_t* label, float* best, float* second) {
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* gr = g + r * ldg;
    // Two independent trackers (even / odd vectors) to halve the dependency chain.
    Lane s0 = {inf, inf, _mm512_set1_epi32(0x7fffffff)}, s1 = s0;
    __m512i idx = lane;
    std::size_t j = 0;
    for (; j + 32 <= k; j += 32) {
      const __m512 a = _mm512_add_ps(_mm512_loadu_ps(gr + j), _mm512_loadu_ps(cn + j));
      const __m512 b = _mm512_add_ps(_mm512_loadu_ps(gr + j + 16), _mm512_loadu_ps(cn + j + 16));
      update(s0, a, idx);
      update(s1, b, _mm512_add_epi32(idx, step));
      idx = _mm512_add_epi32(idx, _mm512_add_epi32(step, step));
    }
    for (; j < k; j += 16) {
      const std::size_t rem = k - j < 16 ? k - j : 16;
      const __mmask16 m = __mmask16((1u << rem) - 1u);
      const __m512 a = _mm512_mask_add_ps(inf, m, _mm512_maskz_loadu_ps(m, gr + j), _mm512_maskz_loadu_ps(m, cn + j));
      update(s0, a, idx);
      idx = _mm512_add_epi32(idx, step);
    }
    merge(s0, s1);
    const float mv = _mm512_reduce_min_ps(s0.v);
    const __mmask16 at = _mm512_cmp_ps_mask(s0.v, _mm512_set1_ps(mv), _CMP_EQ_OQ);
    const int mi = _mm512_mask_reduce_min_epi32(at, s0.i);
    const __mmask16 win = _mm512_cmpeq_epi32_mask(s0.i, _mm512_set1_epi32(mi)) & at;
    // Second best: every lane's second, and the best of every other lane.
    const __m512 others = _mm512_mask_blend_ps(win, s0.v, inf);
    label[r] = mi;
    best[r] = mv;
    second[r] = _mm512_reduce_min_ps(_mm512_min_ps(s0.w, others));
  }
}

// exp(x) for x ≤ 0: x clamped at −87.3, x = n·ln2 + r, Cephes expf polynomial,
// y·2^n by scalef.
inline __m512 exp_neg(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}

double exp_shift_sum(std::size_t n, float* l, const double* w) {
  __m512 mv = _mm512_set1_ps(-__builtin_inff());
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(l + j));
  if (j < n) {
    const __mmask16 m = __mmask16((1u << (n - j)) - 1u);
    mv = _mm512_mask_max_ps(mv, m, mv, _mm512_maskz_loadu_ps(m, l + j));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
  __m512d z0 = _mm512_setzero_pd(), z1 = z0;
  for (j = 0; j < n; j += 16) {
    const std::size_t rem = n - j < 16 ? n - j : 16;
    const __mmask16 m = __mmask16((1u << rem) - 1u);
    const __m512 e = exp_neg(_mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, l + j), mx));  // off lanes: exp(0)
    _mm512_mask_storeu_ps(l + j, m, e);
    const __m512d e0 = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
    const __m512d e1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    const __mmask8 m0 = __mmask8(m & 0xff), m1 = __mmask8(m >> 8);
    z0 = _mm512_fmadd_pd(e0, _mm512_maskz_loadu_pd(m0, w + j), z0);
    z1 = _mm512_fmadd_pd(e1, _mm512_maskz_loadu_pd(m1, w + j + 8), z1);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(z0, z1));
}

const KmeansKernel kKernel = {"avx512", argmin_rows, exp_shift_sum};

}  // namespace

const KmeansKernel* kmeans_kernel_avx512() { return &kKernel; }

}  // namespace nnscope::attention::detail

#else
namespace nnscope::attention::detail {
const KmeansKernel* kmeans_kernel_avx512() { return nullptr; }
}  // namespace nnscope::attention::detail
#endif
