// nnscope CUDA backend: attention/gpu.h (host pointers) over the device-pointer
// kernels of cuda/attention.h. Host code only. Each stateless call makes the device
// current, creates its own stream, uploads (packed: KvViews with a head stride
// become [H, T, d]), runs, downloads and frees; the decoder engine keeps the fixed
// K/V, the context and the tail on the device between steps.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "attention/gpu.h"
#include "cuda/attention.h"
#include "base/buffer.h"
#include "cuda/check.h"
#include "cuda/memory.h"

namespace nnscope::cuda {
namespace {

namespace A = nnscope::attention;
using std::size_t;

// Per-call resources (the destructor waits for the stream before freeing).
class Staging {
 public:
  explicit Staging(int device) : stream_(make_stream(device)) {}
  ~Staging() { stream_.synchronize_noexcept(); }
  void* stream() const noexcept { return stream_.handle(); }
  void sync() const { stream_.synchronize(); }
  void* bytes(size_t n) {
    if (n == 0) return nullptr;
    buffers_.emplace_back(n);
    return buffers_.back().data();
  }
  template <typename T>
  T* alloc(size_t count) {
    return static_cast<T*>(bytes(checked_mul(count, sizeof(T))));
  }
  template <typename T>
  T* upload(const T* src, size_t count) {
    T* d = alloc<T>(count);
    if (count) copy_to_device(d, src, count * sizeof(T), stream());
    return d;
  }
  // A KvView packed on the device (head_stride = tokens).
  A::KvView upload(const A::KvView& x) {
    A::KvView d = x;
    d.head_stride = 0;
    const size_t eb = A::storage_bytes(x.storage), row = checked_mul(x.tokens * x.d, eb);
    void* p = bytes(checked_mul(x.heads, row));
    if (p && row)
      copy_rows_to_device(p, row, x.data, (x.head_stride ? x.head_stride : x.tokens) * x.d * eb, row, x.heads,
                          stream());
    d.data = p;
    return d;
  }

 private:
  static Stream make_stream(int device) {
    set_device(device);
    return Stream();
  }
  Stream stream_;
  std::vector<DeviceBuffer> buffers_;
};

// The context's arrays on the device (owned by a Staging or a DecoderEngine).
template <class Up>
DeviceSqueezedContext upload_context(const A::SqueezedContext& c, Up&& up) {
  DeviceSqueezedContext d;
  d.heads = c.heads;
  d.tokens = c.tokens;
  d.d = c.d;
  d.window = c.window;
  d.clusters = c.clusters;
  d.centroids = up(c.centroids);
  d.labels = up(c.labels);
  d.sizes = up(c.sizes);
  d.hierarchical = c.hierarchical;
  if (c.hierarchical) {
    d.coarse_clusters = c.coarse_clusters;
    d.coarse_centroids = up(c.coarse_centroids);
    d.parent = up(c.parent);
    d.coarse_sizes = up(c.coarse_sizes);
  }
  return d;
}

size_t group_count(const A::SqueezedContext& c, const A::Queries& q, A::GroupPolicy p) {
  return p == A::GroupPolicy::PerQueryHead ? q.heads : c.heads;
}

bool two_level(const A::SqueezedContext& c, const A::ScoreOptions& o) { return c.hierarchical && o.hierarchical; }

// Host stats / selection from the device selection view.
void fill_report(const A::SqueezedContext& c, const A::ScoreOptions& so, const DeviceSelectionView& v, bool indices,
                 A::SqueezedReport& r, void* stream) {
  const size_t G = v.groups, C = c.clusters, N = c.tokens, W = c.window;
  std::vector<size_t> off(G + 1);
  copy_to_host(off.data(), v.offsets, (G + 1) * sizeof(size_t), stream);
  std::vector<std::uint8_t> scored;
  const bool two = two_level(c, so);
  if (two) {
    scored.resize(G * C);
    copy_to_host(scored.data(), v.scored, G * C, stream);
  }
  A::SqueezedSelection& s = r.selection;
  s.per_query_head = v.per_query_head;
  s.groups = G;
  s.indices.clear();
  s.offsets.clear();
  if (indices) {
    // the offsets size the copy
    check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "squeezed report");
    s.indices.resize(off[G]);
    if (off[G]) copy_to_host(s.indices.data(), v.indices, off[G] * sizeof(std::int32_t), stream);
    s.offsets = off;
  }
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "squeezed report");
  s.stats.assign(G, A::GroupStats{});
  for (size_t g = 0; g < G; ++g) {
    A::GroupStats& st = s.stats[g];
    st.kept_keys = off[g + 1] - off[g];
    st.kept_clustered = st.kept_keys - std::min(W, st.kept_keys);
    st.kept_fraction = double(st.kept_keys) / double(N);
    size_t sc = C;
    if (two) {
      sc = c.coarse_clusters;
      for (size_t j = 0; j < C; ++j) sc += scored[g * C + j] != 0;
    }
    st.centroids_scored = sc;
    st.kv_budget = st.kept_fraction + double(sc) / (2.0 * double(N));
  }
}

// ---------------------------------------------------------------- decoder engine
class CudaDecoder final : public A::DecoderEngine {
 public:
  CudaDecoder(int device, const A::SqueezedContext& c, const A::KvView& k, const A::KvView& v, size_t capacity)
      : device_(device), c_(c), stream_(make_stream(device)) {
    auto up = [&](const auto& vec) {
      using T = typename std::decay_t<decltype(vec)>::value_type;
      return static_cast<const T*>(keep(vec.data(), vec.size() * sizeof(T)));
    };
    dctx_ = upload_context(c_, up);
    fk_ = resident(k);
    fv_ = resident(v);
    reserve(std::max<size_t>(capacity, 1));
    stream_.synchronize();
  }
  ~CudaDecoder() override { stream_.synchronize_noexcept(); }

  size_t tokens() const override { return tokens_; }
  void clear() override { tokens_ = 0; }

  void append(const float* k, const float* v, size_t tokens) override {
    if (tokens == 0) return;
    NNSCOPE_CHECK(k && v, ErrorCode::InvalidArgument, "SqueezedDecoder::append: null rows");
    set_device(device_);
    if (tokens_ + tokens > capacity_) reserve(std::max(tokens_ + tokens, 2 * capacity_));
    const size_t d = c_.d, row = tokens * d * sizeof(float), pitch = capacity_ * d * sizeof(float);
    copy_rows_to_device(tk_.as<float>() + tokens_ * d, pitch, k, row, row, c_.heads, stream_.handle());
    copy_rows_to_device(tv_.as<float>() + tokens_ * d, pitch, v, row, row, c_.heads, stream_.handle());
    stream_.synchronize();
    tokens_ += tokens;
  }

  void step(const A::Queries& q, const A::SelectOptions& opts, const A::Output& out, A::SqueezedReport* report,
            bool indices, const OpContext& ctx) override {
    ctx.check();
    set_device(device_);
    const size_t qn = checked_mul(checked_mul(q.heads, q.tokens), q.d), rows = q.heads * q.tokens;
    grow(qbuf_, qn * sizeof(float));
    grow(obuf_, qn * sizeof(float));
    grow(lbuf_, rows * sizeof(float));
    copy_to_device(qbuf_.data(), q.data, qn * sizeof(float), stream_.handle());
    A::Queries dq = q;
    dq.data = qbuf_.as<float>();
    A::KvView tk, tv;
    tk.data = tk_.data();
    tk.heads = c_.heads;
    tk.tokens = tokens_;
    tk.d = c_.d;
    tk.head_stride = capacity_;
    tv = tk;
    tv.data = tv_.data();
    const size_t ws = squeezed_workspace(dctx_, dq, tk, tv, false, opts);
    grow(work_, ws);
    DeviceSelectionView sel;
    squeezed_decode_async(fk_, fv_, dctx_, dq, tk, tv, opts, A::Output{obuf_.as<float>(), lbuf_.as<float>()}, &sel,
                          work_.data(), ws, stream_.handle());
    copy_to_host(out.out, obuf_.data(), qn * sizeof(float), stream_.handle());
    if (out.lse) copy_to_host(out.lse, lbuf_.data(), rows * sizeof(float), stream_.handle());
    if (report) fill_report(c_, opts.score, sel, indices, *report, stream_.handle());
    stream_.synchronize();
  }

 private:
  static Stream make_stream(int device) {
    set_device(device);
    return Stream();
  }
  static void grow(DeviceBuffer& b, size_t bytes) {
    if (b.bytes() < bytes) b = DeviceBuffer(bytes);
  }
  const void* keep(const void* src, size_t bytes) {
    owned_.emplace_back(bytes);
    if (bytes) copy_to_device(owned_.back().data(), src, bytes, stream_.handle());
    return owned_.back().data();
  }
  A::KvView resident(const A::KvView& x) {
    A::KvView d = x;
    d.head_stride = 0;
    const size_t eb = A::storage_bytes(x.storage), row = x.tokens * x.d * eb;
    owned_.emplace_back(checked_mul(x.heads, row));
    copy_rows_to_device(owned_.back().data(), row, x.data, (x.head_stride ? x.head_stride : x.tokens) * x.d * eb,
                        row, x.heads, stream_.handle());
    d.data = owned_.back().data();
    return d;
  }
  void reserve(size_t capacity) {
    const size_t d = c_.d, bytes = checked_mul(checked_mul(c_.heads, capacity), d * sizeof(float));
    DeviceBuffer k(bytes), v(bytes);
    if (tokens_ > 0) {
      const size_t row = tokens_ * d * sizeof(float);
      for (DeviceBuffer* p : {&k, &v}) {
        const DeviceBuffer& src = p == &k ? tk_ : tv_;
        check(cudaMemcpy2DAsync(p->data(), capacity * d * sizeof(float), src.data(), capacity_ * d * sizeof(float), row,
                                c_.heads, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream_.handle())),
              "decoder tail growth");
      }
      stream_.synchronize();
    }
    tk_ = std::move(k);
    tv_ = std::move(v);
    capacity_ = capacity;
  }

  int device_;
  A::SqueezedContext c_;  // host copy (shapes, sizes for reports)
  Stream stream_;
  std::vector<DeviceBuffer> owned_;
  DeviceSqueezedContext dctx_;
  A::KvView fk_, fv_;
  DeviceBuffer tk_, tv_, qbuf_, obuf_, lbuf_, work_;
  size_t tokens_ = 0, capacity_ = 0;
};

// ---------------------------------------------------------------- stateless ops
class CudaAttention final : public A::GpuAttention {
 public:
  explicit CudaAttention(int device) : device_(device) {}

  void dense(const A::Queries& q, const A::KvView& k, const A::KvView& v, const A::DenseOptions& opts,
             const A::Output& out, const OpContext& ctx) override {
    ctx.check();
    Staging s(device_);
    A::Queries dq = q;
    dq.data = s.upload(q.data, q.heads * q.tokens * q.d);
    const A::KvView dk = s.upload(k), dv = s.upload(v);
    const size_t rows = q.heads * q.tokens;
    A::Output o{s.alloc<float>(rows * q.d), s.alloc<float>(rows)};
    const size_t ws = dense_attention_workspace(dq, dk, dv);
    void* w = s.bytes(ws);
    dense_attention_async(dq, dk, dv, opts, o, w, ws, s.stream());
    download(s, q, o, out);
  }

  void sparse(const A::Queries& q, const A::KvView& k, const A::KvView& v, const A::Selection& sel, float scale,
              const A::Output& out, const OpContext& ctx) override {
    ctx.check();
    Staging s(device_);
    const size_t groups = sel.per_query_head ? q.heads : k.heads, total = sel.offsets[groups];
    A::Queries dq = q;
    dq.data = s.upload(q.data, q.heads * q.tokens * q.d);
    const A::KvView dk = s.upload(k), dv = s.upload(v);
    A::Selection ds;
    ds.per_query_head = sel.per_query_head;
    ds.offsets = s.upload(sel.offsets, groups + 1);
    ds.indices = s.upload(sel.indices, total);
    const size_t rows = q.heads * q.tokens;
    A::Output o{s.alloc<float>(rows * q.d), s.alloc<float>(rows)};
    AttentionTuning t;
    t.max_selected = std::max<size_t>(total, 1);
    const size_t ws = sparse_attention_workspace(dq, dk, dv, sel.per_query_head, t);
    void* w = s.bytes(ws);
    sparse_attention_async(dq, dk, dv, ds, scale, o, w, ws, s.stream(), t);
    download(s, q, o, out);
  }

  A::KmeansResult kmeans(const float* x, size_t n, size_t d, const A::KmeansOptions& opts, const float* initial,
                         const OpContext& ctx) override {
    ctx.check();
    const size_t k = std::min(opts.clusters, n), hist = std::max<size_t>(opts.iterations, 1);
    Staging s(device_);
    DeviceKmeans a;
    a.x = s.upload(x, checked_mul(n, d));
    a.n = n;
    a.d = d;
    a.k = k;
    a.cosine = opts.cosine;
    a.iterations = opts.iterations;
    a.initial = s.upload(initial, k * d);
    a.centroids = s.alloc<float>(k * d);
    a.labels = s.alloc<std::int32_t>(n);
    a.sizes = s.alloc<std::int32_t>(k);
    a.history = s.alloc<double>(hist);
    a.inertia = s.alloc<double>(1);
    a.state = s.alloc<std::int32_t>(4);
    const size_t ws = kmeans_workspace(n, d, k, opts.cosine);
    kmeans_async(a, s.bytes(ws), ws, s.stream());
    A::KmeansResult r;
    r.clusters = k;
    r.d = d;
    r.centroids.resize(k * d);
    r.labels.resize(n);
    r.sizes.resize(k);
    std::vector<double> h(hist);
    std::int32_t st[4] = {0, 0, 0, 0};
    copy_to_host(r.centroids.data(), a.centroids, k * d * sizeof(float), s.stream());
    copy_to_host(r.labels.data(), a.labels, n * sizeof(std::int32_t), s.stream());
    copy_to_host(r.sizes.data(), a.sizes, k * sizeof(std::int32_t), s.stream());
    copy_to_host(h.data(), a.history, hist * sizeof(double), s.stream());
    copy_to_host(&r.inertia, a.inertia, sizeof(double), s.stream());
    copy_to_host(st, a.state, sizeof st, s.stream());
    s.sync();
    r.converged = st[0] != 0;
    r.iterations = size_t(std::max(st[1], 0));
    r.reseeded = size_t(std::max(st[2], 0));
    h.resize(std::min(hist, r.iterations));
    r.history = std::move(h);
    ctx.report(1.0, 1.0);
    return r;
  }

  A::CentroidScores centroid_scores(const A::SqueezedContext& c, const A::Queries& q, const A::ScoreOptions& opts,
                                    const OpContext& ctx) override {
    ctx.check();
    Staging s(device_);
    const DeviceSqueezedContext dc = upload_context(c, [&](const auto& v) { return s.upload(v.data(), v.size()); });
    A::Queries dq = q;
    dq.data = s.upload(q.data, q.heads * q.tokens * q.d);
    const size_t G = group_count(c, q, opts.policy), C = c.clusters, C1 = c.coarse_clusters;
    const bool two = two_level(c, opts);
    float* sc = s.alloc<float>(G * C);
    std::uint8_t* ok = s.alloc<std::uint8_t>(G * C);
    float* cs = two ? s.alloc<float>(G * C1) : nullptr;
    const size_t ws = centroid_scores_workspace(dc, dq, opts);
    centroid_scores_async(dc, dq, opts, sc, ok, cs, s.bytes(ws), ws, s.stream());
    A::CentroidScores r;
    r.policy = opts.policy;
    r.groups = G;
    r.clusters = C;
    r.scores.resize(G * C);
    r.scored.resize(G * C);
    copy_to_host(r.scores.data(), sc, G * C * sizeof(float), s.stream());
    copy_to_host(r.scored.data(), ok, G * C, s.stream());
    if (two) {
      r.coarse_clusters = C1;
      r.coarse_scores.resize(G * C1);
      copy_to_host(r.coarse_scores.data(), cs, G * C1 * sizeof(float), s.stream());
    }
    s.sync();
    r.centroids_scored.assign(G, C);
    if (two) {
      const size_t per = G / c.heads;
      r.coarse_kept.assign(G * C1, 0);
      for (size_t g = 0; g < G; ++g) {
        const size_t h = opts.policy == A::GroupPolicy::PerQueryHead ? g / per : g;
        for (size_t j = 0; j < C1; ++j)
          r.coarse_kept[g * C1 + j] =
              c.coarse_sizes[h * C1 + j] > 0 && double(r.coarse_scores[g * C1 + j]) > opts.coarse_threshold;
        size_t n = C1;
        for (size_t j = 0; j < C; ++j) n += r.scored[g * C + j] != 0;
        r.centroids_scored[g] = n;
      }
    }
    return r;
  }

  void squeezed(const A::KvView& fixed_k, const A::KvView& fixed_v, const A::SqueezedContext& c, const A::Queries& q,
                const A::KvView& dense_k, const A::KvView& dense_v, bool causal, const A::SelectOptions& opts,
                const A::Output& out, A::SqueezedReport* report, const OpContext& ctx) override {
    ctx.check();
    Staging s(device_);
    const DeviceSqueezedContext dc = upload_context(c, [&](const auto& v) { return s.upload(v.data(), v.size()); });
    A::Queries dq = q;
    dq.data = s.upload(q.data, q.heads * q.tokens * q.d);
    const A::KvView fk = s.upload(fixed_k), fv = s.upload(fixed_v), dk = s.upload(dense_k), dv = s.upload(dense_v);
    const size_t rows = q.heads * q.tokens;
    A::Output o{s.alloc<float>(rows * q.d), s.alloc<float>(rows)};
    const size_t ws = squeezed_workspace(dc, dq, dk, dv, causal, opts);
    void* w = s.bytes(ws);
    DeviceSelectionView sel;
    if (causal) squeezed_prefill_async(fk, fv, dc, dq, dk, dv, opts, o, &sel, w, ws, s.stream());
    else squeezed_decode_async(fk, fv, dc, dq, dk, dv, opts, o, &sel, w, ws, s.stream());
    if (report) fill_report(c, opts.score, sel, true, *report, s.stream());
    download(s, q, o, out);
  }

  std::unique_ptr<A::DecoderEngine> make_decoder(const A::SqueezedContext& c, const A::KvView& fixed_k,
                                                 const A::KvView& fixed_v, size_t capacity) override {
    return std::make_unique<CudaDecoder>(device_, c, fixed_k, fixed_v, capacity);
  }

 private:
  static void download(Staging& s, const A::Queries& q, const A::Output& o, const A::Output& out) {
    const size_t rows = q.heads * q.tokens;
    if (rows) copy_to_host(out.out, o.out, rows * q.d * sizeof(float), s.stream());
    if (rows && out.lse) copy_to_host(out.lse, o.lse, rows * sizeof(float), s.stream());
    s.sync();
  }
  int device_;
};

}  // namespace

attention::GpuAttention& attention_ops(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<CudaAttention>>* ops = new std::map<int, std::unique_ptr<CudaAttention>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& p = (*ops)[device];
  if (!p) p = std::make_unique<CudaAttention>(device);
  return *p;
}

}  // namespace nnscope::cuda
