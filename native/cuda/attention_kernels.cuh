// nnscope CUDA backend: the attention kernels (dense and sparse flash attention in
// SIMT form, split-K chunk tables and their fixed-order merge, the LSE merge of two
// partials) and their launch planning. The tensor-core (mma.sync) variant is in
// attention_kernels_mma.cuh; K-means, centroid scoring and selection in
// attention_kernels_squeezed.cuh.
//
// Included by attention.cu (nvcc) and, under the host emulator of cuda_emu.h, by
// native/tests/test_cuda_attention.cpp, so the index arithmetic, tiling, masking,
// chunk tables and planning run on machines without a GPU. The includer provides,
// before including this file:
//   - NNSCOPE_KNS: the namespace for everything here (nnscope::cuda::NNSCOPE_KNS::attn);
//   - in nnscope::cuda::NNSCOPE_KNS: launch_kernel(kernel, grid, block, stream, args...);
//   - CUDA's vocabulary as far as cuda_emu.h has it (__global__, __shared__, float4,
//     dim3, threadIdx, blockIdx, blockDim, gridDim, __syncthreads, __shfl_down_sync)
//     and math.h (exp2f, log2f, fmaf, exp, log, log2).
// Only that subset is used here: static shared memory only, no warp shuffles other
// than __shfl_down_sync, no atomics.
//
// Semantics are those of attention/attention.h (CPU): queries [Hq, Nq, d] float32,
// K/V [Hkv, N, d] (head_stride rows between heads) in float32 / fp16 / bf16, Hq =
// G·Hkv (query head h reads KV head h / G), out [Hq, Nq, d] normalised, lse [Hq, Nq]
// natural-log (−Inf and a zero row for a query that saw no key). Everything is
// accumulated in float32; logits are taken in base 2 (queries pre-scaled by
// scale·log2 e) as on the CPU.
//
// Work decomposition. A "group" is a set of query rows that read the same key list:
// dense and shared-selection sparse attention group the G query heads of a KV head
// (rows r = token r / G, head r % G: token-major, as on the CPU), per-query-head
// sparse attention has one head per group. A group's key list (dense: 0..N−1;
// sparse: its CSR slice) is cut into chunks of `chunk` keys; a block handles one
// (chunk, query tile) pair. For sparse attention the chunk table (first chunk of
// every group, a prefix sum of ⌈len_g / chunk⌉) is built on the device from the CSR
// offsets, so no host synchronisation is needed; the grid is sized for the worst
// case (a host bound on the total selection) and surplus blocks exit at once. A
// group with one chunk writes its final rows directly; with more, every chunk writes
// a normalised partial (output and base-2 lse) and a merge kernel combines them in
// chunk order: lse* = max_c lse_c, w_c = 2^(lse_c − lse*), out = Σ_c w_c·out_c / Σ w_c.
// No atomics anywhere; every sum has a fixed order depending only on the sizes, so
// repeated calls give the same bits.
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including attention_kernels.cuh"
#endif

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "attention/kv.h"

#ifndef NNSCOPE_UNROLL
#if defined(__CUDACC__)
#define NNSCOPE_UNROLL _Pragma("unroll")
#else
#define NNSCOPE_UNROLL
#endif
#endif

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {
namespace attn {

typedef long long i64;

constexpr int kThreads = 128;  // threads of every SIMT attention block
constexpr int kBN = 32;        // keys per SIMT tile
constexpr float kLn2f = 0.693147180559945309417f;
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kLog2e = 1.4426950408889634074;

enum StorageCode : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

inline int storage_code(attention::Storage s) {
  return s == attention::Storage::F32 ? kF32 : s == attention::Storage::F16 ? kF16 : kBF16;
}
__host__ __device__ __forceinline__ int storage_size(int st) { return st == kF32 ? 4 : 2; }

__host__ __device__ __forceinline__ i64 cdiv(i64 a, i64 b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ int mini(int a, int b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ i64 minl(i64 a, i64 b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ i64 maxl(i64 a, i64 b) { return a > b ? a : b; }

__device__ __forceinline__ float neg_inf() { return -INFINITY; }

// ---------------------------------------------------------------- loads
__device__ __forceinline__ void check_align(const void* p, unsigned bytes) {
#ifdef NNSCOPE_CUDA_EMU
  if (reinterpret_cast<unsigned long long>(p) % bytes != 0) {
    std::fprintf(stderr, "cuda_emu (attention): misaligned %u-byte access at %p\n", bytes, p);
    std::abort();
  }
#else
  (void)p;
  (void)bytes;
#endif
}

__device__ __forceinline__ float4 f4zero() { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
__device__ __forceinline__ float4 lds4(const float* p) {
  check_align(p, 16);
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void sts4(float* p, float4 v) {
  check_align(p, 16);
  *reinterpret_cast<float4*>(p) = v;
}

__device__ __forceinline__ float bits_to_float(unsigned u) {
#ifdef NNSCOPE_CUDA_EMU
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#else
  return __uint_as_float(u);
#endif
}
__device__ __forceinline__ float f16_to_f32(unsigned short h) {
#ifdef NNSCOPE_CUDA_EMU
  return ::nnscope::attention::half_to_float(h);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#endif
}
__device__ __forceinline__ float bf16_to_f32(unsigned short b) { return bits_to_float(unsigned(b) << 16); }
__device__ __forceinline__ float u16_to_f32(unsigned short h, int st) {
  return st == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

struct alignas(8) U32x2 {
  unsigned x, y;
};

// Elements base[e .. e+n) (n ≤ 4; the rest 0) of a tensor of storage `st` as float.
// `vec`: n == 4 and the address is aligned for one 16-byte (float) or 8-byte
// (16-bit) access.
__device__ __forceinline__ float4 load_elems(const void* base, i64 e, int st, int n, bool vec) {
  if (st == kF32) {
    const float* p = static_cast<const float*>(base) + e;
    if (vec && n == 4) return lds4(p);
    float4 v = f4zero();
    if (n > 0) v.x = p[0];
    if (n > 1) v.y = p[1];
    if (n > 2) v.z = p[2];
    if (n > 3) v.w = p[3];
    return v;
  }
  const unsigned short* p = static_cast<const unsigned short*>(base) + e;
  unsigned short h0 = 0, h1 = 0, h2 = 0, h3 = 0;
  if (vec && n == 4) {
    check_align(p, 8);
    const U32x2 u = *reinterpret_cast<const U32x2*>(p);
    h0 = (unsigned short)(u.x & 0xffffu);
    h1 = (unsigned short)(u.x >> 16);
    h2 = (unsigned short)(u.y & 0xffffu);
    h3 = (unsigned short)(u.y >> 16);
  } else {
    if (n > 0) h0 = p[0];
    if (n > 1) h1 = p[1];
    if (n > 2) h2 = p[2];
    if (n > 3) h3 = p[3];
  }
  float4 v = f4zero();
  if (n > 0) v.x = u16_to_f32(h0, st);
  if (n > 1) v.y = u16_to_f32(h1, st);
  if (n > 2) v.z = u16_to_f32(h2, st);
  if (n > 3) v.w = u16_to_f32(h3, st);
  return v;
}

// Whether rows of d elements at `base` allow the vector path of load_elems.
inline bool rows_vectorisable(const void* base, int st, i64 d) {
  const unsigned long long a = reinterpret_cast<unsigned long long>(base);
  if (d % 4 != 0) return false;
  return st == kF32 ? a % 16 == 0 : a % 8 == 0;
}

// ============================================================================ flash attention
//
// Parameters shared by the SIMT and the MMA kernels.
struct FlashParams {
  const float* q;  // [Hq, Nq, d]
  const void* k;
  const void* v;
  int kst, vst;
  i64 kh, vh;  // elements between KV heads (head_stride·d)
  int d, Nq, G;
  int gh;      // query heads per group (G for dense / shared, 1 per query head)
  int groups;
  int R;       // rows per group = gh·Nq
  float qs;    // scale·log2(e)
  // keys
  i64 N;                     // dense: keys per head
  const int* idx;            // sparse: CSR indices (null: dense)
  const std::size_t* offs;   // sparse: CSR offsets [groups + 1]
  int causal;
  i64 qoff;
  // chunks
  i64 chunk;        // keys per chunk
  int cpg;          // dense: chunks per group
  const int* cbeg;  // sparse: first chunk of each group [groups + 1] (device)
  // outputs
  float* out;
  float* lse;   // may be null
  float* pout;  // partial outputs [chunk id][R][d]
  float* plse;  // partial base-2 lse [chunk id][R]
  int vec_k, vec_v;
  int tile0;    // first query tile of this launch
};

// The block's group g, chunk index within the group and the group's chunk count,
// from the chunk id (blockIdx.x). Returns false for a surplus block.
__device__ __forceinline__ bool chunk_of(const FlashParams& p, i64 cid, int* g, i64* c_local, i64* nch) {
  if (p.cbeg) {
    const int total = p.cbeg[p.groups];
    if (cid >= total) return false;
    int lo = 0, hi = p.groups;  // largest g with cbeg[g] <= cid
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (p.cbeg[mid] <= cid) lo = mid;
      else hi = mid;
    }
    *g = lo;
    *c_local = cid - p.cbeg[lo];
    *nch = p.cbeg[lo + 1] - p.cbeg[lo];
    return true;
  }
  *g = int(cid / p.cpg);
  *c_local = cid % p.cpg;
  *nch = p.cpg;
  return true;
}

// SIMT flash kernel: 128 threads, BM query rows, key tiles of 32, d padded to D
// (a multiple of DC; K/V tiles are staged DC columns at a time). Q (pre-scaled)
// and a K or V tile live in shared memory as float; S = Q·Kᵀ: lane = key, rows
// warp + 4s; online softmax per row by one thread per row (fixed order); O += P·V:
// thread owns rows rg + RG·s and float4 column groups c4 + TC·u of each chunk.
template <int D, int BM, int DC>
__global__ void __launch_bounds__(kThreads) flash_simt(FlashParams p) {
  static_assert(D % DC == 0 && DC % 32 == 0 && BM % 4 == 0, "flash_simt tile shape");
  constexpr int QS = D + 4;    // row stride of Qs (floats)
  constexpr int KS = DC + 4;   // row stride of the K/V tile
  constexpr int PS = kBN + 1;  // row stride of Ps
  constexpr int NCH = D / DC;
  constexpr int TC = (DC / 4 < kThreads) ? DC / 4 : kThreads;  // threads across float4 columns
  constexpr int RG = kThreads / TC;                            // row groups
  constexpr int OM = BM / RG;                                  // rows per thread (O phase)
  constexpr int CG = DC / 4 / TC;                              // float4 columns per thread per chunk
  constexpr int SR = BM / 4;                                   // rows per thread (S phase)
  static_assert(BM % RG == 0 && OM >= 1 && CG >= 1, "flash_simt O mapping");
  static_assert((BM * QS + kBN * KS + BM * PS + 4 * BM) * 4 + kBN * 4 <= 48 * 1024, "flash_simt shared memory");

  __shared__ float4 Qs4[BM * QS / 4];
  __shared__ float4 KV4[kBN * KS / 4];
  __shared__ float Ps[BM * PS];
  __shared__ float sm_m[BM], sm_a[BM], sm_l[BM];
  __shared__ int keyidx[kBN];
  float* Qs = reinterpret_cast<float*>(Qs4);
  float* KV = reinterpret_cast<float*>(KV4);

  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  int g;
  i64 c_local, nch;
  if (!chunk_of(p, blockIdx.x, &g, &c_local, &nch)) return;
  const int tile = p.tile0 + int(blockIdx.y);
  const int r0 = tile * BM;
  if (r0 >= p.R) return;
  const int nrows = mini(BM, p.R - r0);
  const int d = p.d;
  const int qh0 = g * p.gh, kvh = qh0 / p.G;

  // Key range of this chunk (positions in the group's list).
  i64 lbase = 0, klen;
  if (p.idx) {
    lbase = (i64)p.offs[g];
    klen = minl((i64)p.offs[g + 1] - lbase, p.N);
  } else {
    klen = p.N;
  }
  const i64 k0 = c_local * p.chunk;
  i64 k1 = minl(klen, k0 + p.chunk);
  if (p.causal && !p.idx) {  // no key beyond the last row's horizon
    const i64 tok_last = (r0 + nrows - 1) / p.gh;
    k1 = minl(k1, p.qoff + tok_last + 1);
  }

  // Q tile, pre-scaled, zero padded (rows ≥ nrows, columns ≥ d).
  for (int e = t; e < BM * D; e += kThreads) {
    const int i = e / D, c = e % D;
    float x = 0.0f;
    if (i < nrows && c < d) {
      const int r = r0 + i;
      const i64 head = qh0 + r % p.gh, tok = r / p.gh;
      x = p.q[(head * p.Nq + tok) * d + c] * p.qs;
    }
    Qs[i * QS + c] = x;
  }
  if (t < BM) {
    sm_m[t] = neg_inf();
    sm_l[t] = 0.0f;
  }
  float m_run = neg_inf(), l_run = 0.0f;  // row t's statistics (t < BM)

  float o[NCH][OM][CG][4];
  NNSCOPE_UNROLL
  for (int ch = 0; ch < NCH; ++ch)
    NNSCOPE_UNROLL
    for (int s = 0; s < OM; ++s)
      NNSCOPE_UNROLL
      for (int u = 0; u < CG; ++u) o[ch][s][u][0] = o[ch][s][u][1] = o[ch][s][u][2] = o[ch][s][u][3] = 0.0f;

  const int c4 = t % TC, rg = t / TC;
  const int dpad = int(cdiv(d, 4) * 4);  // columns worth computing
  const int srows = nrows > warp ? int(cdiv(nrows - warp, 4)) : 0;  // S rows of this warp that exist
  const char* kbase = static_cast<const char*>(p.k) + (kvh * p.kh) * storage_size(p.kst);
  const char* vbase = static_cast<const char*>(p.v) + (kvh * p.vh) * storage_size(p.vst);

  for (i64 t0 = k0; t0 < k1; t0 += kBN) {
    const int nk = int(minl(kBN, k1 - t0));
    if (t < kBN) {
      int key = -1;
      if (t < nk) {
        key = p.idx ? p.idx[lbase + t0 + t] : int(t0 + t);
        if (key < 0 || key >= p.N) key = -1;  // malformed list entry: skipped, never read
      }
      keyidx[t] = key;
    }
    __syncthreads();

    // ---- S = Q·Kᵀ (this thread: key `lane`, rows warp + 4s)
    float acc[SR];
    NNSCOPE_UNROLL
    for (int s = 0; s < SR; ++s) acc[s] = 0.0f;
    NNSCOPE_UNROLL
    for (int ch = 0; ch < NCH; ++ch) {
      const int dc0 = ch * DC;
      if (dc0 < dpad) {  // uniform
        for (int e = t; e < kBN * (DC / 4); e += kThreads) {
          const int j = e / (DC / 4), c = dc0 + (e % (DC / 4)) * 4;
          const int key = keyidx[j];
          float4 x = f4zero();
          if (key >= 0 && c < d) x = load_elems(kbase, (i64)key * d + c, p.kst, mini(4, d - c), p.vec_k != 0);
          sts4(KV + j * KS + (c - dc0), x);
        }
        __syncthreads();
        const float* kr = KV + lane * KS;
        const int cend = mini(DC, dpad - dc0);
        for (int c = 0; c < cend; c += 4) {
          const float4 kv = lds4(kr + c);
          NNSCOPE_UNROLL
          for (int s = 0; s < SR; ++s) {
            if (s < srows) {
              const float4 qv = lds4(Qs + (warp + 4 * s) * QS + dc0 + c);
              float a = acc[s];
              a = fmaf(qv.x, kv.x, a);
              a = fmaf(qv.y, kv.y, a);
              a = fmaf(qv.z, kv.z, a);
              a = fmaf(qv.w, kv.w, a);
              acc[s] = a;
            }
          }
        }
        __syncthreads();
      }
    }
    // ---- masks → Ps
    {
      const i64 pos = t0 + lane;  // position in the list (dense: the key)
      NNSCOPE_UNROLL
      for (int s = 0; s < SR; ++s) {
        const int i = warp + 4 * s;
        bool ok = keyidx[lane] >= 0 && i < nrows;
        if (ok && p.causal && !p.idx) ok = pos <= p.qoff + (r0 + i) / p.gh;
        Ps[i * PS + lane] = ok ? acc[s] : neg_inf();
      }
    }
    __syncthreads();
    // ---- row maxima (one thread per row, keys in order)
    if (t < BM) {
      float mt = neg_inf();
      for (int j = 0; j < kBN; ++j) {
        const float x = Ps[t * PS + j];
        mt = x > mt ? x : mt;
      }
      const float m_new = mt > m_run ? mt : m_run;
      const float alpha = m_new == neg_inf() ? 1.0f : exp2f(m_run - m_new);
      sm_m[t] = m_new;
      sm_a[t] = alpha;
      m_run = m_new;
    }
    __syncthreads();
    // ---- probabilities
    NNSCOPE_UNROLL
    for (int s = 0; s < SR; ++s) {
      const int i = warp + 4 * s;
      const float mi = sm_m[i];
      const float x = Ps[i * PS + lane];
      Ps[i * PS + lane] = (mi == neg_inf() || x == neg_inf()) ? 0.0f : exp2f(x - mi);
    }
    __syncthreads();
    if (t < BM) {
      float sum = 0.0f;
      for (int j = 0; j < kBN; ++j) sum += Ps[t * PS + j];
      l_run = l_run * sm_a[t] + sum;
    }
    // ---- O = O·alpha + P·V
    NNSCOPE_UNROLL
    for (int ch = 0; ch < NCH; ++ch) {
      const int dc0 = ch * DC;
      if (dc0 < dpad) {
        for (int e = t; e < kBN * (DC / 4); e += kThreads) {
          const int j = e / (DC / 4), c = dc0 + (e % (DC / 4)) * 4;
          const int key = keyidx[j];
          float4 x = f4zero();
          if (key >= 0 && c < d) x = load_elems(vbase, (i64)key * d + c, p.vst, mini(4, d - c), p.vec_v != 0);
          sts4(KV + j * KS + (c - dc0), x);
        }
        __syncthreads();
        NNSCOPE_UNROLL
        for (int s = 0; s < OM; ++s) {
          const float a = sm_a[rg + RG * s];
          NNSCOPE_UNROLL
          for (int u = 0; u < CG; ++u) {
            o[ch][s][u][0] *= a;
            o[ch][s][u][1] *= a;
            o[ch][s][u][2] *= a;
            o[ch][s][u][3] *= a;
          }
        }
        for (int j = 0; j < nk; ++j) {
          NNSCOPE_UNROLL
          for (int u = 0; u < CG; ++u) {
            const float4 vv = lds4(KV + j * KS + 4 * (c4 + TC * u));
            NNSCOPE_UNROLL
            for (int s = 0; s < OM; ++s) {
              const float pj = Ps[(rg + RG * s) * PS + j];
              o[ch][s][u][0] = fmaf(pj, vv.x, o[ch][s][u][0]);
              o[ch][s][u][1] = fmaf(pj, vv.y, o[ch][s][u][1]);
              o[ch][s][u][2] = fmaf(pj, vv.z, o[ch][s][u][2]);
              o[ch][s][u][3] = fmaf(pj, vv.w, o[ch][s][u][3]);
            }
          }
        }
      }
      __syncthreads();
    }
  }

  // ---- finish: normalised rows to the output (one chunk) or to the partials
  if (t < BM) {
    sm_m[t] = m_run;
    sm_l[t] = l_run;
  }
  __syncthreads();
  const bool final_rows = nch == 1;
  const i64 cid = blockIdx.x;
  NNSCOPE_UNROLL
  for (int s = 0; s < OM; ++s) {
    const int i = rg + RG * s;
    if (i >= nrows) continue;
    const int r = r0 + i;
    const float l = sm_l[i];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* dst;
    if (final_rows) {
      const i64 head = qh0 + r % p.gh, tok = r / p.gh;
      dst = p.out + (head * p.Nq + tok) * d;
    } else {
      dst = p.pout + (cid * p.R + r) * d;
    }
    NNSCOPE_UNROLL
    for (int ch = 0; ch < NCH; ++ch)
      NNSCOPE_UNROLL
      for (int u = 0; u < CG; ++u) {
        const int c = ch * DC + 4 * (c4 + TC * u);
        NNSCOPE_UNROLL
        for (int e = 0; e < 4; ++e)
          if (c + e < d) dst[c + e] = l > 0.0f ? o[ch][s][u][e] * inv : 0.0f;
      }
  }
  if (t < nrows) {
    const int r = r0 + t;
    const float l = l_run, m = m_run;
    if (final_rows) {
      if (p.lse) {
        const i64 head = qh0 + r % p.gh, tok = r / p.gh;
        p.lse[head * p.Nq + tok] = l > 0.0f ? float((double(m) + log2(double(l))) * kLn2) : neg_inf();
      }
    } else {
      p.plse[cid * p.R + r] = l > 0.0f ? float(double(m) + log2(double(l))) : neg_inf();
    }
  }
}

// ---------------------------------------------------------------- chunk table
// cbeg[g] = Σ_{g' < g} ⌈len_g' / chunk⌉, cbeg[groups] = the total (one block).
constexpr int kScanThreads = 256;

// Lists longer than N (malformed) count as N keys; chunk ids are capped at maxc (the
// grid) so a bound that was too small loses chunks but never reads past the buffers.
__device__ __forceinline__ i64 list_chunks(const std::size_t* offs, int g, i64 N, i64 chunk) {
  const std::size_t a = offs[g], b = offs[g + 1];
  const i64 len = b > a ? minl((i64)(b - a), N) : 0;
  return cdiv(len, chunk);
}

__global__ void __launch_bounds__(kScanThreads) chunk_table_kernel(const std::size_t* offs, int groups, i64 N,
                                                                    i64 chunk, i64 maxc, int* cbeg) {
  __shared__ i64 part[kScanThreads];
  const int t = threadIdx.x;
  const int per = int(cdiv(groups, kScanThreads));
  const int g0 = mini(groups, t * per), g1 = mini(groups, g0 + per);
  i64 sum = 0;
  for (int g = g0; g < g1; ++g) sum += list_chunks(offs, g, N, chunk);
  part[t] = sum;
  __syncthreads();
  for (int off = 1; off < kScanThreads; off <<= 1) {  // inclusive Hillis–Steele scan
    const i64 add = t >= off ? part[t - off] : 0;
    __syncthreads();
    part[t] += add;
    __syncthreads();
  }
  i64 run = part[t] - sum;
  for (int g = g0; g < g1; ++g) {
    cbeg[g] = int(minl(run, maxc));
    run += list_chunks(offs, g, N, chunk);
  }
  if (t == kScanThreads - 1) cbeg[groups] = int(minl(part[t], maxc));
}

// ---------------------------------------------------------------- chunk merge
// One warp per output row (4 rows per 128-thread block): rows of groups with one
// chunk were written by the attention kernel and are skipped; no chunk → (0, −Inf).
struct MergeParams {
  int groups, R, gh, Nq, d;
  int cpg;          // dense: chunks per group
  const int* cbeg;  // sparse chunk table (null: dense)
  const float* pout;
  const float* plse;
  float* out;
  float* lse;
};

__global__ void __launch_bounds__(kThreads) merge_chunks_kernel(MergeParams p) {
  const int lane = threadIdx.x & 31;
  const i64 gr = (i64)blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
  if (gr >= (i64)p.groups * p.R) return;
  const int g = int(gr / p.R), r = int(gr % p.R);
  i64 c0, nch;
  if (p.cbeg) {
    c0 = p.cbeg[g];
    nch = p.cbeg[g + 1] - c0;
  } else {
    c0 = (i64)g * p.cpg;
    nch = p.cpg;
  }
  if (nch == 1) return;
  const i64 head = (i64)g * p.gh + r % p.gh, tok = r / p.gh;
  float* o = p.out + (head * p.Nq + tok) * p.d;
  float M = neg_inf();
  for (i64 c = 0; c < nch; ++c) {
    const float x = p.plse[(c0 + c) * p.R + r];
    M = x > M ? x : M;
  }
  if (M == neg_inf()) {
    for (int col = lane; col < p.d; col += 32) o[col] = 0.0f;
    if (lane == 0 && p.lse) p.lse[head * p.Nq + tok] = neg_inf();
    return;
  }
  float S = 0.0f;
  for (i64 c = 0; c < nch; ++c) S += exp2f(p.plse[(c0 + c) * p.R + r] - M);
  const float inv = 1.0f / S;
  for (int col = lane; col < p.d; col += 32) {
    float acc = 0.0f;
    for (i64 c = 0; c < nch; ++c) {
      const float w = exp2f(p.plse[(c0 + c) * p.R + r] - M);
      acc = fmaf(w, p.pout[((c0 + c) * p.R + r) * p.d + col], acc);
    }
    o[col] = acc * inv;
  }
  if (lane == 0 && p.lse) p.lse[head * p.Nq + tok] = float((double(M) + log2(double(S))) * kLn2);
}

// ---------------------------------------------------------------- LSE merge (public op)
// (out_a, lse_a) ← exact merge with (out_b, lse_b), in place, as merge_partials of
// attention.h (weights in float64). One warp per row.
__global__ void __launch_bounds__(kThreads) lse_merge_kernel(i64 rows, int d, float* oa, float* la,
                                                             const float* ob, const float* lb) {
  const int lane = threadIdx.x & 31;
  const i64 r = (i64)blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
  const bool live = r < rows;
  const float a = live ? la[r] : 0.0f, b = live ? lb[r] : 0.0f;
  __syncthreads();  // every lane has read la[r] before lane 0 rewrites it
  if (!live) return;
  float* o = oa + r * d;
  const float* q = ob + r * d;
  if (b == neg_inf()) {
    if (a == neg_inf())
      for (int c = lane; c < d; c += 32) o[c] = 0.0f;
    return;
  }
  if (a == neg_inf()) {
    for (int c = lane; c < d; c += 32) o[c] = q[c];
    if (lane == 0) la[r] = b;
    return;
  }
  const double m = a > b ? double(a) : double(b);
  const double wa = exp(double(a) - m), wb = exp(double(b) - m);
  const double s = wa + wb;
  const double ca = wa / s, cb = wb / s;
  for (int c = lane; c < d; c += 32) o[c] = float(ca * double(o[c]) + cb * double(q[c]));
  if (lane == 0) la[r] = float(m + log(s));
}

// Writes (0, −Inf) to every row of an empty problem (no key at all).
__global__ void __launch_bounds__(kThreads) fill_empty_kernel(i64 rows, int d, float* out, float* lse) {
  const i64 e = (i64)blockIdx.x * kThreads + threadIdx.x;
  if (e < rows * d) out[e] = 0.0f;
  if (lse && e < rows) lse[e] = neg_inf();
}

// ============================================================================ host-side setup
// A K/V view reduced to what the kernels need.
struct KvDev {
  const void* data = nullptr;
  int st = kF32;
  i64 heads = 0, tokens = 0, head_stride = 0;  // head_stride in rows (0 = tokens)
  i64 stride_elems(int d) const { return (head_stride ? head_stride : tokens) * (i64)d; }
};

inline KvDev kv_dev(const attention::KvView& x) {
  KvDev k;
  k.data = x.data;
  k.st = storage_code(x.storage);
  k.heads = i64(x.heads);
  k.tokens = i64(x.tokens);
  k.head_stride = i64(x.head_stride);
  return k;
}

// scale 0 → 1/√d (attention.cpp's make_problem).
inline double resolve_attention_scale(float scale, std::size_t d) {
  return scale == 0.0f ? 1.0 / sqrt(double(d)) : double(scale);
}

// Problem fields of q over (k, v) with logits scaled by `scale`; the grouping, key
// list, masking and outputs are set by the callers below.
inline FlashParams flash_params(const float* q, int Hq, int Nq, int d, const KvDev& k, const KvDev& v, double scale) {
  FlashParams p{};
  p.q = q;
  p.k = k.data;
  p.v = v.data;
  p.kst = k.st;
  p.vst = v.st;
  p.kh = k.stride_elems(d);
  p.vh = v.stride_elems(d);
  p.d = d;
  p.Nq = Nq;
  p.G = k.heads > 0 ? int(Hq / k.heads) : 1;
  p.qs = float(scale * kLog2e);
  p.N = k.tokens;
  p.vec_k = rows_vectorisable(k.data, k.st, d) ? 1 : 0;
  p.vec_v = rows_vectorisable(v.data, v.st, d) ? 1 : 0;
  return p;
}

// ============================================================================ planning
//
// Kernel configurations of the SIMT path: d padded to D ∈ {32, 64, 128, 256, 512,
// 1024}; a "decode" shape (BM = 8 or 16 rows) when a group has few rows, a "prefill"
// shape otherwise.
struct SimtConfig {
  int D, BM, DC;
};

inline int padded_d(int d) {
  int D = 32;
  while (D < d) D *= 2;
  return D;
}

inline SimtConfig simt_config(int d, int R) {
  const int D = padded_d(d);
  const bool small = R <= 8;
  switch (D) {
    case 32: return {32, small ? 16 : 64, 32};
    case 64: return {64, small ? 8 : 64, 64};
    case 128: return {128, small ? 8 : 32, 128};
    case 256: return {256, small ? 8 : 16, 128};
    case 512: return {512, 8, 128};
    default: return {1024, 4, 128};
  }
}

template <int D, int BM, int DC>
void launch_flash_simt_tiles(const FlashParams& base, i64 chunks, int tiles, void* stream) {
  for (int t0 = 0; t0 < tiles; t0 += 65535) {
    FlashParams p = base;
    p.tile0 = t0;
    const unsigned ny = unsigned(mini(65535, tiles - t0));
    launch_kernel(flash_simt<D, BM, DC>, dim3(unsigned(chunks), ny, 1), dim3(kThreads, 1, 1), stream, p);
  }
}

inline void launch_flash_simt(const SimtConfig& c, const FlashParams& p, i64 chunks, void* stream) {
  const int tiles = int(cdiv(p.R, c.BM));
#define NNSCOPE_ATT_CASE(D_, BM_, DC_)                                  \
  if (c.D == D_ && c.BM == BM_ && c.DC == DC_) {                        \
    launch_flash_simt_tiles<D_, BM_, DC_>(p, chunks, tiles, stream);    \
    return;                                                             \
  }
  NNSCOPE_ATT_CASE(32, 16, 32)
  NNSCOPE_ATT_CASE(32, 64, 32)
  NNSCOPE_ATT_CASE(64, 8, 64)
  NNSCOPE_ATT_CASE(64, 64, 64)
  NNSCOPE_ATT_CASE(128, 8, 128)
  NNSCOPE_ATT_CASE(128, 32, 128)
  NNSCOPE_ATT_CASE(256, 8, 128)
  NNSCOPE_ATT_CASE(256, 16, 128)
  NNSCOPE_ATT_CASE(512, 8, 128)
  NNSCOPE_ATT_CASE(1024, 4, 128)
#undef NNSCOPE_ATT_CASE
}

// How a call is cut into chunks, and the workspace it needs.
struct FlashPlan {
  bool sparse = false;
  bool mma = false;
  SimtConfig simt{};
  int bm = 0;           // rows per block of the chosen kernel
  int tiles = 0;        // query tiles per group
  i64 chunk = 0;        // keys per chunk
  int cpg = 1;          // dense: chunks per group
  i64 max_chunks = 0;   // grid.x (sparse: an upper bound)
  bool partials = false;  // chunk partials (and a merge) may be needed
  // workspace, in bytes, 256-aligned pieces: cbeg ints, partial outputs, partial lse
  std::size_t ws_cbeg = 0, ws_pout = 0, ws_plse = 0;
  std::size_t workspace() const { return ws_cbeg + ws_pout + ws_plse; }
};

inline std::size_t align256(std::size_t b) { return (b + 255) / 256 * 256; }

constexpr i64 kMinDecodeChunk = 256;      // keys per chunk at least, few rows (decode)
constexpr i64 kMinPrefillChunk = 2048;    // keys per chunk at least, many rows
constexpr std::size_t kPartialCap = std::size_t(256) << 20;  // partial buffers at most (bytes)

// groups, R rows per group, d, N keys per head (dense) / per KV head (sparse),
// max_total: a bound on Σ list lengths (sparse; ≤ groups·N), sms: multiprocessors,
// bm: rows per block of the kernel that will run.
inline FlashPlan plan_flash(bool sparse, int groups, int R, int d, i64 N, i64 max_total, int sms, int bm) {
  FlashPlan P;
  P.sparse = sparse;
  P.simt = simt_config(d, R);
  P.bm = bm;
  P.tiles = int(cdiv(R, bm));
  const i64 units = (i64)groups * P.tiles;  // blocks without any split
  // blocks to aim for: with few rows (decode, bandwidth-bound) several per
  // multiprocessor, so that the key loads of some blocks overlap the arithmetic and
  // barriers of others; prefill blocks are compute-heavy, two per multiprocessor do.
  const i64 want = (R <= 16 ? 8LL : 2LL) * (sms > 0 ? sms : 1);
  const i64 row_bytes = (i64)R * (d + 1) * 4;   // partials of one chunk
  const i64 min_chunk = R <= 16 ? kMinDecodeChunk : kMinPrefillChunk;
  if (!sparse) {
    i64 cpg = 1;
    if (units < want && N > min_chunk) cpg = minl(cdiv(want, units), cdiv(N, min_chunk));
    while (cpg > 1 && (i64)groups * cpg * row_bytes > (i64)kPartialCap) --cpg;
    P.cpg = int(cpg);
    P.chunk = cpg > 1 ? cdiv(cdiv(N, cpg), kBN) * kBN : (N > 0 ? N : 1);
    P.cpg = N > 0 ? int(cdiv(N, P.chunk)) : 1;
    P.max_chunks = (i64)groups * P.cpg;
    P.partials = P.cpg > 1;
  } else {
    const i64 total = max_total < 0 ? (i64)groups * N : minl(max_total, (i64)groups * N);
    i64 chunk = min_chunk;
    // a few blocks per multiprocessor even when everything is selected
    if (units >= want) chunk = maxl(chunk, minl(N, 8 * kMinPrefillChunk));
    // the partial buffers stay under the cap
    const i64 cap_chunks = maxl(1, (i64)kPartialCap / maxl(1, row_bytes));
    if (cap_chunks > groups) chunk = maxl(chunk, cdiv(total, cap_chunks - groups));
    else chunk = maxl(chunk, N);
    chunk = cdiv(chunk, kBN) * kBN;
    P.chunk = chunk;
    P.max_chunks = minl((i64)groups + total / chunk, (i64)groups * cdiv(maxl(N, 1), chunk));
    if (P.max_chunks < 1) P.max_chunks = 1;
    P.partials = chunk < N;
    P.ws_cbeg = align256(std::size_t(groups + 1) * 4);
  }
  if (P.partials) {
    P.ws_pout = align256(std::size_t(P.max_chunks) * std::size_t(R) * std::size_t(d) * 4);
    P.ws_plse = align256(std::size_t(P.max_chunks) * std::size_t(R) * 4);
  }
  return P;
}

// Launches the chunk table (sparse), the attention kernel `run(params, chunks)`
// and the merge. p.out / p.lse / problem fields must be set; the chunk fields and
// the partial pointers are filled here from the plan and the workspace.
template <typename Run>
void flash_pipeline(const FlashPlan& P, FlashParams p, void* workspace, void* stream, const Run& run) {
  char* ws = static_cast<char*>(workspace);
  p.chunk = P.chunk;
  p.cpg = P.cpg;
  p.cbeg = nullptr;
  if (P.sparse) {
    int* cbeg = reinterpret_cast<int*>(ws);
    launch_kernel(chunk_table_kernel, dim3(1, 1, 1), dim3(kScanThreads, 1, 1), stream, p.offs, p.groups, p.N,
                  P.chunk, P.max_chunks, cbeg);
    p.cbeg = cbeg;
  }
  p.pout = P.partials ? reinterpret_cast<float*>(ws + P.ws_cbeg) : nullptr;
  p.plse = P.partials ? reinterpret_cast<float*>(ws + P.ws_cbeg + P.ws_pout) : nullptr;
  run(p, P.max_chunks);
  if (P.sparse || P.partials) {
    MergeParams m;
    m.groups = p.groups;
    m.R = p.R;
    m.gh = p.gh;
    m.Nq = p.Nq;
    m.d = p.d;
    m.cpg = p.cpg;
    m.cbeg = p.cbeg;
    m.pout = p.pout;
    m.plse = p.plse;
    m.out = p.out;
    m.lse = p.lse;
    const i64 rows = (i64)p.groups * p.R;
    launch_kernel(merge_chunks_kernel, dim3(unsigned(cdiv(rows, kThreads / 32)), 1, 1), dim3(kThreads, 1, 1),
                  stream, m);
  }
}

inline void launch_fill_empty(i64 rows, int d, float* out, float* lse, void* stream) {
  const i64 n = rows * (d > 1 ? d : 1);
  if (n == 0) return;
  launch_kernel(fill_empty_kernel, dim3(unsigned(cdiv(n, kThreads)), 1, 1), dim3(kThreads, 1, 1), stream, rows, d,
                out, lse);
}

inline void launch_lse_merge(i64 rows, int d, float* oa, float* la, const float* ob, const float* lb, void* stream) {
  if (rows == 0) return;
  launch_kernel(lse_merge_kernel, dim3(unsigned(cdiv(rows, kThreads / 32)), 1, 1), dim3(kThreads, 1, 1), stream,
                rows, d, oa, la, ob, lb);
}

// Forces the chunk length of a plan (tests: exercise the split-K paths on small
// problems); the bounds and the workspace follow.
inline void plan_force_chunk(FlashPlan& P, int groups, int R, int d, i64 N, i64 chunk) {
  chunk = cdiv(maxl(chunk, 1), kBN) * kBN;
  P.chunk = chunk;
  if (!P.sparse) {
    P.cpg = N > 0 ? int(cdiv(N, chunk)) : 1;
    P.max_chunks = (i64)groups * P.cpg;
    P.partials = P.cpg > 1;
  } else {
    P.max_chunks = maxl(1, (i64)groups * cdiv(maxl(N, 1), chunk));
    P.partials = chunk < N;
  }
  P.ws_pout = P.partials ? align256(std::size_t(P.max_chunks) * std::size_t(R) * std::size_t(d) * 4) : 0;
  P.ws_plse = P.partials ? align256(std::size_t(P.max_chunks) * std::size_t(R) * 4) : 0;
}

// Dense attention (attention.h semantics): plan and parameters. bm: rows per block
// of the kernel that will run (flash_bm).
inline int flash_bm(bool mma, int d, int R) { return mma ? 64 : simt_config(d, R).BM; }

inline FlashPlan dense_plan(const attention::Queries& q, const attention::KvView& k, int sms, bool mma) {
  const int G = k.heads ? int(q.heads / k.heads) : 1;
  const int R = G * int(q.tokens);
  FlashPlan P = plan_flash(false, int(k.heads), R, int(q.d), i64(k.tokens), -1, sms, flash_bm(mma, int(q.d), R));
  P.mma = mma;
  return P;
}
inline FlashParams dense_params(const attention::Queries& q, const attention::KvView& k, const attention::KvView& v,
                                const attention::DenseOptions& o, const attention::Output& out) {
  FlashParams p = flash_params(q.data, int(q.heads), int(q.tokens), int(q.d), kv_dev(k), kv_dev(v),
                               resolve_attention_scale(o.scale, q.d));
  p.gh = p.G;
  p.groups = int(k.heads);
  p.R = p.G * p.Nq;
  p.causal = o.causal ? 1 : 0;
  p.qoff = i64(o.query_offset);
  p.out = out.out;
  p.lse = out.lse;
  return p;
}

inline FlashPlan sparse_plan(const attention::Queries& q, const attention::KvView& k, bool pq, i64 max_selected,
                             int sms, bool mma) {
  const int G = k.heads ? int(q.heads / k.heads) : 1;
  const int groups = pq ? int(q.heads) : int(k.heads);
  const int R = pq ? int(q.tokens) : G * int(q.tokens);
  FlashPlan P = plan_flash(true, groups, R, int(q.d), i64(k.tokens), max_selected > 0 ? max_selected : -1, sms,
                           flash_bm(mma, int(q.d), R));
  P.mma = mma;
  return P;
}
inline FlashParams sparse_params(const attention::Queries& q, const attention::KvView& k, const attention::KvView& v,
                                 const attention::Selection& sel, float scale, const attention::Output& out) {
  FlashParams p = flash_params(q.data, int(q.heads), int(q.tokens), int(q.d), kv_dev(k), kv_dev(v),
                               resolve_attention_scale(scale, q.d));
  p.gh = sel.per_query_head ? 1 : p.G;
  p.groups = sel.per_query_head ? int(q.heads) : int(k.heads);
  p.R = p.gh * p.Nq;
  p.idx = sel.indices;
  p.offs = sel.offsets;
  p.out = out.out;
  p.lse = out.lse;
  return p;
}

}  // namespace attn
}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
