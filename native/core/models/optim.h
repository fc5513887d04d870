// nnscope core: training an Objective — Adam (Kingma & Ba 2015, optional decoupled
// weight decay as in AdamW) and L-BFGS (Nocedal & Wright, Numerical Optimization,
// 2nd ed.: two-loop recursion, Alg. 7.4; strong-Wolfe line search, Alg. 3.5/3.6).
//
// Precision. θ is float32 and every loss and gradient is evaluated through the
// Objective's float32 path (loss_grad). The optimiser's own algebra is float64:
// Adam's moments and a master copy of θ; L-BFGS's search direction, its (s, y)
// history and every dot product. L-BFGS iterates are the float32 points the
// objective actually saw, so each secant pair s = θₖ₊₁ − θₖ, y = gₖ₊₁ − gₖ is exact
// (the differences of float32 values are exact in float64).
//
// Loss history. loss_history[k] is the loss at the parameters step k started from
// (what PyTorch's `opt.step(closure)` returns), so loss_history[0] is the initial
// loss; the loss at the returned θ is final_loss. One entry per completed step.
//
// θ is updated in place and always holds the iterate of the last completed step,
// whose values are finite: L-BFGS writes a point only once its line search has
// accepted it (trial points live in scratch space), and Adam's update of finite
// moments is finite. So when train() throws (ErrorCode::Cancelled, or an error of
// the objective) θ holds the last completed step's iterate, and on_step may read θ
// (the iterate the step just produced). After a non_finite stop θ is the last
// iterate whose loss and gradient were finite.
//
// Determinism. Nothing here is random and every reduction runs in a fixed order,
// so the same objective, options and θ give the same history bit for bit. The seed
// feeds the mini-batch sampler (MinibatchSampler) that a batch provider uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "base/context.h"
#include "models/objective.h"

namespace nnscope::models {

enum class Optimizer { Adam, Lbfgs };
enum class LineSearch { StrongWolfe, None };

// Why training stopped. Names (stop_reason_name) are stable: converged_grad,
// converged_change, max_steps, line_search_failed, non_finite.
enum class StopReason {
  ConvergedGrad,     // ‖∇L‖∞ ≤ tolerance_grad at the current iterate
  ConvergedChange,   // |Δloss| ≤ tolerance_change or ‖Δθ‖∞ ≤ tolerance_change
  MaxSteps,          // max_steps steps taken
  LineSearchFailed,  // L-BFGS: no decrease along the direction nor, after a restart, along −∇L
  NonFinite,         // the loss or gradient stayed NaN/Inf (at θ₀, or at every shrunken trial)
};
const char* stop_reason_name(StopReason reason) noexcept;
const char* optimizer_name(Optimizer kind) noexcept;

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;  // added to √v̂ (after bias correction), as in the paper and PyTorch
  // Decoupled weight decay (AdamW, Loshchilov & Hutter): θ ← θ − lr·weight_decay·θ
  // before the Adam update, not an L2 term added to the gradient. 0 disables it.
  double weight_decay = 0.0;
};

// One record per line search (instrumentation; see LbfgsOptions::on_line_search).
// phi(α) = L(θ + α d), dphi(α) = ∇L(θ + α d)·d, both as evaluated (float32 θ).
struct LineSearchRecord {
  int step = 0;              // the step (1-based) this search belongs to
  bool steepest_descent = false;  // d = −∇L (first step, after a restart, or the retry)
  bool accepted = false;     // the step was taken (strong Wolfe: sufficient decrease held; None: finite)
  bool strong_wolfe = false; // the accepted point satisfies both strong-Wolfe conditions
  int evaluations = 0;       // loss_grad calls of this search
  double alpha_initial = 0, alpha = 0;  // first trial step; accepted step (0 if none)
  double phi0 = 0, dphi0 = 0, phi = 0, dphi = 0;
};

struct LbfgsOptions {
  // Number of (s, y) pairs kept. 10 by default (Nocedal & Wright recommend 3–20;
  // PyTorch defaults to 100). The history costs 2·history·P doubles: at P = 1e6 and
  // history = 100 that is 1.6 GB. The papers' PINN recipe works with either.
  int history = 10;
  // Step scale: the first trial step is lr, except on the first step and after a
  // restart, where it is min(1, 1/‖g‖₁)·lr (as PyTorch does).
  double lr = 1.0;
  LineSearch line_search = LineSearch::StrongWolfe;
  double c1 = 1e-4;   // sufficient decrease: phi(α) ≤ phi(0) + c1·α·dphi(0)
  double c2 = 0.9;    // curvature:           |dphi(α)| ≤ c2·|dphi(0)|
  int max_evals = 25; // loss_grad calls per line search (also the shrink budget of LineSearch::None)
  // The pair (s, y) is skipped when sᵀy ≤ curvature_eps·‖s‖‖y‖.
  double curvature_eps = 1e-8;
  // Called after every line search (accepted or not); for tests and diagnostics.
  std::function<void(const LineSearchRecord&)> on_line_search;
};

// Supplies the objective of step k (a mini-batch). Called once per step with the
// step index (0-based); the returned objective must stay valid until the next call
// and have the same dim(). See MinibatchSampler for a seeded batch order.
using BatchProvider = std::function<Objective&(int step)>;
// Called after each completed step with the number of completed steps (1-based)
// and loss_history[step − 1].
using StepCallback = std::function<void(int step, double loss)>;

struct TrainOptions {
  Optimizer kind = Optimizer::Adam;
  int max_steps = 1000;
  // Stopping tests (full batch only; a mini-batch run stops at max_steps), both
  // absolute: ‖∇L‖∞ ≤ tolerance_grad; ‖θₖ₊₁ − θₖ‖∞ ≤ tolerance_change or (L-BFGS
  // only: Adam's loss is not monotone) |L(θₖ₊₁) − L(θₖ)| ≤ tolerance_change.
  // Defaults are PyTorch's L-BFGS defaults. A negative value disables its test; 0
  // stops only on an exact standstill.
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  AdamOptions adam;
  LbfgsOptions lbfgs;
  // Mini-batching: when set, step k uses batch(k) instead of the objective given
  // to train(); that one (the full objective) then only gives final_loss and
  // final_grad_norm. L-BFGS takes both gradients of a step's secant pair on the
  // step's own batch (its line search runs on it too), so the pair stays consistent.
  BatchProvider batch;
  // Seed of anything random: train() draws nothing itself; batch providers built
  // for these options use it (MinibatchSampler(n, batch_size, seed)).
  uint64_t seed = 0;
};

struct TrainResult {
  std::vector<double> loss_history;  // one entry per step: the loss the step started from
  int steps = 0;
  int64_t function_evals = 0;   // objective evaluations (every one computes the loss)
  int64_t gradient_evals = 0;   // of which computed the gradient too
  StopReason stop_reason = StopReason::MaxSteps;
  std::string message;          // stop_reason explained, with the numbers
  double final_loss = std::numeric_limits<double>::quiet_NaN();       // L at the returned θ
  double final_grad_norm = std::numeric_limits<double>::quiet_NaN();  // ‖∇L‖∞ there
  // L-BFGS diagnostics.
  int restarts = 0;           // history cleared (not a descent direction, failed search)
  int skipped_updates = 0;    // pairs dropped by the curvature test
  int armijo_only_steps = 0;  // accepted steps where the curvature condition did not hold
};

// Throws ErrorCode::InvalidArgument naming the first bad option.
void validate(const TrainOptions& options);

// Minimises `objective` from θ (in/out, objective.dim() floats, must be finite).
// Progress: ctx.report(steps, max_steps) and on_step(steps, loss) after each step.
// Cancellation: ctx.check() at every step and before every evaluation of the line
// search; the token is also passed on to the objective. A cancelled run throws
// Error(Cancelled) and θ holds the last accepted iterate, i.e. the iterate of the
// last completed step (θ₀ if none), always finite.
// The objective's own progress reports are not forwarded (ctx.progress is the
// training's). Errors: InvalidArgument (options, dim() == 0, null θ), NonFinite (θ
// not finite on entry), Shape (a batch objective of another dim()).
TrainResult train(Objective& objective, float* theta, const TrainOptions& options,
                  const OpContext& ctx = {}, const StepCallback& on_step = {});

// Seeded mini-batch order over n samples: epochs of ceil(n / batch_size) steps, each
// epoch a fresh permutation of 0..n−1 (Fisher–Yates driven by Rng(seed, epoch)) cut
// into consecutive batches; the last batch of an epoch is shorter when batch_size
// does not divide n. Deterministic: batch(k) depends only on (n, batch_size, seed, k).
class MinibatchSampler {
 public:
  MinibatchSampler(std::size_t n, std::size_t batch_size, uint64_t seed);
  // Indices of the batch of step k (≥ 0). The reference is valid until the next call.
  const std::vector<std::size_t>& batch(int step);
  std::size_t steps_per_epoch() const noexcept { return steps_per_epoch_; }

 private:
  std::size_t n_, batch_size_, steps_per_epoch_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<std::size_t> perm_, out_;
};

}  // namespace nnscope::models
