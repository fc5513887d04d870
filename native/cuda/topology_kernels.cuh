// nnscope CUDA backend: the topology family's kernels (steepest-descent basins on
// implicit grids, brute-force kNN) and their host drivers, written once over an
// "environment" that supplies the memory.
//
// Included by topology.cu (nvcc; environment: cudaMalloc'd buffers on one stream)
// and, under the host emulator of cuda_emu.h, by native/tests/test_cuda_topology.cpp
// (environment: host memory), so the drivers and kernels run on machines without a
// GPU. The includer provides, before including this file:
//   - NNSCOPE_KNS: the namespace for everything here (nnscope::cuda::NNSCOPE_KNS);
//   - in that namespace, launch_kernel(kernel, grid, block, stream, args...);
//   - CUDA's vocabulary (__global__, __shared__, dim3, threadIdx, blockIdx,
//     blockDim, gridDim, __syncthreads) and fma.
// An environment Env offers: T* alloc<T>(count) (device memory owned by Env),
// upload(dst, src, bytes), download(dst, src, bytes) (the host copy is complete on
// return), void* stream().
//
// Basins (one thread per vertex, kTThreads per block, blocks in vertex order):
//   t_steepest     ptr[v] = the smallest of v and its in-grid neighbours in (value,
//                  index) order (coordinates decoded from v, offsets from a table).
//   t_jump         out[v] = in[in[v]]; per block a flag "some pointer changed"
//                  (shared-memory tree, no atomics); t_any reduces the flags to one
//                  word that the host reads after every round; stop when stable.
//   t_edge_count   per block the number of inter-basin edges over the forward half
//                  of the stencil; t_scan_blocks turns the counts into block offsets
//                  (one thread, sequential: fixed order) and the total.
//   t_edge_write   recounts per thread, scans the block's counts in shared memory and
//                  writes each vertex's edges (a, b, weight vertex) at its offset:
//                  the list is in vertex order, offsets in stencil order — the CPU
//                  order — with no atomics.
// The edge list goes to topology::pairs_from_basin_edges on the host (the CPU's own
// step (d)), so pairs, essential classes and basins equal the CPU's exactly.
//
// kNN (t_knn): one thread per query row, kTThreads rows per block; candidates pass
// through shared memory in tiles of kKnnTileDoubles/dim points; each thread keeps
// its k best (k ≤ kKnnMaxK) insertion-sorted in (dist2, index) order. dist2 is the
// fma chain of knn.h, so lists equal the CPU's bit for bit.
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including topology_kernels.cuh"
#endif

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "base/finite.h"
#include "topology/basins.h"
#include "topology/graph.h"
#include "topology/knn.h"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {

typedef long long ti64;

constexpr int kTThreads = 256;
constexpr int kKnnMaxK = 64;
constexpr int kKnnTileDoubles = 4096;
constexpr int kMaxJumpRounds = 80;

struct TGrid {
  int k;
  int noff;
  ti64 dims[8];
};

__host__ __device__ __forceinline__ bool t_less(double va, ti64 a, double vb, ti64 b) {
  return va < vb || (va == vb && a < b);
}

__device__ __forceinline__ void t_coords(const TGrid& g, ti64 v, ti64* c) {
  for (int a = g.k - 1; a >= 0; --a) {
    c[a] = v % g.dims[a];
    v /= g.dims[a];
  }
}

__device__ __forceinline__ bool t_inside(const TGrid& g, const ti64* c, const int* e) {
  for (int a = 0; a < g.k; ++a) {
    const ti64 x = c[a] + e[a];
    if (x < 0 || x >= g.dims[a]) return false;
  }
  return true;
}

// Sum over the block (every thread calls it; the result is valid in every thread).
__device__ __forceinline__ ti64 t_block_sum(ti64 x) {
  __shared__ ti64 red[kTThreads];
  const int t = threadIdx.x;
  red[t] = x;
  __syncthreads();
  for (int s = kTThreads / 2; s > 0; s >>= 1) {
    if (t < s) red[t] += red[t + s];
    __syncthreads();
  }
  const ti64 r = red[0];
  __syncthreads();
  return r;
}

__global__ void t_steepest(const double* val, TGrid g, const int* off, const ti64* delta, ti64 n, ti64* ptr) {
  const ti64 v = (ti64)blockIdx.x * kTThreads + threadIdx.x;
  if (v >= n) return;
  ti64 c[8];
  t_coords(g, v, c);
  ti64 best = v;
  double bv = val[v];
  for (int o = 0; o < g.noff; ++o) {
    if (!t_inside(g, c, off + o * g.k)) continue;
    const ti64 u = v + delta[o];
    const double uv = val[u];
    if (t_less(uv, u, bv, best)) {
      best = u;
      bv = uv;
    }
  }
  ptr[v] = best;
}

__global__ void t_jump(const ti64* in, ti64* out, ti64 n, int* block_changed) {
  const ti64 v = (ti64)blockIdx.x * kTThreads + threadIdx.x;
  ti64 changed = 0;
  if (v < n) {
    const ti64 p = in[v];
    const ti64 q = in[p];
    out[v] = q;
    changed = q != p;
  }
  const ti64 s = t_block_sum(changed);
  if (threadIdx.x == 0) block_changed[blockIdx.x] = s != 0;
}

__global__ void t_any(const int* flags, ti64 count, int* out) {
  ti64 any = 0;
  for (ti64 i = threadIdx.x; i < count; i += kTThreads) any |= flags[i];
  const ti64 s = t_block_sum(any);
  if (threadIdx.x == 0) out[0] = s != 0;
}

// Inter-basin edges of vertex v over the forward stencil; emit(a, b, w) per edge.
template <typename F>
__device__ __forceinline__ int t_vertex_edges(const double* val, const ti64* basin, const TGrid& g, const int* off,
                                              const ti64* delta, ti64 v, F&& emit) {
  ti64 c[8];
  t_coords(g, v, c);
  const ti64 bv = basin[v];
  int count = 0;
  for (int o = 0; o < g.noff; ++o) {
    if (!t_inside(g, c, off + o * g.k)) continue;
    const ti64 u = v + delta[o];
    const ti64 bu = basin[u];
    if (bu == bv) continue;
    const ti64 w = t_less(val[u], u, val[v], v) ? v : u;
    emit(count, bv, bu, w);
    ++count;
  }
  return count;
}

struct TNoEmit {
  __device__ void operator()(int, ti64, ti64, ti64) const {}
};

__global__ void t_edge_count(const double* val, const ti64* basin, TGrid g, const int* off, const ti64* delta, ti64 n,
                             ti64* block_count) {
  const ti64 v = (ti64)blockIdx.x * kTThreads + threadIdx.x;
  ti64 cnt = 0;
  if (v < n) cnt = t_vertex_edges(val, basin, g, off, delta, v, TNoEmit());
  const ti64 s = t_block_sum(cnt);
  if (threadIdx.x == 0) block_count[blockIdx.x] = s;
}

// offsets[b] = Σ_{b' < b} count[b'], offsets[blocks] = the total.
__global__ void t_scan_blocks(const ti64* count, ti64 blocks, ti64* offsets) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  ti64 s = 0;
  for (ti64 b = 0; b < blocks; ++b) {
    offsets[b] = s;
    s += count[b];
  }
  offsets[blocks] = s;
}

struct TEmit {
  ti64* out;
  __device__ void operator()(int i, ti64 a, ti64 b, ti64 w) const {
    out[3 * i] = a;
    out[3 * i + 1] = b;
    out[3 * i + 2] = w;
  }
};

__global__ void t_edge_write(const double* val, const ti64* basin, TGrid g, const int* off, const ti64* delta, ti64 n,
                             const ti64* block_offset, ti64* edges) {
  __shared__ ti64 pre[kTThreads];
  const ti64 v = (ti64)blockIdx.x * kTThreads + threadIdx.x;
  const int t = threadIdx.x;
  ti64 cnt = 0;
  if (v < n) cnt = t_vertex_edges(val, basin, g, off, delta, v, TNoEmit());
  pre[t] = cnt;
  __syncthreads();
  if (t == 0) {
    ti64 s = 0;
    for (int i = 0; i < kTThreads; ++i) {
      const ti64 x = pre[i];
      pre[i] = s;
      s += x;
    }
  }
  __syncthreads();
  if (v < n && cnt > 0) {
    TEmit e{edges + 3 * (block_offset[blockIdx.x] + pre[t])};
    t_vertex_edges(val, basin, g, off, delta, v, e);
  }
  __syncthreads();
}

__global__ void t_knn(const double* x, ti64 n, int dim, int k, int* out_index, double* out_dist) {
  __shared__ double tile[kKnnTileDoubles];
  const ti64 i = (ti64)blockIdx.x * kTThreads + threadIdx.x;
  const bool active = i < n;
  double bd[kKnnMaxK];
  int bi[kKnnMaxK];
  int cnt = 0;
  const ti64 per = kKnnTileDoubles / dim;
  for (ti64 j0 = 0; j0 < n; j0 += per) {
    const ti64 m = n - j0 < per ? n - j0 : per;
    __syncthreads();
    for (ti64 q = threadIdx.x; q < m * dim; q += kTThreads) tile[q] = x[j0 * dim + q];
    __syncthreads();
    if (!active) continue;
    for (ti64 jj = 0; jj < m; ++jj) {
      const ti64 j = j0 + jj;
      if (j == i) continue;
      double s = 0.0;
      for (int d = 0; d < dim; ++d) {
        const double delta = x[i * dim + d] - tile[jj * dim + d];
        s = fma(delta, delta, s);
      }
      const int jv = (int)j;
      int pos;
      if (cnt < k) {
        pos = cnt++;
      } else if (s < bd[k - 1] || (s == bd[k - 1] && jv < bi[k - 1])) {
        pos = k - 1;
      } else {
        continue;
      }
      while (pos > 0 && (s < bd[pos - 1] || (s == bd[pos - 1] && jv < bi[pos - 1]))) {
        bd[pos] = bd[pos - 1];
        bi[pos] = bi[pos - 1];
        --pos;
      }
      bd[pos] = s;
      bi[pos] = jv;
    }
  }
  if (active)
    for (int q = 0; q < k; ++q) {
      out_index[i * k + q] = bi[q];
      out_dist[i * k + q] = bd[q];
    }
}

// ---------------------------------------------------------------- host drivers
inline unsigned t_blocks(ti64 n) { return (unsigned)((n + kTThreads - 1) / kTThreads); }

// Basins and 0-dim persistence on a grid; the contract of topology::basins_grid.
// stats (optional): [0] pointer-jumping rounds run, [1] inter-basin edges extracted.
template <class Env>
topology::BasinResult run_basins_grid(Env& env, const double* values, const topology::GridShape& grid,
                                      topology::Neighborhood nb, const OpContext& ctx, ti64* stats = nullptr) {
  const std::size_t nv = topology::checked_grid_vertices(grid);
  NNSCOPE_CHECK(values != nullptr, ErrorCode::InvalidArgument, "topology: values is null");
  require_finite(values, nv, "topology values");
  ctx.check();
  const ti64 n = (ti64)nv;
  NNSCOPE_CHECK((n + kTThreads - 1) / kTThreads < 0x7fffffffLL, ErrorCode::TooLarge,
                "topology: the grid has too many vertices for one launch");
  const int k = (int)grid.dims.size();
  TGrid g{};
  g.k = k;
  for (int a = 0; a < k; ++a) g.dims[a] = (ti64)grid.dims[a];
  const std::vector<std::vector<int>> offs = topology::neighbor_offsets(grid.dims.size(), nb);
  const std::vector<std::int64_t> delta = topology::grid_linear_offsets(grid, offs);
  std::vector<int> all_off, fwd_off;
  std::vector<ti64> all_delta, fwd_delta;
  for (std::size_t o = 0; o < offs.size(); ++o) {
    all_off.insert(all_off.end(), offs[o].begin(), offs[o].end());
    all_delta.push_back((ti64)delta[o]);
    if (delta[o] > 0) {
      fwd_off.insert(fwd_off.end(), offs[o].begin(), offs[o].end());
      fwd_delta.push_back((ti64)delta[o]);
    }
  }
  const unsigned blocks = t_blocks(n);
  double* d_val = env.template alloc<double>(nv);
  ti64* d_a = env.template alloc<ti64>(nv);
  ti64* d_b = env.template alloc<ti64>(nv);
  int* d_off = env.template alloc<int>(all_off.size());
  ti64* d_delta = env.template alloc<ti64>(all_delta.size());
  int* d_foff = env.template alloc<int>(fwd_off.size() + 1);
  ti64* d_fdelta = env.template alloc<ti64>(fwd_delta.size() + 1);
  int* d_flags = env.template alloc<int>(blocks);
  int* d_any = env.template alloc<int>(1);
  ti64* d_count = env.template alloc<ti64>(blocks);
  ti64* d_bofs = env.template alloc<ti64>(std::size_t(blocks) + 1);
  env.upload(d_val, values, nv * sizeof(double));
  env.upload(d_off, all_off.data(), all_off.size() * sizeof(int));
  env.upload(d_delta, all_delta.data(), all_delta.size() * sizeof(ti64));
  if (!fwd_off.empty()) {
    env.upload(d_foff, fwd_off.data(), fwd_off.size() * sizeof(int));
    env.upload(d_fdelta, fwd_delta.data(), fwd_delta.size() * sizeof(ti64));
  }

  g.noff = (int)all_delta.size();
  launch_kernel(t_steepest, dim3(blocks), dim3(kTThreads), env.stream(), (const double*)d_val, g, (const int*)d_off,
                (const ti64*)d_delta, n, d_a);
  ctx.report(1, 4);
  // pointer jumping until no pointer changes
  ti64 rounds = 0;
  for (;;) {
    ctx.check();
    NNSCOPE_CHECK(rounds < kMaxJumpRounds, ErrorCode::Internal, "topology: pointer jumping did not converge");
    launch_kernel(t_jump, dim3(blocks), dim3(kTThreads), env.stream(), (const ti64*)d_a, d_b, n, d_flags);
    launch_kernel(t_any, dim3(1), dim3(kTThreads), env.stream(), (const int*)d_flags, (ti64)blocks, d_any);
    ++rounds;
    std::swap(d_a, d_b);
    int any = 0;
    env.download(&any, d_any, sizeof(int));
    if (!any) break;
  }
  ctx.report(2, 4);
  // inter-basin edges, compacted in vertex order
  g.noff = (int)fwd_delta.size();
  launch_kernel(t_edge_count, dim3(blocks), dim3(kTThreads), env.stream(), (const double*)d_val, (const ti64*)d_a, g,
                (const int*)d_foff, (const ti64*)d_fdelta, n, d_count);
  launch_kernel(t_scan_blocks, dim3(1), dim3(1), env.stream(), (const ti64*)d_count, (ti64)blocks, d_bofs);
  ti64 total = 0;
  env.download(&total, d_bofs + blocks, sizeof(ti64));
  ti64* d_edges = env.template alloc<ti64>(std::size_t(3 * total) + 3);
  launch_kernel(t_edge_write, dim3(blocks), dim3(kTThreads), env.stream(), (const double*)d_val, (const ti64*)d_a, g,
                (const int*)d_foff, (const ti64*)d_fdelta, n, (const ti64*)d_bofs, d_edges);
  ctx.check();
  topology::BasinResult res;
  res.basin.resize(nv);
  std::vector<ti64> flat(std::size_t(3 * total));
  env.download(res.basin.data(), d_a, nv * sizeof(ti64));
  if (total > 0) env.download(flat.data(), d_edges, flat.size() * sizeof(ti64));
  ctx.report(3, 4);
  std::vector<topology::BasinEdge> edges(static_cast<std::size_t>(total));
  for (ti64 e = 0; e < total; ++e) edges[e] = {flat[3 * e], flat[3 * e + 1], flat[3 * e + 2]};
  if (stats) {
    stats[0] = rounds;
    stats[1] = total;
  }
  topology::pairs_from_basin_edges(values, nv, res.basin, std::move(edges), res);
  ctx.report(4, 4);
  return res;
}

// Brute-force kNN lists; the contract of topology::knn_lists, with k ≤ kKnnMaxK and
// dim ≤ kKnnTileDoubles (else InvalidArgument).
template <class Env, typename T>
topology::KnnLists run_knn(Env& env, const T* points, std::size_t n, std::size_t dim, std::size_t k,
                           const OpContext& ctx) {
  NNSCOPE_CHECK(points != nullptr, ErrorCode::InvalidArgument, "knn: points is null");
  NNSCOPE_CHECK(n >= 2 && dim >= 1 && k >= 1 && k < n, ErrorCode::InvalidArgument,
                "knn: need n >= 2, dim >= 1 and 1 <= k <= n - 1");
  NNSCOPE_CHECK(n <= 0x7fffffffULL, ErrorCode::TooLarge, "knn: at most 2^31 - 1 points");
  NNSCOPE_CHECK(k <= std::size_t(kKnnMaxK), ErrorCode::InvalidArgument,
                "knn: the CUDA kNN supports k <= " + std::to_string(kKnnMaxK));
  NNSCOPE_CHECK(dim <= std::size_t(kKnnTileDoubles), ErrorCode::InvalidArgument,
                "knn: the CUDA kNN supports dim <= " + std::to_string(kKnnTileDoubles));
  require_finite(points, n * dim, "knn points");
  ctx.check();
  std::vector<double> x(n * dim);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(points[i]);
  double* d_x = env.template alloc<double>(x.size());
  int* d_idx = env.template alloc<int>(n * k);
  double* d_dist = env.template alloc<double>(n * k);
  env.upload(d_x, x.data(), x.size() * sizeof(double));
  launch_kernel(t_knn, dim3(t_blocks((ti64)n)), dim3(kTThreads), env.stream(), (const double*)d_x, (ti64)n, (int)dim,
                (int)k, d_idx, d_dist);
  topology::KnnLists r;
  r.n = n;
  r.k = k;
  r.index.resize(n * k);
  r.dist2.resize(n * k);
  env.download(r.index.data(), d_idx, r.index.size() * sizeof(int));
  env.download(r.dist2.data(), d_dist, r.dist2.size() * sizeof(double));
  ctx.check();
  ctx.report(1, 1);
  return r;
}

}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
