// nnscope CUDA backend: the models kernels (activations with their derivatives,
// loss heads, deterministic reductions, parameter perturbation) and the host-side
// pipeline that strings them together with SGEMMs into loss, gradient (reverse
// mode), Hessian-vector product (R-operator) and the batched landscape loss.
//
// The mathematics is exactly that of models/engine.h (read its header comment); only
// the batching differs. All rows of an objective form ONE batch:
//   rows [0, P)              the primal rows (MLP samples; PINN: IC, BC(x=0),
//                            BC(x=2π), collocation points, in that order),
//   rows [P + c·Nc, P+(c+1)·Nc)  tangent channel c (c < C) of the LAST Nc primal rows
//                            (the PINN's collocation points; C = 2: ∂/∂x, ∂/∂t),
// R = P + C·Nc rows, so every layer is one GEMM over all R rows. Elementwise kernels
// run one thread per primal element (i, j) and handle that element's channel rows
// too (they need σ'(Z_0) etc. of the primal row).
//
// Included by models.cu (nvcc) and, under the host emulator of cuda_emu.h, by
// native/tests/test_cuda_models.cpp. The includer provides, before including:
//   - NNSCOPE_KNS (namespace nnscope::cuda::NNSCOPE_KNS for everything here),
//   - in that namespace: launch_kernel(kernel, grid, block, stream, args...) and
//     gemm_dev(const linalg::GemmArgs&, void* stream) (C = αop(A)op(B)+βC on device
//     pointers, deterministic),
//   - the CUDA vocabulary (and tanhf, expf, erfcf, log1pf, exp, log, log1p, fmaf).
// Determinism: no atomics; every reduction has a fixed order that depends only on
// the sizes (double accumulation), so the same call gives the same bits.
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including models_kernels.cuh"
#endif

#include <cstddef>
#include <utility>
#include <vector>

#include "linalg/blas.h"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {

typedef long long mi64;

// models::Activation values (Identity, Tanh, Relu, Gelu, Softplus, Sigmoid).
enum MActCode : int { kActIdentity = 0, kActTanh = 1, kActRelu = 2, kActGelu = 3, kActSoftplus = 4, kActSigmoid = 5 };
enum MHeadKind : int { kHeadMse = 0, kHeadBce = 1, kHeadCe = 2, kHeadPinn = 3 };

constexpr int kMThreads = 256;

__host__ __device__ __forceinline__ mi64 mceil_div(mi64 a, mi64 b) { return (a + b - 1) / b; }
inline unsigned mblocks(mi64 total) {
  const mi64 b = mceil_div(total, kMThreads);
  return (unsigned)(b < 1 ? 1 : b > 8192 ? 8192 : b);
}

// σ and σ', σ'', σ''' at z, float32 (the forms of models/activation.cpp).
__device__ __forceinline__ void mact(int act, float z, float& f, float& d1, float& d2, float& d3) {
  switch (act) {
    case kActTanh: {
      const float t = tanhf(z);
      f = t;
      d1 = 1.0f - t * t;
      d2 = -2.0f * t * d1;
      d3 = -2.0f * d1 * (d1 - 2.0f * t * t);
      return;
    }
    case kActRelu:
      f = z > 0.0f ? z : 0.0f;
      d1 = z > 0.0f ? 1.0f : 0.0f;
      d2 = 0.0f;
      d3 = 0.0f;
      return;
    case kActGelu: {
      const float Phi = 0.5f * erfcf(-z * 0.70710678118654752440f);
      const float phi = 0.39894228040143267794f * expf(-0.5f * z * z);
      f = z * Phi;
      d1 = Phi + z * phi;
      d2 = phi * (2.0f - z * z);
      d3 = phi * (z * z * z - 4.0f * z);
      return;
    }
    case kActSoftplus: {
      f = (z > 0.0f ? z : 0.0f) + log1pf(expf(-fabsf(z)));
      const float s = 1.0f / (1.0f + expf(-z)), d = s * (1.0f - s);
      d1 = s;
      d2 = d;
      d3 = d * (1.0f - 2.0f * s);
      return;
    }
    case kActSigmoid: {
      const float s = 1.0f / (1.0f + expf(-z));
      const float d = s * (1.0f - s), u = 1.0f - 2.0f * s;
      f = s;
      d1 = d;
      d2 = d * u;
      d3 = d * (u * u - 2.0f * d);
      return;
    }
    default:
      f = z;
      d1 = 1.0f;
      d2 = 0.0f;
      d3 = 0.0f;
      return;
  }
}

// Row index of channel c of primal row i (i ≥ P − Nc).
__device__ __forceinline__ mi64 chan_row(mi64 P, mi64 Nc, int c, mi64 i) { return P + (mi64)c * Nc + (i - (P - Nc)); }

// ---------------------------------------------------------------- forward
// Primal element (i, j): Z_0 += b_j, A_0 = σ(Z_0), S1..S3 (where not null);
// channels: A_c = σ'(Z_0)·Z_c.
__global__ void __launch_bounds__(256) m_act_forward(int act, mi64 P, mi64 Nc, int C, int n, float* __restrict__ Z,
                                                     const float* __restrict__ bias, float* __restrict__ A,
                                                     float* __restrict__ S1, float* __restrict__ S2,
                                                     float* __restrict__ S3) {
  const mi64 total = P * n, stride = (mi64)gridDim.x * blockDim.x;
  for (mi64 e = (mi64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
    const mi64 i = e / n;
    const int j = (int)(e - i * n);
    const float z = Z[e] + bias[j];
    Z[e] = z;
    float f, d1, d2, d3;
    mact(act, z, f, d1, d2, d3);
    A[e] = f;
    if (S1) S1[e] = d1;
    if (S2) S2[e] = d2;
    if (S3) S3[e] = d3;
    if (i >= P - Nc)
      for (int c = 0; c < C; ++c) {
        const mi64 q = chan_row(P, Nc, c, i) * n + j;
        A[q] = d1 * Z[q];
      }
  }
}

// R-forward: RZ_0 += V_b; R{A_0} = σ'·RZ_0; R{A_c} = σ''·RZ_0·Z_c + σ'·RZ_c.
__global__ void __launch_bounds__(256) m_rforward(mi64 P, mi64 Nc, int C, int n, float* __restrict__ RZ,
                                                  const float* __restrict__ Vb, const float* __restrict__ S1,
                                                  const float* __restrict__ S2, const float* __restrict__ Z,
                                                  float* __restrict__ RA) {
  const mi64 total = P * n, stride = (mi64)gridDim.x * blockDim.x;
  for (mi64 e = (mi64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
    const mi64 i = e / n;
    const int j = (int)(e - i * n);
    const float rz0 = RZ[e] + Vb[j];
    RZ[e] = rz0;
    const float s1 = S1[e];
    RA[e] = s1 * rz0;
    if (i >= P - Nc) {
      const float s2 = S2[e];
      for (int c = 0; c < C; ++c) {
        const mi64 q = chan_row(P, Nc, c, i) * n + j;
        RA[q] = s2 * rz0 * Z[q] + s1 * RZ[q];
      }
    }
  }
}

// ---------------------------------------------------------------- backward
// δ_0 = G_0·σ' + Σ_c G_c·σ''·Z_c, δ_c = G_c·σ'; with RD (HVP) also
// R{δ_0} = G_0·σ''·RZ_0 + RG_0·σ' + Σ_c [RG_c·σ''·Z_c + G_c·(σ'''·RZ_0·Z_c + σ''·RZ_c)],
// R{δ_c} = G_c·σ''·RZ_0 + RG_c·σ'.
__global__ void __launch_bounds__(256) m_delta(mi64 P, mi64 Nc, int C, int n, const float* __restrict__ G,
                                               const float* __restrict__ S1, const float* __restrict__ S2,
                                               const float* __restrict__ S3, const float* __restrict__ Z,
                                               const float* __restrict__ RZ, const float* __restrict__ RG,
                                               float* __restrict__ D, float* __restrict__ RD) {
  const mi64 total = P * n, stride = (mi64)gridDim.x * blockDim.x;
  for (mi64 e = (mi64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
    const mi64 i = e / n;
    const int j = (int)(e - i * n);
    const float s1 = S1[e], g0 = G[e];
    const bool ch = C > 0 && i >= P - Nc;
    float d0 = g0 * s1;
    if (ch)
      for (int c = 0; c < C; ++c) {
        const mi64 q = chan_row(P, Nc, c, i) * n + j;
        d0 += G[q] * S2[e] * Z[q];
        D[q] = G[q] * s1;
      }
    D[e] = d0;
    if (RD) {
      const float s2 = S2[e], rz0 = RZ[e];
      float r0 = g0 * s2 * rz0 + RG[e] * s1;
      if (ch) {
        const float s3 = S3[e];
        for (int c = 0; c < C; ++c) {
          const mi64 q = chan_row(P, Nc, c, i) * n + j;
          const float gc = G[q], rgc = RG[q], zc = Z[q];
          r0 += rgc * s2 * zc + gc * (s3 * rz0 * zc + s2 * RZ[q]);
          RD[q] = gc * s2 * rz0 + rgc * s1;
        }
      }
      RD[e] = r0;
    }
  }
}

// out[j] = Σ_{i<rows} M[i·n + j] (double, fixed order: 8 row lanes, then lanes in
// order). Block (32, 8), one block per 32 columns.
__global__ void __launch_bounds__(256) m_colsum(mi64 rows, int n, const float* __restrict__ M, float* __restrict__ out) {
  __shared__ double part[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int j = blockIdx.x * 32 + tx;
  double s = 0.0;
  if (j < n)
    for (mi64 i = ty; i < rows; i += 8) s += (double)M[i * n + j];
  part[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && j < n) {
    double t = 0.0;
    for (int r = 0; r < 8; ++r) t += part[r][tx];
    out[j] = (float)t;
  }
}

// ---------------------------------------------------------------- block reduction
// Σ over the 256 threads of a block, fixed tree; the result is valid in thread 0.
__device__ __forceinline__ double m_block_sum(double v) {
  __shared__ double buf[kMThreads];
  const int t = threadIdx.x;
  buf[t] = v;
  __syncthreads();
  for (int s = kMThreads / 2; s > 0; s >>= 1) {
    if (t < s) buf[t] += buf[t + s];
    __syncthreads();
  }
  const double r = buf[0];
  __syncthreads();
  return r;
}

// ---------------------------------------------------------------- heads
struct HeadParams {
  int kind = kHeadMse;
  mi64 P = 0, Nc = 0;
  int d_out = 1;
  double scale = 1.0;               // MLP: 1/(n·d_out) (Mse, Bce) or 1/n (Ce)
  const float* y = nullptr;         // P × d_out (Mse, Bce)
  const int* labels = nullptr;      // P (Ce)
  mi64 n_ic = 0, n_bc = 0;          // PINN: rows [0,n_ic) IC, [n_ic, n_ic+n_bc) BC x=0, next n_bc BC x=2π
  const double* ic_target = nullptr;  // sin x of the IC points
  double beta = 1.0, s_ic = 0.0, s_bc = 0.0, s_res = 0.0;
};

__device__ __forceinline__ double m_sigmoid64(double a) {
  if (a >= 0) return 1.0 / (1.0 + exp(-a));
  const double e = exp(a);
  return e / (1.0 + e);
}

// Loss contribution of primal row i (already scaled); when g is not null, ∂L/∂out
// of that row and of the rows it owns (channel rows; the BC partner row).
__device__ __forceinline__ double m_head_row(const HeadParams& h, mi64 i, const float* __restrict__ out,
                                             float* __restrict__ g) {
  const int d = h.d_out;
  switch (h.kind) {
    case kHeadMse: {
      double s = 0.0;
      for (int j = 0; j < d; ++j) {
        const double e = (double)out[i * d + j] - (double)h.y[i * d + j];
        s += e * e;
        if (g) g[i * d + j] = (float)(2.0 * h.scale * e);
      }
      return h.scale * s;
    }
    case kHeadBce: {
      double s = 0.0;
      for (int j = 0; j < d; ++j) {
        const double a = (double)out[i * d + j], t = (double)h.y[i * d + j];
        s += (a > 0.0 ? a : 0.0) - a * t + log1p(exp(-fabs(a)));
        if (g) g[i * d + j] = (float)(h.scale * (m_sigmoid64(a) - t));
      }
      return h.scale * s;
    }
    case kHeadCe: {
      const float* a = out + i * d;
      const int lab = h.labels[i];
      double m = (double)a[0];
      for (int j = 1; j < d; ++j) m = (double)a[j] > m ? (double)a[j] : m;
      double se = 0.0;
      for (int j = 0; j < d; ++j) se += exp((double)a[j] - m);
      const double lse = m + log(se);
      if (g)
        for (int j = 0; j < d; ++j) g[i * d + j] = (float)(h.scale * (exp((double)a[j] - lse) - (j == lab ? 1.0 : 0.0)));
      return h.scale * (lse - (double)a[lab]);
    }
    default: {  // PINN (d_out = 1)
      if (i < h.n_ic) {
        const double e = (double)out[i] - h.ic_target[i];
        if (g) g[i] = (float)(2.0 * h.s_ic * e);
        return h.s_ic * e * e;
      }
      if (i < h.n_ic + h.n_bc) {
        const mi64 k = i + h.n_bc;
        const double e = (double)out[i] - (double)out[k];
        if (g) {
          g[i] = (float)(2.0 * h.s_bc * e);
          g[k] = (float)(-2.0 * h.s_bc * e);
        }
        return h.s_bc * e * e;
      }
      if (i < h.n_ic + 2 * h.n_bc) return 0.0;  // the BC partner rows (handled above)
      const mi64 qx = chan_row(h.P, h.Nc, 0, i), qt = chan_row(h.P, h.Nc, 1, i);
      const double r = (double)out[qt] + h.beta * (double)out[qx];
      if (g) {
        g[i] = 0.0f;
        g[qx] = (float)(2.0 * h.s_res * h.beta * r);
        g[qt] = (float)(2.0 * h.s_res * r);
      }
      return h.s_res * r * r;
    }
  }
}

// *loss = Σ_i head_row(i) over the primal rows; one block of 256 threads (thread t
// takes rows t, t+256, … in order, then the fixed tree).
__global__ void __launch_bounds__(256) m_head(HeadParams h, const float* __restrict__ out, float* __restrict__ g,
                                              double* __restrict__ loss) {
  double s = 0.0;
  for (mi64 i = threadIdx.x; i < h.P; i += kMThreads) s += m_head_row(h, i, out, g);
  s = m_block_sum(s);
  if (threadIdx.x == 0) *loss = s;
}

// rg = R{g} along rout = R{out}, per primal row (and the rows it owns).
__global__ void __launch_bounds__(256) m_rhead(HeadParams h, const float* __restrict__ out,
                                               const float* __restrict__ rout, float* __restrict__ rg) {
  const mi64 stride = (mi64)gridDim.x * blockDim.x;
  const int d = h.d_out;
  for (mi64 i = (mi64)blockIdx.x * blockDim.x + threadIdx.x; i < h.P; i += stride) {
    switch (h.kind) {
      case kHeadMse:
        for (int j = 0; j < d; ++j) rg[i * d + j] = (float)(2.0 * h.scale * (double)rout[i * d + j]);
        break;
      case kHeadBce:
        for (int j = 0; j < d; ++j) {
          const double s = m_sigmoid64((double)out[i * d + j]);
          rg[i * d + j] = (float)(h.scale * s * (1.0 - s) * (double)rout[i * d + j]);
        }
        break;
      case kHeadCe: {
        const float* a = out + i * d;
        const float* ra = rout + i * d;
        double m = (double)a[0];
        for (int j = 1; j < d; ++j) m = (double)a[j] > m ? (double)a[j] : m;
        double se = 0.0;
        for (int j = 0; j < d; ++j) se += exp((double)a[j] - m);
        const double lse = m + log(se);
        double pr = 0.0;
        for (int j = 0; j < d; ++j) pr += exp((double)a[j] - lse) * (double)ra[j];
        for (int j = 0; j < d; ++j) rg[i * d + j] = (float)(h.scale * exp((double)a[j] - lse) * ((double)ra[j] - pr));
        break;
      }
      default: {
        if (i < h.n_ic) {
          rg[i] = (float)(2.0 * h.s_ic * (double)rout[i]);
        } else if (i < h.n_ic + h.n_bc) {
          const mi64 k = i + h.n_bc;
          const double rd = (double)rout[i] - (double)rout[k];
          rg[i] = (float)(2.0 * h.s_bc * rd);
          rg[k] = (float)(-2.0 * h.s_bc * rd);
        } else if (i >= h.n_ic + 2 * h.n_bc) {
          const mi64 qx = chan_row(h.P, h.Nc, 0, i), qt = chan_row(h.P, h.Nc, 1, i);
          const double rr = (double)rout[qt] + h.beta * (double)rout[qx];
          rg[i] = 0.0f;
          rg[qx] = (float)(2.0 * h.s_res * h.beta * rr);
          rg[qt] = (float)(2.0 * h.s_res * rr);
        }
        break;
      }
    }
  }
}

// ---------------------------------------------------------------- parameters
// out[p] = float(double(out[p]) + wd·double(add[p])) (the weight-decay term of ∇L / Hv).
__global__ void __launch_bounds__(256) m_add_decay(mi64 n, double wd, const float* __restrict__ add,
                                                   float* __restrict__ out) {
  const mi64 stride = (mi64)gridDim.x * blockDim.x;
  for (mi64 p = (mi64)blockIdx.x * blockDim.x + threadIdx.x; p < n; p += stride)
    out[p] = (float)((double)out[p] + wd * (double)add[p]);
}

// Theta[q·ld + p] = θ₀[p] + Σ_j coords[q·k + j]·dirs[j·P + p] (an FMA chain in j
// order) for q < M, p < P.
__global__ void __launch_bounds__(256) m_perturb(mi64 M, mi64 P, int k, mi64 ld, const float* __restrict__ theta0,
                                                 const float* __restrict__ dirs, const float* __restrict__ coords,
                                                 float* __restrict__ Theta) {
  const mi64 total = M * P, stride = (mi64)gridDim.x * blockDim.x;
  for (mi64 e = (mi64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
    const mi64 q = e / P, p = e - q * P;
    float t = theta0[p];
    for (int j = 0; j < k; ++j) t = fmaf(coords[q * k + j], dirs[(mi64)j * P + p], t);
    Theta[q * ld + p] = t;
  }
}

// sq[q] = Σ_p Theta[q·ld + p]² (double), one block per point.
__global__ void __launch_bounds__(256) m_sumsq(mi64 P, mi64 ld, const float* __restrict__ Theta, double* __restrict__ sq) {
  const float* th = Theta + (mi64)blockIdx.x * ld;
  double s = 0.0;
  for (mi64 p = threadIdx.x; p < P; p += kMThreads) s += (double)th[p] * (double)th[p];
  s = m_block_sum(s);
  if (threadIdx.x == 0) sq[blockIdx.x] = s;
}

// ---------------------------------------------------------------- launches
inline void act_forward_launch(int act, mi64 P, mi64 Nc, int C, int n, float* Z, const float* bias, float* A,
                               float* S1, float* S2, float* S3, void* stream) {
  if (P * n == 0) return;
  launch_kernel(&m_act_forward, dim3(mblocks(P * n)), dim3(kMThreads), stream, act, P, Nc, C, n, Z, bias, A, S1, S2,
                S3);
}
inline void rforward_launch(mi64 P, mi64 Nc, int C, int n, float* RZ, const float* Vb, const float* S1,
                            const float* S2, const float* Z, float* RA, void* stream) {
  if (P * n == 0) return;
  launch_kernel(&m_rforward, dim3(mblocks(P * n)), dim3(kMThreads), stream, P, Nc, C, n, RZ, Vb, S1, S2, Z, RA);
}
inline void delta_launch(mi64 P, mi64 Nc, int C, int n, const float* G, const float* S1, const float* S2,
                         const float* S3, const float* Z, const float* RZ, const float* RG, float* D, float* RD,
                         void* stream) {
  if (P * n == 0) return;
  launch_kernel(&m_delta, dim3(mblocks(P * n)), dim3(kMThreads), stream, P, Nc, C, n, G, S1, S2, S3, Z, RZ, RG, D,
                RD);
}
inline void colsum_launch(mi64 rows, int n, const float* M, float* out, void* stream) {
  if (n == 0) return;
  launch_kernel(&m_colsum, dim3((unsigned)mceil_div(n, 32)), dim3(32, 8), stream, rows, n, M, out);
}
inline void head_launch(const HeadParams& h, const float* out, float* g, double* loss, void* stream) {
  launch_kernel(&m_head, dim3(1), dim3(kMThreads), stream, h, out, g, loss);
}
inline void rhead_launch(const HeadParams& h, const float* out, const float* rout, float* rg, void* stream) {
  if (h.P == 0) return;
  launch_kernel(&m_rhead, dim3(mblocks(h.P)), dim3(kMThreads), stream, h, out, rout, rg);
}
inline void add_decay_launch(mi64 n, double wd, const float* add, float* out, void* stream) {
  if (n == 0) return;
  launch_kernel(&m_add_decay, dim3(mblocks(n)), dim3(kMThreads), stream, n, wd, add, out);
}
inline void perturb_launch(mi64 M, mi64 P, int k, mi64 ld, const float* theta0, const float* dirs,
                           const float* coords, float* Theta, void* stream) {
  if (M * P == 0) return;
  launch_kernel(&m_perturb, dim3(mblocks(M * P)), dim3(kMThreads), stream, M, P, k, ld, theta0, dirs, coords, Theta);
}
inline void sumsq_launch(mi64 M, mi64 P, mi64 ld, const float* Theta, double* sq, void* stream) {
  if (M == 0) return;
  launch_kernel(&m_sumsq, dim3((unsigned)M), dim3(kMThreads), stream, P, ld, Theta, sq);
}

// ============================================================================ pipeline
// Host code: the network, the row structure, the workspace (device pointers carved
// from one float block), and the passes.

struct MNet {
  std::vector<int> widths;  // L + 1
  std::vector<int> acts;    // L
  std::vector<mi64> w_off, b_off;
  mi64 nparams = 0;
  int layers() const { return (int)acts.size(); }
  int max_width() const {
    int m = 0;
    for (int w : widths) m = w > m ? w : m;
    return m;
  }
};

struct MRows {
  mi64 P = 0, Nc = 0;
  int C = 0;
  mi64 R() const { return P + (mi64)C * Nc; }
};

struct MWork {
  float* x = nullptr;  // R × d_in (channel rows: unit vectors)
  std::vector<float*> z, a, s1, s2, s3, rz, ra;  // a[0] = x
  float *g = nullptr, *gn = nullptr, *rg = nullptr, *rgn = nullptr, *d = nullptr, *rd = nullptr;
};

// Carves the workspace from `base` (floats, 16-byte aligned; null: sizes only) and
// returns the number of floats needed. The input block x is included.
inline std::size_t carve_work(const MNet& net, const MRows& rows, float* base, MWork* w) {
  std::size_t off = 0;
  auto take = [&](mi64 count) -> float* {
    float* p = base ? base + off : nullptr;
    off += ((std::size_t)count + 3) / 4 * 4;
    return p;
  };
  const int L = net.layers();
  const mi64 R = rows.R(), P = rows.P;
  MWork tmp;
  MWork& ws = w ? *w : tmp;
  ws.z.assign(L, nullptr);
  ws.a.assign(L + 1, nullptr);
  ws.s1.assign(L, nullptr);
  ws.s2.assign(L, nullptr);
  ws.s3.assign(L, nullptr);
  ws.rz.assign(L, nullptr);
  ws.ra.assign(L + 1, nullptr);
  ws.x = take(R * net.widths[0]);
  ws.a[0] = ws.x;
  for (int l = 0; l < L; ++l) {
    const mi64 no = net.widths[l + 1];
    ws.z[l] = take(R * no);
    ws.a[l + 1] = take(R * no);
    ws.s1[l] = take(P * no);
    ws.s2[l] = take(P * no);
    ws.s3[l] = rows.C > 0 ? take(P * no) : nullptr;
    ws.rz[l] = take(R * no);
    ws.ra[l + 1] = take(R * no);
  }
  const mi64 big = R * net.max_width();
  ws.g = take(big);
  ws.gn = take(big);
  ws.rg = take(big);
  ws.rgn = take(big);
  ws.d = take(big);
  ws.rd = take(big);
  return off;
}

// Row-major C(m×n) = α·op(A)·op(B) + β·C with packed leading dimensions.
inline void mgemm(bool ta, bool tb, mi64 m, mi64 n, mi64 k, const float* a, mi64 lda, const float* b, mi64 ldb,
                  float beta, float* c, mi64 ldc, void* stream) {
  linalg::GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = (std::size_t)m;
  g.n = (std::size_t)n;
  g.k = (std::size_t)k;
  g.alpha = 1.0f;
  g.a = a;
  g.lda = (std::size_t)lda;
  g.b = b;
  g.ldb = (std::size_t)ldb;
  g.beta = beta;
  g.c = c;
  g.ldc = (std::size_t)ldc;
  gemm_dev(g, stream);
}

enum MMode : int { kModeLoss = 0, kModeGrad = 1, kModeHvp = 2 };

// One pass over the batch (device pointers). Loss: *loss; Grad: also ∂L/∂θ into out;
// Hvp: H·v into out (every entry written). No weight decay (the caller adds it).
inline void run_pass(const MNet& net, const MRows& rows, const MWork& w, const HeadParams& head, int mode,
                     const float* theta, const float* v, float* out, double* loss, void* stream) {
  const int L = net.layers();
  const mi64 R = rows.R(), P = rows.P, Nc = rows.Nc;
  const int C = rows.C;
  const bool grad = mode != kModeLoss, hvp = mode == kModeHvp;
  const bool want_s1 = C > 0 || grad, want_s2 = (grad && C > 0) || hvp, want_s3 = hvp && C > 0;
  for (int l = 0; l < L; ++l) {
    const int ni = net.widths[l], no = net.widths[l + 1];
    mgemm(false, true, R, no, ni, w.a[l], ni, theta + net.w_off[l], ni, 0.0f, w.z[l], no, stream);
    act_forward_launch(net.acts[l], P, Nc, C, no, w.z[l], theta + net.b_off[l], w.a[l + 1],
                       want_s1 ? w.s1[l] : nullptr, want_s2 ? w.s2[l] : nullptr, want_s3 ? w.s3[l] : nullptr, stream);
  }
  head_launch(head, w.a[L], grad ? w.g : nullptr, loss, stream);
  if (!grad) return;
  if (hvp) {
    for (int l = 0; l < L; ++l) {
      const int ni = net.widths[l], no = net.widths[l + 1];
      mgemm(false, true, R, no, ni, w.a[l], ni, v + net.w_off[l], ni, 0.0f, w.rz[l], no, stream);
      if (l > 0) mgemm(false, true, R, no, ni, w.ra[l], ni, theta + net.w_off[l], ni, 1.0f, w.rz[l], no, stream);
      rforward_launch(P, Nc, C, no, w.rz[l], v + net.b_off[l], w.s1[l], w.s2[l], w.z[l], w.ra[l + 1], stream);
    }
    rhead_launch(head, w.a[L], w.ra[L], w.rg, stream);
  }
  float *G = w.g, *Gn = w.gn, *RG = w.rg, *RGn = w.rgn;
  for (int l = L - 1; l >= 0; --l) {
    const int ni = net.widths[l], no = net.widths[l + 1];
    const float* W = theta + net.w_off[l];
    delta_launch(P, Nc, C, no, G, w.s1[l], want_s2 ? w.s2[l] : nullptr, want_s3 ? w.s3[l] : nullptr, w.z[l],
                 hvp ? w.rz[l] : nullptr, hvp ? RG : nullptr, w.d, hvp ? w.rd : nullptr, stream);
    float* ow = out + net.w_off[l];
    float* ob = out + net.b_off[l];
    if (!hvp) {
      mgemm(true, false, no, ni, R, w.d, no, w.a[l], ni, 0.0f, ow, ni, stream);
      colsum_launch(P, no, w.d, ob, stream);
      if (l > 0) mgemm(false, false, R, ni, no, w.d, no, W, ni, 0.0f, Gn, ni, stream);
    } else {
      mgemm(true, false, no, ni, R, w.rd, no, w.a[l], ni, 0.0f, ow, ni, stream);
      if (l > 0) mgemm(true, false, no, ni, R, w.d, no, w.ra[l], ni, 1.0f, ow, ni, stream);
      colsum_launch(P, no, w.rd, ob, stream);
      if (l > 0) {
        mgemm(false, false, R, ni, no, w.d, no, W, ni, 0.0f, Gn, ni, stream);
        mgemm(false, false, R, ni, no, w.rd, no, W, ni, 0.0f, RGn, ni, stream);
        mgemm(false, false, R, ni, no, w.d, no, v + net.w_off[l], ni, 1.0f, RGn, ni, stream);
        std::swap(RG, RGn);
      }
    }
    std::swap(G, Gn);
  }
}

// The losses (no weight decay) of M parameter points θ₀ + coords[q]·dirs into
// loss[0..M), and ‖θ_q‖² into sq[0..M) (when sq is not null). Theta: M × ld
// device floats (ld ≥ P, a multiple of 4), overwritten.
inline void run_grid_block(const MNet& net, const MRows& rows, const MWork& w, const HeadParams& head, mi64 M, int k,
                           const float* theta0, const float* dirs, const float* coords, float* Theta, mi64 ld,
                           double* loss, double* sq, void* stream) {
  const mi64 P = net.nparams;
  perturb_launch(M, P, k, ld, theta0, dirs, coords, Theta, stream);
  if (sq) sumsq_launch(M, P, ld, Theta, sq, stream);
  for (mi64 q = 0; q < M; ++q)
    run_pass(net, rows, w, head, kModeLoss, Theta + q * ld, nullptr, nullptr, loss + q, stream);
}

}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope

// ============================================================================ problems
// Host-side description of an objective's batch (shared by models.cu and the
// emulator tests): the input rows, targets and head parameters (device pointers of
// the head are left null for the caller to fill).
#include <climits>
#include <cmath>
#include <string>

#include "base/error.h"
#include "models/mlp.h"
#include "models/pinn.h"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {

struct MProblem {
  MNet net;
  MRows rows;
  std::vector<float> x;          // R × d_in, channel rows = unit vectors e_{k_c}
  std::vector<float> y;          // P × d_out (Mse, Bce)
  std::vector<int> labels;       // P (Ce)
  std::vector<double> ic_target; // PINN: sin x of the IC points
  HeadParams head;
  double weight_decay = 0.0;
};

inline void check_int(std::size_t v, const char* what) {
  NNSCOPE_CHECK(v <= std::size_t(INT_MAX), ErrorCode::TooLarge,
                std::string("the CUDA model kernels take ") + what + " up to 2^31-1 (got " + std::to_string(v) + ")");
}

inline MNet make_mnet(const std::vector<std::size_t>& widths, models::Activation hidden, models::Activation output) {
  MNet net;
  const std::size_t L = widths.size() - 1;
  mi64 off = 0;
  for (std::size_t w : widths) {
    check_int(w, "layer widths");
    net.widths.push_back((int)w);
  }
  for (std::size_t l = 0; l < L; ++l) {
    net.acts.push_back((int)(l + 1 == L ? output : hidden));
    net.w_off.push_back(off);
    off += (mi64)widths[l + 1] * (mi64)widths[l];
    net.b_off.push_back(off);
    off += (mi64)widths[l + 1];
  }
  net.nparams = off;
  return net;
}

// The dataset (or the subset `indices`) of an MLP objective. The spec and data must
// already be validated (the CPU MlpObjective's constructor does that).
inline MProblem mlp_problem(const models::MlpSpec& spec, const models::Dataset& data,
                            const std::vector<std::size_t>& indices) {
  MProblem p;
  p.net = make_mnet(spec.widths, spec.hidden, spec.output);
  const std::size_t n = indices.empty() ? data.n : indices.size();
  const std::size_t d_in = spec.widths.front(), d_out = spec.widths.back();
  check_int(n, "sample counts");
  p.rows.P = (mi64)n;
  p.rows.Nc = 0;
  p.rows.C = 0;
  auto row = [&](std::size_t i) { return indices.empty() ? i : indices[i]; };
  p.x.resize(n * d_in);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d_in; ++c) p.x[i * d_in + c] = data.inputs[row(i) * d_in + c];
  const bool ce = spec.loss == models::LossKind::SoftmaxCrossEntropy;
  if (ce) {
    p.labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) p.labels[i] = data.labels[row(i)];
  } else {
    p.y.resize(n * d_out);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < d_out; ++c) p.y[i * d_out + c] = data.targets[row(i) * d_out + c];
  }
  HeadParams& h = p.head;
  h.kind = spec.loss == models::LossKind::Mse ? kHeadMse : spec.loss == models::LossKind::BinaryCrossEntropy ? kHeadBce : kHeadCe;
  h.P = (mi64)n;
  h.Nc = 0;
  h.d_out = (int)d_out;
  h.scale = ce ? 1.0 / double(n) : 1.0 / (double(n) * double(d_out));
  p.weight_decay = spec.weight_decay;
  return p;
}

// The PINN's rows: IC (x, 0), BC (0, t) then (2π, t), collocation (x, t) with two
// channels (∂/∂x, ∂/∂t). Points must already be validated.
inline MProblem pinn_problem(const models::PinnSpec& spec, const models::PinnPoints& pts) {
  constexpr double kTwoPi = 6.28318530717958647692;
  MProblem p;
  p.net = make_mnet(spec.widths, spec.activation, models::Activation::Identity);
  const std::size_t ni = pts.ic_x.size(), nb = pts.bc_t.size(), nf = pts.f_x.size();
  const std::size_t P = ni + 2 * nb + nf;
  check_int(P + 2 * nf, "PINN point counts");
  p.rows.P = (mi64)P;
  p.rows.Nc = (mi64)nf;
  p.rows.C = 2;
  const std::size_t R = P + 2 * nf;
  p.x.assign(R * 2, 0.0f);
  for (std::size_t i = 0; i < ni; ++i) {
    p.x[2 * i] = float(pts.ic_x[i]);
    p.x[2 * i + 1] = 0.0f;
  }
  for (std::size_t j = 0; j < nb; ++j) {
    p.x[2 * (ni + j)] = 0.0f;
    p.x[2 * (ni + j) + 1] = float(pts.bc_t[j]);
    p.x[2 * (ni + nb + j)] = float(kTwoPi);
    p.x[2 * (ni + nb + j) + 1] = float(pts.bc_t[j]);
  }
  for (std::size_t i = 0; i < nf; ++i) {
    p.x[2 * (ni + 2 * nb + i)] = float(pts.f_x[i]);
    p.x[2 * (ni + 2 * nb + i) + 1] = float(pts.f_t[i]);
    p.x[2 * (P + i) + 0] = 1.0f;       // channel 0: ∂/∂x
    p.x[2 * (P + nf + i) + 1] = 1.0f;  // channel 1: ∂/∂t
  }
  p.ic_target.resize(ni);
  for (std::size_t i = 0; i < ni; ++i) p.ic_target[i] = std::sin(pts.ic_x[i]);
  HeadParams& h = p.head;
  h.kind = kHeadPinn;
  h.P = (mi64)P;
  h.Nc = (mi64)nf;
  h.d_out = 1;
  h.n_ic = (mi64)ni;
  h.n_bc = (mi64)nb;
  h.beta = spec.beta;
  h.s_ic = 1.0 / double(ni);
  h.s_bc = nb == 0 ? 0.0 : 1.0 / double(nb);
  h.s_res = spec.lambda / double(nf);
  p.weight_decay = spec.weight_decay;
  return p;
}

}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
