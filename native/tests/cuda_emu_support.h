// nnscope native tests: the host-emulator environment for the CUDA kernel sources.
// Include it, then the cuda/*_kernels.cuh files to test: they compile into
// namespace nnscope::cuda::emu (NNSCOPE_KNS = emu), their launches run under
// cuda/cuda_emu.h on host memory, so they never meet the real kernels.
#pragma once
#include <utility>

#include "cuda/cuda_emu.h"

namespace nnscope::cuda::emu {
template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* /*stream*/, A&&... args) {
  ::nnscope::cuda_emu::launch(kernel, grid, block, std::forward<A>(args)...);
}
}  // namespace nnscope::cuda::emu

#define NNSCOPE_KNS emu
