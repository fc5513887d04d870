// nnscope core, attention family: Squeezed Attention (Hooper et al., arXiv
// 2411.09688, ACL 2025) on the CPU — offline clustering of a fixed context's keys
// (flat or two-level), threshold calibration, centroid scoring, key selection
// with deterministic compaction, and the composed prefill / decode attention
// (sparse attention over the selected fixed-context keys, dense attention over
// the user / generated tokens, merged exactly by log-sum-exp).
//
// Notation: one layer; KV heads H (= H_kv), fixed-context tokens N, head dim d;
// the last W tokens (the observation window) are not clustered and are always
// attended; N_c = N − W keys are clustered into C fine clusters per head (and C1
// coarse clusters in hierarchical mode). Queries are [H_q, N_q, d] with
// H_q = G·H; query head h reads KV head h / G.
//
// Centroid score (research note §1.3), for a query q and the scored set S of
// non-empty clusters (hierarchical fine level: non-empty children of surviving
// coarse clusters):
//     a_j = (q·c_j)·scale,  m = max_{j∈S} a_j,  Z = Σ_{j∈S} n_j·exp(a_j − m),
//     p_j = exp(a_j − m) / Z   (j ∈ S; 0 for j ∉ S),
// averaged over the query set of a group. scale = 1/√d unless given. Logits are
// float32 dot products, exp(a_j − m) ≤ 1 is float32 (a few ulp), Z and the
// query average are float64: no logit size overflows, and empty clusters never
// enter the max or the sum. Scores are deterministic for any thread count.
// Groups (GroupPolicy): PerQueryHead — each query head has its own scores and
// selection (H_q groups); Shared — the G query heads of a KV head average their
// scores (equivalently: all their queries) and share one selection (H groups).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "attention/kmeans.h"
#include "attention/kv.h"
#include "base/buffer.h"
#include "base/context.h"

namespace nnscope::attention {

enum class GroupPolicy { PerQueryHead, Shared };

// ---------------------------------------------------------------- context
struct Calibration {
  std::vector<double> quantiles;          // p values in (0, 1): τ_p prunes ~p of the keys
  std::vector<double> thresholds;         // fine-level τ_p, one per quantile
  std::vector<double> coarse_quantiles;   // hierarchical only
  std::vector<double> coarse_thresholds;  // coarse-level τ¹, one per coarse quantile
  GroupPolicy policy = GroupPolicy::PerQueryHead;  // the policy the scores were pooled with
};

struct SqueezedContext {
  std::size_t heads = 0;   // H (KV heads)
  std::size_t tokens = 0;  // N
  std::size_t d = 0;
  std::size_t window = 0;  // W (effective: 0 ≤ W ≤ N − 1)
  std::size_t clustered() const noexcept { return tokens - window; }  // N_c

  // Fine level.
  std::size_t clusters = 0;            // C
  std::vector<float> centroids;        // [H, C, d] float32: mean of the raw keys of each cluster
  std::vector<std::int32_t> labels;    // [H, N_c]: cluster of each clustered key
  std::vector<std::int32_t> sizes;     // [H, C]: keys per cluster

  // Coarse level (hierarchical only; empty otherwise).
  bool hierarchical = false;
  std::size_t coarse_clusters = 0;          // C1
  std::vector<float> coarse_centroids;      // [H, C1, d]: unweighted mean of the member fine centroids
  std::vector<std::int32_t> parent;         // [H, C]: coarse cluster of each fine centroid
  std::vector<std::int32_t> coarse_sizes;   // [H, C1]: KEYS per coarse cluster

  Calibration calibration;  // empty until calibrate()

  // Diagnostics of the build (per head): K-means iterations run, reseeds, inertia.
  std::vector<std::size_t> kmeans_iterations;  // [H]
  std::vector<std::size_t> kmeans_reseeded;    // [H]
  std::vector<double> kmeans_inertia;          // [H]
};

// Checks that a context (e.g. one assembled from a file) is consistent: array
// sizes, labels / parents in range, sizes equal to the label counts, coarse sizes
// equal to the sums of their children, finite centroids and thresholds.
// Throws Shape / InvalidArgument / NonFinite.
void validate_context(const SqueezedContext& c);

struct BuildOptions {
  double centroid_fraction = 0.05;  // C = ⌊fraction·N_c⌋, clamped to [1, N_c]; in (0, 1]
  std::size_t clusters = 0;         // > 0: explicit C (clamped to N_c), overrides the fraction
  std::size_t window = 100;         // W, clamped to N − 1 so at least one key is clustered
  std::size_t iterations = 20;      // Lloyd iterations per head
  KmeansInit init = KmeansInit::PlusPlus;
  std::uint64_t seed = 0;           // head h uses Philox stream h (coarse level: stream H + h)
  bool hierarchical = false;
  double coarse_fraction = 0.01;    // C1 = ⌊fraction·N_c⌋, clamped to [1, C]; in (0, 1]
  std::size_t coarse_clusters = 0;  // > 0: explicit C1 (clamped to C)
  Device device = Device::Cpu;      // where K-means runs (KmeansOptions::device)
};

// Clusters the first N_c keys of every head (cosine K-means, raw-mean centroids;
// hierarchical: a second cosine K-means over each head's fine centroids). Keys may
// be any Storage. Validates: N = 0, d = 0, null data, fractions outside (0, 1]
// (InvalidArgument); NaN/Inf keys (NonFinite). Reports progress in heads
// (done, H), with K-means iterations as fractions of a head; checks
// cancellation inside K-means.
SqueezedContext build_context(const KvView& keys, const BuildOptions& opts, const OpContext& ctx = {});

// ---------------------------------------------------------------- scoring
struct ScoreOptions {
  GroupPolicy policy = GroupPolicy::PerQueryHead;
  float scale = 0;  // 0 = 1/√d
  // Hierarchical contexts: use the two-level lookup (coarse scores, keep coarse
  // clusters whose score > coarse_threshold, then score only their children).
  // false, or a flat context: every non-empty fine cluster is scored.
  bool hierarchical = true;
  double coarse_threshold = 0;  // τ¹ (e.g. calibration.coarse_thresholds[i]); 0 keeps every non-empty coarse cluster
  // Where the scores are computed (select_keys then compacts on the CPU); in
  // SelectOptions::score also where squeezed_prefill / squeezed_decode run (all
  // of it on the GPU). Cuda agrees with the CPU to float32 rounding of the scores
  // (so a cluster within rounding of τ, or of a ranking tie, may switch sides).
  Device device = Device::Cpu;
};

struct CentroidScores {
  GroupPolicy policy = GroupPolicy::PerQueryHead;
  std::size_t groups = 0, clusters = 0, coarse_clusters = 0;
  std::vector<float> scores;            // [groups, C]: s_j averaged over the group's queries (0 if not scored)
  std::vector<std::uint8_t> scored;     // [groups, C]: 1 where the fine centroid was in S
  std::vector<float> coarse_scores;     // [groups, C1] (two-level lookup only)
  std::vector<std::uint8_t> coarse_kept;  // [groups, C1]: coarse score > coarse_threshold
  std::vector<std::size_t> centroids_scored;  // [groups]: flat C; two-level C1 + children scored
};

// Scores the fine centroids of every group for the queries q [H_q, N_q, d]
// (N_q ≥ 1; H_q a multiple of H). Validates shapes (Shape / InvalidArgument).
CentroidScores centroid_scores(const SqueezedContext& c, const Queries& q, const ScoreOptions& opts,
                               const OpContext& ctx = {});

// ---------------------------------------------------------------- calibration
// Per-key calibration scores in run-length form: value scores[i] occurs counts[i]
// times (a cluster's score repeated for each of its keys). Pools may be appended
// to across heads and layers, then reduced with pooled_quantiles.
struct ScorePool {
  std::vector<float> scores;
  std::vector<std::int64_t> counts;
  std::size_t keys() const noexcept;  // Σ counts
};

// Appends to `fine` the per-key fine scores (flat lookup over all non-empty fine
// clusters) of every group and clustered key, averaged over the calibration
// queries; and, when `coarse` is non-null and the context is hierarchical, the
// per-key coarse scores (coarse centroids, coarse sizes in keys).
void pool_calibration_scores(const SqueezedContext& c, const Queries& calib, GroupPolicy policy, float scale,
                             ScorePool& fine, ScorePool* coarse, const OpContext& ctx = {},
                             Device device = Device::Cpu);  // device: the fine scores

// Quantiles of the pooled multiset with numpy.quantile's default rule (method
// "linear": virtual index p·(n−1), linear interpolation between neighbours,
// numpy's _lerp). p in (0, 1) (InvalidArgument otherwise); empty pool →
// InvalidArgument. Never NaN for finite pools.
std::vector<double> pooled_quantiles(const ScorePool& pool, const std::vector<double>& p);

struct CalibrateOptions {
  std::vector<double> quantiles = {0.5, 0.7, 0.8, 0.9};
  std::vector<double> coarse_quantiles = {0.5};  // hierarchical contexts only
  GroupPolicy policy = GroupPolicy::PerQueryHead;
  float scale = 0;
  Device device = Device::Cpu;  // where the fine calibration scores are computed
};

// Calibrates the context with its own pool (one layer): fills and returns
// c.calibration. To pool across layers use pool_calibration_scores and
// pooled_quantiles, then store the thresholds in each layer's calibration.
// The fine thresholds come from the flat fine scores (all clusters in the
// denominator), as the reference does; the coarse from the coarse scores.
Calibration calibrate(SqueezedContext& c, const Queries& calib, const CalibrateOptions& opts,
                      const OpContext& ctx = {});

// ---------------------------------------------------------------- selection
enum class SelectMode {
  Threshold,     // keep a clustered key iff its cluster's score > threshold (strict)
  KeepFraction,  // keep the best clusters' keys up to ⌈keep_fraction·N_c⌉ keys
  Budget,        // the same with a key budget (clamped to N_c)
};

struct SelectOptions {
  SelectMode mode = SelectMode::Threshold;
  double threshold = 0;        // Threshold: τ
  double keep_fraction = 0.1;  // KeepFraction: in [0, 1]
  std::size_t budget = 0;      // Budget: clustered keys to keep (window keys not counted)
  ScoreOptions score;          // policy, scale, two-level lookup and τ¹
};
// KeepFraction / Budget rank the scored clusters by score, descending, ties by
// lower cluster index, and take whole clusters while they fit; the boundary cluster
// contributes its lowest-index keys so that exactly min(target, scored keys) keys
// are kept. The last W (window) keys are always kept in every mode.

struct GroupStats {
  std::size_t kept_keys = 0;         // selected fixed-context keys, window included
  std::size_t kept_clustered = 0;    // of which clustered (window excluded)
  double kept_fraction = 0;          // kept_keys / N
  std::size_t centroids_scored = 0;  // flat: C; two-level: C1 + children scored
  double kv_budget = 0;              // §1.5: kept_fraction + centroids_scored / (2·N)
};

struct SqueezedSelection {
  bool per_query_head = false;
  std::size_t groups = 0;
  std::vector<std::int32_t> indices;  // CSR: token indices in [0, N), ascending per group
  std::vector<std::size_t> offsets;   // groups + 1
  std::vector<GroupStats> stats;      // [groups]
  Selection view() const noexcept { return {indices.data(), offsets.data(), per_query_head}; }
};

// Selection from precomputed scores (deterministic compaction: for each group a
// count per cluster, then one pass over the labels in token order).
SqueezedSelection select_keys(const SqueezedContext& c, const CentroidScores& scores, const SelectOptions& opts,
                              const OpContext& ctx = {});
// Scoring + selection in one call.
SqueezedSelection select_keys(const SqueezedContext& c, const Queries& q, const SelectOptions& opts,
                              const OpContext& ctx = {});

// ---------------------------------------------------------------- attention
struct SqueezedReport {
  SqueezedSelection selection;  // what was attended in the fixed context
};

// Prefill of N_u user tokens after a fixed context: q [H_q, N_u, d]; fixed K/V
// [H, N, d] (the clustered context's keys and values); user K/V [H, N_u, d].
// One selection per group from the scores averaged over all N_u queries; sparse
// attention over the selected fixed keys (non-causal), dense causal attention over
// the user tokens (query i sees user keys 0..i), merged. out [H_q, N_u, d], lse
// [H_q, N_u] (may be null). report may be null.
void squeezed_prefill(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
                      const KvView& user_k, const KvView& user_v, const SelectOptions& opts, const Output& out,
                      SqueezedReport* report, const OpContext& ctx = {});

// Decode: q [H_q, N_q, d] (normally N_q = 1) attends the selected fixed keys and
// every key of the dense tail (user + generated tokens; any head_stride; may have
// 0 tokens), both non-causal, merged.
void squeezed_decode(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
                     const KvView& tail_k, const KvView& tail_v, const SelectOptions& opts, const Output& out,
                     SqueezedReport* report, const OpContext& ctx = {});

// A growing float32 K/V tail [H, capacity, d] for decode. append() takes
// `tokens` new rows per head (k and v [H, tokens, d]); the capacity doubles when
// needed (views taken before a reallocation become invalid).
class DecodeTail {
 public:
  DecodeTail() = default;
  DecodeTail(std::size_t heads, std::size_t d, std::size_t capacity);
  void append(const float* k, const float* v, std::size_t tokens);
  void clear() noexcept { tokens_ = 0; }
  std::size_t heads() const noexcept { return heads_; }
  std::size_t d() const noexcept { return d_; }
  std::size_t tokens() const noexcept { return tokens_; }
  std::size_t capacity() const noexcept { return capacity_; }
  KvView keys() const noexcept;
  KvView values() const noexcept;

 private:
  void reserve(std::size_t capacity);
  std::size_t heads_ = 0, d_ = 0, tokens_ = 0, capacity_ = 0;
  std::vector<float> k_, v_;
};

class DecoderEngine;  // attention/gpu.h

// Repeated decode after one fixed context, with the fixed K/V bound once.
// CPU: the constructor copies the fixed K/V (in their storage) into cluster-sorted
// order — per head, the keys of cluster 0 in token order, then cluster 1, …, then
// the W window tokens — so a step reads each selected cluster as one contiguous
// stream (memory: one more copy of K and V). Cuda: the K/V, the context and the
// tail are uploaded once and stay on the device (GpuAttention::make_decoder).
// step() selects exactly what squeezed_decode selects (same scores, same rule,
// same kept keys; reported indices are ORIGINAL token indices, ascending) and
// equals it to float32 rounding (the keys are summed in another order); its CPU
// result is deterministic for any thread count. Not thread-safe: one call at a time.
class SqueezedDecoder {
 public:
  // Validates the K/V against the context ([H, N, d], Shape otherwise) and resolves
  // the device (DeviceUnavailable for Cuda without a GPU). The context is shared.
  SqueezedDecoder(std::shared_ptr<const SqueezedContext> c, const KvView& fixed_k, const KvView& fixed_v,
                  std::size_t capacity, Device device = Device::Cpu);
  ~SqueezedDecoder();
  SqueezedDecoder(const SqueezedDecoder&) = delete;
  SqueezedDecoder& operator=(const SqueezedDecoder&) = delete;

  Device device() const noexcept { return device_; }  // resolved: Cpu or Cuda
  const SqueezedContext& context() const noexcept { return *c_; }
  std::size_t tokens() const;  // tail tokens
  void append(const float* k, const float* v, std::size_t tokens);  // [H, tokens, d] each
  void clear();
  // squeezed_decode of q against the bound fixed K/V and the tail (opts.score.device
  // is ignored: the decoder's device runs it). report may be null; `indices` = false
  // leaves report->selection's indices / offsets empty (stats only).
  void step(const Queries& q, const SelectOptions& opts, const Output& out, SqueezedReport* report,
            bool indices = true, const OpContext& ctx = {});

 private:
  std::shared_ptr<const SqueezedContext> c_;
  Device device_ = Device::Cpu;
  std::unique_ptr<DecoderEngine> gpu_;
  // CPU state.
  KvView k_, v_;                       // views of the sorted copies
  AlignedBuffer<unsigned char> kbuf_, vbuf_;
  std::vector<std::int32_t> start_;    // [H, C + 1]: first sorted position of each cluster
  std::vector<std::int32_t> token_;    // [H, N_c]: original token at each sorted position
  DecodeTail tail_;
  std::vector<std::int32_t> takes_, pos_;
  std::vector<std::size_t> offsets_;
  std::vector<float> lse_a_, out_b_, lse_b_;
};

}  // namespace nnscope::attention
