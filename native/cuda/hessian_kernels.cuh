// nnscope CUDA backend: the kernels of the hessian family's device Space and the
// Space itself (SpaceCore), written once over an "environment" that supplies the
// memory and the linalg calls.
//
// Included by hessian.cu (nvcc; environment: cudaMalloc'd buffers, one non-blocking
// stream, the device-pointer linalg of linalg.h) and, under the host emulator of
// cuda_emu.h, by native/tests/test_cuda_hessian.cpp (environment: host memory and the
// emulated kernels of linalg_kernels.cuh), so the whole space, including the core
// algorithms running on it, is exercised on machines without a GPU. The includer
// provides, before including this file:
//   - NNSCOPE_KNS: the namespace for everything here (nnscope::cuda::NNSCOPE_KNS);
//   - in that namespace, launch_kernel(kernel, grid, block, stream, args...);
//   - CUDA's vocabulary (__global__, __shared__, float4, dim3, threadIdx, blockIdx,
//     blockDim, gridDim, __syncthreads, __shfl_down_sync, sqrt) and, on the device,
//     atomicCAS.
// Only that subset of CUDA is used here, and every 16-byte access goes through h_ld4
// (the emulator checks its alignment).
//
// Kernels:
//   h_rowdot_partial / h_rowdot_final: c_j = Σ_i V[j][i]·y[i] for the rows of a slot
//     block (the Vᵀy of classical Gram–Schmidt), float64 accumulation. Row j is
//     reduced exactly as linalg's sdot_async reduces one dot product (same grid of
//     reduce_blocks(n) blocks, same grid-stride order, same fixed trees), so each
//     coefficient has the bits of sdot_async(V_j, y). A GEMV would accumulate in
//     float: an α off by ~√(n/32)·eps_32 relative at n = 10⁶, where the CPU space's
//     (and the Space contract's) coefficients are float64 reductions.
//   h_scale: x = float(double(x)·α), the CPU space's formula.
//   h_nonfinite: records the number of the first product whose output holds a NaN
//     or ±Inf in a device word (read back with the next scalar).
#pragma once

#ifndef NNSCOPE_KNS
#error "define NNSCOPE_KNS before including hessian_kernels.cuh"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "hessian/space.h"
#include "linalg/blas.h"

namespace nnscope {
namespace cuda {
namespace NNSCOPE_KNS {

typedef long long hi64;

constexpr int kHThreads = 256;
constexpr int kHReduceMaxBlocks = 1024;  // = linalg's kReduceMaxBlocks
constexpr int kHMaxGridY = 65535;

__host__ __device__ __forceinline__ hi64 h_ceil_div(hi64 a, hi64 b) { return (a + b - 1) / b; }

__host__ __forceinline__ bool h_aligned16(const void* p) {
  return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

__device__ __forceinline__ float4 h_ld4(const float* p) {
#ifdef NNSCOPE_CUDA_EMU
  ::nnscope::cuda_emu::check_aligned16(p);
#endif
  return *reinterpret_cast<const float4*>(p);
}

// Blocks of the first reduction pass: one per 4096 elements, at most 1024 (the
// rule of linalg's reduce_blocks, which the bitwise equality with sdot relies on).
inline int h_reduce_blocks(hi64 n) {
  const hi64 b = h_ceil_div(n, 4096);
  return (int)(b < 1 ? 1 : b > kHReduceMaxBlocks ? kHReduceMaxBlocks : b);
}

template <typename T>
__device__ __forceinline__ T h_warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of 256 threads in a fixed order (linalg's block_sum_256); the
// result is valid in thread 0. Every thread of the block must call it.
__device__ __forceinline__ double h_block_sum(double v) {
  __shared__ double warps[8];
  v = h_warp_sum(v);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  double r = 0.0;
  if (threadIdx.x < 32) {
    r = threadIdx.x < 8 ? warps[threadIdx.x] : 0.0;
    r = h_warp_sum(r);
  }
  return r;
}

// partial[row·gridDim.x + blockIdx.x] = Σ V[row][i]·y[i] over the block's grid-stride
// slice, row = row0 + blockIdx.y (linalg's reduce_partial<false> per row).
__global__ void __launch_bounds__(256) h_rowdot_partial(hi64 n, const float* __restrict__ V, hi64 ld,
                                                        const float* __restrict__ y, int vec, int row0,
                                                        double* __restrict__ partial) {
  const int row = row0 + (int)blockIdx.y;
  const float* __restrict__ x = V + (hi64)row * ld;
  const hi64 stride = (hi64)gridDim.x * blockDim.x;
  const hi64 t = (hi64)blockIdx.x * blockDim.x + threadIdx.x;
  double s = 0.0;
  hi64 i0 = 0;
  if (vec) {
    const hi64 n4 = n / 4;
    for (hi64 q = t; q < n4; q += stride) {
      const float4 a = h_ld4(x + 4 * q);
      const float4 b = h_ld4(y + 4 * q);
      s += (double)a.x * (double)b.x;
      s += (double)a.y * (double)b.y;
      s += (double)a.z * (double)b.z;
      s += (double)a.w * (double)b.w;
    }
    i0 = n4 * 4;
  }
  for (hi64 i = i0 + t; i < n; i += stride) s += (double)x[i] * (double)y[i];
  s = h_block_sum(s);
  if (threadIdx.x == 0) partial[(hi64)row * gridDim.x + blockIdx.x] = s;
}

// Row row = row0 + blockIdx.x: s = Σ_b partial[row·blocks + b] (linalg's
// reduce_final order); cf[row] = float(s) (this pass's coefficient, for the update
// GEMV); cd[row] = s, or cd[row] + s when accumulate (the total over the passes).
__global__ void __launch_bounds__(256) h_rowdot_final(int blocks, const double* __restrict__ partial, int row0,
                                                      int accumulate, double* __restrict__ cd,
                                                      float* __restrict__ cf) {
  const int row = row0 + (int)blockIdx.x;
  const double* p = partial + (hi64)row * blocks;
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += 256) s += p[i];
  s = h_block_sum(s);
  if (threadIdx.x == 0) {
    cf[row] = (float)s;
    cd[row] = accumulate ? cd[row] + s : s;
  }
}

// x[i] = float(double(x[i])·alpha)
__global__ void __launch_bounds__(256) h_scale(hi64 n, double alpha, float* __restrict__ x) {
  const hi64 stride = (hi64)gridDim.x * blockDim.x;
  for (hi64 i = (hi64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = (float)((double)x[i] * alpha);
}

// NaN or ±Inf: the exponent bits all set (a bit test, immune to fast-math flags).
__device__ __forceinline__ bool h_nonfinite_value(float v) {
  unsigned u;
  memcpy(&u, &v, sizeof(u));
  return (u & 0x7f800000u) == 0x7f800000u;
}

// *flag = product if *flag is 0 and y[0..n) holds a NaN/±Inf (the first bad product
// wins). One flag write per block at most (thread 0, after a block reduction).
__global__ void __launch_bounds__(256) h_nonfinite(hi64 n, const float* __restrict__ y,
                                                   unsigned long long* flag, unsigned long long product) {
  __shared__ int any[8];
  const hi64 stride = (hi64)gridDim.x * blockDim.x;
  int bad = 0;
  for (hi64 i = (hi64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) bad |= h_nonfinite_value(y[i]) ? 1 : 0;
  bad = h_warp_sum(bad);
  if ((threadIdx.x & 31) == 0) any[threadIdx.x >> 5] = bad;
  __syncthreads();
  if (threadIdx.x == 0) {
    int b = 0;
    for (int w = 0; w < 8; ++w) b |= any[w];
    if (b) {
#ifdef NNSCOPE_CUDA_EMU
      if (*flag == 0ull) *flag = product;  // emulated blocks run one at a time
#else
      atomicCAS(flag, 0ull, product);
#endif
    }
  }
}

// ---------------------------------------------------------------- launches
inline unsigned h_elementwise_blocks(hi64 n) {
  const hi64 b = h_ceil_div(n, kHThreads);
  return (unsigned)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}

// Doubles of partial sums rowdot_launch needs for `rows` rows of length n.
inline std::size_t rowdot_workspace_doubles(std::size_t rows, std::size_t n) {
  return rows * (std::size_t)h_reduce_blocks((hi64)n);
}

// cd[j] (= or +=) Σ V[j]·y and cf[j] = float(that pass's sum), j < rows; V rows
// at stride ld. partial: rowdot_workspace_doubles(rows, n) doubles.
inline void rowdot_launch(int rows, hi64 n, const float* V, hi64 ld, const float* y, bool accumulate,
                          double* partial, double* cd, float* cf, void* stream) {
  if (rows <= 0) return;
  const int blocks = h_reduce_blocks(n);
  const int vec = h_aligned16(V) && ld % 4 == 0 && h_aligned16(y);
  for (int r0 = 0; r0 < rows; r0 += kHMaxGridY) {
    const int r = rows - r0 < kHMaxGridY ? rows - r0 : kHMaxGridY;
    launch_kernel(&h_rowdot_partial, dim3((unsigned)blocks, (unsigned)r), dim3(kHThreads), stream, n, V, ld, y, vec,
                  r0, partial);
  }
  launch_kernel(&h_rowdot_final, dim3((unsigned)rows), dim3(kHThreads), stream, blocks, (const double*)partial, 0,
                accumulate ? 1 : 0, cd, cf);
}

inline void scale_launch(hi64 n, double alpha, float* x, void* stream) {
  if (n <= 0) return;
  launch_kernel(&h_scale, dim3(h_elementwise_blocks(n)), dim3(kHThreads), stream, n, alpha, x);
}

inline void nonfinite_launch(hi64 n, const float* y, unsigned long long* flag, unsigned long long product,
                             void* stream) {
  if (n <= 0) return;
  launch_kernel(&h_nonfinite, dim3(h_elementwise_blocks(n)), dim3(kHThreads), stream, n, y, flag, product);
}

// ============================================================================ the Space
//
// SpaceCore<Env, Base> implements hessian::Space (Base: hessian::Space or an
// interface derived from it) on the environment's memory. Env (held by
// value, constructed in place from the constructor's trailing arguments) provides:
//   Buffer                      movable owner of device memory: data(), bytes()
//   Buffer alloc(bytes)         uninitialised device memory (zero bytes: empty)
//   void activate()             makes the device current for the calling thread
//   void* stream()              the stream everything is enqueued on
//   upload(dst, src, bytes) / download(dst, src, bytes) / copy(dst, src, bytes) /
//   zero(dst, bytes)            stream-ordered copies and memset (a host source may
//                               be reused when upload returns)
//   void sync()                 waits for the stream (throws on a device error)
//   void drain() noexcept       the same, errors ignored (destructor)
//   gemv(GemvArgs, ws), gemv_ws(GemvArgs) → floats, gemm(GemmArgs),
//   dot(n, x, y, out, ws), nrm2(n, x, out, ws), reduce_ws() → doubles,
//   axpy(n, alpha, x, y)        linalg.h's device-pointer ops on stream()
// A subclass supplies the operator: product(x, y, ctx) enqueues y = A·x (device
// pointers of two distinct slots).
//
// Storage: slots of `stride` floats (n rounded up to 4: every slot 16-byte
// aligned) in one buffer; the slot block [first, first+count) is a count×n
// row-major matrix with leading dimension stride. Padding is zero.
//
// Synchronisation: the host waits only where a value comes back (dot, norm,
// orthogonalize with coefficients, store); everything else is only enqueued.
// NaN/Inf in a product: apply enqueues h_nonfinite, which records the product's
// number in a device word; that word comes back with the next value read (it
// travels in the same copy as dot's and norm's result) and the read throws
// NonFinite naming the first bad product. Every algorithm reads a norm or a dot of a
// product before it uses it, so the error surfaces within the same step as on the
// CPU space, where apply itself throws.
template <class Env, class Base = hessian::Space>
class SpaceCore : public Base {
 public:
  template <typename... A>
  explicit SpaceCore(std::size_t n, A&&... env_args) : env_(std::forward<A>(env_args)...), n_(n) {
    NNSCOPE_CHECK(n <= std::size_t(0x7fffffff) - 3, ErrorCode::TooLarge,
                  "hessian (cuda): dimension " + std::to_string(n) + " exceeds the kernels' 2^31-4");
    stride_ = (std::max<std::size_t>(n, 1) + 3) / 4 * 4;
    env_.activate();
    // [0] result, [1] non-finite flag, [2, 2+reduce_ws) reduction workspace
    scal_ = env_.alloc((2 + env_.reduce_ws()) * sizeof(double));
    env_.zero(scal_.data(), 2 * sizeof(double));
  }
  ~SpaceCore() override { env_.drain(); }
  SpaceCore(const SpaceCore&) = delete;
  SpaceCore& operator=(const SpaceCore&) = delete;

  std::size_t dim() const override { return n_; }
  std::size_t slots() const override { return slots_; }
  bool single_precision() const override { return true; }
  std::uint64_t products() const override { return products_; }
  std::size_t stride_floats() const noexcept { return stride_; }
  Env& env() noexcept { return env_; }
  const Env& env() const noexcept { return env_; }

  // Waits for everything enqueued; throws NonFinite for a bad product not yet reported.
  void finish() {
    env_.activate();
    read_flag_and_wait();
  }

  // Device pointer of slot s (valid until the next reserve that grows the storage).
  float* slot_ptr(std::size_t s) {
    check_slot(s, "slot");
    return slot(s);
  }

  void reserve(std::size_t count) override {
    if (count <= slots_) return;
    env_.activate();
    NNSCOPE_CHECK(count <= std::size_t(-1) / sizeof(float) / stride_, ErrorCode::TooLarge,
                  "hessian (cuda): slot storage size overflows");
    typename Env::Buffer next = env_.alloc(count * stride_ * sizeof(float));
    if (slots_) env_.copy(next.data(), data_.data(), slots_ * stride_ * sizeof(float));
    env_.zero(static_cast<float*>(next.data()) + slots_ * stride_, (count - slots_) * stride_ * sizeof(float));
    env_.sync();  // the old storage may still be read by queued work
    data_ = std::move(next);
    slots_ = count;
  }

  void apply(std::size_t src, std::size_t dst, const OpContext& ctx) override {
    check_slot(src, "apply");
    check_slot(dst, "apply");
    NNSCOPE_CHECK(src != dst, ErrorCode::InvalidArgument, "hessian space: apply needs distinct source and target");
    ctx.check();
    env_.activate();
    product(slot(src), slot(dst), ctx);
    ++products_;
    nonfinite_launch((hi64)n_, slot(dst), flag_ptr(), (unsigned long long)products_, env_.stream());
  }

  void load(std::size_t s, const double* host) override {
    check_slot(s, "load");
    env_.activate();
    host_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i) host_[i] = float(host[i]);
    env_.upload(slot(s), host_.data(), n_ * sizeof(float));
  }

  void store(std::size_t s, double* host) override {
    check_slot(s, "store");
    env_.activate();
    host_.resize(n_);
    env_.download(host_.data(), slot(s), n_ * sizeof(float));
    read_flag_and_wait();
    for (std::size_t i = 0; i < n_; ++i) host[i] = double(host_[i]);
  }

  double dot(std::size_t a, std::size_t b) override {
    check_slot(a, "dot");
    check_slot(b, "dot");
    env_.activate();
    env_.dot(n_, slot(a), slot(b), result_ptr(), work_ptr());
    return read_result();
  }

  double norm(std::size_t a) override {
    check_slot(a, "norm");
    env_.activate();
    env_.nrm2(n_, slot(a), result_ptr(), work_ptr());
    return read_result();
  }

  void axpy(double alpha, std::size_t a, std::size_t b) override {
    check_slot(a, "axpy");
    check_slot(b, "axpy");
    if (alpha == 0.0) return;
    env_.activate();
    env_.axpy(n_, float(alpha), slot(a), slot(b));
  }

  void scale(std::size_t a, double alpha) override {
    check_slot(a, "scale");
    env_.activate();
    scale_launch((hi64)n_, alpha, slot(a), env_.stream());
  }

  void copy(std::size_t src, std::size_t dst) override {
    check_slot(src, "copy");
    check_slot(dst, "copy");
    if (src == dst) return;
    env_.activate();
    env_.copy(slot(dst), slot(src), n_ * sizeof(float));
  }

  // Classical Gram–Schmidt, `passes` times: c = Vᵀy (rowdot, float64), then
  // y −= V·float(c) (the transposed GEMV of linalg with alpha −1, beta 1).
  void orthogonalize(std::size_t first, std::size_t count, std::size_t y, int passes, double* coeffs) override {
    check_slot(y, "orthogonalize");
    NNSCOPE_CHECK(first <= slots_ && count <= slots_ - first, ErrorCode::InvalidArgument,
                  "hessian space: orthogonalize block out of range");
    NNSCOPE_CHECK(y < first || y >= first + count, ErrorCode::InvalidArgument,
                  "hessian space: orthogonalize target lies in the block");
    if (coeffs) std::fill(coeffs, coeffs + count, 0.0);
    if (count == 0 || passes <= 0 || n_ == 0) return;
    env_.activate();
    reserve_coefficients(count);
    const float* V = slot(first);
    float* yv = slot(y);
    linalg::GemvArgs g;
    g.trans = true;
    g.m = count;
    g.n = n_;
    g.alpha = -1.0f;
    g.a = V;
    g.lda = stride_;
    g.x = cf_ptr();
    g.beta = 1.0f;
    g.y = yv;
    const std::size_t wsf = env_.gemv_ws(g);
    if (wsf * sizeof(float) > gemv_ws_.bytes()) {
      env_.sync();
      gemv_ws_ = typename Env::Buffer();
      gemv_ws_ = env_.alloc(wsf * sizeof(float));
    }
    for (int p = 0; p < passes; ++p) {
      rowdot_launch((int)count, (hi64)n_, V, (hi64)stride_, yv, p > 0, partial_ptr(), cd_ptr(), cf_ptr(),
                    env_.stream());
      env_.gemv(g, static_cast<float*>(gemv_ws_.data()));
    }
    if (coeffs) {
      env_.download(coeffs, cd_ptr(), count * sizeof(double));
      read_flag_and_wait();
    }
  }

  // Out (k×n, ld stride) = Yᵀ·V: one GEMM with op(A) = Yᵀ (Y count×k row-major,
  // converted to float), B = the slot block, C = the target slots.
  void combine(std::size_t first, std::size_t count, const double* Y, std::size_t k, std::size_t dst) override {
    NNSCOPE_CHECK(first <= slots_ && count <= slots_ - first, ErrorCode::InvalidArgument,
                  "hessian space: combine block out of range");
    NNSCOPE_CHECK(dst <= slots_ && k <= slots_ - dst, ErrorCode::InvalidArgument,
                  "hessian space: combine target out of range");
    NNSCOPE_CHECK(dst + k <= first || first + count <= dst || k == 0 || count == 0, ErrorCode::InvalidArgument,
                  "hessian space: combine target overlaps the block");
    if (k == 0 || n_ == 0) return;
    env_.activate();
    if (count == 0) {
      env_.zero(slot(dst), k * stride_ * sizeof(float));
      return;
    }
    NNSCOPE_CHECK(Y != nullptr, ErrorCode::InvalidArgument, "hessian space: combine needs Y");
    const std::size_t floats = count * k;
    yhost_.resize(floats);
    for (std::size_t i = 0; i < floats; ++i) yhost_[i] = float(Y[i]);
    if (floats * sizeof(float) > ybuf_.bytes()) {
      env_.sync();
      ybuf_ = typename Env::Buffer();
      ybuf_ = env_.alloc(floats * sizeof(float));
    }
    env_.upload(ybuf_.data(), yhost_.data(), floats * sizeof(float));
    linalg::GemmArgs g;
    g.trans_a = true;
    g.trans_b = false;
    g.m = k;
    g.n = n_;
    g.k = count;
    g.alpha = 1.0f;
    g.a = static_cast<const float*>(ybuf_.data());
    g.lda = k;
    g.b = slot(first);
    g.ldb = stride_;
    g.beta = 0.0f;
    g.c = slot(dst);
    g.ldc = stride_;
    env_.gemm(g);
  }

 protected:
  // Enqueues y = A·x on env().stream() (x, y: distinct slots). May throw (e.g.
  // Cancelled); need not check for NaN (apply does).
  virtual void product(const float* x, float* y, const OpContext& ctx) = 0;

 private:
  float* slot(std::size_t i) { return static_cast<float*>(data_.data()) + i * stride_; }
  void check_slot(std::size_t i, const char* op) const {
    if (i >= slots_)
      fail(ErrorCode::InvalidArgument, std::string("hessian space: ") + op + " on slot " + std::to_string(i) +
                                           " of " + std::to_string(slots_));
  }
  double* result_ptr() { return static_cast<double*>(scal_.data()); }
  unsigned long long* flag_ptr() { return reinterpret_cast<unsigned long long*>(static_cast<double*>(scal_.data()) + 1); }
  double* work_ptr() { return static_cast<double*>(scal_.data()) + 2; }

  // Coefficient storage for blocks of up to `count` rows: cd (double), partial
  // sums (double), cf (float), in one buffer.
  void reserve_coefficients(std::size_t count) {
    if (count <= coef_rows_) return;
    const std::size_t rows = std::max(count, slots_);
    const std::size_t partial = rowdot_workspace_doubles(rows, n_);
    const std::size_t bytes = (rows + partial) * sizeof(double) + (rows + 3) / 4 * 4 * sizeof(float);
    env_.sync();
    coef_ = typename Env::Buffer();
    coef_ = env_.alloc(bytes);
    coef_rows_ = rows;
  }
  double* cd_ptr() { return static_cast<double*>(coef_.data()); }
  double* partial_ptr() { return static_cast<double*>(coef_.data()) + coef_rows_; }
  float* cf_ptr() {
    return reinterpret_cast<float*>(static_cast<double*>(coef_.data()) + coef_rows_ +
                                    rowdot_workspace_doubles(coef_rows_, n_));
  }

  // Brings back the result word and the flag, waits, throws for a bad product.
  double read_result() {
    struct {
      double value;
      unsigned long long flag;
    } r{0.0, 0ull};
    static_assert(sizeof(r) == 2 * sizeof(double), "result and flag are adjacent");
    env_.download(&r, scal_.data(), sizeof(r));
    env_.sync();
    raise_if_flagged(r.flag);
    return r.value;
  }
  void read_flag_and_wait() {
    unsigned long long flag = 0;
    env_.download(&flag, flag_ptr(), sizeof(flag));
    env_.sync();
    raise_if_flagged(flag);
  }
  void raise_if_flagged(unsigned long long flag) {
    if (flag == 0) return;
    env_.zero(flag_ptr(), sizeof(flag));  // the space stays usable for new products
    fail(ErrorCode::NonFinite, "hessian: the operator's product #" + std::to_string(flag) +
                                   " contains NaN or Infinity (the Hessian-vector product is not finite; "
                                   "detected on the GPU)");
  }

  Env env_;  // first member: destroyed last, after the buffers
  std::size_t n_ = 0, stride_ = 0, slots_ = 0, coef_rows_ = 0;
  std::uint64_t products_ = 0;
  typename Env::Buffer data_, scal_, coef_, ybuf_, gemv_ws_;
  std::vector<float> host_, yhost_;
};

}  // namespace NNSCOPE_KNS
}  // namespace cuda
}  // namespace nnscope
