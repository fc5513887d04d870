// nnscope core, attention kernels: AVX2 tier (compiled with -mavx2 -mfma -mf16c).
// The kernels are the templates of attn_impl.h over 8-lane ymm vectors; fp16 rows
// are widened with vcvtph2ps (F16C), bf16 rows by a 16-bit shift.
//
// Block path register blocks (16 ymm registers): 6 keys × 16 query lanes (12
// accumulators, two loads and one broadcast live) and 12 × 8 for lane groups of
// 8 queries.
#include "attention/attn_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "attention/attn_impl.h"

namespace nnscope::attention::detail {
namespace {

// maskload masks for the first n lanes: kMaskTable + 8 - n.
alignas(64) const std::int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

struct Avx2 {
  using V = __m256;
  static constexpr std::size_t N = 8;
  static constexpr int MR1 = 12, MR2 = 6;
  static constexpr int RJ = 2, JCB = 4;  // rows path: rows taken jointly, value vectors per block

  static NNSCOPE_ATTN_INLINE __m256i mk(std::size_t n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
  }
  static NNSCOPE_ATTN_INLINE V zero() { return _mm256_setzero_ps(); }
  static NNSCOPE_ATTN_INLINE V set1(float x) { return _mm256_set1_ps(x); }
  static NNSCOPE_ATTN_INLINE V load(const float* p) { return _mm256_loadu_ps(p); }
  static NNSCOPE_ATTN_INLINE V loadn(const float* p, std::size_t n) { return _mm256_maskload_ps(p, mk(n)); }
  static NNSCOPE_ATTN_INLINE void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  static NNSCOPE_ATTN_INLINE void storen(float* p, V x, std::size_t n) { _mm256_maskstore_ps(p, mk(n), x); }
  static NNSCOPE_ATTN_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V max(V a, V b) { return _mm256_max_ps(a, b); }
  static NNSCOPE_ATTN_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static NNSCOPE_ATTN_INLINE __m128i load16n(const std::uint16_t* p, std::size_t n) {
    alignas(16) std::uint16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (std::size_t i = 0; i < n; ++i) t[i] = p[i];
    return _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  }
  static NNSCOPE_ATTN_INLINE V load_h(const std::uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static NNSCOPE_ATTN_INLINE V loadn_h(const std::uint16_t* p, std::size_t n) { return _mm256_cvtph_ps(load16n(p, n)); }
  static NNSCOPE_ATTN_INLINE V widen_b(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static NNSCOPE_ATTN_INLINE V load_b(const std::uint16_t* p) {
    return widen_b(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static NNSCOPE_ATTN_INLINE V loadn_b(const std::uint16_t* p, std::size_t n) { return widen_b(load16n(p, n)); }
  static NNSCOPE_ATTN_INLINE V exp2(V x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-127.0f));
    const V n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V f = _mm256_sub_ps(x, n);
    V p = _mm256_set1_ps(kExp2C[7]);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[6]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[5]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[4]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[3]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[2]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[1]));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C[0]));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
  static NNSCOPE_ATTN_INLINE float hsum(V x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // out[t] = Σ lanes of x[t] for t < 8.
  static NNSCOPE_ATTN_INLINE void hsum8(const V* x, float* out) {
    const V h01 = _mm256_hadd_ps(x[0], x[1]), h23 = _mm256_hadd_ps(x[2], x[3]);
    const V h45 = _mm256_hadd_ps(x[4], x[5]), h67 = _mm256_hadd_ps(x[6], x[7]);
    const V a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);  // per 128-bit half: x0..x3 / x4..x7
    const V lo = _mm256_permute2f128_ps(a, b, 0x20), hi = _mm256_permute2f128_ps(a, b, 0x31);
    _mm256_storeu_ps(out, _mm256_add_ps(lo, hi));
  }
  static NNSCOPE_ATTN_INLINE float hmax(V x) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static NNSCOPE_ATTN_INLINE void prefetch(const char* p) { _mm_prefetch(p, _MM_HINT_T0); }
  static NNSCOPE_ATTN_INLINE float first(V x) { return _mm256_cvtss_f32(x); }
  static NNSCOPE_ATTN_INLINE V mask_keys(V x, int j, const std::int32_t* vis) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vis)),
                                         _mm256_set1_epi32(j));
    return _mm256_blendv_ps(_mm256_set1_ps(kNegInfF), x, _mm256_castsi256_ps(m));
  }
  static NNSCOPE_ATTN_INLINE V ninf_to_zero(V x) {
    const V m = _mm256_cmp_ps(x, _mm256_set1_ps(kNegInfF), _CMP_EQ_OQ);
    return _mm256_blendv_ps(x, _mm256_setzero_ps(), m);
  }
};

const AttnKernel kKernel = {"avx2", 8, 4, load_rows<Avx2>, block_step<Avx2>, rows_step<Avx2>};

}  // namespace

const AttnKernel* attn_kernel_avx2() { return &kKernel; }

}  // namespace nnscope::attention::detail

#else

namespace nnscope::attention::detail {
const AttnKernel* attn_kernel_avx2() { return nullptr; }
}  // namespace nnscope::attention::detail

#endif
