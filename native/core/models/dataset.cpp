#include "models/dataset.h"

#include <cmath>

#include "base/buffer.h"
#include "base/error.h"
#include "base/rng.h"

namespace nnscope::models {

Dataset OwnedDataset::view() const noexcept {
  Dataset d;
  d.n = n;
  d.d_in = d_in;
  d.inputs = inputs.empty() ? nullptr : inputs.data();
  d.d_out = targets.empty() ? 0 : d_out;
  d.targets = targets.empty() ? nullptr : targets.data();
  d.labels = labels.empty() ? nullptr : labels.data();
  return d;
}

namespace {
constexpr double kPi = 3.14159265358979323846;
void check_noise(double v, const char* what) {
  NNSCOPE_CHECK(std::isfinite(v) && v >= 0.0, ErrorCode::InvalidArgument, std::string(what) + " must be finite and ≥ 0");
}
}  // namespace

OwnedDataset make_two_spirals(std::size_t n, double noise, uint64_t seed, double turns) {
  NNSCOPE_CHECK(n >= 2, ErrorCode::InvalidArgument, "two spirals need n ≥ 2");
  check_noise(noise, "noise");
  NNSCOPE_CHECK(std::isfinite(turns) && turns > 0.0, ErrorCode::InvalidArgument, "turns must be finite and > 0");
  OwnedDataset d;
  d.n = n;
  d.d_in = 2;
  d.d_out = 1;
  d.inputs.resize(checked_mul(n, 2));
  d.targets.resize(n);
  d.labels.resize(n);
  const Rng rng(seed);
  const std::size_t m0 = (n + 1) / 2, m1 = n / 2;
  std::size_t row = 0;
  for (int cls = 0; cls < 2; ++cls) {
    const std::size_t m = cls == 0 ? m0 : m1;
    for (std::size_t i = 0; i < m; ++i, ++row) {
      const double r = (double(i) + 0.5) / double(m);
      const double phi = turns * 2.0 * kPi * r + (cls == 1 ? kPi : 0.0);
      d.inputs[2 * row] = float(r * std::cos(phi) + noise * rng.gaussian_at(2 * row));
      d.inputs[2 * row + 1] = float(r * std::sin(phi) + noise * rng.gaussian_at(2 * row + 1));
      d.labels[row] = cls;
      d.targets[row] = float(cls);
    }
  }
  return d;
}

OwnedDataset make_blobs(std::size_t n, std::size_t dim, std::size_t classes, double std, uint64_t seed,
                        double spread_centres) {
  NNSCOPE_CHECK(n >= 1 && dim >= 1 && classes >= 1, ErrorCode::InvalidArgument, "blobs need n, d, classes ≥ 1");
  NNSCOPE_CHECK(classes <= 1u << 30, ErrorCode::InvalidArgument, "too many classes");
  check_noise(std, "std");
  check_noise(spread_centres, "spread_centres");
  OwnedDataset d;
  d.n = n;
  d.d_in = dim;
  d.d_out = classes;
  d.inputs.resize(checked_mul(n, dim));
  d.targets.assign(checked_mul(n, classes), 0.0f);
  d.labels.resize(n);
  const Rng centres(seed, 0), noise(seed, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % classes;
    for (std::size_t j = 0; j < dim; ++j)
      d.inputs[i * dim + j] =
          float(spread_centres * centres.gaussian_at(c * dim + j) + std * noise.gaussian_at(i * dim + j));
    d.labels[i] = int32_t(c);
    d.targets[i * classes + c] = 1.0f;
  }
  return d;
}

OwnedDataset make_sine(std::size_t n, double noise, uint64_t seed) {
  NNSCOPE_CHECK(n >= 1, ErrorCode::InvalidArgument, "sine regression needs n ≥ 1");
  check_noise(noise, "noise");
  OwnedDataset d;
  d.n = n;
  d.d_in = 1;
  d.d_out = 1;
  d.inputs.resize(n);
  d.targets.resize(n);
  const Rng xs(seed, 0), eps(seed, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = -kPi + 2.0 * kPi * xs.uniform_at(i);
    d.inputs[i] = float(x);
    d.targets[i] = float(std::sin(x) + noise * eps.gaussian_at(i));
  }
  return d;
}

}  // namespace nnscope::models
