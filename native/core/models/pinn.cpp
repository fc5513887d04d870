#include "models/pinn.h"

#include <cmath>
#include <memory>
#include <numeric>

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

namespace {
constexpr double kTwoPi = 6.28318530717958647692;

// Inputs (x, t) in that order; channel 0 = ∂/∂x, channel 1 = ∂/∂t.
template <typename T>
class IcGroup final : public Group<T> {
 public:
  const double* x = nullptr;
  double scale = 1.0;
  void inputs(std::size_t lo, std::size_t hi, T* out) const override {
    for (std::size_t i = lo; i < hi; ++i) {
      out[2 * (i - lo)] = T(x[i]);
      out[2 * (i - lo) + 1] = T(0);
    }
  }
  double head(std::size_t lo, std::size_t hi, const T* u, T* g) const override {
    double s = 0.0;
    for (std::size_t i = lo; i < hi; ++i) {
      const double d = double(u[i - lo]) - std::sin(x[i]);
      s += d * d;
      if (g) g[i - lo] = T(2.0 * scale * d);
    }
    return scale * s;
  }
  void rhead(std::size_t lo, std::size_t hi, const T*, const T* ru, T* rg) const override {
    for (std::size_t i = 0; i < hi - lo; ++i) rg[i] = T(2.0 * scale * double(ru[i]));
  }
};

// Unit j = the pair (0, t_j), (2π, t_j): rows [0, nb) at x = 0, rows [nb, 2nb) at x = 2π.
template <typename T>
class BcGroup final : public Group<T> {
 public:
  const double* t = nullptr;
  double scale = 1.0;
  BcGroup() { this->rows_per_unit = 2; }
  void inputs(std::size_t lo, std::size_t hi, T* out) const override {
    const std::size_t nb = hi - lo;
    for (std::size_t j = lo; j < hi; ++j) {
      out[2 * (j - lo)] = T(0);
      out[2 * (j - lo) + 1] = T(t[j]);
      out[2 * (nb + j - lo)] = T(kTwoPi);
      out[2 * (nb + j - lo) + 1] = T(t[j]);
    }
  }
  double head(std::size_t lo, std::size_t hi, const T* u, T* g) const override {
    const std::size_t nb = hi - lo;
    double s = 0.0;
    for (std::size_t q = 0; q < nb; ++q) {
      const double d = double(u[q]) - double(u[nb + q]);
      s += d * d;
      if (g) {
        g[q] = T(2.0 * scale * d);
        g[nb + q] = T(-2.0 * scale * d);
      }
    }
    return scale * s;
  }
  void rhead(std::size_t lo, std::size_t hi, const T*, const T* ru, T* rg) const override {
    const std::size_t nb = hi - lo;
    for (std::size_t q = 0; q < nb; ++q) {
      const double rd = double(ru[q]) - double(ru[nb + q]);
      rg[q] = T(2.0 * scale * rd);
      rg[nb + q] = T(-2.0 * scale * rd);
    }
  }
};

// Collocation points: r = u_t + β u_x from the two tangent channels.
template <typename T>
class ResidualGroup final : public Group<T> {
 public:
  const double* x = nullptr;
  const double* t = nullptr;
  double beta = 1.0, scale = 1.0;  // scale = λ / N_f
  ResidualGroup() { this->channels = {0, 1}; }
  void inputs(std::size_t lo, std::size_t hi, T* out) const override {
    for (std::size_t i = lo; i < hi; ++i) {
      out[2 * (i - lo)] = T(x[i]);
      out[2 * (i - lo) + 1] = T(t[i]);
    }
  }
  double head(std::size_t lo, std::size_t hi, const T* out, T* g) const override {
    const std::size_t B = hi - lo;
    double s = 0.0;
    for (std::size_t i = 0; i < B; ++i) {
      const double r = double(out[2 * B + i]) + beta * double(out[B + i]);
      s += r * r;
      if (g) {
        g[i] = T(0);
        g[B + i] = T(2.0 * scale * beta * r);
        g[2 * B + i] = T(2.0 * scale * r);
      }
    }
    return scale * s;
  }
  void rhead(std::size_t lo, std::size_t hi, const T*, const T* rout, T* rg) const override {
    const std::size_t B = hi - lo;
    for (std::size_t i = 0; i < B; ++i) {
      const double rr = double(rout[2 * B + i]) + beta * double(rout[B + i]);
      rg[i] = T(0);
      rg[B + i] = T(2.0 * scale * beta * rr);
      rg[2 * B + i] = T(2.0 * scale * rr);
    }
  }
};

// Outputs u (and u_x, u_t with channels) at given points, copied out; no loss.
template <typename T>
class PredictGroup final : public Group<T> {
 public:
  const double* x = nullptr;
  const double* t = nullptr;
  T *u = nullptr, *ux = nullptr, *ut = nullptr;
  void inputs(std::size_t lo, std::size_t hi, T* out) const override {
    for (std::size_t i = lo; i < hi; ++i) {
      out[2 * (i - lo)] = T(x[i]);
      out[2 * (i - lo) + 1] = T(t[i]);
    }
  }
  double head(std::size_t lo, std::size_t hi, const T* out, T*) const override {
    const std::size_t B = hi - lo;
    for (std::size_t i = 0; i < B; ++i) {
      u[lo + i] = out[i];
      if (!this->channels.empty()) {
        if (ux) ux[lo + i] = out[B + i];
        if (ut) ut[lo + i] = out[2 * B + i];
      }
    }
    return 0.0;
  }
  void rhead(std::size_t, std::size_t, const T*, const T*, T*) const override {}
};

// Σ (u − sin(x − βt))² over the evaluation grid; unit = one grid point, row-major
// over (t index, x index).
class GridErrorGroup final : public Group<float> {
 public:
  std::size_t nx = 0, nt = 0;
  double beta = 1.0;
  double xv(std::size_t i) const { return kTwoPi * double(i % nx) / double(nx); }
  double tv(std::size_t i) const { return double(i / nx) / double(nt - 1); }
  void inputs(std::size_t lo, std::size_t hi, float* out) const override {
    for (std::size_t i = lo; i < hi; ++i) {
      out[2 * (i - lo)] = float(xv(i));
      out[2 * (i - lo) + 1] = float(tv(i));
    }
  }
  double head(std::size_t lo, std::size_t hi, const float* u, float*) const override {
    double s = 0.0;
    for (std::size_t i = lo; i < hi; ++i) {
      const double d = double(u[i - lo]) - std::sin(xv(i) - beta * tv(i));
      s += d * d;
    }
    return s;
  }
  void rhead(std::size_t, std::size_t, const float*, const float*, float*) const override {}
};

void validate_points(const PinnPoints& p) {
  NNSCOPE_CHECK(!p.ic_x.empty(), ErrorCode::InvalidArgument, "the PINN needs initial-condition points");
  NNSCOPE_CHECK(!p.f_x.empty(), ErrorCode::InvalidArgument, "the PINN needs collocation points");
  NNSCOPE_CHECK(p.f_x.size() == p.f_t.size(), ErrorCode::Shape, "collocation x and t have different lengths");
  require_finite(p.ic_x.data(), p.ic_x.size(), "initial-condition points");
  if (!p.bc_t.empty()) require_finite(p.bc_t.data(), p.bc_t.size(), "boundary points");
  require_finite(p.f_x.data(), p.f_x.size(), "collocation x");
  require_finite(p.f_t.data(), p.f_t.size(), "collocation t");
}

}  // namespace

// ---------------------------------------------------------------- spec and points
void validate(const PinnSpec& s) {
  NNSCOPE_CHECK(s.widths.size() >= 2, ErrorCode::InvalidArgument, "the PINN network needs at least two widths");
  NNSCOPE_CHECK(s.widths.front() == 2, ErrorCode::InvalidArgument, "the PINN network takes 2 inputs (x, t)");
  NNSCOPE_CHECK(s.widths.back() == 1, ErrorCode::InvalidArgument, "the PINN network has 1 output");
  MlpSpec m = pinn_mlp_spec(s);
  validate(m);
  NNSCOPE_CHECK(std::isfinite(s.beta), ErrorCode::InvalidArgument, "beta must be finite");
  NNSCOPE_CHECK(std::isfinite(s.lambda) && s.lambda >= 0.0, ErrorCode::InvalidArgument,
                "lambda must be finite and ≥ 0");
  NNSCOPE_CHECK(s.x_grid >= 2 && s.t_grid >= 2, ErrorCode::InvalidArgument, "the grids need at least 2 points each");
  NNSCOPE_CHECK(s.x_grid <= (std::size_t(1) << 24) && s.t_grid <= (std::size_t(1) << 24), ErrorCode::TooLarge,
                "grid too large");
  NNSCOPE_CHECK(s.n_collocation >= 1, ErrorCode::InvalidArgument, "n_collocation must be ≥ 1");
  if (s.collocation_sampling == PinnSampling::Grid)
    NNSCOPE_CHECK(s.n_collocation <= (s.x_grid - 1) * (s.t_grid - 1), ErrorCode::InvalidArgument,
                  "n_collocation exceeds the " + std::to_string((s.x_grid - 1) * (s.t_grid - 1)) +
                      " interior grid points");
  NNSCOPE_CHECK(s.n_collocation <= (std::size_t(1) << 32), ErrorCode::TooLarge, "n_collocation too large");
}

MlpSpec pinn_mlp_spec(const PinnSpec& spec) {
  MlpSpec m;
  m.widths = spec.widths;
  m.hidden = spec.activation;
  m.output = Activation::Identity;
  m.loss = LossKind::Mse;
  m.weight_decay = spec.weight_decay;
  return m;
}

ParamLayout pinn_layout(const PinnSpec& spec) { return mlp_layout(spec.widths); }

std::vector<float> pinn_init(const PinnSpec& spec, uint64_t seed, InitKind kind) {
  return mlp_init(pinn_mlp_spec(spec), seed, kind);
}

PinnPoints pinn_points(const PinnSpec& s) {
  validate(s);
  PinnPoints p;
  const Rng col(s.seed, 1), ic(s.seed, 2), bc(s.seed, 3);
  if (s.boundary_sampling == PinnSampling::Grid) {
    p.ic_x.resize(s.x_grid);
    for (std::size_t j = 0; j < s.x_grid; ++j) p.ic_x[j] = kTwoPi * double(j) / double(s.x_grid);
    p.bc_t.resize(s.t_grid);
    for (std::size_t i = 0; i < s.t_grid; ++i) p.bc_t[i] = double(i) / double(s.t_grid - 1);
  } else {
    const std::size_t ni = s.n_initial ? s.n_initial : s.x_grid;
    const std::size_t nb = s.n_boundary ? s.n_boundary : s.t_grid;
    p.ic_x.resize(ni);
    for (std::size_t j = 0; j < ni; ++j) p.ic_x[j] = kTwoPi * ic.uniform_at(j);
    p.bc_t.resize(nb);
    for (std::size_t i = 0; i < nb; ++i) p.bc_t[i] = bc.uniform_at(i);
  }
  const std::size_t nf = s.n_collocation;
  p.f_x.resize(nf);
  p.f_t.resize(nf);
  if (s.collocation_sampling == PinnSampling::Grid) {
    // nf distinct interior grid points (x index ≥ 1, t index ≥ 1): partial Fisher–Yates.
    const std::size_t mx = s.x_grid - 1, mt = s.t_grid - 1, M = mx * mt;
    std::vector<uint32_t> idx(M);
    std::iota(idx.begin(), idx.end(), 0u);
    for (std::size_t i = 0; i < nf; ++i) {
      const std::size_t j = i + std::size_t(col.below_at(i, M - i));
      std::swap(idx[i], idx[j]);
      const std::size_t ix = 1 + idx[i] % mx, it = 1 + idx[i] / mx;
      p.f_x[i] = kTwoPi * double(ix) / double(s.x_grid);
      p.f_t[i] = double(it) / double(s.t_grid - 1);
    }
  } else {
    for (std::size_t i = 0; i < nf; ++i) {
      p.f_x[i] = kTwoPi * col.uniform_at(2 * i);
      p.f_t[i] = col.uniform_at(2 * i + 1);
    }
  }
  return p;
}

// ---------------------------------------------------------------- objective
struct PinnObjective::Impl {
  PinnSpec spec;
  PinnPoints pts;
  ParamLayout layout;
  Net net;
  IcGroup<float> icf;
  BcGroup<float> bcf;
  ResidualGroup<float> rf;
  IcGroup<double> icd;
  BcGroup<double> bcd;
  ResidualGroup<double> rd;
  std::vector<Task<float>> tf;
  std::vector<Task<double>> td;
  detail::Bound bound() const { return {net, tf, td, spec.weight_decay}; }

  void setup() {
    layout = mlp_layout(spec.widths);
    net = detail::make_net(spec.widths, spec.activation, Activation::Identity);
    auto ic = [&](auto& g) {
      g.units = pts.ic_x.size();
      g.x = pts.ic_x.data();
      g.scale = 1.0 / double(pts.ic_x.size());
    };
    auto bc = [&](auto& g) {
      g.units = pts.bc_t.size();
      g.t = pts.bc_t.data();
      g.scale = pts.bc_t.empty() ? 0.0 : 1.0 / double(pts.bc_t.size());
    };
    auto res = [&](auto& g) {
      g.units = pts.f_x.size();
      g.x = pts.f_x.data();
      g.t = pts.f_t.data();
      g.beta = spec.beta;
      g.scale = spec.lambda / double(pts.f_x.size());
    };
    ic(icf);
    ic(icd);
    bc(bcf);
    bc(bcd);
    res(rf);
    res(rd);
    tf = detail::make_tasks<float>({&icf, &bcf, &rf});
    td = detail::make_tasks<double>({&icd, &bcd, &rd});
  }
};

PinnObjective::PinnObjective(PinnSpec spec) : impl_(nullptr) {
  validate(spec);
  auto impl = std::make_unique<Impl>();
  impl->pts = pinn_points(spec);
  impl->spec = std::move(spec);
  impl->setup();
  impl_ = impl.release();
}

PinnObjective::PinnObjective(PinnSpec spec, PinnPoints points) : impl_(nullptr) {
  NNSCOPE_CHECK(spec.widths.size() >= 2 && spec.widths.front() == 2 && spec.widths.back() == 1,
                ErrorCode::InvalidArgument, "the PINN network maps 2 inputs to 1 output");
  validate(pinn_mlp_spec(spec));
  NNSCOPE_CHECK(std::isfinite(spec.beta), ErrorCode::InvalidArgument, "beta must be finite");
  NNSCOPE_CHECK(std::isfinite(spec.lambda) && spec.lambda >= 0.0, ErrorCode::InvalidArgument,
                "lambda must be finite and ≥ 0");
  validate_points(points);
  auto impl = std::make_unique<Impl>();
  impl->pts = std::move(points);
  impl->spec = std::move(spec);
  impl->setup();
  impl_ = impl.release();
}

PinnObjective::~PinnObjective() { delete impl_; }

std::size_t PinnObjective::dim() const { return impl_->net.P; }
const PinnSpec& PinnObjective::spec() const noexcept { return impl_->spec; }
const PinnPoints& PinnObjective::points() const noexcept { return impl_->pts; }
const ParamLayout& PinnObjective::layout() const noexcept { return impl_->layout; }

// Every entry point is the shared engine bound to this objective's net and tasks.
double PinnObjective::loss(const float* theta, const OpContext& ctx) { return impl_->bound().loss(theta, ctx); }
double PinnObjective::loss_grad(const float* theta, float* grad, const OpContext& ctx) {
  return impl_->bound().loss_grad(theta, grad, ctx);
}
void PinnObjective::hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) {
  impl_->bound().hvp(theta, v, hv, ctx);
}
double PinnObjective::loss64(const double* theta, const OpContext& ctx) { return impl_->bound().loss64(theta, ctx); }
double PinnObjective::loss_grad64(const double* theta, double* grad, const OpContext& ctx) {
  return impl_->bound().loss_grad64(theta, grad, ctx);
}
void PinnObjective::hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) {
  impl_->bound().hvp64(theta, v, hv, ctx);
}
void PinnObjective::loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords,
                      std::size_t n_points, double* out, const OpContext& ctx) {
  impl_->bound().loss_grid(theta0, dirs, k, coords, n_points, out, ctx);
}

PinnObjective::Terms PinnObjective::loss_terms(const float* theta, const OpContext& ctx) {
  Terms t;
  const Net& net = impl_->net;
  t.initial = detail::evaluate<float>(net, detail::make_tasks<float>({&impl_->icf}), Mode::Loss, theta, nullptr,
                                      nullptr, 0.0, ctx);
  t.boundary = detail::evaluate<float>(net, detail::make_tasks<float>({&impl_->bcf}), Mode::Loss, theta, nullptr,
                                       nullptr, 0.0, ctx);
  t.residual = detail::evaluate<float>(net, detail::make_tasks<float>({&impl_->rf}), Mode::Loss, theta, nullptr,
                                       nullptr, 0.0, ctx);
  return t;
}

// ---------------------------------------------------------------- prediction, error
namespace {
template <typename T>
void predict_impl(const PinnSpec& spec, const T* theta, const double* x, const double* t, std::size_t n, T* u, T* ux,
                  T* ut, const OpContext& ctx) {
  NNSCOPE_CHECK(spec.widths.size() >= 2 && spec.widths.front() == 2 && spec.widths.back() == 1,
                ErrorCode::InvalidArgument, "the PINN network maps 2 inputs to 1 output");
  validate(pinn_mlp_spec(spec));
  if (n == 0) return;
  const Net net = detail::make_net(spec.widths, spec.activation, Activation::Identity);
  PredictGroup<T> g;
  g.units = n;
  g.x = x;
  g.t = t;
  g.u = u;
  g.ux = ux;
  g.ut = ut;
  if (ux || ut) g.channels = {0, 1};
  const auto tasks = detail::make_tasks<T>({&g});
  detail::evaluate<T>(net, tasks, Mode::Loss, theta, nullptr, nullptr, 0.0, ctx);
}
}  // namespace

void pinn_predict(const PinnSpec& spec, const float* theta, const double* x, const double* t, std::size_t n, float* u,
                  float* u_x, float* u_t, const OpContext& ctx) {
  predict_impl<float>(spec, theta, x, t, n, u, u_x, u_t, ctx);
}
void pinn_predict64(const PinnSpec& spec, const double* theta, const double* x, const double* t, std::size_t n,
                    double* u, double* u_x, double* u_t, const OpContext& ctx) {
  predict_impl<double>(spec, theta, x, t, n, u, u_x, u_t, ctx);
}

double pinn_relative_l2(const PinnSpec& spec, const float* theta, const OpContext& ctx) {
  validate(spec);
  const Net net = detail::make_net(spec.widths, spec.activation, Activation::Identity);
  GridErrorGroup g;
  g.nx = spec.x_grid;
  g.nt = spec.t_grid;
  g.beta = spec.beta;
  g.units = spec.x_grid * spec.t_grid;
  const auto tasks = detail::make_tasks<float>({&g});
  const double num = detail::evaluate<float>(net, tasks, Mode::Loss, theta, nullptr, nullptr, 0.0, ctx);
  double den = 0.0;
  for (std::size_t i = 0; i < g.units; ++i) {
    const double u = std::sin(g.xv(i) - spec.beta * g.tv(i));
    den += u * u;
  }
  return std::sqrt(num / den);
}

}  // namespace nnscope::models
