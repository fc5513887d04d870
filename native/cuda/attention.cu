// nnscope CUDA backend: the attention API (attention.h) over the kernels of
// attention_kernels*.cuh — validation, launch planning against the current device,
// workspace carving, and the choice between the SIMT and the tensor-core kernels.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>
#include <utility>

#include "base/buffer.h"
#include "base/error.h"
#include "cuda/attention.h"
#include "cuda/check.h"

namespace nnscope::cuda::akernels {

template <typename... P, typename... A>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, void* stream, A&&... args) {
  kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda(e, "attention kernel launch");
}

}  // namespace nnscope::cuda::akernels

#define NNSCOPE_KNS akernels
#include "cuda/attention_kernels.cuh"
#include "cuda/attention_kernels_kmeans.cuh"
#include "cuda/attention_kernels_mma.cuh"
#include "cuda/attention_kernels_squeezed.cuh"

namespace nnscope::cuda {

namespace {

namespace A = ::nnscope::attention;
namespace K = ::nnscope::cuda::akernels::attn;
using K::i64;

constexpr std::size_t kMaxD = 1024;

void require_int(std::size_t v, const char* what) {
  NNSCOPE_CHECK(v <= std::size_t(INT_MAX), ErrorCode::TooLarge,
                std::string("CUDA attention kernels take ") + what + " up to 2^31-1 (got " + std::to_string(v) + ")");
}

int device_sms(const AttentionTuning& t) {
  if (t.multiprocessors > 0) return t.multiprocessors;
  int dev = 0, sms = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return sms > 0 ? sms : 1;
}

int device_major() {
  int dev = 0, major = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
  return major;
}

void check_kv(const A::KvView& x, const char* name) {
  const std::string p = std::string(name) + ": ";
  NNSCOPE_CHECK(x.storage == A::Storage::F32 || x.storage == A::Storage::F16 || x.storage == A::Storage::BF16,
                ErrorCode::Dtype, p + "unknown storage type");
  NNSCOPE_CHECK(x.head_stride == 0 || x.head_stride >= x.tokens, ErrorCode::Shape,
                p + "head_stride is smaller than the token count");
  const std::size_t stride = x.head_stride ? x.head_stride : x.tokens;
  const std::size_t elems = checked_mul(checked_mul(x.heads, stride), x.d);
  NNSCOPE_CHECK(elems == 0 || x.data, ErrorCode::InvalidArgument, p + "null data");
  require_int(x.tokens, "tokens");
}

// q, k, v, out of one attention problem (attention.cpp's check_problem).
void check_problem(const char* op, const A::Queries& q, const A::KvView& k, const A::KvView& v,
                   const A::Output& out, float scale, bool check_out = true) {
  const std::string p = std::string(op) + ": ";
  check_kv(k, "keys");
  check_kv(v, "values");
  NNSCOPE_CHECK(q.d == k.d && q.d == v.d, ErrorCode::Shape,
                p + "head dimension mismatch (queries " + std::to_string(q.d) + ", keys " + std::to_string(k.d) +
                    ", values " + std::to_string(v.d) + ")");
  NNSCOPE_CHECK(q.d >= 1, ErrorCode::InvalidArgument, p + "head dimension d must be at least 1");
  NNSCOPE_CHECK(q.d <= kMaxD, ErrorCode::InvalidArgument,
                p + "head dimension d = " + std::to_string(q.d) + " exceeds the supported maximum 1024");
  NNSCOPE_CHECK(k.heads == v.heads && k.tokens == v.tokens, ErrorCode::Shape,
                p + "keys and values must have the same heads and tokens");
  if (q.heads > 0) {
    NNSCOPE_CHECK(k.heads > 0, ErrorCode::Shape, p + "no key/value heads");
    NNSCOPE_CHECK(q.heads % k.heads == 0, ErrorCode::Shape,
                  p + "query heads (" + std::to_string(q.heads) + ") must be a multiple of key/value heads (" +
                      std::to_string(k.heads) + ")");
  }
  NNSCOPE_CHECK(std::isfinite(scale), ErrorCode::InvalidArgument, p + "scale must be finite");
  const std::size_t qn = checked_mul(checked_mul(q.heads, q.tokens), q.d);
  NNSCOPE_CHECK(qn == 0 || q.data, ErrorCode::InvalidArgument, p + "queries: null data");
  NNSCOPE_CHECK(qn == 0 || out.out || !check_out, ErrorCode::InvalidArgument, p + "output: null data");
  require_int(q.tokens, "query tokens");
  if (k.heads) require_int(checked_mul(q.heads / k.heads, q.tokens), "query rows per KV head");
}

void check_workspace(std::size_t need, void* ws, std::size_t bytes, const char* op) {
  NNSCOPE_CHECK(bytes >= need, ErrorCode::InvalidArgument,
                std::string(op) + ": workspace of " + std::to_string(bytes) + " bytes, " + std::to_string(need) +
                    " needed");
  NNSCOPE_CHECK(need == 0 || ws, ErrorCode::InvalidArgument, std::string(op) + ": null workspace");
  NNSCOPE_CHECK(reinterpret_cast<unsigned long long>(ws) % 256 == 0, ErrorCode::InvalidArgument,
                std::string(op) + ": the workspace must be 256-byte aligned");
}

bool aligned16(const void* p) { return reinterpret_cast<unsigned long long>(p) % 16 == 0; }

bool mma_ok(const A::KvView& k, const A::KvView& v, std::size_t d) {
  if (k.storage != v.storage || k.storage == A::Storage::F32) return false;
  if (d % 16 != 0 || d > 128) return false;
  if (!aligned16(k.data) || !aligned16(v.data)) return false;
  return device_major() >= 8;
}

// Whether to run the tensor-core kernel for R rows per group.
bool use_mma(const AttentionTuning& t, const A::KvView& k, const A::KvView& v, std::size_t d, std::size_t R) {
  switch (t.kernel) {
    case AttentionKernel::Simt: return false;
    case AttentionKernel::Mma:
      NNSCOPE_CHECK(mma_ok(k, v, d), ErrorCode::InvalidArgument,
                    "attention: the tensor-core kernel needs K and V both fp16 or both bf16, d % 16 == 0, d <= 128, "
                    "16-byte aligned data and an sm_80+ device");
      return true;
    default: return R > 16 && mma_ok(k, v, d);
  }
}

// Launches the chosen flash kernel.
struct FlashRunner {
  void* stream;
  void operator()(const K::FlashPlan& plan, const K::FlashParams& p, i64 chunks) const {
    if (plan.mma) K::launch_flash_mma(p.d <= 64 ? 64 : 128, p.kst, p, chunks, stream);
    else K::launch_flash_simt(plan.simt, p, chunks, stream);
  }
};

// ---------------------------------------------------------------- dense / sparse planning
K::FlashPlan dense_setup(const A::Queries& q, const A::KvView& k, const A::KvView& v, const AttentionTuning& t) {
  const std::size_t G = k.heads ? q.heads / k.heads : 1;
  const bool mma = k.tokens > 0 && q.heads > 0 && use_mma(t, k, v, q.d, G * q.tokens);
  return K::dense_plan(q, k, device_sms(t), mma);
}

K::FlashPlan sparse_setup(const A::Queries& q, const A::KvView& k, const A::KvView& v, bool pq,
                          const AttentionTuning& t) {
  const std::size_t G = k.heads ? q.heads / k.heads : 1;
  const std::size_t R = pq ? q.tokens : G * q.tokens;
  const bool mma = k.tokens > 0 && q.heads > 0 && use_mma(t, k, v, q.d, R);
  return K::sparse_plan(q, k, pq, i64(t.max_selected), device_sms(t), mma);
}

// ---------------------------------------------------------------- squeezed problems
void check_context(const DeviceSqueezedContext& c, const char* op) {
  const std::string p = std::string(op) + ": context: ";
  NNSCOPE_CHECK(c.heads > 0 && c.tokens > 0 && c.d > 0, ErrorCode::Shape, p + "heads, tokens and d must be positive");
  NNSCOPE_CHECK(c.window < c.tokens, ErrorCode::Shape, p + "window must leave at least one clustered key");
  NNSCOPE_CHECK(c.clusters >= 1 && c.clusters <= c.clustered(), ErrorCode::Shape, p + "clusters must be in [1, N - W]");
  NNSCOPE_CHECK(c.d <= kMaxD, ErrorCode::InvalidArgument, p + "d exceeds 1024");
  NNSCOPE_CHECK(c.centroids && c.labels && c.sizes, ErrorCode::InvalidArgument, p + "null centroids, labels or sizes");
  require_int(c.tokens, "context tokens");
  require_int(checked_mul(c.heads, c.clusters), "heads x clusters");
  if (c.hierarchical) {
    NNSCOPE_CHECK(c.coarse_clusters >= 1 && c.coarse_clusters <= c.clusters, ErrorCode::Shape,
                  p + "coarse clusters must be in [1, C]");
    NNSCOPE_CHECK(c.coarse_centroids && c.parent && c.coarse_sizes, ErrorCode::InvalidArgument,
                  p + "null coarse level");
  }
}

void check_squeezed_queries(const DeviceSqueezedContext& c, const A::Queries& q, const char* op) {
  const std::string p = std::string(op) + ": ";
  NNSCOPE_CHECK(q.heads > 0 && q.tokens > 0, ErrorCode::Shape, p + "queries must have >= 1 head and >= 1 token");
  NNSCOPE_CHECK(q.d == c.d, ErrorCode::Shape, p + "query dim differs from the context's");
  NNSCOPE_CHECK(q.heads % c.heads == 0, ErrorCode::Shape, p + "query heads must be a multiple of KV heads");
  NNSCOPE_CHECK(q.data, ErrorCode::InvalidArgument, p + "null queries");
  NNSCOPE_CHECK(q.heads <= 65535, ErrorCode::TooLarge, p + "at most 65535 query heads");
  require_int(checked_mul(q.heads, q.tokens), "query rows");
}

float score_scale(float scale, std::size_t d, const char* op) {
  NNSCOPE_CHECK(std::isfinite(scale) && scale >= 0.0f, ErrorCode::InvalidArgument,
                std::string(op) + ": scale must be finite and >= 0 (0 = 1/sqrt(d))");
  return scale > 0.0f ? scale : static_cast<float>(1.0 / std::sqrt(double(d)));
}


// The problem of a composed call (or of its scoring part), validated.
K::SqzProblem squeezed_problem(const DeviceSqueezedContext& c, const A::Queries& q, const A::SelectOptions& o,
                               const AttentionTuning& t, const char* op) {
  check_context(c, op);
  check_squeezed_queries(c, q, op);
  NNSCOPE_CHECK(std::isfinite(o.score.coarse_threshold), ErrorCode::NonFinite,
                std::string(op) + ": coarse threshold must be finite");
  score_scale(o.score.scale, c.d, op);
  K::SqzProblem P = K::make_sqz_problem(c, q, o, device_sms(t), i64(t.max_selected));
  require_int(checked_mul(std::size_t(P.groups()), c.tokens), "groups x context tokens");
  return P;
}

void squeezed_kv(K::SqzProblem& P, const DeviceSqueezedContext& c, const A::Queries& q, const A::KvView& fk,
                 const A::KvView& fv, const A::KvView& dk, const A::KvView& dv, bool causal,
                 const A::Output& out, const AttentionTuning& t, const char* op) {
  const std::string p = std::string(op) + ": ";
  check_kv(fk, "fixed keys");
  check_kv(fv, "fixed values");
  NNSCOPE_CHECK(fk.heads == c.heads && fv.heads == c.heads && fk.tokens == c.tokens && fv.tokens == c.tokens &&
                    fk.d == c.d && fv.d == c.d,
                ErrorCode::Shape, p + "fixed K/V must be [H, N, d] of the context");
  check_kv(dk, "dense keys");
  check_kv(dv, "dense values");
  NNSCOPE_CHECK(dk.heads == c.heads && dv.heads == c.heads && dk.d == c.d && dv.d == c.d && dk.tokens == dv.tokens,
                ErrorCode::Shape, p + "dense K/V must be [H, T, d] with the context's H and d");
  if (causal) NNSCOPE_CHECK(dk.tokens == q.tokens, ErrorCode::Shape, p + "user K/V must have one row per user query");
  NNSCOPE_CHECK(out.out != nullptr, ErrorCode::InvalidArgument, p + "null output");
  K::set_sqz_kv(P, fk, fv, dk, dv, causal, out);
  const std::size_t R = P.pq ? q.tokens : std::size_t(P.G) * q.tokens;
  P.mma_sparse = use_mma(t, fk, fv, c.d, R);
  P.mma_dense = dk.tokens > 0 && use_mma(t, dk, dv, c.d, std::size_t(P.G) * q.tokens);
}

void squeezed_run(const DeviceSqueezedContext& c, const A::KvView& fk, const A::KvView& fv, const A::Queries& q,
                  const A::KvView& dk, const A::KvView& dv, bool causal, const A::SelectOptions& opts,
                  const A::Output& out, DeviceSelectionView* sel, void* ws, std::size_t bytes, void* stream,
                  const AttentionTuning& t, const char* op) {
  K::SqzProblem P = squeezed_problem(c, q, opts, t, op);
  squeezed_kv(P, c, q, fk, fv, dk, dv, causal, out, t, op);
  const K::SqzPlan S = K::plan_squeezed(P);
  check_workspace(S.bytes, ws, bytes, op);
  K::launch_squeezed(P, S, ws, stream, FlashRunner{stream});
  if (sel) {
    const K::SqzViews v = K::squeezed_views(S, ws);
    sel->indices = v.indices;
    sel->offsets = v.offsets;
    sel->scores = v.scores;
    sel->scored = v.scored;
    sel->groups = std::size_t(P.groups());
    sel->per_query_head = P.pq;
  }
}

}  // namespace

// ---------------------------------------------------------------- public API
bool attention_mma_eligible(const A::Queries& q, const A::KvView& k, const A::KvView& v) {
  return q.d == k.d && q.d == v.d && mma_ok(k, v, q.d);
}

std::size_t dense_attention_workspace(const A::Queries& q, const A::KvView& k, const A::KvView& v,
                                      const AttentionTuning& t) {
  check_problem("dense_attention", q, k, v, A::Output{}, 1.0f, false);
  if (q.heads == 0 || q.tokens == 0 || k.tokens == 0) return 0;
  return dense_setup(q, k, v, t).workspace();
}

void dense_attention_async(const A::Queries& q, const A::KvView& k, const A::KvView& v, const A::DenseOptions& o,
                           const A::Output& out, void* ws, std::size_t bytes, void* stream, const AttentionTuning& t) {
  check_problem("dense_attention", q, k, v, out, o.scale);
  if (q.heads == 0 || q.tokens == 0) return;
  const i64 rows = i64(q.heads) * i64(q.tokens);
  if (k.tokens == 0) {
    K::launch_fill_empty(rows, int(q.d), out.out, out.lse, stream);
    return;
  }
  const K::FlashPlan plan = dense_setup(q, k, v, t);
  check_workspace(plan.workspace(), ws, bytes, "dense_attention");
  const K::FlashParams p = K::dense_params(q, k, v, o, out);
  const FlashRunner run{stream};
  K::flash_pipeline(plan, p, ws, stream, [&](const K::FlashParams& fp, i64 chunks) { run(plan, fp, chunks); });
}

std::size_t sparse_attention_workspace(const A::Queries& q, const A::KvView& k, const A::KvView& v, bool pq,
                                       const AttentionTuning& t) {
  check_problem("sparse_attention", q, k, v, A::Output{}, 1.0f, false);
  if (q.heads == 0 || q.tokens == 0 || k.tokens == 0) return 0;
  return sparse_setup(q, k, v, pq, t).workspace();
}

void sparse_attention_async(const A::Queries& q, const A::KvView& k, const A::KvView& v, const A::Selection& sel,
                            float scale, const A::Output& out, void* ws, std::size_t bytes, void* stream,
                            const AttentionTuning& t) {
  check_problem("sparse_attention", q, k, v, out, scale);
  const std::size_t groups = sel.per_query_head ? q.heads : k.heads;
  NNSCOPE_CHECK(groups == 0 || sel.offsets, ErrorCode::InvalidArgument, "sparse_attention: null selection offsets");
  if (q.heads == 0 || q.tokens == 0) return;
  const i64 rows = i64(q.heads) * i64(q.tokens);
  if (k.tokens == 0) {  // every list must be empty
    K::launch_fill_empty(rows, int(q.d), out.out, out.lse, stream);
    return;
  }
  NNSCOPE_CHECK(sel.indices, ErrorCode::InvalidArgument, "sparse_attention: null selection indices");
  const K::FlashPlan plan = sparse_setup(q, k, v, sel.per_query_head, t);
  check_workspace(plan.workspace(), ws, bytes, "sparse_attention");
  const K::FlashParams p = K::sparse_params(q, k, v, sel, scale, out);
  const FlashRunner run{stream};
  K::flash_pipeline(plan, p, ws, stream, [&](const K::FlashParams& fp, i64 chunks) { run(plan, fp, chunks); });
}

void merge_partials_async(std::size_t rows, std::size_t d, float* out_a, float* lse_a, const float* out_b,
                          const float* lse_b, void* stream) {
  if (rows == 0) return;
  NNSCOPE_CHECK(lse_a && lse_b, ErrorCode::InvalidArgument, "merge_partials: null lse");
  NNSCOPE_CHECK(d == 0 || (out_a && out_b), ErrorCode::InvalidArgument, "merge_partials: null output");
  require_int(d, "d");
  checked_mul(rows, d);
  K::launch_lse_merge(i64(rows), int(d), out_a, lse_a, out_b, lse_b, stream);
}

// ---------------------------------------------------------------- K-means
namespace {
void check_kmeans_sizes(std::size_t n, std::size_t d, std::size_t k, const char* op) {
  NNSCOPE_CHECK(n > 0, ErrorCode::InvalidArgument, std::string(op) + ": no points (n = 0)");
  NNSCOPE_CHECK(d > 0, ErrorCode::InvalidArgument, std::string(op) + ": dimension d must be positive");
  NNSCOPE_CHECK(k > 0 && k <= n, ErrorCode::InvalidArgument, std::string(op) + ": clusters must be in [1, n]");
  require_int(n, "points");
  require_int(d, "d");
  checked_mul(n, d);
  checked_mul(k, d);
}
}  // namespace

std::size_t kmeans_workspace(std::size_t n, std::size_t d, std::size_t k, bool cosine) {
  check_kmeans_sizes(n, d, k, "kmeans");
  return K::plan_kmeans(i64(n), int(d), int(k), cosine).bytes;
}

void kmeans_async(const DeviceKmeans& a, void* ws, std::size_t bytes, void* stream) {
  check_kmeans_sizes(a.n, a.d, a.k, "kmeans");
  NNSCOPE_CHECK(a.x && a.initial && a.centroids && a.labels && a.sizes && a.history && a.inertia && a.state,
                ErrorCode::InvalidArgument, "kmeans: null pointer");
  require_int(a.iterations, "iterations");
  const K::KmeansPlan P = K::plan_kmeans(i64(a.n), int(a.d), int(a.k), a.cosine);
  check_workspace(P.bytes, ws, bytes, "kmeans");
  K::KmeansArgs ka;
  ka.x = a.x;
  ka.n = i64(a.n);
  ka.d = int(a.d);
  ka.k = int(a.k);
  ka.cosine = a.cosine ? 1 : 0;
  ka.iterations = int(a.iterations);
  ka.init = a.initial;
  ka.centroids = a.centroids;
  ka.labels = a.labels;
  ka.sizes = a.sizes;
  ka.history = a.history;
  ka.inertia = a.inertia;
  ka.state = a.state;
  K::launch_kmeans(P, ka, ws, stream);
}

std::size_t kmeans_assign_workspace(std::size_t n, std::size_t k) {
  require_int(n, "points");
  require_int(k, "clusters");
  return K::plan_assign(i64(n), int(k)).bytes;
}

void kmeans_assign_async(const float* y, std::size_t n, std::size_t d, const float* centres, std::size_t k,
                         std::int32_t* labels, float* dist2, double* total, void* ws, std::size_t bytes,
                         void* stream) {
  NNSCOPE_CHECK(d > 0 && k > 0, ErrorCode::InvalidArgument, "kmeans_assign: d and k must be positive");
  require_int(n, "points");
  require_int(k, "clusters");
  require_int(d, "d");
  NNSCOPE_CHECK(total, ErrorCode::InvalidArgument, "kmeans_assign: null total");
  NNSCOPE_CHECK(n == 0 || (y && centres && labels && dist2), ErrorCode::InvalidArgument,
                "kmeans_assign: null pointer");
  const K::AssignPlan P = K::plan_assign(i64(n), int(k));
  check_workspace(P.bytes, ws, bytes, "kmeans_assign");
  K::launch_assign(P, y, i64(n), int(d), centres, int(k), labels, dist2, total, ws, stream);
}

// ---------------------------------------------------------------- scores / selection
std::size_t centroid_scores_workspace(const DeviceSqueezedContext& c, const A::Queries& q,
                                      const A::ScoreOptions& opts, const AttentionTuning& t) {
  A::SelectOptions so;
  so.score = opts;
  const K::SqzProblem P = squeezed_problem(c, q, so, t, "centroid_scores");
  return K::plan_squeezed(P, true).bytes;
}

void centroid_scores_async(const DeviceSqueezedContext& c, const A::Queries& q, const A::ScoreOptions& opts,
                           float* scores, std::uint8_t* scored, float* coarse_scores, void* ws, std::size_t bytes,
                           void* stream, const AttentionTuning& t) {
  A::SelectOptions so;
  so.score = opts;
  const K::SqzProblem P = squeezed_problem(c, q, so, t, "centroid_scores");
  NNSCOPE_CHECK(scores && scored, ErrorCode::InvalidArgument, "centroid_scores: null output");
  const K::SqzPlan S = K::plan_squeezed(P, true);
  check_workspace(S.bytes, ws, bytes, "centroid_scores");
  K::launch_squeezed_scores(P, S, ws, scores, scored, coarse_scores, stream);
}

std::size_t select_keys_workspace(const DeviceSqueezedContext& c, std::size_t groups) {
  check_context(c, "select_keys");
  require_int(groups, "groups");
  return K::plan_select(int(groups), i64(c.tokens)).workspace();
}

void select_keys_async(const DeviceSqueezedContext& c, A::GroupPolicy policy, std::size_t groups,
                       const float* scores, const std::uint8_t* scored, const A::SelectOptions& opts,
                       std::int32_t* indices, std::size_t* offsets, void* ws, std::size_t bytes, void* stream) {
  check_context(c, "select_keys");
  const bool pq = policy == A::GroupPolicy::PerQueryHead;
  NNSCOPE_CHECK(groups > 0 && (pq ? groups % c.heads == 0 : groups == c.heads), ErrorCode::Shape,
                "select_keys: group count does not match the policy");
  NNSCOPE_CHECK(groups <= 65535, ErrorCode::TooLarge, "select_keys: at most 65535 groups");
  NNSCOPE_CHECK(scores && scored && indices && offsets, ErrorCode::InvalidArgument, "select_keys: null pointer");
  require_int(checked_mul(groups, c.tokens), "groups x context tokens");
  const K::SelectPlan S = K::plan_select(int(groups), i64(c.tokens));
  check_workspace(S.workspace(), ws, bytes, "select_keys");
  K::KeyMask m{};
  m.labels = c.labels;
  m.nc = i64(c.clustered());
  m.N = i64(c.tokens);
  m.G = int(pq ? groups / c.heads : 1);
  m.pq = pq ? 1 : 0;
  m.C = int(c.clusters);
  m.scores = scores;
  m.scored = scored;
  m.sizes = c.sizes;
  long long target = 0;
  K::select_mode(opts, c.clustered(), &m.mode, &m.thr, &target);
  K::launch_select_keys(S, m, int(groups), target, ws, indices, offsets, stream);
}

// ---------------------------------------------------------------- composed
std::size_t squeezed_workspace(const DeviceSqueezedContext& c, const A::Queries& q, const A::KvView& dk,
                               const A::KvView& dv, bool causal, const A::SelectOptions& opts,
                               const AttentionTuning& t) {
  K::SqzProblem P = squeezed_problem(c, q, opts, t, "squeezed_workspace");
  P.dk = K::kv_dev(dk);
  P.dv = K::kv_dev(dv);
  P.causal = causal;
  // The fixed K/V are not known here: plan for the kernel a matching call would pick
  // when the dense K/V have the same storage (the sizes of both plans are bounded by
  // the SIMT plan's partial buffers, which use the larger row count per block).
  P.mma_sparse = false;
  P.mma_dense = false;
  P.lse = nullptr;
  const std::size_t simt = K::plan_squeezed(P).bytes;
  P.mma_sparse = P.mma_dense = true;
  const std::size_t mma = K::plan_squeezed(P).bytes;
  return simt > mma ? simt : mma;
}

void squeezed_prefill_async(const A::KvView& fixed_k, const A::KvView& fixed_v, const DeviceSqueezedContext& c,
                            const A::Queries& q, const A::KvView& user_k, const A::KvView& user_v,
                            const A::SelectOptions& opts, const A::Output& out, DeviceSelectionView* selection,
                            void* ws, std::size_t bytes, void* stream, const AttentionTuning& t) {
  squeezed_run(c, fixed_k, fixed_v, q, user_k, user_v, true, opts, out, selection, ws, bytes, stream, t,
               "squeezed_prefill");
}

void squeezed_decode_async(const A::KvView& fixed_k, const A::KvView& fixed_v, const DeviceSqueezedContext& c,
                           const A::Queries& q, const A::KvView& tail_k, const A::KvView& tail_v,
                           const A::SelectOptions& opts, const A::Output& out, DeviceSelectionView* selection,
                           void* ws, std::size_t bytes, void* stream, const AttentionTuning& t) {
  squeezed_run(c, fixed_k, fixed_v, q, tail_k, tail_v, false, opts, out, selection, ws, bytes, stream, t,
               "squeezed_decode");
}

}  // namespace nnscope::cuda
