// nnscope CUDA backend: linalg on DEVICE pointers, for code that keeps its data on the
// GPU (e.g. Lanczos iterations). A plain C++ header: a stream is a cudaStream_t passed
// as void* (nullptr = the legacy default stream), so .cpp files compiled without
// the CUDA toolkit can include it.
//
// Contracts are those of linalg/blas.h (row-major, leading dimensions, transposes,
// beta == 0 writes the output without reading it, zero sizes allowed) with every
// pointer a device pointer on the calling thread's current device. Every call only
// enqueues work on `stream` (asynchronous with respect to the host) and throws
// nnscope::Error (Cuda on a launch failure, TooLarge when a dimension exceeds the
// kernels' 32-bit range). Errors of the kernels themselves surface at the next
// synchronisation of the stream.
//
// Determinism: every result element is reduced in a fixed order that depends only on
// the sizes (and, for the vectorised paths, on 16-byte alignment of the pointers),
// never on timing: the same call gives the same bits on the same device.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "linalg/blas.h"

namespace nnscope::cuda {

// C = alpha·op(A)·op(B) + beta·C. Each element of C is an FMA chain over k in
// increasing order (float accumulation), the same whatever tile size is chosen.
// k == 0 or alpha == 0 only scales C by beta (A and B are not read, as in BLAS).
// A launch covers at most 32768 row tiles; larger m is split into several launches.
void sgemm_async(const linalg::GemmArgs& g, void* stream);
// The same with the block tile forced: 64 (64×64, 64 threads) or 128 (128×128, 256
// threads); 0 = the planner's choice. For tests and benchmarks: results are equal.
void sgemm_async_tile(const linalg::GemmArgs& g, int tile, void* stream);

// y = alpha·op(A)·x + beta·y. The transposed form splits the rows of A over several
// blocks when m is large and needs `workspace` (device memory of
// sgemv_workspace_floats(g) floats; may be null when that is 0).
std::size_t sgemv_workspace_floats(const linalg::GemvArgs& g);
void sgemv_async(const linalg::GemvArgs& g, float* workspace, void* stream);

// y += alpha·x
void saxpy_async(std::size_t n, float alpha, const float* x, float* y, void* stream);

// *result = Σ x·y, *result = ‖x‖₂ (double accumulation, a fixed two-pass tree: a grid
// that depends only on n, then one block over the partial sums; no atomics).
// `result` is one device double; `workspace` is reduce_workspace_doubles() device doubles.
std::size_t reduce_workspace_doubles() noexcept;
void sdot_async(std::size_t n, const float* x, const float* y, double* result, double* workspace, void* stream);
void snrm2_async(std::size_t n, const float* x, double* result, double* workspace, void* stream);

// Compiled attributes of the linalg kernels on the current device (for reports and
// benchmarks): registers per thread, static shared memory, local (spill) memory.
struct KernelAttributes {
  std::string name;
  int registers = 0;
  int shared_bytes = 0;
  int local_bytes = 0;
  int max_threads = 0;
  int binary_version = 0, ptx_version = 0;  // e.g. 90 = sm_90 machine code / compute_90 PTX
};
std::vector<KernelAttributes> kernel_attributes();

// Whether this build's kernels can be loaded on the current device: 0 when they
// can, else the cudaError_t value (e.g. cudaErrorNoKernelImageForDevice). Creates
// the device's context. Clears the error state; never throws.
int kernel_image_status(std::string* message) noexcept;

}  // namespace nnscope::cuda
