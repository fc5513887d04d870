// nnscope core, landscape family: normalisation, orthonormalisation, random
// directions, grid and scattered coordinates (see landscape.h).
#include "landscape/landscape.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "base/buffer.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"

namespace nnscope::landscape {

namespace {

std::size_t numel(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n = checked_mul(n, d);
  return n;
}

// One unit of normalisation work: a contiguous run [lo, lo + len) of one direction
// scaled to the norm of the same run of θ₀ (scale), or zeroed (zero).
struct Unit {
  std::size_t lo, len;
  bool zero;
};

double sum_squares(const float* x, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

double dot(const double* a, const double* b, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void check_layout(const std::vector<TensorSlice>& layout, std::size_t P) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  spans.reserve(layout.size());
  for (std::size_t t = 0; t < layout.size(); ++t) {
    NNSCOPE_CHECK(!layout[t].shape.empty(), ErrorCode::InvalidArgument,
                  "layout tensor " + std::to_string(t) + " has no shape");
    spans.emplace_back(layout[t].offset, numel(layout[t].shape));
  }
  std::sort(spans.begin(), spans.end());
  std::size_t at = 0;
  for (const auto& [off, n] : spans) {
    NNSCOPE_CHECK(off == at, ErrorCode::InvalidArgument,
                  "the layout must tile the parameters exactly (gap or overlap at offset " + std::to_string(at) + ")");
    at += n;
  }
  NNSCOPE_CHECK(at == P, ErrorCode::InvalidArgument,
                "the layout covers " + std::to_string(at) + " parameters, the directions have " + std::to_string(P));
}

void normalize_directions(const float* theta0, float* dirs, std::size_t k, std::size_t P,
                          const std::vector<TensorSlice>& layout, Normalization mode, BiasMode biases,
                          const OpContext& ctx) {
  check_layout(layout, P);
  ctx.check();
  // The runs every direction is cut into; runs not listed are left unchanged.
  std::vector<Unit> units;
  for (const auto& t : layout) {
    const std::size_t n = numel(t.shape);
    if (n == 0) continue;
    if (t.shape.size() == 1) {
      if (biases == BiasMode::Keep) continue;
      units.push_back({t.offset, n, biases == BiasMode::Zero});
    } else if (mode == Normalization::Layer) {
      units.push_back({t.offset, n, false});
    } else if (mode == Normalization::Filter) {
      const std::size_t rows = t.shape[0], cols = n / rows;
      for (std::size_t r = 0; r < rows; ++r) units.push_back({t.offset + r * cols, cols, false});
    }
  }
  if (units.empty() || k == 0) return;
  const std::size_t total = checked_mul(k, units.size());
  // Each (direction, unit) is independent and summed sequentially: bit-identical
  // for any thread count.
  const std::size_t grain = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(1, P / units.size()));
  parallel_for(0, total, grain, [&](std::size_t lo, std::size_t hi) {
    ctx.check();
    for (std::size_t w = lo; w < hi; ++w) {
      const Unit& u = units[w % units.size()];
      float* d = dirs + (w / units.size()) * P + u.lo;
      if (u.zero) {
        std::fill(d, d + u.len, 0.0f);
        continue;
      }
      const double nt = std::sqrt(sum_squares(theta0 + u.lo, u.len));
      const double nd = std::sqrt(sum_squares(d, u.len));
      const double s = nt / (nd + kNormEps);
      for (std::size_t i = 0; i < u.len; ++i) d[i] = static_cast<float>(double(d[i]) * s);
    }
  });
}

void orthonormalize(double* dirs, std::size_t k, std::size_t P, const OpContext& ctx) {
  for (std::size_t i = 0; i < k; ++i) {
    ctx.check();
    double* v = dirs + i * P;
    const double n0 = std::sqrt(dot(v, v, P));
    NNSCOPE_CHECK(n0 > 0.0 && std::isfinite(n0), ErrorCode::InvalidArgument,
                  "direction " + std::to_string(i) + " is zero or not finite: cannot orthonormalise");
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t j = 0; j < i; ++j) {
        const double* q = dirs + j * P;
        const double c = dot(q, v, P);
        for (std::size_t p = 0; p < P; ++p) v[p] -= c * q[p];
      }
    }
    const double n1 = std::sqrt(dot(v, v, P));
    NNSCOPE_CHECK(n1 > 1e-10 * n0, ErrorCode::InvalidArgument,
                  "direction " + std::to_string(i) + " is linearly dependent on the previous ones: cannot orthonormalise");
    for (std::size_t p = 0; p < P; ++p) v[p] /= n1;
  }
}

void orthonormalize(float* dirs, std::size_t k, std::size_t P, const OpContext& ctx, const float* scale_to) {
  AlignedBuffer<double> w(checked_mul(k, P));
  std::copy(dirs, dirs + k * P, w.data());
  orthonormalize(w.data(), k, P, ctx);
  const double s = scale_to ? std::sqrt(sum_squares(scale_to, P)) : 1.0;
  for (std::size_t i = 0; i < k * P; ++i) dirs[i] = static_cast<float>(s * w.data()[i]);
}

void random_directions(float* out, std::size_t k, std::size_t P, std::uint64_t seed, const OpContext& ctx) {
  for (std::size_t j = 0; j < k; ++j) {
    ctx.check();
    Rng(seed, j).gaussian(out + j * P, P);
  }
}

double grid_coordinate(std::size_t i, std::size_t steps, double distance, Spacing spacing) {
  if (spacing == Spacing::Linspace) {
    // Integer numerator: exact symmetry and an exact 0 at the centre.
    const double num = 2.0 * double(i) - double(steps - 1);
    return distance * num / double(steps - 1);
  }
  const double num = 2.0 * (double(i) - double(steps / 2));
  return distance * num / double(steps);
}

std::size_t grid_points(std::size_t k, std::size_t steps, std::size_t max_points) {
  NNSCOPE_CHECK(k >= 1, ErrorCode::InvalidArgument, "a grid needs at least one direction");
  NNSCOPE_CHECK(steps >= 2, ErrorCode::InvalidArgument, "a grid needs steps ≥ 2");
  std::size_t n = 1;
  for (std::size_t j = 0; j < k; ++j) {
    NNSCOPE_CHECK(n <= max_points / steps, ErrorCode::TooLarge,
                  "a grid of " + std::to_string(steps) + "^" + std::to_string(k) + " points exceeds the limit of " +
                      std::to_string(max_points));
    n *= steps;
  }
  return n;
}

void grid_coordinates(float* out, std::size_t k, std::size_t steps, double distance, Spacing spacing,
                      std::size_t begin, std::size_t count, const OpContext& ctx) {
  NNSCOPE_CHECK(k >= 1 && steps >= 2, ErrorCode::InvalidArgument, "grid_coordinates: k ≥ 1 and steps ≥ 2");
  std::vector<float> axis(steps);
  for (std::size_t i = 0; i < steps; ++i) axis[i] = static_cast<float>(grid_coordinate(i, steps, distance, spacing));
  parallel_for(0, count, std::size_t(1) << 15, [&](std::size_t lo, std::size_t hi) {
    ctx.check();
    for (std::size_t q = lo; q < hi; ++q) {
      std::size_t n = begin + q;
      float* row = out + q * k;
      for (std::size_t j = k; j-- > 0;) {
        row[j] = axis[n % steps];
        n /= steps;
      }
    }
  });
}

void scattered_coordinates(float* out, std::size_t n, std::size_t k, double distance, Scatter method,
                           std::uint64_t seed, const OpContext& ctx) {
  const std::size_t total = checked_mul(n, k);
  if (total == 0) return;
  AlignedBuffer<double> u(total);
  Rng(seed, 0).uniform(u.data(), total);
  if (method == Scatter::Latin) {
    std::vector<std::size_t> perm(n);
    for (std::size_t j = 0; j < k; ++j) {
      ctx.check();
      // Fisher–Yates from Philox stream 1 + j: draw i picks the slot for position i.
      const Rng r(seed, 1 + j);
      std::iota(perm.begin(), perm.end(), std::size_t(0));
      for (std::size_t i = n; i-- > 1;) std::swap(perm[i], perm[r.below_at(i, i + 1)]);
      for (std::size_t i = 0; i < n; ++i) u.data()[i * k + j] = (double(perm[i]) + u.data()[i * k + j]) / double(n);
    }
  }
  ctx.check();
  for (std::size_t i = 0; i < total; ++i) out[i] = static_cast<float>(-distance + 2.0 * distance * u.data()[i]);
}

}  // namespace nnscope::landscape
