#include "models/mlp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "base/buffer.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/rng.h"
#include "models/engine.h"

namespace nnscope::models {

using detail::Group;
using detail::Mode;
using detail::Net;
using detail::Task;

// ---------------------------------------------------------------- names
const char* activation_name(Activation a) noexcept {
  switch (a) {
    case Activation::Identity: return "identity";
    case Activation::Tanh: return "tanh";
    case Activation::Relu: return "relu";
    case Activation::Gelu: return "gelu";
    case Activation::Softplus: return "softplus";
    case Activation::Sigmoid: return "sigmoid";
  }
  return "?";
}

const char* loss_name(LossKind l) noexcept {
  switch (l) {
    case LossKind::Mse: return "mse";
    case LossKind::SoftmaxCrossEntropy: return "softmax_cross_entropy";
    case LossKind::BinaryCrossEntropy: return "binary_cross_entropy";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  for (Activation a : {Activation::Identity, Activation::Tanh, Activation::Relu, Activation::Gelu,
                       Activation::Softplus, Activation::Sigmoid})
    if (name == activation_name(a)) return a;
  fail(ErrorCode::InvalidArgument,
       "unknown activation '" + name + "' (expected identity, tanh, relu, gelu, softplus or sigmoid)");
}

LossKind parse_loss(const std::string& name) {
  for (LossKind l : {LossKind::Mse, LossKind::SoftmaxCrossEntropy, LossKind::BinaryCrossEntropy})
    if (name == loss_name(l)) return l;
  fail(ErrorCode::InvalidArgument,
       "unknown loss '" + name + "' (expected mse, softmax_cross_entropy or binary_cross_entropy)");
}

// ---------------------------------------------------------------- spec, layout, init
namespace {
void validate_widths(const std::vector<std::size_t>& widths) {
  NNSCOPE_CHECK(widths.size() >= 2, ErrorCode::InvalidArgument,
                "an MLP needs at least two widths (input and output), got " + std::to_string(widths.size()));
  for (std::size_t i = 0; i < widths.size(); ++i)
    NNSCOPE_CHECK(widths[i] > 0, ErrorCode::InvalidArgument, "width " + std::to_string(i) + " is zero");
  std::size_t total = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const std::size_t layer = checked_mul(widths[l + 1], widths[l] + 1);
    NNSCOPE_CHECK(total <= std::numeric_limits<std::size_t>::max() - layer, ErrorCode::TooLarge,
                  "parameter count overflows");
    total += layer;
  }
  // Rows per task times the widest layer must stay addressable.
  for (std::size_t w : widths) (void)checked_mul(checked_mul(w, 3 * detail::kChunkRows), 8);
}
}  // namespace

void validate(const MlpSpec& spec) {
  validate_widths(spec.widths);
  NNSCOPE_CHECK(std::isfinite(spec.weight_decay) && spec.weight_decay >= 0.0, ErrorCode::InvalidArgument,
                "weight_decay must be finite and ≥ 0");
}

std::size_t ParamEntry::size() const noexcept {
  std::size_t s = 1;
  for (std::size_t d : shape) s *= d;
  return s;
}

const ParamEntry* ParamLayout::find(const std::string& name) const noexcept {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

ParamLayout mlp_layout(const std::vector<std::size_t>& widths) {
  validate_widths(widths);
  ParamLayout lay;
  std::size_t off = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const std::string pre = "layer" + std::to_string(l);
    lay.entries.push_back({pre + ".weight", off, {widths[l + 1], widths[l]}});
    off += widths[l + 1] * widths[l];
    lay.entries.push_back({pre + ".bias", off, {widths[l + 1]}});
    off += widths[l + 1];
  }
  lay.total = off;
  return lay;
}

std::size_t mlp_num_params(const std::vector<std::size_t>& widths) { return mlp_layout(widths).total; }

void init_params(const std::vector<std::size_t>& widths, Activation hidden, uint64_t seed, float* theta,
                 InitKind kind) {
  const ParamLayout lay = mlp_layout(widths);
  if (kind == InitKind::Auto)
    kind = (hidden == Activation::Relu || hidden == Activation::Gelu || hidden == Activation::Softplus)
               ? InitKind::HeNormal
               : InitKind::XavierNormal;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const ParamEntry& we = lay.entries[2 * l];
    const ParamEntry& be = lay.entries[2 * l + 1];
    const double fan_in = double(widths[l]), fan_out = double(widths[l + 1]);
    const Rng rng(seed, l);
    float* w = theta + we.offset;
    const std::size_t n = we.size();
    switch (kind) {
      case InitKind::XavierNormal:
      case InitKind::HeNormal: {
        const double sd = kind == InitKind::HeNormal ? std::sqrt(2.0 / fan_in) : std::sqrt(2.0 / (fan_in + fan_out));
        rng.gaussian(w, n);
        for (std::size_t i = 0; i < n; ++i) w[i] = float(double(w[i]) * sd);
        break;
      }
      case InitKind::XavierUniform:
      case InitKind::HeUniform:
      case InitKind::Auto: {
        const double b =
            kind == InitKind::HeUniform ? std::sqrt(6.0 / fan_in) : std::sqrt(6.0 / (fan_in + fan_out));
        rng.uniform(w, n);
        for (std::size_t i = 0; i < n; ++i) w[i] = float((2.0 * double(w[i]) - 1.0) * b);
        break;
      }
    }
    std::fill(theta + be.offset, theta + be.offset + be.size(), 0.0f);
  }
}

std::vector<float> mlp_init(const MlpSpec& spec, uint64_t seed, InitKind kind) {
  validate(spec);
  std::vector<float> theta(mlp_num_params(spec.widths));
  init_params(spec.widths, spec.hidden, seed, theta.data(), kind);
  return theta;
}

// ---------------------------------------------------------------- groups
namespace {

// The data rows of an MLP with one of the three losses. Heads compute in double.
template <typename T>
class MlpGroup final : public Group<T> {
 public:
  const float* x = nullptr;
  std::size_t d_in = 0, d_out = 0;
  const float* y = nullptr;
  const int32_t* labels = nullptr;
  LossKind loss = LossKind::Mse;
  double scale = 1.0;

  void inputs(std::size_t lo, std::size_t hi, T* out) const override {
    const float* src = x + lo * d_in;
    const std::size_t len = (hi - lo) * d_in;
    for (std::size_t i = 0; i < len; ++i) out[i] = T(src[i]);
  }

  double head(std::size_t lo, std::size_t hi, const T* out, T* g) const override {
    const std::size_t B = hi - lo;
    double total = 0.0;
    switch (loss) {
      case LossKind::Mse:
        for (std::size_t i = 0; i < B * d_out; ++i) {
          const double d = double(out[i]) - double(y[lo * d_out + i]);
          total += d * d;
          if (g) g[i] = T(2.0 * scale * d);
        }
        break;
      case LossKind::BinaryCrossEntropy:
        for (std::size_t i = 0; i < B * d_out; ++i) {
          const double a = double(out[i]), t = double(y[lo * d_out + i]);
          total += std::max(a, 0.0) - a * t + std::log1p(std::exp(-std::fabs(a)));
          if (g) g[i] = T(scale * (sigmoid(a) - t));
        }
        break;
      case LossKind::SoftmaxCrossEntropy:
        for (std::size_t i = 0; i < B; ++i) {
          const T* a = out + i * d_out;
          const std::size_t lab = std::size_t(labels[lo + i]);
          double m = double(a[0]);
          for (std::size_t j = 1; j < d_out; ++j) m = std::max(m, double(a[j]));
          double se = 0.0;
          for (std::size_t j = 0; j < d_out; ++j) se += std::exp(double(a[j]) - m);
          const double lse = m + std::log(se);
          total += lse - double(a[lab]);
          if (g)
            for (std::size_t j = 0; j < d_out; ++j)
              g[i * d_out + j] = T(scale * (std::exp(double(a[j]) - lse) - (j == lab ? 1.0 : 0.0)));
        }
        break;
    }
    return scale * total;
  }

  void rhead(std::size_t lo, std::size_t hi, const T* out, const T* rout, T* rg) const override {
    const std::size_t B = hi - lo;
    switch (loss) {
      case LossKind::Mse:
        for (std::size_t i = 0; i < B * d_out; ++i) rg[i] = T(2.0 * scale * double(rout[i]));
        break;
      case LossKind::BinaryCrossEntropy:
        for (std::size_t i = 0; i < B * d_out; ++i) {
          const double s = sigmoid(double(out[i]));
          rg[i] = T(scale * s * (1.0 - s) * double(rout[i]));
        }
        break;
      case LossKind::SoftmaxCrossEntropy:
        for (std::size_t i = 0; i < B; ++i) {
          const T* a = out + i * d_out;
          const T* ra = rout + i * d_out;
          double m = double(a[0]);
          for (std::size_t j = 1; j < d_out; ++j) m = std::max(m, double(a[j]));
          double se = 0.0;
          for (std::size_t j = 0; j < d_out; ++j) se += std::exp(double(a[j]) - m);
          const double lse = m + std::log(se);
          double pr = 0.0;
          for (std::size_t j = 0; j < d_out; ++j) pr += std::exp(double(a[j]) - lse) * double(ra[j]);
          for (std::size_t j = 0; j < d_out; ++j) {
            const double p = std::exp(double(a[j]) - lse);
            rg[i * d_out + j] = T(scale * p * (double(ra[j]) - pr));
          }
        }
        break;
    }
  }

 private:
  static double sigmoid(double a) {
    if (a >= 0) return 1.0 / (1.0 + std::exp(-a));
    const double e = std::exp(a);
    return e / (1.0 + e);
  }
};

// Copies the outputs into `dst` (n × d_out); no loss.
class PredictGroup final : public Group<float> {
 public:
  const float* x = nullptr;
  std::size_t d_in = 0, d_out = 0;
  float* dst = nullptr;
  void inputs(std::size_t lo, std::size_t hi, float* out) const override {
    std::copy(x + lo * d_in, x + hi * d_in, out);
  }
  double head(std::size_t lo, std::size_t hi, const float* out, float*) const override {
    std::copy(out, out + (hi - lo) * d_out, dst + lo * d_out);
    return 0.0;
  }
  void rhead(std::size_t, std::size_t, const float*, const float*, float*) const override {}
};

}  // namespace

// ---------------------------------------------------------------- objective
struct MlpObjective::Impl {
  MlpSpec spec;
  ParamLayout layout;
  Net net;
  std::size_t n = 0;
  std::vector<float> x, y;
  std::vector<int32_t> labels;
  MlpGroup<float> gf;
  MlpGroup<double> gd;
  std::vector<Task<float>> tf;
  std::vector<Task<double>> td;
  detail::Bound bound() const { return {net, tf, td, spec.weight_decay}; }
};

MlpObjective::MlpObjective(MlpSpec spec, const Dataset& data, const std::vector<std::size_t>& indices)
    : impl_(nullptr) {
  validate(spec);
  const std::size_t d_in = spec.widths.front(), d_out = spec.widths.back();
  NNSCOPE_CHECK(data.n > 0, ErrorCode::InvalidArgument, "the dataset is empty");
  NNSCOPE_CHECK(data.inputs != nullptr, ErrorCode::InvalidArgument, "the dataset has no inputs");
  NNSCOPE_CHECK(data.d_in == d_in, ErrorCode::Shape,
                "input width " + std::to_string(data.d_in) + " does not match the network's " + std::to_string(d_in));
  const bool ce = spec.loss == LossKind::SoftmaxCrossEntropy;
  if (ce) {
    NNSCOPE_CHECK(data.labels != nullptr, ErrorCode::InvalidArgument,
                  "softmax_cross_entropy needs int32 labels");
  } else {
    NNSCOPE_CHECK(data.targets != nullptr, ErrorCode::InvalidArgument,
                  std::string(loss_name(spec.loss)) + " needs float targets");
    NNSCOPE_CHECK(data.d_out == d_out, ErrorCode::Shape,
                  "target width " + std::to_string(data.d_out) + " does not match the network's output width " +
                      std::to_string(d_out));
  }
  for (std::size_t i : indices)
    NNSCOPE_CHECK(i < data.n, ErrorCode::InvalidArgument,
                  "sample index " + std::to_string(i) + " out of range (n = " + std::to_string(data.n) + ")");

  auto impl = std::make_unique<Impl>();
  impl->spec = std::move(spec);
  impl->layout = mlp_layout(impl->spec.widths);
  impl->net = detail::make_net(impl->spec.widths, impl->spec.hidden, impl->spec.output);
  const std::size_t n = indices.empty() ? data.n : indices.size();
  impl->n = n;
  auto row = [&](std::size_t i) { return indices.empty() ? i : indices[i]; };
  impl->x.resize(checked_mul(n, d_in));
  for (std::size_t i = 0; i < n; ++i)
    std::copy(data.inputs + row(i) * d_in, data.inputs + (row(i) + 1) * d_in, impl->x.data() + i * d_in);
  require_finite(impl->x.data(), impl->x.size(), "inputs");
  if (ce) {
    impl->labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int32_t lab = data.labels[row(i)];
      NNSCOPE_CHECK(lab >= 0 && std::size_t(lab) < d_out, ErrorCode::InvalidArgument,
                    "label " + std::to_string(lab) + " of sample " + std::to_string(row(i)) + " is outside [0, " +
                        std::to_string(d_out) + ")");
      impl->labels[i] = lab;
    }
  } else {
    impl->y.resize(checked_mul(n, d_out));
    for (std::size_t i = 0; i < n; ++i)
      std::copy(data.targets + row(i) * d_out, data.targets + (row(i) + 1) * d_out, impl->y.data() + i * d_out);
    require_finite(impl->y.data(), impl->y.size(), "targets");
  }
  const double scale = ce ? 1.0 / double(n) : 1.0 / (double(n) * double(d_out));
  auto setup = [&](auto& g) {
    g.units = n;
    g.rows_per_unit = 1;
    g.x = impl->x.data();
    g.d_in = d_in;
    g.d_out = d_out;
    g.y = impl->y.empty() ? nullptr : impl->y.data();
    g.labels = impl->labels.empty() ? nullptr : impl->labels.data();
    g.loss = impl->spec.loss;
    g.scale = scale;
  };
  setup(impl->gf);
  setup(impl->gd);
  impl->tf = detail::make_tasks<float>({&impl->gf});
  impl->td = detail::make_tasks<double>({&impl->gd});
  impl_ = impl.release();
}

MlpObjective::~MlpObjective() { delete impl_; }

std::size_t MlpObjective::dim() const { return impl_->net.P; }
const MlpSpec& MlpObjective::spec() const noexcept { return impl_->spec; }
const ParamLayout& MlpObjective::layout() const noexcept { return impl_->layout; }
std::size_t MlpObjective::batch_size() const noexcept { return impl_->n; }

// Every entry point is the shared engine bound to this objective's net and tasks.
double MlpObjective::loss(const float* theta, const OpContext& ctx) { return impl_->bound().loss(theta, ctx); }
double MlpObjective::loss_grad(const float* theta, float* grad, const OpContext& ctx) {
  return impl_->bound().loss_grad(theta, grad, ctx);
}
void MlpObjective::hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) {
  impl_->bound().hvp(theta, v, hv, ctx);
}
double MlpObjective::loss64(const double* theta, const OpContext& ctx) { return impl_->bound().loss64(theta, ctx); }
double MlpObjective::loss_grad64(const double* theta, double* grad, const OpContext& ctx) {
  return impl_->bound().loss_grad64(theta, grad, ctx);
}
void MlpObjective::hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) {
  impl_->bound().hvp64(theta, v, hv, ctx);
}
void MlpObjective::loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords,
                      std::size_t n_points, double* out, const OpContext& ctx) {
  impl_->bound().loss_grid(theta0, dirs, k, coords, n_points, out, ctx);
}

void mlp_predict(const MlpSpec& spec, const float* theta, const float* inputs, std::size_t n, float* out,
                 const OpContext& ctx) {
  validate(spec);
  if (n == 0) return;
  const Net net = detail::make_net(spec.widths, spec.hidden, spec.output);
  PredictGroup g;
  g.units = n;
  g.x = inputs;
  g.d_in = spec.widths.front();
  g.d_out = spec.widths.back();
  g.dst = out;
  const auto tasks = detail::make_tasks<float>({&g});
  detail::evaluate<float>(net, tasks, Mode::Loss, theta, nullptr, nullptr, 0.0, ctx);
}

}  // namespace nnscope::models
