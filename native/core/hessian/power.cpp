// nnscope core, hessian family: PyHessian's power iteration with deflation by
// projection (hessian.eigenvalues(maxIter, tol, top_n)), as a parity mode.
//
// For each of the k pairs: v ~ N(0, I) (Philox stream i); up to max_iter times:
//   v ← orthnormal(v, found)   (sequential Gram–Schmidt against the found vectors,
//                               then v/(‖v‖ + 1e-6), PyHessian's `normalization`)
//   Hv = A·v;  λ̂ = ⟨Hv, v⟩;  v ← Hv/(‖Hv‖ + 1e-6)
//   stop when |λ_prev − λ̂| / (|λ_prev| + 1e-6) < tol, keeping λ_prev (as PyHessian
//   does: on the stopping iteration the stored eigenvalue is not updated).
// The vector returned is the last v rescaled to exactly unit length (PyHessian's
// has norm ‖Hv‖/(‖Hv‖+1e-6)), and that unit vector is what later pairs deflate
// against. Residuals ‖A·v − λ·v‖ cost one extra product per pair, counted.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {

EigResult power_iteration(Space& s, const PowerOptions& o, const OpContext& ctx) {
  EigResult R;
  const std::size_t n = s.dim();
  const std::size_t k = std::min(o.k, n);
  NNSCOPE_CHECK(o.max_iter >= 1, ErrorCode::InvalidArgument, "power_iteration: max_iter must be ≥ 1");
  NNSCOPE_CHECK(o.tol >= 0 && std::isfinite(o.tol), ErrorCode::InvalidArgument,
                "power_iteration: tol must be a finite number ≥ 0");
  if (k == 0) {
    R.converged = true;
    return R;
  }
  s.reserve(k + 2);  // found vectors [0, k), v at k, Hv at k+1
  const std::size_t v = k, hv = k + 1;
  const std::uint64_t p0 = s.products();
  const double total = double(k) * double(o.max_iter + 1);
  auto report = [&] { ctx.report(double(s.products() - p0), total); };
  bool all = true;
  for (std::size_t i = 0; i < k; ++i) {
    detail::load_gaussian(s, v, o.seed, i);
    double lambda = 0.0;
    bool have = false, conv = false;
    for (std::size_t it = 0; it < o.max_iter; ++it) {
      for (std::size_t j = 0; j < i; ++j) s.axpy(-s.dot(j, v), j, v);
      s.scale(v, 1.0 / (s.norm(v) + 1e-6));
      s.apply(v, hv, ctx);
      report();
      const double tmp = s.dot(hv, v);
      s.copy(hv, v);
      s.scale(v, 1.0 / (s.norm(v) + 1e-6));
      if (have && std::fabs(lambda - tmp) / (std::fabs(lambda) + 1e-6) < o.tol) {
        conv = true;
        break;
      }
      lambda = tmp;
      have = true;
    }
    all = all && conv;
    // The found vector: unit length (a zero vector stays zero).
    s.copy(v, i);
    const double nv = s.norm(i);
    if (nv > 0) s.scale(i, 1.0 / nv);
    R.values.push_back(lambda);
  }
  // Residuals: one product per pair.
  R.residuals.resize(k);
  for (std::size_t i = 0; i < k; ++i) {
    s.apply(i, hv, ctx);
    report();
    s.axpy(-R.values[i], i, hv);
    R.residuals[i] = s.norm(hv);
  }
  if (o.vectors) {
    R.vectors.resize(k * n);
    for (std::size_t i = 0; i < k; ++i) s.store(i, R.vectors.data() + i * n);
  }
  R.converged = all;
  R.products = s.products() - p0;
  return R;
}

}  // namespace nnscope::hessian
