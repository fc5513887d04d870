// nnscope core, hessian family: the dense host operator and the symmetry check.
//
// y = A·x as a row-parallel GEMV whose row dots accumulate in float64 (float
// matrices through linalg's vectorised sdot kernel), so a float32 operator loses
// only the final rounding of each output; rows are independent, so the result is
// bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "base/threadpool.h"
#include "hessian/operators.h"
#include "linalg/blas.h"

namespace nnscope::hessian {
namespace {

double row_dot(std::size_t n, const float* a, const float* x) {
  // sdot_cpu chunks at 32768 elements and runs its own pool job only for very
  // long rows; the sum order depends on n only.
  return linalg::sdot_cpu(n, a, x);
}

double row_dot(std::size_t n, const double* a, const double* x) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int q = 0; q < 8; ++q) acc[q] += a[i + q] * x[i + q];
  for (int q = 0; i < n; ++i, ++q) acc[q] += a[i] * x[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace

template <typename T>
void DenseOperator<T>::apply(const T* x, T* y, const OpContext& ctx) {
  const std::size_t n = n_;
  if (n == 0) return;
  const T* a = a_;
  // ≈ 64K matrix elements per task.
  const std::size_t rows = std::max<std::size_t>(1, (std::size_t(1) << 16) / n);
  const std::size_t tasks = (n + rows - 1) / rows;
  auto body = [&](std::size_t t) {
    ctx.check();
    const std::size_t r0 = t * rows, r1 = std::min(n, r0 + rows);
    for (std::size_t i = r0; i < r1; ++i) y[i] = T(row_dot(n, a + i * n, x));
  };
  if (tasks == 1 || num_threads() <= 1 || n * n < (std::size_t(1) << 16)) {
    for (std::size_t t = 0; t < tasks; ++t) body(t);
  } else {
    ThreadPool::global().run(tasks, body);
  }
}

template <typename T>
double asymmetry(const T* a, std::size_t n) {
  double diff = 0, mag = 0;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double v = double(a[i * n + j]);
      finite = finite && std::isfinite(v);
      mag = std::max(mag, std::fabs(v));
      if (j > i) diff = std::max(diff, std::fabs(v - double(a[j * n + i])));
    }
  if (!finite) return std::numeric_limits<double>::quiet_NaN();  // NaN/Inf entries: no meaningful ratio
  return diff / std::max(1.0, mag);
}

template class DenseOperator<float>;
template class DenseOperator<double>;
template double asymmetry<float>(const float*, std::size_t);
template double asymmetry<double>(const double*, std::size_t);

}  // namespace nnscope::hessian
