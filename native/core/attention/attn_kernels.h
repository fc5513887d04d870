// nnscope core, attention internals: the per-ISA kernel tables behind
// dense_attention / sparse_attention (attention.cpp). Not a public header.
//
// Each tier (generic, AVX2+FMA+F16C, AVX-512) lives in its own translation unit:
// the generic one in attention.cpp, the others in attn_avx2.cpp / attn_avx512.cpp,
// compiled with their ISA flags. All three instantiate the same templates
// (attn_impl.h) over a tier-specific vector type. The ISA files include only this
// header, attn_impl.h and <immintrin.h>, define everything else with internal
// linkage, and use no standard-library templates, so no inline function compiled
// with AVX flags can be picked by the linker for code that runs on a baseline CPU.
//
// Conventions shared by every kernel:
//  * Logits are in base 2: queries arrive pre-multiplied by scale·log2(e), the
//    running max m and sum l are of 2^(logit − m).
//  * The running state of a query is (m, l, o) with o the UNnormalised output
//    Σ 2^(s_j − m)·v_j; m = −Inf, l = 0, o = 0 before any key.
//  * A key tile is processed as: logits, masking, new max, rescale of (l, o) by
//    2^(m_old − m_new), then accumulation in key order. The arithmetic of a query
//    depends only on its own data, the tile boundaries and the kernel variant,
//    all chosen from the sizes and the ISA tier (never from the thread), so
//    results are reproducible bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nnscope::attention::detail {

// Storage codes (== static_cast<int>(attention::Storage)).
enum : int { kStoreF32 = 0, kStoreF16 = 1, kStoreBF16 = 2 };

// One key tile for one lane group of the block (GEMM-style) path. Queries are the
// L = lanes columns of qt; keys and values are float32 rows (staged or borrowed).
struct BlockStep {
  std::size_t d = 0, nk = 0, lanes = 0;  // lanes = vec or 2·vec of the tier
  const float* k = nullptr;              // nk rows, ldk apart
  std::size_t ldk = 0;
  const float* v = nullptr;  // nk rows, ldv apart
  std::size_t ldv = 0;
  const float* qt = nullptr;         // [d][lanes], pre-scaled queries (transposed)
  const std::int32_t* vis = nullptr;  // [lanes]: lane sees keys j < vis[lane] of the tile; null = all
  float* m = nullptr;                // [lanes] running max (base 2)
  float* l = nullptr;                // [lanes] running sum
  float* ot = nullptr;               // [d][lanes] unnormalised output (transposed)
  float* s = nullptr;                // scratch [nk][lanes]
};

// One key tile for a few query rows (the decode path): keys are read through row
// pointers in their storage and converted in registers.
struct RowsStep {
  std::size_t d = 0, nk = 0, rows = 0;
  int sk = kStoreF32, sv = kStoreF32;  // storage of the K and V rows
  const void* const* krows = nullptr;  // nk row pointers
  const void* const* vrows = nullptr;
  const float* q = nullptr;            // [rows][d] pre-scaled
  const std::int32_t* vis = nullptr;   // [rows]: row sees keys j < vis[row]; null = all
  float* m = nullptr;                  // [rows]
  float* l = nullptr;                  // [rows]
  float* o = nullptr;                  // [rows][d] unnormalised
  float* s = nullptr;                  // scratch [rows][nk + vec]
  // Contiguous rows (dense): prefetch this many bytes ahead of the K and V rows
  // being read, across page boundaries the hardware streamer stops at (0: off).
  std::size_t pf_dist = 0;
};

struct AttnKernel {
  const char* name;
  std::size_t vec;       // float lanes per vector register
  std::size_t rows_max;  // tasks with at most this many query rows take the rows path
  // dst[i·ldd + c] = float(row i, element c) for i < n, c < d.
  void (*load_rows)(int storage, const void* const* rows, std::size_t n, std::size_t d, float* dst,
                    std::size_t ldd);
  void (*block_step)(const BlockStep& a);
  void (*rows_step)(const RowsStep& a);
};

const AttnKernel& attn_kernel_generic();
// nullptr when the build has no such tier (non-x86 target).
const AttnKernel* attn_kernel_avx2();
const AttnKernel* attn_kernel_avx512();
// The table of the active ISA tier (base/cpu.h: active_isa()).
const AttnKernel& attn_kernel();

}  // namespace nnscope::attention::detail
