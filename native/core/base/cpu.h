// nnscope core: CPU feature detection for run-time kernel dispatch.
#pragma once

namespace nnscope {

// Instruction-set tiers with their own kernels, in increasing order.
enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa) noexcept;

// What this CPU (and OS) supports: Avx2 requires AVX2+FMA, Avx512 requires AVX-512F.
Isa cpu_isa() noexcept;

// The tier kernels actually use: min(cpu_isa(), limit). The limit starts at
// NNSCOPE_ISA (generic|avx2|avx512) when set, else unlimited; tests lower it to
// exercise every kernel on one machine.
Isa active_isa() noexcept;
void set_isa_limit(Isa limit) noexcept;

// The kernel table of the best tier that is active and built: avx512(), then
// avx2(), then `generic`. A tier's getter is called only when that tier is active
// (it may return nullptr when its file was built without the ISA).
template <typename K>
const K& select_kernel(const K* (*avx512)(), const K* (*avx2)(), const K& generic) {
  const Isa isa = active_isa();
  if (isa >= Isa::Avx512)
    if (const K* k = avx512()) return *k;
  if (isa >= Isa::Avx2)
    if (const K* k = avx2()) return *k;
  return generic;
}

}  // namespace nnscope
