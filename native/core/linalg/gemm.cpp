// nnscope core: SGEMM on the CPU — the blocked, packed, multi-threaded driver and
// the portable (generic-tier) micro-kernel. The AVX2 and AVX-512 micro-kernels
// are in gemm_avx2.cpp / gemm_avx512.cpp; gemm_kernels.h has the contracts.
//
// Loop nest (Goto/BLIS; row-major C, vectors run along n):
//
//   for jc over n in blocks of NC (≤ 4096 columns)
//     for pc over k in blocks of KC (the k partition depends on k only)
//       for ic over m in blocks of MB (≤ 2048 rows)
//         pack op(B)[pc, jc] (once per pc) and op(A)[ic, pc] into shared
//           buffers, in parallel over panel groups                     — barrier
//         tasks over a grid of the mc×nc block of C: each task sweeps a
//           TM×TN tile; per mr-row A panel (L1-resident) all nr-column B
//           panels of its kc×TN B block (L2-resident)                  — barrier
//
// Determinism: threads partition only C. Every element of C accumulates its k
// products in the same order (fixed KC blocks in order, an fma chain inside a
// block) and is updated with the same expression whatever the tile shape, so the
// result is bit-identical for every thread count and task grid.
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/buffer.h"
#include "base/cpu.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#include "linalg/gemm_kernels.h"
#include "linalg/gemm_pack.h"

namespace nnscope::linalg {
namespace detail {
namespace {

// ---------------------------------------------------------------- generic tier
// Plain C++ that GCC/Clang vectorise at the SSE2 baseline: 4×8 floats of
// accumulators = 8 xmm registers.
constexpr int kGenMR = 4, kGenNR = 8;

inline void micro_generic(std::size_t kc, const float* __restrict a, const float* __restrict b, float* c,
                          std::size_t ldc, float alpha, float beta, std::size_t mr, std::size_t nr) {
  float acc[kGenMR][kGenNR];
  for (int i = 0; i < kGenMR; ++i)
    for (int j = 0; j < kGenNR; ++j) acc[i][j] = 0.0f;
  for (std::size_t p = 0; p < kc; ++p) {
    for (int i = 0; i < kGenMR; ++i) {
      const float av = a[i];
      for (int j = 0; j < kGenNR; ++j) acc[i][j] += av * b[j];
    }
    a += kGenMR;
    b += kGenNR;
  }
  for (std::size_t i = 0; i < mr; ++i) {
    float* cr = c + i * ldc;
    if (beta == 0.0f) {
      for (std::size_t j = 0; j < nr; ++j) cr[j] = alpha * acc[i][j];
    } else {
      for (std::size_t j = 0; j < nr; ++j) cr[j] = alpha * acc[i][j] + beta * cr[j];
    }
  }
}

void macro_generic(std::size_t rows, std::size_t cols, std::size_t kc, const float* ap, const float* bp,
                   float alpha, float beta, float* c, std::size_t ldc) {
  for (std::size_t ir = 0; ir < rows; ir += kGenMR) {
    const std::size_t mr = std::min<std::size_t>(kGenMR, rows - ir);
    for (std::size_t jr = 0; jr < cols; jr += kGenNR) {
      const std::size_t nr = std::min<std::size_t>(kGenNR, cols - jr);
      micro_generic(kc, ap + ir * kc, bp + jr * kc, c + ir * ldc + jr, ldc, alpha, beta, mr, nr);
    }
  }
}

void pack_a_generic(bool trans, const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* out) {
  pack_a_panels<kGenMR>(trans, a, lda, rows, kc, out);
}
void pack_b_generic(bool trans, const float* b, std::size_t ldb, std::size_t cols, std::size_t kc, float* out) {
  pack_b_panels<kGenNR>(trans, b, ldb, cols, kc, out);
}

const GemmKernel kGeneric = {"generic 4x8", kGenMR, kGenNR, 256, 512, pack_a_generic, pack_b_generic, macro_generic};

}  // namespace

const GemmKernel& gemm_kernel_generic() { return kGeneric; }

const GemmKernel& gemm_kernel() {
  switch (active_isa()) {
    case Isa::Avx512:
      if (const GemmKernel* k = gemm_kernel_avx512()) return *k;
      [[fallthrough]];
    case Isa::Avx2:
      if (const GemmKernel* k = gemm_kernel_avx2()) return *k;
      [[fallthrough]];
    case Isa::Generic:
      break;
  }
  return kGeneric;
}

// Internal gemv with contiguous x and y (blas1.cpp).
void gemv_contiguous(bool trans, std::size_t m, std::size_t n, float alpha, const float* a, std::size_t lda,
                     const float* x, float beta, float* y, const OpContext& ctx);

}  // namespace detail

namespace {

using detail::GemmKernel;

constexpr std::size_t kMaxNC = 4096;  // columns of op(B) packed per jc block
constexpr std::size_t kMaxMB = 2048;  // rows of op(A) packed per ic block
// Below this many multiply-adds a call runs on the calling thread only.
constexpr double kParallelMinFma = 96.0 * 96.0 * 96.0;

// Scratch for the packed blocks, cached per calling thread (grow-only, freed at
// thread exit). A re-entrant call on the same thread (e.g. from a progress
// callback) falls back to a fresh allocation.
struct Scratch {
  AlignedBuffer<float> a, b;
  bool busy = false;
};
thread_local Scratch tls_scratch;

struct ScratchLease {
  Scratch* s;
  Scratch own;
  ScratchLease() : s(&tls_scratch) {
    if (s->busy) s = &own;
    s->busy = true;
  }
  ~ScratchLease() { s->busy = false; }
};

std::size_t round_up(std::size_t x, std::size_t m) { return (x + m - 1) / m * m; }
std::size_t ceil_div(std::size_t x, std::size_t m) { return (x + m - 1) / m; }

template <typename F>
void run_chunks(std::size_t n, bool parallel, const F& fn) {
  if (!parallel || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
  } else {
    ThreadPool::global().run(n, fn);
  }
}

// C = beta·C on an m×n view (beta == 0 writes zeros without reading).
void scale_c(std::size_t m, std::size_t n, float beta, float* c, std::size_t ldc) {
  if (beta == 1.0f) return;
  for (std::size_t i = 0; i < m; ++i) {
    float* r = c + i * ldc;
    if (beta == 0.0f)
      std::memset(r, 0, n * sizeof(float));
    else
      for (std::size_t j = 0; j < n; ++j) r[j] *= beta;
  }
}

// m == 1 or n == 1: a matrix-vector product, no packing.
void gemm_as_gemv(const GemmArgs& g, const OpContext& ctx) {
  std::vector<float> xs, ys;
  if (g.m == 1) {
    // C[0, :] (contiguous, n) = alpha · op(B)ᵀ · op(A)[0, :] + beta · C[0, :]
    const float* x = g.a;
    if (g.trans_a && g.k > 1 && g.lda != 1) {
      xs.resize(g.k);
      for (std::size_t p = 0; p < g.k; ++p) xs[p] = g.a[p * g.lda];
      x = xs.data();
    }
    // op(B) = B (k×n): y = Bᵀx, a transposed gemv; op(B) = Bᵀ (B n×k): y = Bx.
    if (g.trans_b)
      detail::gemv_contiguous(false, g.n, g.k, g.alpha, g.b, g.ldb, x, g.beta, g.c, ctx);
    else
      detail::gemv_contiguous(true, g.k, g.n, g.alpha, g.b, g.ldb, x, g.beta, g.c, ctx);
    return;
  }
  // n == 1: C[:, 0] (stride ldc) = alpha · op(A) · op(B)[:, 0] + beta · C[:, 0]
  const float* x = g.b;
  if (!g.trans_b && g.k > 1 && g.ldb != 1) {
    xs.resize(g.k);
    for (std::size_t p = 0; p < g.k; ++p) xs[p] = g.b[p * g.ldb];
    x = xs.data();
  }
  float* y = g.c;
  const bool strided = g.ldc != 1 && g.m > 1;
  if (strided) {
    ys.resize(g.m);
    if (g.beta != 0.0f)
      for (std::size_t i = 0; i < g.m; ++i) ys[i] = g.c[i * g.ldc];
    y = ys.data();
  }
  if (g.trans_a)  // A is k×m: y = Aᵀx
    detail::gemv_contiguous(true, g.k, g.m, g.alpha, g.a, g.lda, x, g.beta, y, ctx);
  else
    detail::gemv_contiguous(false, g.m, g.k, g.alpha, g.a, g.lda, x, g.beta, y, ctx);
  if (strided)
    for (std::size_t i = 0; i < g.m; ++i) g.c[i * g.ldc] = ys[i];
}

}  // namespace

void sgemm_cpu(const GemmArgs& g, const OpContext& ctx) {
  const std::size_t m = g.m, n = g.n, k = g.k;
  if (m == 0 || n == 0) return;
  ctx.check();
  if (k == 0 || g.alpha == 0.0f) {  // A and B are not read (as BLAS)
    scale_c(m, n, g.beta, g.c, g.ldc);
    return;
  }
  if (m == 1 || n == 1) {
    gemm_as_gemv(g, ctx);
    return;
  }

  const GemmKernel& K = detail::gemm_kernel();
  const std::size_t MR = std::size_t(K.mr), NR = std::size_t(K.nr);

  // k partition: blocks of (nearly) equal depth ≤ K.kc; depends on k only.
  const std::size_t nk = ceil_div(k, K.kc);
  const std::size_t kcb = ceil_div(k, nk);
  const std::size_t NC = std::min(round_up(n, NR), kMaxNC);
  const std::size_t MB = std::min(round_up(m, MR), kMaxMB);

  const int threads = ThreadPool::global().size();
  const bool parallel = threads > 1 && double(m) * double(n) * double(k) >= kParallelMinFma;

  ScratchLease lease;
  Scratch& s = *lease.s;
  s.a.resize(checked_mul(MB, kcb));
  s.b.resize(checked_mul(NC, kcb));
  float* const ap = s.a.data();
  float* const bp = s.b.data();

  const double total = 2.0 * double(m) * double(n) * double(k);
  double done = 0;

  for (std::size_t jc = 0; jc < n; jc += NC) {
    const std::size_t nc = std::min(NC, n - jc);
    const std::size_t nb_panels = ceil_div(nc, NR);
    for (std::size_t kb = 0; kb < nk; ++kb) {
      const std::size_t pc = kb * kcb;
      const std::size_t kc = std::min(kcb, k - pc);
      const float beta = kb == 0 ? g.beta : 1.0f;
      for (std::size_t ic = 0; ic < m; ic += MB) {
        ctx.check();
        const std::size_t mc = std::min(MB, m - ic);
        const std::size_t na_panels = ceil_div(mc, MR);

        // ---- pack (B once per pc block, A per ic block), ~64 K floats per chunk
        const std::size_t a_group = std::max<std::size_t>(1, (std::size_t(1) << 16) / (MR * kc));
        const std::size_t b_group = std::max<std::size_t>(1, (std::size_t(1) << 16) / (NR * kc));
        const std::size_t a_chunks = ceil_div(na_panels, a_group);
        const std::size_t b_chunks = ic == 0 ? ceil_div(nb_panels, b_group) : 0;
        run_chunks(a_chunks + b_chunks, parallel, [&](std::size_t t) {
          ctx.check();
          if (t < a_chunks) {
            const std::size_t q0 = t * a_group, q1 = std::min(na_panels, q0 + a_group);
            const std::size_t r0 = q0 * MR, rows = std::min(mc, q1 * MR) - r0;
            const float* src = g.trans_a ? g.a + pc * g.lda + (ic + r0) : g.a + (ic + r0) * g.lda + pc;
            K.pack_a(g.trans_a, src, g.lda, rows, kc, ap + r0 * kc);
          } else {
            t -= a_chunks;
            const std::size_t q0 = t * b_group, q1 = std::min(nb_panels, q0 + b_group);
            const std::size_t c0 = q0 * NR, cols = std::min(nc, q1 * NR) - c0;
            const float* src = g.trans_b ? g.b + (jc + c0) * g.ldb + pc : g.b + pc * g.ldb + (jc + c0);
            K.pack_b(g.trans_b, src, g.ldb, cols, kc, bp + c0 * kc);
          }
        });

        // ---- compute: a grid of TM×TN tiles of the mc×nc block
        std::size_t n_tiles = ceil_div(nc, K.nb);
        const std::size_t tn = round_up(ceil_div(nc, n_tiles), NR);
        n_tiles = ceil_div(nc, tn);
        // Rows per tile: 8 A panels, fewer when that leaves too few tasks.
        std::size_t tm_panels = 8;
        if (parallel) {
          const std::size_t want = 4 * std::size_t(threads);
          while (tm_panels > 1 && ceil_div(na_panels, tm_panels) * n_tiles < want) tm_panels /= 2;
        }
        const std::size_t tm = tm_panels * MR;
        const std::size_t m_tiles = ceil_div(mc, tm);
        float* const cblk = g.c + ic * g.ldc + jc;
        run_chunks(m_tiles * n_tiles, parallel, [&](std::size_t t) {
          ctx.check();
          const std::size_t tj = t / m_tiles, ti = t % m_tiles;
          const std::size_t i0 = ti * tm, j0 = tj * tn;
          const std::size_t rows = std::min(tm, mc - i0), cols = std::min(tn, nc - j0);
          K.macro(rows, cols, kc, ap + i0 * kc, bp + j0 * kc, g.alpha, beta, cblk + i0 * g.ldc + j0, g.ldc);
        });

        done += 2.0 * double(mc) * double(nc) * double(kc);
        ctx.report(done, total);
      }
    }
  }
}

}  // namespace nnscope::linalg
