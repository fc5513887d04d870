// nnscope core, attention kernels: AVX-512 tier (compiled with -mavx512f/vl/bw/dq
// -mavx2 -mfma -mf16c). The kernels are the templates of attn_impl.h over 16-lane
// zmm vectors; fp16 rows are widened with vcvtph2ps, bf16 rows by a 16-bit shift.
//
// Block path register blocks: 12 keys (or 12 value dimensions) × 32 query lanes
// = 24 zmm accumulators, two vector loads and 12 broadcasts per step (the shape
// of the SGEMM micro-kernel, linalg/gemm_avx512.cpp); 12 × 16 for lane groups
// of 16 queries.
#include "attention/attn_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__FMA__) && defined(__F16C__)
// GCC 12's AVX-512 intrinsics trip its own -W(maybe-)uninitialized on the
// _mm512_undefined_*() placeholders (GCC bug 105593); silence that here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "attention/attn_impl.h"

namespace nnscope::attention::detail {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr std::size_t N = 16;
  static constexpr int MR1 = 12, MR2 = 12;
  static constexpr int RJ = 4, JCB = 4;  // rows path: rows taken jointly, value vectors per block

  static NNSCOPE_ATTN_INLINE __mmask16 mk(std::size_t n) { return __mmask16((1u << n) - 1u); }
  static NNSCOPE_ATTN_INLINE V zero() { return _mm512_setzero_ps(); }
  static NNSCOPE_ATTN_INLINE V set1(float x) { return _mm512_set1_ps(x); }
  static NNSCOPE_ATTN_INLINE V load(const float* p) { return _mm512_loadu_ps(p); }
  static NNSCOPE_ATTN_INLINE V loadn(const float* p, std::size_t n) { return _mm512_maskz_loadu_ps(mk(n), p); }
  static NNSCOPE_ATTN_INLINE void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static NNSCOPE_ATTN_INLINE void storen(float* p, V x, std::size_t n) { _mm512_mask_storeu_ps(p, mk(n), x); }
  static NNSCOPE_ATTN_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static NNSCOPE_ATTN_INLINE V load_h(const std::uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static NNSCOPE_ATTN_INLINE V loadn_h(const std::uint16_t* p, std::size_t n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk(n), p));
  }
  static NNSCOPE_ATTN_INLINE V widen_b(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static NNSCOPE_ATTN_INLINE V load_b(const std::uint16_t* p) {
    return widen_b(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static NNSCOPE_ATTN_INLINE V loadn_b(const std::uint16_t* p, std::size_t n) {
    return widen_b(_mm256_maskz_loadu_epi16(mk(n), p));
  }
  // 2^x for x ≤ 0: n = round(x) (x clamped to ≥ −127), 2^(x−n) by polynomial,
  // 2^n built in the exponent field (n = −127 gives exactly 0).
  static NNSCOPE_ATTN_INLINE V exp2(V x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
    const V n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V f = _mm512_sub_ps(x, n);
    V p = _mm512_set1_ps(kExp2C[7]);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[6]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[5]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[4]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[3]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[2]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[1]));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C[0]));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
  }
  static NNSCOPE_ATTN_INLINE float hsum(V x) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // out[t] = Σ lanes of x[t] for t < 8: pairwise unpack/shuffle adds down to
  // one 128-bit lane per accumulator, then across the four lanes.
  static NNSCOPE_ATTN_INLINE void hsum8(const V* x, float* out) {
    const V t0 = _mm512_add_ps(_mm512_unpacklo_ps(x[0], x[1]), _mm512_unpackhi_ps(x[0], x[1]));
    const V t1 = _mm512_add_ps(_mm512_unpacklo_ps(x[2], x[3]), _mm512_unpackhi_ps(x[2], x[3]));
    const V t2 = _mm512_add_ps(_mm512_unpacklo_ps(x[4], x[5]), _mm512_unpackhi_ps(x[4], x[5]));
    const V t3 = _mm512_add_ps(_mm512_unpacklo_ps(x[6], x[7]), _mm512_unpackhi_ps(x[6], x[7]));
    // per 128-bit lane: (x0, x1, x2, x3) partial sums, (x4, .., x7) partial sums
    const V u0 = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x44), _mm512_shuffle_ps(t0, t1, 0xEE));
    const V u1 = _mm512_add_ps(_mm512_shuffle_ps(t2, t3, 0x44), _mm512_shuffle_ps(t2, t3, 0xEE));
    // 128-bit lanes (u0.0 + u0.1, u0.2 + u0.3, u1.0 + u1.1, u1.2 + u1.3)
    const V v = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xDD));
    // 128-bit lanes (x0..x3 totals, x4..x7 totals, .., ..)
    const V w = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0x08), _mm512_shuffle_f32x4(v, v, 0x0D));
    _mm256_storeu_ps(out, _mm512_castps512_ps256(w));
  }
  static NNSCOPE_ATTN_INLINE float hmax(V x) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(x),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static NNSCOPE_ATTN_INLINE void prefetch(const char* p) { _mm_prefetch(p, _MM_HINT_T0); }
  static NNSCOPE_ATTN_INLINE float first(V x) { return _mm512_cvtss_f32(x); }
  static NNSCOPE_ATTN_INLINE V mask_keys(V x, int j, const std::int32_t* vis) {
    const __mmask16 m = _mm512_cmpgt_epi32_mask(_mm512_loadu_si512(vis), _mm512_set1_epi32(j));
    return _mm512_mask_blend_ps(m, _mm512_set1_ps(kNegInfF), x);
  }
  static NNSCOPE_ATTN_INLINE V ninf_to_zero(V x) {
    const __mmask16 m = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kNegInfF), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(m, x, _mm512_setzero_ps());
  }
};

const AttnKernel kKernel = {"avx512", 16, 8, load_rows<Avx512>, block_step<Avx512>, rows_step<Avx512>};

}  // namespace

const AttnKernel* attn_kernel_avx512() { return &kKernel; }

}  // namespace nnscope::attention::detail

#else

namespace nnscope::attention::detail {
const AttnKernel* attn_kernel_avx512() { return nullptr; }
}  // namespace nnscope::attention::detail

#endif
