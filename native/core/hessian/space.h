// nnscope core, hessian family: the operator and the Krylov workspace every
// algorithm of the family (Lanczos, thick-restart eigensolver, power iteration,
// Hutchinson / Hutch++, stochastic Lanczos quadrature) is written against.
//
// A Space owns `slots` vectors of length n (its storage: host float/double, or
// device memory on a GPU) plus the symmetric operator A. Algorithms only ever
// name vectors by slot index, so one algorithm serves every storage: the CPU
// spaces below and the CUDA space of native/cuda/hessian.h, where the basis, the
// reorthogonalisation and the products stay on the device and only scalars
// (dot products, norms) come back to the host.
//
// Scalars handed across (dot, norm, coefficients) are float64 whatever the
// storage; reductions accumulate in float64.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/context.h"

namespace nnscope::hessian {

// A symmetric linear operator y = A·x of dimension n, in scalar type T (float or
// double). apply may throw nnscope::Error (e.g. Cancelled, NonFinite, Callback);
// it must write all n outputs. Implementations need not be thread-safe: one
// algorithm calls one operator from one thread at a time.
template <typename T>
class Operator {
 public:
  virtual ~Operator() = default;
  virtual std::size_t dim() const = 0;
  virtual void apply(const T* x, T* y, const OpContext& ctx) = 0;
};

class Space {
 public:
  virtual ~Space() = default;

  virtual std::size_t dim() const = 0;
  // Slots currently allocated.
  virtual std::size_t slots() const = 0;
  // Grows the storage to at least `count` slots (existing contents kept). Throws
  // OutOfMemory / TooLarge.
  virtual void reserve(std::size_t count) = 0;
  // True when the storage is float32 (tolerances of the algorithms adapt to it).
  virtual bool single_precision() const = 0;

  // slot[dst] = A · slot[src] (src != dst). Counts one product. Throws NonFinite
  // when the product contains NaN/±Inf (the algorithms cannot continue from it).
  virtual void apply(std::size_t src, std::size_t dst, const OpContext& ctx) = 0;
  // Products so far.
  virtual std::uint64_t products() const = 0;

  // Host transfers (converting to and from the storage type).
  virtual void load(std::size_t slot, const double* host) = 0;
  virtual void store(std::size_t slot, double* host) = 0;

  // BLAS-1 on slots; float64 accumulation.
  virtual double dot(std::size_t a, std::size_t b) = 0;
  virtual double norm(std::size_t a) = 0;
  virtual void axpy(double alpha, std::size_t x, std::size_t y) = 0;  // y += alpha·x
  virtual void scale(std::size_t x, double alpha) = 0;                 // x *= alpha
  virtual void copy(std::size_t src, std::size_t dst) = 0;

  // Classical Gram–Schmidt of slot y against slots [first, first+count), which are
  // orthonormal: `passes` times (2 = "twice is enough") y -= V·(Vᵀy), as two GEMVs
  // against the block. If coeffs is non-null it receives the total coefficients
  // Σ_pass Vᵀy (count values). y must not lie in the range.
  virtual void orthogonalize(std::size_t first, std::size_t count, std::size_t y, int passes,
                             double* coeffs) = 0;

  // slot[dst + i] = Σ_j slot[first + j] · Y[j·k + i] for i < k, j < count (Y is
  // count×k row-major, float64): the basis rotation of a restart and the Ritz
  // vectors. [dst, dst+k) must not overlap [first, first+count).
  virtual void combine(std::size_t first, std::size_t count, const double* Y, std::size_t k,
                       std::size_t dst) = 0;
};

// Host spaces over an operator of the same scalar type. The operator must outlive
// the space. Storage is 64-byte aligned; BLAS-1 and the GEMVs run on the thread pool
// and give the same bits for any thread count.
std::unique_ptr<Space> make_cpu_space(Operator<float>& op);
std::unique_ptr<Space> make_cpu_space(Operator<double>& op);

}  // namespace nnscope::hessian
