// nnscope core, hessian family: the host Spaces (space.h) over float and double
// operators.
//
// Storage: `slots` vectors of length n in one 64-byte aligned buffer, each slot
// padded to a multiple of 64 bytes (so every slot is aligned); the slot block
// [first, first+count) is a count×n row-major matrix with leading dimension
// `stride`, which is what the GEMV-shaped kernels below sweep.
//
// Precision: float storage uses linalg's vectorised BLAS-1 (sdot_cpu / snrm2_cpu
// accumulate in float64, saxpy_cpu fuses multiply-add); double storage uses the
// small kernels here (eight independent accumulators, vectorisable at SSE2).
//
// Determinism: every reduction is cut into chunks whose boundaries depend on n
// and the block size only, partial sums are combined in chunk order, and every
// element-wise update is computed by one task; so the results are bit-identical
// for any thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"
#include "hessian/space.h"
#include "linalg/blas.h"

namespace nnscope::hessian {
namespace {

constexpr std::size_t kChunk = std::size_t(1) << 15;        // elements per BLAS-1 chunk
constexpr std::size_t kParallelMin = std::size_t(1) << 16;  // elements (× rows) worth the pool

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- kernels
double ddot(std::size_t n, const double* x, const double* y) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int q = 0; q < 8; ++q) acc[q] += x[i + q] * y[i + q];
  for (int q = 0; i < n; ++i, ++q) acc[q] += x[i] * y[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void daxpy(std::size_t n, double a, const double* x, double* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// Per-type single-threaded kernels on one chunk (len ≤ kChunk, so linalg's
// drivers run their kernel directly, without the pool).
template <typename T>
struct K;
template <>
struct K<float> {
  static double dot(std::size_t n, const float* x, const float* y) { return linalg::sdot_cpu(n, x, y); }
  static double sumsq(std::size_t n, const float* x) {
    const double r = linalg::snrm2_cpu(n, x);
    return r * r;
  }
  static void axpy(std::size_t n, double a, const float* x, float* y) { linalg::saxpy_cpu(n, float(a), x, y); }
};
template <>
struct K<double> {
  static double dot(std::size_t n, const double* x, const double* y) { return ddot(n, x, y); }
  static double sumsq(std::size_t n, const double* x) { return ddot(n, x, x); }
  static void axpy(std::size_t n, double a, const double* x, double* y) { daxpy(n, a, x, y); }
};

// Runs fn(c) for c < chunks, on the pool when the work is large enough.
template <typename F>
void run_chunks(std::size_t chunks, std::size_t work, const F& fn) {
  if (chunks <= 1 || work < kParallelMin || num_threads() <= 1) {
    for (std::size_t c = 0; c < chunks; ++c) fn(c);
  } else {
    ThreadPool::global().run(chunks, [&](std::size_t c) { fn(c); });
  }
}

// Chunk length for the GEMV-shaped block kernels: the block's chunk (rows × len)
// should stay in L2 (≈ 512 KiB) so that fused passes re-read it from cache; a
// power of two in [256, 8192] that depends on n-independent sizes only.
template <typename T>
std::size_t block_chunk(std::size_t rows) {
  const std::size_t budget = (std::size_t(512) << 10) / sizeof(T);
  std::size_t c = 8192;
  while (c > 256 && c * std::max<std::size_t>(rows, 1) > budget) c >>= 1;
  return c;
}

template <typename T>
class CpuSpace final : public Space {
 public:
  explicit CpuSpace(Operator<T>& op) : op_(op), n_(op.dim()) {
    constexpr std::size_t per_line = kAlign / sizeof(T);
    stride_ = ceil_div(std::max<std::size_t>(n_, 1), per_line) * per_line;
  }

  std::size_t dim() const override { return n_; }
  std::size_t slots() const override { return slots_; }
  bool single_precision() const override { return sizeof(T) == 4; }
  std::uint64_t products() const override { return products_; }

  void reserve(std::size_t count) override {
    if (count <= slots_) return;
    AlignedBuffer<T> next(checked_mul(count, stride_));
    if (slots_) std::memcpy(next.data(), data_.data(), slots_ * stride_ * sizeof(T));
    std::memset(static_cast<void*>(next.data() + slots_ * stride_), 0, (count - slots_) * stride_ * sizeof(T));
    data_ = std::move(next);
    slots_ = count;
  }

  void apply(std::size_t src, std::size_t dst, const OpContext& ctx) override {
    check_slot(src, "apply");
    check_slot(dst, "apply");
    NNSCOPE_CHECK(src != dst, ErrorCode::InvalidArgument, "hessian space: apply needs distinct source and target");
    ctx.check();
    T* y = slot(dst);
    op_.apply(slot(src), y, ctx);
    ++products_;
    const std::size_t bad = first_nonfinite(y, n_);
    if (bad < n_)
      fail(ErrorCode::NonFinite, "hessian: the operator's product #" + std::to_string(products_) + " contains " +
                                     (std::isnan(y[bad]) ? "NaN" : "Infinity") + " at index " +
                                     std::to_string(bad) + " (the Hessian-vector product is not finite)");
  }

  void load(std::size_t s, const double* host) override {
    check_slot(s, "load");
    T* x = slot(s);
    elementwise([&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) x[i] = T(host[i]);
    });
  }
  void store(std::size_t s, double* host) override {
    check_slot(s, "store");
    const T* x = slot(s);
    elementwise([&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) host[i] = double(x[i]);
    });
  }

  double dot(std::size_t a, std::size_t b) override {
    check_slot(a, "dot");
    check_slot(b, "dot");
    const T *x = slot(a), *y = slot(b);
    return chunked_sum([&](std::size_t lo, std::size_t len) { return K<T>::dot(len, x + lo, y + lo); });
  }
  double norm(std::size_t a) override {
    check_slot(a, "norm");
    const T* x = slot(a);
    return std::sqrt(chunked_sum([&](std::size_t lo, std::size_t len) { return K<T>::sumsq(len, x + lo); }));
  }
  void axpy(double alpha, std::size_t a, std::size_t b) override {
    check_slot(a, "axpy");
    check_slot(b, "axpy");
    if (alpha == 0.0) return;
    const T* x = slot(a);
    T* y = slot(b);
    elementwise([&](std::size_t lo, std::size_t hi) { K<T>::axpy(hi - lo, alpha, x + lo, y + lo); });
  }
  void scale(std::size_t a, double alpha) override {
    check_slot(a, "scale");
    T* x = slot(a);
    elementwise([&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) x[i] = T(double(x[i]) * alpha);
    });
  }
  void copy(std::size_t src, std::size_t dst) override {
    check_slot(src, "copy");
    check_slot(dst, "copy");
    if (src != dst) std::memcpy(slot(dst), slot(src), n_ * sizeof(T));
  }

  // Classical Gram–Schmidt as GEMVs over column chunks of the block. Pass p:
  // c = Vᵀy (per chunk, one dot per row, partial sums reduced in chunk order),
  // then y −= V·c per chunk; the dots of pass p+1 are fused into the update sweep
  // of pass p (same chunk, block still in cache), so `passes` passes sweep the
  // block passes+1 times instead of 2·passes.
  void orthogonalize(std::size_t first, std::size_t count, std::size_t y, int passes, double* coeffs) override {
    check_slot(y, "orthogonalize");
    NNSCOPE_CHECK(first <= slots_ && count <= slots_ - first, ErrorCode::InvalidArgument,
                  "hessian space: orthogonalize block out of range");
    NNSCOPE_CHECK(y < first || y >= first + count, ErrorCode::InvalidArgument,
                  "hessian space: orthogonalize target lies in the block");
    if (coeffs) std::fill(coeffs, coeffs + count, 0.0);
    if (count == 0 || passes <= 0 || n_ == 0) return;
    const T* V = slot(first);
    T* yv = slot(y);
    const std::size_t ld = stride_;
    const std::size_t C = block_chunk<T>(count);
    const std::size_t nch = ceil_div(n_, C);
    const std::size_t work = n_ * count;
    std::vector<double> part(nch * count), c(count);
    auto dots = [&](std::size_t ch) {
      const std::size_t lo = ch * C, len = std::min(C, n_ - lo);
      double* p = part.data() + ch * count;
      for (std::size_t j = 0; j < count; ++j) p[j] = K<T>::dot(len, V + j * ld + lo, yv + lo);
    };
    auto reduce = [&] {
      for (std::size_t j = 0; j < count; ++j) c[j] = 0.0;
      for (std::size_t ch = 0; ch < nch; ++ch) {
        const double* p = part.data() + ch * count;
        for (std::size_t j = 0; j < count; ++j) c[j] += p[j];
      }
      if (coeffs)
        for (std::size_t j = 0; j < count; ++j) coeffs[j] += c[j];
    };
    run_chunks(nch, work, dots);
    reduce();
    for (int p = 0; p < passes; ++p) {
      const bool fuse = p + 1 < passes;
      run_chunks(nch, work, [&](std::size_t ch) {
        const std::size_t lo = ch * C, len = std::min(C, n_ - lo);
        for (std::size_t j = 0; j < count; ++j) K<T>::axpy(len, -c[j], V + j * ld + lo, yv + lo);
        if (fuse) dots(ch);
      });
      if (fuse) reduce();
    }
  }

  void combine(std::size_t first, std::size_t count, const double* Y, std::size_t k, std::size_t dst) override {
    NNSCOPE_CHECK(first <= slots_ && count <= slots_ - first, ErrorCode::InvalidArgument,
                  "hessian space: combine block out of range");
    NNSCOPE_CHECK(dst <= slots_ && k <= slots_ - dst, ErrorCode::InvalidArgument,
                  "hessian space: combine target out of range");
    NNSCOPE_CHECK(dst + k <= first || first + count <= dst || k == 0 || count == 0, ErrorCode::InvalidArgument,
                  "hessian space: combine target overlaps the block");
    if (k == 0 || n_ == 0) return;
    NNSCOPE_CHECK(count == 0 || Y != nullptr, ErrorCode::InvalidArgument, "hessian space: combine needs Y");
    const T* V = slot(first);
    const std::size_t ld = stride_;
    const std::size_t C = block_chunk<T>(count);
    const std::size_t nch = ceil_div(n_, C);
    run_chunks(nch, n_ * std::max<std::size_t>(count, 1) * k, [&](std::size_t ch) {
      const std::size_t lo = ch * C, len = std::min(C, n_ - lo);
      for (std::size_t i = 0; i < k; ++i) {
        T* out = slot(dst + i) + lo;
        std::fill(out, out + len, T(0));
        for (std::size_t j = 0; j < count; ++j) {
          const double yji = Y[j * k + i];
          if (yji != 0.0) K<T>::axpy(len, yji, V + j * ld + lo, out);
        }
      }
    });
  }

 private:
  T* slot(std::size_t i) { return data_.data() + i * stride_; }
  void check_slot(std::size_t i, const char* op) const {
    if (i >= slots_)
      fail(ErrorCode::InvalidArgument, std::string("hessian space: ") + op + " on slot " + std::to_string(i) +
                                           " of " + std::to_string(slots_));
  }
  template <typename F>
  double chunked_sum(const F& f) {
    if (n_ <= kChunk) return n_ == 0 ? 0.0 : f(0, n_);
    const std::size_t chunks = ceil_div(n_, kChunk);
    std::vector<double> part(chunks);
    run_chunks(chunks, n_, [&](std::size_t c) {
      const std::size_t lo = c * kChunk;
      part[c] = f(lo, std::min(kChunk, n_ - lo));
    });
    double s = 0;
    for (double v : part) s += v;
    return s;
  }
  template <typename F>
  void elementwise(const F& f) {
    const std::size_t chunks = ceil_div(n_, kChunk);
    run_chunks(chunks, n_, [&](std::size_t c) {
      const std::size_t lo = c * kChunk;
      f(lo, std::min(n_, lo + kChunk));
    });
  }

  Operator<T>& op_;
  std::size_t n_ = 0, stride_ = 0, slots_ = 0;
  AlignedBuffer<T> data_;
  std::uint64_t products_ = 0;
};

}  // namespace

std::unique_ptr<Space> make_cpu_space(Operator<float>& op) { return std::make_unique<CpuSpace<float>>(op); }
std::unique_ptr<Space> make_cpu_space(Operator<double>& op) { return std::make_unique<CpuSpace<double>>(op); }

}  // namespace nnscope::hessian
