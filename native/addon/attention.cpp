// nnscope addon: attention — dense, sparse and merged attention, K-means and
// Squeezed Attention; every heavy op takes opts.device ('auto' default).
// Translation only: the kernels are in core/attention (GPU: native/cuda).
#include <cstring>
#include <memory>
#include <mutex>

#include "attention/attention.h"
#include "attention/kv_finite.h"
#include "attention/squeezed.h"
#include "base/buffer.h"
#include "base/device.h"
#include "base/finite.h"
#include "common.h"

namespace nnscope::addon {

namespace {

using namespace nnscope::attention;

Storage storage_of(const Napi::Object& o) {
  if (!has(o, "storage")) return Storage::F32;
  const std::string s = get_string(o, "storage");
  if (s == "float32") return Storage::F32;
  if (s == "float16") return Storage::F16;
  if (s == "bfloat16") return Storage::BF16;
  fail(ErrorCode::InvalidArgument, "storage must be 'float32', 'float16' or 'bfloat16'");
}

// A [heads, tokens, d] key/value array (Float32Array, or Uint16Array for 16-bit storage).
KvView kv_of(const Napi::Object& o, const char* key, Storage storage, std::size_t heads, std::size_t tokens, std::size_t d) {
  KvView v;
  v.storage = storage;
  v.heads = heads;
  v.tokens = tokens;
  v.d = d;
  const std::size_t n = checked_mul(checked_mul(heads, tokens), d);
  if (storage == Storage::F32) v.data = get_array<float>(o, key, n).data;
  else v.data = get_array<std::uint16_t>(o, key, n).data;
  return v;
}

// opts.device: 'auto' (default) | 'cpu' | 'cuda' (resolved by the core op).
Device device_of(const Napi::Object& o) {
  return has(o, "device") ? parse_device(get_string(o, "device")) : Device::Auto;
}

Queries queries_of(const Napi::Object& o, const char* key, std::size_t heads, std::size_t tokens, std::size_t d) {
  Queries q;
  q.heads = heads;
  q.tokens = tokens;
  q.d = d;
  q.data = get_array<float>(o, key, checked_mul(checked_mul(heads, tokens), d)).data;
  return q;
}

Output output_of(const Napi::Object& o, std::size_t heads, std::size_t tokens, std::size_t d) {
  Output out;
  out.out = get_array<float>(o, "out", checked_mul(checked_mul(heads, tokens), d)).data;
  out.lse = get_array<float>(o, "lse", checked_mul(heads, tokens)).data;
  return out;
}

// dense({q, k, v, storage, hq, hkv, nq, n, d, scale, causal, queryOffset, out, lse})
Napi::Value Dense(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t hq = get_size(o, "hq"), hkv = get_size(o, "hkv"), nq = get_size(o, "nq"), n = get_size(o, "n"),
                      d = get_size(o, "d");
    const Storage st = storage_of(o);
    const Queries q = queries_of(o, "q", hq, nq, d);
    const KvView k = kv_of(o, "k", st, hkv, n, d), v = kv_of(o, "v", st, hkv, n, d);
    const Output out = output_of(o, hq, nq, d);
    DenseOptions opts;
    opts.scale = static_cast<float>(get_number(o, "scale"));
    opts.causal = get_bool(o, "causal", false);
    opts.query_offset = has(o, "queryOffset") ? get_size(o, "queryOffset") : 0;
    opts.device = device_of(o);
    const bool check = get_bool(o, "checkFinite", true);
    return start_op(env, o, [q, k, v, opts, out, check](const OpContext& ctx) {
      if (check) {
        require_finite(q.data, q.heads * q.tokens * q.d, "queries");
        require_finite_kv(k, "keys");
        require_finite_kv(v, "values");
      }
      dense_attention(q, k, v, opts, out, ctx);
    });
  });
}

// sparse({q, k, v, storage, hq, hkv, nq, n, d, scale, indices: Int32Array, offsets: Float64Array, perQueryHead, out, lse})
Napi::Value Sparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t hq = get_size(o, "hq"), hkv = get_size(o, "hkv"), nq = get_size(o, "nq"), n = get_size(o, "n"),
                      d = get_size(o, "d");
    const Storage st = storage_of(o);
    const Queries q = queries_of(o, "q", hq, nq, d);
    const KvView k = kv_of(o, "k", st, hkv, n, d), v = kv_of(o, "v", st, hkv, n, d);
    const Output out = output_of(o, hq, nq, d);
    const bool per_head = get_bool(o, "perQueryHead", false);
    const std::size_t groups = per_head ? hq : hkv;
    auto offsets64 = get_array<double>(o, "offsets", groups + 1);
    auto offsets = std::make_shared<std::vector<std::size_t>>(groups + 1);
    auto indices = get_array<std::int32_t>(o, "indices");
    for (std::size_t g = 0; g <= groups; ++g) {
      const double x = offsets64.data[g];
      if (!(x >= 0) || x > double(indices.length) || x != double(std::size_t(x)) || (g && x < double((*offsets)[g - 1])))
        fail(ErrorCode::InvalidArgument, "offsets must be non-decreasing integers within the index list");
      (*offsets)[g] = std::size_t(x);
    }
    if ((*offsets)[0] != 0 || (*offsets)[groups] != indices.length)
      fail(ErrorCode::InvalidArgument, "offsets must start at 0 and end at the number of indices");
    Selection sel;
    sel.indices = indices.data;
    sel.offsets = offsets->data();
    sel.per_query_head = per_head;
    const float scale = static_cast<float>(get_number(o, "scale"));
    const bool check = get_bool(o, "checkFinite", true);
    const Device device = device_of(o);
    return start_op(env, o, [q, k, v, sel, scale, out, offsets, check, device](const OpContext& ctx) {
      if (check) {
        require_finite(q.data, q.heads * q.tokens * q.d, "queries");
        require_finite_kv(k, "keys");
        require_finite_kv(v, "values");
      }
      sparse_attention(q, k, v, sel, scale, out, ctx, device);
    });
  });
}

// merge({rows, d, outA, lseA, outB, lseB}) — in place into A (sync: O(rows·d)).
Napi::Value Merge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t rows = get_size(o, "rows"), d = get_size(o, "d");
    float* out_a = get_array<float>(o, "outA", checked_mul(rows, d)).data;
    float* lse_a = get_array<float>(o, "lseA", rows).data;
    const float* out_b = get_array<float>(o, "outB", checked_mul(rows, d)).data;
    const float* lse_b = get_array<float>(o, "lseB", rows).data;
    merge_partials(rows, d, out_a, lse_a, out_b, lse_b);
    return env.Undefined();
  });
}


// ---------------------------------------------------------------- Squeezed Attention

Napi::Float64Array f64_of(Napi::Env env, const std::vector<double>& v) { return copy_to_js<Napi::Float64Array>(env, v); }

GroupPolicy policy_of(const Napi::Object& o) {
  if (!has(o, "policy")) return GroupPolicy::PerQueryHead;
  const std::string s = get_string(o, "policy");
  if (s == "perQueryHead") return GroupPolicy::PerQueryHead;
  if (s == "shared") return GroupPolicy::Shared;
  fail(ErrorCode::InvalidArgument, "policy must be 'perQueryHead' or 'shared'");
}

const char* policy_name(GroupPolicy p) { return p == GroupPolicy::Shared ? "shared" : "perQueryHead"; }

// A context's state: immutable snapshots, swapped when calibrate() finishes.
struct ContextState {
  std::mutex mu;
  std::shared_ptr<const SqueezedContext> ctx;
  Storage storage = Storage::F32;
  std::shared_ptr<const SqueezedContext> get() {
    std::lock_guard<std::mutex> lock(mu);
    return ctx;
  }
};

Napi::Object calibration_object(Napi::Env env, const Calibration& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("quantiles", f64_of(env, c.quantiles));
  o.Set("thresholds", f64_of(env, c.thresholds));
  o.Set("coarseQuantiles", f64_of(env, c.coarse_quantiles));
  o.Set("coarseThresholds", f64_of(env, c.coarse_thresholds));
  o.Set("policy", policy_name(c.policy));
  return o;
}

Napi::Object report_object(Napi::Env env, const SqueezedSelection& s, bool with_selection) {
  Napi::Object o = Napi::Object::New(env);
  const std::size_t g = s.stats.size();
  auto kept = Napi::Float64Array::New(env, g), frac = Napi::Float64Array::New(env, g),
       scored = Napi::Float64Array::New(env, g), budget = Napi::Float64Array::New(env, g);
  for (std::size_t i = 0; i < g; ++i) {
    kept[i] = double(s.stats[i].kept_keys);
    frac[i] = s.stats[i].kept_fraction;
    scored[i] = double(s.stats[i].centroids_scored);
    budget[i] = s.stats[i].kv_budget;
  }
  o.Set("perQueryHead", s.per_query_head);
  o.Set("keptKeys", kept);
  o.Set("keptFraction", frac);
  o.Set("centroidsScored", scored);
  o.Set("kvBudget", budget);
  if (with_selection) {
    o.Set("indices", copy_to_js<Napi::Int32Array>(env, s.indices));
    auto off = Napi::Float64Array::New(env, s.offsets.size());
    for (std::size_t i = 0; i < s.offsets.size(); ++i) off[i] = double(s.offsets[i]);
    o.Set("offsets", off);
  }
  return o;
}

// Selection options: {mode: 'threshold'|'keepFraction'|'budget', threshold, keepFraction,
// budget, policy, scale, hierarchical, coarseThreshold}.
SelectOptions select_of(const Napi::Object& o) {
  SelectOptions s;
  const std::string mode = get_string(o, "mode");
  if (mode == "threshold") {
    s.mode = SelectMode::Threshold;
    s.threshold = get_number(o, "threshold");
  } else if (mode == "keepFraction") {
    s.mode = SelectMode::KeepFraction;
    s.keep_fraction = get_number(o, "keepFraction");
  } else if (mode == "budget") {
    s.mode = SelectMode::Budget;
    s.budget = get_size(o, "budget");
  } else {
    fail(ErrorCode::InvalidArgument, "mode must be 'threshold', 'keepFraction' or 'budget'");
  }
  s.score.policy = policy_of(o);
  s.score.scale = has(o, "scale") ? static_cast<float>(get_number(o, "scale")) : 0.0f;
  s.score.hierarchical = get_bool(o, "hierarchical", true);
  s.score.coarse_threshold = has(o, "coarseThreshold") ? get_number(o, "coarseThreshold") : 0.0;
  s.score.device = device_of(o);
  return s;
}

class ContextHandle;
Napi::FunctionReference& context_ctor() {
  static thread_local Napi::FunctionReference ref;
  return ref;
}
Napi::FunctionReference& decoder_ctor() {
  static thread_local Napi::FunctionReference ref;
  return ref;
}

// The fixed context's keys/values as passed with each call (the JS object keeps them).
struct FixedKv {
  KvView k, v;
};
FixedKv fixed_of(const Napi::Object& o, const ContextState& st, const SqueezedContext& c) {
  return {kv_of(o, "fixedK", st.storage, c.heads, c.tokens, c.d), kv_of(o, "fixedV", st.storage, c.heads, c.tokens, c.d)};
}

class DecoderHandle : public Napi::ObjectWrap<DecoderHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SqueezedDecoder",
                       {InstanceAccessor("tokens", &DecoderHandle::Tokens, nullptr),
                        InstanceMethod("append", &DecoderHandle::Append), InstanceMethod("step", &DecoderHandle::Step),
                        InstanceMethod("clear", &DecoderHandle::Clear)});
  }
  explicit DecoderHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DecoderHandle>(info) {
    if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsNumber())
      throw make_error(info.Env(), ErrorCode::InvalidArgument, "decoders are made by SqueezedContext.decoder()");
    st_ = *info[0].As<Napi::External<std::shared_ptr<ContextState>>>().Data();
    state_ = std::make_shared<State>();
    state_->capacity = std::max<std::size_t>(1, info[1].As<Napi::Number>().Int64Value());
  }

 private:
  // The core decoder is made by the first append / step (on the worker: the CPU one
  // copies the fixed K/V into cluster-sorted order), from that call's fixedK /
  // fixedV and device; later calls reuse it.
  struct State {
    std::mutex mu;
    std::shared_ptr<SqueezedDecoder> dec;
    std::size_t capacity = 1;
    std::size_t tokens = 0;  // mirrored for the JS accessor (updated on the JS thread)
  };
  struct Bind {
    std::shared_ptr<const SqueezedContext> c;
    FixedKv fixed;
    Device device = Device::Auto;
  };
  Bind bind_of(const Napi::Object& o) {
    Bind b;
    b.c = st_->get();
    b.device = device_of(o);
    if (has(o, "fixedK")) b.fixed = fixed_of(o, *st_, *b.c);
    return b;
  }
  static SqueezedDecoder& decoder(State& s, const Bind& b) {
    if (!s.dec && !b.fixed.k.data) fail(ErrorCode::InvalidArgument, "the decoder's first call needs fixedK / fixedV");
    if (!s.dec) s.dec = std::make_shared<SqueezedDecoder>(b.c, b.fixed.k, b.fixed.v, s.capacity, b.device);
    return *s.dec;
  }

  Napi::Value Tokens(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(state_->tokens)); }

  // append({k, v, tokens, fixedK, fixedV, device}) → Promise<number of tail tokens>
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const Bind b = bind_of(o);
      const std::size_t H = b.c->heads, d = b.c->d, t = get_size(o, "tokens");
      const float* k = get_array<float>(o, "k", checked_mul(checked_mul(H, t), d)).data;
      const float* v = get_array<float>(o, "v", checked_mul(checked_mul(H, t), d)).data;
      auto s = state_;
      auto count = std::make_shared<std::size_t>(0);
      return start_op(
          env, o,
          [s, b, k, v, t, H, d, count](const OpContext&) {
            std::lock_guard<std::mutex> lock(s->mu);
            require_finite(k, H * t * d, "k");
            require_finite(v, H * t * d, "v");
            SqueezedDecoder& dec = decoder(*s, b);
            dec.append(k, v, t);
            *count = dec.tokens();
          },
          [s, count](Napi::Env env) -> Napi::Value {
            s->tokens = *count;
            return Napi::Number::New(env, double(*count));
          });
    });
  }

  // step({q, hq, nq, k?, v?, tokens?, fixedK, fixedV, device, select…, out, lse, returnSelection}) → Promise<report>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const Bind b = bind_of(o);
      const std::size_t H = b.c->heads, d = b.c->d, hq = get_size(o, "hq"), nq = get_size(o, "nq");
      const Queries q = queries_of(o, "q", hq, nq, d);
      const std::size_t t = has(o, "k") ? get_size(o, "tokens") : 0;
      const float* k = t ? get_array<float>(o, "k", checked_mul(checked_mul(H, t), d)).data : nullptr;
      const float* v = t ? get_array<float>(o, "v", checked_mul(checked_mul(H, t), d)).data : nullptr;
      const Output out = output_of(o, hq, nq, d);
      const SelectOptions sel = select_of(o);
      const bool with_sel = get_bool(o, "returnSelection", false);
      auto s = state_;
      auto report = std::make_shared<SqueezedReport>();
      auto count = std::make_shared<std::size_t>(0);
      return start_op(
          env, o,
          [s, b, q, k, v, t, H, d, out, sel, report, count, with_sel](const OpContext& ctx) {
            std::lock_guard<std::mutex> lock(s->mu);
            require_finite(q.data, q.heads * q.tokens * q.d, "queries");
            SqueezedDecoder& dec = decoder(*s, b);
            if (t) {
              require_finite(k, H * t * d, "k");
              require_finite(v, H * t * d, "v");
              dec.append(k, v, t);
            }
            *count = dec.tokens();
            dec.step(q, sel, out, report.get(), with_sel, ctx);
          },
          [s, report, count, with_sel](Napi::Env env) -> Napi::Value {
            s->tokens = *count;
            return report_object(env, report->selection, with_sel);
          });
    });
  }

  Napi::Value Clear(const Napi::CallbackInfo& info) {
    std::unique_lock<std::mutex> lock(state_->mu, std::try_to_lock);
    if (!lock.owns_lock()) throw make_error(info.Env(), ErrorCode::InvalidArgument, "the decoder is busy (await its step first)");
    if (state_->dec) state_->dec->clear();
    state_->tokens = 0;
    return info.Env().Undefined();
  }

  std::shared_ptr<ContextState> st_;
  std::shared_ptr<State> state_;
};

class ContextHandle : public Napi::ObjectWrap<ContextHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SqueezedContext",
                       {InstanceMethod("info", &ContextHandle::Info), InstanceMethod("exportArrays", &ContextHandle::Export),
                        InstanceMethod("calibrate", &ContextHandle::Calibrate),
                        InstanceMethod("setCalibration", &ContextHandle::SetCalibration),
                        InstanceMethod("select", &ContextHandle::Select), InstanceMethod("prefill", &ContextHandle::Prefill),
                        InstanceMethod("decoder", &ContextHandle::Decoder)});
  }
  explicit ContextHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextHandle>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw make_error(info.Env(), ErrorCode::InvalidArgument, "contexts are made by attention.squeeze / loadContext");
    st_ = *info[0].As<Napi::External<std::shared_ptr<ContextState>>>().Data();
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto c = st_->get();
    Napi::Object o = Napi::Object::New(env);
    o.Set("heads", double(c->heads));
    o.Set("tokens", double(c->tokens));
    o.Set("d", double(c->d));
    o.Set("window", double(c->window));
    o.Set("clusters", double(c->clusters));
    o.Set("hierarchical", c->hierarchical);
    o.Set("coarseClusters", double(c->coarse_clusters));
    o.Set("calibration", calibration_object(env, c->calibration));
    std::vector<double> it(c->kmeans_iterations.begin(), c->kmeans_iterations.end()),
        rs(c->kmeans_reseeded.begin(), c->kmeans_reseeded.end());
    o.Set("kmeansIterations", f64_of(env, it));
    o.Set("kmeansReseeded", f64_of(env, rs));
    o.Set("kmeansInertia", f64_of(env, c->kmeans_inertia));
    return o;
  }

  // exportArrays() → {centroids, labels, sizes, coarseCentroids, parent, coarseSizes}
  Napi::Value Export(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto c = st_->get();
    Napi::Object o = Napi::Object::New(env);
    o.Set("centroids", copy_to_js<Napi::Float32Array>(env, c->centroids));
    o.Set("labels", copy_to_js<Napi::Int32Array>(env, c->labels));
    o.Set("sizes", copy_to_js<Napi::Int32Array>(env, c->sizes));
    o.Set("coarseCentroids", copy_to_js<Napi::Float32Array>(env, c->coarse_centroids));
    o.Set("parent", copy_to_js<Napi::Int32Array>(env, c->parent));
    o.Set("coarseSizes", copy_to_js<Napi::Int32Array>(env, c->coarse_sizes));
    return o;
  }

  // calibrate({q, hq, nq, quantiles: Float64Array, coarseQuantiles: Float64Array, policy, scale}) → Promise<calibration>
  Napi::Value Calibrate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      auto c = st_->get();
      const std::size_t hq = get_size(o, "hq"), nq = get_size(o, "nq");
      const Queries q = queries_of(o, "q", hq, nq, c->d);
      CalibrateOptions opts;
      auto qs = get_array<double>(o, "quantiles");
      opts.quantiles.assign(qs.data, qs.data + qs.length);
      auto cq = get_array<double>(o, "coarseQuantiles");
      opts.coarse_quantiles.assign(cq.data, cq.data + cq.length);
      opts.policy = policy_of(o);
      opts.scale = has(o, "scale") ? static_cast<float>(get_number(o, "scale")) : 0.0f;
      opts.device = device_of(o);
      auto st = st_;
      auto result = std::make_shared<Calibration>();
      return start_op(
          env, o,
          [st, c, q, opts, result](const OpContext& ctx) {
            require_finite(q.data, q.heads * q.tokens * q.d, "calibration queries");
            auto next = std::make_shared<SqueezedContext>(*c);
            *result = calibrate(*next, q, opts, ctx);
            std::lock_guard<std::mutex> lock(st->mu);
            st->ctx = next;
          },
          [result](Napi::Env env) -> Napi::Value { return calibration_object(env, *result); });
    });
  }

  // setCalibration({quantiles, thresholds, coarseQuantiles, coarseThresholds, policy}) — thresholds
  // pooled elsewhere (e.g. across layers). Sync.
  Napi::Value SetCalibration(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      auto next = std::make_shared<SqueezedContext>(*st_->get());
      Calibration cal;
      auto read = [&](const char* key, std::vector<double>& dst) {
        auto a = get_array<double>(o, key);
        dst.assign(a.data, a.data + a.length);
      };
      read("quantiles", cal.quantiles);
      read("thresholds", cal.thresholds);
      read("coarseQuantiles", cal.coarse_quantiles);
      read("coarseThresholds", cal.coarse_thresholds);
      cal.policy = policy_of(o);
      next->calibration = cal;
      validate_context(*next);
      std::lock_guard<std::mutex> lock(st_->mu);
      st_->ctx = next;
      return env.Undefined();
    });
  }

  // select({q, hq, nq, select…}) → Promise<report with indices/offsets>
  Napi::Value Select(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      auto c = st_->get();
      const std::size_t hq = get_size(o, "hq"), nq = get_size(o, "nq");
      const Queries q = queries_of(o, "q", hq, nq, c->d);
      const SelectOptions sel = select_of(o);
      auto result = std::make_shared<SqueezedSelection>();
      return start_op(
          env, o,
          [c, q, sel, result](const OpContext& ctx) {
            require_finite(q.data, q.heads * q.tokens * q.d, "queries");
            *result = select_keys(*c, q, sel, ctx);
          },
          [result](Napi::Env env) -> Napi::Value { return report_object(env, *result, true); });
    });
  }

  // prefill({q, hq, nq, fixedK, fixedV, userK, userV, select…, out, lse, returnSelection}) → Promise<report>
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      auto c = st_->get();
      const std::size_t hq = get_size(o, "hq"), nq = get_size(o, "nq");
      const Queries q = queries_of(o, "q", hq, nq, c->d);
      const FixedKv fixed = fixed_of(o, *st_, *c);
      const KvView uk = kv_of(o, "userK", Storage::F32, c->heads, nq, c->d);
      const KvView uv = kv_of(o, "userV", Storage::F32, c->heads, nq, c->d);
      const Output out = output_of(o, hq, nq, c->d);
      const SelectOptions sel = select_of(o);
      const bool with_sel = get_bool(o, "returnSelection", false);
      auto report = std::make_shared<SqueezedReport>();
      return start_op(
          env, o,
          [c, q, fixed, uk, uv, out, sel, report](const OpContext& ctx) {
            require_finite(q.data, q.heads * q.tokens * q.d, "queries");
            require_finite(static_cast<const float*>(uk.data), uk.heads * uk.tokens * uk.d, "user keys");
            require_finite(static_cast<const float*>(uv.data), uv.heads * uv.tokens * uv.d, "user values");
            squeezed_prefill(fixed.k, fixed.v, *c, q, uk, uv, sel, out, report.get(), ctx);
          },
          [report, with_sel](Napi::Env env) -> Napi::Value { return report_object(env, report->selection, with_sel); });
    });
  }

  // decoder(capacity) → SqueezedDecoder
  Napi::Value Decoder(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const double cap = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 256;
      if (!(cap >= 1 && cap <= 1e9)) fail(ErrorCode::InvalidArgument, "capacity must be in [1, 1e9]");
      return decoder_ctor().New({Napi::External<std::shared_ptr<ContextState>>::New(env, &st_), Napi::Number::New(env, cap)});
    });
  }

  std::shared_ptr<ContextState> st_;
};

Napi::Value wrap_context(Napi::Env env, std::shared_ptr<ContextState> st) {
  return context_ctor().New({Napi::External<std::shared_ptr<ContextState>>::New(env, &st)});
}

BuildOptions build_of(const Napi::Object& o) {
  BuildOptions b;
  if (has(o, "centroidFraction")) b.centroid_fraction = get_number(o, "centroidFraction");
  if (has(o, "clusters")) b.clusters = get_size(o, "clusters");
  if (has(o, "window")) b.window = get_size(o, "window");
  if (has(o, "iterations")) b.iterations = get_size(o, "iterations");
  if (has(o, "init")) {
    const std::string s = get_string(o, "init");
    if (s == "kmeans++") b.init = KmeansInit::PlusPlus;
    else if (s == "random") b.init = KmeansInit::Random;
    else fail(ErrorCode::InvalidArgument, "init must be 'kmeans++' or 'random'");
  }
  if (has(o, "seed")) b.seed = get_size(o, "seed");
  b.hierarchical = get_bool(o, "hierarchical", false);
  if (has(o, "coarseFraction")) b.coarse_fraction = get_number(o, "coarseFraction");
  if (has(o, "coarseClusters")) b.coarse_clusters = get_size(o, "coarseClusters");
  b.device = device_of(o);
  return b;
}

// squeeze({k, v, storage, hkv, n, d, build options…}) → Promise<SqueezedContext>
Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t h = get_size(o, "hkv"), n = get_size(o, "n"), d = get_size(o, "d");
    auto st = std::make_shared<ContextState>();
    st->storage = storage_of(o);
    const KvView k = kv_of(o, "k", st->storage, h, n, d), v = kv_of(o, "v", st->storage, h, n, d);
    const BuildOptions b = build_of(o);
    auto built = std::make_shared<SqueezedContext>();
    return start_op(
        env, o,
        [k, v, b, built](const OpContext& ctx) {
          require_finite_kv(v, "values");
          *built = build_context(k, b, ctx);
        },
        [st, built](Napi::Env env) -> Napi::Value {
          st->ctx = built;
          return wrap_context(env, st);
        });
  });
}

// contextFromArrays({storage, heads, tokens, d, window, clusters, centroids, labels, sizes,
//   hierarchical, coarseClusters, coarseCentroids, parent, coarseSizes,
//   quantiles, thresholds, coarseQuantiles, coarseThresholds, policy}) → SqueezedContext (sync; validated)
Napi::Value ContextFromArrays(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto c = std::make_shared<SqueezedContext>();
    c->heads = get_size(o, "heads");
    c->tokens = get_size(o, "tokens");
    c->d = get_size(o, "d");
    c->window = get_size(o, "window");
    c->clusters = get_size(o, "clusters");
    auto f32 = [&](const char* key, std::vector<float>& dst) {
      auto a = get_array<float>(o, key);
      dst.assign(a.data, a.data + a.length);
    };
    auto i32 = [&](const char* key, std::vector<std::int32_t>& dst) {
      auto a = get_array<std::int32_t>(o, key);
      dst.assign(a.data, a.data + a.length);
    };
    auto f64 = [&](const char* key, std::vector<double>& dst) {
      auto a = get_array<double>(o, key);
      dst.assign(a.data, a.data + a.length);
    };
    f32("centroids", c->centroids);
    i32("labels", c->labels);
    i32("sizes", c->sizes);
    c->hierarchical = get_bool(o, "hierarchical", false);
    if (c->hierarchical) {
      c->coarse_clusters = get_size(o, "coarseClusters");
      f32("coarseCentroids", c->coarse_centroids);
      i32("parent", c->parent);
      i32("coarseSizes", c->coarse_sizes);
    }
    f64("quantiles", c->calibration.quantiles);
    f64("thresholds", c->calibration.thresholds);
    f64("coarseQuantiles", c->calibration.coarse_quantiles);
    f64("coarseThresholds", c->calibration.coarse_thresholds);
    c->calibration.policy = policy_of(o);
    validate_context(*c);
    auto st = std::make_shared<ContextState>();
    st->storage = storage_of(o);
    st->ctx = c;
    return wrap_context(env, st);
  });
}

// kmeans({x, n, d, clusters, iterations, init, seed, cosine}) → Promise<result>
Napi::Value Kmeans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t n = get_size(o, "n"), d = get_size(o, "d");
    const float* x = get_array<float>(o, "x", checked_mul(n, d)).data;
    KmeansOptions k;
    k.clusters = get_size(o, "clusters");
    if (has(o, "iterations")) k.iterations = get_size(o, "iterations");
    if (has(o, "init")) k.init = get_string(o, "init") == "random" ? KmeansInit::Random : KmeansInit::PlusPlus;
    if (has(o, "seed")) k.seed = get_size(o, "seed");
    k.cosine = get_bool(o, "cosine", true);
    k.device = device_of(o);
    if (has(o, "initial")) k.initial_centroids = get_array<float>(o, "initial", checked_mul(k.clusters, d)).data;
    auto r = std::make_shared<KmeansResult>();
    return start_op(
        env, o, [x, n, d, k, r](const OpContext& ctx) { *r = kmeans(x, n, d, k, ctx); },
        [r](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("clusters", double(r->clusters));
          out.Set("centroids", copy_to_js<Napi::Float32Array>(env, r->centroids));
          out.Set("labels", copy_to_js<Napi::Int32Array>(env, r->labels));
          out.Set("sizes", copy_to_js<Napi::Int32Array>(env, r->sizes));
          out.Set("inertia", r->inertia);
          out.Set("iterations", double(r->iterations));
          out.Set("reseeded", double(r->reseeded));
          out.Set("converged", r->converged);
          out.Set("history", f64_of(env, r->history));
          return out;
        });
  });
}

}  // namespace

void init_attention(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("dense", Napi::Function::New(env, Dense, "dense"));
  m.Set("sparse", Napi::Function::New(env, Sparse, "sparse"));
  m.Set("merge", Napi::Function::New(env, Merge, "merge"));
  m.Set("kmeans", Napi::Function::New(env, Kmeans, "kmeans"));
  m.Set("squeeze", Napi::Function::New(env, Squeeze, "squeeze"));
  m.Set("contextFromArrays", Napi::Function::New(env, ContextFromArrays, "contextFromArrays"));
  Napi::Function ctx = ContextHandle::Define(env);
  context_ctor() = Napi::Persistent(ctx);
  context_ctor().SuppressDestruct();
  Napi::Function dec = DecoderHandle::Define(env);
  decoder_ctor() = Napi::Persistent(dec);
  decoder_ctor().SuppressDestruct();
  exports.Set("attention", m);
}

}  // namespace nnscope::addon
