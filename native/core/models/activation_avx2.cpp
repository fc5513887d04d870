// nnscope core: the float32 activation kernels, avx2+fma tier (compiled with the
// tier's ISA flags; see act_kernels.h).
#include "models/act_kernels.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__) && defined(__FMA__)
#include "models/act_math.h"

namespace nnscope::models::detail {
namespace {
const ActKernel kTable = {"avx2+fma", am_exp_loop, am_tanh_loop, am_sigmoid_loop};
}  // namespace
const ActKernel* act_kernel_avx2() { return &kTable; }
}  // namespace nnscope::models::detail

#else

namespace nnscope::models::detail {
const ActKernel* act_kernel_avx2() { return nullptr; }
}  // namespace nnscope::models::detail

#endif
