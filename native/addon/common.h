// nnscope addon: the one pattern every op uses. No mathematics here.
//
//   JS (lib/) validates and passes one flat options object → a C++ function reads
//   typed arrays (no copies; the options object is pinned while the worker runs)
//   and scalars from it → an OpWorker runs the core op off the JS thread → the
//   Promise resolves with the result, or rejects with an nnscope error (its code
//   from nnscope::ErrorCode). opts.cancel (a CancelHandle) wires an AbortSignal to
//   the core's CancelToken; opts.onProgress receives {done, total} events.
#pragma once
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/error.h"

namespace nnscope::addon {

// ---- errors

// A JS error for (code, message): built by the error class that lib/ registered
// with setErrorFactory, else a plain Error with a `code` property.
Napi::Error make_error(Napi::Env env, ErrorCode code, const std::string& message);

// Runs fn() and turns any C++ exception into a thrown JS error with its code.
template <typename F>
Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw make_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, ErrorCode::OutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, ErrorCode::Internal, e.what());
  }
}

// ---- arguments (lib/ has validated them; these checks only protect memory)

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  std::size_t length = 0;
};

bool has(const Napi::Object& opts, const char* key);
double get_number(const Napi::Object& opts, const char* key);
std::size_t get_size(const Napi::Object& opts, const char* key);
bool get_bool(const Napi::Object& opts, const char* key, bool fallback);
std::string get_string(const Napi::Object& opts, const char* key);

// A Float32Array / Float64Array / Int32Array / Uint16Array … of exactly `expected`
// elements (any length when expected == SIZE_MAX). Wrong type → ERR_DTYPE, wrong
// length → ERR_SHAPE, detached buffer → ERR_DETACHED.
template <typename T>
ArrayArg<T> get_array(const Napi::Object& opts, const char* key, std::size_t expected = SIZE_MAX);

// A fresh typed array A (Napi::Float64Array, Napi::Int32Array, …) holding a copy of v.
template <typename A, typename T>
A copy_to_js(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// ---- cancellation

// JS-visible handle owning a shared CancelToken: `new CancelHandle().cancel()`.
class CancelHandle : public Napi::ObjectWrap<CancelHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CancelHandle(const Napi::CallbackInfo& info);
  std::shared_ptr<CancelToken> token() const { return token_; }

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Cancelled(const Napi::CallbackInfo& info);
  std::shared_ptr<CancelToken> token_ = std::make_shared<CancelToken>();
};

// ---- async ops

class ProgressBridge;

class OpWorker : public Napi::AsyncWorker {
 public:
  // opts: the options object (pinned until the promise settles); reads opts.cancel
  // and opts.onProgress.
  OpWorker(Napi::Env env, const Napi::Object& opts);
  ~OpWorker() override;
  // Queues the worker and returns its promise. The worker deletes itself.
  Napi::Promise Start();

 protected:
  // Runs on a libuv thread. Throw nnscope::Error to reject.
  virtual void Run(const OpContext& ctx) = 0;
  // Runs on the JS thread after Run succeeded.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference pinned_;
  OpContext ctx_;
  std::unique_ptr<ProgressBridge> progress_;
  ErrorCode code_ = ErrorCode::Internal;
  std::string message_;
};

// An OpWorker from two lambdas: run(ctx) on the libuv thread, result(env) on the
// JS thread. The lambdas own (by capture) whatever the op needs.
class LambdaWorker : public OpWorker {
 public:
  using RunFn = std::function<void(const OpContext&)>;
  using ResultFn = std::function<Napi::Value(Napi::Env)>;
  LambdaWorker(Napi::Env env, const Napi::Object& opts, RunFn run, ResultFn result)
      : OpWorker(env, opts), run_(std::move(run)), result_(std::move(result)) {}

 protected:
  void Run(const OpContext& ctx) override { run_(ctx); }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  RunFn run_;
  ResultFn result_;
};

// Queues a LambdaWorker and returns its promise.
inline Napi::Promise start_op(Napi::Env env, const Napi::Object& opts, LambdaWorker::RunFn run,
                              LambdaWorker::ResultFn result = {}) {
  return (new LambdaWorker(env, opts, std::move(run), std::move(result)))->Start();
}

// The options object of a call (its first argument), or ERR_INVALID_ARGUMENT.
Napi::Object options_of(const Napi::CallbackInfo& info);

// A JS array of non-negative integers.
std::vector<std::size_t> get_sizes(const Napi::Object& opts, const char* key);

// ---- module parts (one per family), called from addon.cpp

void init_common(Napi::Env env, Napi::Object exports);
void init_system(Napi::Env env, Napi::Object exports);
void init_linalg(Napi::Env env, Napi::Object exports);
void init_models(Napi::Env env, Napi::Object exports);
void init_io(Napi::Env env, Napi::Object exports);
void init_hessian(Napi::Env env, Napi::Object exports);
void init_attention(Napi::Env env, Napi::Object exports);

}  // namespace nnscope::addon
