// nnscope CUDA backend, internal: CUDA runtime errors → nnscope::Error.
// Included only by sources in native/cuda (it pulls in cuda_runtime_api.h).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "base/error.h"

namespace nnscope::cuda {

// "cudaErrorX: description" for an error value.
std::string describe(cudaError_t e);

// Clears the calling thread's last-error slot (so a non-sticky error such as an
// allocation failure is not reported again by a later cudaGetLastError) and throws:
// cudaErrorMemoryAllocation → OutOfMemory; no driver / no device → DeviceUnavailable;
// anything else → Cuda. `what` names the failing step.
[[noreturn]] void throw_cuda(cudaError_t e, const char* what);

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_cuda(e, what);
}

}  // namespace nnscope::cuda
