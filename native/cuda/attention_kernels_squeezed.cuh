// nnscope CUDA backend: Squeezed Attention's online kernels — centroid scoring
// (flat, or over a per-group candidate list for the two-level lookup) and key
// selection with deterministic compaction — and their launch planning. Included
// after attention_kernels.cuh under the same contract (see there): attention.cu and,
// under the host emulator, the tests.
//
// Semantics: attention/squeezed.h (CPU). For a group g (a query head, or the G
// query heads of a KV head h) with rows q_r (r < m), scored clusters S (non-empty,
// and for the fine level of the two-level lookup: children of kept coarse clusters)
// and logits a_j(r) = (q_r·c_j)·scale (float32):
//     M_r = max_{j∈S} a_j(r),  Z_r = Σ_{j∈S} n_j·e_j(r),  e_j(r) = exp(max(a_j(r) − M_r, −87.3)) (float32),
//     s_j = (1/m)·Σ_r e_j(r) / Z_r   (float64 sums; 0 and "not scored" for j ∉ S).
// Two passes. Pass 1: blocks of (32 rows) × (a split of the group's centroid list)
// keep an online (max, Σ n_j·e_j) per row over their split (float64 sums, rescaled
// when the max grows); a combine kernel folds the splits in split order. Splitting
// over centroids lets decode (one query) fill the GPU. Pass 2: blocks of 64
// centroids loop over all the group's rows in order and accumulate e_j(r)/Z_r.
//
// Selection: keep key t of group g iff t ≥ N_c (the window) or its cluster is
// taken; Threshold takes every scored non-empty cluster with score > τ (strict,
// compared in float64); KeepFraction / Budget rank the scored clusters by (score
// descending, index ascending) and take whole clusters while they fit, the boundary
// cluster contributing its lowest-index keys — the boundary is found per group by a
// 64-step bisection over the 64-bit rank key with exact integer key counts. Then a
// per-group compaction: per tile counts, a per-group scan over tiles, and a write
// pass with block-level prefix sums: indices ascend within each group, offsets are
// the exclusive scan of the group totals. Everything on the device, no atomics.
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including attention_kernels_squeezed.cuh"
#endif

#include <cmath>

#include "attention/squeezed.h"
#include "base/error.h"
#include "cuda/attention.h"
#include "cuda/attention_kernels.cuh"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {
namespace attn {

// ============================================================================ block scans
// Exclusive prefix sum of one value per thread over a block of NT threads (NT a
// power of two); returns the thread's exclusive prefix, *total the block sum.
// `buf` is shared memory of NT elements. Contains barriers: call from all threads.
template <int NT, typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, T* buf, T* total) {
  const int t = threadIdx.x;
  buf[t] = v;
  __syncthreads();
  for (int off = 1; off < NT; off <<= 1) {
    const T add = t >= off ? buf[t - off] : T(0);
    __syncthreads();
    buf[t] += add;
    __syncthreads();
  }
  const T incl = buf[t];
  *total = buf[NT - 1];
  __syncthreads();
  return incl - v;
}

// ============================================================================ scoring
constexpr int kScoreTQ = 32;   // query rows per tile
constexpr int kScoreTC = 64;   // centroids per tile
constexpr int kScoreDK = 32;   // d-chunk staged in shared memory
constexpr float kExpFloor = -87.3f;

struct ScoreParams {
  const float* q;  // group g's rows: q + g·rows·d (rows contiguous)
  int rows, groups, G, pq, d;
  const void* cent;  // [H, C, d]
  int cst;
  const int* sizes;  // [H, C]
  int C;
  const int* list;               // optional candidate lists (CSR over positions), null: all C
  const std::size_t* list_offs;  // [groups + 1]
  float scale;
  int split, nsplit;  // pass 1: centroid positions per split, splits per group
  float* pm;          // [groups][rows][nsplit] running max
  double* pz;         // [groups][rows][nsplit] Σ n_j·e_j relative to pm
  float* M;           // [groups][rows]
  double* invZ;       // [groups][rows]
  float* scores;      // [groups][C]
  unsigned char* scored;  // [groups][C]
  int vec_c;
};

__device__ __forceinline__ int score_kv_head(const ScoreParams& p, int g) { return p.pq ? g / p.G : g; }
__device__ __forceinline__ int score_ncols(const ScoreParams& p, int g) {
  return p.list ? int(p.list_offs[g + 1] - p.list_offs[g]) : p.C;
}
// Centroid index at list position `pos` of group g (pos < ncols).
__device__ __forceinline__ int score_col(const ScoreParams& p, int g, int pos) {
  return p.list ? p.list[p.list_offs[g] + pos] : pos;
}

// Logits of rows [r0, r0+32) × list positions [c0, c0+64) of group g into acc
// (thread: rows ty + 8i, columns tx + 16j; ty = t/16, tx = t%16), float32 dots in
// ascending d, times scale. Shared: Qs [32][33], Cs [32][65], cidx [64].
__device__ __forceinline__ void score_tile(const ScoreParams& p, int g, int r0, int c0, int ncols, float* Qs,
                                           float* Cs, int* cidx, float acc[4][4]) {
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int h = score_kv_head(p, g);
  if (t < kScoreTC) {
    const int pos = c0 + t;
    cidx[t] = pos < ncols ? score_col(p, g, pos) : -1;
  }
  NNSCOPE_UNROLL
  for (int i = 0; i < 4; ++i)
    NNSCOPE_UNROLL
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  const float* qg = p.q + (i64)g * p.rows * p.d;
  const char* cbase = static_cast<const char*>(p.cent) + (i64)h * p.C * p.d * storage_size(p.cst);
  __syncthreads();
  for (int dc = 0; dc < p.d; dc += kScoreDK) {
    for (int e = t; e < kScoreTQ * kScoreDK; e += kThreads) {
      const int row = e / kScoreDK, kk = e % kScoreDK;
      const int r = r0 + row, c = dc + kk;
      Qs[kk * 33 + row] = (r < p.rows && c < p.d) ? qg[(i64)r * p.d + c] : 0.0f;
    }
    for (int e = t; e < kScoreTC * (kScoreDK / 4); e += kThreads) {
      const int col = e / (kScoreDK / 4), kk = (e % (kScoreDK / 4)) * 4;
      const int j = cidx[col], c = dc + kk;
      float4 x = f4zero();
      if (j >= 0 && c < p.d) x = load_elems(cbase, (i64)j * p.d + c, p.cst, mini(4, p.d - c), p.vec_c != 0);
      Cs[(kk + 0) * 65 + col] = x.x;
      Cs[(kk + 1) * 65 + col] = x.y;
      Cs[(kk + 2) * 65 + col] = x.z;
      Cs[(kk + 3) * 65 + col] = x.w;
    }
    __syncthreads();
    const int kend = mini(kScoreDK, p.d - dc);
    for (int kk = 0; kk < kend; ++kk) {
      float a[4], b[4];
      NNSCOPE_UNROLL
      for (int i = 0; i < 4; ++i) a[i] = Qs[kk * 33 + ty + 8 * i];
      NNSCOPE_UNROLL
      for (int j = 0; j < 4; ++j) b[j] = Cs[kk * 65 + tx + 16 * j];
      NNSCOPE_UNROLL
      for (int i = 0; i < 4; ++i)
        NNSCOPE_UNROLL
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  NNSCOPE_UNROLL
  for (int i = 0; i < 4; ++i)
    NNSCOPE_UNROLL
    for (int j = 0; j < 4; ++j) acc[i][j] *= p.scale;
}

// Pass 1: grid (row tiles, splits, groups).
__global__ void __launch_bounds__(kThreads) score_pass1_kernel(ScoreParams p) {
  __shared__ float Qs[kScoreDK * 33];
  __shared__ float Cs[kScoreDK * 65];
  __shared__ float Ss[kScoreTQ * 65];
  __shared__ double wsz[kScoreTC];
  __shared__ int cidx[kScoreTC];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int r0 = blockIdx.x * kScoreTQ, s = blockIdx.y, g = blockIdx.z;
  const int h = score_kv_head(p, g);
  const int ncols = score_ncols(p, g);
  const int cbeg = s * p.split, cend = mini(ncols, cbeg + p.split);
  float m_run = neg_inf();
  double z_run = 0.0;
  for (int c0 = cbeg; c0 < cend; c0 += kScoreTC) {
    float acc[4][4];
    score_tile(p, g, r0, c0, cend, Qs, Cs, cidx, acc);
    if (t < kScoreTC) {
      const int j = cidx[t];
      const int n = j >= 0 ? p.sizes[(i64)h * p.C + j] : 0;
      wsz[t] = n > 0 ? double(n) : 0.0;
    }
    __syncthreads();
    NNSCOPE_UNROLL
    for (int i = 0; i < 4; ++i)
      NNSCOPE_UNROLL
      for (int j = 0; j < 4; ++j) {
        const int col = tx + 16 * j;
        Ss[(ty + 8 * i) * 65 + col] = wsz[col] > 0.0 ? acc[i][j] : neg_inf();
      }
    __syncthreads();
    if (t < kScoreTQ) {
      float mt = neg_inf();
      for (int j = 0; j < kScoreTC; ++j) {
        const float x = Ss[t * 65 + j];
        mt = x > mt ? x : mt;
      }
      const float m_new = mt > m_run ? mt : m_run;
      if (m_new != neg_inf()) {
        if (m_run != neg_inf() && m_new != m_run) z_run *= exp(double(m_run) - double(m_new));
        for (int j = 0; j < kScoreTC; ++j) {
          const float x = Ss[t * 65 + j];
          if (x != neg_inf()) z_run += double(expf(fmaxf(x - m_new, kExpFloor))) * wsz[j];
        }
        m_run = m_new;
      }
    }
    __syncthreads();
  }
  if (t < kScoreTQ && r0 + t < p.rows) {
    const i64 o = ((i64)g * p.rows + r0 + t) * p.nsplit + s;
    p.pm[o] = m_run;
    p.pz[o] = z_run;
  }
}

// Combine: one thread per (group, row); splits folded in order.
__global__ void __launch_bounds__(kThreads) score_combine_kernel(ScoreParams p) {
  const i64 e = (i64)blockIdx.x * kThreads + threadIdx.x;
  if (e >= (i64)p.groups * p.rows) return;
  const float* pm = p.pm + e * p.nsplit;
  const double* pz = p.pz + e * p.nsplit;
  float M = neg_inf();
  for (int s = 0; s < p.nsplit; ++s) M = pm[s] > M ? pm[s] : M;
  double Z = 0.0;
  if (M != neg_inf())
    for (int s = 0; s < p.nsplit; ++s)
      if (pm[s] != neg_inf()) Z += pm[s] == M ? pz[s] : pz[s] * exp(double(pm[s]) - double(M));
  p.M[e] = M;
  p.invZ[e] = Z > 0.0 ? 1.0 / Z : 0.0;
}

// Pass 2: grid (centroid tiles, groups); every row of the group, in order.
__global__ void __launch_bounds__(kThreads) score_pass2_kernel(ScoreParams p) {
  __shared__ float Qs[kScoreDK * 33];
  __shared__ float Cs[kScoreDK * 65];
  __shared__ double Ps[kScoreTQ * 65];
  __shared__ float Mrow[kScoreTQ];
  __shared__ double Zrow[kScoreTQ];
  __shared__ double wsz[kScoreTC];
  __shared__ int cidx[kScoreTC];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int c0 = blockIdx.x * kScoreTC, g = blockIdx.y;
  const int h = score_kv_head(p, g);
  const int ncols = score_ncols(p, g);
  if (c0 >= ncols) return;
  double colacc = 0.0;  // thread t < 64: column t
  for (int r0 = 0; r0 < p.rows; r0 += kScoreTQ) {
    if (t < kScoreTQ) {
      const int r = r0 + t;
      Mrow[t] = r < p.rows ? p.M[(i64)g * p.rows + r] : neg_inf();
      Zrow[t] = r < p.rows ? p.invZ[(i64)g * p.rows + r] : 0.0;
    }
    float acc[4][4];
    score_tile(p, g, r0, c0, ncols, Qs, Cs, cidx, acc);  // starts with a barrier
    if (t < kScoreTC) {
      const int j = cidx[t];
      const int n = j >= 0 ? p.sizes[(i64)h * p.C + j] : 0;
      wsz[t] = n > 0 ? 1.0 : 0.0;
    }
    __syncthreads();
    NNSCOPE_UNROLL
    for (int i = 0; i < 4; ++i)
      NNSCOPE_UNROLL
      for (int j = 0; j < 4; ++j) {
        const int row = ty + 8 * i, col = tx + 16 * j;
        const float M = Mrow[row];
        double v = 0.0;
        if (wsz[col] > 0.0 && M != neg_inf()) v = double(expf(fmaxf(acc[i][j] - M, kExpFloor))) * Zrow[row];
        Ps[row * 65 + col] = v;
      }
    __syncthreads();
    if (t < kScoreTC) {
      const int nr = mini(kScoreTQ, p.rows - r0);
      for (int r = 0; r < nr; ++r) colacc += Ps[r * 65 + t];
    }
    __syncthreads();
  }
  if (t < kScoreTC) {
    const int j = cidx[t];
    if (j >= 0) {
      const bool ok = wsz[t] > 0.0;
      p.scores[(i64)g * p.C + j] = ok ? float(colacc * (1.0 / double(p.rows))) : 0.0f;
      p.scored[(i64)g * p.C + j] = ok ? 1 : 0;
    }
  }
}

// scores / scored ← 0 (before a candidate-list pass 2, which writes only its lists).
__global__ void __launch_bounds__(kThreads) score_clear_kernel(i64 n, float* scores, unsigned char* scored) {
  const i64 e = (i64)blockIdx.x * kThreads + threadIdx.x;
  if (e < n) {
    scores[e] = 0.0f;
    scored[e] = 0;
  }
}

struct ScorePlan {
  int tiles = 0, split = 0, nsplit = 1;
  std::size_t ws_pm = 0, ws_pz = 0, ws_M = 0, ws_Z = 0;
  std::size_t workspace() const { return ws_pm + ws_pz + ws_M + ws_Z; }
};

// max_cols: the most centroids a group can score (C; for candidate lists C too).
inline ScorePlan plan_scores(int groups, int rows, int max_cols, int sms) {
  ScorePlan P;
  P.tiles = int(cdiv(rows, kScoreTQ));
  const i64 units = (i64)P.tiles * groups;
  const i64 want = 4LL * (sms > 0 ? sms : 1);
  int nsplit = 1;
  if (units < want) nsplit = int(minl(cdiv(want, units), cdiv(maxl(max_cols, 1), 256)));
  if (nsplit < 1) nsplit = 1;
  P.split = int(cdiv(cdiv(maxl(max_cols, 1), nsplit), kScoreTC) * kScoreTC);
  P.nsplit = int(cdiv(maxl(max_cols, 1), P.split));
  const std::size_t gr = std::size_t(groups) * std::size_t(rows);
  P.ws_pm = align256(gr * P.nsplit * 4);
  P.ws_pz = align256(gr * P.nsplit * 8);
  P.ws_M = align256(gr * 4);
  P.ws_Z = align256(gr * 8);
  return P;
}

// Forces the split of pass 1 (tests: exercise the split combine on small problems).
inline void plan_scores_force_split(ScorePlan& P, int groups, int rows, int max_cols, int split) {
  P.split = int(cdiv(maxl(split, 1), kScoreTC) * kScoreTC);
  P.nsplit = int(cdiv(maxl(max_cols, 1), P.split));
  const std::size_t gr = std::size_t(groups) * std::size_t(rows);
  P.ws_pm = align256(gr * P.nsplit * 4);
  P.ws_pz = align256(gr * P.nsplit * 8);
}

// Runs the two passes. p: problem fields set (list optional); partial pointers
// from the workspace here.
inline void launch_scores(const ScorePlan& P, ScoreParams p, void* workspace, void* stream) {
  char* ws = static_cast<char*>(workspace);
  p.split = P.split;
  p.nsplit = P.nsplit;
  p.pm = reinterpret_cast<float*>(ws);
  p.pz = reinterpret_cast<double*>(ws + P.ws_pm);
  p.M = reinterpret_cast<float*>(ws + P.ws_pm + P.ws_pz);
  p.invZ = reinterpret_cast<double*>(ws + P.ws_pm + P.ws_pz + P.ws_M);
  if (p.groups == 0 || p.rows == 0) return;
  if (p.list) {
    const i64 n = (i64)p.groups * p.C;
    launch_kernel(score_clear_kernel, dim3(unsigned(cdiv(n, kThreads)), 1, 1), dim3(kThreads, 1, 1), stream, n,
                  p.scores, p.scored);
  }
  launch_kernel(score_pass1_kernel, dim3(unsigned(P.tiles), unsigned(P.nsplit), unsigned(p.groups)),
                dim3(kThreads, 1, 1), stream, p);
  const i64 gr = (i64)p.groups * p.rows;
  launch_kernel(score_combine_kernel, dim3(unsigned(cdiv(gr, kThreads)), 1, 1), dim3(kThreads, 1, 1), stream, p);
  launch_kernel(score_pass2_kernel, dim3(unsigned(cdiv(p.C, kScoreTC)), unsigned(p.groups), 1),
                dim3(kThreads, 1, 1), stream, p);
}

// ============================================================================ selection
constexpr int kSelThreads = 256;
constexpr int kSelPer = 4;                          // items per thread
constexpr int kSelTile = kSelThreads * kSelPer;     // items per tile

enum SelectCode : int { kSelThreshold = 0, kSelRank = 1 };

// Monotone map of a float to unsigned (a < b ⇔ f(a) < f(b) for non-NaN).
__device__ __forceinline__ unsigned float_order(float x) {
  unsigned u;
#ifdef NNSCOPE_CUDA_EMU
  std::memcpy(&u, &x, 4);
#else
  u = __float_as_uint(x);
#endif
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
// Rank key of cluster j with score s: larger = earlier (score desc, index asc).
__device__ __forceinline__ unsigned long long rank_key(float s, int j) {
  return ((unsigned long long)float_order(s) << 32) | (unsigned long long)(0xFFFFFFFFu - unsigned(j));
}

// Which clusters a group takes. Threshold: scored, non-empty, score > thr.
// Rank modes: K_j > Kb[g] taken whole, cluster bidx[g] takes takeb[g] keys.
struct KeyMask {
  const int* labels;  // [H, nc]
  i64 nc, N;
  int G, pq, C;
  const float* scores;           // [groups, C]
  const unsigned char* scored;   // [groups, C]
  const int* sizes;              // [H, C]
  int mode;
  double thr;
  const unsigned long long* Kb;  // [groups] (rank modes)
  const int* bidx;               // [groups]
  const long long* takeb;        // [groups]

  __device__ __forceinline__ i64 items() const { return N; }
  __device__ __forceinline__ long long boundary_take(int g) const { return mode == kSelRank ? takeb[g] : 0; }
  // 0 drop, 1 keep, 2 boundary cluster (kept while its rank < boundary_take)
  __device__ __forceinline__ int code(int g, i64 t) const {
    if (t >= nc) return 1;
    const int h = pq ? g / G : g;
    const int j = labels[(i64)h * nc + t];
    if (j < 0 || j >= C) return 0;
    const i64 gj = (i64)g * C + j;
    if (!scored[gj] || sizes[(i64)h * C + j] <= 0) return 0;
    const float s = scores[gj];
    if (mode == kSelThreshold) return double(s) > thr ? 1 : 0;
    const unsigned long long K = rank_key(s, j);
    if (K > Kb[g]) return 1;
    return j == bidx[g] ? 2 : 0;
  }
};

// Fine centroids whose coarse parent was kept (two-level lookup candidates).
struct CandMask {
  int C, C1, G, pq;
  const int* sizes;          // [H, C]
  const int* parent;         // [H, C]
  const int* csizes;         // [H, C1]
  const float* cscores;      // [groups, C1]
  double thr;
  __device__ __forceinline__ i64 items() const { return C; }
  __device__ __forceinline__ long long boundary_take(int) const { return 0; }
  __device__ __forceinline__ int code(int g, i64 j) const {
    const int h = pq ? g / G : g;
    if (sizes[(i64)h * C + j] <= 0) return 0;
    const int par = parent[(i64)h * C + j];
    if (par < 0 || par >= C1) return 0;
    return csizes[(i64)h * C1 + par] > 0 && double(cscores[(i64)g * C1 + par]) > thr ? 1 : 0;
  }
};

// Sums of NV values over the block (integer: any order gives the same result);
// every thread gets the totals in v. sm: shared memory of NV·NT elements.
template <int NT, int NV>
__device__ __forceinline__ void block_sum_vec(long long* v, long long* sm) {
  const int t = threadIdx.x;
  for (int i = 0; i < NV; ++i) sm[i * NT + t] = v[i];
  __syncthreads();
  for (int off = NT / 2; off > 0; off >>= 1) {
    if (t < off)
      for (int i = 0; i < NV; ++i) sm[i * NT + t] += sm[i * NT + t + off];
    __syncthreads();
  }
  for (int i = 0; i < NV; ++i) v[i] = sm[i * NT];
  __syncthreads();
}

// Boundary search of the rank modes, one block per group: the largest 64-bit key
// x with F(x) = Σ_{scored j, K_j ≥ x} n_j ≥ target, found digit by digit (16 hex
// digits, a 16-bin count per digit; exact integer counts, so the same on every run).
// Then Kb = x (clusters with K > x are taken whole), bidx = the cluster with K = x,
// takeb = target − Σ_{K > x} n.
__global__ void __launch_bounds__(kSelThreads) select_boundary_kernel(KeyMask m, long long target,
                                                                      unsigned long long* Kb, int* bidx,
                                                                      long long* takeb) {
  __shared__ long long sm[17 * kSelThreads];
  const int g = blockIdx.x, t = threadIdx.x;
  const int h = m.pq ? g / m.G : g;
  long long acc[17];
  // F(0): every scored key.
  acc[0] = 0;
  for (int j = t; j < m.C; j += kSelThreads) {
    const i64 gj = (i64)g * m.C + j;
    const int n = m.sizes[(i64)h * m.C + j];
    if (m.scored[gj] && n > 0) acc[0] += n;
  }
  block_sum_vec<kSelThreads, 1>(acc, sm);
  const long long all = acc[0];
  unsigned long long x = 0;
  int b = -1;
  long long take = 0;
  if (target <= 0) {
    x = ~0ULL;  // nothing
  } else if (all > target) {
    for (int step = 0; step < 16; ++step) {
      const int shift = 60 - 4 * step;
      for (int v = 0; v < 17; ++v) acc[v] = 0;
      for (int j = t; j < m.C; j += kSelThreads) {
        const i64 gj = (i64)g * m.C + j;
        const int n = m.sizes[(i64)h * m.C + j];
        if (!m.scored[gj] || n <= 0) continue;
        const unsigned long long K = rank_key(m.scores[gj], j);
        const unsigned long long kh = step == 0 ? 0ULL : K >> (shift + 4);
        const unsigned long long xh = step == 0 ? 0ULL : x >> (shift + 4);
        if (kh > xh) acc[16] += n;
        else if (kh == xh) acc[(K >> shift) & 15ULL] += n;
      }
      block_sum_vec<kSelThreads, 17>(acc, sm);
      // F(x | v << shift) = acc[16] + Σ_{u ≥ v} acc[u]; the largest v with F ≥ target
      // (v = 0 always qualifies: F(x) ≥ target is the invariant).
      long long F = acc[16];
      int pick = 0;
      for (int v = 15; v >= 0; --v) {
        F += acc[v];
        if (F >= target) {
          pick = v;
          break;
        }
      }
      x |= (unsigned long long)pick << shift;
    }
    b = int(0xFFFFFFFFu - unsigned(x & 0xFFFFFFFFULL));
    acc[0] = 0;
    for (int j = t; j < m.C; j += kSelThreads) {
      const i64 gj = (i64)g * m.C + j;
      const int n = m.sizes[(i64)h * m.C + j];
      if (m.scored[gj] && n > 0 && rank_key(m.scores[gj], j) > x) acc[0] += n;
    }
    block_sum_vec<kSelThreads, 1>(acc, sm);
    take = target - acc[0];
  }
  // else: every scored cluster whole (x = 0 < every key)
  if (t == 0) {
    Kb[g] = x;
    bidx[g] = b;
    takeb[g] = take;
  }
}

// Per tile (kSelTile items) of every group: counts of kept (code 1) and boundary
// (code 2) items. Grid (tiles, groups).
template <typename Mask>
__global__ void __launch_bounds__(kSelThreads) select_count_kernel(Mask m, int tiles, long long* cnt) {
  __shared__ long long buf[2 * kSelThreads];
  const int g = blockIdx.y, tile = blockIdx.x, t = threadIdx.x;
  const i64 n = m.items();
  long long k1 = 0, k2 = 0;
  for (int e = 0; e < kSelPer; ++e) {
    const i64 it = (i64)tile * kSelTile + (i64)t * kSelPer + e;
    if (it < n) {
      const int c = m.code(g, it);
      k1 += c == 1;
      k2 += c == 2;
    }
  }
  long long v[2] = {k1, k2};
  block_sum_vec<kSelThreads, 2>(v, buf);
  if (t == 0) {
    cnt[((i64)g * tiles + tile) * 2 + 0] = v[0];
    cnt[((i64)g * tiles + tile) * 2 + 1] = v[1];
  }
}

// One block: per group, the tiles' counts → exclusive prefixes in place (kept,
// boundary rank); offsets = exclusive scan of the group totals.
template <typename Mask>
__global__ void __launch_bounds__(kSelThreads) select_scan_kernel(Mask m, int groups, int tiles, long long* cnt,
                                                                  std::size_t* offsets) {
  __shared__ long long buf[kSelThreads];
  const int t = threadIdx.x;
  long long carry = 0;
  for (int g0 = 0; g0 < groups; g0 += kSelThreads) {
    const int g = g0 + t;
    long long total = 0;
    if (g < groups) {
      const long long tb = m.boundary_take(g);
      long long kept = 0, bpre = 0;
      for (int tile = 0; tile < tiles; ++tile) {
        long long* c = cnt + ((i64)g * tiles + tile) * 2;
        const long long c1 = c[0], c2 = c[1];
        c[0] = kept;
        c[1] = bpre;
        long long bk = tb - bpre;
        bk = bk < 0 ? 0 : bk > c2 ? c2 : bk;
        kept += c1 + bk;
        bpre += c2;
      }
      total = kept;
    }
    long long sum;
    const long long ex = block_exclusive_scan<kSelThreads>(total, buf, &sum);
    if (g < groups) offsets[g] = std::size_t(carry + ex);
    carry += sum;
  }
  if (t == 0) offsets[groups] = std::size_t(carry);
}

// Writes the kept items of each tile in ascending order. Grid (tiles, groups).
template <typename Mask>
__global__ void __launch_bounds__(kSelThreads) select_write_kernel(Mask m, int tiles, const long long* cnt,
                                                                   const std::size_t* offsets, int* out) {
  __shared__ long long buf[kSelThreads];
  const int g = blockIdx.y, tile = blockIdx.x, t = threadIdx.x;
  const i64 n = m.items();
  const long long tb = m.boundary_take(g);
  const long long kept_pre = cnt[((i64)g * tiles + tile) * 2 + 0];
  const long long b_pre = cnt[((i64)g * tiles + tile) * 2 + 1];
  int code[kSelPer];
  long long nb = 0;
  for (int e = 0; e < kSelPer; ++e) {
    const i64 it = (i64)tile * kSelTile + (i64)t * kSelPer + e;
    code[e] = it < n ? m.code(g, it) : 0;
    nb += code[e] == 2;
  }
  long long tot;
  long long brank = b_pre + block_exclusive_scan<kSelThreads>(nb, buf, &tot);
  long long nk = 0;
  bool keep[kSelPer];
  for (int e = 0; e < kSelPer; ++e) {
    keep[e] = code[e] == 1;
    if (code[e] == 2) {
      keep[e] = brank < tb;
      ++brank;
    }
    nk += keep[e];
  }
  long long pos = (long long)offsets[g] + kept_pre + block_exclusive_scan<kSelThreads>(nk, buf, &tot);
  for (int e = 0; e < kSelPer; ++e)
    if (keep[e]) out[pos++] = int((i64)tile * kSelTile + (i64)t * kSelPer + e);
}

struct SelectPlan {
  int tiles = 0;
  std::size_t ws_cnt = 0, ws_bound = 0;
  std::size_t workspace() const { return ws_cnt + ws_bound; }
};

inline SelectPlan plan_select(int groups, i64 items) {
  SelectPlan P;
  P.tiles = int(maxl(1, cdiv(items, kSelTile)));
  P.ws_cnt = align256(std::size_t(groups) * std::size_t(P.tiles) * 2 * 8);
  P.ws_bound = align256(std::size_t(groups) * (8 + 4 + 8) + 64);
  return P;
}

// Compaction of `m` for every group into (out, offsets). Workspace from plan_select.
template <typename Mask>
void launch_compact(const SelectPlan& P, const Mask& m, int groups, void* workspace, int* out, std::size_t* offsets,
                    void* stream) {
  long long* cnt = reinterpret_cast<long long*>(workspace);
  launch_kernel(select_count_kernel<Mask>, dim3(unsigned(P.tiles), unsigned(groups), 1), dim3(kSelThreads, 1, 1),
                stream, m, P.tiles, cnt);
  launch_kernel(select_scan_kernel<Mask>, dim3(1, 1, 1), dim3(kSelThreads, 1, 1), stream, m, groups, P.tiles, cnt,
                offsets);
  launch_kernel(select_write_kernel<Mask>, dim3(unsigned(P.tiles), unsigned(groups), 1), dim3(kSelThreads, 1, 1),
                stream, m, P.tiles, (const long long*)cnt, (const std::size_t*)offsets, out);
}

// Key selection. m.mode / thr set by the caller; for kSelRank the boundary arrays
// are placed in the workspace and computed here for `target` keys per group.
inline void launch_select_keys(const SelectPlan& P, KeyMask m, int groups, long long target, void* workspace,
                               int* out, std::size_t* offsets, void* stream) {
  char* ws = static_cast<char*>(workspace);
  if (m.mode == kSelRank) {
    unsigned long long* Kb = reinterpret_cast<unsigned long long*>(ws + P.ws_cnt);
    long long* takeb = reinterpret_cast<long long*>(ws + P.ws_cnt + std::size_t(groups) * 8);
    int* bidx = reinterpret_cast<int*>(ws + P.ws_cnt + std::size_t(groups) * 16);
    m.Kb = Kb;
    m.takeb = takeb;
    m.bidx = bidx;
    launch_kernel(select_boundary_kernel, dim3(unsigned(groups), 1, 1), dim3(kSelThreads, 1, 1), stream, m, target,
                  Kb, bidx, takeb);
  }
  launch_compact(P, m, groups, workspace, out, offsets, stream);
}


// ============================================================================ composition
// Squeezed prefill / decode: scores → selection → sparse attention over the fixed
// K/V → dense attention over the user / tail K/V → LSE merge, as squeezed.cpp's
// compose(). Host planning only; the kernels are launched through a flash runner
// (SIMT here; attention.cu adds the tensor-core kernel).
struct SqzProblem {
  // context
  int H = 0, d = 0, C = 0, C1 = 0;
  i64 N = 0, nc = 0;
  bool two = false;
  const float* cent = nullptr;
  const int* labels = nullptr;
  const int* sizes = nullptr;
  const float* ccent = nullptr;
  const int* parent = nullptr;
  const int* csizes = nullptr;
  // queries
  const float* q = nullptr;
  int Hq = 0, Nq = 0, G = 1;
  bool pq = true;
  double scale = 0;  // resolved (> 0)
  // selection
  int mode = kSelThreshold;
  double thr = 0, cthr = 0;
  long long target = 0;
  // K/V
  KvDev fk, fv, dk, dv;
  bool causal = false;
  // outputs
  float* out = nullptr;
  float* lse = nullptr;
  // planning
  int sms = 1;
  bool mma_sparse = false, mma_dense = false;  // tensor-core kernels allowed
  i64 max_selected = 0;                        // 0: groups·N

  int groups() const { return pq ? Hq : H; }
  int score_rows() const { return pq ? Nq : G * Nq; }
  int attn_R() const { return pq ? Nq : G * Nq; }
};

struct SqzPlan {
  ScorePlan score_c, score_f;
  SelectPlan sel_cand, sel_keys;
  FlashPlan fsparse, fdense;
  enum { oScores, oScored, oCScores, oCScored, oCand, oCandOffs, oScoreWs, oSelWs, oIdx, oOffs, oFlashWs, oOb, oLb,
         oLa, oCount };
  std::size_t off[oCount] = {};
  std::size_t bytes = 0;
};

// scores_only: the scoring pieces alone (centroid_scores_async). force_split /
// force_chunk (tests): pass-1 split and sparse chunk lengths instead of the planner's.
inline SqzPlan plan_squeezed(const SqzProblem& P, bool scores_only = false, int force_split = 0,
                             i64 force_chunk = 0) {
  SqzPlan S;
  const int groups = P.groups();
  const int rows = P.score_rows();
  S.score_f = plan_scores(groups, rows, P.C, P.sms);
  if (force_split) plan_scores_force_split(S.score_f, groups, rows, P.C, force_split);
  if (P.two) {
    S.score_c = plan_scores(groups, rows, P.C1, P.sms);
    if (force_split) plan_scores_force_split(S.score_c, groups, rows, P.C1, force_split);
    S.sel_cand = plan_select(groups, P.C);
  }
  S.sel_keys = plan_select(groups, P.N);
  const int R = P.attn_R();
  const bool ms = P.mma_sparse && R > 16;
  S.fsparse = plan_flash(true, groups, R, P.d, P.N, P.max_selected > 0 ? P.max_selected : -1, P.sms,
                         flash_bm(ms, P.d, R));
  S.fsparse.mma = ms;
  if (force_chunk) plan_force_chunk(S.fsparse, groups, R, P.d, P.N, force_chunk);
  const i64 Nd = P.dk.tokens;
  const int Rd = P.G * P.Nq;
  const bool md = P.mma_dense && Rd > 16;
  if (Nd > 0) {
    S.fdense = plan_flash(false, P.H, Rd, P.d, Nd, -1, P.sms, flash_bm(md, P.d, Rd));
    S.fdense.mma = md;
    if (force_chunk) plan_force_chunk(S.fdense, P.H, Rd, P.d, Nd, force_chunk);
  }
  const std::size_t g = std::size_t(groups), rowsq = std::size_t(P.Hq) * std::size_t(P.Nq);
  std::size_t sz[SqzPlan::oCount] = {};
  sz[SqzPlan::oScores] = g * P.C * 4;
  sz[SqzPlan::oScored] = g * P.C;
  if (P.two) {
    sz[SqzPlan::oCScores] = g * P.C1 * 4;
    sz[SqzPlan::oCScored] = g * P.C1;
    sz[SqzPlan::oCand] = g * P.C * 4;
    sz[SqzPlan::oCandOffs] = (g + 1) * 8;
  }
  sz[SqzPlan::oScoreWs] = S.score_f.workspace() > S.score_c.workspace() ? S.score_f.workspace() : S.score_c.workspace();
  sz[SqzPlan::oSelWs] = S.sel_keys.workspace() > S.sel_cand.workspace() ? S.sel_keys.workspace() : S.sel_cand.workspace();
  sz[SqzPlan::oIdx] = g * std::size_t(P.N) * 4;
  sz[SqzPlan::oOffs] = (g + 1) * 8;
  sz[SqzPlan::oFlashWs] = S.fsparse.workspace() > S.fdense.workspace() ? S.fsparse.workspace() : S.fdense.workspace();
  if (Nd > 0) {
    sz[SqzPlan::oOb] = rowsq * P.d * 4;
    sz[SqzPlan::oLb] = rowsq * 4;
  }
  sz[SqzPlan::oLa] = P.lse ? 0 : rowsq * 4;
  if (scores_only) {
    sz[SqzPlan::oScores] = sz[SqzPlan::oScored] = sz[SqzPlan::oIdx] = sz[SqzPlan::oOffs] = 0;
    sz[SqzPlan::oFlashWs] = sz[SqzPlan::oOb] = sz[SqzPlan::oLb] = sz[SqzPlan::oLa] = 0;
    sz[SqzPlan::oSelWs] = S.sel_cand.workspace();
  }
  std::size_t o = 0;
  for (int b = 0; b < SqzPlan::oCount; ++b) {
    S.off[b] = o;
    o += align256(sz[b]);
  }
  S.bytes = o;
  return S;
}

inline FlashParams base_flash_params(const SqzProblem& P, const KvDev& k, const KvDev& v) {
  return flash_params(P.q, P.Hq, P.Nq, P.d, k, v, P.scale);
}

// The pointers of the selection and scores inside the workspace.
struct SqzViews {
  const int* indices;
  const std::size_t* offsets;
  const float* scores;
  const unsigned char* scored;
};
inline SqzViews squeezed_views(const SqzPlan& S, void* workspace) {
  char* ws = static_cast<char*>(workspace);
  return {reinterpret_cast<const int*>(ws + S.off[SqzPlan::oIdx]),
          reinterpret_cast<const std::size_t*>(ws + S.off[SqzPlan::oOffs]),
          reinterpret_cast<const float*>(ws + S.off[SqzPlan::oScores]),
          reinterpret_cast<const unsigned char*>(ws + S.off[SqzPlan::oScored])};
}

inline ScoreParams level_score_params(const SqzProblem& P, bool coarse) {
  ScoreParams s{};
  s.q = P.q;
  s.rows = P.score_rows();
  s.groups = P.groups();
  s.G = P.G;
  s.pq = P.pq ? 1 : 0;
  s.d = P.d;
  s.cent = coarse ? P.ccent : P.cent;
  s.cst = kF32;
  s.sizes = coarse ? P.csizes : P.sizes;
  s.C = coarse ? P.C1 : P.C;
  s.scale = float(P.scale);
  s.vec_c = rows_vectorisable(s.cent, kF32, P.d) ? 1 : 0;
  return s;
}

// Scores (flat or two-level) into the workspace's score arrays; `coarse_out`
// (optional) receives the coarse scores too.
inline void launch_squeezed_scores(const SqzProblem& P, const SqzPlan& S, void* workspace, float* scores,
                                   unsigned char* scored, float* coarse_out, void* stream) {
  char* ws = static_cast<char*>(workspace);
  void* sws = ws + S.off[SqzPlan::oScoreWs];
  const int groups = P.groups();
  ScoreParams f = level_score_params(P, false);
  f.scores = scores;
  f.scored = scored;
  if (P.two) {
    ScoreParams c = level_score_params(P, true);
    c.scores = coarse_out ? coarse_out : reinterpret_cast<float*>(ws + S.off[SqzPlan::oCScores]);
    c.scored = reinterpret_cast<unsigned char*>(ws + S.off[SqzPlan::oCScored]);
    launch_scores(S.score_c, c, sws, stream);
    CandMask m;
    m.C = P.C;
    m.C1 = P.C1;
    m.G = P.G;
    m.pq = P.pq ? 1 : 0;
    m.sizes = P.sizes;
    m.parent = P.parent;
    m.csizes = P.csizes;
    m.cscores = c.scores;
    m.thr = P.cthr;
    int* cand = reinterpret_cast<int*>(ws + S.off[SqzPlan::oCand]);
    std::size_t* coffs = reinterpret_cast<std::size_t*>(ws + S.off[SqzPlan::oCandOffs]);
    launch_compact(S.sel_cand, m, groups, ws + S.off[SqzPlan::oSelWs], cand, coffs, stream);
    f.list = cand;
    f.list_offs = coffs;
  }
  launch_scores(S.score_f, f, sws, stream);
}

inline KeyMask squeezed_key_mask(const SqzProblem& P, const float* scores, const unsigned char* scored) {
  KeyMask m{};
  m.labels = P.labels;
  m.nc = P.nc;
  m.N = P.N;
  m.G = P.G;
  m.pq = P.pq ? 1 : 0;
  m.C = P.C;
  m.scores = scores;
  m.scored = scored;
  m.sizes = P.sizes;
  m.mode = P.mode;
  m.thr = P.thr;
  return m;
}

// The whole pipeline. run(FlashPlan, FlashParams, chunks) launches the attention kernel.
template <typename Run>
void launch_squeezed(const SqzProblem& P, const SqzPlan& S, void* workspace, void* stream, const Run& run) {
  char* ws = static_cast<char*>(workspace);
  const int groups = P.groups();
  float* scores = reinterpret_cast<float*>(ws + S.off[SqzPlan::oScores]);
  unsigned char* scored = reinterpret_cast<unsigned char*>(ws + S.off[SqzPlan::oScored]);
  int* idx = reinterpret_cast<int*>(ws + S.off[SqzPlan::oIdx]);
  std::size_t* offs = reinterpret_cast<std::size_t*>(ws + S.off[SqzPlan::oOffs]);
  void* fws = ws + S.off[SqzPlan::oFlashWs];
  launch_squeezed_scores(P, S, workspace, scores, scored, nullptr, stream);
  launch_select_keys(S.sel_keys, squeezed_key_mask(P, scores, scored), groups, P.target, ws + S.off[SqzPlan::oSelWs],
                     idx, offs, stream);
  float* la = P.lse ? P.lse : reinterpret_cast<float*>(ws + S.off[SqzPlan::oLa]);
  {
    FlashParams f = base_flash_params(P, P.fk, P.fv);
    f.gh = P.pq ? 1 : P.G;
    f.groups = groups;
    f.R = P.attn_R();
    f.idx = idx;
    f.offs = offs;
    f.out = P.out;
    f.lse = la;
    flash_pipeline(S.fsparse, f, fws, stream, [&](const FlashParams& fp, i64 chunks) { run(S.fsparse, fp, chunks); });
  }
  if (P.dk.tokens > 0) {
    float* ob = reinterpret_cast<float*>(ws + S.off[SqzPlan::oOb]);
    float* lb = reinterpret_cast<float*>(ws + S.off[SqzPlan::oLb]);
    FlashParams f = base_flash_params(P, P.dk, P.dv);
    f.gh = P.G;
    f.groups = P.H;
    f.R = P.G * P.Nq;
    f.causal = P.causal ? 1 : 0;
    f.qoff = 0;
    f.out = ob;
    f.lse = lb;
    flash_pipeline(S.fdense, f, fws, stream, [&](const FlashParams& fp, i64 chunks) { run(S.fdense, fp, chunks); });
    launch_lse_merge((i64)P.Hq * P.Nq, P.d, P.out, la, ob, lb, stream);
  }
}

// SelectOptions → (mode, threshold, target keys) as select_keys does.
inline void select_mode(const attention::SelectOptions& o, std::size_t nc, int* mode, double* thr,
                        long long* target) {
  *thr = 0;
  *target = 0;
  switch (o.mode) {
    case attention::SelectMode::Threshold:
      NNSCOPE_CHECK(std::isfinite(o.threshold), ErrorCode::NonFinite, "select_keys: threshold must be finite");
      *mode = kSelThreshold;
      *thr = o.threshold;
      return;
    case attention::SelectMode::KeepFraction: {
      NNSCOPE_CHECK(o.keep_fraction >= 0 && o.keep_fraction <= 1, ErrorCode::InvalidArgument,
                    "select_keys: keep_fraction must be in [0, 1]");
      *mode = kSelRank;
      const double tk = std::ceil(o.keep_fraction * double(nc));
      *target = !(tk > 0) ? 0 : tk >= double(nc) ? (long long)nc : (long long)tk;
      return;
    }
    case attention::SelectMode::Budget:
      *mode = kSelRank;
      *target = (long long)(o.budget < nc ? o.budget : nc);
      return;
    default: fail(ErrorCode::InvalidArgument, "select_keys: unknown mode");
  }
}

// The problem of a composed call from a device context (no validation: the caller's).
inline SqzProblem make_sqz_problem(const DeviceSqueezedContext& c, const attention::Queries& q,
                                   const attention::SelectOptions& o, int sms, i64 max_selected) {
  SqzProblem P;
  P.H = int(c.heads);
  P.d = int(c.d);
  P.C = int(c.clusters);
  P.C1 = int(c.coarse_clusters);
  P.N = i64(c.tokens);
  P.nc = i64(c.clustered());
  P.two = c.hierarchical && o.score.hierarchical;
  P.cent = c.centroids;
  P.labels = c.labels;
  P.sizes = c.sizes;
  P.ccent = c.coarse_centroids;
  P.parent = c.parent;
  P.csizes = c.coarse_sizes;
  P.q = q.data;
  P.Hq = int(q.heads);
  P.Nq = int(q.tokens);
  P.G = int(q.heads / c.heads);
  P.pq = o.score.policy == attention::GroupPolicy::PerQueryHead;
  P.scale = o.score.scale > 0.0f ? double(o.score.scale) : double(float(1.0 / std::sqrt(double(c.d))));
  select_mode(o, c.clustered(), &P.mode, &P.thr, &P.target);
  P.cthr = o.score.coarse_threshold;
  P.sms = sms;
  P.max_selected = max_selected;
  return P;
}

inline void set_sqz_kv(SqzProblem& P, const attention::KvView& fk, const attention::KvView& fv,
                       const attention::KvView& dk, const attention::KvView& dv, bool causal,
                       const attention::Output& out) {
  P.fk = kv_dev(fk);
  P.fv = kv_dev(fv);
  P.dk = kv_dev(dk);
  P.dv = kv_dev(dv);
  P.causal = causal;
  P.out = out.out;
  P.lse = out.lse;
}

}  // namespace attn
}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
