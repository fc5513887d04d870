// nnscope core, hessian family: symmetric tridiagonal and small dense symmetric
// eigen-decompositions in float64 (the Rayleigh–Ritz step of every Krylov method
// here).
//
// tql: implicit QL with Wilkinson shifts (the shift is the eigenvalue of the
// leading 2×2 block nearer its top-left entry), EISPACK tql2 / Numerical Recipes
// tqli structure. A sub-diagonal entry is negligible when
// |e_i| ≤ eps·(|d_i| + |d_{i+1}|) (or below the smallest normal number), which
// splits the matrix. Rotations are accumulated into z when vectors are wanted.
//
// symmetric_eigen: Householder tridiagonalisation (tred2) + tql, for the dense
// projected matrix of the thick-restart eigensolver (arrowhead + tridiagonal).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "base/error.h"
#include "hessian/hessian.h"
#include "hessian/internal.h"

namespace nnscope::hessian {
namespace detail {

void tql(std::size_t n, double* d, double* e, double* z) {
  if (n <= 1) return;
  const double eps = kEps64;
  const double tiny = std::numeric_limits<double>::min();
  const std::ptrdiff_t N = std::ptrdiff_t(n);
  std::vector<double> ee(n, 0.0);
  std::copy(e, e + n - 1, ee.begin());  // ee[n-1] = 0
  std::size_t iterations = 0;
  const std::size_t limit = 30 * n;
  for (std::ptrdiff_t l = 0; l < N; ++l) {
    std::ptrdiff_t m;
    for (;;) {
      for (m = l; m < N - 1; ++m) {
        const double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(ee[m]) <= eps * dd || std::fabs(ee[m]) < tiny) {
          ee[m] = 0.0;
          break;
        }
      }
      if (m == l) break;
      if (++iterations > limit)
        fail(ErrorCode::Internal, "tridiagonal eigensolver: no convergence after " + std::to_string(limit) +
                                      " QL sweeps (n = " + std::to_string(n) + ")");
      double g = (d[l + 1] - d[l]) / (2.0 * ee[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + ee[l] / (g + std::copysign(r, g));
      double s = 1.0, c = 1.0, p = 0.0;
      std::ptrdiff_t i;
      bool deflated = false;
      for (i = m - 1; i >= l; --i) {
        double f = s * ee[i];
        const double b = c * ee[i];
        r = std::hypot(f, g);
        ee[i + 1] = r;
        if (r == 0.0) {  // underflow: the rotation is the identity; split here
          d[i + 1] -= p;
          ee[m] = 0.0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (z)
          for (std::size_t k = 0; k < n; ++k) {
            double* zk = z + k * n;
            f = zk[i + 1];
            zk[i + 1] = s * zk[i] + c * f;
            zk[i] = c * zk[i] - s * f;
          }
      }
      if (deflated) continue;
      d[l] -= p;
      ee[l] = g;
      ee[m] = 0.0;
    }
  }
}

void sort_eigen(std::size_t n, double* d, double* z) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return d[a] < d[b]; });
  std::vector<double> tmp(d, d + n);
  for (std::size_t j = 0; j < n; ++j) d[j] = tmp[idx[j]];
  if (z) {
    std::vector<double> row(n);
    for (std::size_t k = 0; k < n; ++k) {
      double* zk = z + k * n;
      for (std::size_t j = 0; j < n; ++j) row[j] = zk[idx[j]];
      std::copy(row.begin(), row.end(), zk);
    }
  }
}

void symmetric_eigen(std::size_t n, const double* a, double* values, double* vectors) {
  if (n == 0) return;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j)
      if (!std::isfinite(a[i * n + j]))
        fail(ErrorCode::NonFinite, "symmetric eigensolver: the matrix has a non-finite entry at (" +
                                       std::to_string(i) + ", " + std::to_string(j) + ")");
  const bool want = vectors != nullptr;
  std::vector<double> zbuf;
  double* z = vectors;
  if (!want) {
    zbuf.resize(n * n);
    z = zbuf.data();
  }
  // Lower triangle, mirrored.
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) z[i * n + j] = z[j * n + i] = a[i * n + j];
  std::vector<double> d(n), e(n, 0.0);
  auto Z = [&](std::size_t i, std::size_t j) -> double& { return z[i * n + j]; };
  // tred2 (Householder reduction; Numerical Recipes, 3rd ed., §11.3).
  for (std::size_t i = n - 1; i > 0; --i) {
    const std::size_t l = i - 1;
    double h = 0.0, scale = 0.0;
    if (l > 0) {
      for (std::size_t k = 0; k < i; ++k) scale += std::fabs(Z(i, k));
      if (scale == 0.0) {
        e[i] = Z(i, l);
      } else {
        for (std::size_t k = 0; k < i; ++k) {
          Z(i, k) /= scale;
          h += Z(i, k) * Z(i, k);
        }
        double f = Z(i, l);
        double g = f >= 0.0 ? -std::sqrt(h) : std::sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        Z(i, l) = f - g;
        f = 0.0;
        for (std::size_t j = 0; j < i; ++j) {
          if (want) Z(j, i) = Z(i, j) / h;
          g = 0.0;
          for (std::size_t k = 0; k < j + 1; ++k) g += Z(j, k) * Z(i, k);
          for (std::size_t k = j + 1; k < i; ++k) g += Z(k, j) * Z(i, k);
          e[j] = g / h;
          f += e[j] * Z(i, j);
        }
        const double hh = f / (h + h);
        for (std::size_t j = 0; j < i; ++j) {
          f = Z(i, j);
          e[j] = g = e[j] - hh * f;
          for (std::size_t k = 0; k < j + 1; ++k) Z(j, k) -= (f * e[k] + g * Z(i, k));
        }
      }
    } else {
      e[i] = Z(i, l);
    }
    d[i] = h;
  }
  if (want) d[0] = 0.0;
  e[0] = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (want) {
      if (d[i] != 0.0) {
        for (std::size_t j = 0; j < i; ++j) {
          double g = 0.0;
          for (std::size_t k = 0; k < i; ++k) g += Z(i, k) * Z(k, j);
          for (std::size_t k = 0; k < i; ++k) Z(k, j) -= g * Z(k, i);
        }
      }
      d[i] = Z(i, i);
      Z(i, i) = 1.0;
      for (std::size_t j = 0; j < i; ++j) Z(j, i) = Z(i, j) = 0.0;
    } else {
      d[i] = Z(i, i);
    }
  }
  // e[i] couples i-1 and i; tql wants off[i] coupling i and i+1.
  std::vector<double> off(n > 1 ? n - 1 : 1, 0.0);
  for (std::size_t i = 1; i < n; ++i) off[i - 1] = e[i];
  tql(n, d.data(), off.data(), want ? z : nullptr);
  sort_eigen(n, d.data(), want ? z : nullptr);
  std::copy(d.begin(), d.end(), values);
}

}  // namespace detail

void tridiagonal_eigen(std::size_t n, const double* alpha, const double* beta, double* values, double* vectors) {
  if (n == 0) return;
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(alpha[i]))
      fail(ErrorCode::NonFinite, "tridiagonal eigensolver: diagonal entry " + std::to_string(i) + " is not finite");
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (!std::isfinite(beta[i]))
      fail(ErrorCode::NonFinite,
           "tridiagonal eigensolver: off-diagonal entry " + std::to_string(i) + " is not finite");
  std::vector<double> d(alpha, alpha + n), e(n > 1 ? n - 1 : 1, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) e[i] = beta[i];
  if (vectors) {
    std::fill(vectors, vectors + n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  }
  detail::tql(n, d.data(), e.data(), vectors);
  detail::sort_eigen(n, d.data(), vectors);
  std::copy(d.begin(), d.end(), values);
}

}  // namespace nnscope::hessian
