// nnscope core, hessian family: the Lanczos process with full
// reorthogonalisation (Parlett ch. 13), and the helpers every Krylov method of
// the family shares (random start and restart vectors, the breakdown rule).
//
// Step j: w = A·v_j − β_{j-1}·v_{j-1}; α_j = v_jᵀw; w −= α_j·v_j (the three-term
// recurrence, on two vectors only); then full reorthogonalisation: a classical
// Gram–Schmidt pass against the whole basis v_0..v_j as two GEMV-shaped sweeps of
// the block (Space::orthogonalize), which removes the rounding-level components the
// recurrence leaves along old vectors (their coefficient on v_j corrects α_j).
// reorth_passes is the most such passes per step, Kahan–Parlett's "twice is
// enough" (Parlett §6.9): a further pass runs only when the previous one cut ‖w‖
// below 1/√2 of its input (heavy cancellation, i.e. near an invariant subspace).
// Because the recurrence already removed the large components, one pass nearly
// always suffices: two sweeps of the basis per step instead of the four of an
// unconditional CGS2 (three when its sweeps are fused). β_j = ‖w‖, v_{j+1} = w/β_j.
// reorth_passes = 0 is the plain recurrence (no reorthogonalisation).
//
// Breakdown: β_j ≤ ‖T‖·max(eps_storage, min(n·eps64, 1e-12)) (‖T‖ estimated by the
// running maximum of the Gershgorin row sums |α_j| + β_j + β_{j-1}) means the basis
// spans an invariant subspace. The next vector is then a fresh Rademacher vector
// orthogonalised against the basis and β_j is recorded as 0, so T splits into
// blocks and the process goes on in the orthogonal complement (rank-one and
// repeated-eigenvalue matrices, n = 1 ... all end up exact when m = n).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {
namespace detail {

namespace {
constexpr double kKahanParlett = 0.70710678118654752;  // 1/√2
}

void load_rademacher(Space& s, std::size_t slot, std::uint64_t seed, std::uint64_t stream, double scale) {
  const std::size_t n = s.dim();
  std::vector<double> v(n);
  Rng(seed, stream).rademacher(v.data(), n);
  if (scale != 1.0)
    for (double& x : v) x *= scale;
  s.load(slot, v.data());
}

void load_gaussian(Space& s, std::size_t slot, std::uint64_t seed, std::uint64_t stream) {
  const std::size_t n = s.dim();
  std::vector<double> v(n);
  Rng(seed, stream).gaussian(v.data(), n);
  s.load(slot, v.data());
}

double breakdown_threshold(const Space& s, double tnorm) {
  const double rel = std::min(double(s.dim()) * kEps64, 1e-12);
  return tnorm * std::max(storage_eps(s), rel);
}

void fresh_orthogonal(Space& s, std::size_t count, std::size_t dst, std::uint64_t seed, std::uint64_t* stream) {
  const std::size_t n = s.dim();
  NNSCOPE_CHECK(count < n, ErrorCode::Internal, "hessian: no room for a fresh orthogonal vector");
  const double floor = 1e3 * storage_eps(s);
  for (int attempt = 0; attempt < 16; ++attempt) {
    load_rademacher(s, dst, seed, (*stream)++, 1.0 / std::sqrt(double(n)));
    const double before = s.norm(dst);
    s.orthogonalize(0, count, dst, 2, nullptr);
    double nrm = s.norm(dst);
    if (nrm < 0.5 * before) {  // heavy cancellation: one more pass (Kahan–Parlett)
      s.orthogonalize(0, count, dst, 1, nullptr);
      nrm = s.norm(dst);
    }
    if (nrm > floor * before && std::isfinite(nrm)) {
      s.scale(dst, 1.0 / nrm);
      return;
    }
  }
  fail(ErrorCode::Internal, "hessian: could not draw a random vector orthogonal to the Krylov basis");
}

StepResult lanczos_step(Space& s, std::size_t j, std::size_t dst, int passes, double beta_prev, bool local,
                        double& tnorm, std::uint64_t seed, std::uint64_t* restart_stream,
                        std::vector<double>& coeffs, const OpContext& ctx) {
  StepResult r;
  s.apply(j, dst, ctx);
  if (coeffs.size() < j + 1) coeffs.resize(j + 1);
  if (passes <= 0) {
    r.alpha = s.dot(j, dst);
    s.axpy(-r.alpha, j, dst);
    if (j > 0 && beta_prev != 0.0) s.axpy(-beta_prev, j - 1, dst);
    r.beta = s.norm(dst);
  } else if (local) {
    // The three-term recurrence first (local: two vectors), then full passes
    // that only remove the rounding-level components along the basis; a further
    // pass runs only when one removed more than 1 − 1/√2 of the norm (Kahan–Parlett).
    if (j > 0 && beta_prev != 0.0) s.axpy(-beta_prev, j - 1, dst);
    r.alpha = s.dot(j, dst);
    s.axpy(-r.alpha, j, dst);
    double before = s.norm(dst), after = before;
    for (int p = 0; p < passes; ++p) {
      s.orthogonalize(0, j + 1, dst, 1, coeffs.data());
      r.alpha += coeffs[j];
      after = s.norm(dst);
      if (after >= kKahanParlett * before) break;
      before = after;
    }
    r.beta = after;
  } else {
    // After a thick restart (the arrow couples v_j to every kept vector): `passes`
    // unconditional CGS passes against the whole basis.
    s.orthogonalize(0, j + 1, dst, passes, coeffs.data());
    r.alpha = coeffs[j];
    r.beta = s.norm(dst);
  }
  tnorm = std::max(tnorm, std::fabs(r.alpha) + r.beta + beta_prev);
  if (r.beta > breakdown_threshold(s, tnorm)) {
    s.scale(dst, 1.0 / r.beta);
    return r;
  }
  r.breakdown = true;
  r.beta = 0.0;
  if (j + 1 < s.dim()) fresh_orthogonal(s, j + 1, dst, seed, restart_stream);
  return r;
}

LanczosResult lanczos_run(Space& s, std::size_t m, int passes, std::uint64_t seed, std::uint64_t restart_stream,
                          const OpContext& ctx, double progress_done, double progress_total) {
  LanczosResult res;
  const std::size_t n = s.dim();
  m = std::min(m, n);
  if (m == 0) return res;
  NNSCOPE_CHECK(passes >= 0, ErrorCode::InvalidArgument, "lanczos: reorth_passes must be ≥ 0");
  NNSCOPE_CHECK(s.slots() >= 1, ErrorCode::InvalidArgument, "lanczos: slot 0 must hold the start vector");
  s.reserve(m + 1);
  const std::uint64_t p0 = s.products();
  std::vector<double> coeffs(m + 1);
  res.alpha.reserve(m);
  res.beta.reserve(m - 1);
  double tnorm = 0.0, beta_prev = 0.0;
  for (std::size_t j = 0; j < m; ++j) {
    if (j + 1 < m) {
      const StepResult st =
          lanczos_step(s, j, j + 1, passes, beta_prev, true, tnorm, seed, &restart_stream, coeffs, ctx);
      res.alpha.push_back(st.alpha);
      res.beta.push_back(st.beta);
      if (st.breakdown) ++res.restarts;
      beta_prev = st.beta;
    } else {
      // Last step: only α is part of T.
      s.apply(j, m, ctx);
      res.alpha.push_back(s.dot(j, m));
    }
    res.products = s.products() - p0;
    ctx.report(progress_done + double(res.products), progress_total);
  }
  return res;
}

}  // namespace detail

namespace {
constexpr std::uint64_t kRestartStreams = std::uint64_t(1) << 32;  // streams of breakdown restarts
}

// The start vector is the unit vector the caller put in slot 0 (hessian.h's
// "from slot `start` … start may be 0": this overload has no start argument, so
// the start slot is 0); seed drives the breakdown restarts only.
LanczosResult lanczos(Space& space, std::size_t steps, std::uint64_t seed, int reorth_passes, const OpContext& ctx) {
  const std::size_t m = std::min(steps, space.dim());
  if (m == 0) return {};
  NNSCOPE_CHECK(space.slots() >= 1, ErrorCode::InvalidArgument, "lanczos: slot 0 must hold the start vector");
  const double v0 = space.norm(0);
  NNSCOPE_CHECK(std::fabs(v0 - 1.0) <= 1e-3, ErrorCode::InvalidArgument,
                "lanczos: the start vector in slot 0 must have unit length (its norm is " + std::to_string(v0) + ")");
  return detail::lanczos_run(space, m, reorth_passes, seed, kRestartStreams, ctx, 0.0, double(m));
}

LanczosResult lanczos(Space& space, const LanczosOptions& opts, const OpContext& ctx) {
  const std::size_t n = space.dim();
  const std::size_t m = std::min(opts.steps, n);
  if (m == 0) return {};
  space.reserve(m + 1);
  detail::load_rademacher(space, 0, opts.seed, 0, 1.0 / std::sqrt(double(n)));
  space.scale(0, 1.0 / space.norm(0));  // exact unit length in the storage precision
  return lanczos(space, m, opts.seed, opts.reorth_passes, ctx);
}

}  // namespace nnscope::hessian
