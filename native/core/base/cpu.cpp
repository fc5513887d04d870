#include "base/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace nnscope {

const char* isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::Generic: return "generic";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "generic";
}

Isa cpu_isa() noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Generic;
  }();
  return isa;
#else
  return Isa::Generic;
#endif
}

namespace {
int initial_limit() {
  const char* s = std::getenv("NNSCOPE_ISA");
  if (s) {
    if (!std::strcmp(s, "generic")) return 0;
    if (!std::strcmp(s, "avx2")) return 1;
  }
  return 2;
}
std::atomic<int>& limit() {
  static std::atomic<int> l{initial_limit()};
  return l;
}
}  // namespace

Isa active_isa() noexcept {
  const int c = static_cast<int>(cpu_isa());
  const int l = limit().load(std::memory_order_relaxed);
  return static_cast<Isa>(c < l ? c : l);
}

void set_isa_limit(Isa l) noexcept { limit().store(static_cast<int>(l), std::memory_order_relaxed); }

}  // namespace nnscope
