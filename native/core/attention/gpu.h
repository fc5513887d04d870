// nnscope core, attention family: the GPU side of the attention ops, as the core
// sees it (no CUDA headers). A GpuBackend (base/device.h) returns it from
// attention_ops(); native/cuda/attention_backend.cpp implements it over the
// device-pointer kernels of cuda/attention.h. Every pointer here is a HOST pointer:
// the implementation uploads, runs on a stream, downloads. Contracts are those of
// the CPU ops (attention.h, kmeans.h, squeezed.h); results agree with the CPU to
// float32 rounding (sums run in another order), are deterministic on one device.
// Methods may throw nnscope::Error (Cuda, OutOfMemory, Cancelled, DeviceUnavailable).
#pragma once
#include <cstddef>
#include <memory>

#include "attention/attention.h"
#include "attention/kmeans.h"
#include "attention/squeezed.h"
#include "base/context.h"

namespace nnscope::attention {

// The device-resident state of a SqueezedDecoder: the fixed K/V, the context's
// centroids / labels / sizes and the growing tail stay in device memory, so a step
// uploads only its queries (and new tail rows) and downloads its output.
class DecoderEngine {
 public:
  virtual ~DecoderEngine() = default;
  virtual void append(const float* k, const float* v, std::size_t tokens) = 0;  // [H, tokens, d] each
  virtual void clear() = 0;
  virtual std::size_t tokens() const = 0;
  // squeezed_decode over the resident data; report (may be null) gets the stats,
  // and the selection's ORIGINAL token indices when `indices` is true.
  virtual void step(const Queries& q, const SelectOptions& opts, const Output& out, SqueezedReport* report,
                    bool indices, const OpContext& ctx) = 0;
};

class GpuAttention {
 public:
  virtual ~GpuAttention() = default;
  virtual void dense(const Queries& q, const KvView& k, const KvView& v, const DenseOptions& opts,
                     const Output& out, const OpContext& ctx) = 0;
  virtual void sparse(const Queries& q, const KvView& k, const KvView& v, const Selection& sel, float scale,
                      const Output& out, const OpContext& ctx) = 0;
  // Lloyd iterations from given initial centres y-space [k, d] (kmeans() chose them
  // on the CPU); the result's fields as kmeans() fills them (skipped = 0).
  virtual KmeansResult kmeans(const float* x, std::size_t n, std::size_t d, const KmeansOptions& opts,
                              const float* initial, const OpContext& ctx) = 0;
  virtual CentroidScores centroid_scores(const SqueezedContext& c, const Queries& q, const ScoreOptions& opts,
                                         const OpContext& ctx) = 0;
  // squeezed_prefill (causal = true, dense = user K/V) / squeezed_decode (false, tail K/V).
  virtual void squeezed(const KvView& fixed_k, const KvView& fixed_v, const SqueezedContext& c, const Queries& q,
                        const KvView& dense_k, const KvView& dense_v, bool causal, const SelectOptions& opts,
                        const Output& out, SqueezedReport* report, const OpContext& ctx) = 0;
  virtual std::unique_ptr<DecoderEngine> make_decoder(const SqueezedContext& c, const KvView& fixed_k,
                                                      const KvView& fixed_v, std::size_t capacity) = 0;
};

// The installed backend's attention ops for a resolved Cuda device (throws
// DeviceUnavailable when there is no GPU or the backend has no attention kernels).
GpuAttention& gpu_attention();

}  // namespace nnscope::attention
