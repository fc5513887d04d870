// Tests of the CPU dense linear algebra (linalg/blas.h): SGEMM, SGEMV, SDOT,
// SNRM2, SAXPY against float64 references, on every ISA tier this CPU has,
// plus determinism across thread counts, cancellation, progress and validation.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "cpu_settings.h"
#include "reference.h"
#include "linalg/blas.h"
#include "linalg/gemm_kernels.h"

using namespace nnscope;
using namespace nnscope::linalg;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

using Restore = test::CpuSettingsGuard;

// Runs fn for every ISA tier the CPU supports, with the limit set to that tier.
template <typename F>
void for_each_isa(F&& fn) {
  Restore restore;
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(cpu_isa())) continue;
    set_isa_limit(isa);
    EXPECT(active_isa() == isa);
    fn(isa);
  }
}

std::vector<float> gaussian(std::size_t n, uint64_t seed, uint64_t offset = 0) {
  std::vector<float> v(n);
  Rng(seed).gaussian(v.data(), n, offset);
  return v;
}

struct GemmCase {
  bool ta = false, tb = false;
  std::size_t m = 0, n = 0, k = 0;
  std::size_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra leading-dimension elements
  float alpha = 1.0f, beta = 0.0f;
  bool nan_c = false;  // fill C with NaN (only meaningful with beta == 0)
};

struct GemmData {
  GemmCase cs;
  std::size_t lda, ldb, ldc;
  std::vector<float> a, b, c0;
  GemmArgs args(std::vector<float>& c) const {
    GemmArgs g;
    g.trans_a = cs.ta;
    g.trans_b = cs.tb;
    g.m = cs.m;
    g.n = cs.n;
    g.k = cs.k;
    g.alpha = cs.alpha;
    g.a = a.data();
    g.lda = lda;
    g.b = b.data();
    g.ldb = ldb;
    g.beta = cs.beta;
    g.c = c.data();
    g.ldc = ldc;
    return g;
  }
};

GemmData make_gemm(const GemmCase& cs, uint64_t seed) {
  GemmData d;
  d.cs = cs;
  const std::size_t a_rows = cs.ta ? cs.k : cs.m, a_cols = cs.ta ? cs.m : cs.k;
  const std::size_t b_rows = cs.tb ? cs.n : cs.k, b_cols = cs.tb ? cs.k : cs.n;
  d.lda = std::max<std::size_t>(1, a_cols + cs.pad_a);
  d.ldb = std::max<std::size_t>(1, b_cols + cs.pad_b);
  d.ldc = std::max<std::size_t>(1, cs.n + cs.pad_c);
  d.a = gaussian(std::max<std::size_t>(1, a_rows * d.lda), seed, 0);
  d.b = gaussian(std::max<std::size_t>(1, b_rows * d.ldb), seed, 1u << 28);
  d.c0 = cs.nan_c ? std::vector<float>(std::max<std::size_t>(1, cs.m * d.ldc), kNaN)
                  : gaussian(std::max<std::size_t>(1, cs.m * d.ldc), seed, 2u << 28);
  return d;
}

// Float64 reference of alpha·op(A)·op(B) + beta·C0 (beta == 0 ignores C0).
std::vector<double> ref_gemm(const GemmData& d) {
  const GemmCase& cs = d.cs;
  std::vector<float> unused;
  const GemmArgs g = d.args(unused);
  std::vector<double> r(cs.m * cs.n);
  for (std::size_t i = 0; i < cs.m; ++i)
    for (std::size_t j = 0; j < cs.n; ++j) r[i * cs.n + j] = test::gemm_ref_at(g, i, j, d.c0[i * d.ldc + j]);
  return r;
}

// Relative Frobenius error of the m×n view of c against ref.
double rel_error(const std::vector<float>& c, std::size_t ldc, const std::vector<double>& ref, std::size_t m,
                 std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double e = double(c[i * ldc + j]) - ref[i * n + j];
      num += e * e;
      den += ref[i * n + j] * ref[i * n + j];
    }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

std::string describe(const GemmCase& cs) {
  return std::string(cs.ta ? "T" : "N") + (cs.tb ? "T" : "N") + " " + std::to_string(cs.m) + "x" +
         std::to_string(cs.n) + "x" + std::to_string(cs.k) + " alpha " + std::to_string(cs.alpha) + " beta " +
         std::to_string(cs.beta) + " isa " + isa_name(active_isa());
}

// Runs one case through the routed API and checks it against the reference,
// including that padding between rows of C is untouched.
void check_gemm(const GemmCase& cs, uint64_t seed) {
  const GemmData d = make_gemm(cs, seed);
  std::vector<float> c = d.c0;
  sgemm(Device::Cpu, d.args(c));
  const std::vector<double> ref = ref_gemm(d);
  const double err = rel_error(c, d.ldc, ref, cs.m, cs.n);
  const double tol = 1e-5 * std::sqrt(double(std::max<std::size_t>(cs.k, 1)));
  if (!(err <= tol))
    throw test::Failure("sgemm " + describe(cs) + ": relative error " + std::to_string(err) + " > " +
                        std::to_string(tol));
  for (std::size_t i = 0; i < cs.m; ++i)
    for (std::size_t j = cs.n; j < d.ldc; ++j) {
      const float got = c[i * d.ldc + j], want = d.c0[i * d.ldc + j];
      EXPECT(std::memcmp(&got, &want, sizeof(float)) == 0);
    }
}

std::vector<float> run_gemm(const GemmData& d) {
  std::vector<float> c = d.c0;
  sgemm(Device::Cpu, d.args(c));
  return c;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

// ---------------------------------------------------------------- SGEMM

NNSCOPE_TEST(sgemm_dispatch_follows_isa_limit) {
  for_each_isa([](Isa isa) {
    const std::string name = detail::gemm_kernel().name;
    EXPECT(name.rfind(isa_name(isa), 0) == 0);
    EXPECT(std::string(detail::blas1_kernel().name) == isa_name(isa));
  });
}

NNSCOPE_TEST(sgemm_small_known_answer) {
  // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154], exact in float.
  const float a[] = {1, 2, 3, 4, 5, 6}, at[] = {1, 4, 2, 5, 3, 6};
  const float b[] = {7, 8, 9, 10, 11, 12}, bt[] = {7, 9, 11, 8, 10, 12};
  for_each_isa([&](Isa) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      float c[4] = {1, 1, 1, 1};
      GemmArgs g;
      g.trans_a = ta;
      g.trans_b = tb;
      g.m = 2;
      g.n = 2;
      g.k = 3;
      g.a = ta ? at : a;
      g.lda = ta ? 2 : 3;
      g.b = tb ? bt : b;
      g.ldb = tb ? 3 : 2;
      g.c = c;
      g.ldc = 2;
      g.alpha = 2.0f;
      g.beta = -1.0f;
      sgemm(Device::Cpu, g);
      EXPECT_EQ(c[0], 115.0f);
      EXPECT_EQ(c[1], 127.0f);
      EXPECT_EQ(c[2], 277.0f);
      EXPECT_EQ(c[3], 307.0f);
    }
  });
}

NNSCOPE_TEST(sgemm_random_shapes_every_isa_and_transpose) {
  struct S {
    std::size_t m, n, k;
  };
  const S shapes[] = {{1, 1, 1},     {1, 37, 1},   {17, 1, 33},   {37, 1, 1},    {2, 2, 1},     {3, 5, 7},
                      {13, 250, 1},  {12, 32, 16}, {24, 64, 8},   {11, 31, 9},   {127, 129, 131},
                      {300, 17, 5},  {7, 300, 40}, {2, 1000, 3},  {1000, 3, 21}, {1, 700, 300}, {500, 1, 600},
                      {40, 45, 4000}};
  uint64_t seed = 100;
  for_each_isa([&](Isa) {
    for (const S& s : shapes)
      for (int t = 0; t < 4; ++t) {
        GemmCase cs;
        cs.ta = t & 1;
        cs.tb = t & 2;
        cs.m = s.m;
        cs.n = s.n;
        cs.k = s.k;
        check_gemm(cs, ++seed);
      }
  });
}

NNSCOPE_TEST(sgemm_leading_dims_alpha_beta) {
  struct AB {
    float alpha, beta;
  };
  const AB abs[] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 2.0f}, {3.0f, -1.0f}, {0.0f, 0.5f}, {0.0f, 0.0f}};
  uint64_t seed = 900;
  for_each_isa([&](Isa) {
    for (const AB& ab : abs)
      for (int t = 0; t < 4; ++t)
        for (std::size_t m : {1u, 5u, 29u})
          for (std::size_t n : {1u, 33u, 70u}) {
            GemmCase cs;
            cs.ta = t & 1;
            cs.tb = t & 2;
            cs.m = m;
            cs.n = n;
            cs.k = 19;
            cs.pad_a = 3;
            cs.pad_b = 17;
            cs.pad_c = 5;
            cs.alpha = ab.alpha;
            cs.beta = ab.beta;
            check_gemm(cs, ++seed);
          }
  });
}

NNSCOPE_TEST(sgemm_beta_zero_ignores_nan_in_c) {
  uint64_t seed = 2000;
  for_each_isa([&](Isa) {
    for (int t = 0; t < 4; ++t)
      for (std::size_t m : {1u, 13u, 40u})
        for (std::size_t n : {1u, 7u, 50u})
          for (std::size_t k : {0u, 1u, 30u}) {
            GemmCase cs;
            cs.ta = t & 1;
            cs.tb = t & 2;
            cs.m = m;
            cs.n = n;
            cs.k = k;
            cs.pad_c = 2;
            cs.alpha = 1.5f;
            cs.beta = 0.0f;
            cs.nan_c = true;
            const GemmData d = make_gemm(cs, ++seed);
            std::vector<float> c = run_gemm(d);
            for (std::size_t i = 0; i < m; ++i)
              for (std::size_t j = 0; j < n; ++j) EXPECT(std::isfinite(c[i * d.ldc + j]));
            check_gemm(cs, seed);
          }
  });
}

NNSCOPE_TEST(sgemm_zero_sized_dims) {
  for_each_isa([](Isa) {
    // m == 0 or n == 0: nothing is touched.
    std::vector<float> a(12, 1.0f), b(15, 1.0f), c(6, kNaN);
    GemmArgs g;
    g.m = 0;
    g.n = 5;
    g.k = 3;
    g.a = a.data();
    g.lda = 3;
    g.b = b.data();
    g.ldb = 5;
    g.c = c.data();
    g.ldc = 5;
    sgemm(Device::Cpu, g);
    g.m = 4;
    g.n = 0;
    g.ldb = 1;
    g.ldc = 1;
    sgemm(Device::Cpu, g);
    for (float v : c) EXPECT(std::isnan(v));
    // k == 0: C = beta·C; A and B may be null.
    c = {1, 2, 3, 4, 5, 6};
    g = GemmArgs{};
    g.m = 2;
    g.n = 3;
    g.k = 0;
    g.c = c.data();
    g.ldc = 3;
    g.beta = -2.0f;
    sgemm(Device::Cpu, g);
    EXPECT(c == std::vector<float>({-2, -4, -6, -8, -10, -12}));
    std::fill(c.begin(), c.end(), kNaN);
    g.beta = 0.0f;
    sgemm(Device::Cpu, g);
    EXPECT(c == std::vector<float>(6, 0.0f));
  });
}

NNSCOPE_TEST(sgemm_crosses_every_block_boundary) {
  // m above the 2048-row ic block, n above the 4096-column jc block, several k
  // blocks, edge tiles everywhere (checked on the active tier only: time).
  GemmCase cs;
  cs.m = 2063;
  cs.n = 4133;
  cs.k = 9;
  cs.beta = 0.5f;
  cs.pad_c = 3;
  check_gemm(cs, 31);
  cs = GemmCase{};
  cs.m = 61;
  cs.n = 75;
  cs.k = 1337;
  cs.alpha = 0.25f;
  for (int t = 0; t < 4; ++t) {
    cs.ta = t & 1;
    cs.tb = t & 2;
    check_gemm(cs, 32 + t);
  }
}

NNSCOPE_TEST(sgemm_bit_identical_across_thread_counts) {
  struct S {
    std::size_t m, n, k;
    bool ta, tb;
  };
  const S shapes[] = {{300, 257, 700, false, false}, {1000, 40, 300, true, false}, {37, 900, 500, false, true},
                      {257, 255, 1025, true, true},  {1, 3000, 400, false, false}, {3000, 1, 400, true, false}};
  for_each_isa([&](Isa) {
    uint64_t seed = 77;
    for (const S& s : shapes) {
      GemmCase cs;
      cs.m = s.m;
      cs.n = s.n;
      cs.k = s.k;
      cs.ta = s.ta;
      cs.tb = s.tb;
      cs.beta = 0.75f;
      const GemmData d = make_gemm(cs, ++seed);
      set_num_threads(1);
      const std::vector<float> c1 = run_gemm(d);
      for (int t : {2, 3}) {
        set_num_threads(t);
        EXPECT(same_bits(run_gemm(d), c1));
      }
      const std::vector<double> ref = ref_gemm(d);
      EXPECT(rel_error(c1, d.ldc, ref, cs.m, cs.n) <= 1e-5 * std::sqrt(double(cs.k)));
    }
  });
}

NNSCOPE_TEST(sgemm_cancelled_before_and_during) {
  Restore restore;
  GemmCase cs;
  cs.m = cs.n = 700;
  cs.k = 1500;
  const GemmData d = make_gemm(cs, 5);
  std::vector<float> c = d.c0;
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, d.args(c), ctx), ErrorCode::Cancelled);
  // Cancel from the progress callback after the first report: the call must stop
  // early, with fewer reports than a full run gives.
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    int full_reports = 0;
    OpContext counting;
    counting.progress = [&](double, double) { ++full_reports; };
    sgemm(Device::Cpu, d.args(c), counting);
    EXPECT(full_reports >= 3);
    OpContext mid;
    mid.cancel = std::make_shared<CancelToken>();
    int reports = 0;
    mid.progress = [&](double, double) {
      ++reports;
      mid.cancel->cancel();
    };
    EXPECT_THROWS_CODE(sgemm(Device::Cpu, d.args(c), mid), ErrorCode::Cancelled);
    EXPECT_EQ(reports, 1);
  }
}

NNSCOPE_TEST(sgemm_progress_is_monotone_and_complete) {
  Restore restore;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    GemmCase cs;
    cs.m = 2100;  // two ic blocks
    cs.n = 300;
    cs.k = 900;   // three k blocks
    const GemmData d = make_gemm(cs, 6);
    std::vector<float> c = d.c0;
    std::vector<std::pair<double, double>> seen;
    OpContext ctx;
    ctx.progress = [&](double done, double total) { seen.emplace_back(done, total); };
    sgemm(Device::Cpu, d.args(c), ctx);
    EXPECT(seen.size() >= 4);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].second, seen[0].second);
      EXPECT(seen[i].first > 0 && seen[i].first <= seen[i].second);
      if (i) EXPECT(seen[i].first > seen[i - 1].first);
    }
    EXPECT_EQ(seen.back().first, seen.back().second);
    EXPECT_EQ(seen.back().second, 2.0 * 2100 * 300 * 900);
  }
}

NNSCOPE_TEST(sgemm_validation_errors) {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
  GemmArgs g;
  g.m = 4;
  g.n = 4;
  g.k = 4;
  g.a = a.data();
  g.lda = 4;
  g.b = b.data();
  g.ldb = 4;
  g.c = c.data();
  g.ldc = 4;
  sgemm(Device::Cpu, g);
  EXPECT_EQ(c[0], 4.0f);
  GemmArgs bad = g;
  bad.lda = 3;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::Shape);
  bad = g;
  bad.trans_a = true;
  bad.m = 6;  // A is k×m: lda ≥ 6 needed
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::Shape);
  bad = g;
  bad.ldb = 2;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::Shape);
  bad = g;
  bad.ldc = 3;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::Shape);
  bad = g;
  bad.a = nullptr;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::InvalidArgument);
  bad = g;
  bad.b = nullptr;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::InvalidArgument);
  bad = g;
  bad.c = nullptr;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::InvalidArgument);
  // m·n overflows size_t (nothing is dereferenced: validation comes first).
  bad = g;
  const std::size_t big = std::size_t(1) << 32;
  bad.m = bad.n = bad.k = big;
  bad.lda = bad.ldb = bad.ldc = big;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::TooLarge);
  // A row offset that overflows.
  bad = g;
  bad.m = std::size_t(1) << 40;
  bad.lda = std::size_t(1) << 40;
  EXPECT_THROWS_CODE(sgemm(Device::Cpu, bad), ErrorCode::TooLarge);
}

// ---------------------------------------------------------------- SGEMV

namespace {

struct GemvCase {
  bool trans;
  std::size_t m, n, pad;
  float alpha, beta;
  bool nan_y;
};

void check_gemv(const GemvCase& cs, uint64_t seed) {
  const std::size_t lda = cs.n + cs.pad;
  const std::size_t xl = cs.trans ? cs.m : cs.n, yl = cs.trans ? cs.n : cs.m;
  const std::vector<float> a = gaussian(std::max<std::size_t>(1, cs.m * lda), seed);
  const std::vector<float> x = gaussian(std::max<std::size_t>(1, xl), seed, 1u << 28);
  const std::vector<float> y0 = cs.nan_y ? std::vector<float>(std::max<std::size_t>(1, yl), kNaN)
                                         : gaussian(std::max<std::size_t>(1, yl), seed, 2u << 28);
  std::vector<float> y = y0;
  GemvArgs g;
  g.trans = cs.trans;
  g.m = cs.m;
  g.n = cs.n;
  g.alpha = cs.alpha;
  g.a = a.data();
  g.lda = lda;
  g.x = x.data();
  g.beta = cs.beta;
  g.y = y.data();
  sgemv(Device::Cpu, g);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < yl; ++i) {
    double s = 0;
    for (std::size_t p = 0; p < xl; ++p)
      s += double(cs.trans ? a[p * lda + i] : a[i * lda + p]) * double(x[p]);
    const double want = double(cs.alpha) * s + (cs.beta == 0.0f ? 0.0 : double(cs.beta) * y0[i]);
    num += (y[i] - want) * (y[i] - want);
    den += want * want;
  }
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const double tol = 1e-5 * std::sqrt(double(std::max<std::size_t>(xl, 1)));
  if (!(err <= tol))
    throw test::Failure(std::string("sgemv ") + (cs.trans ? "T " : "N ") + std::to_string(cs.m) + "x" +
                        std::to_string(cs.n) + " isa " + isa_name(active_isa()) + ": relative error " +
                        std::to_string(err));
}

std::vector<float> run_gemv(bool trans, std::size_t m, std::size_t n, const std::vector<float>& a,
                            const std::vector<float>& x, float beta) {
  std::vector<float> y(trans ? n : m, 0.5f);
  GemvArgs g;
  g.trans = trans;
  g.m = m;
  g.n = n;
  g.a = a.data();
  g.lda = n;
  g.x = x.data();
  g.beta = beta;
  g.y = y.data();
  sgemv_cpu(g);
  return y;
}

}  // namespace

NNSCOPE_TEST(sgemv_random_shapes_every_isa) {
  uint64_t seed = 500;
  for_each_isa([&](Isa) {
    for (bool trans : {false, true})
      for (std::size_t m : {0u, 1u, 3u, 17u, 64u, 257u})
        for (std::size_t n : {0u, 1u, 5u, 16u, 31u, 1030u})
          for (std::size_t pad : {0u, 3u}) {
            check_gemv({trans, m, n, pad, 1.0f, 0.0f, false}, ++seed);
            check_gemv({trans, m, n, pad, -0.75f, 1.5f, false}, ++seed);
            check_gemv({trans, m, n, pad, 2.0f, 0.0f, true}, ++seed);
          }
    check_gemv({false, 3000, 700, 1, 1.0f, 0.0f, false}, ++seed);
    check_gemv({true, 3000, 700, 1, 1.0f, 0.0f, false}, ++seed);
    check_gemv({true, 20000, 30, 0, 1.0f, 0.25f, false}, ++seed);  // tall, narrow: row blocks
  });
}

NNSCOPE_TEST(sgemv_edge_cases) {
  // m·n == 0 on the x side: y = beta·y (beta == 0: zeros even over NaN).
  std::vector<float> y = {1, kNaN, 3};
  GemvArgs g;
  g.m = 3;
  g.n = 0;
  g.y = y.data();
  g.beta = 0.0f;
  sgemv(Device::Cpu, g);
  EXPECT(y == std::vector<float>(3, 0.0f));
  y = {1, 2, 3};
  g.beta = 2.0f;
  sgemv(Device::Cpu, g);
  EXPECT(y == std::vector<float>({2, 4, 6}));
  // Known answer, both orientations: A = [1 2; 3 4; 5 6].
  const float a[] = {1, 2, 3, 4, 5, 6}, x2[] = {1, -1}, x3[] = {1, 0, -2};
  for_each_isa([&](Isa) {
    float yn[3] = {9, 9, 9}, yt[2] = {1, 1};
    GemvArgs n;
    n.m = 3;
    n.n = 2;
    n.a = a;
    n.lda = 2;
    n.x = x2;
    n.y = yn;
    sgemv(Device::Cpu, n);
    EXPECT_EQ(yn[0], -1.0f);
    EXPECT_EQ(yn[1], -1.0f);
    EXPECT_EQ(yn[2], -1.0f);
    GemvArgs t = n;
    t.trans = true;
    t.x = x3;
    t.y = yt;
    t.beta = 1.0f;
    sgemv(Device::Cpu, t);
    EXPECT_EQ(yt[0], -8.0f);
    EXPECT_EQ(yt[1], -9.0f);
  });
  // Validation.
  GemvArgs bad;
  bad.m = 2;
  bad.n = 3;
  bad.a = a;
  bad.lda = 2;
  bad.x = x3;
  bad.y = y.data();
  EXPECT_THROWS_CODE(sgemv(Device::Cpu, bad), ErrorCode::Shape);
  bad.lda = 3;
  bad.x = nullptr;
  EXPECT_THROWS_CODE(sgemv(Device::Cpu, bad), ErrorCode::InvalidArgument);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  bad.x = x3;
  EXPECT_THROWS_CODE(sgemv(Device::Cpu, bad, ctx), ErrorCode::Cancelled);
}

NNSCOPE_TEST(sgemv_bit_identical_across_thread_counts) {
  for_each_isa([](Isa) {
    struct S {
      std::size_t m, n;
    };
    for (S s : {S{4000, 900}, S{50000, 37}, S{37, 50000}}) {
      const std::vector<float> a = gaussian(s.m * s.n, 8), xn = gaussian(s.n, 9), xt = gaussian(s.m, 10);
      set_num_threads(1);
      const std::vector<float> yn = run_gemv(false, s.m, s.n, a, xn, 0.5f);
      const std::vector<float> yt = run_gemv(true, s.m, s.n, a, xt, 0.5f);
      for (int t : {2, 3}) {
        set_num_threads(t);
        EXPECT(same_bits(run_gemv(false, s.m, s.n, a, xn, 0.5f), yn));
        EXPECT(same_bits(run_gemv(true, s.m, s.n, a, xt, 0.5f), yt));
      }
    }
  });
}

// ---------------------------------------------------------------- level 1

NNSCOPE_TEST(sdot_snrm2_against_float64) {
  for_each_isa([](Isa) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 31u, 33u, 1000u, 32768u, 32769u, 1000003u}) {
      const std::vector<float> x = gaussian(std::max<std::size_t>(n, 1), 11), y = gaussian(std::max<std::size_t>(n, 1), 12);
      double dot = 0, sabs = 0, ss = 0;
      for (std::size_t i = 0; i < n; ++i) {
        dot += double(x[i]) * y[i];
        sabs += std::fabs(double(x[i]) * y[i]);
        ss += double(x[i]) * x[i];
      }
      // Products of floats are exact in double: only double rounding remains.
      EXPECT_NEAR(sdot(Device::Cpu, n, x.data(), y.data()), dot, 1e-14 * (sabs + 1) * std::log2(double(n) + 2));
      EXPECT_NEAR(snrm2(Device::Cpu, n, x.data()), std::sqrt(ss), 1e-14 * (std::sqrt(ss) + 1) * std::log2(double(n) + 2));
    }
    EXPECT_EQ(sdot_cpu(0, nullptr, nullptr), 0.0);
    EXPECT_EQ(snrm2_cpu(0, nullptr), 0.0);
    // 3-4-5 exactly, and values whose squares overflow float.
    const float v[] = {3, 4};
    EXPECT_EQ(snrm2_cpu(2, v), 5.0);
    for (std::size_t n : {1u, 5u, 1000u, 100001u}) {
      std::vector<float> big(n, 1e30f);
      const double want = std::sqrt(double(n)) * double(1e30f);
      EXPECT_NEAR(snrm2_cpu(n, big.data()), want, 1e-13 * want);
      EXPECT_NEAR(sdot_cpu(n, big.data(), big.data()), want * want, 1e-13 * want * want);
      std::vector<float> tiny(n, 1e-30f);
      const double wt = std::sqrt(double(n)) * double(1e-30f);
      EXPECT_NEAR(snrm2_cpu(n, tiny.data()), wt, 1e-13 * wt);
    }
  });
}

NNSCOPE_TEST(saxpy_against_reference) {
  for_each_isa([](Isa) {
    for (std::size_t n : {0u, 1u, 7u, 15u, 16u, 65u, 1000u, 32769u, 300001u}) {
      const std::vector<float> x = gaussian(std::max<std::size_t>(n, 1), 13);
      const std::vector<float> y0 = gaussian(std::max<std::size_t>(n, 1), 14);
      for (float alpha : {0.0f, 1.0f, -2.5f}) {
        std::vector<float> y = y0;
        saxpy(Device::Cpu, n, alpha, x.data(), y.data());
        for (std::size_t i = 0; i < n; ++i) {
          const double want = double(y0[i]) + double(alpha) * x[i];
          // one fma (or mul + add): at most one rounding of each
          EXPECT(std::fabs(y[i] - want) <= 1.2e-7 * (std::fabs(double(y0[i])) + std::fabs(double(alpha) * x[i])));
        }
      }
    }
    std::vector<float> y = {1, 2};
    saxpy_cpu(0, 1.0f, nullptr, y.data());
    EXPECT(y == std::vector<float>({1, 2}));
  });
}

NNSCOPE_TEST(level1_bit_identical_across_thread_counts) {
  // Sizes of one, a few and many 32 Ki-element chunks.
  for_each_isa([](Isa) {
    for (std::size_t n : {std::size_t(50001), std::size_t(90001), (std::size_t(1) << 20) + 12345}) {
      const std::vector<float> x = gaussian(n, 15), y0 = gaussian(n, 16);
      set_num_threads(1);
      const double d1 = sdot_cpu(n, x.data(), y0.data()), r1 = snrm2_cpu(n, x.data());
      std::vector<float> y1 = y0;
      saxpy_cpu(n, 0.3f, x.data(), y1.data());
      for (int t : {2, 3}) {
        set_num_threads(t);
        const double d = sdot_cpu(n, x.data(), y0.data()), r = snrm2_cpu(n, x.data());
        EXPECT(std::memcmp(&d, &d1, sizeof d) == 0);
        EXPECT(std::memcmp(&r, &r1, sizeof r) == 0);
        std::vector<float> y = y0;
        saxpy_cpu(n, 0.3f, x.data(), y.data());
        EXPECT(same_bits(y, y1));
      }
    }
  });
}
