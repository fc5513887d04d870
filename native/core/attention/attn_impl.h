// nnscope core, attention internals: the kernels of attn_kernels.h written once
// over a vector-traits type T and instantiated per tier (attention.cpp: generic,
// attn_avx2.cpp, attn_avx512.cpp). Everything here has internal linkage (an
// anonymous namespace in each including translation unit) and uses no
// standard-library templates. Not a public header.
//
// T provides: V (vector of N floats), N, MR1 / MR2 (register blocks of the
// micro-kernels for lane groups of N / 2N queries), RJ (rows the rows path takes
// jointly; < 2: none) and JCB (value vectors per register block there), zero,
// set1, load, loadn
// (first n < N lanes, rest 0), store, storen, add, sub, mul, max, fma(a,b,c) =
// a·b+c, load_h / loadn_h (fp16), load_b / loadn_b (bf16), exp2 (for x ≤ 0; exact
// 0 below −126.5, also for −Inf), hsum, hsum8 (out[t] = lane sum of x[t], t < 8),
// hmax, first (lane 0), mask_keys(x, j,
// vis) (−Inf in lanes whose vis ≤ j), ninf_to_zero (−Inf lanes → 0) and
// prefetch (one cache line).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "attention/attn_kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define NNSCOPE_ATTN_INLINE inline __attribute__((always_inline))
#define NNSCOPE_ATTN_PRAGMA(x) _Pragma(#x)
#else
#define NNSCOPE_ATTN_INLINE inline
#define NNSCOPE_ATTN_PRAGMA(x)
#endif
#define NNSCOPE_ATTN_UNROLL NNSCOPE_ATTN_PRAGMA(GCC unroll 16)

namespace nnscope::attention::detail {
namespace {

constexpr float kNegInfF = -INFINITY;

// 2^f for f in [-0.5, 0.5]: Taylor coefficients ln2^k / k!, degree 7 (relative
// truncation error < 6e-9, below float round-off).
constexpr float kExp2C[8] = {1.0f,
                             0.693147180559945309f,
                             0.240226506959100712f,
                             0.0555041086648215800f,
                             0.00961812910762847717f,
                             0.00133335581464284434f,
                             0.000154035303933816099f,
                             0.0000152527338040598403f};

NNSCOPE_ATTN_INLINE std::size_t zmin(std::size_t a, std::size_t b) { return a < b ? a : b; }

// ---------------------------------------------------------------- typed loads
template <class T, int S>
NNSCOPE_ATTN_INLINE typename T::V ld(const void* p, std::size_t i) {
  if constexpr (S == kStoreF32) return T::load(static_cast<const float*>(p) + i);
  else if constexpr (S == kStoreF16) return T::load_h(static_cast<const std::uint16_t*>(p) + i);
  else return T::load_b(static_cast<const std::uint16_t*>(p) + i);
}
template <class T, int S>
NNSCOPE_ATTN_INLINE typename T::V ldn(const void* p, std::size_t i, std::size_t n) {
  if constexpr (S == kStoreF32) return T::loadn(static_cast<const float*>(p) + i, n);
  else if constexpr (S == kStoreF16) return T::loadn_h(static_cast<const std::uint16_t*>(p) + i, n);
  else return T::loadn_b(static_cast<const std::uint16_t*>(p) + i, n);
}

// ---------------------------------------------------------------- staging
template <class T, int S>
void load_rows_s(const void* const* rows, std::size_t n, std::size_t d, float* dst, std::size_t ldd) {
  constexpr std::size_t N = T::N;
  for (std::size_t i = 0; i < n; ++i) {
    const void* r = rows[i];
    float* o = dst + i * ldd;
    std::size_t c = 0;
    for (; c + 4 * N <= d; c += 4 * N) {
      const typename T::V a = ld<T, S>(r, c), b = ld<T, S>(r, c + N);
      const typename T::V e = ld<T, S>(r, c + 2 * N), f = ld<T, S>(r, c + 3 * N);
      T::store(o + c, a);
      T::store(o + c + N, b);
      T::store(o + c + 2 * N, e);
      T::store(o + c + 3 * N, f);
    }
    for (; c + N <= d; c += N) T::store(o + c, ld<T, S>(r, c));
    if (c < d) T::storen(o + c, ldn<T, S>(r, c, d - c), d - c);
  }
}

template <class T>
void load_rows(int storage, const void* const* rows, std::size_t n, std::size_t d, float* dst, std::size_t ldd) {
  switch (storage) {
    case kStoreF16: load_rows_s<T, kStoreF16>(rows, n, d, dst, ldd); break;
    case kStoreBF16: load_rows_s<T, kStoreBF16>(rows, n, d, dst, ldd); break;
    default: load_rows_s<T, kStoreF32>(rows, n, d, dst, ldd); break;
  }
}

// ---------------------------------------------------------------- block path
// S[j][lanes] = Σ_p K[j][p] · QT[p][lanes] for MR keys: MR×W accumulators, one
// broadcast of K and W vector loads of QT per step.
template <class T, int MR, int W>
NNSCOPE_ATTN_INLINE void micro_qk(std::size_t d, const float* __restrict k, std::size_t ldk,
                                  const float* __restrict qt, std::size_t L, float* __restrict s) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  V acc[MR][W];
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < MR; ++i)
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) acc[i][w] = T::zero();
  for (std::size_t p = 0; p < d; ++p) {
    V b[W];
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) b[w] = T::load(qt + p * L + w * N);
    NNSCOPE_ATTN_UNROLL
    for (int i = 0; i < MR; ++i) {
      const V a = T::set1(k[i * ldk + p]);
      NNSCOPE_ATTN_UNROLL
      for (int w = 0; w < W; ++w) acc[i][w] = T::fma(a, b[w], acc[i][w]);
    }
  }
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < MR; ++i)
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) T::store(s + i * L + w * N, acc[i][w]);
}

// OT[c0+i][lanes] = alpha·OT[c0+i][lanes] + Σ_j V[j][c0+i] · P[j][lanes] for MR
// value dimensions, keys in order.
template <class T, int MR, int W>
NNSCOPE_ATTN_INLINE void micro_pv(std::size_t nk, const float* __restrict v, std::size_t ldv,
                                  const float* __restrict p, std::size_t L, float* __restrict ot,
                                  const typename T::V* alpha) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  V acc[MR][W];
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < MR; ++i)
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) acc[i][w] = T::mul(alpha[w], T::load(ot + i * L + w * N));
  for (std::size_t j = 0; j < nk; ++j) {
    V b[W];
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) b[w] = T::load(p + j * L + w * N);
    const float* vr = v + j * ldv;
    NNSCOPE_ATTN_UNROLL
    for (int i = 0; i < MR; ++i) {
      const V a = T::set1(vr[i]);
      NNSCOPE_ATTN_UNROLL
      for (int w = 0; w < W; ++w) acc[i][w] = T::fma(a, b[w], acc[i][w]);
    }
  }
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < MR; ++i)
    NNSCOPE_ATTN_UNROLL
    for (int w = 0; w < W; ++w) T::store(ot + i * L + w * N, acc[i][w]);
}

template <class T, int W, int R>
NNSCOPE_ATTN_INLINE void qk_tail(std::size_t r, std::size_t d, const float* k, std::size_t ldk, const float* qt,
                                 std::size_t L, float* s) {
  if constexpr (R > 0) {
    if (r == std::size_t(R)) micro_qk<T, R, W>(d, k, ldk, qt, L, s);
    else qk_tail<T, W, R - 1>(r, d, k, ldk, qt, L, s);
  }
}
template <class T, int W, int R>
NNSCOPE_ATTN_INLINE void pv_tail(std::size_t r, std::size_t nk, const float* v, std::size_t ldv, const float* p,
                                 std::size_t L, float* ot, const typename T::V* alpha) {
  if constexpr (R > 0) {
    if (r == std::size_t(R)) micro_pv<T, R, W>(nk, v, ldv, p, L, ot, alpha);
    else pv_tail<T, W, R - 1>(r, nk, v, ldv, p, L, ot, alpha);
  }
}

template <class T, int W>
void block_step_w(const BlockStep& a) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  constexpr int MR = W == 1 ? T::MR1 : T::MR2;
  const std::size_t L = W * N, d = a.d, nk = a.nk;
  float* s = a.s;

  // 1. logits
  std::size_t j0 = 0;
  for (; j0 + MR <= nk; j0 += MR) micro_qk<T, MR, W>(d, a.k + j0 * a.ldk, a.ldk, a.qt, L, s + j0 * L);
  if (j0 < nk) qk_tail<T, W, MR - 1>(nk - j0, d, a.k + j0 * a.ldk, a.ldk, a.qt, L, s + j0 * L);

  // 2. masking and the tile max
  V mx[W];
  for (int w = 0; w < W; ++w) mx[w] = T::set1(kNegInfF);
  if (a.vis) {
    for (std::size_t j = 0; j < nk; ++j)
      for (int w = 0; w < W; ++w) {
        float* sp = s + j * L + w * N;
        const V x = T::mask_keys(T::load(sp), int(j), a.vis + w * N);
        T::store(sp, x);
        mx[w] = T::max(mx[w], x);
      }
  } else {
    for (std::size_t j = 0; j < nk; ++j)
      for (int w = 0; w < W; ++w) mx[w] = T::max(mx[w], T::load(s + j * L + w * N));
  }

  // 3. new max, rescale factor
  V msub[W], alpha[W], sum[W];
  for (int w = 0; w < W; ++w) {
    const V mo = T::load(a.m + w * N);
    const V mn = T::max(mo, mx[w]);
    T::store(a.m + w * N, mn);
    msub[w] = T::ninf_to_zero(mn);
    alpha[w] = T::exp2(T::sub(mo, msub[w]));
    sum[w] = T::zero();
  }

  // 4. probabilities and their sum, in key order
  for (std::size_t j = 0; j < nk; ++j)
    for (int w = 0; w < W; ++w) {
      float* sp = s + j * L + w * N;
      const V pr = T::exp2(T::sub(T::load(sp), msub[w]));
      T::store(sp, pr);
      sum[w] = T::add(sum[w], pr);
    }
  for (int w = 0; w < W; ++w) T::store(a.l + w * N, T::fma(alpha[w], T::load(a.l + w * N), sum[w]));

  // 5. OT = alpha·OT + Vᵀ·P
  std::size_t c0 = 0;
  for (; c0 + MR <= d; c0 += MR) micro_pv<T, MR, W>(nk, a.v + c0, a.ldv, s, L, a.ot + c0 * L, alpha);
  if (c0 < d) pv_tail<T, W, MR - 1>(d - c0, nk, a.v + c0, a.ldv, s, L, a.ot + c0 * L, alpha);
}

template <class T>
void block_step(const BlockStep& a) {
  if (a.lanes == T::N) block_step_w<T, 1>(a);
  else block_step_w<T, 2>(a);
}

// ---------------------------------------------------------------- rows path
// o[c0 .. c0 + NV·N) = alpha·o + Σ_{j < nv} p_j · V_j[c0 ..], keys in order.
template <class T, int S, int NV>
NNSCOPE_ATTN_INLINE void pv_rows_block(std::size_t nv, const void* const* vrows, const float* p, std::size_t c0,
                                       float alpha, float* o, std::size_t pfd = 0, std::size_t vbytes = 0) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  V acc[NV];
  const V va = T::set1(alpha);
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < NV; ++i) acc[i] = T::mul(va, T::load(o + c0 + i * N));
  for (std::size_t j = 0; j < nv; ++j) {
    const V pj = T::set1(p[j]);
    const void* vr = vrows[j];
    if (pfd)
      for (std::size_t b = 0; b < vbytes; b += 64) T::prefetch(static_cast<const char*>(vr) + pfd + b);
    NNSCOPE_ATTN_UNROLL
    for (int i = 0; i < NV; ++i) acc[i] = T::fma(pj, ld<T, S>(vr, c0 + i * N), acc[i]);
  }
  NNSCOPE_ATTN_UNROLL
  for (int i = 0; i < NV; ++i) T::store(o + c0 + i * N, acc[i]);
}

template <class T, int S, int R>
NNSCOPE_ATTN_INLINE void pv_rows_rem(std::size_t r, std::size_t nv, const void* const* vrows, const float* p,
                                     std::size_t c0, float alpha, float* o) {
  if constexpr (R > 0) {
    if (r == std::size_t(R)) pv_rows_block<T, S, R>(nv, vrows, p, c0, alpha, o);
    else pv_rows_rem<T, S, R - 1>(r, nv, vrows, p, c0, alpha, o);
  }
}

// Online-softmax update of one row over its logits s[0, nv) (s has room for a
// vector past nv): s becomes the probabilities 2^(s − m_new); (m, l) are updated
// and the factor that rescales the old output is returned.
template <class T>
NNSCOPE_ATTN_INLINE float row_softmax(float* s, std::size_t nv, float* m, float* l) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  const std::size_t nvr = (nv + N - 1) / N * N;
  for (std::size_t t = nv; t < nvr; ++t) s[t] = kNegInfF;
  V mxv = T::set1(kNegInfF);
  for (std::size_t t = 0; t < nvr; t += N) mxv = T::max(mxv, T::load(s + t));
  const float mx = T::hmax(mxv), mo = *m;
  const float mn = mx > mo ? mx : mo;
  const float msub = mn == kNegInfF ? 0.0f : mn;
  const float alpha = T::first(T::exp2(T::set1(mo - msub)));
  const V ms = T::set1(msub);
  V sum = T::zero();
  for (std::size_t t = 0; t < nvr; t += N) {
    const V pr = T::exp2(T::sub(T::load(s + t), ms));
    T::store(s + t, pr);
    sum = T::add(sum, pr);
  }
  *l = alpha * *l + T::hsum(sum);
  *m = mn;
  return alpha;
}

// o[c0 .. d) tail (< N elements) = alpha·o + Σ_j p_j v_j[..].
template <class T, int S>
NNSCOPE_ATTN_INLINE void pv_rows_tail(std::size_t nv, const void* const* vrows, const float* p, std::size_t c0,
                                      std::size_t dt, float alpha, float* o) {
  using V = typename T::V;
  V acc = T::mul(T::set1(alpha), T::loadn(o + c0, dt));
  for (std::size_t j = 0; j < nv; ++j) acc = T::fma(T::set1(p[j]), ldn<T, S>(vrows[j], c0, dt), acc);
  T::storen(o + c0, acc, dt);
}

// One row over the tile (keys j < vis[r]).
template <class T, int SK, int SV>
void rows_one(const RowsStep& a, std::size_t r, float* s) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  const std::size_t d = a.d, nk = a.nk;
  const std::size_t dfull = d / N * N, dt = d - dfull;
  std::size_t nv = nk;
  if (a.vis) nv = a.vis[r] <= 0 ? 0 : zmin(nk, std::size_t(a.vis[r]));
  if (nv == 0) return;
  const float* q = a.q + r * d;
  float* o = a.o + r * d;

  // logits, eight keys at a time (eight independent FMA chains, one
  // transposing reduction of the eight accumulators)
  const std::size_t pfd = r == 0 ? a.pf_dist : 0, kb8 = 8 * d * (SK == kStoreF32 ? 4 : 2);
  std::size_t j = 0;
  for (; j + 8 <= nv; j += 8) {
    if (pfd)
      for (std::size_t b = 0; b < kb8; b += 64) T::prefetch(static_cast<const char*>(a.krows[j]) + pfd + b);
    const void* kr[8];
    V acc[8];
    NNSCOPE_ATTN_UNROLL
    for (int t = 0; t < 8; ++t) {
      kr[t] = a.krows[j + t];
      acc[t] = T::zero();
    }
    std::size_t c = 0;
    for (; c < dfull; c += N) {
      const V qv = T::load(q + c);
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 8; ++t) acc[t] = T::fma(qv, ld<T, SK>(kr[t], c), acc[t]);
    }
    if (dt) {
      const V qv = T::loadn(q + c, dt);
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 8; ++t) acc[t] = T::fma(qv, ldn<T, SK>(kr[t], c, dt), acc[t]);
    }
    T::hsum8(acc, s + j);
  }
  for (; j < nv; ++j) {
    const void* k0 = a.krows[j];
    V c0 = T::zero();
    std::size_t c = 0;
    for (; c < dfull; c += N) c0 = T::fma(T::load(q + c), ld<T, SK>(k0, c), c0);
    if (dt) c0 = T::fma(T::loadn(q + c, dt), ldn<T, SK>(k0, c, dt), c0);
    s[j] = T::hsum(c0);
  }

  const float alpha = row_softmax<T>(s, nv, a.m + r, a.l + r);

  // o = alpha·o + Σ p_j v_j
  std::size_t c0 = 0;
  const std::size_t vb = d * (SV == kStoreF32 ? 4 : 2);
  for (; c0 + 8 * N <= dfull; c0 += 8 * N) pv_rows_block<T, SV, 8>(nv, a.vrows, s, c0, alpha, o, c0 ? 0 : pfd, vb);
  if (c0 < dfull) pv_rows_rem<T, SV, 7>((dfull - c0) / N, nv, a.vrows, s, c0, alpha, o);
  if (dt) pv_rows_tail<T, SV>(nv, a.vrows, s, dfull, dt, alpha, o);
}

// R rows that all see the whole tile (GQA heads of one KV head at decode), in one
// pass: every K and V vector is loaded and converted once for the R rows.
template <class T, int SV, int R, int CB>
NNSCOPE_ATTN_INLINE void pv_joint(std::size_t nk, const void* const* vrows, float* const* p, std::size_t c0,
                                  const float* alpha, float* const* o, std::size_t pfd = 0, std::size_t vbytes = 0) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  V acc[R][CB];
  NNSCOPE_ATTN_UNROLL
  for (int r = 0; r < R; ++r) {
    const V va = T::set1(alpha[r]);
    NNSCOPE_ATTN_UNROLL
    for (int b = 0; b < CB; ++b) acc[r][b] = T::mul(va, T::load(o[r] + c0 + b * N));
  }
  for (std::size_t j = 0; j < nk; ++j) {
    if (pfd)
      for (std::size_t b = 0; b < vbytes; b += 64) T::prefetch(static_cast<const char*>(vrows[j]) + pfd + b);
    V vv[CB];
    NNSCOPE_ATTN_UNROLL
    for (int b = 0; b < CB; ++b) vv[b] = ld<T, SV>(vrows[j], c0 + b * N);
    NNSCOPE_ATTN_UNROLL
    for (int r = 0; r < R; ++r) {
      const V pj = T::set1(p[r][j]);
      NNSCOPE_ATTN_UNROLL
      for (int b = 0; b < CB; ++b) acc[r][b] = T::fma(pj, vv[b], acc[r][b]);
    }
  }
  NNSCOPE_ATTN_UNROLL
  for (int r = 0; r < R; ++r)
    NNSCOPE_ATTN_UNROLL
    for (int b = 0; b < CB; ++b) T::store(o[r] + c0 + b * N, acc[r][b]);
}

template <class T, int SV, int R, int CB>
NNSCOPE_ATTN_INLINE void pv_joint_rem(std::size_t cb, std::size_t nk, const void* const* vrows, float* const* p,
                                      std::size_t c0, const float* alpha, float* const* o) {
  if constexpr (CB > 0) {
    if (cb == std::size_t(CB)) pv_joint<T, SV, R, CB>(nk, vrows, p, c0, alpha, o);
    else pv_joint_rem<T, SV, R, CB - 1>(cb, nk, vrows, p, c0, alpha, o);
  }
}

template <class T, int SK, int SV, int R>
void rows_joint(const RowsStep& a, std::size_t r0) {
  using V = typename T::V;
  constexpr std::size_t N = T::N;
  constexpr int CB = T::JCB;  // value vectors per register block of the update
  const std::size_t d = a.d, nk = a.nk;
  const std::size_t dfull = d / N * N, dt = d - dfull, ls = nk + N;
  const float* q[R];
  float* o[R];
  float* s[R];
  for (int r = 0; r < R; ++r) {
    q[r] = a.q + (r0 + r) * d;
    o[r] = a.o + (r0 + r) * d;
    s[r] = a.s + r * ls;
  }

  // logits: four keys × R rows of accumulators; K loaded once per vector
  const std::size_t pfd = a.pf_dist, kb4 = 4 * d * (SK == kStoreF32 ? 4 : 2), vb = d * (SV == kStoreF32 ? 4 : 2);
  std::size_t j = 0;
  for (; j + 4 <= nk; j += 4) {
    if (pfd)
      for (std::size_t b = 0; b < kb4; b += 64) T::prefetch(static_cast<const char*>(a.krows[j]) + pfd + b);
    const void* kr[4] = {a.krows[j], a.krows[j + 1], a.krows[j + 2], a.krows[j + 3]};
    V acc[R][4];
    NNSCOPE_ATTN_UNROLL
    for (int r = 0; r < R; ++r)
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 4; ++t) acc[r][t] = T::zero();
    std::size_t c = 0;
    for (; c < dfull; c += N) {
      V kv[4];
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 4; ++t) kv[t] = ld<T, SK>(kr[t], c);
      NNSCOPE_ATTN_UNROLL
      for (int r = 0; r < R; ++r) {
        const V qv = T::load(q[r] + c);
        NNSCOPE_ATTN_UNROLL
        for (int t = 0; t < 4; ++t) acc[r][t] = T::fma(qv, kv[t], acc[r][t]);
      }
    }
    if (dt) {
      V kv[4];
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 4; ++t) kv[t] = ldn<T, SK>(kr[t], c, dt);
      NNSCOPE_ATTN_UNROLL
      for (int r = 0; r < R; ++r) {
        const V qv = T::loadn(q[r] + c, dt);
        NNSCOPE_ATTN_UNROLL
        for (int t = 0; t < 4; ++t) acc[r][t] = T::fma(qv, kv[t], acc[r][t]);
      }
    }
    NNSCOPE_ATTN_UNROLL
    for (int r = 0; r + 1 < R; r += 2) {
      const V x[8] = {acc[r][0], acc[r][1], acc[r][2], acc[r][3], acc[r + 1][0], acc[r + 1][1], acc[r + 1][2],
                      acc[r + 1][3]};
      float out[8];
      T::hsum8(x, out);
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 4; ++t) {
        s[r][j + t] = out[t];
        s[r + 1][j + t] = out[4 + t];
      }
    }
    if constexpr (R % 2 == 1)
      NNSCOPE_ATTN_UNROLL
      for (int t = 0; t < 4; ++t) s[R - 1][j + t] = T::hsum(acc[R - 1][t]);
  }
  for (; j < nk; ++j) {
    const void* k0 = a.krows[j];
    V acc[R];
    NNSCOPE_ATTN_UNROLL
    for (int r = 0; r < R; ++r) acc[r] = T::zero();
    std::size_t c = 0;
    for (; c < dfull; c += N) {
      const V kv = ld<T, SK>(k0, c);
      NNSCOPE_ATTN_UNROLL
      for (int r = 0; r < R; ++r) acc[r] = T::fma(T::load(q[r] + c), kv, acc[r]);
    }
    if (dt) {
      const V kv = ldn<T, SK>(k0, c, dt);
      NNSCOPE_ATTN_UNROLL
      for (int r = 0; r < R; ++r) acc[r] = T::fma(T::loadn(q[r] + c, dt), kv, acc[r]);
    }
    NNSCOPE_ATTN_UNROLL
    for (int r = 0; r < R; ++r) s[r][j] = T::hsum(acc[r]);
  }

  float alpha[R];
  for (int r = 0; r < R; ++r) alpha[r] = row_softmax<T>(s[r], nk, a.m + r0 + r, a.l + r0 + r);

  std::size_t c0 = 0;
  for (; c0 + CB * N <= dfull; c0 += CB * N) pv_joint<T, SV, R, CB>(nk, a.vrows, s, c0, alpha, o, c0 ? 0 : pfd, vb);
  if (c0 < dfull) pv_joint_rem<T, SV, R, CB - 1>((dfull - c0) / N, nk, a.vrows, s, c0, alpha, o);
  if (dt)
    for (int r = 0; r < R; ++r) pv_rows_tail<T, SV>(nk, a.vrows, s[r], dfull, dt, alpha[r], o[r]);
}

template <class T, int SK, int SV, int R>
NNSCOPE_ATTN_INLINE void rows_joint_rem(std::size_t rem, const RowsStep& a, std::size_t r0) {
  if constexpr (R >= 2) {
    if (rem == std::size_t(R)) rows_joint<T, SK, SV, R>(a, r0);
    else rows_joint_rem<T, SK, SV, R - 1>(rem, a, r0);
  }
}

template <class T, int SK, int SV>
void rows_step_s(const RowsStep& a) {
  std::size_t r = 0;
  if constexpr (T::RJ >= 2) {
    if (!a.vis) {  // rows that all see the whole tile: jointly, RJ at a time
      for (; r + T::RJ <= a.rows; r += T::RJ) rows_joint<T, SK, SV, T::RJ>(a, r);
      if (a.rows - r >= 2) {
        rows_joint_rem<T, SK, SV, T::RJ - 1>(a.rows - r, a, r);
        r = a.rows;
      }
    }
  }
  for (; r < a.rows; ++r) rows_one<T, SK, SV>(a, r, a.s);
}

template <class T, int SK>
void rows_step_k(const RowsStep& a) {
  switch (a.sv) {
    case kStoreF16: rows_step_s<T, SK, kStoreF16>(a); break;
    case kStoreBF16: rows_step_s<T, SK, kStoreBF16>(a); break;
    default: rows_step_s<T, SK, kStoreF32>(a); break;
  }
}

template <class T>
void rows_step(const RowsStep& a) {
  switch (a.sk) {
    case kStoreF16: rows_step_k<T, kStoreF16>(a); break;
    case kStoreBF16: rows_step_k<T, kStoreBF16>(a); break;
    default: rows_step_k<T, kStoreF32>(a); break;
  }
}

}  // namespace
}  // namespace nnscope::attention::detail
