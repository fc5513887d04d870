// nnscope core: SGEMM micro-kernel and packing, AVX-512F tier (compiled with
// -mavx512f/vl/bw/dq -mavx2 -mfma; see gemm_kernels.h for the contracts).
//
// Register block 12×32: 24 zmm accumulators, two zmm of B and one broadcast of A
// per k step (24 FMAs for 2 vector loads + 12 broadcasts). Measured on a
// Cascade Lake core (2048³, one thread, interleaved runs): 12×32, 14×32, 8×48
// and 6×64 all land within noise of each other (~105-110 GFLOP/s of a ~148
// GFLOP/s FMA peak); 12×32 wastes the least on edges for common sizes. Blocking:
// kc = 384 (the 12×384 A panel, 18 KiB, stays in L1), B blocks of 384×480
// (720 KiB) in the 1 MiB L2. Edge tiles use the same kernel on zero-padded panels
// and masked loads/stores of C, so an element's arithmetic never depends on
// where its tile starts.
#include "linalg/gemm_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 intrinsics trip its own -W(maybe-)uninitialized on the
// _mm512_undefined_*() placeholders (GCC bug 105593); silence that here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "linalg/gemm_pack.h"

namespace nnscope::linalg::detail {
namespace {

#define NNSCOPE_INLINE inline __attribute__((always_inline))

// PF: software prefetch distance of the B stream, in k steps.
template <int MR, int NV, int PF = 8>
NNSCOPE_INLINE void micro(std::size_t kc, const float* __restrict a, const float* __restrict b, float* c,
                          std::size_t ldc, float alpha, float beta, std::size_t mr, std::size_t nr) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();

  // The C tile is needed at the end: start fetching it now.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (std::size_t(i) >= mr) break;
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (std::size_t p = 0; p < kc; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = _mm512_load_ps(b + 16 * j);
    if (PF > 0) _mm_prefetch(reinterpret_cast<const char*>(b + PF * NR), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  if (mr == std::size_t(MR) && nr == std::size_t(NR)) {
    if (beta == 0.0f) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) _mm512_storeu_ps(c + i * ldc + 16 * j, _mm512_mul_ps(va, acc[i][j]));
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
          float* cp = c + i * ldc + 16 * j;
          _mm512_storeu_ps(cp, _mm512_fmadd_ps(va, acc[i][j], _mm512_mul_ps(vb, _mm512_loadu_ps(cp))));
        }
    }
    return;
  }
  // Edge tile: the same arithmetic through masks (rows past mr are skipped).
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    const long rem = long(nr) - 16 * j;
    mask[j] = rem >= 16 ? __mmask16(0xFFFF) : rem <= 0 ? __mmask16(0) : __mmask16((1u << rem) - 1u);
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (std::size_t(i) >= mr) break;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      float* cp = c + i * ldc + 16 * j;
      if (beta == 0.0f) {
        _mm512_mask_storeu_ps(cp, mask[j], _mm512_mul_ps(va, acc[i][j]));
      } else {
        const __m512 old = _mm512_maskz_loadu_ps(mask[j], cp);
        _mm512_mask_storeu_ps(cp, mask[j], _mm512_fmadd_ps(va, acc[i][j], _mm512_mul_ps(vb, old)));
      }
    }
  }
}

// Sweeps a rows × cols block of C: for each mr-row A panel (kept in L1), every
// nr-column B panel of the block (kept in L2).
template <int MR, int NV, int PF = 8>
void macro(std::size_t rows, std::size_t cols, std::size_t kc, const float* ap, const float* bp, float alpha,
           float beta, float* c, std::size_t ldc) {
  constexpr int NR = 16 * NV;
  for (std::size_t ir = 0; ir < rows; ir += MR) {
    const std::size_t mr = rows - ir < std::size_t(MR) ? rows - ir : std::size_t(MR);
    const float* a = ap + ir * kc;
    for (std::size_t jr = 0; jr < cols; jr += NR) {
      const std::size_t nr = cols - jr < std::size_t(NR) ? cols - jr : std::size_t(NR);
      micro<MR, NV, PF>(kc, a, bp + jr * kc, c + ir * ldc + jr, ldc, alpha, beta, mr, nr);
    }
  }
}

// In-register transpose of a 16×16 block: r[i] holds row i on entry and column
// i on exit (unpack within 128-bit lanes, then two rounds of lane shuffles).
NNSCOPE_INLINE void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4i + j], 128-bit lane L: column 4L + j of rows 4i .. 4i+3.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
  }
}

// Transposing pack into panels of width W = 16·NH (W ≤ 16 when NH == 1 and a
// panel is narrower than a vector, e.g. the 12-row A panels): panel element
// (p, c) = src[c·ld + p]. Each source row is read 16 floats (a cache line) at a time.
template <int W>
void pack_transposed_avx512(const float* src, std::size_t ld, std::size_t width, std::size_t kc, float* out) {
  constexpr int NH = (W + 15) / 16;  // 16-row slabs per panel
  for (std::size_t c0 = 0; c0 < width; c0 += W, out += std::size_t(W) * kc) {
    const std::size_t w = width - c0 < std::size_t(W) ? width - c0 : std::size_t(W);
    const float* s0 = src + c0 * ld;
    for (std::size_t p = 0; p < kc; p += 16) {
      const std::size_t rem = kc - p < 16 ? kc - p : 16;
      const __mmask16 lm = rem == 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1u);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h) {
        constexpr int SW = W < 16 ? W : 16;  // columns of this slab in the panel
        const __mmask16 sm = SW == 16 ? __mmask16(0xFFFF) : __mmask16((1u << SW) - 1u);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
          const std::size_t c = std::size_t(h * 16 + i);
          if (i < SW && c < w) {
            r[i] = _mm512_maskz_loadu_ps(lm, s0 + c * ld + p);
            // Rows are short runs in different pages: fetch a few lines ahead.
            _mm_prefetch(reinterpret_cast<const char*>(s0 + c * ld + p + 64), _MM_HINT_T0);
          } else {
            r[i] = _mm512_setzero_ps();
          }
        }
        transpose16(r);
        float* d = out + p * W + h * 16;
        if (rem == 16) {
#pragma GCC unroll 16
          for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(d + q * W, sm, r[q]);
        } else {
          for (std::size_t q = 0; q < rem; ++q) _mm512_mask_storeu_ps(d + q * W, sm, r[q]);
        }
      }
    }
  }
}

// Run-copying pack into panels of width W: panel element (p, c) = src[p·ld + c].
// Groups of G panels per sweep over the source rows.
constexpr std::size_t kAhead = 6;  // rows of software prefetch in run packing

template <int W>
void pack_runs_avx512(const float* src, std::size_t ld, std::size_t width, std::size_t kc, float* out) {
  constexpr int NH = (W + 15) / 16;
  constexpr std::size_t G = W >= 32 ? 4 : 8;
  const std::size_t pstride = std::size_t(W) * kc;
  for (std::size_t c0 = 0; c0 < width; c0 += G * W) {
    const std::size_t gw = width - c0 < G * W ? width - c0 : G * W;
    const std::size_t full = gw / W, rem = gw % W;
    const float* sg = src + c0;
    float* og = out + (c0 / W) * pstride;
    for (std::size_t p = 0; p < kc; ++p) {
      const float* s = sg + p * ld;
      float* d = og + p * W;
      // Source rows are usually in different pages: fetch a few rows ahead.
      if (p + kAhead < kc)
        for (std::size_t c = 0; c < gw; c += 16) _mm_prefetch(reinterpret_cast<const char*>(s + kAhead * ld + c), _MM_HINT_T0);
      for (std::size_t q = 0; q < full; ++q) {
#pragma GCC unroll 4
        for (int h = 0; h < NH; ++h) {
          constexpr int last = W - 16 * (NH - 1);
          if (h < NH - 1 || last == 16) {
            _mm512_storeu_ps(d + q * pstride + 16 * h, _mm512_loadu_ps(s + q * W + 16 * h));
          } else {
            const __mmask16 m = __mmask16((1u << last) - 1u);
            _mm512_mask_storeu_ps(d + q * pstride + 16 * h, m, _mm512_maskz_loadu_ps(m, s + q * W + 16 * h));
          }
        }
      }
      if (rem) {
#pragma GCC unroll 4
        for (int h = 0; h < NH; ++h) {
          const long valid = long(rem) - 16 * h;
          const int lanes = W - 16 * h < 16 ? W - 16 * h : 16;
          const __mmask16 lm = valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1u);
          const __mmask16 sm = lanes == 16 ? __mmask16(0xFFFF) : __mmask16((1u << lanes) - 1u);
          _mm512_mask_storeu_ps(d + full * pstride + 16 * h, sm, _mm512_maskz_loadu_ps(lm, s + full * W + 16 * h));
        }
      }
    }
  }
}

template <int MR>
void pack_a_avx512(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out) {
  if (trans)
    pack_runs_avx512<MR>(a, lda, rows, kc, out);
  else
    pack_transposed_avx512<MR>(a, lda, rows, kc, out);
}
template <int NR>
void pack_b_avx512(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out) {
  if (trans)
    pack_transposed_avx512<NR>(b, ldb, cols, kc, out);
  else
    pack_runs_avx512<NR>(b, ldb, cols, kc, out);
}

constexpr int kMR = 12, kNV = 2, kNR = 16 * kNV;

void pack_a(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out) {
  pack_a_avx512<kMR>(trans, a, lda, rows, kc, out);
}
void pack_b(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out) {
  pack_b_avx512<kNR>(trans, b, ldb, cols, kc, out);
}

const GemmKernel kKernel = {"avx512 12x32", kMR, kNR, 384, 480, pack_a, pack_b, macro<kMR, kNV>};

}  // namespace

const GemmKernel* gemm_kernel_avx512() { return &kKernel; }

}  // namespace nnscope::linalg::detail

#else

namespace nnscope::linalg::detail {
const GemmKernel* gemm_kernel_avx512() { return nullptr; }
}  // namespace nnscope::linalg::detail

#endif
