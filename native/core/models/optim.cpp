// nnscope core: Adam and L-BFGS over an Objective (see optim.h for the contract).
#include "models/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "base/error.h"
#include "base/finite.h"
#include "base/rng.h"

namespace nnscope::models {

const char* stop_reason_name(StopReason reason) noexcept {
  switch (reason) {
    case StopReason::ConvergedGrad: return "converged_grad";
    case StopReason::ConvergedChange: return "converged_change";
    case StopReason::MaxSteps: return "max_steps";
    case StopReason::LineSearchFailed: return "line_search_failed";
    case StopReason::NonFinite: return "non_finite";
  }
  return "unknown";
}

const char* optimizer_name(Optimizer kind) noexcept {
  switch (kind) {
    case Optimizer::Adam: return "adam";
    case Optimizer::Lbfgs: return "lbfgs";
  }
  return "unknown";
}

namespace {

[[noreturn]] void bad_option(const std::string& what) { fail(ErrorCode::InvalidArgument, "train: " + what); }

std::string fmt(const char* f, double a, double b = 0.0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

double inf_norm(const float* x, std::size_t n) {
  double m = 0.0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(x[i])));
  return m;
}

double dot_fd(const float* a, const double* b, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double dot_dd(const double* a, const double* b, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

bool all_finite(const float* x, std::size_t n) { return first_nonfinite(x, n) == n; }

// Calls into the objective, counting evaluations and checking cancellation first.
// The objective gets the cancel token but not the progress sink (that is training's).
struct Evaluator {
  const OpContext& ctx;
  OpContext inner;
  TrainResult& result;
  std::size_t dim;

  Evaluator(const OpContext& c, TrainResult& r, std::size_t p) : ctx(c), result(r), dim(p) {
    inner.cancel = c.cancel;
  }

  // L and ∇L at x; returns false (and leaves f as computed) when either is not finite.
  bool loss_grad(Objective& obj, const float* x, float* g, double& f) {
    ctx.check();
    ++result.function_evals;
    ++result.gradient_evals;
    f = obj.loss_grad(x, g, inner);
    return std::isfinite(f) && all_finite(g, dim);
  }
};

Objective& batch_objective(const TrainOptions& o, int step, std::size_t dim) {
  Objective& b = o.batch(step);
  if (b.dim() != dim)
    fail(ErrorCode::Shape, "train: the batch objective of step " + std::to_string(step) + " has " +
                               std::to_string(b.dim()) + " parameters, expected " + std::to_string(dim));
  return b;
}

void set_stop(TrainResult& r, StopReason reason, std::string message) {
  r.stop_reason = reason;
  r.message = std::string(stop_reason_name(reason)) + ": " + message;
}

// ------------------------------------------------------------------ Adam
//
// Moments m, v and a master copy of θ in float64; the objective sees float32(θ).
// θ ← θ − lr·wd·θ (decoupled decay), then θ ← θ − lr·m̂/(√v̂ + ε) with
// m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ).
void run_adam(Objective& full, float* theta, const TrainOptions& o, Evaluator& ev, TrainResult& r,
              const StepCallback& on_step) {
  const std::size_t P = full.dim();
  const AdamOptions& a = o.adam;
  const bool batched = static_cast<bool>(o.batch);
  std::vector<double> master(theta, theta + P), m(P, 0.0), v(P, 0.0);
  std::vector<float> g(P), prev(P);
  double f_prev = 0.0, ginf_prev = 0.0, step_inf = 0.0;  // f, ‖g‖∞ of the previous iterate
  double b1t = 1.0, b2t = 1.0;

  for (int k = 0;; ++k) {
    Objective& obj = (batched && k < o.max_steps) ? batch_objective(o, k, P) : full;
    double f = 0.0;
    if (!ev.loss_grad(obj, theta, g.data(), f)) {
      if (k > 0) {  // back to the last iterate whose loss was finite
        std::copy(prev.begin(), prev.end(), theta);
        r.final_loss = f_prev;
        r.final_grad_norm = ginf_prev;
        if (batched) {  // those were batch values: measure on the full objective
          double ff = 0.0;
          ev.loss_grad(full, theta, g.data(), ff);
          r.final_loss = ff;
          r.final_grad_norm = inf_norm(g.data(), P);
        }
      } else {
        r.final_loss = f;
        r.final_grad_norm = inf_norm(g.data(), P);
      }
      set_stop(r, StopReason::NonFinite,
               "the loss or gradient is not finite at the iterate of step " + std::to_string(k) +
                   (k > 0 ? "; theta is the previous iterate" : ""));
      return;
    }
    const double ginf = inf_norm(g.data(), P);
    if (!batched || k == o.max_steps) {
      r.final_loss = f;
      r.final_grad_norm = ginf;
    }
    if (!batched) {
      if (ginf <= o.tolerance_grad) {
        set_stop(r, StopReason::ConvergedGrad, fmt("|grad|_inf = %.3g <= tolerance_grad = %.3g", ginf, o.tolerance_grad));
        return;
      }
      // Only the step test: Adam's loss is not monotone, and |Δloss| passes near 0
      // whenever the iterates oscillate across a valley, far from convergence.
      if (k > 0 && step_inf <= o.tolerance_change) {
        set_stop(r, StopReason::ConvergedChange,
                 fmt("|step|_inf = %.3g <= tolerance_change = %.3g", step_inf, o.tolerance_change));
        return;
      }
    }
    if (k >= o.max_steps) {
      set_stop(r, StopReason::MaxSteps, "took max_steps = " + std::to_string(o.max_steps) + " steps");
      return;
    }

    // The update.
    b1t *= a.beta1;
    b2t *= a.beta2;
    const double bc1 = 1.0 - b1t, bc2 = 1.0 - b2t;
    const double decay = 1.0 - a.lr * a.weight_decay;
    std::copy(theta, theta + P, prev.begin());
    step_inf = 0.0;
    bool finite = true;
    for (std::size_t i = 0; i < P; ++i) {
      const double gi = g[i];
      m[i] = a.beta1 * m[i] + (1.0 - a.beta1) * gi;
      v[i] = a.beta2 * v[i] + (1.0 - a.beta2) * gi * gi;
      const double mhat = m[i] / bc1, vhat = v[i] / bc2;
      const double x = master[i] * decay - a.lr * mhat / (std::sqrt(vhat) + a.eps);
      const float xf = static_cast<float>(x);
      finite = finite && std::isfinite(xf);
      step_inf = std::max(step_inf, std::fabs(static_cast<double>(xf) - static_cast<double>(theta[i])));
      master[i] = x;
      theta[i] = xf;
    }
    if (!finite) {  // θ overflowed float32: keep the last good iterate
      std::copy(prev.begin(), prev.end(), theta);
      set_stop(r, StopReason::NonFinite, "the update of step " + std::to_string(k + 1) + " overflows float32");
      if (batched) {
        double ff = 0.0;
        ev.loss_grad(full, theta, g.data(), ff);
        r.final_loss = ff;
        r.final_grad_norm = inf_norm(g.data(), P);
      } else {
        r.final_loss = f;
        r.final_grad_norm = ginf;
      }
      return;
    }
    f_prev = f;
    ginf_prev = ginf;
    r.loss_history.push_back(f);
    r.steps = k + 1;
    if (on_step) on_step(r.steps, f);
    ev.ctx.report(r.steps, o.max_steps);
  }
}

// ------------------------------------------------------------------ L-BFGS

// The limited-memory inverse-Hessian approximation: a ring of (s, y, ρ = 1/sᵀy)
// in float64, applied by the two-loop recursion with H₀ = γI, γ = sᵀy/yᵀy of the
// newest pair.
class LbfgsHistory {
 public:
  LbfgsHistory(std::size_t dim, int m) : P_(dim), m_(static_cast<std::size_t>(m)), s_(m_), y_(m_), rho_(m_), alpha_(m_) {}

  bool empty() const { return count_ == 0; }
  void clear() { count_ = 0; }

  // Offers the pair held in s, y (swapped in, so the callers' vectors come back as
  // scratch). Returns false when the curvature test rejects it.
  bool push(std::vector<double>& s, std::vector<double>& y, double eps) {
    const double sy = dot_dd(s.data(), y.data(), P_);
    const double yy = dot_dd(y.data(), y.data(), P_);
    const double ss = dot_dd(s.data(), s.data(), P_);
    if (!(sy > eps * std::sqrt(ss) * std::sqrt(yy)) || !(yy > 0.0) || !std::isfinite(sy) || !std::isfinite(yy))
      return false;
    const std::size_t slot = (head_ + count_) % m_;  // next free slot, or the oldest when full
    if (count_ == m_) head_ = (head_ + 1) % m_;
    else ++count_;
    std::swap(s_[slot], s);
    std::swap(y_[slot], y);
    s.resize(P_);
    y.resize(P_);
    rho_[slot] = 1.0 / sy;
    gamma_ = sy / yy;
    return true;
  }

  // d = −H·g.
  void direction(const float* g, std::vector<double>& d) {
    for (std::size_t i = 0; i < P_; ++i) d[i] = -static_cast<double>(g[i]);
    for (std::size_t j = count_; j-- > 0;) {  // newest to oldest
      const std::size_t slot = (head_ + j) % m_;
      const double a = rho_[slot] * dot_dd(s_[slot].data(), d.data(), P_);
      alpha_[slot] = a;
      const double* y = y_[slot].data();
      for (std::size_t i = 0; i < P_; ++i) d[i] -= a * y[i];
    }
    for (std::size_t i = 0; i < P_; ++i) d[i] *= gamma_;
    for (std::size_t j = 0; j < count_; ++j) {  // oldest to newest
      const std::size_t slot = (head_ + j) % m_;
      const double b = rho_[slot] * dot_dd(y_[slot].data(), d.data(), P_);
      const double c = alpha_[slot] - b;
      const double* s = s_[slot].data();
      for (std::size_t i = 0; i < P_; ++i) d[i] += c * s[i];
    }
  }

 private:
  std::size_t P_, m_;
  std::vector<std::vector<double>> s_, y_;
  std::vector<double> rho_, alpha_;
  std::size_t head_ = 0, count_ = 0;
  double gamma_ = 1.0;
};

// Minimiser of the cubic interpolating (a, fa, ga) and (b, fb, gb) (Nocedal &
// Wright eq. 3.59); NaN when the cubic has no local minimiser.
double cubic_min(double a, double fa, double ga, double b, double fb, double gb) {
  const double d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
  const double disc = d1 * d1 - ga * gb;
  if (!(disc >= 0.0)) return std::nan("");
  const double d2 = std::copysign(std::sqrt(disc), b - a);
  const double den = gb - ga + 2.0 * d2;
  if (den == 0.0) return std::nan("");
  return b - (b - a) * (gb + d2 - d1) / den;
}

struct Trial {
  double alpha = 0, phi = 0, dphi = 0;
  bool finite = true;
};

struct SearchOutcome {
  bool accepted = false;      // best holds a point with phi < phi0 and sufficient decrease
  bool strong_wolfe = false;
  bool all_nonfinite = false; // every trial was NaN/Inf
  Trial best;
  int evals = 0;
};

// Line searches along d from x0 (float32) with φ(α) = L(float32(x0 + α d)).
// The accepted point's parameters and gradient are left in xb, gb.
class LineSearcher {
 public:
  LineSearcher(Evaluator& ev, const LbfgsOptions& o, std::size_t dim)
      : ev_(ev), o_(o), P_(dim), xt_(dim), gt_(dim), xb_(dim), gb_(dim) {}

  std::vector<float>& xb() { return xb_; }
  std::vector<float>& gb() { return gb_; }

  SearchOutcome run(Objective& obj, const float* x0, const std::vector<double>& d, double phi0, double dphi0,
                    double alpha0) {
    obj_ = &obj;
    x0_ = x0;
    d_ = &d;
    phi0_ = phi0;
    dphi0_ = dphi0;
    out_ = SearchOutcome{};
    any_finite_ = false;
    if (o_.line_search == LineSearch::None) fixed_step(alpha0);
    else strong_wolfe(alpha0);
    out_.all_nonfinite = !any_finite_;
    return out_;
  }

 private:
  bool armijo(const Trial& t) const { return t.phi <= phi0_ + o_.c1 * t.alpha * dphi0_; }
  bool curvature(const Trial& t) const { return std::fabs(t.dphi) <= -o_.c2 * dphi0_; }

  // Evaluates φ and φ' at α into xt_, gt_.
  Trial eval(double alpha) {
    Trial t;
    t.alpha = alpha;
    bool finite_x = true;
    const double* d = d_->data();
    for (std::size_t i = 0; i < P_; ++i) {
      const float v = static_cast<float>(static_cast<double>(x0_[i]) + alpha * d[i]);
      finite_x = finite_x && std::isfinite(v);
      xt_[i] = v;
    }
    ++out_.evals;
    if (!finite_x) {  // the point itself overflows float32: as good as a NaN loss
      ev_.ctx.check();
      t.finite = false;
      t.phi = std::nan("");
      return t;
    }
    double f = 0.0;
    t.finite = ev_.loss_grad(*obj_, xt_.data(), gt_.data(), f);
    t.phi = f;
    if (t.finite) {
      t.dphi = dot_fd(gt_.data(), d, P_);
      t.finite = std::isfinite(t.dphi);
    }
    any_finite_ = any_finite_ || t.finite;
    return t;
  }

  // The trial just evaluated becomes the best point (its buffers move to xb_, gb_).
  void keep(const Trial& t) {
    std::swap(xt_, xb_);
    std::swap(gt_, gb_);
    out_.best = t;
    out_.accepted = true;
  }

  bool budget() const { return out_.evals < o_.max_evals; }

  // No line search: take α₀ (halved while the loss is not finite).
  void fixed_step(double alpha) {
    while (budget()) {
      const Trial t = eval(alpha);
      if (t.finite) {
        keep(t);
        out_.strong_wolfe = armijo(t) && curvature(t);
        return;
      }
      alpha *= 0.5;
    }
  }

  // Nocedal & Wright Alg. 3.5: bracket a strong-Wolfe point, then zoom.
  void strong_wolfe(double alpha) {
    Trial prev{0.0, phi0_, dphi0_, true};
    bool first = true;
    while (budget()) {
      const Trial cur = eval(alpha);
      if (!cur.finite || !armijo(cur) || (!first && cur.phi >= prev.phi)) return zoom(prev, cur);
      // cur has sufficient decrease and is the lowest point so far.
      keep(cur);
      if (curvature(cur)) {
        out_.strong_wolfe = true;
        return;
      }
      if (cur.dphi >= 0.0) return zoom(cur, prev);
      // Still descending steeply: extrapolate into [α + 1.1Δ, α + 4Δ] (the
      // MINPACK-2 dcsrch bounds), Δ = α − α_prev, by cubic interpolation.
      const double delta = cur.alpha - prev.alpha;
      const double lo = cur.alpha + 1.1 * delta, hi = cur.alpha + 4.0 * delta;
      double next = cubic_min(prev.alpha, prev.phi, prev.dphi, cur.alpha, cur.phi, cur.dphi);
      if (!std::isfinite(next)) next = hi;
      alpha = std::min(std::max(next, lo), hi);
      prev = cur;
      first = false;
    }
  }

  // True when α and β give the same float32 point: the bracket cannot shrink further.
  bool same_point(double a, double b) const {
    const double* d = d_->data();
    for (std::size_t i = 0; i < P_; ++i) {
      const double x = x0_[i];
      if (static_cast<float>(x + a * d[i]) != static_cast<float>(x + b * d[i])) return false;
    }
    return true;
  }

  // Nocedal & Wright Alg. 3.6. lo: the best point with sufficient decrease so far
  // (α = 0 possible); hi: the other end (possibly not finite). The interval holds
  // strong-Wolfe points when hi is finite.
  void zoom(Trial lo, Trial hi) {
    while (budget()) {
      if (same_point(lo.alpha, hi.alpha)) return;
      const double a = std::min(lo.alpha, hi.alpha), b = std::max(lo.alpha, hi.alpha), w = b - a;
      double alpha;
      if (hi.finite) {
        // Safeguarded cubic: kept 10% of the width inside the interval.
        alpha = cubic_min(lo.alpha, lo.phi, lo.dphi, hi.alpha, hi.phi, hi.dphi);
        if (!std::isfinite(alpha)) alpha = 0.5 * (a + b);
        alpha = std::min(std::max(alpha, a + 0.1 * w), b - 0.1 * w);
      } else {
        alpha = lo.alpha + 0.5 * (hi.alpha - lo.alpha);  // NaN/Inf at hi: bisect toward lo
      }
      const Trial cur = eval(alpha);
      if (!cur.finite || !armijo(cur) || cur.phi >= lo.phi) {
        hi = cur;
        continue;
      }
      keep(cur);
      if (curvature(cur)) {
        out_.strong_wolfe = true;
        return;
      }
      if (cur.dphi * (hi.alpha - lo.alpha) >= 0.0) hi = lo;
      lo = cur;
    }
  }

  Objective* obj_ = nullptr;
  Evaluator& ev_;
  const LbfgsOptions& o_;
  std::size_t P_;
  std::vector<float> xt_, gt_, xb_, gb_;
  const float* x0_ = nullptr;
  const std::vector<double>* d_ = nullptr;
  double phi0_ = 0, dphi0_ = 0;
  SearchOutcome out_;
  bool any_finite_ = false;
};

void run_lbfgs(Objective& full, float* theta, const TrainOptions& o, Evaluator& ev, TrainResult& r,
               const StepCallback& on_step) {
  const std::size_t P = full.dim();
  const LbfgsOptions& lo = o.lbfgs;
  const bool batched = static_cast<bool>(o.batch);
  LbfgsHistory hist(P, lo.history);
  std::vector<float> g(P);
  std::vector<double> d(P), s(P), y(P);
  LineSearcher ls(ev, lo, P);
  double f = 0.0;

  auto measure_full = [&]() {
    double ff = 0.0;
    ev.loss_grad(full, theta, g.data(), ff);
    r.final_loss = ff;
    r.final_grad_norm = inf_norm(g.data(), P);
  };

  if (!batched) {
    const bool ok = ev.loss_grad(full, theta, g.data(), f);
    r.final_loss = f;
    r.final_grad_norm = inf_norm(g.data(), P);
    if (!ok) {
      set_stop(r, StopReason::NonFinite, "the loss or gradient is not finite at the initial parameters");
      return;
    }
    if (r.final_grad_norm <= o.tolerance_grad) {
      set_stop(r, StopReason::ConvergedGrad,
               fmt("|grad|_inf = %.3g <= tolerance_grad = %.3g", r.final_grad_norm, o.tolerance_grad));
      return;
    }
  }

  for (int k = 0; k < o.max_steps; ++k) {
    ev.ctx.check();
    Objective& obj = batched ? batch_objective(o, k, P) : full;
    if (batched && !ev.loss_grad(obj, theta, g.data(), f)) {
      set_stop(r, StopReason::NonFinite, "the loss or gradient of batch " + std::to_string(k) + " is not finite");
      if (k > 0) measure_full();
      else {
        r.final_loss = f;
        r.final_grad_norm = inf_norm(g.data(), P);
      }
      return;
    }
    double gnorm1 = 0.0, gnorm2sq = 0.0;
    for (std::size_t i = 0; i < P; ++i) {
      const double gi = g[i];
      gnorm1 += std::fabs(gi);
      gnorm2sq += gi * gi;
    }
    if (gnorm2sq == 0.0) {  // only reachable with a negative tolerance_grad or a batch
      set_stop(r, StopReason::ConvergedGrad, "the gradient is exactly zero");
      if (batched) measure_full();
      return;
    }

    SearchOutcome out;
    bool steepest = hist.empty();
    double dphi0 = 0.0;
    for (int attempt = 0;; ++attempt) {
      if (!steepest) {
        hist.direction(g.data(), d);
        dphi0 = dot_fd(g.data(), d.data(), P);
        if (!(dphi0 < 0.0) || !std::isfinite(dphi0)) {  // not a descent direction: restart
          hist.clear();
          ++r.restarts;
          steepest = true;
        }
      }
      if (steepest) {
        for (std::size_t i = 0; i < P; ++i) d[i] = -static_cast<double>(g[i]);
        dphi0 = -gnorm2sq;
      }
      const double alpha0 = steepest ? std::min(1.0, 1.0 / gnorm1) * lo.lr : lo.lr;
      out = ls.run(obj, theta, d, f, dphi0, alpha0);
      if (lo.on_line_search) {
        LineSearchRecord rec;
        rec.step = k + 1;
        rec.steepest_descent = steepest;
        rec.accepted = out.accepted;
        rec.strong_wolfe = out.strong_wolfe;
        rec.evaluations = out.evals;
        rec.alpha_initial = alpha0;
        rec.alpha = out.accepted ? out.best.alpha : 0.0;
        rec.phi0 = f;
        rec.dphi0 = dphi0;
        rec.phi = out.accepted ? out.best.phi : f;
        rec.dphi = out.accepted ? out.best.dphi : dphi0;
        lo.on_line_search(rec);
      }
      if (out.accepted || steepest) break;
      hist.clear();  // the quasi-Newton direction failed: retry along −∇L
      ++r.restarts;
      steepest = true;
    }

    if (!out.accepted) {
      if (out.all_nonfinite)
        set_stop(r, StopReason::NonFinite,
                 "the loss stayed non-finite along -grad after " + std::to_string(out.evals) +
                     " shrinking trial steps; theta is the last finite iterate");
      else
        set_stop(r, StopReason::LineSearchFailed,
                 "no decrease along -grad within " + std::to_string(out.evals) +
                     " evaluations (loss at working precision?)");
      if (batched) measure_full();
      return;
    }
    if (!out.strong_wolfe) ++r.armijo_only_steps;

    // Accept: the secant pair from the exact float32 points, in double.
    const std::vector<float>& xb = ls.xb();
    const std::vector<float>& gb = ls.gb();
    double step_inf = 0.0;
    for (std::size_t i = 0; i < P; ++i) {
      s[i] = static_cast<double>(xb[i]) - static_cast<double>(theta[i]);
      y[i] = static_cast<double>(gb[i]) - static_cast<double>(g[i]);
      step_inf = std::max(step_inf, std::fabs(s[i]));
    }
    if (!hist.push(s, y, lo.curvature_eps)) ++r.skipped_updates;
    const double f_old = f;
    f = out.best.phi;
    std::copy(xb.begin(), xb.end(), theta);
    std::copy(gb.begin(), gb.end(), g.begin());
    r.loss_history.push_back(f_old);
    r.steps = k + 1;
    r.final_loss = f;
    r.final_grad_norm = inf_norm(g.data(), P);
    if (on_step) on_step(r.steps, f_old);
    ev.ctx.report(r.steps, o.max_steps);

    if (!batched) {
      if (r.final_grad_norm <= o.tolerance_grad) {
        set_stop(r, StopReason::ConvergedGrad,
                 fmt("|grad|_inf = %.3g <= tolerance_grad = %.3g", r.final_grad_norm, o.tolerance_grad));
        return;
      }
      if (step_inf <= o.tolerance_change) {
        set_stop(r, StopReason::ConvergedChange,
                 fmt("|step|_inf = %.3g <= tolerance_change = %.3g", step_inf, o.tolerance_change));
        return;
      }
      if (std::fabs(f - f_old) <= o.tolerance_change) {
        set_stop(r, StopReason::ConvergedChange,
                 fmt("|loss change| = %.3g <= tolerance_change = %.3g", std::fabs(f - f_old), o.tolerance_change));
        return;
      }
    }
  }
  set_stop(r, StopReason::MaxSteps, "took max_steps = " + std::to_string(o.max_steps) + " steps");
  if (batched) measure_full();
}

}  // namespace

void validate(const TrainOptions& o) {
  if (o.kind != Optimizer::Adam && o.kind != Optimizer::Lbfgs) bad_option("unknown optimizer");
  if (o.max_steps < 0) bad_option("max_steps must be >= 0");
  if (std::isnan(o.tolerance_grad)) bad_option("tolerance_grad is NaN");
  if (std::isnan(o.tolerance_change)) bad_option("tolerance_change is NaN");
  if (o.kind == Optimizer::Adam) {
    const AdamOptions& a = o.adam;
    if (!(a.lr > 0.0) || !std::isfinite(a.lr)) bad_option("adam.lr must be finite and > 0");
    if (!(a.beta1 >= 0.0 && a.beta1 < 1.0)) bad_option("adam.beta1 must be in [0, 1)");
    if (!(a.beta2 >= 0.0 && a.beta2 < 1.0)) bad_option("adam.beta2 must be in [0, 1)");
    if (!(a.eps > 0.0) || !std::isfinite(a.eps)) bad_option("adam.eps must be finite and > 0");
    if (!(a.weight_decay >= 0.0) || !std::isfinite(a.weight_decay)) bad_option("adam.weight_decay must be finite and >= 0");
  } else {
    const LbfgsOptions& l = o.lbfgs;
    if (l.history < 1) bad_option("lbfgs.history must be >= 1");
    if (!(l.lr > 0.0) || !std::isfinite(l.lr)) bad_option("lbfgs.lr must be finite and > 0");
    if (l.line_search != LineSearch::StrongWolfe && l.line_search != LineSearch::None)
      bad_option("unknown lbfgs.line_search");
    if (!(l.c1 > 0.0 && l.c1 < l.c2 && l.c2 < 1.0)) bad_option("lbfgs needs 0 < c1 < c2 < 1");
    if (l.max_evals < 1) bad_option("lbfgs.max_evals must be >= 1");
    if (!(l.curvature_eps >= 0.0) || !std::isfinite(l.curvature_eps))
      bad_option("lbfgs.curvature_eps must be finite and >= 0");
  }
}

TrainResult train(Objective& objective, float* theta, const TrainOptions& options, const OpContext& ctx,
                  const StepCallback& on_step) {
  validate(options);
  const std::size_t P = objective.dim();
  if (P == 0) bad_option("the objective has no parameters");
  if (theta == nullptr) bad_option("theta is null");
  require_finite(theta, P, "theta");
  ctx.check();

  TrainResult r;
  r.loss_history.reserve(static_cast<std::size_t>(std::min(options.max_steps, 1 << 20)));
  Evaluator ev(ctx, r, P);
  if (options.kind == Optimizer::Adam) run_adam(objective, theta, options, ev, r, on_step);
  else run_lbfgs(objective, theta, options, ev, r, on_step);
  return r;
}

// ------------------------------------------------------------------ mini-batches

MinibatchSampler::MinibatchSampler(std::size_t n, std::size_t batch_size, uint64_t seed)
    : n_(n), batch_size_(batch_size), steps_per_epoch_(0), seed_(seed) {
  if (n == 0) fail(ErrorCode::InvalidArgument, "MinibatchSampler: no samples");
  if (batch_size == 0 || batch_size > n)
    fail(ErrorCode::InvalidArgument, "MinibatchSampler: batch_size must be in [1, n]");
  steps_per_epoch_ = (n + batch_size - 1) / batch_size;
  perm_.resize(n);
}

const std::vector<std::size_t>& MinibatchSampler::batch(int step) {
  if (step < 0) fail(ErrorCode::InvalidArgument, "MinibatchSampler: negative step");
  const int64_t epoch = static_cast<int64_t>(static_cast<std::size_t>(step) / steps_per_epoch_);
  const std::size_t pos = static_cast<std::size_t>(step) % steps_per_epoch_;
  if (epoch != epoch_) {
    // Fisher–Yates: swap i with a uniform j ∈ [0, i], i = n−1 … 1, draw n−1−i.
    const Rng rng(seed_, static_cast<uint64_t>(epoch));
    for (std::size_t i = 0; i < n_; ++i) perm_[i] = i;
    for (std::size_t i = n_ - 1; i > 0; --i) {
      const std::size_t j = static_cast<std::size_t>(rng.below_at(n_ - 1 - i, i + 1));
      std::swap(perm_[i], perm_[j]);
    }
    epoch_ = epoch;
  }
  const std::size_t begin = pos * batch_size_, end = std::min(n_, begin + batch_size_);
  out_.assign(perm_.begin() + static_cast<std::ptrdiff_t>(begin), perm_.begin() + static_cast<std::ptrdiff_t>(end));
  return out_;
}

}  // namespace nnscope::models
