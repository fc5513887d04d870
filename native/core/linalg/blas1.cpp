// nnscope core: level-1 (sdot, snrm2, saxpy) and level-2 (sgemv) routines on the
// CPU — the multi-threaded drivers and the portable (generic-tier) kernels. The
// AVX2 / AVX-512 kernels are in blas1_avx2.cpp / blas1_avx512.cpp.
//
// Determinism: every driver cuts its work into chunks whose boundaries depend on
// the sizes only (never on the thread count), each chunk is computed by one
// kernel call, and partial results are combined in chunk order; so results are
// bit-identical for every thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/buffer.h"
#include "base/cpu.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#include "linalg/gemm_kernels.h"

namespace nnscope::linalg {
namespace detail {
namespace {

// ---------------------------------------------------------------- generic tier
// Eight independent accumulators so the compiler can vectorise without
// reassociating (the order is fixed by the source).
double dot_generic(std::size_t n, const float* x, const float* y) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int q = 0; q < 8; ++q) acc[q] += double(x[i + q]) * double(y[i + q]);
  for (int q = 0; i < n; ++i, ++q) acc[q] += double(x[i]) * double(y[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

double sumsq_generic(std::size_t n, const float* x) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int q = 0; q < 8; ++q) acc[q] += double(x[i + q]) * double(x[i + q]);
  for (int q = 0; i < n; ++i, ++q) acc[q] += double(x[i]) * double(x[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void axpy_generic(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

float row_dot_generic(std::size_t n, const float* a, const float* x) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int q = 0; q < 8; ++q) acc[q] += a[j + q] * x[j + q];
  for (int q = 0; j < n; ++j, ++q) acc[q] += a[j] * x[j];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void gemv_n_generic(std::size_t rows, std::size_t n, float alpha, const float* a, std::size_t lda, const float* x,
                    float beta, float* y) {
  for (std::size_t i = 0; i < rows; ++i) {
    const float d = row_dot_generic(n, a + i * lda, x);
    y[i] = beta == 0.0f ? alpha * d : alpha * d + beta * y[i];
  }
}

void gemv_t_generic(std::size_t rows, std::size_t cols, const float* a, std::size_t lda, const float* x,
                    float* acc) {
  for (std::size_t j = 0; j < cols; ++j) acc[j] = 0.0f;
  for (std::size_t i = 0; i < rows; ++i) {
    const float xi = x[i];
    const float* ar = a + i * lda;
    for (std::size_t j = 0; j < cols; ++j) acc[j] += xi * ar[j];
  }
}

const Blas1Kernel kGeneric = {"generic", dot_generic, sumsq_generic, axpy_generic, gemv_n_generic, gemv_t_generic};

}  // namespace

const Blas1Kernel& blas1_kernel_generic() { return kGeneric; }

const Blas1Kernel& blas1_kernel() { return select_kernel(blas1_kernel_avx512, blas1_kernel_avx2, kGeneric); }

namespace {

constexpr std::size_t kChunk = std::size_t(1) << 15;       // elements per level-1 chunk
constexpr std::size_t kParallelMin = std::size_t(1) << 17;  // level-1 sizes worth the pool
constexpr std::size_t kGemvCols = 1024;                     // column strip of a transposed gemv task
constexpr std::size_t kGemvParallelMin = std::size_t(1) << 18;  // m·n worth the pool

std::size_t ceil_div(std::size_t x, std::size_t m) { return (x + m - 1) / m; }

template <typename F>
void run_chunks(std::size_t n, bool parallel, const F& fn) {
  if (!parallel || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
  } else {
    ThreadPool::global().run(n, fn);
  }
}

// Sum over fixed chunks of f(offset, length), combined in chunk order.
template <typename F>
double chunked_sum(std::size_t n, const F& f) {
  if (n <= kChunk) return n == 0 ? 0.0 : f(0, n);
  const std::size_t chunks = ceil_div(n, kChunk);
  std::vector<double> part(chunks);
  run_chunks(chunks, n >= kParallelMin && num_threads() > 1, [&](std::size_t c) {
    const std::size_t lo = c * kChunk;
    part[c] = f(lo, std::min(kChunk, n - lo));
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

}  // namespace

// y (contiguous) = alpha·op(A)·x + beta·y; trans: A is m×n, x has m, y has n.
void gemv_contiguous(bool trans, std::size_t m, std::size_t n, float alpha, const float* a, std::size_t lda,
                     const float* x, float beta, float* y, const OpContext& ctx) {
  const std::size_t ylen = trans ? n : m, xlen = trans ? m : n;
  if (ylen == 0) return;
  ctx.check();
  if (xlen == 0 || alpha == 0.0f) {  // A and x not read
    for (std::size_t i = 0; i < ylen; ++i) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
    return;
  }
  const Blas1Kernel& K = blas1_kernel();
  const bool parallel = num_threads() > 1 && m * n >= kGemvParallelMin;
  if (!trans) {
    // Rows are independent: any row partition gives the same bits.
    const std::size_t rows_per = std::max<std::size_t>(4, (std::size_t(1) << 15) / n / 4 * 4);
    run_chunks(ceil_div(m, rows_per), parallel, [&](std::size_t c) {
      ctx.check();
      const std::size_t r0 = c * rows_per, rows = std::min(rows_per, m - r0);
      K.gemv_n(rows, n, alpha, a + r0 * lda, lda, x, beta, y + r0);
    });
    return;
  }
  // Transposed: column strips × (for tall, narrow A) row blocks whose partial
  // sums are added in row-block order. The grid depends on m and n only.
  const std::size_t strips = ceil_div(n, kGemvCols);
  std::size_t row_blocks = 1;
  if (m * n >= kGemvParallelMin && strips < 8)
    row_blocks = std::max<std::size_t>(1, std::min(ceil_div(8, strips), m / 512));
  const std::size_t rb_rows = ceil_div(m, row_blocks);
  std::vector<float> part(row_blocks > 1 ? row_blocks * n : n);
  run_chunks(strips * row_blocks, parallel, [&](std::size_t t) {
    ctx.check();
    const std::size_t s = t / row_blocks, rb = t % row_blocks;
    const std::size_t j0 = s * kGemvCols, cols = std::min(kGemvCols, n - j0);
    const std::size_t i0 = rb * rb_rows, rows = std::min(rb_rows, m - i0);
    float* acc = part.data() + rb * n + j0;
    K.gemv_t(rows, cols, a + i0 * lda + j0, lda, x + i0, acc);
  });
  for (std::size_t j = 0; j < n; ++j) {
    float s = part[j];
    for (std::size_t rb = 1; rb < row_blocks; ++rb) s += part[rb * n + j];
    y[j] = beta == 0.0f ? alpha * s : alpha * s + beta * y[j];
  }
}

}  // namespace detail

void sgemv_cpu(const GemvArgs& g, const OpContext& ctx) {
  detail::gemv_contiguous(g.trans, g.m, g.n, g.alpha, g.a, g.lda, g.x, g.beta, g.y, ctx);
}

double sdot_cpu(std::size_t n, const float* x, const float* y) {
  const detail::Blas1Kernel& K = detail::blas1_kernel();
  return detail::chunked_sum(n, [&](std::size_t lo, std::size_t len) { return K.dot(len, x + lo, y + lo); });
}

double snrm2_cpu(std::size_t n, const float* x) {
  const detail::Blas1Kernel& K = detail::blas1_kernel();
  return std::sqrt(detail::chunked_sum(n, [&](std::size_t lo, std::size_t len) { return K.sumsq(len, x + lo); }));
}

void saxpy_cpu(std::size_t n, float alpha, const float* x, float* y) {
  if (n == 0 || alpha == 0.0f) return;
  const detail::Blas1Kernel& K = detail::blas1_kernel();
  const std::size_t chunks = detail::ceil_div(n, detail::kChunk);
  detail::run_chunks(chunks, n >= detail::kParallelMin && num_threads() > 1, [&](std::size_t c) {
    const std::size_t lo = c * detail::kChunk;
    K.axpy(std::min(detail::kChunk, n - lo), alpha, x + lo, y + lo);
  });
}

}  // namespace nnscope::linalg
