// nnscope core, hessian family: k extreme eigenpairs by thick-restart Lanczos
// (Wu & Simon 2000) with full reorthogonalisation.
//
// A cycle extends the basis v_0..v_{m-1} by Lanczos steps (lanczos_step: the
// three-term recurrence plus Kahan–Parlett full reorthogonalisation against the
// whole basis; the first step after a restart, which the arrow couples to every
// kept vector, takes two unconditional CGS passes), leaving the normalised residual f̂ in slot m
// with β_m = ‖f‖, so that A·V = V·H + β_m·f̂·e_mᵀ. H (m×m, float64) is tridiagonal
// except for the arrow row/column that a restart leaves; its eigenpairs (θ_i, s_i)
// come from a dense symmetric solver (Householder + implicit QL), O(m³) per cycle.
//
// Convergence (per wanted pair): the Lanczos-relation residual
//   ‖A·y_i − θ_i·y_i‖ = β_m·|s_{m,i}|  ≤  tol · max(|θ_i|, eps^{2/3}·‖H‖),
// eps the storage precision (the floor keeps eigenvalues at 0 from demanding the
// impossible, as ARPACK's eps23). No extra products are spent on verification;
// with full reorthogonalisation the relation holds to rounding, so the true
// residual differs from the estimate by O(eps·‖A‖).
//
// Restart: keep the l = min(m−1, k + (m−k)/2) best Ritz vectors by `which`
// (y = V·S_kept by Space::combine), then continue from v_l = f̂. H becomes
// diag(θ_kept) bordered by σ_i = β_m·s_{m,i}. Breakdown (β ≈ 0) anywhere inserts a
// fresh random orthogonal vector (β recorded 0). When the basis reaches n vectors
// the Krylov space is the whole space and β_m is 0: the result is exact.
//
// Repeated eigenvalues: from one start vector Lanczos sees only the component of
// the start vector inside an eigenspace; an exactly repeated eigenvalue is then
// found once (its other copies are invisible in exact arithmetic, and rounding
// only seeds them at the eps level), unless a breakdown restart or n ≤ basis
// brings the complement in. Every returned value is still an eigenvalue, with the
// stated residual; near-equal (distinct) eigenvalues are resolved like any others.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {
namespace {

constexpr std::uint64_t kRestartStreams = std::uint64_t(1) << 32;

// Indices of theta in the order of `which` (best first; ties by index).
std::vector<std::size_t> wanted_order(const std::vector<double>& theta, Which which) {
  std::vector<std::size_t> idx(theta.size());
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    switch (which) {
      case Which::LargestAlgebraic:
        return theta[a] > theta[b];
      case Which::SmallestAlgebraic:
        return theta[a] < theta[b];
      case Which::LargestMagnitude:
      default: {
        const double fa = std::fabs(theta[a]), fb = std::fabs(theta[b]);
        if (fa != fb) return fa > fb;
        return theta[a] > theta[b];
      }
    }
  });
  return idx;
}

}  // namespace

EigResult eigsh(Space& s, const EigOptions& o, const OpContext& ctx) {
  EigResult R;
  const std::size_t n = s.dim();
  const std::size_t k = std::min(o.k, n);
  NNSCOPE_CHECK(o.tol >= 0 && std::isfinite(o.tol), ErrorCode::InvalidArgument,
                "eigsh: tol must be a finite number ≥ 0");
  NNSCOPE_CHECK(o.which == Which::LargestAlgebraic || o.which == Which::SmallestAlgebraic ||
                    o.which == Which::LargestMagnitude,
                ErrorCode::InvalidArgument, "eigsh: unknown `which`");
  if (k == 0) {
    R.converged = true;
    return R;
  }
  const double eps = detail::storage_eps(s);
  const double tol = o.tol > 0 ? o.tol : (s.single_precision() ? 1e-5 : 1e-10);
  std::size_t m = o.basis ? o.basis : std::max<std::size_t>(2 * k + 8, 20);
  m = std::min(n, std::max(m, k + 2));
  std::size_t max_products = o.max_products ? o.max_products : std::max<std::size_t>(1000, 20 * m);
  max_products = std::max(max_products, m);  // at least one full cycle
  const double eps23 = std::cbrt(eps * eps);

  s.reserve(2 * m + 1);  // basis [0, m), f̂ at m, rotated / Ritz vectors [m+1, 2m+1)
  detail::load_rademacher(s, 0, o.seed, 0, 1.0 / std::sqrt(double(n)));
  s.scale(0, 1.0 / s.norm(0));

  const std::uint64_t p0 = s.products();
  auto used = [&] { return std::size_t(s.products() - p0); };
  std::uint64_t restart_stream = kRestartStreams;
  std::vector<double> H(m * m, 0.0), coeffs(m + 1);
  std::vector<double> Hc, theta, S;
  std::size_t l = 0;
  double tnorm = 0.0, bprev = 0.0, beta_m = 0.0;
  std::size_t jm = 0;
  std::vector<std::size_t> order;
  std::vector<double> res;
  for (;;) {
    // ---- extend the basis from l to jm
    const std::size_t budget = max_products - used();
    jm = std::min(m, l + budget);
    for (std::size_t j = l; j < jm; ++j) {
      const std::size_t dst = j + 1 < jm ? j + 1 : m;
      const detail::StepResult st =
          detail::lanczos_step(s, j, dst, 2, bprev, j > l || l == 0, tnorm, o.seed, &restart_stream, coeffs, ctx);
      H[j * m + j] = st.alpha;
      if (j + 1 < jm) {
        H[j * m + j + 1] = H[(j + 1) * m + j] = st.beta;
      } else {
        beta_m = st.beta;
      }
      bprev = st.beta;
      ctx.report(double(used()), double(max_products));
    }
    if (jm == n) beta_m = 0.0;  // the basis spans the space: exact

    // ---- Rayleigh–Ritz
    Hc.assign(jm * jm, 0.0);
    for (std::size_t i = 0; i < jm; ++i)
      for (std::size_t j = 0; j < jm; ++j) Hc[i * jm + j] = H[i * m + j];
    theta.assign(jm, 0.0);
    S.assign(jm * jm, 0.0);
    detail::symmetric_eigen(jm, Hc.data(), theta.data(), S.data());
    double hnorm = 0.0;
    for (double t : theta) hnorm = std::max(hnorm, std::fabs(t));
    order = wanted_order(theta, o.which);
    res.assign(jm, 0.0);
    for (std::size_t i = 0; i < jm; ++i) res[i] = std::fabs(beta_m * S[(jm - 1) * jm + i]);
    const std::size_t kk = std::min(k, jm);
    bool all = kk == k;
    for (std::size_t q = 0; q < kk && all; ++q) {
      const std::size_t i = order[q];
      all = res[i] <= tol * std::max(std::fabs(theta[i]), eps23 * hnorm);
    }
    R.converged = all;
    if (all || used() >= max_products) break;

    // ---- thick restart
    std::size_t keep = std::min(jm - 1, k + (m - k) / 2);
    keep = std::max<std::size_t>(keep, 1);
    std::vector<double> Y(jm * keep);
    for (std::size_t r = 0; r < jm; ++r)
      for (std::size_t i = 0; i < keep; ++i) Y[r * keep + i] = S[r * jm + order[i]];
    s.combine(0, jm, Y.data(), keep, m + 1);
    for (std::size_t i = 0; i < keep; ++i) s.copy(m + 1 + i, i);
    s.copy(m, keep);  // v_keep = f̂ (a fresh orthogonal vector after a breakdown)
    std::fill(H.begin(), H.end(), 0.0);
    double arrow = 0.0;
    for (std::size_t i = 0; i < keep; ++i) {
      const std::size_t c = order[i];
      const double sigma = beta_m * S[(jm - 1) * jm + c];
      H[i * m + i] = theta[c];
      H[i * m + keep] = H[keep * m + i] = sigma;
      arrow += std::fabs(sigma);
    }
    bprev = arrow;
    tnorm = std::max(tnorm, hnorm);
    l = keep;
    ++R.restarts;
  }

  const std::size_t kk = std::min(k, jm);
  R.values.resize(kk);
  R.residuals.resize(kk);
  for (std::size_t q = 0; q < kk; ++q) {
    R.values[q] = theta[order[q]];
    R.residuals[q] = res[order[q]];
  }
  if (o.vectors && kk > 0) {
    std::vector<double> Y(jm * kk);
    for (std::size_t r = 0; r < jm; ++r)
      for (std::size_t q = 0; q < kk; ++q) Y[r * kk + q] = S[r * jm + order[q]];
    s.combine(0, jm, Y.data(), kk, m + 1);
    R.vectors.resize(kk * n);
    for (std::size_t q = 0; q < kk; ++q) s.store(m + 1 + q, R.vectors.data() + q * n);
  }
  R.products = used();
  return R;
}

}  // namespace nnscope::hessian
