// Installs the GPU backend (when built with CUDA) before tests run, as the addon does.
#pragma once
#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/backend.h"
#endif
#include "base/device.h"

namespace nnscope::test {
inline void setup() {
#ifdef NNSCOPE_HAVE_CUDA
  nnscope::set_gpu_backend(nnscope::cuda::backend());
#endif
}
// Skips the calling test unless a GPU is usable.
inline void require_gpu_or_skip();
}  // namespace nnscope::test

#include "harness.h"
inline void nnscope::test::require_gpu_or_skip() {
  auto info = nnscope::gpu_info();
  if (!info.available) skip("no usable GPU: " + info.reason);
}
