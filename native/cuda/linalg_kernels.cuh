// nnscope CUDA backend: the linalg kernels and their launch planning.
//
// Included by linalg.cu (nvcc) and, under the host emulator of cuda_emu.h, by the
// native tests, so the index and grid arithmetic is exercised on machines without a
// GPU. The includer provides, before including this file:
//   - NNSCOPE_KNS: the namespace for everything here (nnscope::cuda::NNSCOPE_KNS), so
//     the emulated copies never collide with the real kernels at link time;
//   - in that namespace, launch_kernel(kernel, grid, block, stream, args...), which
//     launches a __global__ function (and checks the launch);
//   - CUDA's vocabulary: __global__, __shared__, float4, dim3, threadIdx, blockIdx,
//     blockDim, gridDim, __syncthreads, __shfl_down_sync, fmaf, sqrt.
// Only that subset of CUDA may be used here, and every 16-byte access goes through
// ld4/st4 (the emulator checks their alignment, which the host would not enforce).
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including linalg_kernels.cuh"
#endif

#include "linalg/blas.h"

#if defined(__CUDACC__)
#define NNSCOPE_UNROLL _Pragma("unroll")
#else
#define NNSCOPE_UNROLL
#endif

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {

typedef long long i64;

__host__ __device__ __forceinline__ i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

__host__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

__device__ __forceinline__ float4 zero4() { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }

// 16-byte loads and stores (global or shared). The host emulator checks alignment.
__device__ __forceinline__ float4 ld4(const float* p) {
#ifdef NNSCOPE_CUDA_EMU
  ::nnscope::cuda_emu::check_aligned16(p);
#endif
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void st4(float* p, float4 v) {
#ifdef NNSCOPE_CUDA_EMU
  ::nnscope::cuda_emu::check_aligned16(p);
#endif
  *reinterpret_cast<float4*>(p) = v;
}

// Four consecutive floats p[0..3] of which the first `avail` exist (avail may be ≤ 0
// or > 4). One 16-byte load when `vec` (p is then 16-byte aligned) and all four exist.
__device__ __forceinline__ float4 load4(const float* __restrict__ p, int avail, bool vec) {
  if (vec && avail >= 4) return ld4(p);
  float4 v = zero4();
  if (avail > 0) v.x = p[0];
  if (avail > 1) v.y = p[1];
  if (avail > 2) v.z = p[2];
  if (avail > 3) v.w = p[3];
  return v;
}

// ============================================================================ SGEMM
//
// Block tile BM×BN of C, K-tiles of kBK = 8, (BM/8)·(BN/8) threads each computing an
// 8×8 micro-tile: rows {4ty..4ty+3} ∪ {BM/2+4ty..+3}, columns {4tx..4tx+3} ∪
// {BN/2+4tx..+3}, so every shared-memory read of the inner loop is one float4 (A
// reads are warp broadcasts, B reads are conflict-free). Shared memory holds the
// K-tile of op(A) k-major (As[k][m]) and of op(B) (Bs[k][n]), each row padded by 4
// floats (keeps float4 alignment, and makes the transposing scalar stores of a
// row-major A or a transposed B conflict-free). Two shared buffers and a register
// prefetch: the next K-tile is loaded from global memory into registers before the
// current one is consumed, then stored into the other buffer; one barrier per K-tile.
//
// Global loads are float4 where the layout allows (16-byte aligned base, leading
// dimension a multiple of 4, all four elements inside the matrix), else scalar with
// bounds checks; out-of-range elements load as 0. Layouts (row-major storage):
//   op(A)[i][p] = TA ? a[p·lda + i] : a[i·lda + p]
//   op(B)[p][j] = TB ? b[j·ldb + p] : b[p·ldb + j]
// Each C element is acc = fma(a_p, b_p, acc) for p = 0..k-1 in order, then
// alpha·acc (+ beta·C via fma when beta ≠ 0): identical for every tile size.

constexpr int kBK = 8;

struct GemmParams {
  int m, n, k;
  float alpha, beta;
  const float* a;
  i64 lda;
  const float* b;
  i64 ldb;
  float* c;
  i64 ldc;
  int vec_a, vec_b, vec_c;  // 16-byte aligned base and leading dimension % 4 == 0
};

// Kernel parameters from the blas.h arguments (pointers as given; m is set per launch).
inline GemmParams gemm_params(const linalg::GemmArgs& g) {
  GemmParams p{};
  p.m = 0;
  p.n = (int)g.n;
  p.k = (int)g.k;
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.a = g.a;
  p.lda = (i64)g.lda;
  p.b = g.b;
  p.ldb = (i64)g.ldb;
  p.c = g.c;
  p.ldc = (i64)g.ldc;
  return p;
}

template <int BM, int BN>
struct alignas(16) GemmSmem {
  float a[2][kBK][BM + 4];
  float b[2][kBK][BN + 4];
};

template <int BM, int BN>
struct GemmShape {
  static constexpr int kThreads = (BM / 8) * (BN / 8);
  static constexpr int kTX = BN / 8;                         // threads along n
  static constexpr int kLoadsA = BM * kBK / 4 / kThreads;    // float4 loads per thread
  static constexpr int kLoadsB = BN * kBK / 4 / kThreads;
  static_assert(BM % 32 == 0 && BN % 32 == 0, "tile sizes");
  static_assert(kLoadsA >= 1 && kLoadsA * kThreads * 4 == BM * kBK, "A tile split");
  static_assert(kLoadsB >= 1 && kLoadsB * kThreads * 4 == BN * kBK, "B tile split");
};

// Global → registers: the K-tile starting at k0 of op(A) rows row0..row0+BM-1.
template <int BM, int BN, bool TA>
__device__ __forceinline__ void gemm_load_a(const GemmParams& p, int row0, int k0, int tid,
                                            float4 (&r)[GemmShape<BM, BN>::kLoadsA]) {
  NNSCOPE_UNROLL
  for (int l = 0; l < GemmShape<BM, BN>::kLoadsA; ++l) {
    const int f = tid + l * GemmShape<BM, BN>::kThreads;
    if (!TA) {  // A is m×k, contiguous along k: float4 = 4 k-values of one row
      const int rr = f >> 1, kc = (f & 1) * 4;
      const int gr = row0 + rr, gk = k0 + kc;
      r[l] = (gr < p.m && gk < p.k) ? load4(p.a + (i64)gr * p.lda + gk, p.k - gk, p.vec_a) : zero4();
    } else {  // A is k×m, contiguous along m: float4 = 4 rows of op(A) at one k
      const int kr = f / (BM / 4), mc = (f % (BM / 4)) * 4;
      const int gk = k0 + kr, gm = row0 + mc;
      r[l] = (gk < p.k && gm < p.m) ? load4(p.a + (i64)gk * p.lda + gm, p.m - gm, p.vec_a) : zero4();
    }
  }
}

// Registers → shared buffer `buf` (As[k][m]).
template <int BM, int BN, bool TA>
__device__ __forceinline__ void gemm_store_a(GemmSmem<BM, BN>& s, int buf, int tid,
                                             const float4 (&r)[GemmShape<BM, BN>::kLoadsA]) {
  NNSCOPE_UNROLL
  for (int l = 0; l < GemmShape<BM, BN>::kLoadsA; ++l) {
    const int f = tid + l * GemmShape<BM, BN>::kThreads;
    if (!TA) {
      const int rr = f >> 1, kc = (f & 1) * 4;
      s.a[buf][kc + 0][rr] = r[l].x;
      s.a[buf][kc + 1][rr] = r[l].y;
      s.a[buf][kc + 2][rr] = r[l].z;
      s.a[buf][kc + 3][rr] = r[l].w;
    } else {
      const int kr = f / (BM / 4), mc = (f % (BM / 4)) * 4;
      st4(&s.a[buf][kr][mc], r[l]);
    }
  }
}

// Global → registers: the K-tile starting at k0 of op(B) columns col0..col0+BN-1.
template <int BM, int BN, bool TB>
__device__ __forceinline__ void gemm_load_b(const GemmParams& p, int col0, int k0, int tid,
                                            float4 (&r)[GemmShape<BM, BN>::kLoadsB]) {
  NNSCOPE_UNROLL
  for (int l = 0; l < GemmShape<BM, BN>::kLoadsB; ++l) {
    const int f = tid + l * GemmShape<BM, BN>::kThreads;
    if (!TB) {  // B is k×n, contiguous along n
      const int kr = f / (BN / 4), nc = (f % (BN / 4)) * 4;
      const int gk = k0 + kr, gn = col0 + nc;
      r[l] = (gk < p.k && gn < p.n) ? load4(p.b + (i64)gk * p.ldb + gn, p.n - gn, p.vec_b) : zero4();
    } else {  // B is n×k, contiguous along k
      const int rr = f >> 1, kc = (f & 1) * 4;
      const int gn = col0 + rr, gk = k0 + kc;
      r[l] = (gn < p.n && gk < p.k) ? load4(p.b + (i64)gn * p.ldb + gk, p.k - gk, p.vec_b) : zero4();
    }
  }
}

// Registers → shared buffer `buf` (Bs[k][n]).
template <int BM, int BN, bool TB>
__device__ __forceinline__ void gemm_store_b(GemmSmem<BM, BN>& s, int buf, int tid,
                                             const float4 (&r)[GemmShape<BM, BN>::kLoadsB]) {
  NNSCOPE_UNROLL
  for (int l = 0; l < GemmShape<BM, BN>::kLoadsB; ++l) {
    const int f = tid + l * GemmShape<BM, BN>::kThreads;
    if (!TB) {
      const int kr = f / (BN / 4), nc = (f % (BN / 4)) * 4;
      st4(&s.b[buf][kr][nc], r[l]);
    } else {
      const int rr = f >> 1, kc = (f & 1) * 4;
      s.b[buf][kc + 0][rr] = r[l].x;
      s.b[buf][kc + 1][rr] = r[l].y;
      s.b[buf][kc + 2][rr] = r[l].z;
      s.b[buf][kc + 3][rr] = r[l].w;
    }
  }
}

// C[i][j..j+3] of one micro-tile row-half: alpha·v (+ beta·C).
__device__ __forceinline__ void gemm_store_c4(const GemmParams& p, float* crow, int gc, float v0, float v1,
                                              float v2, float v3) {
  float v[4] = {p.alpha * v0, p.alpha * v1, p.alpha * v2, p.alpha * v3};
  if (p.vec_c && gc + 3 < p.n) {
    float* q = crow + gc;
    if (p.beta != 0.0f) {
      const float4 o = ld4(q);
      v[0] = fmaf(p.beta, o.x, v[0]);
      v[1] = fmaf(p.beta, o.y, v[1]);
      v[2] = fmaf(p.beta, o.z, v[2]);
      v[3] = fmaf(p.beta, o.w, v[3]);
    }
    st4(q, make_float4(v[0], v[1], v[2], v[3]));
  } else {
    NNSCOPE_UNROLL
    for (int j = 0; j < 4; ++j) {
      if (gc + j < p.n) {
        float* q = crow + gc + j;
        *q = p.beta != 0.0f ? fmaf(p.beta, *q, v[j]) : v[j];
      }
    }
  }
}

// grid = (ceil(n/BN), ceil(m/BM)), block = GemmShape<BM,BN>::kThreads. Requires k ≥ 1.
// The 128×128 variant is capped at 128 registers so two blocks (16 warps) fit per SM.
template <int BM, int BN, bool TA, bool TB>
__global__ void __launch_bounds__((BM / 8) * (BN / 8), BM * BN >= 128 * 128 ? 2 : 1) sgemm_tiled(GemmParams p) {
  typedef GemmShape<BM, BN> S;
  __shared__ GemmSmem<BM, BN> sm;

  const int tid = threadIdx.x;
  const int tx = tid % S::kTX, ty = tid / S::kTX;
  const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;

  float acc[8][8];
  NNSCOPE_UNROLL
  for (int i = 0; i < 8; ++i) {
    NNSCOPE_UNROLL
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  }

  float4 ra[S::kLoadsA], rb[S::kLoadsB];
  gemm_load_a<BM, BN, TA>(p, row0, 0, tid, ra);
  gemm_load_b<BM, BN, TB>(p, col0, 0, tid, rb);
  gemm_store_a<BM, BN, TA>(sm, 0, tid, ra);
  gemm_store_b<BM, BN, TB>(sm, 0, tid, rb);
  __syncthreads();

  const int ntiles = (p.k + kBK - 1) / kBK;
  for (int t = 0; t < ntiles; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < ntiles;
    if (more) {  // issue the next tile's global loads before computing on this one
      gemm_load_a<BM, BN, TA>(p, row0, (t + 1) * kBK, tid, ra);
      gemm_load_b<BM, BN, TB>(p, col0, (t + 1) * kBK, tid, rb);
    }
    NNSCOPE_UNROLL
    for (int kk = 0; kk < kBK; ++kk) {
      const float4 a0 = ld4(&sm.a[cur][kk][ty * 4]);
      const float4 a1 = ld4(&sm.a[cur][kk][BM / 2 + ty * 4]);
      const float4 b0 = ld4(&sm.b[cur][kk][tx * 4]);
      const float4 b1 = ld4(&sm.b[cur][kk][BN / 2 + tx * 4]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      NNSCOPE_UNROLL
      for (int i = 0; i < 8; ++i) {
        NNSCOPE_UNROLL
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    }
    if (more) {  // the other buffer was last read in iteration t-1, before its barrier
      gemm_store_a<BM, BN, TA>(sm, cur ^ 1, tid, ra);
      gemm_store_b<BM, BN, TB>(sm, cur ^ 1, tid, rb);
    }
    __syncthreads();
  }

  NNSCOPE_UNROLL
  for (int i = 0; i < 8; ++i) {
    const int gr = row0 + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + (i - 4));
    if (gr < p.m) {
      float* crow = p.c + (i64)gr * p.ldc;
      gemm_store_c4(p, crow, col0 + tx * 4, acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      gemm_store_c4(p, crow, col0 + BN / 2 + tx * 4, acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
    }
  }
}

// C = beta·C over an m×n view (beta == 0 writes zeros without reading C).
__global__ void __launch_bounds__(256) scale_matrix(i64 m, int n, float beta, float* c, i64 ldc) {
  const i64 total = m * (i64)n;
  const i64 stride = (i64)gridDim.x * blockDim.x;
  for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const i64 r = idx / n, col = idx - r * n;
    float* q = c + r * ldc + col;
    *q = beta != 0.0f ? beta * *q : 0.0f;
  }
}

inline int scale_blocks(i64 total) {
  const i64 b = ceil_div(total, 256);
  return (int)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}

// The tile the planner picks: 128×128 (256 threads) when that gives at least one
// block per multiprocessor, else 64×64 (64 threads) for more parallelism on small
// or skinny products. The choice changes speed only, never the result.
inline int gemm_tile(i64 m, i64 n, int sms) {
  return ceil_div(m, 128) * ceil_div(n, 128) >= (i64)sms ? 128 : 64;
}

template <int BM, int BN>
inline void sgemm_launch_tiled(GemmParams p, bool ta, bool tb, void* stream) {
  const dim3 grid((unsigned)ceil_div(p.n, BN), (unsigned)ceil_div(p.m, BM));
  const dim3 block(GemmShape<BM, BN>::kThreads);
  if (!ta && !tb) launch_kernel(&sgemm_tiled<BM, BN, false, false>, grid, block, stream, p);
  else if (ta && !tb) launch_kernel(&sgemm_tiled<BM, BN, true, false>, grid, block, stream, p);
  else if (!ta && tb) launch_kernel(&sgemm_tiled<BM, BN, false, true>, grid, block, stream, p);
  else launch_kernel(&sgemm_tiled<BM, BN, true, true>, grid, block, stream, p);
}

// Enqueues C = alpha·op(A)·op(B) + beta·C for m rows (p.m is ignored; n, k fit int).
// tile: 0 = let gemm_tile decide, else 64 or 128; max_rows: rows per launch, 0 = as
// many as the grid allows (tests lower both).
inline void sgemm_launch(i64 m, GemmParams p, bool ta, bool tb, int sms, int tile, void* stream,
                         i64 max_rows = 0) {
  if (m <= 0 || p.n <= 0) return;
  if (p.k == 0 || p.alpha == 0.0f) {
    launch_kernel(&scale_matrix, dim3(scale_blocks(m * (i64)p.n)), dim3(256), stream, m, p.n, p.beta, p.c, p.ldc);
    return;
  }
  if (tile == 0) tile = gemm_tile(m, p.n, sms);
  const i64 bm = tile == 128 ? 128 : 64;
  if (max_rows <= 0) max_rows = 32768 * bm;  // grid.y stays well inside 65535
  const float* a = p.a;
  float* c = p.c;
  for (i64 r0 = 0; r0 < m; r0 += max_rows) {
    const i64 rows = m - r0 < max_rows ? m - r0 : max_rows;
    GemmParams q = p;
    q.m = (int)rows;
    q.a = ta ? a + r0 : a + r0 * p.lda;
    q.c = c + r0 * p.ldc;
    q.vec_a = aligned16(q.a) && p.lda % 4 == 0;
    q.vec_b = aligned16(q.b) && p.ldb % 4 == 0;
    q.vec_c = aligned16(q.c) && p.ldc % 4 == 0;
    if (tile == 128) sgemm_launch_tiled<128, 128>(q, ta, tb, stream);
    else sgemm_launch_tiled<64, 64>(q, ta, tb, stream);
  }
}

// ============================================================================ reductions

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  NNSCOPE_UNROLL
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of 256 threads in a fixed order; the result is valid in thread 0.
// Every thread of the block must call it (it contains a barrier).
__device__ __forceinline__ double block_sum_256(double v) {
  __shared__ double warps[8];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  double r = 0.0;
  if (threadIdx.x < 32) {
    r = threadIdx.x < 8 ? warps[threadIdx.x] : 0.0;
    r = warp_sum(r);
  }
  return r;
}

// ============================================================================ SGEMV

struct GemvParams {
  int m, n;
  float alpha, beta;
  const float* a;
  i64 lda;
  const float* x;
  float* y;
  int vec;              // N: A rows and x are float4-loadable
  int rows_per_split;   // T: rows of A per blockIdx.y
  float* partial;       // T with gridDim.y > 1: gridDim.y × n partial sums
};

// y = alpha·A·x + beta·y, one warp per row (8 rows per 256-thread block), lanes
// striding the row with float4 loads; per-lane FMA chains, then a warp tree.
__global__ void __launch_bounds__(256) sgemv_n(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (row >= p.m) return;  // whole warps only: no barrier below
  const float* __restrict__ arow = p.a + (i64)row * p.lda;
  const float* __restrict__ x = p.x;
  float s = 0.0f;
  int j0 = 0;
  if (p.vec) {
    const int n4 = p.n >> 2;
    for (int q = lane; q < n4; q += 32) {
      const float4 av = ld4(arow + 4 * q);
      const float4 xv = ld4(x + 4 * q);
      s = fmaf(av.x, xv.x, s);
      s = fmaf(av.y, xv.y, s);
      s = fmaf(av.z, xv.z, s);
      s = fmaf(av.w, xv.w, s);
    }
    j0 = n4 * 4;
  }
  for (int j = j0 + lane; j < p.n; j += 32) s = fmaf(arow[j], x[j], s);
  s = warp_sum(s);
  if (lane == 0) {
    float r = p.alpha * s;
    if (p.beta != 0.0f) r = fmaf(p.beta, p.y[row], r);
    p.y[row] = r;
  }
}

// y = alpha·Aᵀ·x + beta·y. Block = 32 columns × 8 row lanes (coalesced 128-byte row
// segments); blockIdx.y takes rows_per_split rows. Each thread sums its rows in
// order, the 8 row lanes are added in order; with one split the block writes y,
// otherwise partial sums that sgemv_t_finish adds in split order.
__global__ void __launch_bounds__(256) sgemv_t(GemvParams p) {
  __shared__ float red[8][33];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int col = blockIdx.x * 32 + tx;
  const i64 r0 = (i64)blockIdx.y * p.rows_per_split;
  const i64 r1 = r0 + p.rows_per_split < (i64)p.m ? r0 + p.rows_per_split : (i64)p.m;
  float s = 0.0f;
  if (col < p.n) {
    for (i64 r = r0 + ty; r < r1; r += 8) s = fmaf(p.a[r * p.lda + col], p.x[r], s);
  }
  red[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && col < p.n) {
    float t = red[0][tx];
    NNSCOPE_UNROLL
    for (int w = 1; w < 8; ++w) t += red[w][tx];
    if (gridDim.y == 1) {
      float r = p.alpha * t;
      if (p.beta != 0.0f) r = fmaf(p.beta, p.y[col], r);
      p.y[col] = r;
    } else {
      p.partial[(i64)blockIdx.y * p.n + col] = t;
    }
  }
}

__global__ void __launch_bounds__(256) sgemv_t_finish(GemvParams p, int splits) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= p.n) return;
  float t = 0.0f;
  for (int s = 0; s < splits; ++s) t += p.partial[(i64)s * p.n + col];
  float r = p.alpha * t;
  if (p.beta != 0.0f) r = fmaf(p.beta, p.y[col], r);
  p.y[col] = r;
}

inline GemvParams gemv_params(const linalg::GemvArgs& g) {
  GemvParams p{};
  p.m = (int)g.m;
  p.n = (int)g.n;
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.a = g.a;
  p.lda = (i64)g.lda;
  p.x = g.x;
  p.y = g.y;
  return p;
}

// Row splits of the transposed GEMV: about 1024 rows each, at most 64, so that
// tall matrices with few columns still occupy the GPU. Depends on m only.
inline int gemv_t_splits(i64 m, int* rows_per_split) {
  i64 splits = ceil_div(m, 1024);
  if (splits < 1) splits = 1;
  if (splits > 64) splits = 64;
  i64 rps = ceil_div(m, splits);
  if (rps < 1) rps = 1;
  splits = ceil_div(m, rps);
  if (splits < 1) splits = 1;
  *rows_per_split = (int)rps;
  return (int)splits;
}

inline i64 gemv_workspace_floats(bool trans, i64 m, i64 n) {
  if (!trans) return 0;
  int rps = 0;
  const int splits = gemv_t_splits(m, &rps);
  return splits > 1 ? splits * n : 0;
}

// Enqueues the GEMV (p.rows_per_split, p.partial, p.vec are filled in here).
inline void sgemv_launch(GemvParams p, bool trans, float* workspace, void* stream) {
  const int ylen = trans ? p.n : p.m;
  if (ylen <= 0) return;
  if (!trans) {
    p.vec = aligned16(p.a) && p.lda % 4 == 0 && aligned16(p.x);
    launch_kernel(&sgemv_n, dim3((unsigned)ceil_div(p.m, 8)), dim3(256), stream, p);
    return;
  }
  const int splits = gemv_t_splits(p.m, &p.rows_per_split);
  p.partial = splits > 1 ? workspace : nullptr;
  launch_kernel(&sgemv_t, dim3((unsigned)ceil_div(p.n, 32), (unsigned)splits), dim3(256), stream, p);
  if (splits > 1)
    launch_kernel(&sgemv_t_finish, dim3((unsigned)ceil_div(p.n, 256)), dim3(256), stream, p, splits);
}

// ============================================================================ dot, nrm2

constexpr int kReduceMaxBlocks = 1024;

// Blocks of the first pass: one per 4096 elements, at most kReduceMaxBlocks.
inline int reduce_blocks(i64 n) {
  const i64 b = ceil_div(n, 4096);
  return (int)(b < 1 ? 1 : b > kReduceMaxBlocks ? kReduceMaxBlocks : b);
}

// partial[blockIdx.x] = Σ x·y (SQUARE: Σ x²) over a grid-stride slice, in double.
// A float product is exact in double, so the FMA-or-not question does not arise.
template <bool SQUARE>
__global__ void __launch_bounds__(256) reduce_partial(i64 n, const float* __restrict__ x,
                                                      const float* __restrict__ y, int vec, double* partial) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  double s = 0.0;
  i64 i0 = 0;
  if (vec) {
    const i64 n4 = n / 4;
    for (i64 q = t; q < n4; q += stride) {
      const float4 a = ld4(x + 4 * q);
      const float4 b = SQUARE ? a : ld4(y + 4 * q);
      s += (double)a.x * (double)b.x;
      s += (double)a.y * (double)b.y;
      s += (double)a.z * (double)b.z;
      s += (double)a.w * (double)b.w;
    }
    i0 = n4 * 4;
  }
  for (i64 i = i0 + t; i < n; i += stride) {
    const double a = x[i];
    s += a * (SQUARE ? a : (double)y[i]);
  }
  s = block_sum_256(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// *out = Σ partial[0..count) (SQRT: its square root), one block of 256 threads.
template <bool SQRT>
__global__ void __launch_bounds__(256) reduce_final(int count, const double* partial, double* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += 256) s += partial[i];
  s = block_sum_256(s);
  if (threadIdx.x == 0) *out = SQRT ? sqrt(s) : s;
}

inline void dot_launch(i64 n, const float* x, const float* y, double* out, double* workspace, void* stream) {
  const int blocks = reduce_blocks(n);
  const int vec = aligned16(x) && aligned16(y);
  launch_kernel(&reduce_partial<false>, dim3(blocks), dim3(256), stream, n, x, y, vec, workspace);
  launch_kernel(&reduce_final<false>, dim3(1), dim3(256), stream, blocks, (const double*)workspace, out);
}

inline void nrm2_launch(i64 n, const float* x, double* out, double* workspace, void* stream) {
  const int blocks = reduce_blocks(n);
  const int vec = aligned16(x);
  launch_kernel(&reduce_partial<true>, dim3(blocks), dim3(256), stream, n, x, (const float*)nullptr, vec,
                workspace);
  launch_kernel(&reduce_final<true>, dim3(1), dim3(256), stream, blocks, (const double*)workspace, out);
}

// ============================================================================ saxpy

__global__ void __launch_bounds__(256) saxpy_kernel(i64 n, float alpha, const float* __restrict__ x,
                                                    float* __restrict__ y, int vec) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  i64 i0 = 0;
  if (vec) {
    const i64 n4 = n / 4;
    for (i64 q = t; q < n4; q += stride) {
      const float4 a = ld4(x + 4 * q);
      float4 b = ld4(y + 4 * q);
      b.x = fmaf(alpha, a.x, b.x);
      b.y = fmaf(alpha, a.y, b.y);
      b.z = fmaf(alpha, a.z, b.z);
      b.w = fmaf(alpha, a.w, b.w);
      st4(y + 4 * q, b);
    }
    i0 = n4 * 4;
  }
  for (i64 i = i0 + t; i < n; i += stride) y[i] = fmaf(alpha, x[i], y[i]);
}

inline void saxpy_launch(i64 n, float alpha, const float* x, float* y, void* stream) {
  if (n <= 0) return;
  i64 blocks = ceil_div(ceil_div(n, 4), 256);
  if (blocks > 8192) blocks = 8192;
  const int vec = aligned16(x) && aligned16(y);
  launch_kernel(&saxpy_kernel, dim3((unsigned)blocks), dim3(256), stream, n, alpha, x, y, vec);
}

}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
