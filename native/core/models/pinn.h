// nnscope core: the 1-D convection PINN (Krishnapriyan et al. 2021 set-up).
//
//   u_t + β u_x = 0,  x ∈ [0, 2π), t ∈ [0, 1],  u(x, 0) = sin x,  periodic in x;
//   exact solution u*(x, t) = sin(x − β t).
//
// The network u(x, t) is an MLP with inputs (x, t) in that order (default
// 2→50→50→50→50→1, tanh, identity output). The loss is
//
//   L = mean_i (u(x_i, 0) − sin x_i)²                      initial-condition points
//     + mean_j (u(0, t_j) − u(2π, t_j))²                    periodic-boundary pairs
//     + λ · mean_k (u_t + β u_x)(x_k, t_k)²                collocation points
//     (+ wd/2·‖θ‖² when weight_decay > 0)
//
// u_x and u_t come from two input-tangent channels propagated through the network,
// so the gradient (reverse mode over that extended forward) and the HVP (its
// R-operator) are exact.
//
// Point sets (the reference trainer main_pbc.py; x grid = 2π·j/x_grid, j < x_grid,
// endpoint excluded; t grid = i/(t_grid − 1), i < t_grid):
//   Grid   IC: the x grid at t = 0 (x_grid points); BC: x = 0 and x = 2π on the t grid
//          (t_grid pairs); collocation: n_collocation distinct points drawn (seeded)
//          from the interior grid (x ≠ 0, t ≠ 0), i.e. (x_grid−1)·(t_grid−1) candidates.
//   Random IC: n_initial x ~ U[0, 2π); BC: n_boundary t ~ U[0, 1]; collocation:
//          n_collocation (x, t) ~ U([0, 2π) × [0, 1]).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "models/mlp.h"
#include "models/objective.h"

namespace nnscope::models {

enum class PinnSampling { Grid, Random };

struct PinnSpec {
  double beta = 1.0;    // convection speed β
  double lambda = 1.0;  // weight λ of the residual term
  std::vector<std::size_t> widths{2, 50, 50, 50, 50, 1};  // widths[0] == 2, widths.back() == 1
  Activation activation = Activation::Tanh;               // hidden layers; the output is identity
  std::size_t x_grid = 256, t_grid = 100;                 // the reference / evaluation grid
  std::size_t n_collocation = 100;                        // N_f
  PinnSampling collocation_sampling = PinnSampling::Grid;
  PinnSampling boundary_sampling = PinnSampling::Grid;    // IC and BC points
  std::size_t n_initial = 0;   // Random IC count (0 → x_grid)
  std::size_t n_boundary = 0;  // Random BC pair count (0 → t_grid)
  uint64_t seed = 0;           // sampling seed
  double weight_decay = 0.0;
};

// Throws InvalidArgument for a bad spec (widths not 2→…→1, zero width, grids < 2,
// no collocation points, more grid collocation points than interior grid points,
// non-finite β/λ, negative λ or weight decay).
void validate(const PinnSpec& spec);

// The training points (float64).
struct PinnPoints {
  std::vector<double> ic_x;        // initial condition at t = 0, target sin x
  std::vector<double> bc_t;        // boundary pairs (0, t) and (2π, t)
  std::vector<double> f_x, f_t;    // collocation points
};
PinnPoints pinn_points(const PinnSpec& spec);

// The MLP of the PINN as an MlpSpec (for layouts and initialisation).
MlpSpec pinn_mlp_spec(const PinnSpec& spec);
// Parameter layout / count / seeded initialisation (Xavier normal for tanh).
ParamLayout pinn_layout(const PinnSpec& spec);
std::vector<float> pinn_init(const PinnSpec& spec, uint64_t seed, InitKind kind = InitKind::Auto);

class PinnObjective final : public Objective {
 public:
  explicit PinnObjective(PinnSpec spec);
  // User-given points (validated: finite, non-empty IC and collocation sets;
  // bc_t may be empty — then there is no boundary term).
  PinnObjective(PinnSpec spec, PinnPoints points);
  ~PinnObjective() override;
  PinnObjective(const PinnObjective&) = delete;
  PinnObjective& operator=(const PinnObjective&) = delete;

  std::size_t dim() const override;
  double loss(const float* theta, const OpContext& ctx) override;
  double loss_grad(const float* theta, float* grad, const OpContext& ctx) override;
  void hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) override;
  double loss_grad64(const double* theta, double* grad, const OpContext& ctx) override;
  void hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) override;
  void loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords, std::size_t n_points,
                 double* out, const OpContext& ctx) override;

  double loss64(const double* theta, const OpContext& ctx = {});
  // The three terms (IC, BC, λ·residual; no weight decay) in float32 compute.
  struct Terms {
    double initial = 0, boundary = 0, residual = 0;
  };
  Terms loss_terms(const float* theta, const OpContext& ctx = {});

  const PinnSpec& spec() const noexcept;
  const PinnPoints& points() const noexcept;
  const ParamLayout& layout() const noexcept;

 private:
  struct Impl;
  Impl* impl_;
};

// u, u_x, u_t at n points (x[i], t[i]); u_x / u_t may be nullptr. Float32 compute.
void pinn_predict(const PinnSpec& spec, const float* theta, const double* x, const double* t, std::size_t n,
                  float* u, float* u_x = nullptr, float* u_t = nullptr, const OpContext& ctx = {});
// The same in float64 (reference).
void pinn_predict64(const PinnSpec& spec, const double* theta, const double* x, const double* t, std::size_t n,
                    double* u, double* u_x = nullptr, double* u_t = nullptr, const OpContext& ctx = {});

// ‖u − u*‖₂ / ‖u*‖₂ over the x_grid × t_grid evaluation grid (256 × 100 by default),
// u* = sin(x − β t). Float32 network, float64 sums.
double pinn_relative_l2(const PinnSpec& spec, const float* theta, const OpContext& ctx = {});

}  // namespace nnscope::models
