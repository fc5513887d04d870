// nnscope CUDA backend: the tensor-core (mma.sync.m16n8k16, sm_80+) flash kernel
// for fp16 / bf16 K and V with d % 16 == 0 and d ≤ 128 — the same FlashParams,
// chunking, masking and outputs as flash_simt in attention_kernels.cuh, so the
// chunk tables and the merge are shared. Device-only (warp shuffles and inline PTX
// are outside the host emulator): included by attention.cu alone and checked on a
// GPU against the SIMT kernel.
//
// Block: 4 warps, 64 query rows (16 per warp), key tiles of 64. Queries are scaled
// by scale·log2(e) and rounded to the storage type (the A operand); S = Q·Kᵀ
// accumulates in float32; the online softmax runs on the accumulator fragments (row
// max / sum over the 4 lanes of a quad by xor shuffles, identical on every lane);
// P is rounded to the storage type for P·V (float32 accumulation) while the row sums
// use the float32 P. K and V tiles are staged row-major in shared memory as their
// 16-bit patterns; B fragments of Kᵀ are 32-bit loads, those of V two 16-bit loads.
#pragma once

#ifndef __CUDACC__
#error "attention_kernels_mma.cuh is device code (nvcc only)"
#endif

#include "cuda/attention_kernels.cuh"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {
namespace attn {

template <int ST>
__device__ __forceinline__ unsigned short f32_to_st(float x) {
  unsigned short h;
  if (ST == kF16) {
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
  } else {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(x));
#else
    h = 0;
#endif
  }
  return h;
}

template <int ST>
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  return unsigned(f32_to_st<ST>(lo)) | (unsigned(f32_to_st<ST>(hi)) << 16);
}

// c += a·b for one m16n8k16 tile (row.col, float32 accumulators).
template <int ST>
__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (ST == kF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#else
  (void)c;
  (void)a;
  (void)b0;
  (void)b1;
#endif
}

constexpr int kMmaBM = 64, kMmaBN = 64;

template <int D, int ST>
__global__ void __launch_bounds__(kThreads) flash_mma(FlashParams p) {
  static_assert(D == 64 || D == 128, "flash_mma: D is 64 or 128");
  constexpr int SS = D + 8;  // shared row stride in 16-bit elements (16-byte multiple, conflict-free fragments)
  constexpr int KB = D / 16, NB = kMmaBN / 8, DN = D / 8, PB = kMmaBN / 16;
  __shared__ uint4 Ks4[kMmaBN * SS / 8];
  __shared__ uint4 Vs4[kMmaBN * SS / 8];
  __shared__ int keyidx[kMmaBN];
  unsigned short* Ks = reinterpret_cast<unsigned short*>(Ks4);
  unsigned short* Vs = reinterpret_cast<unsigned short*>(Vs4);

  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, gq = lane >> 2, tq = lane & 3;
  int g;
  i64 c_local, nch;
  if (!chunk_of(p, blockIdx.x, &g, &c_local, &nch)) return;
  const int tile = p.tile0 + int(blockIdx.y);
  const int r0 = tile * kMmaBM;
  if (r0 >= p.R) return;
  const int nrows = mini(kMmaBM, p.R - r0);
  const int d = p.d;
  const int qh0 = g * p.gh, kvh = qh0 / p.G;
  i64 lbase = 0, klen;
  if (p.idx) {
    lbase = (i64)p.offs[g];
    klen = minl((i64)p.offs[g + 1] - lbase, p.N);
  } else {
    klen = p.N;
  }
  const i64 k0 = c_local * p.chunk;
  i64 k1 = minl(klen, k0 + p.chunk);
  if (p.causal && !p.idx) {
    const i64 tok_last = (r0 + nrows - 1) / p.gh;
    k1 = minl(k1, p.qoff + tok_last + 1);
  }

  // Q (scaled, rounded) staged in Ks, then A fragments in registers.
  for (int e = t; e < kMmaBM * D / 2; e += kThreads) {
    const int i = e / (D / 2), c = (e % (D / 2)) * 2;
    float x0 = 0.0f, x1 = 0.0f;
    if (i < nrows && c < d) {
      const int r = r0 + i;
      const i64 head = qh0 + r % p.gh, tok = r / p.gh;
      const float* qr = p.q + (head * p.Nq + tok) * d;
      x0 = qr[c] * p.qs;
      x1 = qr[c + 1] * p.qs;
    }
    *reinterpret_cast<unsigned*>(Ks + i * SS + c) = pack2<ST>(x0, x1);
  }
  __syncthreads();
  unsigned qf[KB][4];
  {
    const unsigned short* q0 = Ks + (warp * 16 + gq) * SS + 2 * tq;
    const unsigned short* q8 = q0 + 8 * SS;
#pragma unroll
    for (int kb = 0; kb < KB; ++kb) {
      qf[kb][0] = *reinterpret_cast<const unsigned*>(q0 + kb * 16);
      qf[kb][1] = *reinterpret_cast<const unsigned*>(q8 + kb * 16);
      qf[kb][2] = *reinterpret_cast<const unsigned*>(q0 + kb * 16 + 8);
      qf[kb][3] = *reinterpret_cast<const unsigned*>(q8 + kb * 16 + 8);
    }
  }
  __syncthreads();

  float o[DN][4];
#pragma unroll
  for (int dn = 0; dn < DN; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
  float m0 = neg_inf(), m1 = neg_inf(), l0 = 0.0f, l1 = 0.0f;  // rows gq and gq + 8 of the warp
  const int i0 = warp * 16 + gq, i1 = i0 + 8;
  const i64 tok0 = (r0 + i0) / p.gh, tok1 = (r0 + i1) / p.gh;
  const unsigned short* kbase = static_cast<const unsigned short*>(p.k) + kvh * p.kh;
  const unsigned short* vbase = static_cast<const unsigned short*>(p.v) + kvh * p.vh;

  for (i64 t0 = k0; t0 < k1; t0 += kMmaBN) {
    const int nk = int(minl(kMmaBN, k1 - t0));
    if (t < kMmaBN) {
      int key = -1;
      if (t < nk) {
        key = p.idx ? p.idx[lbase + t0 + t] : int(t0 + t);
        if (key < 0 || key >= p.N) key = -1;
      }
      keyidx[t] = key;
    }
    __syncthreads();
    for (int e = t; e < kMmaBN * (D / 8); e += kThreads) {
      const int j = e / (D / 8), c = (e % (D / 8)) * 8;
      const int key = keyidx[j];
      uint4 kx = make_uint4(0, 0, 0, 0), vx = make_uint4(0, 0, 0, 0);
      if (key >= 0 && c < d) {
        kx = *reinterpret_cast<const uint4*>(kbase + (i64)key * d + c);
        vx = *reinterpret_cast<const uint4*>(vbase + (i64)key * d + c);
      }
      *reinterpret_cast<uint4*>(Ks + j * SS + c) = kx;
      *reinterpret_cast<uint4*>(Vs + j * SS + c) = vx;
    }
    __syncthreads();

    float s[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
      const unsigned short* kr = Ks + (nb * 8 + gq) * SS + 2 * tq;
#pragma unroll
      for (int kb = 0; kb < KB; ++kb) {
        const unsigned b0 = *reinterpret_cast<const unsigned*>(kr + kb * 16);
        const unsigned b1 = *reinterpret_cast<const unsigned*>(kr + kb * 16 + 8);
        mma16816<ST>(s[nb], qf[kb], b0, b1);
      }
    }
    // masks
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int jj = nb * 8 + 2 * tq + (e & 1);
        const int i = e < 2 ? i0 : i1;
        bool ok = keyidx[jj] >= 0 && i < nrows;
        if (ok && p.causal && !p.idx) ok = t0 + jj <= p.qoff + (e < 2 ? tok0 : tok1);
        if (!ok) s[nb][e] = neg_inf();
      }
    // online softmax (rows i0: e = 0, 1; i1: e = 2, 3)
    float mx0 = neg_inf(), mx1 = neg_inf();
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      mx0 = fmaxf(mx0, fmaxf(s[nb][0], s[nb][1]));
      mx1 = fmaxf(mx1, fmaxf(s[nb][2], s[nb][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float a0 = mn0 == neg_inf() ? 1.0f : exp2f(m0 - mn0);
    const float a1 = mn1 == neg_inf() ? 1.0f : exp2f(m1 - mn1);
    float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      s[nb][0] = (mn0 == neg_inf() || s[nb][0] == neg_inf()) ? 0.0f : exp2f(s[nb][0] - mn0);
      s[nb][1] = (mn0 == neg_inf() || s[nb][1] == neg_inf()) ? 0.0f : exp2f(s[nb][1] - mn0);
      s[nb][2] = (mn1 == neg_inf() || s[nb][2] == neg_inf()) ? 0.0f : exp2f(s[nb][2] - mn1);
      s[nb][3] = (mn1 == neg_inf() || s[nb][3] == neg_inf()) ? 0.0f : exp2f(s[nb][3] - mn1);
      rs0 += s[nb][0] + s[nb][1];
      rs1 += s[nb][2] + s[nb][3];
    }
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 1);
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 2);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 1);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 2);
    l0 = l0 * a0 + rs0;
    l1 = l1 * a1 + rs1;
    m0 = mn0;
    m1 = mn1;
#pragma unroll
    for (int dn = 0; dn < DN; ++dn) {
      o[dn][0] *= a0;
      o[dn][1] *= a0;
      o[dn][2] *= a1;
      o[dn][3] *= a1;
    }
    unsigned pf[PB][4];
#pragma unroll
    for (int kb = 0; kb < PB; ++kb) {
      pf[kb][0] = pack2<ST>(s[2 * kb][0], s[2 * kb][1]);
      pf[kb][1] = pack2<ST>(s[2 * kb][2], s[2 * kb][3]);
      pf[kb][2] = pack2<ST>(s[2 * kb + 1][0], s[2 * kb + 1][1]);
      pf[kb][3] = pack2<ST>(s[2 * kb + 1][2], s[2 * kb + 1][3]);
    }
#pragma unroll
    for (int dn = 0; dn < DN; ++dn) {
#pragma unroll
      for (int kb = 0; kb < PB; ++kb) {
        const unsigned short* v0 = Vs + (kb * 16 + 2 * tq) * SS + dn * 8 + gq;
        const unsigned b0 = unsigned(v0[0]) | (unsigned(v0[SS]) << 16);
        const unsigned b1 = unsigned(v0[8 * SS]) | (unsigned(v0[9 * SS]) << 16);
        mma16816<ST>(o[dn], pf[kb], b0, b1);
      }
    }
    __syncthreads();
  }

  // finish
  const bool final_rows = nch == 1;
  const i64 cid = blockIdx.x;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = half ? i1 : i0;
    if (i >= nrows) continue;
    const int r = r0 + i;
    const float l = half ? l1 : l0, m = half ? m1 : m0;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* dst;
    if (final_rows) {
      const i64 head = qh0 + r % p.gh, tok = r / p.gh;
      dst = p.out + (head * p.Nq + tok) * d;
    } else {
      dst = p.pout + (cid * p.R + r) * d;
    }
#pragma unroll
    for (int dn = 0; dn < DN; ++dn) {
      const int c = dn * 8 + 2 * tq;
      if (c < d) {
        dst[c] = l > 0.0f ? o[dn][2 * half] * inv : 0.0f;
        dst[c + 1] = l > 0.0f ? o[dn][2 * half + 1] * inv : 0.0f;
      }
    }
    if (tq == 0) {
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
}

inline void launch_flash_mma(int D, int st, const FlashParams& base, i64 chunks, void* stream) {
  const int tiles = int(cdiv(base.R, kMmaBM));
  for (int t0 = 0; t0 < tiles; t0 += 65535) {
    FlashParams p = base;
    p.tile0 = t0;
    const dim3 grid(unsigned(chunks), unsigned(mini(65535, tiles - t0)), 1);
    const dim3 block(kThreads, 1, 1);
    if (D == 64 && st == kF16) launch_kernel(flash_mma<64, kF16>, grid, block, stream, p);
    else if (D == 64) launch_kernel(flash_mma<64, kBF16>, grid, block, stream, p);
    else if (st == kF16) launch_kernel(flash_mma<128, kF16>, grid, block, stream, p);
    else launch_kernel(flash_mma<128, kBF16>, grid, block, stream, p);
  }
}

}  // namespace attn
}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
