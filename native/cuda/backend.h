// nnscope CUDA backend: the GpuBackend (base/device.h) implemented with CUDA.
// A plain C++ header: no CUDA or Node headers, so the addon and the native tests
// include it from ordinary .cpp files.
#pragma once
#include "base/device.h"

namespace nnscope::cuda {

// The process-wide backend. Never null; whether a GPU answered is backend()->available()
// (the probe runs once, lazily, and never throws).
GpuBackend* backend();

}  // namespace nnscope::cuda
