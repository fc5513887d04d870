// nnscope CUDA backend: the attention family on DEVICE pointers — dense and sparse
// flash attention, the LSE merge, K-means, centroid scoring, key selection and the
// composed Squeezed Attention prefill / decode. A plain C++ header (no CUDA
// headers): a stream is a cudaStream_t passed as void* (nullptr = the legacy
// default stream), so .cpp files compiled without the CUDA toolkit can include it.
//
// Contracts are those of the CPU ops in attention/attention.h, attention/kmeans.h
// and attention/squeezed.h, with every data pointer of the argument structs a
// device pointer on the calling thread's current device (the structs themselves and
// the sizes in them live on the host). Every call only enqueues work on `stream`
// (asynchronous with respect to the host, never synchronising it — selections
// stay on the device, chunk tables are built there) and throws nnscope::Error:
// Shape / InvalidArgument / Dtype for what the host can check, TooLarge beyond the
// kernels' 32-bit ranges, Cuda on a launch failure. Errors inside kernels surface at
// the next synchronisation of the stream. Data-dependent checks of the CPU ops that
// need the device data (index lists ascending and in range, finite inputs) are the
// caller's: kernels skip out-of-range indices instead of reading them.
//
// Workspace: each op with a `*_workspace` query takes that many bytes of device
// memory (256-byte aligned) as `workspace`; it is scratch, overwritten by the call
// and free again once the stream has passed it. The size depends only on the
// shapes and options (never on data), so one buffer can be reused across calls.
//
// Determinism: no atomics. Every reduction has a fixed order that depends only on
// the sizes and the device's multiprocessor count (which sets the split-K plan), so
// the same call on the same device gives the same bits.
//
// Precision: float32 accumulation everywhere. The tensor-core path (fp16 / bf16
// K and V, d % 16 == 0, d ≤ 128, many query rows) rounds the scaled queries and the
// probabilities to the storage type before the products, like FlashAttention;
// AttentionKernel::Simt forces the float32-operand path.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attention/attention.h"
#include "attention/gpu.h"
#include "attention/kv.h"
#include "attention/squeezed.h"

namespace nnscope::cuda {

// ---------------------------------------------------------------- tuning
enum class AttentionKernel {
  Auto,  // tensor cores where eligible, else SIMT
  Simt,  // float32 CUDA-core kernels
  Mma,   // tensor cores; InvalidArgument where not eligible
};

struct AttentionTuning {
  AttentionKernel kernel = AttentionKernel::Auto;
  // Sparse attention: an upper bound on the total selected keys Σ_g len_g (0 = the
  // worst case, groups·N). It sizes the grid and the workspace; a total above it
  // drops whole key chunks (never reads out of bounds).
  std::size_t max_selected = 0;
  // Multiprocessors to plan the split-K for (0 = the current device's). Plans and
  // so results depend on it; tests pin it to compare devices.
  int multiprocessors = 0;
};

// Whether the tensor-core kernel can run this problem: K and V both F16 or both
// BF16, d % 16 == 0, d ≤ 128, 16-byte aligned K/V pointers, sm_80 or newer. Auto
// uses it when, in addition, a key list is read by more than 16 query rows.
bool attention_mma_eligible(const attention::Queries& q, const attention::KvView& k, const attention::KvView& v);

// ---------------------------------------------------------------- dense / sparse / merge
// Dense attention (attention.h: dense_attention) of q [Hq, Nq, d] over k, v
// [Hkv, N, d]; out [Hq, Nq, d], lse [Hq, Nq] (may be null). With few query rows per
// KV head (decode) the keys are split into chunks computed by separate blocks and
// merged in chunk order (flash-decoding), so one query fills the GPU.
std::size_t dense_attention_workspace(const attention::Queries& q, const attention::KvView& k,
                                      const attention::KvView& v, const AttentionTuning& tuning = {});
void dense_attention_async(const attention::Queries& q, const attention::KvView& k, const attention::KvView& v,
                           const attention::DenseOptions& opts, const attention::Output& out, void* workspace,
                           std::size_t workspace_bytes, void* stream, const AttentionTuning& tuning = {});

// Sparse attention (attention.h: sparse_attention) over CSR lists on the device:
// sel.indices (int32) and sel.offsets (groups + 1 size_t values) are DEVICE
// pointers; groups = Hq (per_query_head) or Hkv. Each group's list is cut into
// fixed-size chunks whose table is a prefix sum built on the device; chunks of every
// group share one grid (heads with more selected keys get more blocks) and a group's
// chunk partials are merged in chunk order. A group with an empty list gives (0, −Inf).
std::size_t sparse_attention_workspace(const attention::Queries& q, const attention::KvView& k,
                                       const attention::KvView& v, bool per_query_head,
                                       const AttentionTuning& tuning = {});
void sparse_attention_async(const attention::Queries& q, const attention::KvView& k, const attention::KvView& v,
                            const attention::Selection& sel, float scale, const attention::Output& out,
                            void* workspace, std::size_t workspace_bytes, void* stream,
                            const AttentionTuning& tuning = {});

// merge_partials of attention.h, in place into (out_a, lse_a), weights in float64.
void merge_partials_async(std::size_t rows, std::size_t d, float* out_a, float* lse_a, const float* out_b,
                          const float* lse_b, void* stream);

// ---------------------------------------------------------------- K-means
// Lloyd iterations of attention/kmeans.h on the device from given initial centres
// (in the clustered space: unit vectors for cosine), e.g. KmeansInit's choice made
// on the CPU. The result matches kmeans() with opts.initial_centroids = initial:
// the same assignment rule (ties → lowest index), reseeding, stop rule, float64
// means in point order (the same labels give the same centroids bit for bit).
// Labels can differ only where two centres are within float32 rounding of each
// other (dot products are summed in another order); dist2 / history use the
// expanded form ‖y‖² − 2y·c + ‖c‖² for every point (the CPU takes exact distances
// for points its Hamerly bounds skip), so they agree to float32 rounding, and a
// reseed can pick another point only when two candidate distances are that close.
struct DeviceKmeans {
  const float* x = nullptr;           // [n, d]
  std::size_t n = 0, d = 0, k = 0;    // 1 ≤ k ≤ n
  bool cosine = true;
  std::size_t iterations = 20;        // cap; 0 = assign once (+ reseed)
  const float* initial = nullptr;     // [k, d]
  // outputs
  float* centroids = nullptr;         // [k, d] raw means (cosine) / centres
  std::int32_t* labels = nullptr;     // [n]
  std::int32_t* sizes = nullptr;      // [k]
  double* history = nullptr;          // [max(iterations, 1)]: assignment inertia per iteration run
  double* inertia = nullptr;          // [1]
  std::int32_t* state = nullptr;      // [4]: converged (0/1), iterations run, clusters reseeded, scratch
};
std::size_t kmeans_workspace(std::size_t n, std::size_t d, std::size_t k, bool cosine);
void kmeans_async(const DeviceKmeans& a, void* workspace, std::size_t workspace_bytes, void* stream);

// The assignment step (kmeans_assign) of points y [n, d] (already in the clustered
// space) to centres [k, d]: labels [n], dist2 [n], *total = Σ dist2 (one device double).
std::size_t kmeans_assign_workspace(std::size_t n, std::size_t k);
void kmeans_assign_async(const float* y, std::size_t n, std::size_t d, const float* centres, std::size_t k,
                         std::int32_t* labels, float* dist2, double* total, void* workspace,
                         std::size_t workspace_bytes, void* stream);

// ---------------------------------------------------------------- Squeezed Attention
// A clustered context on the device (SqueezedContext's arrays, same layouts).
struct DeviceSqueezedContext {
  std::size_t heads = 0, tokens = 0, d = 0, window = 0, clusters = 0;
  const float* centroids = nullptr;     // [H, C, d]
  const std::int32_t* labels = nullptr; // [H, N − W]
  const std::int32_t* sizes = nullptr;  // [H, C]
  bool hierarchical = false;
  std::size_t coarse_clusters = 0;
  const float* coarse_centroids = nullptr;    // [H, C1, d]
  const std::int32_t* parent = nullptr;       // [H, C]
  const std::int32_t* coarse_sizes = nullptr; // [H, C1]
  std::size_t clustered() const noexcept { return tokens - window; }
};

// centroid_scores of squeezed.h: scores [groups, C] (float32) and scored [groups, C]
// (0/1); two-level lookups also write coarse_scores [groups, C1] when it is not null
// (coarse_kept = coarse_sizes > 0 && coarse score > coarse_threshold). Pass 1 is
// split over centroid chunks when there are few queries (decode fills the GPU).
// Scores agree with the CPU's to float32 rounding (logits summed in another order).
std::size_t centroid_scores_workspace(const DeviceSqueezedContext& c, const attention::Queries& q,
                                      const attention::ScoreOptions& opts, const AttentionTuning& tuning = {});
void centroid_scores_async(const DeviceSqueezedContext& c, const attention::Queries& q,
                           const attention::ScoreOptions& opts, float* scores, std::uint8_t* scored,
                           float* coarse_scores, void* workspace, std::size_t workspace_bytes, void* stream,
                           const AttentionTuning& tuning = {});

// select_keys of squeezed.h from device scores: indices (capacity groups·N int32)
// and offsets (groups + 1 size_t), ascending per group, window always kept, every
// SelectMode. Group g's kept count is offsets[g+1] − offsets[g].
std::size_t select_keys_workspace(const DeviceSqueezedContext& c, std::size_t groups);
void select_keys_async(const DeviceSqueezedContext& c, attention::GroupPolicy policy, std::size_t groups,
                       const float* scores, const std::uint8_t* scored, const attention::SelectOptions& opts,
                       std::int32_t* indices, std::size_t* offsets, void* workspace, std::size_t workspace_bytes,
                       void* stream);

// squeezed_prefill / squeezed_decode of squeezed.h, all on the device: scores →
// selection → sparse attention over the fixed K/V → dense attention over the
// user (causal) / tail (non-causal) K/V → LSE merge. `selection`, if not null,
// receives device pointers into the workspace (valid until it is reused) to the
// selection and the scores, for reports.
struct DeviceSelectionView {
  const std::int32_t* indices = nullptr;  // [offsets[groups]]
  const std::size_t* offsets = nullptr;   // [groups + 1]
  const float* scores = nullptr;          // [groups, C]
  const std::uint8_t* scored = nullptr;   // [groups, C]
  std::size_t groups = 0;
  bool per_query_head = false;
};
std::size_t squeezed_workspace(const DeviceSqueezedContext& c, const attention::Queries& q,
                               const attention::KvView& dense_k, const attention::KvView& dense_v, bool causal,
                               const attention::SelectOptions& opts, const AttentionTuning& tuning = {});
void squeezed_prefill_async(const attention::KvView& fixed_k, const attention::KvView& fixed_v,
                            const DeviceSqueezedContext& c, const attention::Queries& q,
                            const attention::KvView& user_k, const attention::KvView& user_v,
                            const attention::SelectOptions& opts, const attention::Output& out,
                            DeviceSelectionView* selection, void* workspace, std::size_t workspace_bytes,
                            void* stream, const AttentionTuning& tuning = {});
void squeezed_decode_async(const attention::KvView& fixed_k, const attention::KvView& fixed_v,
                           const DeviceSqueezedContext& c, const attention::Queries& q,
                           const attention::KvView& tail_k, const attention::KvView& tail_v,
                           const attention::SelectOptions& opts, const attention::Output& out,
                           DeviceSelectionView* selection, void* workspace, std::size_t workspace_bytes,
                           void* stream, const AttentionTuning& tuning = {});

// ---------------------------------------------------------------- host-pointer ops
// attention/gpu.h's GpuAttention over the kernels above on `device` (one object per
// device; thread-safe: every call has its own stream and buffers). The backend's
// attention_ops() returns it.
attention::GpuAttention& attention_ops(int device);

}  // namespace nnscope::cuda
