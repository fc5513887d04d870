// Tests of the hessian family's CPU core (hessian/space.h, operators.h,
// hessian.h): the host spaces, the tridiagonal and dense symmetric solvers,
// Lanczos, the thick-restart eigensolver, PyHessian's power iteration, Hutchinson
// and Hutch++ traces, stochastic Lanczos quadrature and the density grid.
//
// Oracles: closed forms (1-2-1 Toeplitz eigenvalues), a cyclic Jacobi eigensolver
// on dense matrices, matrices A = Q·diag(λ)·Qᵀ with known spectra (Q from a
// Householder QR of a Gaussian matrix, or a product of random reflectors for large
// n), exact quadrature identities, seeded statistical checks, and the dense
// Hessian of a small MLP assembled column by column with hvp64.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"
#include "hessian/operators.h"
#include "hessian/space.h"
#include "models/dataset.h"
#include "models/mlp.h"

using namespace nnscope;
using namespace nnscope::hessian;

namespace {

using Mat = std::vector<double>;  // row-major n×n

// ---------------------------------------------------------------- references
// Cyclic Jacobi eigen-decomposition of a dense symmetric matrix (the brute-force
// oracle). values ascending; vectors column j ↔ values[j].
void jacobi_eigen(std::size_t n, Mat a, std::vector<double>& values, Mat* vectors = nullptr) {
  Mat v(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, tot = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        tot += a[i * n + j] * a[i * n + j];
        if (i != j) off += a[i * n + j] * a[i * n + j];
      }
    if (off <= 1e-34 * tot || off == 0.0) break;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0.0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  std::sort(idx.begin(), idx.end(), [&](std::size_t x, std::size_t y) { return a[x * n + x] < a[y * n + y]; });
  values.resize(n);
  for (std::size_t j = 0; j < n; ++j) values[j] = a[idx[j] * n + idx[j]];
  if (vectors) {
    vectors->assign(n * n, 0.0);
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t j = 0; j < n; ++j) (*vectors)[k * n + j] = v[k * n + idx[j]];
  }
}

// Haar-ish random orthogonal Q (n×n) from a Householder QR of a Gaussian matrix.
Mat random_orthogonal(std::size_t n, std::uint64_t seed) {
  Mat g(n * n), q(n * n, 0.0);
  Rng(seed, 7).gaussian(g.data(), g.size());
  for (std::size_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  std::vector<double> u(n);
  for (std::size_t j = 0; j + 1 < n; ++j) {
    double norm = 0.0;
    for (std::size_t i = j; i < n; ++i) norm += g[i * n + j] * g[i * n + j];
    norm = std::sqrt(norm);
    const double x0 = g[j * n + j];
    for (std::size_t i = j; i < n; ++i) u[i] = g[i * n + j];
    u[j] = x0 + (x0 >= 0 ? norm : -norm);
    double un = 0.0;
    for (std::size_t i = j; i < n; ++i) un += u[i] * u[i];
    if (un == 0.0) continue;
    const double f = 2.0 / un;
    for (std::size_t c = j; c < n; ++c) {  // G ← H·G (rows j..n)
      double d = 0.0;
      for (std::size_t i = j; i < n; ++i) d += u[i] * g[i * n + c];
      d *= f;
      for (std::size_t i = j; i < n; ++i) g[i * n + c] -= d * u[i];
    }
    for (std::size_t r = 0; r < n; ++r) {  // Q ← Q·H
      double d = 0.0;
      for (std::size_t i = j; i < n; ++i) d += q[r * n + i] * u[i];
      d *= f;
      for (std::size_t i = j; i < n; ++i) q[r * n + i] -= d * u[i];
    }
  }
  return q;
}

// A = Q·diag(lambda)·Qᵀ with a random orthogonal Q.
Mat known_spectrum(const std::vector<double>& lambda, std::uint64_t seed) {
  const std::size_t n = lambda.size();
  const Mat q = random_orthogonal(n, seed);
  Mat a(n * n, 0.0);
  std::vector<double> row(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < n; ++k) row[k] = q[i * n + k] * lambda[k];
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = 0; k < n; ++k) s += row[k] * q[j * n + k];
      a[i * n + j] = a[j * n + i] = s;
    }
  }
  return a;
}

// A = H_r…H_1·diag(lambda)·H_1…H_r with r random Householder reflectors, O(r·n²):
// a dense matrix with a known spectrum for large n.
Mat reflected_spectrum(const std::vector<double>& lambda, int r, std::uint64_t seed) {
  const std::size_t n = lambda.size();
  Mat a(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) a[i * n + i] = lambda[i];
  std::vector<double> u(n), w(n);
  for (int h = 0; h < r; ++h) {
    Rng(seed, 100 + h).gaussian(u.data(), n);
    double un = 0.0;
    for (double x : u) un += x * x;
    for (double& x : u) x /= std::sqrt(un);
    // M ← (I − 2uuᵀ) M (I − 2uuᵀ) = M − 2u wᵀ − 2w uᵀ + 4(uᵀw) uuᵀ, w = M u.
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0.0;
      const double* ai = a.data() + i * n;
      for (std::size_t j = 0; j < n; ++j) s += ai[j] * u[j];
      w[i] = s;
    }
    double uw = 0.0;
    for (std::size_t i = 0; i < n; ++i) uw += u[i] * w[i];
    for (std::size_t i = 0; i < n; ++i) {
      double* ai = a.data() + i * n;
      const double ui = u[i], wi = w[i];
      for (std::size_t j = 0; j < n; ++j) ai[j] += -2.0 * ui * w[j] - 2.0 * wi * u[j] + 4.0 * uw * ui * u[j];
    }
  }
  // Exact symmetry (the update is symmetric up to rounding).
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j) a[j * n + i] = a[i * n + j];
  return a;
}

// y = A·x in double (reference).
std::vector<double> matvec(const Mat& a, const double* x, std::size_t n) {
  std::vector<double> y(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < n; ++j) s += a[i * n + j] * x[j];
    y[i] = s;
  }
  return y;
}
template <typename T>
std::vector<double> matvec(const std::vector<T>& a, const double* x, std::size_t n) {
  std::vector<double> y(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < n; ++j) s += double(a[i * n + j]) * x[j];
    y[i] = s;
  }
  return y;
}

double norm2(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// ‖A·v − λ·v‖ for the unit vector v (row q of vecs).
template <typename T>
double true_residual(const std::vector<T>& a, std::size_t n, const std::vector<double>& vecs, std::size_t q,
                     double lambda) {
  const double* v = vecs.data() + q * n;
  std::vector<double> y = matvec(a, v, n);
  for (std::size_t i = 0; i < n; ++i) y[i] -= lambda * v[i];
  return norm2(y);
}

// max |VᵀV − I| over the k×n row-major vectors.
double orthonormality_error(const std::vector<double>& vecs, std::size_t k, std::size_t n) {
  double e = 0.0;
  for (std::size_t a = 0; a < k; ++a)
    for (std::size_t b = 0; b <= a; ++b) {
      double s = 0.0;
      for (std::size_t i = 0; i < n; ++i) s += vecs[a * n + i] * vecs[b * n + i];
      e = std::max(e, std::fabs(s - (a == b ? 1.0 : 0.0)));
    }
  return e;
}

// The k wanted values of a spectrum, in eigsh's order.
std::vector<double> wanted(std::vector<double> lambda, Which which, std::size_t k) {
  if (which == Which::LargestAlgebraic) std::sort(lambda.begin(), lambda.end(), std::greater<double>());
  if (which == Which::SmallestAlgebraic) std::sort(lambda.begin(), lambda.end());
  if (which == Which::LargestMagnitude)
    std::sort(lambda.begin(), lambda.end(), [](double x, double y) {
      return std::fabs(x) != std::fabs(y) ? std::fabs(x) > std::fabs(y) : x > y;
    });
  lambda.resize(std::min(k, lambda.size()));
  return lambda;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// ---------------------------------------------------------------- operators
template <typename T>
struct DiagOp final : Operator<T> {
  std::vector<T> d;
  explicit DiagOp(std::vector<T> dd) : d(std::move(dd)) {}
  std::size_t dim() const override { return d.size(); }
  void apply(const T* x, T* y, const OpContext&) override {
    for (std::size_t i = 0; i < d.size(); ++i) y[i] = d[i] * x[i];
  }
};

// y = H·diag(λ)·H·x with H = I − 2uuᵀ (u unit), implicit, O(n): a non-diagonal
// operator with a known spectrum at any size.
template <typename T>
struct ReflectOp final : Operator<T> {
  std::vector<double> lambda, u;
  std::vector<double> t;
  ReflectOp(std::vector<double> l, std::uint64_t seed) : lambda(std::move(l)), u(lambda.size()), t(lambda.size()) {
    Rng(seed, 55).gaussian(u.data(), u.size());
    double s = 0.0;
    for (double x : u) s += x * x;
    for (double& x : u) x /= std::sqrt(s);
  }
  std::size_t dim() const override { return lambda.size(); }
  void apply(const T* x, T* y, const OpContext&) override {
    const std::size_t n = lambda.size();
    double d = 0.0;
    for (std::size_t i = 0; i < n; ++i) d += u[i] * double(x[i]);
    for (std::size_t i = 0; i < n; ++i) t[i] = lambda[i] * (double(x[i]) - 2.0 * d * u[i]);
    double e = 0.0;
    for (std::size_t i = 0; i < n; ++i) e += u[i] * t[i];
    for (std::size_t i = 0; i < n; ++i) y[i] = T(t[i] - 2.0 * e * u[i]);
  }
};

// Returns NaN (or Inf) at index 3 from product `bad_from` on.
struct BadOp final : Operator<double> {
  std::size_t n;
  int calls = 0, bad_from;
  double bad;
  BadOp(std::size_t nn, int from, double b) : n(nn), bad_from(from), bad(b) {}
  std::size_t dim() const override { return n; }
  void apply(const double* x, double* y, const OpContext&) override {
    for (std::size_t i = 0; i < n; ++i) y[i] = double(i + 1) * x[i];
    if (++calls >= bad_from) y[3] = bad;
  }
};

std::vector<double> bulk(std::size_t count, double lo, double hi, std::uint64_t seed) {
  std::vector<double> v(count);
  Rng(seed, 9).uniform(v.data(), count);
  for (double& x : v) x = lo + (hi - lo) * x;
  return v;
}

// Spectrum with separated extremes on both sides and a bulk in [-1, 2].
std::vector<double> test_spectrum(std::size_t n, std::uint64_t seed) {
  std::vector<double> top = {10.0, 9.0, 8.5, 8.0, 7.5}, bottom = {-5.0, -4.5, -4.0};
  std::vector<double> l;
  for (double x : top)
    if (l.size() < n) l.push_back(x);
  for (double x : bottom)
    if (l.size() < n) l.push_back(x);
  if (l.size() < n) {
    auto b = bulk(n - l.size(), -1.0, 2.0, seed);
    l.insert(l.end(), b.begin(), b.end());
  }
  return l;
}

std::vector<float> to_float(const Mat& a) { return std::vector<float>(a.begin(), a.end()); }

struct Threads {
  int before = num_threads();
  ~Threads() { set_num_threads(before); }
};

}  // namespace

// ============================================================== space

template <typename T>
void space_blas_case() {
  const std::size_t n = 70001, count = 37;  // crosses every chunk boundary
  std::vector<double> dvals(n);
  for (std::size_t i = 0; i < n; ++i) dvals[i] = 1.0 + double(i % 13);
  DiagOp<T> op(std::vector<T>(dvals.begin(), dvals.end()));
  auto sp = make_cpu_space(op);
  EXPECT_EQ(sp->dim(), n);
  EXPECT_EQ(sp->slots(), std::size_t(0));
  EXPECT(sp->single_precision() == (sizeof(T) == 4));
  sp->reserve(count + 4);
  EXPECT(sp->slots() >= count + 4);
  // Orthonormal block: random vectors orthonormalised by the space itself.
  std::vector<double> host(n), back(n);
  for (std::size_t j = 0; j < count; ++j) {
    Rng(11, j).gaussian(host.data(), n);
    sp->load(j, host.data());
    sp->orthogonalize(0, j, j, 2, nullptr);
    sp->scale(j, 1.0 / sp->norm(j));
  }
  const double tolv = sizeof(T) == 4 ? 1e-5 : 1e-13;
  for (std::size_t a = 0; a < count; a += 7)
    for (std::size_t b = 0; b < count; b += 5) EXPECT_NEAR(sp->dot(a, b), a == b ? 1.0 : 0.0, tolv);
  // load/store round trip (exact for values representable in T).
  Rng(12).rademacher(host.data(), n);
  sp->load(count, host.data());
  sp->store(count, back.data());
  EXPECT(host == back);
  // dot / norm / axpy / scale / copy against float64 references on stored values.
  Rng(13).gaussian(host.data(), n);
  sp->load(count + 1, host.data());
  std::vector<double> x(n), y(n);
  sp->store(count + 1, x.data());
  sp->store(count, y.data());
  double ref = 0.0, refn = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    ref += x[i] * y[i];
    refn += x[i] * x[i];
  }
  EXPECT_NEAR(sp->dot(count + 1, count), ref, 1e-10 * std::sqrt(refn * n));
  EXPECT_NEAR(sp->norm(count + 1), std::sqrt(refn), 1e-12 * std::sqrt(refn));
  sp->axpy(0.5, count + 1, count);
  sp->store(count, back.data());
  for (std::size_t i = 0; i < n; i += 997) EXPECT_NEAR(back[i], y[i] + 0.5 * x[i], 1e-6 * (1 + std::fabs(y[i])));
  sp->copy(count + 1, count + 2);
  sp->scale(count + 2, -2.0);
  sp->store(count + 2, back.data());
  for (std::size_t i = 0; i < n; i += 997) EXPECT_EQ(back[i], -2.0 * x[i]);
  // orthogonalize: y ⟂ block, coefficients = Vᵀy (summed over passes).
  sp->load(count + 3, host.data());
  std::vector<double> c(count), vj(n);
  std::vector<double> cref(count);
  for (std::size_t j = 0; j < count; ++j) {
    sp->store(j, vj.data());
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += vj[i] * x[i];
    cref[j] = s;
  }
  sp->orthogonalize(0, count, count + 3, 2, c.data());
  for (std::size_t j = 0; j < count; ++j) {
    EXPECT_NEAR(c[j], cref[j], (sizeof(T) == 4 ? 1e-4 : 1e-10) * std::sqrt(refn));
    EXPECT(std::fabs(sp->dot(j, count + 3)) <= tolv * std::sqrt(refn) * 1e-1);
  }
  // combine: slot[dst+i] = Σ_j V_j·Y[j,i].
  const std::size_t k = 3;
  std::vector<double> Y(count * k);
  Rng(14).gaussian(Y.data(), Y.size());
  sp->reserve(count + 4 + k);
  sp->combine(0, count, Y.data(), k, count + 4);
  std::vector<double> vall(count * n);
  for (std::size_t j = 0; j < count; ++j) sp->store(j, vall.data() + j * n);
  for (std::size_t i = 0; i < k; ++i) {
    sp->store(count + 4 + i, back.data());
    for (std::size_t e = 0; e < n; e += 1009) {
      double s = 0.0;
      for (std::size_t j = 0; j < count; ++j) s += vall[j * n + e] * Y[j * k + i];
      EXPECT_NEAR(back[e], s, sizeof(T) == 4 ? 1e-5 : 1e-13);
    }
  }
  // apply counts products; reserve keeps contents.
  const auto p = sp->products();
  sp->apply(count + 1, count + 2, {});
  EXPECT_EQ(sp->products(), p + 1);
  sp->store(count + 2, back.data());
  for (std::size_t i = 0; i < n; i += 991) EXPECT_NEAR(back[i], dvals[i] * x[i], 1e-6 * std::fabs(dvals[i] * x[i]) + 1e-30);
  sp->store(count + 1, y.data());
  sp->reserve(2 * count + 10);
  sp->store(count + 1, back.data());
  EXPECT(y == back);
  // Misuse: slots out of range, overlapping blocks, apply in place.
  EXPECT_THROWS_CODE(sp->dot(0, 10000), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(sp->apply(1, 1, {}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(sp->orthogonalize(0, 5, 2, 2, nullptr), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(sp->combine(0, 5, Y.data(), 3, 4), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(space_cpu_double) { space_blas_case<double>(); }
NNSCOPE_TEST(space_cpu_float) { space_blas_case<float>(); }

NNSCOPE_TEST(space_apply_nonfinite_names_product) {
  BadOp op(10, 3, std::numeric_limits<double>::quiet_NaN());
  auto sp = make_cpu_space(op);
  sp->reserve(2);
  std::vector<double> x(10, 1.0);
  sp->load(0, x.data());
  sp->apply(0, 1, {});
  sp->apply(0, 1, {});
  try {
    sp->apply(0, 1, {});
    throw test::Failure("expected NonFinite");
  } catch (const Error& e) {
    EXPECT(e.code() == ErrorCode::NonFinite);
    const std::string msg = e.what();
    EXPECT(msg.find("product #3") != std::string::npos);
    EXPECT(msg.find("NaN") != std::string::npos);
  }
  BadOp inf(10, 1, std::numeric_limits<double>::infinity());
  auto s2 = make_cpu_space(inf);
  s2->reserve(2);
  s2->load(0, x.data());
  EXPECT_THROWS_CODE(s2->apply(0, 1, {}), ErrorCode::NonFinite);
}

NNSCOPE_TEST(dense_operator_and_asymmetry) {
  const std::size_t n = 301;
  Mat a = known_spectrum(bulk(n, -1, 1, 3), 4);
  std::vector<float> af = to_float(a);
  std::vector<double> x(n), y(n);
  Rng(5).gaussian(x.data(), n);
  DenseOperator<double> op(a.data(), n);
  op.apply(x.data(), y.data(), {});
  const auto ref = matvec(a, x.data(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], ref[i], 1e-13);
  std::vector<float> xf(x.begin(), x.end()), yf(n);
  DenseOperator<float> opf(af.data(), n);
  opf.apply(xf.data(), yf.data(), {});
  std::vector<double> xd(xf.begin(), xf.end());
  const auto reff = matvec(af, xd.data(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(yf[i], reff[i], 1e-6 * (1 + std::fabs(reff[i])));
  EXPECT(asymmetry(a.data(), n) < 1e-15);
  a[3 * n + 7] += 0.5;
  EXPECT_NEAR(asymmetry(a.data(), n), 0.5, 1e-9);
  a[5] = std::numeric_limits<double>::quiet_NaN();
  EXPECT(std::isnan(asymmetry(a.data(), n)));
  EXPECT(asymmetry(af.data(), n) < 1e-7);
}

// ============================================================== tridiagonal

namespace {
// Dense form of the tridiagonal and a full check of a decomposition.
void check_tridiagonal(std::size_t n, const std::vector<double>& al, const std::vector<double>& be, double tol) {
  Mat t(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) t[i * n + i] = al[i];
  for (std::size_t i = 0; i + 1 < n; ++i) t[i * n + i + 1] = t[(i + 1) * n + i] = be[i];
  std::vector<double> ref;
  jacobi_eigen(n, t, ref);
  std::vector<double> vals(n), vals2(n), vec(n * n);
  tridiagonal_eigen(n, al.data(), be.data(), vals.data(), vec.data());
  tridiagonal_eigen(n, al.data(), be.data(), vals2.data(), nullptr);
  const double scale = std::max(1.0, max_abs(ref));
  for (std::size_t j = 0; j < n; ++j) {
    EXPECT_NEAR(vals[j], ref[j], tol * scale);
    EXPECT_NEAR(vals2[j], vals[j], tol * scale);
    if (j) EXPECT(vals[j] >= vals[j - 1]);
  }
  // T·V = V·Λ and VᵀV = I.
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < n; ++i) {
      double s = al[i] * vec[i * n + j];
      if (i > 0) s += be[i - 1] * vec[(i - 1) * n + j];
      if (i + 1 < n) s += be[i] * vec[(i + 1) * n + j];
      EXPECT_NEAR(s, vals[j] * vec[i * n + j], tol * scale);
    }
    for (std::size_t k = 0; k <= j; ++k) {
      double s = 0.0;
      for (std::size_t i = 0; i < n; ++i) s += vec[i * n + j] * vec[i * n + k];
      EXPECT_NEAR(s, j == k ? 1.0 : 0.0, 1e-13 * std::sqrt(double(n)) + 1e-14);
    }
  }
}
}  // namespace

NNSCOPE_TEST(tridiagonal_small_and_closed_form) {
  tridiagonal_eigen(0, nullptr, nullptr, nullptr, nullptr);  // n = 0
  {
    double a = -2.5, v, vec;
    tridiagonal_eigen(1, &a, nullptr, &v, &vec);
    EXPECT_EQ(v, -2.5);
    EXPECT_EQ(vec, 1.0);
  }
  {
    // [[2, 1], [1, 2]]: 1 and 3.
    const double al[2] = {2, 2}, be[1] = {1};
    double v[2], z[4];
    tridiagonal_eigen(2, al, be, v, z);
    EXPECT_NEAR(v[0], 1.0, 1e-15);
    EXPECT_NEAR(v[1], 3.0, 1e-15);
    EXPECT_NEAR(std::fabs(z[0]), std::sqrt(0.5), 1e-15);
    EXPECT_NEAR(z[0] * z[1] + z[2] * z[3], 0.0, 1e-15);
  }
  // 1-2-1 Toeplitz (α = 2, β = −1): 2 − 2cos(kπ/(n+1)).
  for (std::size_t n : {3, 10, 64, 500}) {
    std::vector<double> al(n, 2.0), be(n - 1, -1.0), v(n), z(n * n);
    tridiagonal_eigen(n, al.data(), be.data(), v.data(), z.data());
    for (std::size_t k = 1; k <= n; ++k)
      EXPECT_NEAR(v[k - 1], 2.0 - 2.0 * std::cos(double(k) * M_PI / double(n + 1)), 2e-14 * 4);
    if (n <= 64) check_tridiagonal(n, al, be, 1e-13);  // Jacobi oracle and T·V = V·Λ
  }
}

NNSCOPE_TEST(tridiagonal_splits_repeats_and_ranges) {
  // Zero off-diagonals: the diagonal, sorted.
  {
    std::vector<double> al = {3, -1, 7, 0, 2}, be(4, 0.0), v(5);
    tridiagonal_eigen(5, al.data(), be.data(), v.data(), nullptr);
    std::vector<double> s = al;
    std::sort(s.begin(), s.end());
    for (int i = 0; i < 5; ++i) EXPECT_EQ(v[i], s[i]);
    check_tridiagonal(5, al, be, 1e-15);
  }
  // Two identical blocks split by a zero: every eigenvalue doubled.
  {
    std::vector<double> al = {2, 2, 2, 2, 2, 2}, be = {-1, -1, 0, -1, -1};
    std::vector<double> v(6);
    tridiagonal_eigen(6, al.data(), be.data(), v.data(), nullptr);
    for (int k = 0; k < 3; ++k) {
      const double want = 2.0 - 2.0 * std::cos(double(k + 1) * M_PI / 4.0);
      EXPECT_NEAR(v[2 * k], want, 1e-14);
      EXPECT_NEAR(v[2 * k + 1], want, 1e-14);
    }
    check_tridiagonal(6, al, be, 1e-13);
  }
  // Wilkinson W21+ (pairs of nearly equal eigenvalues) and constant diagonal.
  {
    std::vector<double> al(21), be(20, 1.0);
    for (int i = 0; i < 21; ++i) al[i] = std::fabs(10.0 - i);
    check_tridiagonal(21, al, be, 1e-13);
    std::vector<double> c(30, 4.0), cb(29, 0.0);
    cb[10] = 1e-300;  // tiny coupling
    check_tridiagonal(30, c, cb, 1e-15);
  }
  // Wide magnitude ranges and random tridiagonals.
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    const std::size_t n = 5 + 19 * seed;
    std::vector<double> al(n), be(n - 1);
    Rng(seed, 1).gaussian(al.data(), n);
    Rng(seed, 2).gaussian(be.data(), n - 1);
    if (seed % 2) {
      for (std::size_t i = 0; i < n; ++i) al[i] *= std::pow(10.0, double(i % 17) - 8.0);
      for (std::size_t i = 0; i + 1 < n; ++i) be[i] *= std::pow(10.0, double((i * 7) % 13) - 9.0);
    }
    check_tridiagonal(n, al, be, 1e-13);
  }
  // Huge and tiny scales.
  {
    std::vector<double> al = {1e150, -3e149, 2e150, 5e149}, be = {1e149, 2e150, -7e148};
    check_tridiagonal(4, al, be, 1e-13);
    std::vector<double> al2 = {1e-150, -3e-151, 2e-150}, be2 = {1e-151, 2e-150};
    std::vector<double> v(3);
    tridiagonal_eigen(3, al2.data(), be2.data(), v.data(), nullptr);
    Mat t = {1e-150, 1e-151, 0, 1e-151, -3e-151, 2e-150, 0, 2e-150, 2e-150};
    std::vector<double> ref;
    jacobi_eigen(3, t, ref);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(v[i], ref[i], 1e-13 * 3e-150);
  }
}

NNSCOPE_TEST(tridiagonal_nonfinite) {
  std::vector<double> al = {1, 2, 3}, be = {1, 1}, v(3);
  al[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROWS_CODE(tridiagonal_eigen(3, al.data(), be.data(), v.data(), nullptr), ErrorCode::NonFinite);
  al[1] = 2;
  be[0] = std::numeric_limits<double>::infinity();
  EXPECT_THROWS_CODE(tridiagonal_eigen(3, al.data(), be.data(), v.data(), nullptr), ErrorCode::NonFinite);
}

NNSCOPE_TEST(dense_symmetric_solver) {
  for (std::size_t n : {1, 2, 7, 40}) {
    Mat a(n * n);
    Rng(n, 3).gaussian(a.data(), a.size());
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < i; ++j) a[j * n + i] = a[i * n + j];
    // An arrowhead block as thick restart produces.
    if (n > 5)
      for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 4; ++j)
          if (i != j) a[i * n + j] = 0.0;
    std::vector<double> ref, v(n), z(n * n);
    jacobi_eigen(n, a, ref);
    detail::symmetric_eigen(n, a.data(), v.data(), z.data());
    for (std::size_t j = 0; j < n; ++j) {
      EXPECT_NEAR(v[j], ref[j], 1e-13 * std::max(1.0, max_abs(ref)));
      const std::vector<double> col = [&] {
        std::vector<double> c(n);
        for (std::size_t i = 0; i < n; ++i) c[i] = z[i * n + j];
        return c;
      }();
      const auto ac = matvec(a, col.data(), n);
      for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(ac[i], v[j] * col[i], 1e-12 * std::max(1.0, max_abs(ref)));
    }
  }
}

// ============================================================== Lanczos

NNSCOPE_TEST(lanczos_full_space_reproduces_spectrum) {
  const std::size_t n = 60;
  const auto lambda = test_spectrum(n, 21);
  Mat a = known_spectrum(lambda, 22);
  DenseOperator<double> op(a.data(), n);
  auto sp = make_cpu_space(op);
  LanczosOptions lo;
  lo.steps = 1000;  // clamped to n
  lo.seed = 5;
  const LanczosResult r = lanczos(*sp, lo, {});
  EXPECT_EQ(r.alpha.size(), n);
  EXPECT_EQ(r.beta.size(), n - 1);
  EXPECT_EQ(r.products, std::uint64_t(n));
  std::vector<double> v(n);
  tridiagonal_eigen(n, r.alpha.data(), r.beta.data(), v.data(), nullptr);
  std::vector<double> s = lambda;
  std::sort(s.begin(), s.end());
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(v[i], s[i], 1e-12 * 10);
  // The basis is orthonormal and VᵀAV = T.
  std::vector<double> V(n * n);
  for (std::size_t j = 0; j < n; ++j) sp->store(j, V.data() + j * n);
  EXPECT(orthonormality_error(V, n, n) < 1e-13);
  for (std::size_t i = 0; i < n; i += 3) {
    const auto av = matvec(a, V.data() + i * n, n);
    for (std::size_t j = 0; j < n; ++j) {
      double s2 = 0.0;
      for (std::size_t e = 0; e < n; ++e) s2 += V[j * n + e] * av[e];
      const double want = i == j ? r.alpha[i] : (j == i + 1 ? r.beta[i] : (i == j + 1 ? r.beta[j] : 0.0));
      EXPECT_NEAR(s2, want, 1e-12 * 10);
    }
  }
  // The options overload is the plain overload on a Rademacher/√n start in slot 0.
  auto sp2 = make_cpu_space(op);
  sp2->reserve(1);
  std::vector<double> v0(n);
  Rng(5, 0).rademacher(v0.data(), n);
  for (double& x : v0) x /= std::sqrt(double(n));
  sp2->load(0, v0.data());
  sp2->scale(0, 1.0 / sp2->norm(0));
  const LanczosResult r2 = lanczos(*sp2, n, 5, 2, {});
  EXPECT(r2.alpha == r.alpha && r2.beta == r.beta);
}

NNSCOPE_TEST(lanczos_rank_one_diagonal_repeats_n1) {
  // Rank one: 7·uuᵀ. The Krylov space is 2-dimensional: breakdowns restart.
  {
    const std::size_t n = 30;
    std::vector<double> u(n);
    Rng(3).gaussian(u.data(), n);
    const double un = norm2(u);
    Mat a(n * n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) a[i * n + j] = 7.0 * u[i] * u[j] / (un * un);
    DenseOperator<double> op(a.data(), n);
    auto sp = make_cpu_space(op);
    LanczosOptions lo;
    lo.steps = n;
    const LanczosResult r = lanczos(*sp, lo, {});
    EXPECT(r.restarts >= 1);
    EXPECT_EQ(r.beta[1], 0.0);
    std::vector<double> v(n);
    tridiagonal_eigen(n, r.alpha.data(), r.beta.data(), v.data(), nullptr);
    EXPECT_NEAR(v[n - 1], 7.0, 1e-13);
    for (std::size_t i = 0; i + 1 < n; ++i) EXPECT_NEAR(v[i], 0.0, 1e-13);
    std::vector<double> V(n * n);
    for (std::size_t j = 0; j < n; ++j) sp->store(j, V.data() + j * n);
    EXPECT(orthonormality_error(V, n, n) < 1e-13);
  }
  // Diagonal with repeats: m = #distinct gives the distinct entries; m = n gives all.
  {
    const std::vector<double> distinct = {1, 2, 3, 5, 8};
    std::vector<double> d;
    for (int rep = 0; rep < 8; ++rep)
      for (double x : distinct) d.push_back(x);
    const std::size_t n = d.size();
    DiagOp<double> op(d);
    auto sp = make_cpu_space(op);
    LanczosOptions lo;
    lo.steps = distinct.size();
    lo.seed = 9;
    LanczosResult r = lanczos(*sp, lo, {});
    std::vector<double> v(n);
    tridiagonal_eigen(r.alpha.size(), r.alpha.data(), r.beta.data(), v.data(), nullptr);
    for (std::size_t i = 0; i < distinct.size(); ++i) EXPECT_NEAR(v[i], distinct[i], 1e-13);
    lo.steps = n;
    auto sp2 = make_cpu_space(op);
    r = lanczos(*sp2, lo, {});
    EXPECT(r.restarts >= 7);
    tridiagonal_eigen(n, r.alpha.data(), r.beta.data(), v.data(), nullptr);
    std::vector<double> s = d;
    std::sort(s.begin(), s.end());
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(v[i], s[i], 1e-12);
    // float storage: the distinct entries too.
    DiagOp<float> opf(std::vector<float>(d.begin(), d.end()));
    auto spf = make_cpu_space(opf);
    lo.steps = distinct.size();
    r = lanczos(*spf, lo, {});
    tridiagonal_eigen(r.alpha.size(), r.alpha.data(), r.beta.data(), v.data(), nullptr);
    for (std::size_t i = 0; i < distinct.size(); ++i) EXPECT_NEAR(v[i], distinct[i], 1e-5);
  }
  // n = 1.
  {
    DiagOp<double> op({-4.0});
    auto sp = make_cpu_space(op);
    const LanczosResult r = lanczos(*sp, LanczosOptions{}, {});
    EXPECT_EQ(r.alpha.size(), std::size_t(1));
    EXPECT(r.beta.empty());
    EXPECT_EQ(r.alpha[0], -4.0);
    EXPECT_EQ(r.products, std::uint64_t(1));
  }
  // The zero matrix: every step breaks down, T = 0.
  {
    DiagOp<double> op(std::vector<double>(12, 0.0));
    auto sp = make_cpu_space(op);
    LanczosOptions lo;
    lo.steps = 12;
    const LanczosResult r = lanczos(*sp, lo, {});
    EXPECT_EQ(r.restarts, std::size_t(11));
    for (double x : r.alpha) EXPECT_EQ(x, 0.0);
  }
}

NNSCOPE_TEST(lanczos_keeps_orthogonality_no_ghosts) {
  // Isolated top eigenvalues converge early, which is where plain Lanczos loses
  // orthogonality and produces ghost copies; with full reorthogonalisation the basis
  // stays orthonormal and T has each eigenvalue once.
  const std::size_t n = 2000, m = 160;
  const auto lambda = test_spectrum(n, 4);
  ReflectOp<double> op(lambda, 8);
  ReflectOp<float> opf(lambda, 8);
  LanczosOptions lo;
  lo.steps = m;
  auto top_of = [&](const LanczosResult& r) {
    std::vector<double> v(r.alpha.size());
    tridiagonal_eigen(v.size(), r.alpha.data(), r.beta.data(), v.data(), nullptr);
    std::sort(v.begin(), v.end(), std::greater<double>());
    return v;
  };
  auto sp = make_cpu_space(op);
  const LanczosResult r = lanczos(*sp, lo, {});
  std::vector<double> V(m * n);
  for (std::size_t j = 0; j < m; ++j) sp->store(j, V.data() + j * n);
  EXPECT(orthonormality_error(V, m, n) < 1e-13);
  const auto t = top_of(r);
  const std::vector<double> want = {10, 9, 8.5, 8, 7.5};
  for (int q = 0; q < 5; ++q) EXPECT_NEAR(t[q], want[q], 1e-12);
  EXPECT(t[5] < 2.0 + 1e-9);  // the next is in the bulk: no ghost of 7.5 … 10
  auto spf = make_cpu_space(opf);
  const LanczosResult rf = lanczos(*spf, lo, {});
  for (std::size_t j = 0; j < m; ++j) spf->store(j, V.data() + j * n);
  EXPECT(orthonormality_error(V, m, n) < 1e-5);
  const auto tf = top_of(rf);
  for (int q = 0; q < 5; ++q) EXPECT_NEAR(tf[q], want[q], 1e-5 * 10);
  EXPECT(tf[5] < 2.0 + 1e-4);
  // The same without reorthogonalisation: ghosts (this test can fail).
  lo.reorth_passes = 0;
  auto sp0 = make_cpu_space(op);
  const auto t0 = top_of(lanczos(*sp0, lo, {}));
  EXPECT(std::fabs(t0[1] - 10.0) < 1e-6);  // a second copy of 10
  // Contract: the plain overload wants a unit vector in slot 0.
  auto sp1 = make_cpu_space(op);
  EXPECT_THROWS_CODE(lanczos(*sp1, 5, 0, 2, {}), ErrorCode::InvalidArgument);
  sp1->reserve(1);
  EXPECT_THROWS_CODE(lanczos(*sp1, 5, 0, 2, {}), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(lanczos_without_reorth_matches_early_steps) {
  const std::size_t n = 200;
  Mat a = known_spectrum(test_spectrum(n, 2), 3);
  DenseOperator<double> op(a.data(), n);
  auto s1 = make_cpu_space(op), s2 = make_cpu_space(op);
  LanczosOptions lo;
  lo.steps = 6;
  const LanczosResult r1 = lanczos(*s1, lo, {});
  lo.reorth_passes = 0;
  const LanczosResult r0 = lanczos(*s2, lo, {});
  for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(r0.alpha[i], r1.alpha[i], 1e-11);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_NEAR(r0.beta[i], r1.beta[i], 1e-11);
}

// ============================================================== eigsh

namespace {
template <typename T>
void check_eigsh(const std::vector<T>& a, const std::vector<double>& lambda, Which which, std::size_t k,
                 double value_tol, std::uint64_t seed, std::size_t basis = 0) {
  const std::size_t n = lambda.size();
  DenseOperator<T> op(a.data(), n);
  auto sp = make_cpu_space(op);
  EigOptions o;
  o.k = k;
  o.which = which;
  o.seed = seed;
  o.basis = basis;
  const EigResult r = eigsh(*sp, o, {});
  const auto want = wanted(lambda, which, k);
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-10;
  const double anorm = max_abs(lambda);
  if (!r.converged) throw test::Failure("eigsh did not converge: n=" + std::to_string(n));
  EXPECT_EQ(r.values.size(), want.size());
  EXPECT_EQ(r.products, sp->products());
  for (std::size_t q = 0; q < want.size(); ++q) {
    if (!(std::fabs(r.values[q] - want[q]) <= value_tol * std::max(std::fabs(want[q]), 1e-3 * anorm)))
      throw test::Failure("eigsh value " + std::to_string(q) + ": " + std::to_string(r.values[q]) + " vs " +
                          std::to_string(want[q]) + " (n=" + std::to_string(n) + ")");
    const double res = true_residual(a, n, r.vectors, q, r.values[q]);
    const double bound = tol * std::max(std::fabs(r.values[q]), 1e-3 * anorm);
    if (!(res <= bound))
      throw test::Failure("eigsh residual " + std::to_string(res) + " > " + std::to_string(bound));
    EXPECT(r.residuals[q] <= bound);
  }
  EXPECT(orthonormality_error(r.vectors, want.size(), n) < (sizeof(T) == 4 ? 1e-5 : 1e-12));
}
}  // namespace

NNSCOPE_TEST(eigsh_known_spectra_float64) {
  for (std::size_t n : {10, 37, 120, 300}) {
    const auto lambda = test_spectrum(n, n);
    const Mat a = known_spectrum(lambda, n + 1);
    check_eigsh(a, lambda, Which::LargestAlgebraic, 5, 1e-8, 1);
    check_eigsh(a, lambda, Which::SmallestAlgebraic, 3, 1e-8, 2);
    check_eigsh(a, lambda, Which::LargestMagnitude, 4, 1e-8, 3);
    check_eigsh(a, lambda, Which::LargestAlgebraic, 1, 1e-8, 4);
  }
}

NNSCOPE_TEST(eigsh_known_spectra_float32) {
  for (std::size_t n : {10, 120, 300}) {
    const auto lambda = test_spectrum(n, n);
    const std::vector<float> a = to_float(known_spectrum(lambda, n + 1));
    check_eigsh(a, lambda, Which::LargestAlgebraic, 5, 1e-5, 1);
    check_eigsh(a, lambda, Which::SmallestAlgebraic, 3, 1e-5, 2);
    check_eigsh(a, lambda, Which::LargestMagnitude, 4, 1e-5, 3);
  }
}

NNSCOPE_TEST(eigsh_large_dense_5000) {
  const std::size_t n = 5000;
  std::vector<double> lambda = {20, 18, 16, 15, 14};
  const auto b = bulk(n - lambda.size(), -2.0, 10.0, 77);
  lambda.insert(lambda.end(), b.begin(), b.end());
  Mat a = reflected_spectrum(lambda, 3, 78);
  check_eigsh(a, lambda, Which::LargestAlgebraic, 5, 1e-8, 1);
  const std::vector<float> af = to_float(a);
  Mat().swap(a);
  check_eigsh(af, lambda, Which::LargestAlgebraic, 5, 1e-5, 1);
}

NNSCOPE_TEST(eigsh_clusters_and_repeats) {
  // Near-equal eigenvalues are resolved: 3, 3 + 1e-6, 3 + 2e-6 on top.
  {
    const std::size_t n = 150;
    std::vector<double> lambda = {3.0 + 2e-6, 3.0 + 1e-6, 3.0, 2.0};
    const auto b = bulk(n - lambda.size(), -1.0, 1.0, 5);
    lambda.insert(lambda.end(), b.begin(), b.end());
    const Mat a = known_spectrum(lambda, 6);
    check_eigsh(a, lambda, Which::LargestAlgebraic, 3, 1e-8, 1);
  }
  // Exact repeats (5, 5, 5) with n > basis: 5 is found at least once, and every
  // returned value is an eigenvalue (within tolerance) with a small residual.
  {
    const std::size_t n = 100;
    std::vector<double> lambda = {5, 5, 5, 4, 3.5};
    const auto b = bulk(n - lambda.size(), -1.0, 1.0, 7);
    lambda.insert(lambda.end(), b.begin(), b.end());
    const Mat a = known_spectrum(lambda, 8);
    DenseOperator<double> op(a.data(), n);
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 3;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT(r.converged);
    EXPECT_NEAR(r.values[0], 5.0, 1e-9);
    for (std::size_t q = 0; q < r.values.size(); ++q) {
      double best = 1e300;
      for (double l : lambda) best = std::min(best, std::fabs(l - r.values[q]));
      EXPECT(best <= 1e-8 * 5.0);
      EXPECT(true_residual(a, n, r.vectors, q, r.values[q]) <= 1e-9);
    }
    EXPECT(orthonormality_error(r.vectors, r.values.size(), n) < 1e-12);
  }
  // n ≤ basis: the Krylov space (with breakdown restarts) exhausts the space, so
  // the multiplicity is exact.
  {
    std::vector<double> lambda = {5, 5, 5, 4, 1, 1, 0.5, -2, -2, 3};
    const Mat a = known_spectrum(lambda, 9);
    check_eigsh(a, lambda, Which::LargestAlgebraic, 4, 1e-10, 1);
    check_eigsh(a, lambda, Which::SmallestAlgebraic, 3, 1e-10, 1);
    DiagOp<double> dop(lambda);
    auto sp = make_cpu_space(dop);
    EigOptions o;
    o.k = 5;
    const EigResult r = eigsh(*sp, o, {});
    const std::vector<double> want = {5, 5, 5, 4, 3};
    for (int q = 0; q < 5; ++q) EXPECT_NEAR(r.values[q], want[q], 1e-12);
  }
}

NNSCOPE_TEST(eigsh_rank_one_diagonal_n1_k_clamped) {
  // Rank one (n > basis): 7, then zeros; every step after the second breaks down.
  {
    const std::size_t n = 80;
    std::vector<double> u(n);
    Rng(31).gaussian(u.data(), n);
    const double un = norm2(u);
    Mat a(n * n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) a[i * n + j] = 7.0 * u[i] * u[j] / (un * un);
    DenseOperator<double> op(a.data(), n);
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 3;
    EigResult r = eigsh(*sp, o, {});
    EXPECT(r.converged);
    EXPECT_NEAR(r.values[0], 7.0, 1e-12);
    EXPECT_NEAR(r.values[1], 0.0, 1e-12);
    EXPECT_NEAR(r.values[2], 0.0, 1e-12);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(std::fabs(r.vectors[i]), std::fabs(u[i]) / un, 1e-10);
    o.which = Which::SmallestAlgebraic;
    o.k = 1;
    auto sp2 = make_cpu_space(op);
    r = eigsh(*sp2, o, {});
    EXPECT_NEAR(r.values[0], 0.0, 1e-12);
  }
  // A diagonal operator (n ≫ basis, distinct well-separated top).
  {
    std::vector<double> d(2000);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = double(i) / 2000.0;
    d[17] = 3;
    d[900] = 2.5;
    d[1500] = -2;
    DiagOp<double> op(d);
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 2;
    o.which = Which::LargestMagnitude;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT(r.converged);
    EXPECT_NEAR(r.values[0], 3.0, 1e-10);
    EXPECT_NEAR(r.values[1], 2.5, 1e-10);
    EXPECT_NEAR(std::fabs(r.vectors[17]), 1.0, 1e-9);
  }
  // n = 1, k clamped.
  {
    DiagOp<double> op({2.5});
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 4;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT_EQ(r.values.size(), std::size_t(1));
    EXPECT_EQ(r.values[0], 2.5);
    EXPECT_NEAR(std::fabs(r.vectors[0]), 1.0, 1e-15);
    EXPECT(r.converged);
  }
  // k > n: all eigenvalues in order.
  {
    std::vector<double> lambda = {1, -3, 2, 0.5};
    const Mat a = known_spectrum(lambda, 3);
    DenseOperator<double> op(a.data(), 4);
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 10;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT_EQ(r.values.size(), std::size_t(4));
    const std::vector<double> want = {2, 1, 0.5, -3};
    for (int q = 0; q < 4; ++q) EXPECT_NEAR(r.values[q], want[q], 1e-13);
  }
}

NNSCOPE_TEST(eigsh_budget_and_validation) {
  const std::size_t n = 400;
  std::vector<double> lambda(n);  // slow convergence: gaps of 1e-3 at the top
  for (std::size_t i = 0; i < n; ++i) lambda[i] = 1.0 - 1e-3 * double(i);
  DiagOp<double> op(lambda);
  auto sp = make_cpu_space(op);
  EigOptions o;
  o.k = 3;
  o.tol = 1e-14;
  o.max_products = 30;  // basis 20: one cycle and a partial one
  const EigResult r = eigsh(*sp, o, {});
  EXPECT(!r.converged);
  EXPECT_EQ(r.products, std::uint64_t(30));
  EXPECT_EQ(r.values.size(), std::size_t(3));
  EXPECT(r.restarts >= 1);
  o.tol = -1;
  EXPECT_THROWS_CODE(eigsh(*sp, o, {}), ErrorCode::InvalidArgument);
  // Without vectors.
  o.tol = 0;
  o.max_products = 0;
  o.vectors = false;
  auto sp2 = make_cpu_space(op);
  const EigResult r2 = eigsh(*sp2, o, {});
  EXPECT(r2.vectors.empty());
  EXPECT_NEAR(r2.values[0], 1.0, 1e-9);
}

// ============================================================== power iteration

NNSCOPE_TEST(power_iteration_pyhessian) {
  const std::size_t n = 50;
  std::vector<double> lambda = {10, -8, 6};
  const auto b = bulk(n - 3, -2, 2, 4);
  lambda.insert(lambda.end(), b.begin(), b.end());
  const Mat a = known_spectrum(lambda, 5);
  DenseOperator<double> op(a.data(), n);
  // Accuracy with a tight tolerance: largest |λ| first (the negative one included).
  {
    auto sp = make_cpu_space(op);
    PowerOptions po;
    po.k = 3;
    po.tol = 1e-12;
    po.max_iter = 2000;
    const EigResult r = power_iteration(*sp, po, {});
    EXPECT(r.converged);
    const std::vector<double> want = {10, -8, 6};
    // PyHessian's normalisation v/(‖v‖ + 1e-6) shrinks the unit vector by ≈ 1e-6,
    // so λ̂ = ⟨Hv, v⟩ carries a relative bias of ≈ −2e-6 (parity, kept).
    for (int q = 0; q < 3; ++q) {
      EXPECT_NEAR(r.values[q], want[q], 3e-6 * std::fabs(want[q]));
      EXPECT_NEAR(r.residuals[q], true_residual(a, n, r.vectors, q, r.values[q]), 1e-12);
      EXPECT(r.residuals[q] < 1e-4 * 10);
    }
    EXPECT(orthonormality_error(r.vectors, 3, n) < 1e-5);
  }
  // Parity: the same loop written out (PyHessian's hessian.eigenvalues) on the same
  // Gaussian start vectors gives the same values and the same number of products.
  {
    auto sp = make_cpu_space(op);
    PowerOptions po;
    po.k = 2;
    po.seed = 3;
    const EigResult r = power_iteration(*sp, po, {});
    std::vector<std::vector<double>> found;
    std::uint64_t products = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      std::vector<double> v(n);
      Rng(3, i).gaussian(v.data(), n);
      double eig = 0;
      bool have = false;
      for (std::size_t it = 0; it < po.max_iter; ++it) {
        for (auto& w : found) {
          double d = 0;
          for (std::size_t e = 0; e < n; ++e) d += v[e] * w[e];
          for (std::size_t e = 0; e < n; ++e) v[e] -= d * w[e];
        }
        double nv = norm2(v) + 1e-6;
        for (double& x : v) x /= nv;
        const auto hv = matvec(a, v.data(), n);
        ++products;
        double tmp = 0;
        for (std::size_t e = 0; e < n; ++e) tmp += hv[e] * v[e];
        const double nh = norm2(hv) + 1e-6;
        for (std::size_t e = 0; e < n; ++e) v[e] = hv[e] / nh;
        if (have && std::fabs(eig - tmp) / (std::fabs(eig) + 1e-6) < po.tol) break;
        eig = tmp;
        have = true;
      }
      const double nv = norm2(v);
      for (double& x : v) x /= nv;
      found.push_back(v);
      EXPECT_NEAR(r.values[i], eig, 1e-12 * std::fabs(eig));
    }
    EXPECT_EQ(r.products, products + 2);  // + one residual product per pair
  }
  // k clamped; n = 1.
  {
    DiagOp<double> op1({-3.0});
    auto sp = make_cpu_space(op1);
    PowerOptions po;
    po.k = 3;
    const EigResult r = power_iteration(*sp, po, {});
    EXPECT_EQ(r.values.size(), std::size_t(1));
    // PyHessian's rule returns the previous estimate, here from the first
    // iteration, whose v had norm |g|/(|g| + 1e-6) for the Gaussian draw g.
    EXPECT_NEAR(r.values[0], -3.0, 1e-3);
  }
}

// ============================================================== trace

NNSCOPE_TEST(trace_hutchinson_coverage) {
  const std::size_t n = 60;
  const auto lambda = test_spectrum(n, 8);
  const Mat a = known_spectrum(lambda, 9);
  const double tr = std::accumulate(lambda.begin(), lambda.end(), 0.0);
  DenseOperator<double> op(a.data(), n);
  int covered = 0;
  const int seeds = 100;
  for (int seed = 0; seed < seeds; ++seed) {
    auto sp = make_cpu_space(op);
    TraceOptions to;
    to.max_products = 40;
    to.min_samples = 40;
    to.seed = std::uint64_t(seed);
    const TraceResult r = trace(*sp, to, {});
    EXPECT_EQ(r.samples.size(), std::size_t(40));
    EXPECT_EQ(r.products, std::uint64_t(40));
    if (std::fabs(r.estimate - tr) <= 3.0 * r.std_error) ++covered;
  }
  if (covered < 95) throw test::Failure("Hutchinson 3-se coverage " + std::to_string(covered) + "/100");
}

NNSCOPE_TEST(trace_hutchinson_stopping_rule) {
  const std::size_t n = 80;
  std::vector<double> lambda(n);
  for (std::size_t i = 0; i < n; ++i) lambda[i] = 1.0 + 0.01 * double(i);
  const Mat a = known_spectrum(lambda, 2);
  DenseOperator<double> op(a.data(), n);
  auto sp = make_cpu_space(op);
  TraceOptions to;
  to.rel_tol = 1e-2;
  to.min_samples = 10;
  const TraceResult r = trace(*sp, to, {});
  EXPECT(r.converged);
  EXPECT(r.samples.size() >= 10 && r.samples.size() < 1000);
  EXPECT(r.std_error <= 1e-2 * std::fabs(r.estimate));
  double mean = 0;
  for (double x : r.samples) mean += x;
  mean /= double(r.samples.size());
  EXPECT_NEAR(r.estimate, mean, 1e-9 * std::fabs(mean));
  // The sample std / √s.
  double ss = 0;
  for (double x : r.samples) ss += (x - mean) * (x - mean);
  EXPECT_NEAR(r.std_error, std::sqrt(ss / double(r.samples.size() - 1) / double(r.samples.size())), 1e-9);
  // Each sample is vᵀAv with the seeded Rademacher v (unnormalised).
  std::vector<double> v(n);
  Rng(0, 3).rademacher(v.data(), n);
  const auto av = matvec(a, v.data(), n);
  double s3 = 0;
  for (std::size_t i = 0; i < n; ++i) s3 += v[i] * av[i];
  EXPECT_NEAR(r.samples[3], s3, 1e-11 * std::fabs(s3));
  // abs/rel tol 0: runs to max_products, not converged.
  to.rel_tol = 0;
  to.max_products = 25;
  auto sp2 = make_cpu_space(op);
  const TraceResult r2 = trace(*sp2, to, {});
  EXPECT(!r2.converged);
  EXPECT_EQ(r2.products, std::uint64_t(25));
  // A diagonal matrix: Rademacher samples are exact (v_i² = 1), std_error 0.
  DiagOp<double> dop(lambda);
  auto sp3 = make_cpu_space(dop);
  const TraceResult r3 = trace(*sp3, TraceOptions{}, {});
  EXPECT(r3.converged);
  EXPECT_EQ(r3.samples.size(), std::size_t(10));
  EXPECT_NEAR(r3.estimate, std::accumulate(lambda.begin(), lambda.end(), 0.0), 1e-12);
  EXPECT_EQ(r3.std_error, 0.0);
}

NNSCOPE_TEST(trace_hutchpp_beats_hutchinson) {
  const std::size_t n = 200;
  std::vector<double> lambda(n);
  for (std::size_t i = 0; i < n; ++i) lambda[i] = 10.0 * std::pow(0.85, double(i)) * (i % 7 == 3 ? -1.0 : 1.0);
  const Mat a = known_spectrum(lambda, 4);
  const double tr = std::accumulate(lambda.begin(), lambda.end(), 0.0);
  DenseOperator<double> op(a.data(), n);
  double err_h = 0, err_pp = 0;
  const int seeds = 30;
  for (int seed = 0; seed < seeds; ++seed) {
    TraceOptions to;
    to.max_products = 60;
    to.min_samples = 60;
    to.seed = std::uint64_t(seed);
    auto s1 = make_cpu_space(op);
    const TraceResult h = trace(*s1, to, {});
    to.method = TraceMethod::HutchPlusPlus;
    auto s2 = make_cpu_space(op);
    const TraceResult pp = trace(*s2, to, {});
    EXPECT_EQ(h.products, std::uint64_t(60));
    EXPECT_EQ(pp.products, std::uint64_t(60));
    EXPECT_EQ(pp.samples.size(), std::size_t(20));
    EXPECT(pp.converged);
    err_h += std::fabs(h.estimate - tr);
    err_pp += std::fabs(pp.estimate - tr);
  }
  err_h /= seeds;
  err_pp /= seeds;
  if (!(err_pp < 0.5 * err_h))
    throw test::Failure("Hutch++ mean error " + std::to_string(err_pp) + " vs Hutchinson " + std::to_string(err_h));
}

NNSCOPE_TEST(trace_hutchpp_exact_on_low_rank_and_full_sketch) {
  // Rank 5 with a 10-column sketch: QQᵀ captures the range, the trace is exact.
  const std::size_t n = 120;
  std::vector<double> lambda(n, 0.0);
  lambda[0] = 4;
  lambda[1] = -2;
  lambda[2] = 1.5;
  lambda[3] = 0.25;
  lambda[4] = 7;
  const Mat a = known_spectrum(lambda, 12);
  DenseOperator<double> op(a.data(), n);
  auto sp = make_cpu_space(op);
  TraceOptions to;
  to.method = TraceMethod::HutchPlusPlus;
  to.max_products = 30;
  const TraceResult r = trace(*sp, to, {});
  EXPECT_NEAR(r.estimate, 10.75, 1e-12);
  EXPECT(r.std_error < 1e-12);
  // Products ≥ 3n: Q spans the whole space; exact, no samples.
  const std::size_t m = 12;
  const auto lm = test_spectrum(m, 1);
  const Mat b = known_spectrum(lm, 13);
  DenseOperator<double> opb(b.data(), m);
  auto spb = make_cpu_space(opb);
  to.max_products = 3 * m;
  const TraceResult rb = trace(*spb, to, {});
  EXPECT_NEAR(rb.estimate, std::accumulate(lm.begin(), lm.end(), 0.0), 1e-12);
  EXPECT_EQ(rb.std_error, 0.0);
  EXPECT(rb.samples.empty());
  EXPECT_EQ(rb.products, std::uint64_t(2 * m));
  // n = 1.
  DiagOp<double> one({3.5});
  auto s1 = make_cpu_space(one);
  EXPECT_NEAR(trace(*s1, to, {}).estimate, 3.5, 0);
  to.method = TraceMethod::Hutchinson;
  auto s2 = make_cpu_space(one);
  const TraceResult h1 = trace(*s2, to, {});
  EXPECT_EQ(h1.estimate, 3.5);
  EXPECT(h1.converged);
  to.max_products = 0;
  EXPECT_THROWS_CODE(trace(*s2, to, {}), ErrorCode::InvalidArgument);
}

// ============================================================== SLQ

NNSCOPE_TEST(slq_quadrature_identity) {
  // One start vector, m steps: Σ_j w_j θ_j^p = vᵀA^p v/‖v‖² exactly for p ≤ 2m−1.
  const std::size_t n = 80, m = 8;
  const auto lambda = test_spectrum(n, 6);
  const Mat a = known_spectrum(lambda, 7);
  DenseOperator<double> op(a.data(), n);
  auto sp = make_cpu_space(op);
  SlqOptions so;
  so.steps = m;
  so.seed = 42;
  const SlqResult r = slq(*sp, so, {});
  EXPECT_EQ(r.runs, std::size_t(1));
  EXPECT_EQ(r.steps, m);
  EXPECT_EQ(r.products, std::uint64_t(m));
  std::vector<double> v(n);
  Rng(42, 0).rademacher(v.data(), n);
  const double vv = double(n);
  std::vector<double> apv = v;
  for (std::size_t p = 0; p <= 2 * m - 1; ++p) {
    double exact = 0;
    for (std::size_t i = 0; i < n; ++i) exact += v[i] * apv[i];
    exact /= vv;
    double quad = 0;
    for (std::size_t j = 0; j < m; ++j) quad += r.weights[j] * std::pow(r.nodes[j], double(p));
    EXPECT_NEAR(quad, exact, 1e-11 * std::pow(10.0, double(p)));
    apv = matvec(a, apv.data(), n);
  }
}

NNSCOPE_TEST(slq_moments_statistical) {
  // 12 distinct eigenvalues (each repeated): m = 20 ≥ 12, so every run's quadrature
  // is exact for its start vector and the estimate of (1/n)·tr(A^p) is a mean of
  // unbiased terms; it must lie within 4 standard errors (from the runs) and within
  // the absolute tolerance 0.05·(1/n)·tr(|A|^p).
  const std::size_t n = 96, runs = 40;
  std::vector<double> lambda;
  for (std::size_t i = 0; i < n; ++i) lambda.push_back(-1.5 + 0.4 * double(i % 12));
  const Mat a = known_spectrum(lambda, 15);
  DenseOperator<double> op(a.data(), n);
  auto sp = make_cpu_space(op);
  SlqOptions so;
  so.steps = 20;
  so.runs = runs;
  so.seed = 3;
  const SlqResult r = slq(*sp, so, {});
  EXPECT_EQ(r.products, std::uint64_t(20 * runs));
  for (int p = 1; p <= 3; ++p) {
    double truth = 0, abs_scale = 0;
    for (double l : lambda) {
      truth += std::pow(l, p);
      abs_scale += std::pow(std::fabs(l), p);
    }
    truth /= double(n);
    abs_scale /= double(n);
    std::vector<double> per(runs, 0.0);
    for (std::size_t q = 0; q < runs; ++q)
      for (std::size_t j = 0; j < r.steps; ++j)
        per[q] += r.weights[q * r.steps + j] * std::pow(r.nodes[q * r.steps + j], p);
    const double mean = std::accumulate(per.begin(), per.end(), 0.0) / double(runs);
    double ss = 0;
    for (double x : per) ss += (x - mean) * (x - mean);
    const double se = std::sqrt(ss / double(runs - 1) / double(runs));
    EXPECT(std::fabs(mean - truth) <= 4 * se + 1e-12);
    EXPECT(std::fabs(mean - truth) <= 0.05 * abs_scale);
  }
}

NNSCOPE_TEST(slq_cdf_kolmogorov_distance) {
  // n = 1000, smooth spectrum, implicit non-diagonal operator; SLQ with m = 80 and
  // 8 runs: Kolmogorov distance of the quadrature CDF to the true one ≤ 0.05.
  const std::size_t n = 1000;
  std::vector<double> lambda(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = (double(i) + 0.5) / double(n);
    lambda[i] = 4.0 * t * t - 1.0 + 0.3 * std::sin(6.0 * t);
  }
  ReflectOp<double> op(lambda, 3);
  auto sp = make_cpu_space(op);
  SlqOptions so;
  so.steps = 80;
  so.runs = 8;
  const SlqResult r = slq(*sp, so, {});
  std::vector<double> pts = lambda;
  pts.insert(pts.end(), r.nodes.begin(), r.nodes.end());
  std::sort(pts.begin(), pts.end());
  std::vector<double> ls = lambda;
  std::sort(ls.begin(), ls.end());
  auto F_true = [&](double t, bool strict) {
    const auto it = strict ? std::lower_bound(ls.begin(), ls.end(), t) : std::upper_bound(ls.begin(), ls.end(), t);
    return double(it - ls.begin()) / double(n);
  };
  auto F_slq = [&](double t, bool strict) {
    double s = 0;
    for (std::size_t i = 0; i < r.nodes.size(); ++i)
      if (strict ? r.nodes[i] < t : r.nodes[i] <= t) s += r.weights[i];
    return s / double(r.runs);
  };
  double ks = 0;
  for (double t : pts)
    for (bool strict : {false, true}) ks = std::max(ks, std::fabs(F_true(t, strict) - F_slq(t, strict)));
  if (!(ks <= 0.05)) throw test::Failure("SLQ Kolmogorov distance " + std::to_string(ks));
}

NNSCOPE_TEST(slq_weights_density_and_diagonal) {
  // Diagonal: the Ritz values are the distinct entries and the weights are the
  // multiplicities / n (v = Rademacher/√n has |v_i|² = 1/n).
  const std::vector<double> distinct = {-1, 0.5, 2, 4};
  const std::vector<std::size_t> mult = {10, 30, 20, 40};
  std::vector<double> d;
  for (std::size_t i = 0; i < distinct.size(); ++i)
    for (std::size_t c = 0; c < mult[i]; ++c) d.push_back(distinct[i]);
  const std::size_t n = d.size();
  DiagOp<double> op(d);
  auto sp = make_cpu_space(op);
  SlqOptions so;
  so.steps = 4;
  so.runs = 3;
  const SlqResult r = slq(*sp, so, {});
  for (std::size_t q = 0; q < 3; ++q) {
    double sum = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      EXPECT_NEAR(r.nodes[q * 4 + j], distinct[j], 1e-13);
      EXPECT_NEAR(r.weights[q * 4 + j], double(mult[j]) / double(n), 1e-13);
      sum += r.weights[q * 4 + j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-15);
  }
  // m > #distinct: breakdowns; the nodes past the first block carry no weight
  // (a block cut short by m need not hold eigenvalues), the weighted ones are
  // exactly the eigenvalues.
  so.steps = 9;
  auto sp2 = make_cpu_space(op);
  const SlqResult r2 = slq(*sp2, so, {});
  for (std::size_t q = 0; q < 3; ++q) {
    double sum = 0;
    std::vector<double> mass(distinct.size(), 0.0);
    for (std::size_t j = 0; j < 9; ++j) {
      const double w = r2.weights[q * 9 + j], x = r2.nodes[q * 9 + j];
      EXPECT(w >= 0);
      sum += w;
      double best = 1e300;
      for (double e : distinct) best = std::min(best, std::fabs(e - x));
      if (w > 1e-20) {
        EXPECT(best < 1e-12);
        for (std::size_t e = 0; e < distinct.size(); ++e)
          if (std::fabs(distinct[e] - x) < 1e-12) mass[e] += w;
      }
      if (j) EXPECT(r2.nodes[q * 9 + j] >= r2.nodes[q * 9 + j - 1]);
    }
    EXPECT_NEAR(sum, 1.0, 1e-14);
    for (std::size_t e = 0; e < distinct.size(); ++e) EXPECT_NEAR(mass[e], double(mult[e]) / double(n), 1e-12);
  }
  // The density grid (PyHessian's defaults).
  const DensityGrid g = density_grid(r, GridOptions{});
  EXPECT_EQ(g.grid.size(), std::size_t(10000));
  EXPECT_EQ(g.density.size(), std::size_t(10000));
  EXPECT_NEAR(g.grid.front(), -1.0 - 0.01, 1e-13);
  EXPECT_NEAR(g.grid.back(), 4.0 + 0.01, 1e-13);
  EXPECT_NEAR(g.variance, 1e-5 * 5.02, 1e-15);
  const double dt = g.grid[1] - g.grid[0];
  double area = 0;
  for (double v : g.density) area += v * dt;
  EXPECT_NEAR(area, 1.0, 1e-12);
  // Mass near each eigenvalue ∝ its weight. PyHessian's grid ends only 0.01 past
  // the extreme nodes (≈ 1.4 standard deviations here), so the end Gaussians are cut
  // and the renormalisation lifts the interior ones: compare interior ratios.
  std::vector<double> mass(distinct.size(), 0.0);
  for (std::size_t e = 0; e < distinct.size(); ++e)
    for (std::size_t i = 0; i < g.grid.size(); ++i)
      if (std::fabs(g.grid[i] - distinct[e]) < 0.1) mass[e] += g.density[i] * dt;
  EXPECT_NEAR(mass[1] / mass[2], 30.0 / 20.0, 1e-9);
  EXPECT_NEAR(mass[0] + mass[1] + mass[2] + mass[3], 1.0, 1e-9);
  EXPECT(mass[0] > 0.5 * 0.1 && mass[3] > 0.5 * 0.4);
  GridOptions bad;
  bad.points = 1;
  EXPECT_THROWS_CODE(density_grid(r, bad), ErrorCode::InvalidArgument);
  SlqResult empty;
  EXPECT_THROWS_CODE(density_grid(empty, GridOptions{}), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(density_grid_matches_pyhessian_formula) {
  SlqResult q;
  q.runs = 2;
  q.steps = 3;
  q.nodes = {-0.5, 0.25, 3.0, -0.4, 1.0, 2.5};
  q.weights = {0.2, 0.5, 0.3, 0.6, 0.1, 0.3};
  GridOptions o;
  o.points = 500;
  o.sigma_squared = 1e-3;
  const DensityGrid g = density_grid(q, o);
  const double lmax = (3.0 + 2.5) / 2 + 0.01, lmin = (-0.5 - 0.4) / 2 - 0.01;
  EXPECT_NEAR(g.grid[0], lmin, 1e-15);
  EXPECT_NEAR(g.grid[499], lmax, 1e-15);
  const double var = 1e-3 * std::max(1.0, lmax - lmin);
  EXPECT_NEAR(g.variance, var, 1e-18);
  std::vector<double> phi(500);
  double sum = 0;
  for (std::size_t i = 0; i < 500; ++i) {
    const double t = lmin + double(i) * (lmax - lmin) / 499.0;
    double acc = 0;
    for (std::size_t r = 0; r < 2; ++r)
      for (std::size_t j = 0; j < 3; ++j) {
        const double z = q.nodes[r * 3 + j] - t;
        acc += q.weights[r * 3 + j] * std::exp(-z * z / (2 * var)) / std::sqrt(2 * M_PI * var);
      }
    phi[i] = acc / 2;
    sum += phi[i];
  }
  const double norm = sum * (lmax - lmin) / 499.0;
  for (std::size_t i = 0; i < 500; ++i) EXPECT_NEAR(g.density[i], phi[i] / norm, 1e-10 * (1 + phi[i] / norm));
}

// ============================================================== errors, cancellation, determinism

NNSCOPE_TEST(nonfinite_operator_fails_every_algorithm) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto run = [&](auto&& fn) {
    BadOp op(40, 4, nan);
    auto sp = make_cpu_space(op);
    EXPECT_THROWS_CODE(fn(*sp), ErrorCode::NonFinite);
  };
  run([](Space& s) { eigsh(s, EigOptions{}, {}); });
  run([](Space& s) { lanczos(s, LanczosOptions{}, {}); });
  run([](Space& s) { power_iteration(s, PowerOptions{}, {}); });
  run([](Space& s) { trace(s, TraceOptions{}, {}); });
  run([](Space& s) {
    TraceOptions t;
    t.method = TraceMethod::HutchPlusPlus;
    trace(s, t, {});
  });
  run([](Space& s) { slq(s, SlqOptions{}, {}); });
}

NNSCOPE_TEST(cancellation_from_progress) {
  const std::size_t n = 64;
  const Mat a = known_spectrum(test_spectrum(n, 1), 2);
  DenseOperator<double> op(a.data(), n);
  auto run = [&](auto&& fn) {
    OpContext ctx;
    ctx.cancel = std::make_shared<CancelToken>();
    std::atomic<int> calls{0};
    double last_total = 0;
    ctx.progress = [&](double done, double total) {
      last_total = total;
      EXPECT(done <= total);
      if (++calls == 5) ctx.cancel->cancel();
    };
    auto sp = make_cpu_space(op);
    EXPECT_THROWS_CODE(fn(*sp, ctx), ErrorCode::Cancelled);
    EXPECT_EQ(calls.load(), 5);
    EXPECT_EQ(sp->products(), std::uint64_t(5));  // checked before every product
    EXPECT(last_total > 0);
  };
  run([](Space& s, const OpContext& c) {
    EigOptions o;
    o.k = 2;
    eigsh(s, o, c);
  });
  run([](Space& s, const OpContext& c) { lanczos(s, LanczosOptions{}, c); });
  run([](Space& s, const OpContext& c) { power_iteration(s, PowerOptions{}, c); });
  run([](Space& s, const OpContext& c) {
    TraceOptions t;
    t.rel_tol = 0;
    trace(s, t, c);
  });
  run([](Space& s, const OpContext& c) {
    TraceOptions t;
    t.method = TraceMethod::HutchPlusPlus;
    trace(s, t, c);
  });
  run([](Space& s, const OpContext& c) {
    SlqOptions o;
    o.runs = 2;
    slq(s, o, c);
  });
  // Already cancelled: nothing runs.
  OpContext pre;
  pre.cancel = std::make_shared<CancelToken>();
  pre.cancel->cancel();
  auto sp = make_cpu_space(op);
  EXPECT_THROWS_CODE(eigsh(*sp, EigOptions{}, pre), ErrorCode::Cancelled);
  EXPECT_EQ(sp->products(), std::uint64_t(0));
}

namespace {
template <typename T>
std::vector<std::vector<double>> run_all(Operator<T>& op) {
  std::vector<std::vector<double>> out;
  {
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 3;
    o.max_products = 60;
    const EigResult r = eigsh(*sp, o, {});
    out.push_back(r.values);
    out.push_back(r.vectors);
    out.push_back(r.residuals);
  }
  {
    auto sp = make_cpu_space(op);
    LanczosOptions lo;
    lo.steps = 25;
    const LanczosResult r = lanczos(*sp, lo, {});
    out.push_back(r.alpha);
    out.push_back(r.beta);
  }
  {
    auto sp = make_cpu_space(op);
    PowerOptions po;
    po.k = 2;
    po.max_iter = 8;
    const EigResult r = power_iteration(*sp, po, {});
    out.push_back(r.values);
    out.push_back(r.vectors);
  }
  for (auto m : {TraceMethod::Hutchinson, TraceMethod::HutchPlusPlus}) {
    auto sp = make_cpu_space(op);
    TraceOptions to;
    to.method = m;
    to.max_products = 24;
    const TraceResult r = trace(*sp, to, {});
    out.push_back(r.samples);
    out.push_back({r.estimate, r.std_error});
  }
  {
    auto sp = make_cpu_space(op);
    SlqOptions so;
    so.steps = 15;
    so.runs = 2;
    const SlqResult r = slq(*sp, so, {});
    out.push_back(r.nodes);
    out.push_back(r.weights);
  }
  return out;
}
bool same_bits(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        (a[i].size() && std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(double)) != 0))
      return false;
  return true;
}
}  // namespace

NNSCOPE_TEST(determinism_across_thread_counts) {
  Threads keep;
  const std::size_t n = 140000;  // above every parallel threshold
  std::vector<double> lambda(n);
  for (std::size_t i = 0; i < n; ++i) lambda[i] = std::sin(0.001 * double(i)) + (i == 7 ? 3.0 : 0.0);
  ReflectOp<double> op(lambda, 1);
  ReflectOp<float> opf(lambda, 1);
  set_num_threads(1);
  const auto a1 = run_all(op);
  const auto f1 = run_all(opf);
  set_num_threads(2);
  const auto a2 = run_all(op);
  const auto f2 = run_all(opf);
  EXPECT(same_bits(a1, a2));
  EXPECT(same_bits(f1, f2));
  // Different seeds differ.
  auto sp = make_cpu_space(op);
  LanczosOptions lo;
  lo.steps = 5;
  lo.seed = 1;
  EXPECT(lanczos(*sp, lo, {}).alpha != a1[3]);
}

// ============================================================== a small MLP's Hessian

NNSCOPE_TEST(mlp_hessian_eigsh_and_trace) {
  using namespace nnscope::models;
  MlpSpec spec;
  spec.widths = {3, 5, 2};
  spec.hidden = Activation::Tanh;
  spec.loss = LossKind::Mse;
  OwnedDataset data;
  data.n = 12;
  data.d_in = 3;
  data.d_out = 2;
  data.inputs.resize(36);
  data.targets.resize(24);
  Rng(1, 1).gaussian(data.inputs.data(), 36);
  Rng(1, 2).gaussian(data.targets.data(), 24);
  MlpObjective obj(spec, data.view());
  const std::size_t P = obj.dim();
  EXPECT_EQ(P, std::size_t(32));
  std::vector<float> th = mlp_init(spec, 4);
  for (float& t : th) t *= 1.5f;  // away from the linear regime
  std::vector<double> th64(th.begin(), th.end());
  // Dense Hessian column by column with hvp64.
  Mat H(P * P);
  std::vector<double> e(P, 0.0), col(P);
  for (std::size_t j = 0; j < P; ++j) {
    e[j] = 1.0;
    obj.hvp64(th64.data(), e.data(), col.data(), {});
    e[j] = 0.0;
    for (std::size_t i = 0; i < P; ++i) H[i * P + j] = col[i];
  }
  EXPECT(asymmetry(H.data(), P) < 1e-12);
  for (std::size_t i = 0; i < P; ++i)
    for (std::size_t j = 0; j < i; ++j) H[i * P + j] = H[j * P + i] = 0.5 * (H[i * P + j] + H[j * P + i]);
  std::vector<double> lam;
  jacobi_eigen(P, H, lam);
  const double hnorm = max_abs(lam);
  const auto top = wanted(lam, Which::LargestAlgebraic, 3);
  const double tr = std::accumulate(lam.begin(), lam.end(), 0.0);
  EXPECT(top[2] > 1e-2 * hnorm);  // the oracle is meaningful at relative 1e-4
  // float64 operator: relative 1e-8.
  {
    ModelOperator64 op(obj, th64.data());
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 3;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT(r.converged);
    for (int q = 0; q < 3; ++q) EXPECT_NEAR(r.values[q], top[q], 1e-8 * std::fabs(top[q]));
    // Smallest algebraic too (the Hessian is indefinite away from a minimum).
    o.which = Which::SmallestAlgebraic;
    o.k = 1;
    auto sp2 = make_cpu_space(op);
    const EigResult r2 = eigsh(*sp2, o, {});
    EXPECT_NEAR(r2.values[0], lam[0], 1e-8 * hnorm);
    // Hutch++ with a full sketch (products ≥ 3P): exact up to round-off.
    TraceOptions to;
    to.method = TraceMethod::HutchPlusPlus;
    to.max_products = 3 * P;
    auto sp3 = make_cpu_space(op);
    const TraceResult t = trace(*sp3, to, {});
    EXPECT_NEAR(t.estimate, tr, 1e-10 * hnorm * double(P));
    // Hutchinson: within 3 standard errors.
    to.method = TraceMethod::Hutchinson;
    to.max_products = 200;
    to.min_samples = 200;
    auto sp4 = make_cpu_space(op);
    const TraceResult t2 = trace(*sp4, to, {});
    EXPECT(std::fabs(t2.estimate - tr) <= 3 * t2.std_error);
    // SLQ with m = P: the nodes are the spectrum (every weight positive here).
    SlqOptions so;
    so.steps = P;
    auto sp5 = make_cpu_space(op);
    const SlqResult s = slq(*sp5, so, {});
    for (std::size_t j = 0; j < P; ++j) EXPECT_NEAR(s.nodes[j], lam[j], 1e-9 * hnorm);
  }
  // float32 operator (θ rounded to float, the same point): relative 1e-4.
  {
    ModelOperator op(obj, th.data());
    auto sp = make_cpu_space(op);
    EigOptions o;
    o.k = 3;
    const EigResult r = eigsh(*sp, o, {});
    EXPECT(r.converged);
    for (int q = 0; q < 3; ++q) EXPECT_NEAR(r.values[q], top[q], 1e-4 * std::fabs(top[q]));
    auto sp2 = make_cpu_space(op);
    PowerOptions po;
    po.k = 1;
    po.tol = 1e-7;
    po.max_iter = 1000;
    const EigResult pr = power_iteration(*sp2, po, {});
    const double lm = wanted(lam, Which::LargestMagnitude, 1)[0];
    EXPECT_NEAR(pr.values[0], lm, 1e-3 * std::fabs(lm));
  }
}
