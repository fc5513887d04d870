// nnscope core, hessian family: trace estimation.
//
// Hutchinson: samples vᵀA·v with v Rademacher (±1, unnormalised; sample s from
// Philox stream s), estimate = mean, std_error = sample std (n−1) / √s. Stops
// after min_samples once std_error ≤ max(abs_tol, rel_tol·|mean|), or when
// max_products samples are taken. With fewer than two samples std_error is +∞.
//
// Hutch++ (Meyer, Musco, Musco, Woodruff 2021) with budget P = max_products:
//   sketch k = min(P/3, n) Rademacher vectors s_i (streams 0..k-1); Q = orth(A·S),
//   built column by column with two CGS passes; a column whose norm drops below
//   sqrt(eps)·‖A·s_i‖ is dependent (rank deficiency) and dropped (unbiased: the
//   dropped direction stays in the Hutchinson part);
//   t = Σ_i q_iᵀA·q_i (r = rank products);
//   the remaining P − k − r products: g Rademacher (streams k.., disjoint),
//   g ← (I − QQᵀ)g (two passes), samples gᵀA·g; estimate t + mean(samples),
//   std_error from the samples. If Q spans the whole space the trace is exact
//   (no samples, std_error 0).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {
namespace {

struct Moments {
  double mean = 0, m2 = 0;
  std::size_t count = 0;
  void add(double x) {  // Welford
    ++count;
    const double d = x - mean;
    mean += d / double(count);
    m2 += d * (x - mean);
  }
  double std_error() const {
    if (count < 2) return std::numeric_limits<double>::infinity();
    return std::sqrt(m2 / double(count - 1)) / std::sqrt(double(count));
  }
};

TraceResult hutchinson(Space& s, const TraceOptions& o, const OpContext& ctx) {
  TraceResult R;
  s.reserve(2);
  const std::uint64_t p0 = s.products();
  Moments mo;
  for (std::size_t i = 0; i < o.max_products; ++i) {
    detail::load_rademacher(s, 0, o.seed, i, 1.0);
    s.apply(0, 1, ctx);
    const double x = s.dot(0, 1);
    R.samples.push_back(x);
    mo.add(x);
    ctx.report(double(i + 1), double(o.max_products));
    if (mo.count >= std::max<std::size_t>(o.min_samples, 2) &&
        mo.std_error() <= std::max(o.abs_tol, o.rel_tol * std::fabs(mo.mean))) {
      R.converged = true;
      break;
    }
  }
  R.estimate = mo.mean;
  R.std_error = mo.std_error();
  R.products = s.products() - p0;
  return R;
}

TraceResult hutch_plus_plus(Space& s, const TraceOptions& o, const OpContext& ctx) {
  TraceResult R;
  R.converged = true;
  const std::size_t n = s.dim();
  const std::size_t P = o.max_products;
  const std::size_t k = std::min(P / 3, n);
  s.reserve(k + 2);
  const std::size_t w0 = k, w1 = k + 1;  // work slots
  const std::uint64_t p0 = s.products();
  auto report = [&] { ctx.report(double(s.products() - p0), double(P)); };
  const double drop = std::sqrt(detail::storage_eps(s));
  // Sketch: Q = orth(A·S) in slots [0, r).
  std::size_t r = 0;
  for (std::size_t i = 0; i < k; ++i) {
    detail::load_rademacher(s, w0, o.seed, i, 1.0);
    s.apply(w0, r, ctx);  // slot r < k is free
    report();
    const double before = s.norm(r);
    s.orthogonalize(0, r, r, 2, nullptr);
    const double after = s.norm(r);
    if (before > 0 && after > drop * before && std::isfinite(after)) {
      s.scale(r, 1.0 / after);
      ++r;
    }
  }
  // Exact part: tr(QᵀAQ).
  double t = 0.0;
  for (std::size_t i = 0; i < r; ++i) {
    s.apply(i, w0, ctx);
    report();
    t += s.dot(i, w0);
  }
  Moments mo;
  if (r < n) {
    const std::size_t used = std::size_t(s.products() - p0);
    const std::size_t left = P > used ? P - used : 0;
    for (std::size_t i = 0; i < left; ++i) {
      detail::load_rademacher(s, w0, o.seed, k + i, 1.0);
      s.orthogonalize(0, r, w0, 2, nullptr);
      s.apply(w0, w1, ctx);
      report();
      const double x = s.dot(w0, w1);
      R.samples.push_back(x);
      mo.add(x);
    }
    R.std_error = mo.std_error();
  } else {
    R.std_error = 0.0;
  }
  R.estimate = t + mo.mean;
  R.products = s.products() - p0;
  return R;
}

}  // namespace

TraceResult trace(Space& space, const TraceOptions& o, const OpContext& ctx) {
  NNSCOPE_CHECK(o.max_products >= 1, ErrorCode::InvalidArgument, "trace: max_products must be ≥ 1");
  NNSCOPE_CHECK(o.rel_tol >= 0 && o.abs_tol >= 0 && !std::isnan(o.rel_tol) && !std::isnan(o.abs_tol),
                ErrorCode::InvalidArgument, "trace: tolerances must be ≥ 0");
  if (space.dim() == 0) {
    TraceResult R;
    R.converged = true;
    return R;
  }
  switch (o.method) {
    case TraceMethod::Hutchinson:
      return hutchinson(space, o, ctx);
    case TraceMethod::HutchPlusPlus:
      return hutch_plus_plus(space, o, ctx);
  }
  fail(ErrorCode::InvalidArgument, "trace: unknown method");
}

}  // namespace nnscope::hessian
