// nnscope addon: models — objectives (MLP + dataset, the convection PINN) as
// JS handles, their loss / gradient / HVP / loss grid / training as async ops, and
// the built-in datasets. Translation only: the mathematics is in core/models.
#include <memory>
#include <mutex>

#include "base/buffer.h"
#include "base/finite.h"
#include "common.h"
#include "models.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/optim.h"
#include "models/pinn.h"

namespace nnscope::addon {

namespace {

using models::Objective;

Device device_of(const Napi::Object& opts) {
  return has(opts, "device") ? parse_device(get_string(opts, "device")) : Device::Auto;
}

class ObjectiveHandle : public Napi::ObjectWrap<ObjectiveHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Objective",
                       {InstanceAccessor("dim", &ObjectiveHandle::Dim, nullptr),
                        InstanceAccessor("samples", &ObjectiveHandle::Samples, nullptr),
                        InstanceAccessor("kind", &ObjectiveHandle::Kind, nullptr),
                        InstanceMethod("layout", &ObjectiveHandle::Layout),
                        InstanceMethod("loss", &ObjectiveHandle::Loss),
                        InstanceMethod("lossGrad", &ObjectiveHandle::LossGrad),
                        InstanceMethod("hvp", &ObjectiveHandle::Hvp),
                        InstanceMethod("lossGrad64", &ObjectiveHandle::LossGrad64),
                        InstanceMethod("hvp64", &ObjectiveHandle::Hvp64),
                        InstanceMethod("lossGrid", &ObjectiveHandle::LossGrid),
                        InstanceMethod("train", &ObjectiveHandle::Train),
                        InstanceMethod("pinnEval", &ObjectiveHandle::PinnEval),
                        InstanceMethod("subset", &ObjectiveHandle::Subset)});
  }

  explicit ObjectiveHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ObjectiveHandle>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw make_error(info.Env(), ErrorCode::InvalidArgument, "objectives are made by models.createMlp / createPinn");
    state_ = *info[0].As<Napi::External<std::shared_ptr<ObjectiveState>>>().Data();
  }

 private:
  std::size_t dim() const { return state_->layout.total; }

  Napi::Value Dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(dim())); }
  // Samples an MLP objective averages over (0 for the PINN).
  Napi::Value Samples(const Napi::CallbackInfo& info) {
    const auto& s = *state_;
    const std::size_t n = s.kind != "mlp" ? 0 : s.indices.empty() ? s.data.n : s.indices.size();
    return Napi::Number::New(info.Env(), double(n));
  }
  Napi::Value Kind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), state_->kind); }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env, state_->layout.entries.size());
    for (uint32_t i = 0; i < state_->layout.entries.size(); ++i) {
      const auto& e = state_->layout.entries[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", e.name);
      o.Set("offset", double(e.offset));
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (uint32_t j = 0; j < e.shape.size(); ++j) shape.Set(j, double(e.shape[j]));
      o.Set("shape", shape);
      out.Set(i, o);
    }
    return out;
  }

  // loss({theta, device, cancel}) → number
  Napi::Value Loss(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const float* theta = get_array<float>(o, "theta", dim()).data;
      auto st = state_;
      const Device device = resolve_device(device_of(o));
      auto value = std::make_shared<double>(0);
      return start_op(
          info.Env(), o,
          [st, device, theta, value](const OpContext& ctx) {
            std::lock_guard<std::mutex> lock(st->mu);
            require_finite(theta, st->layout.total, "theta");
            *value = objective_for(*st, device).loss(theta, ctx);
          },
          [value](Napi::Env env) { return Napi::Number::New(env, *value); });
    });
  }

  // lossGrad({theta, grad}) → loss (grad written)
  Napi::Value LossGrad(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const float* theta = get_array<float>(o, "theta", dim()).data;
      float* grad = get_array<float>(o, "grad", dim()).data;
      auto st = state_;
      const Device device = resolve_device(device_of(o));
      auto value = std::make_shared<double>(0);
      return start_op(
          info.Env(), o,
          [st, device, theta, grad, value](const OpContext& ctx) {
            std::lock_guard<std::mutex> lock(st->mu);
            require_finite(theta, st->layout.total, "theta");
            *value = objective_for(*st, device).loss_grad(theta, grad, ctx);
          },
          [value](Napi::Env env) { return Napi::Number::New(env, *value); });
    });
  }

  // hvp({theta, v, hv})
  Napi::Value Hvp(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const float* theta = get_array<float>(o, "theta", dim()).data;
      const float* v = get_array<float>(o, "v", dim()).data;
      float* hv = get_array<float>(o, "hv", dim()).data;
      auto st = state_;
      const Device device = resolve_device(device_of(o));
      return start_op(info.Env(), o, [st, device, theta, v, hv](const OpContext& ctx) {
        std::lock_guard<std::mutex> lock(st->mu);
        require_finite(theta, st->layout.total, "theta");
        require_finite(v, st->layout.total, "v");
        objective_for(*st, device).hvp(theta, v, hv, ctx);
      });
    });
  }

  // lossGrad64({theta: Float64Array, grad: Float64Array}) → loss (CPU float64 reference)
  Napi::Value LossGrad64(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const double* theta = get_array<double>(o, "theta", dim()).data;
      double* grad = get_array<double>(o, "grad", dim()).data;
      auto st = state_;
      auto value = std::make_shared<double>(0);
      return start_op(
          info.Env(), o,
          [st, theta, grad, value](const OpContext& ctx) {
            std::lock_guard<std::mutex> lock(st->mu);
            *value = st->cpu->loss_grad64(theta, grad, ctx);
          },
          [value](Napi::Env env) { return Napi::Number::New(env, *value); });
    });
  }

  // hvp64({theta, v, hv}: Float64Array) (CPU float64 reference)
  Napi::Value Hvp64(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const double* theta = get_array<double>(o, "theta", dim()).data;
      const double* v = get_array<double>(o, "v", dim()).data;
      double* hv = get_array<double>(o, "hv", dim()).data;
      auto st = state_;
      return start_op(info.Env(), o, [st, theta, v, hv](const OpContext& ctx) {
        std::lock_guard<std::mutex> lock(st->mu);
        st->cpu->hvp64(theta, v, hv, ctx);
      });
    });
  }

  // lossGrid({theta0, dirs (k×P), k, coords (n×k), out: Float64Array(n)})
  Napi::Value LossGrid(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const std::size_t k = get_size(o, "k");
      const float* theta0 = get_array<float>(o, "theta0", dim()).data;
      const float* dirs = get_array<float>(o, "dirs", checked_mul(k, dim())).data;
      auto out = get_array<double>(o, "out");
      const float* coords = get_array<float>(o, "coords", checked_mul(out.length, k)).data;
      auto st = state_;
      const Device device = resolve_device(device_of(o));
      double* dst = out.data;
      const std::size_t n = out.length;
      return start_op(info.Env(), o, [st, device, theta0, dirs, k, coords, n, dst](const OpContext& ctx) {
        std::lock_guard<std::mutex> lock(st->mu);
        require_finite(theta0, st->layout.total, "theta0");
        require_finite(dirs, k * st->layout.total, "directions");
        require_finite(coords, n * k, "coords");
        objective_for(*st, device).loss_grid(theta0, dirs, k, coords, n, dst, ctx);
      });
    });
  }

  // train({theta (in/out), optimizer, maxSteps, toleranceGrad, toleranceChange, lr,
  //        beta1, beta2, eps, weightDecay, history, lineSearch, c1, c2, maxEvals,
  //        batchSize, seed}) → {lossHistory, steps, ..., stopReason, message}
  Napi::Value Train(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      float* theta = get_array<float>(o, "theta", dim()).data;
      models::TrainOptions t;
      const std::string kind = get_string(o, "optimizer");
      if (kind == "adam") t.kind = models::Optimizer::Adam;
      else if (kind == "lbfgs") t.kind = models::Optimizer::Lbfgs;
      else fail(ErrorCode::InvalidArgument, "optimizer must be 'adam' or 'lbfgs'");
      t.max_steps = static_cast<int>(get_size(o, "maxSteps"));
      t.tolerance_grad = get_number(o, "toleranceGrad");
      t.tolerance_change = get_number(o, "toleranceChange");
      t.seed = static_cast<uint64_t>(get_size(o, "seed"));
      if (t.kind == models::Optimizer::Adam) {
        t.adam.lr = get_number(o, "lr");
        t.adam.beta1 = get_number(o, "beta1");
        t.adam.beta2 = get_number(o, "beta2");
        t.adam.eps = get_number(o, "eps");
        t.adam.weight_decay = get_number(o, "weightDecay");
      } else {
        t.lbfgs.lr = get_number(o, "lr");
        t.lbfgs.history = static_cast<int>(get_size(o, "history"));
        const std::string ls = get_string(o, "lineSearch");
        if (ls == "strong_wolfe") t.lbfgs.line_search = models::LineSearch::StrongWolfe;
        else if (ls == "none") t.lbfgs.line_search = models::LineSearch::None;
        else fail(ErrorCode::InvalidArgument, "lineSearch must be 'strong_wolfe' or 'none'");
        t.lbfgs.c1 = get_number(o, "c1");
        t.lbfgs.c2 = get_number(o, "c2");
        t.lbfgs.max_evals = static_cast<int>(get_size(o, "maxEvals"));
      }
      const std::size_t batch = has(o, "batchSize") ? get_size(o, "batchSize") : 0;
      auto st = state_;
      if (batch > 0 && st->kind != "mlp") fail(ErrorCode::InvalidArgument, "batchSize applies to MLP objectives only");
      const Device device = resolve_device(device_of(o));
      models::validate(t);
      auto result = std::make_shared<models::TrainResult>();
      return start_op(
          info.Env(), o,
          [st, device, theta, t, batch, result](const OpContext& ctx) mutable {
            std::lock_guard<std::mutex> lock(st->mu);
            std::unique_ptr<models::MinibatchSampler> sampler;
            std::unique_ptr<Objective> current;
            if (batch > 0 && batch < st->data.n) {
              sampler = std::make_unique<models::MinibatchSampler>(st->data.n, batch, t.seed);
              const models::Dataset view = st->data.view();
              t.batch = [&, view](int step) -> Objective& {
                const auto& idx = sampler->batch(step);
                current = device == Device::Cuda ? require_gpu().make_mlp_objective(st->mlp_spec, view, idx)
                                                 : std::make_unique<models::MlpObjective>(st->mlp_spec, view, idx);
                return *current;
              };
            }
            // Progress carries the loss of each step: train()'s own step reports are
            // replaced by on_step's (same steps, plus the value).
            OpContext inner = ctx;
            inner.progress = nullptr;
            inner.progress_value = nullptr;
            const double total = t.max_steps;
            *result = models::train(objective_for(*st, device), theta, t, inner,
                                    [&ctx, total](int step, double loss) { ctx.report_value(step, total, loss); });
          },
          [result](Napi::Env env) -> Napi::Value {
            const auto& r = *result;
            Napi::Object out = Napi::Object::New(env);
            Napi::Float64Array hist = Napi::Float64Array::New(env, r.loss_history.size());
            for (std::size_t i = 0; i < r.loss_history.size(); ++i) hist[i] = r.loss_history[i];
            out.Set("lossHistory", hist);
            out.Set("steps", r.steps);
            out.Set("functionEvals", double(r.function_evals));
            out.Set("gradientEvals", double(r.gradient_evals));
            out.Set("stopReason", models::stop_reason_name(r.stop_reason));
            out.Set("message", r.message);
            out.Set("finalLoss", r.final_loss);
            out.Set("finalGradNorm", r.final_grad_norm);
            out.Set("restarts", r.restarts);
            out.Set("skippedUpdates", r.skipped_updates);
            return out;
          });
    });
  }

  // pinnEval({theta}) → {relativeL2, initial, boundary, residual}  (PINN only)
  Napi::Value PinnEval(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      auto st = state_;
      if (st->kind != "pinn") fail(ErrorCode::InvalidArgument, "pinnEval needs a PINN objective");
      const float* theta = get_array<float>(o, "theta", dim()).data;
      auto res = std::make_shared<std::pair<double, models::PinnObjective::Terms>>();
      return start_op(
          info.Env(), o,
          [st, theta, res](const OpContext& ctx) {
            std::lock_guard<std::mutex> lock(st->mu);
            res->first = models::pinn_relative_l2(st->pinn_spec, theta, ctx);
            res->second = static_cast<models::PinnObjective&>(*st->cpu).loss_terms(theta, ctx);
          },
          [res](Napi::Env env) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("relativeL2", res->first);
            out.Set("initial", res->second.initial);
            out.Set("boundary", res->second.boundary);
            out.Set("residual", res->second.residual);
            return out;
          });
    });
  }

  // subset({indices}) → a new MLP objective over those samples of this one's data
  // (indices into its own sample set: subsets compose).
  Napi::Value Subset(const Napi::CallbackInfo& info);

  std::shared_ptr<ObjectiveState> state_;

 public:
  std::shared_ptr<ObjectiveState> state() const { return state_; }
};

Napi::FunctionReference& objective_ctor() {
  static thread_local Napi::FunctionReference ref;  // one per JS thread (env)
  return ref;
}

Napi::Value wrap(Napi::Env env, std::shared_ptr<ObjectiveState> st) {
  return objective_ctor().New({Napi::External<std::shared_ptr<ObjectiveState>>::New(env, &st)});
}

Napi::Value ObjectiveHandle::Subset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    if (state_->kind != "mlp") fail(ErrorCode::InvalidArgument, "only MLP objectives have sample subsets");
    const std::vector<std::size_t> rel = get_sizes(o, "indices");
    auto st = std::make_shared<ObjectiveState>();
    st->kind = "mlp";
    st->mlp_spec = state_->mlp_spec;
    st->layout = state_->layout;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      st->data = state_->data;
    }
    const std::size_t have = state_->indices.empty() ? st->data.n : state_->indices.size();
    st->indices.reserve(rel.size());
    for (std::size_t i : rel) {
      if (i >= have)
        fail(ErrorCode::InvalidArgument, "subset index " + std::to_string(i) + " is out of range (the objective has " +
                                             std::to_string(have) + " samples)");
      st->indices.push_back(state_->indices.empty() ? i : state_->indices[i]);
    }
    if (st->indices.empty()) fail(ErrorCode::InvalidArgument, "a subset needs at least one sample");
    st->cpu = std::make_unique<models::MlpObjective>(st->mlp_spec, st->data.view(), st->indices);
    return wrap(env, st);
  });
}

models::Activation activation_of(const Napi::Object& o, const char* key, models::Activation fallback) {
  return has(o, key) ? models::parse_activation(get_string(o, key)) : fallback;
}

// createMlp({widths, activation, outputActivation, loss, weightDecay, inputs, n,
//            targets?, labels?, indices?}) → Objective (copies the data)
Napi::Value CreateMlp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto st = std::make_shared<ObjectiveState>();
    st->kind = "mlp";
    models::MlpSpec& spec = st->mlp_spec;
    spec.widths = get_sizes(o, "widths");
    spec.hidden = activation_of(o, "activation", models::Activation::Tanh);
    spec.output = activation_of(o, "outputActivation", models::Activation::Identity);
    spec.loss = models::parse_loss(get_string(o, "loss"));
    spec.weight_decay = has(o, "weightDecay") ? get_number(o, "weightDecay") : 0.0;
    models::validate(spec);
    const std::size_t n = get_size(o, "n");
    const std::size_t d_in = spec.widths.front();
    auto inputs = get_array<float>(o, "inputs", checked_mul(n, d_in));
    models::OwnedDataset& d = st->data;
    d.n = n;
    d.d_in = d_in;
    d.inputs.assign(inputs.data, inputs.data + inputs.length);
    if (has(o, "targets")) {
      auto t = get_array<float>(o, "targets");
      if (n == 0 || t.length % n != 0) fail(ErrorCode::Shape, "targets must have n × outputs elements");
      d.d_out = t.length / n;
      d.targets.assign(t.data, t.data + t.length);
    }
    if (has(o, "labels")) {
      auto l = get_array<int32_t>(o, "labels", n);
      d.labels.assign(l.data, l.data + l.length);
    }
    if (has(o, "indices")) st->indices = get_sizes(o, "indices");
    st->cpu = std::make_unique<models::MlpObjective>(spec, d.view(), st->indices);
    st->layout = models::mlp_layout(spec.widths);
    return wrap(env, st);
  });
}

models::PinnSampling sampling_of(const Napi::Object& o, const char* key) {
  if (!has(o, key)) return models::PinnSampling::Grid;
  const std::string s = get_string(o, key);
  if (s == "grid") return models::PinnSampling::Grid;
  if (s == "random") return models::PinnSampling::Random;
  fail(ErrorCode::InvalidArgument, std::string(key) + " must be 'grid' or 'random'");
}

// createPinn({beta, lambda, widths, activation, xGrid, tGrid, nCollocation,
//             collocationSampling, boundarySampling, nInitial, nBoundary, seed, weightDecay})
Napi::Value CreatePinn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto st = std::make_shared<ObjectiveState>();
    st->kind = "pinn";
    models::PinnSpec& s = st->pinn_spec;
    if (has(o, "beta")) s.beta = get_number(o, "beta");
    if (has(o, "lambda")) s.lambda = get_number(o, "lambda");
    if (has(o, "widths")) s.widths = get_sizes(o, "widths");
    s.activation = activation_of(o, "activation", s.activation);
    if (has(o, "xGrid")) s.x_grid = get_size(o, "xGrid");
    if (has(o, "tGrid")) s.t_grid = get_size(o, "tGrid");
    if (has(o, "nCollocation")) s.n_collocation = get_size(o, "nCollocation");
    s.collocation_sampling = sampling_of(o, "collocationSampling");
    s.boundary_sampling = sampling_of(o, "boundarySampling");
    if (has(o, "nInitial")) s.n_initial = get_size(o, "nInitial");
    if (has(o, "nBoundary")) s.n_boundary = get_size(o, "nBoundary");
    if (has(o, "seed")) s.seed = get_size(o, "seed");
    if (has(o, "weightDecay")) s.weight_decay = get_number(o, "weightDecay");
    models::validate(s);
    st->cpu = std::make_unique<models::PinnObjective>(s);
    st->layout = models::pinn_layout(s);
    return wrap(env, st);
  });
}

// initParams({widths, activation, seed, init}) → Float32Array
Napi::Value InitParams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const auto widths = get_sizes(o, "widths");
    const auto act = activation_of(o, "activation", models::Activation::Tanh);
    models::InitKind kind = models::InitKind::Auto;
    if (has(o, "init")) {
      const std::string s = get_string(o, "init");
      if (s == "auto") kind = models::InitKind::Auto;
      else if (s == "xavier_normal") kind = models::InitKind::XavierNormal;
      else if (s == "xavier_uniform") kind = models::InitKind::XavierUniform;
      else if (s == "he_normal") kind = models::InitKind::HeNormal;
      else if (s == "he_uniform") kind = models::InitKind::HeUniform;
      else fail(ErrorCode::InvalidArgument, "unknown init '" + s + "'");
    }
    models::MlpSpec spec;
    spec.widths = widths;
    spec.hidden = act;
    models::validate(spec);
    const std::size_t P = models::mlp_num_params(widths);
    Napi::Float32Array out = Napi::Float32Array::New(env, P);
    models::init_params(widths, act, static_cast<uint64_t>(get_size(o, "seed")), out.Data(), kind);
    return out;
  });
}

// dataset({kind: 'spirals'|'blobs'|'sine', n, noise, seed, d, classes, std, turns})
Napi::Value MakeDataset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::string kind = get_string(o, "kind");
    const std::size_t n = get_size(o, "n");
    const uint64_t seed = get_size(o, "seed");
    models::OwnedDataset d;
    if (kind == "spirals") d = models::make_two_spirals(n, get_number(o, "noise"), seed, get_number(o, "turns"));
    else if (kind == "blobs")
      d = models::make_blobs(n, get_size(o, "d"), get_size(o, "classes"), get_number(o, "std"), seed);
    else if (kind == "sine") d = models::make_sine(n, get_number(o, "noise"), seed);
    else fail(ErrorCode::InvalidArgument, "unknown dataset '" + kind + "'");
    Napi::Object out = Napi::Object::New(env);
    out.Set("n", double(d.n));
    out.Set("dIn", double(d.d_in));
    out.Set("dOut", double(d.d_out));
    auto f32 = [&](const std::vector<float>& v) {
      auto a = Napi::Float32Array::New(env, v.size());
      std::copy(v.begin(), v.end(), a.Data());
      return a;
    };
    out.Set("inputs", f32(d.inputs));
    if (!d.targets.empty()) out.Set("targets", f32(d.targets));
    if (!d.labels.empty()) {
      auto a = Napi::Int32Array::New(env, d.labels.size());
      std::copy(d.labels.begin(), d.labels.end(), a.Data());
      out.Set("labels", a);
    }
    return out;
  });
}

}  // namespace

Objective& objective_for(ObjectiveState& s, Device device) {
  if (device != Device::Cuda) return *s.cpu;
  if (!s.gpu) {
    GpuBackend& gpu = require_gpu();
    if (s.kind == "mlp") {
      s.gpu = gpu.make_mlp_objective(s.mlp_spec, s.data.view(), s.indices);
    } else {
      s.gpu = gpu.make_pinn_objective(s.pinn_spec, static_cast<models::PinnObjective&>(*s.cpu).points());
    }
  }
  return *s.gpu;
}

std::shared_ptr<ObjectiveState> objective_state(const Napi::Value& value, const char* what) {
  if (value.IsObject() && value.As<Napi::Object>().InstanceOf(objective_ctor().Value()))
    return ObjectiveHandle::Unwrap(value.As<Napi::Object>())->state();
  fail(ErrorCode::InvalidArgument, std::string(what) + " must be an nnscope model objective");
}

void init_models(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  Napi::Function ctor = ObjectiveHandle::Define(env);
  objective_ctor() = Napi::Persistent(ctor);
  objective_ctor().SuppressDestruct();
  m.Set("Objective", ctor);
  m.Set("createMlp", Napi::Function::New(env, CreateMlp, "createMlp"));
  m.Set("createPinn", Napi::Function::New(env, CreatePinn, "createPinn"));
  m.Set("initParams", Napi::Function::New(env, InitParams, "initParams"));
  m.Set("dataset", Napi::Function::New(env, MakeDataset, "dataset"));
  exports.Set("models", m);
}

}  // namespace nnscope::addon
