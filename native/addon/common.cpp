#include "common.h"

#include <cmath>
#include <limits>
#include <mutex>
#include <new>
#include <type_traits>

namespace nnscope::addon {

// ---------------------------------------------------------------- errors

namespace {
struct InstanceData {
  Napi::FunctionReference error_factory;
  Napi::FunctionReference cancel_ctor;
};
InstanceData& instance(Napi::Env env) {
  auto* d = env.GetInstanceData<InstanceData>();
  if (!d) {
    d = new InstanceData();
    env.SetInstanceData(d);  // deleted by Node at env teardown
  }
  return *d;
}
}  // namespace

Napi::Error make_error(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::HandleScope scope(env);
  auto& data = instance(env);
  if (!data.error_factory.IsEmpty()) {
    Napi::Value v = data.error_factory.Call({Napi::String::New(env, code_name(code)), Napi::String::New(env, message)});
    if (v.IsObject()) return Napi::Error(env, v);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code_name(code)));
  return e;
}

// setErrorFactory((code, message) => Error)
static Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    throw make_error(info.Env(), ErrorCode::InvalidArgument, "setErrorFactory expects a function");
  instance(info.Env()).error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- arguments

bool has(const Napi::Object& opts, const char* key) {
  return opts.Has(key) && !opts.Get(key).IsUndefined();
}

double get_number(const Napi::Object& opts, const char* key) {
  Napi::Value v = opts.Get(key);
  if (!v.IsNumber()) fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::size_t get_size(const Napi::Object& opts, const char* key) {
  const double d = get_number(opts, key);
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
    fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be a non-negative integer");
  return static_cast<std::size_t>(d);
}

bool get_bool(const Napi::Object& opts, const char* key, bool fallback) {
  if (!has(opts, key)) return fallback;
  Napi::Value v = opts.Get(key);
  if (!v.IsBoolean()) fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string get_string(const Napi::Object& opts, const char* key) {
  Napi::Value v = opts.Get(key);
  if (!v.IsString()) fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object options_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) fail(ErrorCode::InvalidArgument, "expected an options object");
  return info[0].As<Napi::Object>();
}

std::vector<std::size_t> get_sizes(const Napi::Object& opts, const char* key) {
  Napi::Value v = opts.Get(key);
  if (!v.IsArray()) fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::size_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must hold non-negative integers");
    out[i] = static_cast<std::size_t>(d);
  }
  return out;
}

namespace {
template <typename T>
constexpr napi_typedarray_type typed_array_type() {
  if constexpr (std::is_same_v<T, float>) return napi_float32_array;
  if constexpr (std::is_same_v<T, double>) return napi_float64_array;
  if constexpr (std::is_same_v<T, int32_t>) return napi_int32_array;
  if constexpr (std::is_same_v<T, uint32_t>) return napi_uint32_array;
  if constexpr (std::is_same_v<T, uint16_t>) return napi_uint16_array;
  if constexpr (std::is_same_v<T, uint8_t>) return napi_uint8_array;
}
template <typename T>
const char* typed_array_name() {
  if constexpr (std::is_same_v<T, float>) return "Float32Array";
  if constexpr (std::is_same_v<T, double>) return "Float64Array";
  if constexpr (std::is_same_v<T, int32_t>) return "Int32Array";
  if constexpr (std::is_same_v<T, uint32_t>) return "Uint32Array";
  if constexpr (std::is_same_v<T, uint16_t>) return "Uint16Array";
  if constexpr (std::is_same_v<T, uint8_t>) return "Uint8Array";
}
}  // namespace

template <typename T>
ArrayArg<T> get_array(const Napi::Object& opts, const char* key, std::size_t expected) {
  Napi::Value v = opts.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != typed_array_type<T>())
    fail(ErrorCode::Dtype, std::string("'") + key + "' must be a " + typed_array_name<T>());
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  bool detached = false;
  if (napi_is_detached_arraybuffer(v.Env(), arr.ArrayBuffer(), &detached) != napi_ok) detached = false;
  if (detached) fail(ErrorCode::Detached, std::string("'") + key + "' is backed by a detached ArrayBuffer");
  ArrayArg<T> out;
  out.length = arr.ElementLength();
  out.data = out.length ? arr.Data() : nullptr;
  if (expected != SIZE_MAX && out.length != expected)
    fail(ErrorCode::Shape, std::string("'") + key + "' has " + std::to_string(out.length) + " elements, expected " +
                               std::to_string(expected));
  return out;
}

template ArrayArg<float> get_array<float>(const Napi::Object&, const char*, std::size_t);
template ArrayArg<double> get_array<double>(const Napi::Object&, const char*, std::size_t);
template ArrayArg<int32_t> get_array<int32_t>(const Napi::Object&, const char*, std::size_t);
template ArrayArg<uint32_t> get_array<uint32_t>(const Napi::Object&, const char*, std::size_t);
template ArrayArg<uint16_t> get_array<uint16_t>(const Napi::Object&, const char*, std::size_t);
template ArrayArg<uint8_t> get_array<uint8_t>(const Napi::Object&, const char*, std::size_t);

// ---------------------------------------------------------------- cancellation

Napi::Function CancelHandle::Define(Napi::Env env) {
  return DefineClass(env, "CancelHandle",
                     {InstanceMethod("cancel", &CancelHandle::Cancel),
                      InstanceAccessor("cancelled", &CancelHandle::Cancelled, nullptr)});
}

CancelHandle::CancelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelHandle>(info) {}

Napi::Value CancelHandle::Cancel(const Napi::CallbackInfo& info) {
  token_->cancel();
  return info.Env().Undefined();
}

Napi::Value CancelHandle::Cancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), token_->cancelled());
}

// ---------------------------------------------------------------- progress

struct ProgressEvent {
  double done, total;
  double value = std::numeric_limits<double>::quiet_NaN();
};

static void call_progress(Napi::Env env, Napi::Function fn, std::nullptr_t*, ProgressEvent* ev);

// Forwards core progress to a JS callback through a thread-safe function, at most
// one event every 50 ms (the last one of a run is delivered by Finish()).
class ProgressBridge {
 public:
  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, ProgressEvent, call_progress>;
  ProgressBridge(Napi::Env env, Napi::Function fn) : fn_(Napi::Persistent(fn)) {
    tsfn_ = Tsfn::New(env, fn, "nnscope.progress", 0, 1);
    tsfn_.Unref(env);  // pending progress never keeps the process alive
  }
  ~ProgressBridge() { Close(); }

  ProgressFn sink() {
    return [this](double done, double total) { post({done, total}); };
  }
  ProgressValueFn value_sink() {
    return [this](double done, double total, double value) { post({done, total, value}); };
  }

  // On the JS thread after the op: stop forwarding, deliver the final state.
  void Finish(Napi::Env env, bool ok) {
    Close();
    if (ok && have_last_) fn_.Call({progress_object(env, last_)});
  }

  static Napi::Object progress_object(Napi::Env env, const ProgressEvent& ev) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("done", ev.done);
    o.Set("total", ev.total);
    o.Set("fraction", ev.total > 0 ? ev.done / ev.total : 1.0);
    if (!std::isnan(ev.value)) o.Set("value", ev.value);
    return o;
  }

 private:
  void post(const ProgressEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = e;
      have_last_ = true;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sent_ < std::chrono::milliseconds(50)) return;
      last_sent_ = now;
    }
    if (closed_.load()) return;
    auto* ev = new ProgressEvent(e);
    if (tsfn_.NonBlockingCall(ev) != napi_ok) delete ev;
  }

  void Close() {
    if (!closed_.exchange(true)) tsfn_.Release();
  }
  Tsfn tsfn_;
  Napi::FunctionReference fn_;
  std::mutex mu_;
  ProgressEvent last_{0, 0};
  bool have_last_ = false;
  std::chrono::steady_clock::time_point last_sent_{};
  std::atomic<bool> closed_{false};
};

static void call_progress(Napi::Env env, Napi::Function fn, std::nullptr_t*, ProgressEvent* ev) {
  std::unique_ptr<ProgressEvent> owned(ev);
  if (env == nullptr || fn.IsEmpty()) return;
  // A throwing progress callback must not take down the op: swallow its exception.
  try {
    fn.Call({ProgressBridge::progress_object(env, *ev)});
  } catch (const Napi::Error&) {
  }
}

// ---------------------------------------------------------------- workers

OpWorker::OpWorker(Napi::Env env, const Napi::Object& opts)
    : Napi::AsyncWorker(env, "nnscope.op"), deferred_(Napi::Promise::Deferred::New(env)) {
  pinned_ = Napi::Persistent(opts);
  if (has(opts, "cancel")) {
    Napi::Value c = opts.Get("cancel");
    if (!c.IsObject() || !c.As<Napi::Object>().InstanceOf(instance(env).cancel_ctor.Value()))
      fail(ErrorCode::InvalidArgument, "option 'cancel' must be a CancelHandle");
    ctx_.cancel = CancelHandle::Unwrap(c.As<Napi::Object>())->token();
  }
  if (has(opts, "onProgress")) {
    Napi::Value f = opts.Get("onProgress");
    if (!f.IsFunction()) fail(ErrorCode::InvalidArgument, "option 'onProgress' must be a function");
    progress_ = std::make_unique<ProgressBridge>(env, f.As<Napi::Function>());
    ctx_.progress = progress_->sink();
    ctx_.progress_value = progress_->value_sink();
  }
}

OpWorker::~OpWorker() = default;

Napi::Promise OpWorker::Start() {
  Napi::Promise p = deferred_.Promise();
  Queue();
  return p;
}

void OpWorker::Execute() {
  try {
    ctx_.check();  // cancelled before it started
    Run(ctx_);
    return;
  } catch (const Error& e) {
    code_ = e.code();
    message_ = e.what();
  } catch (const std::bad_alloc&) {
    code_ = ErrorCode::OutOfMemory;
    message_ = "out of memory";
  } catch (const std::exception& e) {
    code_ = ErrorCode::Internal;
    message_ = e.what();
  } catch (...) {
    code_ = ErrorCode::Internal;
    message_ = "unknown native exception";
  }
  SetError(message_);
}

void OpWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (progress_) progress_->Finish(env, true);
  try {
    deferred_.Resolve(Result(env));
  } catch (const Error& e) {
    deferred_.Reject(make_error(env, e.code(), e.what()).Value());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (const std::exception& e) {
    deferred_.Reject(make_error(env, ErrorCode::Internal, e.what()).Value());
  }
  pinned_.Reset();
}

void OpWorker::OnError(const Napi::Error&) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (progress_) progress_->Finish(env, false);
  deferred_.Reject(make_error(env, code_, message_).Value());
  pinned_.Reset();
}

// ---------------------------------------------------------------- module

void init_common(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  Napi::Function ctor = CancelHandle::Define(env);
  instance(env).cancel_ctor = Napi::Persistent(ctor);
  exports.Set("CancelHandle", ctor);
}

}  // namespace nnscope::addon
