// nnscope core, attention family: exact attention kernels on the CPU — dense
// flash-style attention (tiled, online softmax, causal masking), sparse attention
// over per-head index lists, and the exact log-sum-exp merge of two partial
// results. Squeezed Attention (squeezed.h) composes them.
//
// Shapes: queries [Hq, Nq, d] float32 row-major; keys/values KvView [Hkv, N, d];
// Hq = G·Hkv (grouped-query attention: query head h reads KV head h / G).
// Outputs: out [Hq, Nq, d] float32 (normalised), lse [Hq, Nq] float32 natural-log
// log-sum-exp of the scaled logits (−Inf for a query that saw no key; its output
// row is 0). Accumulation is float32 with an online max; results are
// deterministic and identical for any thread count (work is split over (head,
// query-block) pairs, each reduced in key order).
#pragma once
#include <cstddef>
#include <cstdint>

#include "attention/kv.h"
#include "base/context.h"
#include "base/device.h"

namespace nnscope::attention {

struct Queries {
  const float* data = nullptr;
  std::size_t heads = 0, tokens = 0, d = 0;
};

struct Output {
  float* out = nullptr;  // [Hq, Nq, d]
  float* lse = nullptr;  // [Hq, Nq]; may be null
};

struct DenseOptions {
  float scale = 0;  // logit scale; 0 = 1/√d
  // Causal masking: query i sits at absolute position query_offset + i, keys at
  // 0..N-1; query i attends keys j ≤ query_offset + i. Prefill of N_u user tokens
  // against themselves: query_offset = 0 and N = N_u. Off: every key is attended.
  bool causal = false;
  std::size_t query_offset = 0;
  // Where to run (base/device.h: Auto → CUDA when a GPU answers, Cuda without one →
  // DeviceUnavailable). The GPU result agrees to float32 rounding, not bit for bit.
  Device device = Device::Cpu;
};

// Validates shapes (Shape / InvalidArgument: Hq % Hkv, d mismatch, d = 0 or > 1024,
// null pointers with nonzero sizes) and computes dense attention.
void dense_attention(const Queries& q, const KvView& k, const KvView& v, const DenseOptions& opts,
                     const Output& out, const OpContext& ctx);

// Per-group key lists in CSR form: group g attends keys indices[offsets[g] ..
// offsets[g+1]) of its KV head (ascending, in-range, unique: validated, InvalidArgument
// otherwise). Groups are query heads (per_query_head: Hq groups) or KV heads (Hkv
// groups, shared by the G query heads of the group).
struct Selection {
  const std::int32_t* indices = nullptr;
  const std::size_t* offsets = nullptr;  // groups + 1 entries
  bool per_query_head = false;
};

// Non-causal attention of every query over its group's selected keys.
// The lists are validated on the host before a Cuda device runs them.
void sparse_attention(const Queries& q, const KvView& k, const KvView& v, const Selection& sel,
                      float scale, const Output& out, const OpContext& ctx, Device device = Device::Cpu);

// Exact merge of two partial results over disjoint key sets, in place into a:
// lse = log(e^lse_a + e^lse_b), out = (e^{lse_a−lse}·out_a + e^{lse_b−lse}·out_b).
// rows × d outputs, rows lse values. Rows where both are −Inf stay (0, −Inf).
// CPU only: O(rows·d) work, less than the transfers a GPU would need.
void merge_partials(std::size_t rows, std::size_t d, float* out_a, float* lse_a, const float* out_b,
                    const float* lse_b);

}  // namespace nnscope::attention
