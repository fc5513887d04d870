// nnscope addon: hessian — Lanczos, top-k eigenpairs, trace and spectral density
// over an operator described by opts.operator:
//   {kind: 'matrix', matrix: Float32Array | Float64Array (n×n), n}
//   {kind: 'model', objective: Objective handle, theta: Float32Array | Float64Array}
//   {kind: 'callback', fn: (v: Float32Array) => Promise<Float32Array | Float64Array>, n}
// plus opts.device. Translation only: the algorithms are in core/hessian, the
// device spaces in native/cuda.
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "base/buffer.h"
#include "base/device.h"
#include "base/finite.h"
#include "common.h"
#include "hessian/hessian.h"
#include "hessian/operators.h"
#include "models.h"

namespace nnscope::addon {

namespace {

using hessian::Space;

// ---------------------------------------------------------------- JS callback operator

// One product in flight between the worker thread and the JS thread.
struct Exchange {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::string error;  // non-empty: the callback failed
  std::vector<float> y;
};

void settle(const std::shared_ptr<Exchange>& ex, std::string error) {
  {
    std::lock_guard<std::mutex> lock(ex->mu);
    ex->done = true;
    ex->error = std::move(error);
  }
  ex->cv.notify_all();
}

// Takes the callback's value: a Float32Array / Float64Array of n entries.
void accept(const std::shared_ptr<Exchange>& ex, Napi::Value r, std::size_t n) {
  std::string why;
  if (r.IsTypedArray()) {
    Napi::TypedArray t = r.As<Napi::TypedArray>();
    if (t.ElementLength() != n) {
      why = "the operator callback returned " + std::to_string(t.ElementLength()) + " entries, expected " + std::to_string(n);
    } else if (t.TypedArrayType() == napi_float32_array) {
      Napi::Float32Array f = r.As<Napi::Float32Array>();
      if (n && !f.Data()) why = "the operator callback returned an array on a detached buffer";
      else if (n) std::memcpy(ex->y.data(), f.Data(), n * sizeof(float));
    } else if (t.TypedArrayType() == napi_float64_array) {
      Napi::Float64Array f = r.As<Napi::Float64Array>();
      if (n && !f.Data()) why = "the operator callback returned an array on a detached buffer";
      else for (std::size_t i = 0; i < n; ++i) ex->y[i] = static_cast<float>(f[i]);
    } else {
      why = "the operator callback must return a Float32Array or Float64Array";
    }
  } else {
    why = "the operator callback must return a Float32Array or Float64Array (or a Promise of one)";
  }
  settle(ex, why);
}

std::string message_of(Napi::Value e) {
  if (e.IsObject()) {
    Napi::Value m = e.As<Napi::Object>().Get("message");
    if (m.IsString()) return m.As<Napi::String>().Utf8Value();
  }
  Napi::String s = e.ToString();
  return s.Utf8Value();
}

// Calls fn(v) on the JS thread; never lets an exception escape.
void call_js(Napi::Env env, Napi::Function fn, const std::shared_ptr<Exchange>& ex,
             const std::shared_ptr<std::vector<float>>& x) {
  try {
    const std::size_t n = x->size();
    Napi::Float32Array v = Napi::Float32Array::New(env, n);
    if (n) std::memcpy(v.Data(), x->data(), n * sizeof(float));
    Napi::Value r = fn.Call({v});
    if (r.IsPromise()) {
      Napi::Object p = r.As<Napi::Object>();
      Napi::Function ok = Napi::Function::New(env, [ex, n](const Napi::CallbackInfo& info) {
        try {
          accept(ex, info[0], n);
        } catch (const std::exception& e) {
          settle(ex, std::string("the operator callback's result could not be read: ") + e.what());
        }
      });
      Napi::Function bad = Napi::Function::New(env, [ex](const Napi::CallbackInfo& info) {
        std::string m = "the operator callback failed";
        try {
          m += ": " + message_of(info[0]);
        } catch (...) {
        }
        settle(ex, m);
      });
      p.Get("then").As<Napi::Function>().Call(p, {ok, bad});
    } else {
      accept(ex, r, n);
    }
  } catch (const Napi::Error& e) {
    settle(ex, std::string("the operator callback threw: ") + e.Message());
  } catch (const std::exception& e) {
    settle(ex, std::string("the operator callback failed: ") + e.what());
  }
}

// Releases the thread-safe function exactly once, from whichever thread ends last.
struct Tsfn {
  Napi::ThreadSafeFunction fn;
  ~Tsfn() { fn.Release(); }
};

class CallbackOperator final : public hessian::Operator<float> {
 public:
  CallbackOperator(std::shared_ptr<Tsfn> tsfn, std::size_t n) : tsfn_(std::move(tsfn)), n_(n) {}
  std::size_t dim() const override { return n_; }

  void apply(const float* x, float* y, const OpContext& ctx) override {
    auto ex = std::make_shared<Exchange>();
    ex->y.assign(n_, 0.0f);
    auto input = std::make_shared<std::vector<float>>(x, x + n_);
    const napi_status st = tsfn_->fn.BlockingCall(
        [ex, input](Napi::Env env, Napi::Function fn) { call_js(env, fn, ex, input); });
    if (st != napi_ok) fail(ErrorCode::Callback, "the operator callback could not be called (the environment is closing)");
    std::unique_lock<std::mutex> lock(ex->mu);
    while (!ex->done) {
      ex->cv.wait_for(lock, std::chrono::milliseconds(20));
      if (!ex->done) ctx.check();  // an abandoned exchange is kept alive by the JS side's reference
    }
    if (!ex->error.empty()) fail(ErrorCode::Callback, ex->error);
    std::memcpy(y, ex->y.data(), n_ * sizeof(float));
  }

 private:
  std::shared_ptr<Tsfn> tsfn_;
  std::size_t n_;
};

// ---------------------------------------------------------------- operator descriptions

// What the JS call described, read on the JS thread; the space is made on the worker.
struct OperatorSpec {
  std::string kind;
  std::size_t n = 0;
  Device device = Device::Cpu;
  bool f64 = false;
  double symmetry_tol = -1;  // matrix: refuse max|A−Aᵀ|/max(1,max|A|) above this (negative: no check)
  const float* a32 = nullptr;
  const double* a64 = nullptr;
  std::shared_ptr<ObjectiveState> objective;
  std::shared_ptr<Tsfn> tsfn;
};

// A space with everything it borrows.
struct Bound {
  std::unique_ptr<hessian::Operator<float>> op32;
  std::unique_ptr<hessian::Operator<double>> op64;
  std::unique_lock<std::mutex> lock;  // the model objective's, for the whole run
  std::unique_ptr<Space> space;
};

OperatorSpec read_operator(Napi::Env env, const Napi::Object& opts) {
  if (!has(opts, "operator") || !opts.Get("operator").IsObject())
    fail(ErrorCode::InvalidArgument, "'operator' must be an operator description");
  Napi::Object o = opts.Get("operator").As<Napi::Object>();
  OperatorSpec s;
  s.kind = get_string(o, "kind");
  const Device requested = has(opts, "device") ? parse_device(get_string(opts, "device")) : Device::Auto;
  if (s.kind == "matrix") {
    s.n = get_size(o, "n");
    if (has(o, "symmetryTol")) s.symmetry_tol = get_number(o, "symmetryTol");
    const std::size_t nn = checked_mul(s.n, s.n);
    Napi::Value m = o.Get("matrix");
    s.f64 = m.IsTypedArray() && m.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
    if (s.f64) {
      s.a64 = get_array<double>(o, "matrix", nn).data;
      if (requested == Device::Cuda) fail(ErrorCode::Dtype, "float64 operators run on the CPU; pass a Float32Array for 'cuda'");
      s.device = Device::Cpu;
    } else {
      s.a32 = get_array<float>(o, "matrix", nn).data;
      s.device = resolve_device(requested);
    }
  } else if (s.kind == "model") {
    s.objective = objective_state(o.Get("objective"), "operator.objective");
    s.n = s.objective->layout.total;
    Napi::Value t = o.Get("theta");
    s.f64 = t.IsTypedArray() && t.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
    if (s.f64) {
      s.a64 = get_array<double>(o, "theta", s.n).data;
      if (requested == Device::Cuda) fail(ErrorCode::Dtype, "the float64 model Hessian runs on the CPU");
      s.device = Device::Cpu;
    } else {
      s.a32 = get_array<float>(o, "theta", s.n).data;
      s.device = resolve_device(requested);
    }
  } else if (s.kind == "callback") {
    s.n = get_size(o, "n");
    Napi::Value fn = o.Get("fn");
    if (!fn.IsFunction()) fail(ErrorCode::InvalidArgument, "operator.fn must be a function");
    if (requested == Device::Cuda) fail(ErrorCode::InvalidArgument, "callback operators run on the CPU");
    s.tsfn = std::make_shared<Tsfn>();
    s.tsfn->fn = Napi::ThreadSafeFunction::New(env, fn.As<Napi::Function>(), "nnscope.hessian.operator", 0, 1);
    s.device = Device::Cpu;
  } else {
    fail(ErrorCode::InvalidArgument, "unknown operator kind '" + s.kind + "'");
  }
  if (s.n == 0) fail(ErrorCode::Shape, "the operator has dimension 0");
  return s;
}

// Called on the worker thread.
std::unique_ptr<Bound> bind(const OperatorSpec& s) {
  auto b = std::make_unique<Bound>();
  if (s.kind == "matrix") {
    const double asym = s.symmetry_tol < 0 ? 0 : s.f64 ? hessian::asymmetry(s.a64, s.n) : hessian::asymmetry(s.a32, s.n);
    if (asym > s.symmetry_tol && s.symmetry_tol >= 0)
      fail(ErrorCode::InvalidArgument, "the matrix is not symmetric (max |A−Aᵀ| / max(1, max |A|) = " +
                                           std::to_string(asym) + ")");
    if (s.f64) {
      require_finite(s.a64, checked_mul(s.n, s.n), "matrix");
      b->op64 = std::make_unique<hessian::DenseOperator<double>>(s.a64, s.n);
    } else {
      require_finite(s.a32, checked_mul(s.n, s.n), "matrix");
      if (s.device == Device::Cuda) {
        b->space = require_gpu().make_dense_space(s.a32, s.n);
        return b;
      }
      b->op32 = std::make_unique<hessian::DenseOperator<float>>(s.a32, s.n);
    }
  } else if (s.kind == "model") {
    b->lock = std::unique_lock<std::mutex>(s.objective->mu);
    if (s.f64) {
      require_finite(s.a64, s.n, "theta");
      b->op64 = std::make_unique<hessian::ModelOperator64>(*s.objective->cpu, s.a64);
    } else {
      require_finite(s.a32, s.n, "theta");
      models::Objective& f = objective_for(*s.objective, s.device);
      if (s.device == Device::Cuda) {
        b->space = require_gpu().make_objective_space(f, s.a32);
        return b;
      }
      b->op32 = std::make_unique<hessian::ModelOperator>(f, s.a32);
    }
  } else {
    b->op32 = std::make_unique<CallbackOperator>(s.tsfn, s.n);
  }
  b->space = b->op64 ? hessian::make_cpu_space(*b->op64) : hessian::make_cpu_space(*b->op32);
  return b;
}

// ---------------------------------------------------------------- results

Napi::Float64Array f64_array(Napi::Env env, const std::vector<double>& v) { return copy_to_js<Napi::Float64Array>(env, v); }

// Eigenvectors in the operator's precision.
Napi::Value vectors_array(Napi::Env env, const std::vector<double>& v, bool f64) {
  if (f64) return f64_array(env, v);
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  for (std::size_t i = 0; i < v.size(); ++i) a[i] = static_cast<float>(v[i]);
  return a;
}

Napi::Object eig_object(Napi::Env env, const hessian::EigResult& r, bool f64) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("values", f64_array(env, r.values));
  if (!r.vectors.empty()) o.Set("vectors", vectors_array(env, r.vectors, f64));
  o.Set("residuals", f64_array(env, r.residuals));
  o.Set("converged", r.converged);
  o.Set("restarts", double(r.restarts));
  o.Set("products", double(r.products));
  return o;
}

hessian::Which which_of(const std::string& s) {
  if (s == "largest") return hessian::Which::LargestAlgebraic;
  if (s == "smallest") return hessian::Which::SmallestAlgebraic;
  if (s == "magnitude") return hessian::Which::LargestMagnitude;
  fail(ErrorCode::InvalidArgument, "which must be 'largest', 'smallest' or 'magnitude'");
}

std::uint64_t seed_of(const Napi::Object& o) { return has(o, "seed") ? static_cast<std::uint64_t>(get_size(o, "seed")) : 0; }

// ---------------------------------------------------------------- ops

// eigs({operator, device, k, which, tol, maxProducts, basis, seed, vectors}) → EigResult
Napi::Value Eigs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto spec = std::make_shared<OperatorSpec>(read_operator(env, o));
    hessian::EigOptions e;
    e.k = get_size(o, "k");
    if (has(o, "which")) e.which = which_of(get_string(o, "which"));
    if (has(o, "tol")) e.tol = get_number(o, "tol");
    if (has(o, "maxProducts")) e.max_products = get_size(o, "maxProducts");
    if (has(o, "basis")) e.basis = get_size(o, "basis");
    e.seed = seed_of(o);
    e.vectors = get_bool(o, "vectors", true);
    auto result = std::make_shared<hessian::EigResult>();
    return start_op(
        env, o,
        [spec, e, result](const OpContext& ctx) {
          auto b = bind(*spec);
          *result = hessian::eigsh(*b->space, e, ctx);
        },
        [spec, result](Napi::Env env) -> Napi::Value { return eig_object(env, *result, spec->f64); });
  });
}

// power({operator, device, k, maxIter, tol, seed, vectors}) → EigResult
Napi::Value Power(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto spec = std::make_shared<OperatorSpec>(read_operator(env, o));
    hessian::PowerOptions p;
    p.k = get_size(o, "k");
    if (has(o, "maxIter")) p.max_iter = get_size(o, "maxIter");
    if (has(o, "tol")) p.tol = get_number(o, "tol");
    p.seed = seed_of(o);
    p.vectors = get_bool(o, "vectors", true);
    auto result = std::make_shared<hessian::EigResult>();
    return start_op(
        env, o,
        [spec, p, result](const OpContext& ctx) {
          auto b = bind(*spec);
          *result = hessian::power_iteration(*b->space, p, ctx);
        },
        [spec, result](Napi::Env env) -> Napi::Value { return eig_object(env, *result, spec->f64); });
  });
}

// trace({operator, device, method: 'hutchinson'|'hutch++', maxProducts, minSamples, relTol, absTol, seed})
Napi::Value Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto spec = std::make_shared<OperatorSpec>(read_operator(env, o));
    hessian::TraceOptions t;
    const std::string method = has(o, "method") ? get_string(o, "method") : "hutchinson";
    if (method == "hutchinson") t.method = hessian::TraceMethod::Hutchinson;
    else if (method == "hutch++") t.method = hessian::TraceMethod::HutchPlusPlus;
    else fail(ErrorCode::InvalidArgument, "method must be 'hutchinson' or 'hutch++'");
    if (has(o, "maxProducts")) t.max_products = get_size(o, "maxProducts");
    if (has(o, "minSamples")) t.min_samples = get_size(o, "minSamples");
    if (has(o, "relTol")) t.rel_tol = get_number(o, "relTol");
    if (has(o, "absTol")) t.abs_tol = get_number(o, "absTol");
    t.seed = seed_of(o);
    auto result = std::make_shared<hessian::TraceResult>();
    return start_op(
        env, o,
        [spec, t, result](const OpContext& ctx) {
          auto b = bind(*spec);
          *result = hessian::trace(*b->space, t, ctx);
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("estimate", result->estimate);
          r.Set("stdError", result->std_error);
          r.Set("samples", f64_array(env, result->samples));
          r.Set("converged", result->converged);
          r.Set("products", double(result->products));
          return r;
        });
  });
}

// density({operator, device, steps, runs, seed, gridPoints, sigmaSquared, overhead})
// → {runs, steps, nodes, weights, grid, density, variance, products}; gridPoints 0 = no grid.
Napi::Value Density(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto spec = std::make_shared<OperatorSpec>(read_operator(env, o));
    hessian::SlqOptions s;
    if (has(o, "steps")) s.steps = get_size(o, "steps");
    if (has(o, "runs")) s.runs = get_size(o, "runs");
    s.seed = seed_of(o);
    hessian::GridOptions g;
    if (has(o, "gridPoints")) g.points = get_size(o, "gridPoints");
    if (has(o, "sigmaSquared")) g.sigma_squared = get_number(o, "sigmaSquared");
    if (has(o, "overhead")) g.overhead = get_number(o, "overhead");
    auto result = std::make_shared<hessian::SlqResult>();
    auto grid = std::make_shared<hessian::DensityGrid>();
    return start_op(
        env, o,
        [spec, s, g, result, grid](const OpContext& ctx) {
          auto b = bind(*spec);
          *result = hessian::slq(*b->space, s, ctx);
          if (g.points > 0) *grid = hessian::density_grid(*result, g);
        },
        [result, grid](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("runs", double(result->runs));
          r.Set("steps", double(result->steps));
          r.Set("nodes", f64_array(env, result->nodes));
          r.Set("weights", f64_array(env, result->weights));
          r.Set("grid", f64_array(env, grid->grid));
          r.Set("density", f64_array(env, grid->density));
          r.Set("variance", grid->variance);
          r.Set("products", double(result->products));
          return r;
        });
  });
}

// lanczos({operator, device, steps, seed, reorthPasses}) → {alpha, beta, restarts, products}
Napi::Value Lanczos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto spec = std::make_shared<OperatorSpec>(read_operator(env, o));
    hessian::LanczosOptions l;
    if (has(o, "steps")) l.steps = get_size(o, "steps");
    if (has(o, "reorthPasses")) l.reorth_passes = static_cast<int>(get_size(o, "reorthPasses"));
    l.seed = seed_of(o);
    auto result = std::make_shared<hessian::LanczosResult>();
    return start_op(
        env, o,
        [spec, l, result](const OpContext& ctx) {
          auto b = bind(*spec);
          *result = hessian::lanczos(*b->space, l, ctx);
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("alpha", f64_array(env, result->alpha));
          r.Set("beta", f64_array(env, result->beta));
          r.Set("restarts", double(result->restarts));
          r.Set("products", double(result->products));
          return r;
        });
  });
}

// tridiagonalEigen({alpha: Float64Array(n), beta: Float64Array(n-1), vectors}) → {values, vectors?} (sync)
Napi::Value TridiagonalEigen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto alpha = get_array<double>(o, "alpha");
    const std::size_t n = alpha.length;
    auto beta = get_array<double>(o, "beta", n ? n - 1 : 0);
    const bool want = get_bool(o, "vectors", false);
    std::vector<double> values(n), vectors(want ? checked_mul(n, n) : 0);
    hessian::tridiagonal_eigen(n, alpha.data, beta.data, values.data(), want ? vectors.data() : nullptr);
    Napi::Object r = Napi::Object::New(env);
    r.Set("values", f64_array(env, values));
    if (want) r.Set("vectors", f64_array(env, vectors));
    return r;
  });
}

}  // namespace

void init_hessian(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("eigs", Napi::Function::New(env, Eigs, "eigs"));
  m.Set("power", Napi::Function::New(env, Power, "power"));
  m.Set("trace", Napi::Function::New(env, Trace, "trace"));
  m.Set("density", Napi::Function::New(env, Density, "density"));
  m.Set("lanczos", Napi::Function::New(env, Lanczos, "lanczos"));
  m.Set("tridiagonalEigen", Napi::Function::New(env, TridiagonalEigen, "tridiagonalEigen"));
  exports.Set("hessian", m);
}

}  // namespace nnscope::addon
