// nnscope CUDA backend: the hessian family's device Krylov space (hessian/space.h)
// — slots, basis, reorthogonalisation and products all in GPU memory; a Lanczos
// step brings back only scalars (α from the Gram–Schmidt coefficients, β = ‖w‖).
// A plain C++ header (no CUDA headers): backend.cpp hooks these into
// GpuBackend::make_dense_space / make_objective_space.
//
// Storage: float32, `slots` vectors in one cudaMalloc'd block, each slot padded to
// a multiple of 4 floats (16 bytes: every slot is float4-aligned); reserve() grows
// the block by copying. One non-blocking stream per space; every operation is
// enqueued on it and the host waits only where a value comes back (dot, norm,
// orthogonalize with coefficients, store).
//
// Operations (the kernels are in hessian_kernels.cuh):
//   orthogonalize  per pass: c = Vᵀy by a row-wise float64 reduction (each
//                  coefficient has the bits of linalg's sdot_async of that row),
//                  then y −= V·float(c) by the transposed sgemv_async (alpha −1,
//                  beta 1); the coefficients are summed over the passes on the device
//                  and copied back only when asked for.
//   combine        one sgemm_async: Out = Yᵀ·V (Y converted to float32 on the host,
//                  copied in; each output element an FMA chain in block order, the
//                  CPU space's order).
//   dot / norm     sdot_async / snrm2_async (float64 accumulation).
//   axpy / scale / copy   saxpy_async / a float64-scaled kernel / device copy.
//   apply          the operator's product on the stream, then a NaN/Inf scan that
//                  records the product's number in a device word. It is read back
//                  with the next value (same copy as dot's and norm's result), which
//                  then throws NonFinite naming the first bad product: the error
//                  surfaces at the first host-visible result after the product, not
//                  inside apply itself (apply stays asynchronous). apply checks
//                  ctx for cancellation before each product.
// Operators:
//   dense      a symmetric n×n float32 matrix, copied to the device once (row pitch
//              padded to 16 bytes); product = sgemv_async (float accumulation per
//              row, one warp per row: a relative error of order √(n/128)·eps_32 per
//              entry, where the CPU DenseOperator accumulates in float64).
//   objective  the Hessian at θ of a GPU objective (GpuBackend::make_*_objective,
//              models.h's device_hvp): θ copied to the device once; product =
//              the objective's HVP passes on device pointers, ordered after the
//              space's stream by events (no host round trip, no copy of v or Hv).
//              The objective must outlive the space; its other calls may run
//              concurrently from other threads (they are serialised by its mutex
//              and its stream).
//
// Determinism: the same calls give the same bits (fixed reduction trees, no
// atomics in any reduction). Errors: InvalidArgument (bad slots, an objective that
// is not a GPU objective of this backend), TooLarge (n ≥ 2^31−3), OutOfMemory,
// Cuda, Cancelled, NonFinite.
#pragma once
#include <cstddef>
#include <memory>

#include "hessian/space.h"
#include "models/objective.h"

namespace nnscope::cuda {

// The device side a GPU space offers beyond hessian::Space (for tests, benchmarks
// and GPU code that wants its vectors where they are).
class DeviceSpace : public hessian::Space {
 public:
  virtual int device() const = 0;
  // The space's cudaStream_t (as void*): work on the slots must be ordered after it.
  virtual void* stream() const = 0;
  // Floats between consecutive slots (a multiple of 4).
  virtual std::size_t stride() const = 0;
  // Device pointer of a slot (valid until reserve() grows the storage).
  virtual float* slot_pointer(std::size_t slot) = 0;
  // Waits for all work enqueued so far (and throws NonFinite for a bad product).
  virtual void synchronize() = 0;
};

// `a` (n×n row-major, host) is copied; the space does not keep the pointer.
std::unique_ptr<DeviceSpace> make_dense_space(int device, const float* a, std::size_t n);
// `theta` (objective.dim() floats, host) is copied; `objective` is borrowed.
std::unique_ptr<DeviceSpace> make_objective_space(int device, models::Objective& objective, const float* theta);

}  // namespace nnscope::cuda
