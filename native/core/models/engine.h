// nnscope core (models, internal): the one engine behind every native model —
// a dense network evaluated on a chunk of rows with C input-tangent channels,
// its reverse mode and its R-operator (Pearlmutter), templated on the scalar.
//
// Channels. A group of rows may carry C tangent channels: channel c is the
// directional derivative of every activation along the input coordinate k_c
// (∂/∂x_{k_c}). Rows are stacked as [primal B rows; channel 1 B rows; …], R =
// (1+C)·B, so one GEMM per layer serves all of them:
//   Z = A·Wᵀ (+ b on the primal rows),  A'_0 = σ(Z_0),  A'_c = σ'(Z_0) ⊙ Z_c.
// The plain MLP is C = 0; the PINN's residual rows use C = 2 (∂/∂x, ∂/∂t).
//
// Reverse mode (G = ∂L/∂A', per block):
//   δ_0 = G_0⊙σ' + Σ_c G_c⊙σ''⊙Z_c,   δ_c = G_c⊙σ',
//   ∂L/∂W = δᵀ·A (all R rows),  ∂L/∂b = Σ_rows δ_0,  ∂L/∂A = δ·W.
// R-operator along v = (V_W, V_b) (R{·} = d/dε at θ + εv):
//   R{Z} = R{A}·Wᵀ + A·V_Wᵀ (+ V_b on primal rows),
//   R{A'_0} = σ'⊙R{Z_0},  R{A'_c} = σ''⊙R{Z_0}⊙Z_c + σ'⊙R{Z_c},
//   R{δ_0} = R{G_0}⊙σ' + G_0⊙σ''⊙R{Z_0}
//            + Σ_c [R{G_c}⊙σ''⊙Z_c + G_c⊙σ'''⊙R{Z_0}⊙Z_c + G_c⊙σ''⊙R{Z_c}],
//   R{δ_c} = R{G_c}⊙σ' + G_c⊙σ''⊙R{Z_0},
//   Hv_W = R{δ}ᵀ·A + δᵀ·R{A},  Hv_b = Σ_rows R{δ_0},
//   R{∂L/∂A} = R{δ}·W + δ·V_W.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "base/context.h"
#include "models/mlp.h"

namespace nnscope::models::detail {

struct Net {
  std::vector<std::size_t> widths;  // L + 1
  std::vector<Activation> acts;     // L (hidden..., output)
  std::vector<std::size_t> w_off, b_off;
  std::size_t P = 0;
  std::size_t layers() const noexcept { return acts.size(); }
};
Net make_net(const std::vector<std::size_t>& widths, Activation hidden, Activation output);

// A set of rows with one loss head. Units are the indivisible pieces a task takes
// (a sample, or a pair of samples for the periodic boundary).
template <typename T>
class Group {
 public:
  virtual ~Group() = default;
  std::size_t units = 0;
  std::size_t rows_per_unit = 1;
  std::vector<std::size_t> channels;  // input coordinate of each tangent channel
  // Primal input rows of units [lo, hi): (hi−lo)·rows_per_unit rows × d_in.
  virtual void inputs(std::size_t lo, std::size_t hi, T* x) const = 0;
  // Loss contribution (already scaled: the group's share of the total loss) of the
  // outputs `out` (R × d_out, R = (1+C)·B, stacked as above); when g is not null,
  // also ∂L/∂out into g (R × d_out).
  virtual double head(std::size_t lo, std::size_t hi, const T* out, T* g) const = 0;
  // rg = R{g}: the derivative of g along rout = R{out} (R × d_out).
  virtual void rhead(std::size_t lo, std::size_t hi, const T* out, const T* rout, T* rg) const = 0;
};

template <typename T>
struct Task {
  const Group<T>* group = nullptr;
  std::size_t lo = 0, hi = 0;
};

// Fixed chunking: each group's units in pieces of ≤ chunk_rows primal rows (at
// least one unit), groups in order. Independent of the thread count.
constexpr std::size_t kChunkRows = 128;
template <typename T>
std::vector<Task<T>> make_tasks(const std::vector<const Group<T>*>& groups, std::size_t chunk_rows = kChunkRows);

enum class Mode { Loss, Grad, Hvp };

// Replaces the GEMM for the primal rows of layer 0: fills z0 (B × widths[1]) with
// X·W₀ᵀ (no bias) for the task of that index.
template <typename T>
using Layer0Fn = std::function<void(std::size_t task, T* z0)>;

// One task on the calling thread (scratch is thread-local). Returns the task's loss
// (no weight decay). Grad: writes ∂L_task/∂θ into out[P]; Hvp: writes (H_task·v)
// into out[P] (every entry written). Loss: out unused.
template <typename T>
double run_task(const Net& net, const Task<T>& task, std::size_t task_index, Mode mode, const T* theta, const T* v,
                T* out, const Layer0Fn<T>* layer0 = nullptr);

// The whole objective: tasks in parallel (ThreadPool), partials reduced in task
// order (float64), plus weight decay. Returns the loss; out as in run_task for the
// sum (Grad: gradient, Hvp: Hv), may be null for Loss.
template <typename T>
double evaluate(const Net& net, const std::vector<Task<T>>& tasks, Mode mode, const T* theta, const T* v, T* out,
                double weight_decay, const OpContext& ctx);

// The batched landscape loss (float32): out[i] = L(θ₀ + Σ_j coords[i·k+j]·dirs[j]).
// Uses the layer-0 split X·(W₀ + Σ a_j D_j)ᵀ = X·W₀ᵀ + Σ a_j X·D_jᵀ when that is
// cheaper (k < d_in) and its tables fit in 256 MiB. Points go in parallel chunks
// of 4 (each sweeps the tasks in order, so a task's data and tables serve the 4
// points while cached), blocks of 512 points between progress reports.
// Deterministic for every thread count.
void evaluate_grid(const Net& net, const std::vector<Task<float>>& tasks, const float* theta0, const float* dirs,
                   std::size_t k, const float* coords, std::size_t n_points, double* out, double weight_decay,
                   const OpContext& ctx);

// The Objective entry points over one network and its tasks: what MlpObjective and
// PinnObjective share (each binds its own net, tasks and weight decay).
struct Bound {
  const Net& net;
  const std::vector<Task<float>>& tf;
  const std::vector<Task<double>>& td;
  double weight_decay;

  double loss(const float* theta, const OpContext& ctx) const;
  double loss_grad(const float* theta, float* grad, const OpContext& ctx) const;
  void hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) const;
  double loss64(const double* theta, const OpContext& ctx) const;
  double loss_grad64(const double* theta, double* grad, const OpContext& ctx) const;
  void hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) const;
  // Checks the pointers, then evaluate_grid.
  void loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords, std::size_t n_points,
                 double* out, const OpContext& ctx) const;
};

// C = αop(A)op(B) + βC row-major: sgemm_cpu for float, a plain loop nest for double.
template <typename T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
          const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

}  // namespace nnscope::models::detail
