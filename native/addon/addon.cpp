// nnscope addon: module entry. Installs the GPU backend (CUDA builds) and
// registers each family's functions.
#include "common.h"

#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/backend.h"
#endif

namespace nnscope::addon {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef NNSCOPE_HAVE_CUDA
  set_gpu_backend(cuda::backend());
#endif
  init_common(env, exports);
  init_system(env, exports);
  init_linalg(env, exports);
  init_models(env, exports);
  init_io(env, exports);
  init_hessian(env, exports);
  init_attention(env, exports);
  void init_landscape(Napi::Env, Napi::Object);  // landscape.cpp (common.h is not ours to edit)
  init_landscape(env, exports);
  void init_topology(Napi::Env, Napi::Object);  // topology.cpp
  init_topology(env, exports);
  return exports;
}

NODE_API_MODULE(nnscope, Init)

}  // namespace nnscope::addon
