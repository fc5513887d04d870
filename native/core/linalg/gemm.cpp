// nnscope core: SGEMM on the CPU — the blocked, packed, multi-threaded driver and
// the portable (generic-tier) micro-kernel. The AVX2 and AVX-512 micro-kernels
// and packers are in gemm_avx2.cpp / gemm_avx512.cpp; gemm_kernels.h has the
// contracts and packed layouts.
//
// Loop nest (Goto/BLIS; row-major C, vectors run along n):
//
//   for jc over n in balanced blocks of ≤ ~4096 columns
//     for pc over k in blocks of ≤ kc (the k partition depends on k only)
//       for ic over m in balanced blocks of ≤ ~2048 rows
//         one pool job ("step"):
//           pack jobs: op(B)[pc, jc] (first ic block only) and op(A)[ic, pc]
//             into shared buffers, ~64 Ki floats per job;
//           tiles: a grid over the mc×nc block of C, TM rows × TN columns
//             (TN ≤ K.nb so the kc×TN B block stays in L2); a tile sweeps, per
//             mr-row A panel (L1), every nr-column B panel of its block.
//           A tile first makes sure the pack jobs it reads are done (claiming
//           unclaimed ones itself, waiting for ones in progress), so packing and
//           computing overlap without a barrier between them. Pack jobs are
//           listed first, so they are claimed before any tile.
//         report progress; the next step starts after this one (its packing
//         overwrites the buffers).
//
// Small problems skip parts of this: m·n·k ≤ 512 runs direct loops (no
// packing), m == 1 or n == 1 goes to gemv, and a serial call whose B fits one L2
// block packs everything once per k block and sweeps it without tiles or jobs.
//
// Determinism: threads partition only C. Every element of C accumulates its k
// products in the same order (fixed k blocks in order, an fma chain inside a
// block) and is updated with the same expression whatever the tile shape or
// position, so the result is bit-identical for every thread count and task grid.
// The path taken (tiny / gemv / packed) depends on the shape only.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/buffer.h"
#include "base/cpu.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#include "linalg/gemm_kernels.h"
#include "linalg/gemm_pack.h"

#if defined(__GNUC__) || defined(__clang__)
#define NNSCOPE_NOINLINE __attribute__((noinline))
#else
#define NNSCOPE_NOINLINE
#endif

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
    float bv[kGenNR];
    for (int j = 0; j < kGenNR; ++j) bv[j] = b[j];
    for (int i = 0; i < kGenMR; ++i) {
      const float av = a[i];
      for (int j = 0; j < kGenNR; ++j) acc[i][j] += av * bv[j];
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

const GemmKernel& gemm_kernel() { return select_kernel(gemm_kernel_avx512, gemm_kernel_avx2, kGeneric); }

// Internal gemv with contiguous x and y (blas1.cpp).
void gemv_contiguous(bool trans, std::size_t m, std::size_t n, float alpha, const float* a, std::size_t lda,
                     const float* x, float beta, float* y, const OpContext& ctx);

}  // namespace detail

namespace {

using detail::GemmKernel;

constexpr std::size_t kMaxNC = 4096;  // columns of op(B) packed per jc block (about)
constexpr std::size_t kMaxMB = 2048;  // rows of op(A) packed per ic block (about)
// Up to this many multiply-adds: direct loops without packing (measured: the
// packed path's fixed cost, ~0.3 µs, wins from about 8×8×8 up).
constexpr double kTinyFma = 512;
// Below this many multiply-adds a call runs on the calling thread only (waking a
// pool worker costs ~15 µs here; measured break-even near 110³).
constexpr double kParallelMinFma = 1.5e6;

// Scratch for the packed blocks. Released buffers go back to a small
// process-wide free list (grow-only buffers, at most kKeep kept), so memory is
// bounded by the number of concurrent calls, not by the threads that ever called.
struct Scratch {
  AlignedBuffer<float> a, b;
};

class ScratchLease {
 public:
  ScratchLease() {
    {
      std::lock_guard<std::mutex> lock(mu());
      auto& f = free_list();
      if (!f.empty()) {
        s_ = std::move(f.back());
        f.pop_back();
      }
    }
    if (!s_) s_.reset(new Scratch);
  }
  ~ScratchLease() {
    std::lock_guard<std::mutex> lock(mu());
    auto& f = free_list();
    if (f.size() < kKeep) f.push_back(std::move(s_));
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  Scratch& operator*() { return *s_; }

 private:
  static constexpr std::size_t kKeep = 4;
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<Scratch>>& free_list() {
    static std::vector<std::unique_ptr<Scratch>> f;
    return f;
  }
  std::unique_ptr<Scratch> s_;
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

// Tiny products (m·n·k ≤ kTinyFma): direct loops, no packing. Row i
// of C accumulates in a small buffer, k in order.
NNSCOPE_NOINLINE void gemm_tiny(const GemmArgs& g) {
  constexpr std::size_t kW = 64;
  const std::size_t m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb, ldc = g.ldc;
  const bool ta = g.trans_a, tb = g.trans_b;
  const float alpha = g.alpha, beta = g.beta;
  const float* const a = g.a;
  const float* const b = g.b;
  float* const c = g.c;
  float acc[kW];
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j0 = 0; j0 < n; j0 += kW) {
      const std::size_t w = std::min(kW, n - j0);
      for (std::size_t j = 0; j < w; ++j) acc[j] = 0.0f;
      for (std::size_t p = 0; p < k; ++p) {
        const float av = ta ? a[p * lda + i] : a[i * lda + p];
        if (tb) {
          const float* bc = b + j0 * ldb + p;
          for (std::size_t j = 0; j < w; ++j) acc[j] += av * bc[j * ldb];
        } else {
          const float* br = b + p * ldb + j0;
          for (std::size_t j = 0; j < w; ++j) acc[j] += av * br[j];
        }
      }
      float* cr = c + i * ldc + j0;
      if (beta == 0.0f)
        for (std::size_t j = 0; j < w; ++j) cr[j] = alpha * acc[j];
      else
        for (std::size_t j = 0; j < w; ++j) cr[j] = alpha * acc[j] + beta * cr[j];
    }
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
  if (double(m) * double(n) * double(k) <= kTinyFma) {
    gemm_tiny(g);
    return;
  }

  const GemmKernel& K = detail::gemm_kernel();
  const std::size_t MR = std::size_t(K.mr), NR = std::size_t(K.nr);

  // k partition: blocks of (nearly) equal depth ≤ K.kc; depends on k only.
  const std::size_t nk = ceil_div(k, K.kc);
  const std::size_t kcb = ceil_div(k, nk);
  // jc and ic blocks of balanced sizes (no sliver of a block at the end).
  const std::size_t NC = round_up(ceil_div(n, ceil_div(n, kMaxNC)), NR);
  const std::size_t MB = round_up(ceil_div(m, ceil_div(m, kMaxMB)), MR);

  const double fmas = double(m) * double(n) * double(k);
  const int threads = fmas >= kParallelMinFma ? ThreadPool::global().size() : 1;
  const bool parallel = threads > 1;

  ScratchLease lease;
  Scratch& s = *lease;
  s.a.resize(checked_mul(MB, kcb));
  s.b.resize(checked_mul(NC, kcb));
  float* const ap = s.a.data();
  float* const bp = s.b.data();

  // Serial and small enough for one B block in L2: pack everything per k block
  // and sweep it (no tiles, no jobs: the fixed cost of a tiny call stays small).
  if (!parallel && m <= MB && n <= K.nb) {
    for (std::size_t kb = 0; kb < nk; ++kb) {
      ctx.check();
      const std::size_t pc = kb * kcb;
      const std::size_t kc = std::min(kcb, k - pc);
      K.pack_b(g.trans_b, g.trans_b ? g.b + pc : g.b + pc * g.ldb, g.ldb, n, kc, bp);
      K.pack_a(g.trans_a, g.trans_a ? g.a + pc * g.lda : g.a + pc, g.lda, m, kc, ap);
      K.macro(m, n, kc, ap, bp, g.alpha, kb == 0 ? g.beta : 1.0f, g.c, g.ldc);
      if (nk > 1) ctx.report(2.0 * double(m) * double(n) * double(pc + kc), 2.0 * fmas);
    }
    if (nk == 1) ctx.report(2.0 * fmas, 2.0 * fmas);
    return;
  }

  // Pack-job states (0 free, 1 being packed, 2 done), sized for the largest step.
  const std::size_t max_jobs = ceil_div(MB, MR) + ceil_div(NC, NR) + 2;
  std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[max_jobs]);

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
        const bool pack_b = ic == 0;  // B[pc, jc] serves every ic block

        // Tiles of the mc×nc block of C: TN columns (L2-sized B block) × TM rows.
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

        // Pack jobs of ~64 K floats: B first (every early tile needs B's first
        // columns), then A.
        const std::size_t a_group = std::max<std::size_t>(1, (std::size_t(1) << 16) / (MR * kc));
        const std::size_t b_group = std::max<std::size_t>(1, (std::size_t(1) << 16) / (NR * kc));
        const std::size_t a_jobs = ceil_div(na_panels, a_group);
        const std::size_t b_jobs = pack_b ? ceil_div(nb_panels, b_group) : 0;
        const std::size_t pack_jobs = b_jobs + a_jobs;
        for (std::size_t j = 0; j < pack_jobs; ++j) state[j].store(0, std::memory_order_relaxed);

        // Packs job j unless another thread has claimed it (never throws).
        auto pack = [&](std::size_t j) {
          int expected = 0;
          if (!state[j].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
          if (j < b_jobs) {
            const std::size_t q0 = j * b_group, q1 = std::min(nb_panels, q0 + b_group);
            const std::size_t c0 = q0 * NR, cols = std::min(nc, q1 * NR) - c0;
            const float* src = g.trans_b ? g.b + (jc + c0) * g.ldb + pc : g.b + pc * g.ldb + (jc + c0);
            K.pack_b(g.trans_b, src, g.ldb, cols, kc, bp + c0 * kc);
          } else {
            const std::size_t q0 = (j - b_jobs) * a_group, q1 = std::min(na_panels, q0 + a_group);
            const std::size_t r0 = q0 * MR, rows = std::min(mc, q1 * MR) - r0;
            const float* src = g.trans_a ? g.a + pc * g.lda + (ic + r0) : g.a + (ic + r0) * g.lda + pc;
            K.pack_a(g.trans_a, src, g.lda, rows, kc, ap + r0 * kc);
          }
          state[j].store(2, std::memory_order_release);
        };
        // Makes sure pack jobs [j0, j1] are done: claims unclaimed ones, waits
        // for those in progress (their owners are running and never block).
        auto need = [&](std::size_t j0, std::size_t j1) {
          for (std::size_t j = j0; j <= j1; ++j) {
            if (state[j].load(std::memory_order_acquire) == 2) continue;
            pack(j);
            for (int spins = 0; state[j].load(std::memory_order_acquire) != 2; ++spins)
              if (spins > 64) std::this_thread::yield();
          }
        };

        // One job: the pack jobs, then the tiles (tile-major over B blocks so
        // consecutive tiles share the L2-resident B block). A tile packs or waits
        // for what it reads; no barrier between packing and computing.
        float* const cblk = g.c + ic * g.ldc + jc;
        run_chunks(pack_jobs + m_tiles * n_tiles, parallel, [&](std::size_t t) {
          if (t < pack_jobs) return pack(t);
          t -= pack_jobs;
          ctx.check();
          const std::size_t tj = t / m_tiles, ti = t % m_tiles;
          const std::size_t i0 = ti * tm, j0 = tj * tn;
          const std::size_t rows = std::min(tm, mc - i0), cols = std::min(tn, nc - j0);
          if (pack_b) need(j0 / NR / b_group, (j0 + cols - 1) / NR / b_group);
          need(b_jobs + i0 / MR / a_group, b_jobs + (i0 + rows - 1) / MR / a_group);
          K.macro(rows, cols, kc, ap + i0 * kc, bp + j0 * kc, g.alpha, beta, cblk + i0 * g.ldc + j0, g.ldc);
        });

        done += 2.0 * double(mc) * double(nc) * double(kc);
        ctx.report(done, total);
      }
    }
  }
}

}  // namespace nnscope::linalg
