// nnscope core, linalg internals: portable packing routines (layouts in
// gemm_kernels.h), instantiated by each tier's translation unit for its own
// register block. Everything here has internal linkage (anonymous namespace) so
// the copies compiled with different ISA flags never merge at link time. No
// standard-library templates on purpose.
//
// Two access patterns:
//  * runs: the packed panel's rows are contiguous runs of the source (op(A)
//    transposed, op(B) not transposed). Packed row by row of the source across
//    all panels of the block, so the source is read sequentially.
//  * transpose: the panel must be transposed out of the source (op(A) not
//    transposed, op(B) transposed). Read in blocks of 16 floats (one cache line)
//    per source row so that rows a multiple of 4 KiB apart, which share L1 sets,
//    never need a line twice. The AVX tiers replace this with register transposes.
#pragma once
#include <cstddef>

namespace nnscope::linalg::detail {
namespace {

// Panels of width W (W = mr for A, nr for B) from runs: panel element (p, c) is
// src[p·ld + c] for c in [0, width); out panel q at q·W·kc, row p at p·W.
template <int W>
void pack_runs(const float* src, std::size_t ld, std::size_t width, std::size_t kc, float* out) {
  // Groups of G panels: G·W contiguous floats read per source row, G write streams.
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
      for (std::size_t q = 0; q < full; ++q)
        for (int c = 0; c < W; ++c) d[q * pstride + c] = s[q * W + c];
      if (rem) {
        float* dr = d + full * pstride;
        const float* sr = s + full * W;
        std::size_t c = 0;
        for (; c < rem; ++c) dr[c] = sr[c];
        for (; c < std::size_t(W); ++c) dr[c] = 0.0f;
      }
    }
  }
}

// Panels of width W by transposition: panel element (p, c) is src[c·ld + p] for
// c in [0, width); zero beyond.
template <int W>
void pack_transposed(const float* src, std::size_t ld, std::size_t width, std::size_t kc, float* out) {
  for (std::size_t c0 = 0; c0 < width; c0 += W, out += std::size_t(W) * kc) {
    const std::size_t w = width - c0 < std::size_t(W) ? width - c0 : std::size_t(W);
    const float* s0 = src + c0 * ld;
    std::size_t p = 0;
    for (; p + 16 <= kc; p += 16) {
      for (std::size_t c = 0; c < w; ++c) {
        const float* s = s0 + c * ld + p;
        float* d = out + p * W + c;
        for (int q = 0; q < 16; ++q) d[q * W] = s[q];
      }
      for (std::size_t c = w; c < std::size_t(W); ++c)
        for (int q = 0; q < 16; ++q) out[(p + q) * W + c] = 0.0f;
    }
    for (; p < kc; ++p) {
      std::size_t c = 0;
      for (; c < w; ++c) out[p * W + c] = s0[c * ld + p];
      for (; c < std::size_t(W); ++c) out[p * W + c] = 0.0f;
    }
  }
}

// Packs op(A) rows [0, rows) × [0, kc) into MR-row panels.
template <int MR>
void pack_a_panels(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out) {
  if (trans)
    pack_runs<MR>(a, lda, rows, kc, out);  // op(A)(r, p) = a[p·lda + r]
  else
    pack_transposed<MR>(a, lda, rows, kc, out);  // op(A)(r, p) = a[r·lda + p]
}

// Packs op(B) [0, kc) × cols [0, cols) into NR-column panels.
template <int NR>
void pack_b_panels(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out) {
  if (trans)
    pack_transposed<NR>(b, ldb, cols, kc, out);  // op(B)(p, c) = b[c·ldb + p]
  else
    pack_runs<NR>(b, ldb, cols, kc, out);  // op(B)(p, c) = b[p·ldb + c]
}

}  // namespace
}  // namespace nnscope::linalg::detail
