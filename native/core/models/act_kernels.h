// nnscope core (models, internal): the per-ISA float32 elementwise kernels behind
// the activations (exp, tanh, sigmoid). Each tier is its own translation unit:
// activation.cpp (generic), activation_avx2.cpp, activation_avx512.cpp (compiled
// with their ISA flags). Those include only this header and act_math.h, whose
// definitions all have internal linkage, so no AVX code can be linked into a path
// that runs on a baseline CPU.
#pragma once
#include <cstddef>

namespace nnscope::models::detail {

struct ActKernel {
  const char* name;
  void (*exp)(std::size_t n, const float* x, float* y);      // y = e^x (clamped to [−87.3, 88.3])
  void (*tanh)(std::size_t n, const float* x, float* y);     // y = tanh x
  void (*sigmoid)(std::size_t n, const float* x, float* y);  // y = 1/(1 + e^−x)
};

const ActKernel& act_kernel_generic();
// nullptr when the build has no such tier (non-x86 target).
const ActKernel* act_kernel_avx2();
const ActKernel* act_kernel_avx512();
// The table for the active ISA tier (base/cpu.h: active_isa()).
const ActKernel& act_kernel();

}  // namespace nnscope::models::detail
