// Tests of the landscape family's CPU core (landscape/landscape.h): layer and
// filter normalisation against hand-computed norms, bias handling, float64
// modified Gram–Schmidt (Gram = I), seeded random directions, the grid index
// layout and coordinates, Latin hypercube strata, and the error codes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "harness.h"
#include "landscape/landscape.h"

using namespace nnscope;
using namespace nnscope::landscape;

namespace {

double norm(const float* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return std::sqrt(s);
}

// A 2→2→1 MLP layout: W0 [2,2] @0, b0 [2] @4, W1 [1,2] @6, b1 [1] @8; P = 9.
const std::vector<TensorSlice> kLayout = {{0, {2, 2}}, {4, {2}}, {6, {1, 2}}, {8, {1}}};
const std::vector<float> kTheta = {3, 4, 0, 2, 1, -1, 6, 8, 5};
const std::vector<float> kDir = {1, 0, 1, 1, 2, 2, -3, 4, 7};

}  // namespace

NNSCOPE_TEST(layer_normalisation_matches_hand_computed_norms) {
  std::vector<float> d = kDir;
  normalize_directions(kTheta.data(), d.data(), 1, 9, kLayout, Normalization::Layer, BiasMode::Normalize, {});
  // W0: ‖θ‖ = √29, ‖d‖ = √3 → d·√29/√3
  const double s0 = std::sqrt(29.0) / (std::sqrt(3.0) + kNormEps);
  EXPECT_NEAR(d[0], 1 * s0, 1e-6);
  EXPECT_NEAR(d[2], 1 * s0, 1e-6);
  EXPECT_NEAR(d[1], 0.0, 0.0);
  EXPECT_NEAR(norm(d.data(), 4), std::sqrt(29.0), 1e-5);
  EXPECT_NEAR(norm(d.data() + 4, 2), std::sqrt(2.0), 1e-6);  // b0
  EXPECT_NEAR(norm(d.data() + 6, 2), 10.0, 1e-5);            // W1: ‖(6,8)‖ = 10, d = (−3,4) → (−6,8)
  EXPECT_NEAR(d[6], -6.0, 1e-5);
  EXPECT_NEAR(d[7], 8.0, 1e-5);
  EXPECT_NEAR(d[8], 5.0, 1e-5);  // b1: 7·5/7
}

NNSCOPE_TEST(filter_normalisation_scales_rows_and_zeroes_biases) {
  std::vector<float> d(18);
  std::copy(kDir.begin(), kDir.end(), d.begin());
  for (std::size_t i = 0; i < 9; ++i) d[9 + i] = float(i) - 3.5f;  // a second direction
  normalize_directions(kTheta.data(), d.data(), 2, 9, kLayout, Normalization::Filter, BiasMode::Zero, {});
  for (std::size_t j = 0; j < 2; ++j) {
    const float* r = d.data() + 9 * j;
    EXPECT_NEAR(norm(r + 0, 2), 5.0, 1e-5);  // row (3,4)
    EXPECT_NEAR(norm(r + 2, 2), 2.0, 1e-5);  // row (0,2)
    EXPECT_NEAR(norm(r + 6, 2), 10.0, 1e-5);
    EXPECT_EQ(r[4], 0.0f);
    EXPECT_EQ(r[5], 0.0f);
    EXPECT_EQ(r[8], 0.0f);
  }
  // Row 0 of direction 0 is (1, 0) → (5, 0): the direction of a row is kept.
  EXPECT_NEAR(d[0], 5.0, 1e-6);
  EXPECT_NEAR(d[1], 0.0, 0.0);
  // A zero θ row zeroes the direction row; a zero direction row stays zero.
  std::vector<float> th = kTheta;
  th[0] = th[1] = 0;
  std::vector<float> e = kDir;
  e[2] = e[3] = 0;
  normalize_directions(th.data(), e.data(), 1, 9, kLayout, Normalization::Filter, BiasMode::Keep, {});
  EXPECT_EQ(e[0], 0.0f);
  EXPECT_EQ(e[2], 0.0f);
  EXPECT_EQ(e[3], 0.0f);
  EXPECT_EQ(e[4], 2.0f);  // biases kept
  EXPECT_EQ(e[8], 7.0f);
}

NNSCOPE_TEST(normalisation_is_thread_count_independent) {
  const std::size_t rows = 300, cols = 77, P = rows * cols + rows;
  std::vector<TensorSlice> layout = {{0, {rows, cols}}, {rows * cols, {rows}}};
  std::vector<float> theta(P), dirs(3 * P);
  random_directions(theta.data(), 1, P, 5, {});
  random_directions(dirs.data(), 3, P, 6, {});
  const int threads = num_threads();
  std::vector<float> a = dirs, b = dirs;
  set_num_threads(1);
  normalize_directions(theta.data(), a.data(), 3, P, layout, Normalization::Filter, BiasMode::Normalize, {});
  set_num_threads(4);
  normalize_directions(theta.data(), b.data(), 3, P, layout, Normalization::Filter, BiasMode::Normalize, {});
  set_num_threads(threads);
  EXPECT(a == b);
}

NNSCOPE_TEST(none_mode_only_touches_biases_on_request) {
  std::vector<float> d = kDir;
  normalize_directions(kTheta.data(), d.data(), 1, 9, kLayout, Normalization::None, BiasMode::Keep, {});
  EXPECT(d == kDir);
  normalize_directions(kTheta.data(), d.data(), 1, 9, kLayout, Normalization::None, BiasMode::Zero, {});
  EXPECT_EQ(d[4], 0.0f);
  EXPECT_EQ(d[0], 1.0f);
}

NNSCOPE_TEST(bad_layouts_are_refused) {
  std::vector<float> d = kDir;
  std::vector<TensorSlice> gap = {{0, {2, 2}}, {5, {4}}};
  EXPECT_THROWS_CODE(normalize_directions(kTheta.data(), d.data(), 1, 9, gap, Normalization::Layer, BiasMode::Keep, {}),
                     ErrorCode::InvalidArgument);
  std::vector<TensorSlice> shortl = {{0, {2, 2}}};
  EXPECT_THROWS_CODE(check_layout(shortl, 9), ErrorCode::InvalidArgument);
  std::vector<TensorSlice> overlap = {{0, {2, 3}}, {4, {5}}};
  EXPECT_THROWS_CODE(check_layout(overlap, 9), ErrorCode::InvalidArgument);
  EXPECT(d == kDir);
}

NNSCOPE_TEST(gram_schmidt_gives_identity_gram) {
  const std::size_t k = 4, P = 1000;
  std::vector<float> f(k * P);
  random_directions(f.data(), k, P, 11, {});
  // make them nearly parallel: a hard case for classical Gram–Schmidt
  for (std::size_t j = 1; j < k; ++j)
    for (std::size_t p = 0; p < P; ++p) f[j * P + p] = f[p] + 1e-3f * f[j * P + p];
  std::vector<double> d(f.begin(), f.end());
  std::vector<double> orig = d;
  orthonormalize(d.data(), k, P, {});
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < P; ++p) s += d[i * P + p] * d[j * P + p];
      EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-12);
    }
  // same span: row 0 is the normalised original row 0
  double n0 = 0;
  for (std::size_t p = 0; p < P; ++p) n0 += orig[p] * orig[p];
  n0 = std::sqrt(n0);
  for (std::size_t p = 0; p < P; ++p) EXPECT_NEAR(d[p], orig[p] / n0, 1e-15);
  // dependent rows are refused
  std::vector<double> dep = {1, 2, 3, 2, 4, 6};
  EXPECT_THROWS_CODE(orthonormalize(dep.data(), 2, 3, {}), ErrorCode::InvalidArgument);
  std::vector<double> zero = {0, 0, 0};
  EXPECT_THROWS_CODE(orthonormalize(zero.data(), 1, 3, {}), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(random_directions_are_seeded_and_row_independent) {
  std::vector<float> a(3 * 500), b(3 * 500), c(3 * 500), one(500);
  random_directions(a.data(), 3, 500, 42, {});
  random_directions(b.data(), 3, 500, 42, {});
  random_directions(c.data(), 3, 500, 43, {});
  EXPECT(a == b);
  EXPECT(a != c);
  random_directions(one.data(), 1, 500, 42, {});
  EXPECT(std::equal(one.begin(), one.end(), a.begin()));
  double m = 0, v = 0;
  for (float x : a) m += x;
  m /= double(a.size());
  for (float x : a) v += (x - m) * (x - m);
  v /= double(a.size());
  EXPECT(std::fabs(m) < 0.1);
  EXPECT(std::fabs(v - 1.0) < 0.15);
}

NNSCOPE_TEST(grid_layout_is_row_major_last_axis_fastest) {
  const std::size_t k = 3, s = 5;
  const std::size_t n = grid_points(k, s, 1000);
  EXPECT_EQ(n, std::size_t(125));
  std::vector<float> c(n * k);
  grid_coordinates(c.data(), k, s, 0.5, Spacing::Linspace, 0, n, {});
  for (std::size_t i0 = 0; i0 < s; ++i0)
    for (std::size_t i1 = 0; i1 < s; ++i1)
      for (std::size_t i2 = 0; i2 < s; ++i2) {
        const std::size_t idx = (i0 * s + i1) * s + i2;
        EXPECT_EQ(c[idx * k + 0], float(-0.5 + 0.25 * double(i0)));
        EXPECT_EQ(c[idx * k + 1], float(-0.5 + 0.25 * double(i1)));
        EXPECT_EQ(c[idx * k + 2], float(-0.5 + 0.25 * double(i2)));
      }
  // a chunk equals the same rows of the whole
  std::vector<float> part(7 * k);
  grid_coordinates(part.data(), k, s, 0.5, Spacing::Linspace, 50, 7, {});
  EXPECT(std::equal(part.begin(), part.end(), c.begin() + 50 * k));
  // the centre is exactly 0 and linspace is exactly symmetric
  for (std::size_t steps : {3u, 41u, 101u}) {
    EXPECT_EQ(grid_coordinate((steps - 1) / 2, steps, 0.01, Spacing::Linspace), 0.0);
    EXPECT_EQ(grid_coordinate(0, steps, 0.01, Spacing::Linspace), -0.01);
    EXPECT_EQ(grid_coordinate(steps - 1, steps, 0.01, Spacing::Linspace), 0.01);
    for (std::size_t i = 0; i < steps; ++i)
      EXPECT_EQ(grid_coordinate(i, steps, 0.01, Spacing::Linspace),
                -grid_coordinate(steps - 1 - i, steps, 0.01, Spacing::Linspace));
  }
  // Landscaper: offsets −20…20 times 2·distance/41
  EXPECT_NEAR(grid_coordinate(0, 41, 0.01, Spacing::Landscaper), -20 * 0.02 / 41, 1e-18);
  EXPECT_EQ(grid_coordinate(20, 41, 0.01, Spacing::Landscaper), 0.0);
  EXPECT_NEAR(grid_coordinate(40, 41, 0.01, Spacing::Landscaper), 20 * 0.02 / 41, 1e-18);
}

NNSCOPE_TEST(grid_size_guards) {
  EXPECT_EQ(grid_points(4, 41, 3000000), std::size_t(2825761));
  EXPECT_THROWS_CODE(grid_points(4, 41, 2825760), ErrorCode::TooLarge);
  EXPECT_THROWS_CODE(grid_points(40, 1000, SIZE_MAX), ErrorCode::TooLarge);
  EXPECT_THROWS_CODE(grid_points(0, 41, 1000), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(grid_points(2, 1, 1000), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(scattered_samples_are_seeded_and_latin) {
  const std::size_t n = 200, k = 3;
  std::vector<float> u(n * k), u2(n * k), l(n * k);
  scattered_coordinates(u.data(), n, k, 0.1, Scatter::Uniform, 9, {});
  scattered_coordinates(u2.data(), n, k, 0.1, Scatter::Uniform, 9, {});
  EXPECT(u == u2);
  for (float x : u) EXPECT(x >= -0.1f && x <= 0.1f);
  scattered_coordinates(l.data(), n, k, 0.1, Scatter::Latin, 9, {});
  for (std::size_t j = 0; j < k; ++j) {
    std::vector<int> hits(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const double t = (double(l[i * k + j]) + 0.1) / 0.2 * double(n);
      const long s = std::lround(std::floor(t));
      EXPECT(s >= 0 && s < long(n) + 1);
      hits[std::min<std::size_t>(std::size_t(s), n - 1)]++;
    }
    for (int h : hits) EXPECT_EQ(h, 1);  // every stratum exactly once per axis
  }
}

NNSCOPE_TEST(cancellation_is_honoured) {
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  std::vector<float> d = kDir;
  EXPECT_THROWS_CODE(normalize_directions(kTheta.data(), d.data(), 1, 9, kLayout, Normalization::Layer, BiasMode::Keep, ctx),
                     ErrorCode::Cancelled);
  std::vector<float> r(10);
  EXPECT_THROWS_CODE(random_directions(r.data(), 1, 10, 0, ctx), ErrorCode::Cancelled);
}
