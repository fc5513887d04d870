// nnscope core, hessian family: stochastic Lanczos quadrature (Golub & Meurant;
// Ubaru, Chen & Saad 2017) and PyHessian's density grid.
//
// Run r: v = Rademacher/√n from Philox (seed, stream r), renormalised in the
// storage precision; m = min(steps, n) Lanczos steps with full
// reorthogonalisation (two passes; a breakdown continues with a fresh orthogonal
// vector from streams 2^32 + r·2^20 + i, β recorded 0); T = QΛQᵀ by the
// tridiagonal QL solver; nodes = Λ (ascending), weights = Q_{0j}², the squared
// FIRST components (PyHessian PR #23 semantics, not the |Q|² of the whole matrix
// of PR #18), renormalised to sum to exactly 1 per run (they do to rounding).
// Σ_j w_j θ_j^p = vᵀA^p v / ‖v‖² exactly for p ≤ 2m−1 (Gauss quadrature).
//
// density_grid: PyHessian's density_plot.density_generate.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {

SlqResult slq(Space& s, const SlqOptions& o, const OpContext& ctx) {
  SlqResult R;
  const std::size_t n = s.dim();
  NNSCOPE_CHECK(o.steps >= 1, ErrorCode::InvalidArgument, "slq: steps must be ≥ 1");
  NNSCOPE_CHECK(o.runs >= 1, ErrorCode::InvalidArgument, "slq: runs must be ≥ 1");
  NNSCOPE_CHECK(n >= 1, ErrorCode::InvalidArgument, "slq: the operator has dimension 0");
  const std::size_t m = std::min(o.steps, n);
  R.runs = o.runs;
  R.steps = m;
  R.nodes.resize(checked_mul(o.runs, m));
  R.weights.resize(o.runs * m);
  s.reserve(m + 1);
  const std::uint64_t p0 = s.products();
  const double total = double(o.runs) * double(m);
  std::vector<double> Q(m * m), vals(m);
  for (std::size_t r = 0; r < o.runs; ++r) {
    detail::load_rademacher(s, 0, o.seed, r, 1.0 / std::sqrt(double(n)));
    s.scale(0, 1.0 / s.norm(0));
    const std::uint64_t restart = (std::uint64_t(1) << 32) + (std::uint64_t(r) << 20);
    const LanczosResult L =
        detail::lanczos_run(s, m, 2, o.seed, restart, ctx, double(s.products() - p0), total);
    tridiagonal_eigen(m, L.alpha.data(), L.beta.data(), vals.data(), Q.data());
    double sum = 0.0;
    for (std::size_t j = 0; j < m; ++j) sum += Q[j] * Q[j];  // first row
    for (std::size_t j = 0; j < m; ++j) {
      R.nodes[r * m + j] = vals[j];
      R.weights[r * m + j] = Q[j] * Q[j] / sum;
    }
  }
  R.products = s.products() - p0;
  return R;
}

DensityGrid density_grid(const SlqResult& q, const GridOptions& o) {
  NNSCOPE_CHECK(q.runs >= 1 && q.steps >= 1, ErrorCode::InvalidArgument, "density_grid: empty SLQ result");
  NNSCOPE_CHECK(q.nodes.size() == checked_mul(q.runs, q.steps) && q.weights.size() == q.nodes.size(),
                ErrorCode::Shape, "density_grid: nodes and weights must hold runs × steps values");
  NNSCOPE_CHECK(o.points >= 2, ErrorCode::InvalidArgument, "density_grid: points must be ≥ 2");
  NNSCOPE_CHECK(o.sigma_squared > 0 && std::isfinite(o.sigma_squared), ErrorCode::InvalidArgument,
                "density_grid: sigma_squared must be a finite number > 0");
  NNSCOPE_CHECK(o.overhead >= 0 && std::isfinite(o.overhead), ErrorCode::InvalidArgument,
                "density_grid: overhead must be a finite number ≥ 0");
  for (std::size_t i = 0; i < q.nodes.size(); ++i)
    if (!std::isfinite(q.nodes[i]) || !std::isfinite(q.weights[i]))
      fail(ErrorCode::NonFinite, "density_grid: node or weight " + std::to_string(i) + " is not finite");
  const std::size_t R = q.runs, m = q.steps, P = o.points;
  double mean_max = 0.0, mean_min = 0.0;
  for (std::size_t r = 0; r < R; ++r) {
    const double* x = q.nodes.data() + r * m;
    mean_max += *std::max_element(x, x + m);
    mean_min += *std::min_element(x, x + m);
  }
  const double lmax = mean_max / double(R) + o.overhead;
  const double lmin = mean_min / double(R) - o.overhead;
  DensityGrid G;
  G.variance = o.sigma_squared * std::max(1.0, lmax - lmin);
  G.grid.resize(P);
  G.density.assign(P, 0.0);
  // np.linspace: start + i·step, the last point exactly stop.
  const double step = (lmax - lmin) / double(P - 1);
  for (std::size_t i = 0; i < P; ++i) G.grid[i] = lmin + double(i) * step;
  G.grid[P - 1] = lmax;
  const double var = G.variance;
  const double norm = 1.0 / std::sqrt(2.0 * 3.14159265358979323846 * var);
  parallel_for(0, P, 512, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const double t = G.grid[i];
      double acc = 0.0;
      for (std::size_t r = 0; r < R; ++r) {
        double run = 0.0;
        const double* x = q.nodes.data() + r * m;
        const double* w = q.weights.data() + r * m;
        for (std::size_t j = 0; j < m; ++j) {
          const double d = x[j] - t;
          run += w[j] * (std::exp(-d * d / (2.0 * var)) * norm);
        }
        acc += run;
      }
      G.density[i] = acc / double(R);
    }
  });
  double sum = 0.0;
  for (double v : G.density) sum += v;
  const double area = sum * (G.grid[1] - G.grid[0]);
  NNSCOPE_CHECK(area > 0 && std::isfinite(area), ErrorCode::InvalidArgument,
                "density_grid: the density vanishes on the grid (the Gaussians, variance " + std::to_string(var) +
                    ", fall between the points): use more points or a larger sigma_squared");
  for (double& v : G.density) v /= area;
  return G;
}

}  // namespace nnscope::hessian
