// nnscope CUDA backend: the GpuBackend (base/device.h) implemented with CUDA.
// A plain C++ header: no CUDA or Node headers, so the addon and the native tests
// include it from ordinary .cpp files.
//
// The rest of native/cuda: linalg.h (the same ops on device pointers and streams, for
// code that keeps data on the GPU), memory.h (RAII device buffers, streams, events,
// copies), arch.h (compiled architectures), linalg_kernels.cuh (the kernels, also
// compiled for the host emulator cuda_emu.h by the tests), check.h (internal:
// CUDA errors → nnscope::Error).
#pragma once
#include "base/device.h"

namespace nnscope::cuda {

// The process-wide backend. Never null; whether a GPU answered is backend()->available()
// (the probe runs once, lazily, and never throws).
GpuBackend* backend();

}  // namespace nnscope::cuda
