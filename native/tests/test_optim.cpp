// Tests of the optimisers (models/optim.h) on objectives with known minimisers,
// defined here so they do not depend on the model code: Rosenbrock (2-D, 10-D),
// rotated ill-conditioned quadratics, L2-regularised logistic regression, and
// objectives that turn NaN beyond a radius.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <functional>
#include <memory>
#include <numeric>
#include <ostream>
#include <set>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "models/objective.h"
#include "models/optim.h"

using namespace nnscope;
using namespace nnscope::models;

namespace nnscope::models {
// For EXPECT_EQ's failure message.
inline std::ostream& operator<<(std::ostream& os, StopReason r) { return os << stop_reason_name(r); }
}  // namespace nnscope::models

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// An objective computed in double from the float32 θ. Logs every evaluation when
// asked (for the instrumented strong-Wolfe check).
class TestObjective : public Objective {
 public:
  explicit TestObjective(std::size_t n) : n_(n), xd_(n), gd_(n) {}
  std::size_t dim() const override { return n_; }

  // f(x) and, when g is not null, ∇f(x).
  virtual double f64(const double* x, double* g) = 0;

  double loss(const float* theta, const OpContext&) override {
    for (std::size_t i = 0; i < n_; ++i) xd_[i] = theta[i];
    ++evals;
    return f64(xd_.data(), nullptr);
  }
  double loss_grad(const float* theta, float* grad, const OpContext& ctx) override {
    if (on_eval) on_eval(evals);
    for (std::size_t i = 0; i < n_; ++i) xd_[i] = theta[i];
    ++evals;
    const double f = f64(xd_.data(), gd_.data());
    for (std::size_t i = 0; i < n_; ++i) grad[i] = static_cast<float>(gd_[i]);
    if (!std::isfinite(f)) ++nonfinite_evals;
    if (log) {
      records.push_back({std::vector<float>(theta, theta + n_), f, std::vector<float>(grad, grad + n_)});
    }
    return f;
  }
  void hvp(const float*, const float*, float*, const OpContext&) override {
    fail(ErrorCode::Internal, "test objective: hvp not used");
  }
  double loss_grad64(const double* theta, double* grad, const OpContext&) override { return f64(theta, grad); }
  void hvp64(const double*, const double*, double*, const OpContext&) override {
    fail(ErrorCode::Internal, "test objective: hvp64 not used");
  }
  void loss_grid(const float*, const float*, std::size_t, const float*, std::size_t, double*,
                 const OpContext&) override {
    fail(ErrorCode::Internal, "test objective: loss_grid not used");
  }

  double value(const float* theta) { return loss(theta, {}); }

  struct Record {
    std::vector<float> x;
    double f;
    std::vector<float> g;
  };
  bool log = false;
  std::vector<Record> records;
  int64_t evals = 0, nonfinite_evals = 0;
  std::function<void(int64_t)> on_eval;  // called before each loss_grad

 protected:
  std::size_t n_;
  std::vector<double> xd_, gd_;
};

// Chained Rosenbrock: Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², minimum 0 at (1, …, 1).
class Rosenbrock : public TestObjective {
 public:
  using TestObjective::TestObjective;
  double f64(const double* x, double* g) override {
    double f = 0.0;
    if (g) std::fill(g, g + n_, 0.0);
    for (std::size_t i = 0; i + 1 < n_; ++i) {
      const double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
      f += 100.0 * a * a + b * b;
      if (g) {
        g[i] += -400.0 * a * x[i] - 2.0 * b;
        g[i + 1] += 200.0 * a;
      }
    }
    return f;
  }
};

// ½xᵀAx − bᵀx with A = Q diag(λ) Qᵀ, λ log-spaced in [1, κ], Q a product of random
// Householder reflections; b = A x*, so the minimiser is x* (known exactly).
class Quadratic : public TestObjective {
 public:
  Quadratic(std::size_t n, double kappa, uint64_t seed) : TestObjective(n), A(n * n, 0.0), b(n), xstar(n) {
    const Rng rng(seed);
    uint64_t draw = 0;
    for (std::size_t i = 0; i < n; ++i) A[i * n + i] = n > 1 ? std::pow(kappa, double(i) / double(n - 1)) : 1.0;
    for (int h = 0; h < 4; ++h) {  // A ← H A H, H = I − 2vvᵀ/vᵀv
      std::vector<double> v(n);
      double vv = 0.0;
      for (auto& e : v) {
        e = rng.gaussian_at(draw++);
        vv += e * e;
      }
      for (auto& e : v) e /= std::sqrt(vv);
      std::vector<double> Av(n, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) Av[i] += A[i * n + j] * v[j];
      const double vAv = std::inner_product(v.begin(), v.end(), Av.begin(), 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
          A[i * n + j] += -2.0 * v[i] * Av[j] - 2.0 * Av[i] * v[j] + 4.0 * vAv * v[i] * v[j];
    }
    for (auto& e : xstar) e = 2.0 * rng.uniform_at(draw++) - 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      b[i] = 0.0;
      for (std::size_t j = 0; j < n; ++j) b[i] += A[i * n + j] * xstar[j];
    }
    fstar = 0.0;
    for (std::size_t i = 0; i < n; ++i) fstar -= 0.5 * b[i] * xstar[i];
  }
  double f64(const double* x, double* g) override {
    double f = 0.0;
    for (std::size_t i = 0; i < n_; ++i) {
      double ax = 0.0;
      for (std::size_t j = 0; j < n_; ++j) ax += A[i * n_ + j] * x[j];
      f += 0.5 * x[i] * ax - b[i] * x[i];
      if (g) g[i] = ax - b[i];
    }
    return f;
  }
  std::vector<double> A, b, xstar;
  double fstar = 0.0;
};

// L2-regularised logistic regression on synthetic data: mean over the samples in
// `subset` (all by default) of log(1 + exp(−y·(w·x + c))) + ½λ‖w‖². θ = (w, c).
struct LogisticData {
  std::size_t n, d;
  std::vector<double> X, y;  // y ∈ {−1, +1}
  LogisticData(std::size_t n_, std::size_t d_, uint64_t seed) : n(n_), d(d_), X(n_ * d_), y(n_) {
    const Rng rng(seed);
    uint64_t draw = 0;
    std::vector<double> w(d);
    for (auto& e : w) e = rng.gaussian_at(draw++);
    for (std::size_t i = 0; i < n; ++i) {
      double z = 0.3;
      for (std::size_t j = 0; j < d; ++j) {
        X[i * d + j] = rng.gaussian_at(draw++);
        z += w[j] * X[i * d + j];
      }
      const double p = 1.0 / (1.0 + std::exp(-z));
      y[i] = rng.uniform_at(draw++) < p ? 1.0 : -1.0;  // label noise: not separable
    }
  }
};

class Logistic : public TestObjective {
 public:
  Logistic(const LogisticData& data, double lambda) : TestObjective(data.d + 1), D(data), lam(lambda) {}
  std::vector<std::size_t> subset;  // empty: every sample

  double f64(const double* t, double* g) override {
    const std::size_t d = D.d;
    if (g) std::fill(g, g + n_, 0.0);
    double f = 0.0;
    const std::size_t m = subset.empty() ? D.n : subset.size();
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t i = subset.empty() ? k : subset[k];
      double z = t[d];
      for (std::size_t j = 0; j < d; ++j) z += t[j] * D.X[i * d + j];
      const double yz = D.y[i] * z;
      f += yz > 0 ? std::log1p(std::exp(-yz)) : -yz + std::log1p(std::exp(yz));
      if (g) {
        const double s = -D.y[i] / (1.0 + std::exp(yz));  // ∂/∂z
        for (std::size_t j = 0; j < d; ++j) g[j] += s * D.X[i * d + j];
        g[d] += s;
      }
    }
    f /= double(m);
    if (g)
      for (std::size_t j = 0; j <= d; ++j) g[j] /= double(m);
    for (std::size_t j = 0; j < d; ++j) {
      f += 0.5 * lam * t[j] * t[j];
      if (g) g[j] += lam * t[j];
    }
    return f;
  }

  // The minimiser by Newton's method in double (reference).
  std::vector<double> newton_minimiser() const {
    const std::size_t d = D.d, p = d + 1;
    std::vector<double> t(p, 0.0);
    for (int it = 0; it < 50; ++it) {
      std::vector<double> g(p, 0.0), H(p * p, 0.0);
      for (std::size_t i = 0; i < D.n; ++i) {
        std::vector<double> xi(p, 1.0);
        for (std::size_t j = 0; j < d; ++j) xi[j] = D.X[i * d + j];
        double z = 0.0;
        for (std::size_t j = 0; j < p; ++j) z += t[j] * xi[j];
        const double sig = 1.0 / (1.0 + std::exp(D.y[i] * z));
        for (std::size_t j = 0; j < p; ++j) {
          g[j] += -D.y[i] * sig * xi[j] / double(D.n);
          for (std::size_t l = 0; l < p; ++l) H[j * p + l] += sig * (1.0 - sig) * xi[j] * xi[l] / double(D.n);
        }
      }
      for (std::size_t j = 0; j < d; ++j) {
        g[j] += lam * t[j];
        H[j * p + j] += lam;
      }
      // Solve H δ = g (Gaussian elimination; H is symmetric positive definite).
      for (std::size_t c = 0; c < p; ++c)
        for (std::size_t r = c + 1; r < p; ++r) {
          const double m = H[r * p + c] / H[c * p + c];
          for (std::size_t l = c; l < p; ++l) H[r * p + l] -= m * H[c * p + l];
          g[r] -= m * g[c];
        }
      for (std::size_t c = p; c-- > 0;) {
        double s = g[c];
        for (std::size_t l = c + 1; l < p; ++l) s -= H[c * p + l] * g[l];
        g[c] = s / H[c * p + c];
      }
      for (std::size_t j = 0; j < p; ++j) t[j] -= g[j];
    }
    return t;
  }

  const LogisticData& D;
  double lam;
};

// ½Σ λᵢ(xᵢ − cᵢ)², NaN (or +Inf) when ‖x‖₂ > radius.
class WalledQuadratic : public TestObjective {
 public:
  WalledQuadratic(std::vector<double> lambda_, std::vector<double> c_, double radius_, bool use_inf = false)
      : TestObjective(lambda_.size()), lambda(std::move(lambda_)), c(std::move(c_)), radius(radius_), inf(use_inf) {}
  double f64(const double* x, double* g) override {
    double r2 = 0.0, f = 0.0;
    for (std::size_t i = 0; i < n_; ++i) r2 += x[i] * x[i];
    const double bad = inf ? std::numeric_limits<double>::infinity() : kNaN;
    for (std::size_t i = 0; i < n_; ++i) {
      const double e = x[i] - c[i];
      f += 0.5 * lambda[i] * e * e;
      if (g) g[i] = r2 > radius * radius ? kNaN : lambda[i] * e;
    }
    return r2 > radius * radius ? bad : f;
  }
  std::vector<double> lambda, c;
  double radius;
  bool inf;
};

// NaN everywhere but at one point.
class NanExceptAt : public TestObjective {
 public:
  explicit NanExceptAt(std::vector<float> at) : TestObjective(at.size()), p(std::move(at)) {}
  double f64(const double* x, double* g) override {
    bool same = true;
    for (std::size_t i = 0; i < n_; ++i) same = same && static_cast<float>(x[i]) == p[i];
    double f = 0.0;
    for (std::size_t i = 0; i < n_; ++i) {
      f += x[i] * x[i];
      if (g) g[i] = 2 * x[i];
    }
    return same ? f : kNaN;
  }
  std::vector<float> p;
};

// Σ (x⁴/4 − x²/2): concave for |x| < 1/√3 (negative curvature pairs there).
class DoubleWell : public TestObjective {
 public:
  using TestObjective::TestObjective;
  double f64(const double* x, double* g) override {
    double f = 0.0;
    for (std::size_t i = 0; i < n_; ++i) {
      f += 0.25 * x[i] * x[i] * x[i] * x[i] - 0.5 * x[i] * x[i];
      if (g) g[i] = x[i] * x[i] * x[i] - x[i];
    }
    return f;
  }
};

bool finite_all(const std::vector<float>& v) {
  for (float e : v)
    if (!std::isfinite(e)) return false;
  return true;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// Invariants every run satisfies.
void check_result(const TrainResult& r, const TrainOptions& o) {
  EXPECT_EQ(r.loss_history.size(), static_cast<std::size_t>(r.steps));
  EXPECT(r.steps <= o.max_steps);
  EXPECT(r.gradient_evals <= r.function_evals);
  EXPECT(!r.message.empty());
  EXPECT(r.message.rfind(stop_reason_name(r.stop_reason), 0) == 0);
  if (r.stop_reason == StopReason::MaxSteps) EXPECT_EQ(r.steps, o.max_steps);
}

TrainOptions lbfgs_options(int max_steps = 200) {
  TrainOptions o;
  o.kind = Optimizer::Lbfgs;
  o.max_steps = max_steps;
  return o;
}

TrainOptions adam_options(double lr, int max_steps) {
  TrainOptions o;
  o.kind = Optimizer::Adam;
  o.adam.lr = lr;
  o.max_steps = max_steps;
  return o;
}

// Replays a run from the objective's log: for consecutive accepted iterates θₖ, θₖ₊₁
// (θ₀ and the θ seen by on_step), s = θₖ₊₁ − θₖ must satisfy the strong-Wolfe
// conditions f(θₖ₊₁) ≤ f(θₖ) + c1·gₖᵀs and |gₖ₊₁ᵀs| ≤ c2·|gₖᵀs|, with gₖᵀs < 0.
// Returns the number of steps checked.
int check_wolfe_from_log(const TestObjective& obj, const std::vector<std::vector<float>>& iterates, double c1,
                         double c2) {
  auto find = [&](const std::vector<float>& x) -> const TestObjective::Record& {
    for (auto it = obj.records.rbegin(); it != obj.records.rend(); ++it)
      if (it->x == x) return *it;
    throw nnscope::test::Failure("an accepted iterate was never evaluated");
  };
  int checked = 0;
  for (std::size_t k = 0; k + 1 < iterates.size(); ++k) {
    const auto& a = find(iterates[k]);
    const auto& b = find(iterates[k + 1]);
    double gs0 = 0.0, gs1 = 0.0;
    for (std::size_t i = 0; i < a.x.size(); ++i) {
      const double s = double(b.x[i]) - double(a.x[i]);
      gs0 += double(a.g[i]) * s;
      gs1 += double(b.g[i]) * s;
    }
    const double slack = 1e-6 * std::fabs(gs0);  // s is α·d rounded to float32
    EXPECT(gs0 < 0.0);
    EXPECT(b.f <= a.f + c1 * gs0 + slack);
    EXPECT(std::fabs(gs1) <= c2 * std::fabs(gs0) + slack);
    ++checked;
  }
  return checked;
}

}  // namespace

// ------------------------------------------------------------------ L-BFGS

NNSCOPE_TEST(lbfgs_rosenbrock_2d) {
  Rosenbrock obj(2);
  std::vector<float> th = {-1.2f, 1.0f};
  TrainOptions o = lbfgs_options(100);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.steps < 100);
  EXPECT(r.stop_reason != StopReason::MaxSteps && r.stop_reason != StopReason::NonFinite);
  EXPECT_NEAR(th[0], 1.0, 1e-5);
  EXPECT_NEAR(th[1], 1.0, 1e-5);
  EXPECT(r.final_loss < 1e-10);
  EXPECT_NEAR(r.final_loss, obj.value(th.data()), 1e-15);
  EXPECT_NEAR(r.loss_history[0], 24.2, 1e-4);  // f(−1.2f, 1): history starts at the initial loss
  EXPECT_EQ(r.function_evals, obj.evals - 1);  // value() above was one more
}

NNSCOPE_TEST(lbfgs_rosenbrock_10d) {
  Rosenbrock obj(10);
  std::vector<float> th(10);
  for (std::size_t i = 0; i < th.size(); ++i) th[i] = i % 2 ? 1.0f : -1.2f;
  TrainOptions o = lbfgs_options(500);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.stop_reason != StopReason::MaxSteps && r.stop_reason != StopReason::NonFinite);
  for (float v : th) EXPECT_NEAR(v, 1.0, 1e-4);
  EXPECT(r.final_loss < 1e-8);
}

NNSCOPE_TEST(lbfgs_ill_conditioned_quadratic_100d) {
  Quadratic obj(100, 1e4, 7);  // κ = 1e4
  std::vector<float> th(100, 0.0f);
  TrainOptions o = lbfgs_options(1000);
  o.tolerance_grad = 1e-5;
  o.tolerance_change = 0;  // |f*| ≈ 2e4: an absolute 1e-9 would stop at 1e-4 from x*
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.stop_reason != StopReason::MaxSteps && r.stop_reason != StopReason::NonFinite);
  EXPECT(max_abs_diff(th, obj.xstar) < 1e-4);
  EXPECT(r.final_loss - obj.fstar < 1e-9 * std::fabs(obj.fstar) + 1e-9);
  EXPECT_EQ(r.skipped_updates, 0);  // a convex quadratic never fails the curvature test
}

NNSCOPE_TEST(lbfgs_strong_wolfe_holds_at_every_accepted_step) {
  for (std::size_t n : {2, 10}) {
    Rosenbrock obj(n);
    obj.log = true;
    std::vector<float> th(n);
    for (std::size_t i = 0; i < n; ++i) th[i] = i % 2 ? 1.0f : -1.2f;
    std::vector<std::vector<float>> iterates = {th};
    TrainOptions o = lbfgs_options(500);
    o.lbfgs.c1 = 1e-4;
    o.lbfgs.c2 = 0.9;
    int searches = 0, accepted = 0;
    o.lbfgs.on_line_search = [&](const LineSearchRecord& rec) {
      ++searches;
      EXPECT(rec.evaluations >= 1 && rec.evaluations <= o.lbfgs.max_evals);
      EXPECT(rec.dphi0 < 0.0);
      if (!rec.accepted) return;
      ++accepted;
      // The record's own numbers satisfy both conditions.
      EXPECT(rec.strong_wolfe);
      EXPECT(rec.phi <= rec.phi0 + o.lbfgs.c1 * rec.alpha * rec.dphi0);
      EXPECT(std::fabs(rec.dphi) <= o.lbfgs.c2 * std::fabs(rec.dphi0));
    };
    float* tp = th.data();
    const TrainResult r = train(obj, tp, o, {}, [&](int, double) { iterates.emplace_back(tp, tp + n); });
    check_result(r, o);
    EXPECT_EQ(accepted, r.steps);
    EXPECT(searches >= r.steps);
    EXPECT_EQ(r.armijo_only_steps, 0);
    // Independently, from the objective's own log of what it was asked and answered.
    EXPECT_EQ(check_wolfe_from_log(obj, iterates, o.lbfgs.c1, o.lbfgs.c2), r.steps);
    EXPECT(r.steps > 10);
  }
}

NNSCOPE_TEST(lbfgs_fixed_step_mode) {
  // Without a line search: unit quasi-Newton steps still converge on a convex quadratic.
  Quadratic obj(20, 100.0, 3);
  std::vector<float> th(20, 0.0f);
  TrainOptions o = lbfgs_options(300);
  o.lbfgs.line_search = LineSearch::None;
  o.tolerance_grad = 1e-4;
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT_EQ(r.stop_reason, StopReason::ConvergedGrad);
  EXPECT(max_abs_diff(th, obj.xstar) < 1e-3);
  // One evaluation per step (no NaN to shrink away from) plus the initial one.
  EXPECT_EQ(r.function_evals, int64_t(r.steps) + 1);
}

NNSCOPE_TEST(lbfgs_skips_pairs_that_fail_the_curvature_test) {
  // Fixed steps in the concave region of a double well give sᵀy < 0.
  DoubleWell obj(1);
  std::vector<float> th = {0.2f};
  TrainOptions o = lbfgs_options(3);
  o.lbfgs.line_search = LineSearch::None;
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.skipped_updates >= 1);
  // With a line search the well's minimum at 1 is found.
  std::vector<float> th2 = {0.2f};
  TrainOptions o2 = lbfgs_options(100);
  const TrainResult r2 = train(obj, th2.data(), o2);
  check_result(r2, o2);
  EXPECT_NEAR(th2[0], 1.0, 1e-5);
}

NNSCOPE_TEST(lbfgs_logistic_regression) {
  LogisticData data(300, 5, 11);
  Logistic obj(data, 1e-2);
  const auto ref = obj.newton_minimiser();
  std::vector<double> gref(ref.size());
  const double fref = obj.f64(ref.data(), gref.data());
  std::vector<float> th(obj.dim(), 0.0f);
  TrainOptions o = lbfgs_options(200);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.final_loss - fref < 1e-9);
  EXPECT(max_abs_diff(th, ref) < 1e-4);
}

// ------------------------------------------------------------------ Adam

NNSCOPE_TEST(adam_first_steps_match_the_formula) {
  // Two steps by hand: m̂₁ = g₁, v̂₁ = g₁² (bias correction), then the second step.
  Quadratic obj(3, 10.0, 5);
  std::vector<float> th = {0.5f, -0.25f, 0.75f};
  TrainOptions o = adam_options(0.01, 2);
  o.adam.weight_decay = 0.1;
  const double b1 = o.adam.beta1, b2 = o.adam.beta2, lr = o.adam.lr, eps = o.adam.eps, wd = 0.1;
  std::vector<double> x(th.begin(), th.end()), m(3, 0.0), v(3, 0.0), g(3);
  for (int t = 1; t <= 2; ++t) {
    std::vector<double> xf(3);
    for (int i = 0; i < 3; ++i) xf[i] = static_cast<float>(x[i]);
    obj.f64(xf.data(), g.data());
    for (int i = 0; i < 3; ++i) {
      const double gi = static_cast<float>(g[i]);
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      const double mh = m[i] / (1 - std::pow(b1, t)), vh = v[i] / (1 - std::pow(b2, t));
      x[i] = x[i] * (1 - lr * wd) - lr * mh / (std::sqrt(vh) + eps);
    }
  }
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT_EQ(r.steps, 2);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(th[i], x[i], 1e-7);
}

NNSCOPE_TEST(adam_decoupled_weight_decay_on_a_flat_objective) {
  // Zero gradient: Adam's update vanishes and decoupled decay alone scales θ by (1 − lr·wd) per step.
  WalledQuadratic obj({0.0, 0.0}, {0.0, 0.0}, 1e9);
  std::vector<float> th = {2.0f, -3.0f};
  TrainOptions o = adam_options(0.1, 10);
  o.adam.weight_decay = 0.5;
  o.tolerance_grad = -1;  // the gradient is zero: keep going
  o.tolerance_change = -1;
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT_EQ(r.stop_reason, StopReason::MaxSteps);
  EXPECT_NEAR(th[0], 2.0 * std::pow(0.95, 10), 1e-6);
  EXPECT_NEAR(th[1], -3.0 * std::pow(0.95, 10), 1e-6);
}

NNSCOPE_TEST(adam_quadratic_to_the_minimiser) {
  Quadratic obj(10, 10.0, 9);
  std::vector<float> th(10, 0.0f);
  TrainOptions o = adam_options(0.01, 3000);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(r.stop_reason != StopReason::MaxSteps && r.stop_reason != StopReason::NonFinite);
  EXPECT(max_abs_diff(th, obj.xstar) < 1e-5);
  EXPECT(r.final_loss - obj.fstar < 1e-10);
  // The loss went down overall.
  EXPECT(r.loss_history.back() < 1e-3 * (r.loss_history.front() - obj.fstar) + obj.fstar);
}

NNSCOPE_TEST(adam_logistic_regression) {
  LogisticData data(300, 5, 11);
  Logistic obj(data, 1e-2);
  const auto ref = obj.newton_minimiser();
  const double fref = obj.f64(ref.data(), nullptr);
  std::vector<float> th(obj.dim(), 0.0f);
  TrainOptions o = adam_options(0.05, 2000);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT_EQ(r.stop_reason, StopReason::ConvergedGrad);
  EXPECT(r.final_loss - fref < 1e-10);
  EXPECT(max_abs_diff(th, ref) < 1e-5);
}

// ------------------------------------------------------------------ mini-batches, determinism

NNSCOPE_TEST(minibatch_sampler_epochs_are_permutations) {
  MinibatchSampler a(10, 3, 42), b(10, 3, 42), c(10, 3, 43);
  EXPECT_EQ(a.steps_per_epoch(), std::size_t(4));
  bool differs = false;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::multiset<std::size_t> seen;
    for (int s = 0; s < 4; ++s) {
      const int step = epoch * 4 + s;
      const auto ba = a.batch(step);
      EXPECT_EQ(ba.size(), std::size_t(s == 3 ? 1 : 3));
      EXPECT(ba == b.batch(step));
      differs = differs || ba != c.batch(step);
      seen.insert(ba.begin(), ba.end());
    }
    EXPECT_EQ(seen.size(), std::size_t(10));
    EXPECT_EQ(std::set<std::size_t>(seen.begin(), seen.end()).size(), std::size_t(10));
  }
  EXPECT(differs);
  // Random access gives the same batch as sequential access.
  MinibatchSampler d(10, 3, 42);
  EXPECT(d.batch(9) == a.batch(9));
  EXPECT_THROWS_CODE(MinibatchSampler(10, 11, 0), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(MinibatchSampler(0, 1, 0), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(same_seed_same_history_minibatch) {
  LogisticData data(200, 4, 5);
  Logistic full(data, 1e-2);
  const auto ref = full.newton_minimiser();
  const double fref = full.f64(ref.data(), nullptr);
  const std::vector<float> zero(full.dim(), 0.0f);
  const double f0 = full.value(zero.data());
  auto run = [&](Optimizer kind, uint64_t seed, std::vector<float>& th) {
    Logistic batch(data, 1e-2);
    TrainOptions o;
    o.kind = kind;
    o.max_steps = kind == Optimizer::Adam ? 600 : 60;
    o.adam.lr = 0.02;
    o.lbfgs.lr = 0.3;  // a full step jumps to each batch's own minimiser
    o.seed = seed;
    auto sampler = std::make_shared<MinibatchSampler>(data.n, 50, o.seed);
    o.batch = [&batch, sampler](int step) -> Objective& {
      batch.subset = sampler->batch(step);
      return batch;
    };
    th.assign(full.dim(), 0.0f);
    TrainResult r = train(full, th.data(), o);
    check_result(r, o);
    EXPECT_EQ(r.stop_reason, StopReason::MaxSteps);
    EXPECT_NEAR(r.final_loss, full.value(th.data()), 1e-12);  // final_loss is on the full objective
    return r;
  };
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    std::vector<float> t1, t2, t3;
    const TrainResult r1 = run(kind, 1, t1), r2 = run(kind, 1, t2), r3 = run(kind, 2, t3);
    EXPECT(r1.loss_history == r2.loss_history);  // bit for bit
    EXPECT(t1 == t2);
    EXPECT(r1.loss_history != r3.loss_history);
    // Mini-batch training still gets close to the full-batch optimum.
    EXPECT(r1.final_loss - fref < 0.05 * (f0 - fref));
  }
}

NNSCOPE_TEST(same_inputs_same_history_full_batch) {
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    Rosenbrock obj(10);
    std::vector<float> a(10, -0.5f), b(10, -0.5f);
    TrainOptions o;
    o.kind = kind;
    o.max_steps = 80;
    const TrainResult ra = train(obj, a.data(), o), rb = train(obj, b.data(), o);
    EXPECT(ra.loss_history == rb.loss_history);
    EXPECT(a == b);
    EXPECT_EQ(ra.function_evals, rb.function_evals);
  }
}

NNSCOPE_TEST(batch_objective_of_another_dim_is_a_shape_error) {
  Rosenbrock full(3), other(4);
  std::vector<float> th(3, 0.0f);
  TrainOptions o = lbfgs_options(5);
  o.batch = [&](int) -> Objective& { return other; };
  EXPECT_THROWS_CODE(train(full, th.data(), o), ErrorCode::Shape);
}

// ------------------------------------------------------------------ progress, cancellation, limits

NNSCOPE_TEST(cancel_from_on_step_at_step_5) {
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    Rosenbrock obj(2);
    std::vector<float> th = {-1.2f, 1.0f}, seen;
    OpContext ctx;
    ctx.cancel = std::make_shared<CancelToken>();
    std::vector<double> reported;
    ctx.progress = [&](double done, double total) {
      reported.push_back(done);
      EXPECT_EQ(total, 100.0);
    };
    TrainOptions o;
    o.kind = kind;
    o.max_steps = 100;
    int calls = 0;
    float* tp = th.data();
    EXPECT_THROWS_CODE(train(obj, tp, o, ctx,
                             [&](int step, double loss) {
                               ++calls;
                               EXPECT_EQ(step, calls);
                               EXPECT(std::isfinite(loss));
                               if (step == 5) {
                                 seen.assign(tp, tp + 2);
                                 ctx.cancel->cancel();
                               }
                             }),
                       ErrorCode::Cancelled);
    EXPECT_EQ(calls, 5);
    EXPECT(reported == std::vector<double>({1, 2, 3, 4, 5}));
    EXPECT(finite_all(th));
    EXPECT(th == seen);  // θ holds the iterate of the last completed step
    EXPECT(std::isfinite(obj.value(th.data())));
  }
}

NNSCOPE_TEST(cancel_inside_the_line_search) {
  // The token is cancelled by the objective itself, in the middle of a search:
  // train throws at the next check and θ is the last accepted iterate.
  Rosenbrock obj(2);
  std::vector<float> th = {-1.2f, 1.0f}, last = th;
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  obj.on_eval = [&](int64_t n) {
    if (n == 30) ctx.cancel->cancel();
  };
  TrainOptions o = lbfgs_options(100);
  float* tp = th.data();
  EXPECT_THROWS_CODE(train(obj, tp, o, ctx, [&](int, double) { last.assign(tp, tp + 2); }), ErrorCode::Cancelled);
  EXPECT_EQ(obj.evals, 31);  // the evaluation that cancelled ran; no further one did
  EXPECT(th == last);
  // A token cancelled before the call: nothing is evaluated.
  Rosenbrock obj2(2);
  EXPECT_THROWS_CODE(train(obj2, th.data(), o, ctx), ErrorCode::Cancelled);
  EXPECT_EQ(obj2.evals, 0);
}

NNSCOPE_TEST(max_steps_respected) {
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    for (int max_steps : {0, 1, 7}) {
      Rosenbrock obj(2);
      std::vector<float> th = {-1.2f, 1.0f};
      TrainOptions o;
      o.kind = kind;
      o.max_steps = max_steps;
      int calls = 0;
      const TrainResult r = train(obj, th.data(), o, {}, [&](int, double) { ++calls; });
      check_result(r, o);
      EXPECT_EQ(r.stop_reason, StopReason::MaxSteps);
      EXPECT_EQ(r.steps, max_steps);
      EXPECT_EQ(calls, max_steps);
      EXPECT_NEAR(r.final_loss, obj.value(th.data()), 1e-12);
      if (max_steps == 0) EXPECT(th == std::vector<float>({-1.2f, 1.0f}));
    }
  }
}

NNSCOPE_TEST(converged_grad_at_the_start_takes_no_step) {
  Rosenbrock obj(2);
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    std::vector<float> th = {1.0f, 1.0f};
    TrainOptions o;
    o.kind = kind;
    const TrainResult r = train(obj, th.data(), o);
    check_result(r, o);
    EXPECT_EQ(r.stop_reason, StopReason::ConvergedGrad);
    EXPECT_EQ(r.steps, 0);
    EXPECT_EQ(r.final_loss, 0.0);
    EXPECT_EQ(r.final_grad_norm, 0.0);
  }
}

// ------------------------------------------------------------------ non-finite objectives

NNSCOPE_TEST(lbfgs_shrinks_steps_away_from_nan) {
  // Minimum at c inside the wall ‖x‖ ≤ 3; lr = 50 sends the first trials far beyond it.
  for (bool use_inf : {false, true}) {
    for (LineSearch mode : {LineSearch::StrongWolfe, LineSearch::None}) {
      WalledQuadratic obj({1.0, 4.0, 9.0}, {1.0, -1.0, 0.5}, 3.0, use_inf);
      std::vector<float> th = {-1.0f, 1.0f, -1.0f};
      TrainOptions o = lbfgs_options(200);
      o.lbfgs.lr = 50.0;
      o.lbfgs.line_search = mode;
      o.tolerance_grad = 1e-5;
      const TrainResult r = train(obj, th.data(), o);
      check_result(r, o);
      EXPECT(obj.nonfinite_evals > 0);
      if (mode == LineSearch::StrongWolfe) {
        EXPECT(r.stop_reason == StopReason::ConvergedGrad || r.stop_reason == StopReason::ConvergedChange);
        EXPECT(max_abs_diff(th, obj.c) < 1e-4);
      } else {
        // Fixed steps of 50× overshoot: what matters is that only finite iterates are kept.
        EXPECT(r.stop_reason != StopReason::LineSearchFailed);
      }
      EXPECT(finite_all(th));
      EXPECT(std::isfinite(obj.value(th.data())));
      for (double f : r.loss_history) EXPECT(std::isfinite(f));
    }
  }
}

NNSCOPE_TEST(lbfgs_minimum_beyond_the_wall) {
  // The unconstrained minimum (5, 5) lies where the loss is NaN: L-BFGS ends on the
  // finite side, close to the wall, without a NaN iterate.
  WalledQuadratic obj({1.0, 1.0}, {5.0, 5.0}, 2.0);
  std::vector<float> th = {0.0f, 0.0f};
  TrainOptions o = lbfgs_options(100);
  const TrainResult r = train(obj, th.data(), o);
  check_result(r, o);
  EXPECT(finite_all(th));
  const double rad = std::hypot(double(th[0]), double(th[1]));
  EXPECT(rad <= 2.0);
  EXPECT(rad > 1.9);
  EXPECT(std::isfinite(r.final_loss));
}

NNSCOPE_TEST(lbfgs_nan_everywhere_but_the_start_stops_non_finite) {
  for (LineSearch mode : {LineSearch::StrongWolfe, LineSearch::None}) {
    const std::vector<float> start = {0.5f, -0.25f};
    NanExceptAt obj(start);
    std::vector<float> th = start;
    TrainOptions o = lbfgs_options(50);
    o.lbfgs.line_search = mode;
    const TrainResult r = train(obj, th.data(), o);
    check_result(r, o);
    EXPECT_EQ(r.stop_reason, StopReason::NonFinite);
    EXPECT_EQ(r.steps, 0);
    EXPECT(th == start);
    EXPECT(r.function_evals <= 1 + o.lbfgs.max_evals);  // the initial point + one shrinking search
    EXPECT(std::isfinite(r.final_loss));
  }
}

NNSCOPE_TEST(non_finite_initial_loss) {
  WalledQuadratic obj({1.0, 1.0}, {0.0, 0.0}, 1.0);
  for (Optimizer kind : {Optimizer::Adam, Optimizer::Lbfgs}) {
    std::vector<float> th = {2.0f, 0.0f};
    TrainOptions o;
    o.kind = kind;
    const TrainResult r = train(obj, th.data(), o);
    check_result(r, o);
    EXPECT_EQ(r.stop_reason, StopReason::NonFinite);
    EXPECT_EQ(r.steps, 0);
    EXPECT(th == std::vector<float>({2.0f, 0.0f}));
  }
}

NNSCOPE_TEST(adam_diverging_into_nan_keeps_the_last_finite_iterate) {
  // Minimum beyond the wall and a large lr: Adam walks into the NaN region and stops.
  WalledQuadratic obj({1.0, 1.0}, {10.0, 10.0}, 2.0);
  std::vector<float> th = {0.0f, 0.0f};
  TrainOptions o = adam_options(0.3, 1000);
  std::vector<float> last;
  float* tp = th.data();
  const TrainResult r = train(obj, tp, o, {}, [&](int, double) { last.assign(tp, tp + 2); });
  check_result(r, o);
  EXPECT_EQ(r.stop_reason, StopReason::NonFinite);
  EXPECT(r.steps > 0 && r.steps < 100);
  EXPECT(finite_all(th));
  EXPECT(std::isfinite(obj.value(th.data())));
  EXPECT(std::hypot(double(th[0]), double(th[1])) <= 2.0);
  EXPECT(th != last);  // the last step's iterate was NaN: θ went back one step
  EXPECT_NEAR(r.final_loss, obj.value(th.data()), 1e-12);
  EXPECT_NEAR(r.final_loss, r.loss_history.back(), 1e-12);
}

// ------------------------------------------------------------------ validation

NNSCOPE_TEST(invalid_options_are_rejected) {
  Rosenbrock obj(2);
  std::vector<float> th = {0.0f, 0.0f};
  auto bad = [&](auto mutate) {
    TrainOptions o;
    mutate(o);
    EXPECT_THROWS_CODE(train(obj, th.data(), o), ErrorCode::InvalidArgument);
  };
  bad([](TrainOptions& o) { o.max_steps = -1; });
  bad([](TrainOptions& o) { o.tolerance_grad = kNaN; });
  bad([](TrainOptions& o) { o.adam.lr = 0; });
  bad([](TrainOptions& o) { o.adam.beta1 = 1.0; });
  bad([](TrainOptions& o) { o.adam.beta2 = -0.1; });
  bad([](TrainOptions& o) { o.adam.eps = 0; });
  bad([](TrainOptions& o) { o.adam.weight_decay = -1; });
  bad([](TrainOptions& o) { o.kind = Optimizer::Lbfgs; o.lbfgs.history = 0; });
  bad([](TrainOptions& o) { o.kind = Optimizer::Lbfgs; o.lbfgs.c1 = 0.95; });
  bad([](TrainOptions& o) { o.kind = Optimizer::Lbfgs; o.lbfgs.c2 = 1.0; });
  bad([](TrainOptions& o) { o.kind = Optimizer::Lbfgs; o.lbfgs.max_evals = 0; });
  bad([](TrainOptions& o) { o.kind = Optimizer::Lbfgs; o.lbfgs.lr = -1; });
  EXPECT_THROWS_CODE(train(obj, nullptr, TrainOptions{}), ErrorCode::InvalidArgument);
  std::vector<float> nan_theta = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROWS_CODE(train(obj, nan_theta.data(), TrainOptions{}), ErrorCode::NonFinite);
  EXPECT_EQ(std::string(stop_reason_name(StopReason::LineSearchFailed)), std::string("line_search_failed"));
  EXPECT_EQ(std::string(optimizer_name(Optimizer::Lbfgs)), std::string("lbfgs"));
}
