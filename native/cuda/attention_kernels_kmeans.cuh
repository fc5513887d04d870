// nnscope CUDA backend: K-means (Lloyd) for Squeezed Attention's offline
// clustering, on the device, with the semantics of attention/kmeans.h (CPU) from
// given initial centres (the caller runs k-means++ / random init, e.g. on the CPU).
// Included after attention_kernels.cuh under the same contract (see there).
//
// Per iteration t (host loop; no host synchronisation — a device state word
// `converged` makes every later kernel a no-op once the labels stop changing):
//   assign  : tiles of 64 points × 64 centres, v_j = −2·(y·c_j) + ‖c_j‖² (float32
//             dots in ascending d), per-point argmin (ties → lowest j) fused across
//             the centre tiles — the n×k matrix never exists; dist2 = max(0, ‖y‖²+v);
//             history[t] = Σ dist2 (float64, fixed block order);
//   members : a stable sort of the points by label without atomics — tiles of 512
//             (label, point) keys sorted by a bitonic network in shared memory, per
//             tile run counts into a [tiles, k] matrix, a per-cluster scan over the
//             tiles, an exclusive scan over clusters, a scatter → each cluster's
//             members in ascending point order, and its size;
//   reseed  : every empty cluster (ascending j) takes the point farthest from its
//             centre (ties → lowest index) among clusters with ≥ 2 members (one
//             block; block argmax reductions); the members are re-sorted when it
//             moved a point;
//   stop    : labels equal the previous iteration's (t > 0) → converged;
//   update  : c_j = mean of its members' y in point order (float64 sums), the
//             CPU's exact arithmetic, so the means of the same labels match bit for bit.
// Result: centroids = raw-row means (cosine) or the y means, labels, sizes, history,
// iterations run, reseeds, inertia Σ‖y_i − μ_label‖² (float64).
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including attention_kernels_kmeans.cuh"
#endif

#include "cuda/attention_kernels_squeezed.cuh"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {
namespace attn {

enum KmState : int { kKmConverged = 0, kKmIterations = 1, kKmReseeded = 2, kKmReseededNow = 3 };

// Gate: 0 run unless converged; 1 also require "reseeded this iteration"; 2 always.
__device__ __forceinline__ bool km_skip(const int* state, int gate) {
  if (gate == 2) return false;
  if (state[kKmConverged]) return true;
  return gate == 1 && state[kKmReseededNow] == 0;
}

// ‖x‖² accumulated in float64 over four interleaved lanes (kmeans.cpp's sqnorm).
__device__ __forceinline__ double km_sqnorm(const float* x, int d) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += double(x[i]) * double(x[i]);
    s1 += double(x[i + 1]) * double(x[i + 1]);
    s2 += double(x[i + 2]) * double(x[i + 2]);
    s3 += double(x[i + 3]) * double(x[i + 3]);
  }
  for (; i < d; ++i) s0 += double(x[i]) * double(x[i]);
  return (s0 + s1) + (s2 + s3);
}

constexpr int kKmThreads = 256;

__global__ void __launch_bounds__(kKmThreads) km_init_state_kernel(int* state) {
  if (threadIdx.x < 4) state[threadIdx.x] = 0;
}

// y = x / ‖x‖ (cosine; a zero or non-finite norm gives a zero row) or y = x (y may
// alias x then), and yn = float(‖y‖²). One thread per row.
__global__ void __launch_bounds__(kKmThreads) km_prepare_kernel(const float* x, i64 n, int d, int cosine, float* y,
                                                                 float* yn) {
  const i64 i = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  if (i >= n) return;
  const float* xi = x + i * d;
  if (cosine) {
    float* yi = y + i * d;
    const double nrm = sqrt(km_sqnorm(xi, d));
    if (nrm > 0.0 && nrm <= 1.79769313486231570815e308) {
      const double inv = 1.0 / nrm;
      for (int t = 0; t < d; ++t) yi[t] = float(double(xi[t]) * inv);
    } else {
      for (int t = 0; t < d; ++t) yi[t] = 0.0f;
    }
    yn[i] = float(km_sqnorm(yi, d));
  } else {
    yn[i] = float(km_sqnorm(xi, d));
  }
}

__global__ void __launch_bounds__(kKmThreads) km_norms_kernel(const float* c, int k, int d, float* cn,
                                                               const int* state, int gate) {
  if (km_skip(state, gate)) return;
  const int j = blockIdx.x * kKmThreads + threadIdx.x;
  if (j < k) cn[j] = float(km_sqnorm(c + (i64)j * d, d));
}

__global__ void __launch_bounds__(kKmThreads) km_copy_float_kernel(const float* src, float* dst, i64 n,
                                                                    const int* state, int gate) {
  if (km_skip(state, gate)) return;
  const i64 e = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  if (e < n) dst[e] = src[e];
}
__global__ void __launch_bounds__(kKmThreads) km_copy_int_kernel(const int* src, int* dst, i64 n, const int* state,
                                                                  int gate) {
  if (km_skip(state, gate)) return;
  const i64 e = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  if (e < n) dst[e] = src[e];
}
__global__ void __launch_bounds__(kKmThreads) km_fill_int_kernel(int* dst, i64 n, int v, const int* state, int gate) {
  if (km_skip(state, gate)) return;
  const i64 e = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  if (e < n) dst[e] = v;
}

// ---------------------------------------------------------------- assignment
constexpr int kKmBM = 64, kKmBN = 64, kKmBK = 16;

__global__ void __launch_bounds__(kKmThreads) km_assign_kernel(const float* y, const float* yn, i64 n, int d,
                                                                const float* c, const float* cn, int k, int* labels,
                                                                float* dist2, double* part, const int* state) {
  if (state && state[kKmConverged]) return;
  __shared__ float4 As4[kKmBK * (kKmBM + 4) / 4];
  __shared__ float4 Bs4[kKmBK * (kKmBN + 4) / 4];
  __shared__ float red_v[kKmBM * 17];
  __shared__ int red_j[kKmBM * 17];
  __shared__ float dsum[kKmBM];
  float* As = reinterpret_cast<float*>(As4);
  float* Bs = reinterpret_cast<float*>(Bs4);
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const i64 i0 = (i64)blockIdx.x * kKmBM;
  float best_v[4];
  int best_j[4];
  NNSCOPE_UNROLL
  for (int i = 0; i < 4; ++i) {
    best_v[i] = INFINITY;
    best_j[i] = 0;
  }
  for (int c0 = 0; c0 < k; c0 += kKmBN) {
    float acc[4][4];
    NNSCOPE_UNROLL
    for (int i = 0; i < 4; ++i)
      NNSCOPE_UNROLL
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int d0 = 0; d0 < d; d0 += kKmBK) {
      for (int e = t; e < kKmBM * kKmBK; e += kKmThreads) {
        const int pnt = e / kKmBK, kk = e % kKmBK;
        const i64 gi = i0 + pnt;
        const int gc = d0 + kk;
        As[kk * (kKmBM + 4) + pnt] = (gi < n && gc < d) ? y[gi * d + gc] : 0.0f;
        const int cj = c0 + pnt;
        Bs[kk * (kKmBN + 4) + pnt] = (cj < k && gc < d) ? c[(i64)cj * d + gc] : 0.0f;
      }
      __syncthreads();
      const int kend = mini(kKmBK, d - d0);
      for (int kk = 0; kk < kend; ++kk) {
        const float4 a = lds4(As + kk * (kKmBM + 4) + 4 * ty);
        const float4 b = lds4(Bs + kk * (kKmBN + 4) + 4 * tx);
        const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
        NNSCOPE_UNROLL
        for (int i = 0; i < 4; ++i)
          NNSCOPE_UNROLL
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      __syncthreads();
    }
    NNSCOPE_UNROLL
    for (int j = 0; j < 4; ++j) {
      const int col = c0 + 4 * tx + j;
      if (col >= k) continue;
      const float cnj = cn[col];
      NNSCOPE_UNROLL
      for (int i = 0; i < 4; ++i) {
        const float v = -2.0f * acc[i][j] + cnj;  // −2·dot is exact: one rounding, as the CPU's g + cn
        if (v < best_v[i]) {
          best_v[i] = v;
          best_j[i] = col;
        }
      }
    }
  }
  NNSCOPE_UNROLL
  for (int i = 0; i < 4; ++i) {
    red_v[(4 * ty + i) * 17 + tx] = best_v[i];
    red_j[(4 * ty + i) * 17 + tx] = best_j[i];
  }
  __syncthreads();
  if (t < kKmBM) {
    float bv = red_v[t * 17];
    int bj = red_j[t * 17];
    for (int u = 1; u < 16; ++u) {
      const float v = red_v[t * 17 + u];
      const int j = red_j[t * 17 + u];
      if (v < bv || (v == bv && j < bj)) {
        bv = v;
        bj = j;
      }
    }
    const i64 gi = i0 + t;
    float dv = 0.0f;
    if (gi < n) {
      dv = yn[gi] + bv;
      if (!(dv > 0.0f)) dv = 0.0f;
      labels[gi] = bj;
      dist2[gi] = dv;
    }
    dsum[t] = dv;
  }
  __syncthreads();
  if (t == 0) {
    double s = 0.0;
    for (int u = 0; u < kKmBM; ++u) s += double(dsum[u]);
    part[blockIdx.x] = s;
  }
}

// history[it] = Σ part (block order); iterations = it + 1.
__global__ void km_history_kernel(const double* part, int nb, double* history, int it, int* state) {
  if (threadIdx.x != 0 || state[kKmConverged]) return;
  double s = 0.0;
  for (int b = 0; b < nb; ++b) s += part[b];
  history[it] = s;
  state[kKmIterations] = it + 1;
}

// ---------------------------------------------------------------- members (stable sort by label)
constexpr int kSortTile = 512, kSortThreads = 256;

__global__ void __launch_bounds__(kSortThreads) km_tile_sort_kernel(const int* labels, i64 n, int k,
                                                                     unsigned long long* keys_out, int* rank_out,
                                                                     int* cnt, const int* state, int gate) {
  if (km_skip(state, gate)) return;
  __shared__ unsigned long long keys[kSortTile];
  __shared__ int start[kSortTile];
  const int t = threadIdx.x;
  const i64 base = (i64)blockIdx.x * kSortTile;
  for (int e = t; e < kSortTile; e += kSortThreads) {
    const i64 i = base + e;
    keys[e] = i < n ? (((unsigned long long)(unsigned)labels[i]) << 32) | (unsigned long long)i : ~0ULL;
  }
  for (int size = 2; size <= kSortTile; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      __syncthreads();
      const int lo = 2 * stride * (t / stride) + (t % stride), hi = lo + stride;
      const bool up = (lo & size) == 0;
      const unsigned long long a = keys[lo], b = keys[hi];
      if ((a > b) == up) {
        keys[lo] = b;
        keys[hi] = a;
      }
    }
  }
  __syncthreads();
  for (int e = t; e < kSortTile; e += kSortThreads) {
    const unsigned long long key = keys[e];
    const bool valid = key != ~0ULL;
    const bool first = valid && (e == 0 || (keys[e - 1] >> 32) != (key >> 32));
    start[e] = first ? e : -1;
  }
  for (int off = 1; off < kSortTile; off <<= 1) {  // inclusive max-scan of the run starts
    __syncthreads();
    int v[kSortTile / kSortThreads];
    for (int u = 0; u < kSortTile / kSortThreads; ++u) {
      const int e = t + u * kSortThreads;
      const int o = e >= off ? start[e - off] : -1;
      v[u] = o > start[e] ? o : start[e];
    }
    __syncthreads();
    for (int u = 0; u < kSortTile / kSortThreads; ++u) start[t + u * kSortThreads] = v[u];
  }
  __syncthreads();
  for (int e = t; e < kSortTile; e += kSortThreads) {
    const unsigned long long key = keys[e];
    keys_out[base + e] = key;
    if (key == ~0ULL) continue;
    const int lab = int(key >> 32);
    const int rank = e - start[e];
    rank_out[base + e] = rank;
    const bool last = e == kSortTile - 1 || (keys[e + 1] >> 32) != (key >> 32);
    if (last && lab >= 0 && lab < k) cnt[(i64)blockIdx.x * k + lab] = rank + 1;
  }
}

// Per cluster: the tiles' counts → exclusive prefixes in place; sizes = totals.
__global__ void __launch_bounds__(kKmThreads) km_cluster_scan_kernel(int* cnt, int tiles, int k, int* sizes,
                                                                      const int* state, int gate) {
  if (km_skip(state, gate)) return;
  const int j = blockIdx.x * kKmThreads + threadIdx.x;
  if (j >= k) return;
  int run = 0;
  for (int tile = 0; tile < tiles; ++tile) {
    int* c = cnt + (i64)tile * k + j;
    const int v = *c;
    *c = run;
    run += v;
  }
  sizes[j] = run;
}

// start[j] = Σ_{j' < j} sizes[j'], start[k] = n (one block).
__global__ void __launch_bounds__(kKmThreads) km_start_kernel(const int* sizes, int k, int* start, const int* state,
                                                               int gate) {
  if (km_skip(state, gate)) return;
  __shared__ long long buf[kKmThreads];
  const int t = threadIdx.x;
  const int per = int(cdiv(k, kKmThreads));
  const int j0 = mini(k, t * per), j1 = mini(k, j0 + per);
  long long s = 0;
  for (int j = j0; j < j1; ++j) s += sizes[j];
  long long total;
  long long run = block_exclusive_scan<kKmThreads>(s, buf, &total);
  for (int j = j0; j < j1; ++j) {
    start[j] = int(run);
    run += sizes[j];
  }
  if (t == 0) start[k] = int(total);
}

__global__ void __launch_bounds__(kKmThreads) km_scatter_kernel(const unsigned long long* keys, const int* rank,
                                                                 const int* cnt, const int* start, i64 slots, int k,
                                                                 int* member, const int* state, int gate) {
  if (km_skip(state, gate)) return;
  const i64 e = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  if (e >= slots) return;
  const unsigned long long key = keys[e];
  if (key == ~0ULL) return;
  const int lab = int(key >> 32);
  if (lab < 0 || lab >= k) return;
  const i64 tile = e / kSortTile;
  member[start[lab] + cnt[tile * k + lab] + rank[e]] = int(key & 0xFFFFFFFFULL);
}

// ---------------------------------------------------------------- reseed (one block)
__global__ void __launch_bounds__(kKmThreads) km_reseed_kernel(i64 n, int k, int* labels, float* dist2, int* sizes,
                                                                int* empties, int* state) {
  if (state[kKmConverged]) return;
  __shared__ long long buf[kKmThreads];
  __shared__ float rv[kKmThreads];
  __shared__ long long ri[kKmThreads];
  const int t = threadIdx.x;
  // The empty clusters, ascending (reseeding never empties a cluster).
  const int per = int(cdiv(k, kKmThreads));
  const int j0 = mini(k, t * per), j1 = mini(k, j0 + per);
  long long ne = 0;
  for (int j = j0; j < j1; ++j) ne += sizes[j] == 0;
  long long E;
  long long pos = block_exclusive_scan<kKmThreads>(ne, buf, &E);
  for (int j = j0; j < j1; ++j)
    if (sizes[j] == 0) empties[pos++] = j;
  __syncthreads();
  int done = 0;
  for (long long e = 0; e < E; ++e) {
    const int j = empties[e];
    float bv = -1.0f;
    long long bi = -1;
    for (i64 i = t; i < n; i += kKmThreads) {
      if (sizes[labels[i]] < 2) continue;
      const float v = dist2[i];
      if (bi < 0 || v > bv) {  // strided ascending i: strict > keeps the lowest index
        bv = v;
        bi = i;
      }
    }
    rv[t] = bv;
    ri[t] = bi;
    __syncthreads();
    for (int off = kKmThreads / 2; off > 0; off >>= 1) {
      if (t < off) {
        const float v = rv[t + off];
        const long long i = ri[t + off];
        if (i >= 0 && (ri[t] < 0 || v > rv[t] || (v == rv[t] && i < ri[t]))) {
          rv[t] = v;
          ri[t] = i;
        }
      }
      __syncthreads();
    }
    const long long p = ri[0];
    if (p < 0) break;  // n < k: nothing left to move (uniform)
    if (t == 0) {
      const int old = labels[p];
      sizes[old] -= 1;
      labels[p] = j;
      sizes[j] = 1;
      dist2[p] = 0.0f;
    }
    ++done;
    __syncthreads();
  }
  if (t == 0) {
    state[kKmReseeded] += done;
    state[kKmReseededNow] = done > 0 ? 1 : 0;
  }
}

// ---------------------------------------------------------------- stop test
__global__ void __launch_bounds__(kKmThreads) km_diff_kernel(const int* a, const int* b, i64 n, int* part,
                                                              const int* state) {
  if (state[kKmConverged]) return;
  __shared__ long long buf[kKmThreads];
  const i64 base = (i64)blockIdx.x * kKmThreads * 4;
  long long dcount = 0;
  for (int u = 0; u < 4; ++u) {
    const i64 i = base + threadIdx.x + (i64)u * kKmThreads;
    if (i < n) dcount += a[i] != b[i];
  }
  long long total;
  block_exclusive_scan<kKmThreads>(dcount, buf, &total);
  if (threadIdx.x == 0) part[blockIdx.x] = total > 0 ? 1 : 0;
}

__global__ void km_converge_kernel(const int* part, int nb, int it, int* state) {
  if (threadIdx.x != 0 || state[kKmConverged] || it == 0) return;
  int any = 0;
  for (int b = 0; b < nb; ++b) any |= part[b];
  if (!any) state[kKmConverged] = 1;
}

// ---------------------------------------------------------------- means, inertia
// out[j] = mean of src rows of cluster j's members (float64 sums in point order);
// empty clusters keep out[j]. One block per cluster.
__global__ void __launch_bounds__(kThreads) km_means_kernel(const float* src, int d, const int* start,
                                                            const int* member, float* out, const int* state,
                                                            int gate) {
  if (km_skip(state, gate)) return;
  const int j = blockIdx.x;
  const int b = start[j], e = start[j + 1];
  if (b == e) return;
  const double inv = 1.0 / double(e - b);
  for (int q = threadIdx.x; q < d; q += kThreads) {
    double acc = 0.0;
    for (int m = b; m < e; ++m) acc += double(src[(i64)member[m] * d + q]);
    out[(i64)j * d + q] = float(acc * inv);
  }
}

__global__ void __launch_bounds__(kKmThreads) km_inertia_kernel(const float* y, const float* mu, const int* labels,
                                                                 i64 n, int d, double* part) {
  __shared__ double v[kKmThreads];
  const i64 i = (i64)blockIdx.x * kKmThreads + threadIdx.x;
  double e = 0.0;
  if (i < n) {
    const float* yi = y + i * d;
    const float* m = mu + (i64)labels[i] * d;
    for (int q = 0; q < d; ++q) {
      const double df = double(yi[q]) - double(m[q]);
      e += df * df;
    }
  }
  v[threadIdx.x] = e;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int u = 0; u < kKmThreads; ++u) s += v[u];
    part[blockIdx.x] = s;
  }
}

__global__ void km_sum_kernel(const double* part, int nb, double* out) {
  if (threadIdx.x != 0) return;
  double s = 0.0;
  for (int b = 0; b < nb; ++b) s += part[b];
  *out = s;
}

// ---------------------------------------------------------------- driver
struct KmeansArgs {
  const float* x = nullptr;  // [n, d] (device)
  i64 n = 0;
  int d = 0, k = 0;
  int cosine = 1;
  int iterations = 20;
  const float* init = nullptr;  // [k, d] initial centres in the clustered space
  float* centroids = nullptr;   // out [k, d]
  int* labels = nullptr;        // out [n]
  int* sizes = nullptr;         // out [k]
  double* history = nullptr;    // out [max(iterations, 1)]
  double* inertia = nullptr;    // out [1]
  int* state = nullptr;         // out [4]: converged, iterations run, reseeded, scratch
};

struct KmeansPlan {
  i64 n = 0;
  int d = 0, k = 0, tiles = 0, ablocks = 0, dblocks = 0, iblocks = 0;
  bool cosine = true;
  std::size_t off[16] = {};
  std::size_t bytes = 0;
};

enum KmBuf { kbY, kbYn, kbDist, kbPrev, kbC, kbCn, kbMu, kbApart, kbKeys, kbRank, kbCnt, kbStart, kbMember,
             kbEmpty, kbDpart, kbIpart, kbCount };

inline KmeansPlan plan_kmeans(i64 n, int d, int k, bool cosine) {
  KmeansPlan P;
  P.n = n;
  P.d = d;
  P.k = k;
  P.cosine = cosine;
  P.tiles = int(cdiv(n, kSortTile));
  P.ablocks = int(cdiv(n, kKmBM));
  P.dblocks = int(cdiv(n, kKmThreads * 4));
  P.iblocks = int(cdiv(n, kKmThreads));
  std::size_t sz[kbCount];
  sz[kbY] = cosine ? std::size_t(n) * d * 4 : 0;
  sz[kbYn] = std::size_t(n) * 4;
  sz[kbDist] = std::size_t(n) * 4;
  sz[kbPrev] = std::size_t(n) * 4;
  sz[kbC] = std::size_t(k) * d * 4;
  sz[kbCn] = std::size_t(k) * 4;
  sz[kbMu] = std::size_t(k) * d * 4;
  sz[kbApart] = std::size_t(P.ablocks) * 8;
  sz[kbKeys] = std::size_t(P.tiles) * kSortTile * 8;
  sz[kbRank] = std::size_t(P.tiles) * kSortTile * 4;
  sz[kbCnt] = std::size_t(P.tiles) * k * 4;
  sz[kbStart] = std::size_t(k + 1) * 4;
  sz[kbMember] = std::size_t(n) * 4;
  sz[kbEmpty] = std::size_t(k) * 4;
  sz[kbDpart] = std::size_t(P.dblocks) * 4;
  sz[kbIpart] = std::size_t(P.iblocks) * 8;
  std::size_t o = 0;
  for (int b = 0; b < kbCount; ++b) {
    P.off[b] = o;
    o += align256(sz[b]);
  }
  P.bytes = o;
  return P;
}

inline unsigned km_blocks(i64 n) { return unsigned(maxl(1, cdiv(n, kKmThreads))); }

// Members of each cluster and sizes from labels (gate: see km_skip).
inline void km_members(const KmeansPlan& P, char* ws, const int* labels, int* sizes, int* state, int gate,
                       void* stream) {
  unsigned long long* keys = reinterpret_cast<unsigned long long*>(ws + P.off[kbKeys]);
  int* rank = reinterpret_cast<int*>(ws + P.off[kbRank]);
  int* cnt = reinterpret_cast<int*>(ws + P.off[kbCnt]);
  int* start = reinterpret_cast<int*>(ws + P.off[kbStart]);
  int* member = reinterpret_cast<int*>(ws + P.off[kbMember]);
  const i64 ncnt = (i64)P.tiles * P.k;
  launch_kernel(km_fill_int_kernel, dim3(km_blocks(ncnt), 1, 1), dim3(kKmThreads, 1, 1), stream, cnt, ncnt, 0,
                (const int*)state, gate);
  launch_kernel(km_tile_sort_kernel, dim3(unsigned(P.tiles), 1, 1), dim3(kSortThreads, 1, 1), stream, labels, P.n,
                P.k, keys, rank, cnt, (const int*)state, gate);
  launch_kernel(km_cluster_scan_kernel, dim3(km_blocks(P.k), 1, 1), dim3(kKmThreads, 1, 1), stream, cnt, P.tiles,
                P.k, sizes, (const int*)state, gate);
  launch_kernel(km_start_kernel, dim3(1, 1, 1), dim3(kKmThreads, 1, 1), stream, (const int*)sizes, P.k, start,
                (const int*)state, gate);
  const i64 slots = (i64)P.tiles * kSortTile;
  launch_kernel(km_scatter_kernel, dim3(km_blocks(slots), 1, 1), dim3(kKmThreads, 1, 1), stream,
                (const unsigned long long*)keys, (const int*)rank, (const int*)cnt, (const int*)start, slots, P.k,
                member, (const int*)state, gate);
}

// The whole K-means on the device (see the header comment). `workspace` holds
// plan.bytes bytes.
inline void launch_kmeans(const KmeansPlan& P, const KmeansArgs& a, void* workspace, void* stream) {
  char* ws = static_cast<char*>(workspace);
  float* y = P.cosine ? reinterpret_cast<float*>(ws + P.off[kbY]) : const_cast<float*>(a.x);
  float* yn = reinterpret_cast<float*>(ws + P.off[kbYn]);
  float* dist2 = reinterpret_cast<float*>(ws + P.off[kbDist]);
  int* prev = reinterpret_cast<int*>(ws + P.off[kbPrev]);
  float* c = reinterpret_cast<float*>(ws + P.off[kbC]);
  float* cn = reinterpret_cast<float*>(ws + P.off[kbCn]);
  float* mu = reinterpret_cast<float*>(ws + P.off[kbMu]);
  double* apart = reinterpret_cast<double*>(ws + P.off[kbApart]);
  int* start = reinterpret_cast<int*>(ws + P.off[kbStart]);
  int* member = reinterpret_cast<int*>(ws + P.off[kbMember]);
  int* empties = reinterpret_cast<int*>(ws + P.off[kbEmpty]);
  int* dpart = reinterpret_cast<int*>(ws + P.off[kbDpart]);
  double* ipart = reinterpret_cast<double*>(ws + P.off[kbIpart]);
  int* state = a.state;
  const dim3 blk(kKmThreads, 1, 1);
  const i64 kd = (i64)P.k * P.d;

  launch_kernel(km_init_state_kernel, dim3(1, 1, 1), dim3(32, 1, 1), stream, state);
  launch_kernel(km_prepare_kernel, dim3(km_blocks(P.n), 1, 1), blk, stream, a.x, P.n, P.d, P.cosine ? 1 : 0, y, yn);
  launch_kernel(km_copy_float_kernel, dim3(km_blocks(kd), 1, 1), blk, stream, a.init, c, kd, (const int*)state, 2);
  const int iters = a.iterations > 0 ? a.iterations : 1;
  for (int it = 0; it < iters; ++it) {
    launch_kernel(km_norms_kernel, dim3(km_blocks(P.k), 1, 1), blk, stream, (const float*)c, P.k, P.d, cn,
                  (const int*)state, 0);
    launch_kernel(km_assign_kernel, dim3(unsigned(P.ablocks), 1, 1), blk, stream, (const float*)y, (const float*)yn,
                  P.n, P.d, (const float*)c, (const float*)cn, P.k, a.labels, dist2, apart, (const int*)state);
    launch_kernel(km_history_kernel, dim3(1, 1, 1), dim3(32, 1, 1), stream, (const double*)apart, P.ablocks,
                  a.history, it, state);
    km_members(P, ws, a.labels, a.sizes, state, 0, stream);
    launch_kernel(km_reseed_kernel, dim3(1, 1, 1), blk, stream, P.n, P.k, a.labels, dist2, a.sizes, empties, state);
    km_members(P, ws, a.labels, a.sizes, state, 1, stream);
    launch_kernel(km_diff_kernel, dim3(unsigned(P.dblocks), 1, 1), blk, stream, (const int*)a.labels,
                  (const int*)prev, P.n, dpart, (const int*)state);
    launch_kernel(km_converge_kernel, dim3(1, 1, 1), dim3(32, 1, 1), stream, (const int*)dpart, P.dblocks, it, state);
    if (a.iterations == 0) break;
    launch_kernel(km_means_kernel, dim3(unsigned(P.k), 1, 1), dim3(kThreads, 1, 1), stream, (const float*)y, P.d,
                  (const int*)start, (const int*)member, c, (const int*)state, 0);
    launch_kernel(km_copy_int_kernel, dim3(km_blocks(P.n), 1, 1), blk, stream, (const int*)a.labels, prev, P.n,
                  (const int*)state, 0);
  }
  // Result: y means of the final labels (mu; starts as c), raw means, inertia.
  launch_kernel(km_copy_float_kernel, dim3(km_blocks(kd), 1, 1), blk, stream, (const float*)c, mu, kd,
                (const int*)state, 2);
  launch_kernel(km_means_kernel, dim3(unsigned(P.k), 1, 1), dim3(kThreads, 1, 1), stream, (const float*)y, P.d,
                (const int*)start, (const int*)member, mu, (const int*)state, 2);
  if (P.cosine) {
    launch_kernel(km_copy_float_kernel, dim3(km_blocks(kd), 1, 1), blk, stream, (const float*)c, a.centroids, kd,
                  (const int*)state, 2);
    launch_kernel(km_means_kernel, dim3(unsigned(P.k), 1, 1), dim3(kThreads, 1, 1), stream, a.x, P.d,
                  (const int*)start, (const int*)member, a.centroids, (const int*)state, 2);
  } else {
    launch_kernel(km_copy_float_kernel, dim3(km_blocks(kd), 1, 1), blk, stream, (const float*)mu, a.centroids, kd,
                  (const int*)state, 2);
  }
  launch_kernel(km_inertia_kernel, dim3(unsigned(P.iblocks), 1, 1), blk, stream, (const float*)y, (const float*)mu,
                (const int*)a.labels, P.n, P.d, ipart);
  launch_kernel(km_sum_kernel, dim3(1, 1, 1), dim3(32, 1, 1), stream, (const double*)ipart, P.iblocks, a.inertia);
}

// The assignment step alone (kmeans_assign of kmeans.h): labels, dist2 and the sum
// Σ dist2 into *total. y [n, d] in the clustered space, centres [k, d].
struct AssignPlan {
  int ablocks = 0;
  std::size_t off_yn = 0, off_cn = 0, off_part = 0, bytes = 0;
};
inline AssignPlan plan_assign(i64 n, int k) {
  AssignPlan P;
  P.ablocks = int(maxl(1, cdiv(n, kKmBM)));
  P.off_yn = 0;
  P.off_cn = align256(std::size_t(n) * 4);
  P.off_part = P.off_cn + align256(std::size_t(k) * 4);
  P.bytes = P.off_part + align256(std::size_t(P.ablocks) * 8);
  return P;
}
inline void launch_assign(const AssignPlan& P, const float* y, i64 n, int d, const float* centres, int k,
                          int* labels, float* dist2, double* total, void* workspace, void* stream) {
  char* ws = static_cast<char*>(workspace);
  float* yn = reinterpret_cast<float*>(ws + P.off_yn);
  float* cn = reinterpret_cast<float*>(ws + P.off_cn);
  double* part = reinterpret_cast<double*>(ws + P.off_part);
  const dim3 blk(kKmThreads, 1, 1);
  launch_kernel(km_prepare_kernel, dim3(km_blocks(n), 1, 1), blk, stream, y, n, d, 0, (float*)nullptr, yn);
  launch_kernel(km_norms_kernel, dim3(km_blocks(k), 1, 1), blk, stream, centres, k, d, cn, (const int*)nullptr, 2);
  launch_kernel(km_assign_kernel, dim3(unsigned(P.ablocks), 1, 1), blk, stream, y, (const float*)yn, n, d, centres,
                (const float*)cn, k, labels, dist2, part, (const int*)nullptr);
  launch_kernel(km_sum_kernel, dim3(1, 1, 1), dim3(32, 1, 1), stream, (const double*)part, P.ablocks, total);
}

}  // namespace attn
}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
