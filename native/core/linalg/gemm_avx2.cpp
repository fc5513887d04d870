// nnscope core: SGEMM micro-kernel and packing, AVX2+FMA tier (compiled with
// -mavx2 -mfma; see gemm_kernels.h for the contracts).
//
// Register block 6×16: 12 ymm accumulators, two ymm of B and one broadcast of A
// per k step; kc = 384 (6×384 A panel, 9 KiB, in L1), B blocks of 384×512 in L2.
// Partial tiles are computed in full on zero-padded panels, written to a small
// temporary tile, and merged into C with scalar FMAs that round exactly like the
// vector ones. Transposing packs use 8×8 in-register transposes.
#include "linalg/gemm_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "linalg/gemm_pack.h"

namespace nnscope::linalg::detail {
namespace {

#define NNSCOPE_INLINE inline __attribute__((always_inline))

template <int MR, int NV>
NNSCOPE_INLINE void micro(std::size_t kc, const float* __restrict a, const float* __restrict b, float* c,
                          std::size_t ldc, float alpha, float beta, std::size_t mr, std::size_t nr) {
  constexpr int NR = 8 * NV;
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_setzero_ps();

#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (std::size_t(i) >= mr) break;
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (std::size_t p = 0; p < kc; ++p) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = _mm256_load_ps(b + 8 * j);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (mr == std::size_t(MR) && nr == std::size_t(NR)) {
    if (beta == 0.0f) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) _mm256_storeu_ps(c + i * ldc + 8 * j, _mm256_mul_ps(va, acc[i][j]));
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
          float* cp = c + i * ldc + 8 * j;
          _mm256_storeu_ps(cp, _mm256_fmadd_ps(va, acc[i][j], _mm256_mul_ps(vb, _mm256_loadu_ps(cp))));
        }
    }
    return;
  }
  // Edge tile through a temporary tile; scalar FMA = the vector lanes' rounding.
  alignas(32) float tile[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm256_store_ps(&tile[i][8 * j], acc[i][j]);
  const __m128 sa = _mm_set_ss(alpha), sb = _mm_set_ss(beta);
  for (std::size_t i = 0; i < mr; ++i)
    for (std::size_t j = 0; j < nr; ++j) {
      float* cp = c + i * ldc + j;
      const __m128 t = _mm_set_ss(tile[i][j]);
      const __m128 r = beta == 0.0f ? _mm_mul_ss(sa, t) : _mm_fmadd_ss(sa, t, _mm_mul_ss(sb, _mm_set_ss(*cp)));
      *cp = _mm_cvtss_f32(r);
    }
}

template <int MR, int NV>
void macro(std::size_t rows, std::size_t cols, std::size_t kc, const float* ap, const float* bp, float alpha,
           float beta, float* c, std::size_t ldc) {
  constexpr int NR = 8 * NV;
  for (std::size_t ir = 0; ir < rows; ir += MR) {
    const std::size_t mr = rows - ir < std::size_t(MR) ? rows - ir : std::size_t(MR);
    const float* a = ap + ir * kc;
    for (std::size_t jr = 0; jr < cols; jr += NR) {
      const std::size_t nr = cols - jr < std::size_t(NR) ? cols - jr : std::size_t(NR);
      micro<MR, NV>(kc, a, bp + jr * kc, c + ir * ldc + jr, ldc, alpha, beta, mr, nr);
    }
  }
}

// In-register transpose of an 8×8 block: r[i] holds row i on entry, column i on exit.
NNSCOPE_INLINE void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[4i + j], 128-bit half h: column 4h + j of rows 4i .. 4i+3.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// Lane mask with the first n (≤ 8) of 8 lanes on.
NNSCOPE_INLINE __m256i lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Transposing pack into panels of width W (W ≤ 8 or a multiple of 8): panel
// element (p, c) = src[c·ld + p], read 8 floats per source row at a time.
template <int W>
void pack_transposed_avx2(const float* src, std::size_t ld, std::size_t width, std::size_t kc, float* out) {
  constexpr int NH = (W + 7) / 8;
  constexpr int SW = W < 8 ? W : 8;
  const __m256i sm = lanes(SW);
  for (std::size_t c0 = 0; c0 < width; c0 += W, out += std::size_t(W) * kc) {
    const std::size_t w = width - c0 < std::size_t(W) ? width - c0 : std::size_t(W);
    const float* s0 = src + c0 * ld;
    for (std::size_t p = 0; p < kc; p += 8) {
      const std::size_t rem = kc - p < 8 ? kc - p : 8;
      const __m256i lm = lanes(int(rem));
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) {
          const std::size_t c = std::size_t(h * 8 + i);
          if (i < SW && c < w)
            r[i] = rem == 8 ? _mm256_loadu_ps(s0 + c * ld + p) : _mm256_maskload_ps(s0 + c * ld + p, lm);
          else
            r[i] = _mm256_setzero_ps();
        }
        transpose8(r);
        float* d = out + p * W + h * 8;
        for (std::size_t q = 0; q < rem; ++q) {
          if (SW == 8)
            _mm256_storeu_ps(d + q * W, r[q]);
          else
            _mm256_maskstore_ps(d + q * W, sm, r[q]);
        }
      }
    }
  }
}

constexpr int kMR = 6, kNV = 2, kNR = 8 * kNV;

void pack_a(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out) {
  if (trans)
    pack_runs<kMR>(a, lda, rows, kc, out);
  else
    pack_transposed_avx2<kMR>(a, lda, rows, kc, out);
}
void pack_b(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out) {
  if (trans)
    pack_transposed_avx2<kNR>(b, ldb, cols, kc, out);
  else
    pack_runs<kNR>(b, ldb, cols, kc, out);
}

const GemmKernel kKernel = {"avx2 6x16", kMR, kNR, 384, 512, pack_a, pack_b, macro<kMR, kNV>};

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kKernel; }

}  // namespace nnscope::linalg::detail

#else

namespace nnscope::linalg::detail {
const GemmKernel* gemm_kernel_avx2() { return nullptr; }
}  // namespace nnscope::linalg::detail

#endif
