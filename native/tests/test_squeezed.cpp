// Tests of Squeezed Attention on the CPU (attention/kmeans.h, attention/squeezed.h):
// K-means against a float64 brute-force Lloyd, its invariants (monotone inertia,
// determinism across thread counts, reseeding, the raw-mean centroid rule, cosine
// assignment); centroid scores against a float64 brute force of §1.3 (huge logits,
// empty clusters, GQA policies, the two-level lookup); calibration quantiles
// against an expanded sort + numpy-style interpolation; selection counts and
// compaction; the all-keys identity with dense attention (prefill and decode);
// a planted-topic recovery test; degenerate inputs; error codes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/kmeans.h"
#include "attention/kmeans_kernels.h"
#include "attention/squeezed.h"
#include "base/context.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "cpu_settings.h"

using namespace nnscope;
using namespace nnscope::attention;

namespace {

using Restore = test::CpuSettingsGuard;

std::vector<float> gaussian(std::size_t n, std::uint64_t seed, float sd = 1.0f, std::uint64_t stream = 0) {
  std::vector<float> v(n);
  Rng(seed, stream).gaussian(v.data(), n);
  for (auto& x : v) x *= sd;
  return v;
}

KvView view(const std::vector<float>& x, std::size_t heads, std::size_t tokens, std::size_t d,
            std::size_t stride = 0) {
  KvView v;
  v.data = x.data();
  v.storage = Storage::F32;
  v.heads = heads;
  v.tokens = tokens;
  v.d = d;
  v.head_stride = stride;
  return v;
}

Queries qview(const std::vector<float>& x, std::size_t heads, std::size_t tokens, std::size_t d) {
  return Queries{x.data(), heads, tokens, d};
}

// Mixture data: `centres` Gaussian blobs in d dims.
std::vector<float> blobs(std::size_t n, std::size_t d, std::size_t centres, std::uint64_t seed, float spread = 0.3f) {
  auto c = gaussian(centres * d, seed, 1.0f, 1);
  auto x = gaussian(n * d, seed, spread, 2);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < d; ++t) x[i * d + t] += c[(i % centres) * d + t];
  return x;
}

// ---------------------------------------------------------------- brute-force Lloyd
struct BfResult {
  std::vector<std::int32_t> labels;
  std::vector<double> raw_means;
  std::size_t iterations = 0;
};

// The contract of kmeans.h in float64 (no empty clusters expected).
BfResult bf_lloyd(const std::vector<float>& x, std::size_t n, std::size_t d, std::vector<float> c, std::size_t k,
                  std::size_t iters, bool cosine) {
  std::vector<float> y(x);
  if (cosine)
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t t = 0; t < d; ++t) s += double(x[i * d + t]) * x[i * d + t];
      const double nrm = std::sqrt(s);
      for (std::size_t t = 0; t < d; ++t) y[i * d + t] = nrm > 0 ? static_cast<float>(x[i * d + t] * (1.0 / nrm)) : 0.0f;
    }
  BfResult r;
  std::vector<std::int32_t> lab(n), prev(n);
  for (std::size_t it = 0; it < iters; ++it) {
    for (std::size_t i = 0; i < n; ++i) {
      double best = 1e300;
      std::int32_t bj = 0;
      for (std::size_t j = 0; j < k; ++j) {
        double s = 0;
        for (std::size_t t = 0; t < d; ++t) {
          const double df = double(y[i * d + t]) - double(c[j * d + t]);
          s += df * df;
        }
        if (s < best) {
          best = s;
          bj = std::int32_t(j);
        }
      }
      lab[i] = bj;
    }
    ++r.iterations;
    if (it > 0 && lab == prev) break;
    for (std::size_t j = 0; j < k; ++j) {
      std::vector<double> acc(d, 0.0);
      std::size_t cnt = 0;
      for (std::size_t i = 0; i < n; ++i)
        if (lab[i] == std::int32_t(j)) {
          ++cnt;
          for (std::size_t t = 0; t < d; ++t) acc[t] += y[i * d + t];
        }
      if (cnt)
        for (std::size_t t = 0; t < d; ++t) c[j * d + t] = static_cast<float>(acc[t] * (1.0 / double(cnt)));
    }
    prev = lab;
  }
  r.labels = lab;
  r.raw_means.assign(k * d, 0.0);
  std::vector<std::size_t> cnt(k, 0);
  for (std::size_t i = 0; i < n; ++i) {
    ++cnt[std::size_t(lab[i])];
    for (std::size_t t = 0; t < d; ++t) r.raw_means[std::size_t(lab[i]) * d + t] += x[i * d + t];
  }
  for (std::size_t j = 0; j < k; ++j)
    for (std::size_t t = 0; t < d; ++t) r.raw_means[j * d + t] /= double(std::max<std::size_t>(cnt[j], 1));
  return r;
}

std::vector<float> unit_rows(const std::vector<float>& x, std::size_t n, std::size_t d) {
  std::vector<float> y(x);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t t = 0; t < d; ++t) s += double(x[i * d + t]) * x[i * d + t];
    const double nrm = std::sqrt(s);
    for (std::size_t t = 0; t < d; ++t) y[i * d + t] = nrm > 0 ? static_cast<float>(x[i * d + t] * (1.0 / nrm)) : 0.0f;
  }
  return y;
}

// ---------------------------------------------------------------- brute-force scores (§1.3) in float64
// Scores of one query set (rows [m, d]) over the clusters in `alive` (n_j > 0).
std::vector<double> bf_scores(const float* cent, const std::int32_t* sizes, const std::vector<bool>& alive,
                              std::size_t C, std::size_t d, const float* rows, std::size_t m, double scale) {
  std::vector<double> s(C, 0.0);
  for (std::size_t r = 0; r < m; ++r) {
    std::vector<double> a(C);
    double mx = -1e300;
    for (std::size_t j = 0; j < C; ++j) {
      if (!alive[j] || sizes[j] <= 0) continue;
      double dot = 0;
      for (std::size_t t = 0; t < d; ++t) dot += double(rows[r * d + t]) * cent[j * d + t];
      a[j] = dot * scale;
      mx = std::max(mx, a[j]);
    }
    double z = 0;
    for (std::size_t j = 0; j < C; ++j)
      if (alive[j] && sizes[j] > 0) z += double(sizes[j]) * std::exp(a[j] - mx);
    for (std::size_t j = 0; j < C; ++j)
      if (alive[j] && sizes[j] > 0) s[j] += std::exp(a[j] - mx) / z;
  }
  for (auto& v : s) v /= double(m);
  return s;
}

// A hand-made context: random centroids, random labels with the given empty clusters.
SqueezedContext make_context(std::size_t H, std::size_t N, std::size_t W, std::size_t C, std::size_t d,
                             std::uint64_t seed, const std::vector<std::size_t>& empty, float cscale = 1.0f) {
  SqueezedContext c;
  c.heads = H;
  c.tokens = N;
  c.d = d;
  c.window = W;
  c.clusters = C;
  c.centroids = gaussian(H * C * d, seed, cscale, 7);
  const std::size_t nc = N - W;
  c.labels.resize(H * nc);
  c.sizes.assign(H * C, 0);
  std::vector<std::int32_t> allowed;
  for (std::size_t j = 0; j < C; ++j)
    if (std::find(empty.begin(), empty.end(), j) == empty.end()) allowed.push_back(std::int32_t(j));
  const Rng rng(seed, 9);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t t = 0; t < nc; ++t) {
      const std::int32_t l = allowed[rng.below_at(h * nc + t, allowed.size())];
      c.labels[h * nc + t] = l;
      ++c.sizes[h * C + std::size_t(l)];
    }
  return c;
}

// ---------------------------------------------------------------- brute-force attention (float64)
// Output of every query (heads Hq, tokens Nq) over: fixed keys (all N, or the
// selected list of its group) + dense keys (T; causal: query i sees 0..i).
struct BfAttn {
  std::vector<double> out, lse;
};
BfAttn bf_attention(const std::vector<float>& q, std::size_t Hq, std::size_t Nq, std::size_t d,
                    const std::vector<float>& fk, const std::vector<float>& fv, std::size_t H, std::size_t N,
                    const std::vector<float>& uk, const std::vector<float>& uv, std::size_t T, bool causal,
                    double scale) {
  BfAttn r;
  r.out.assign(Hq * Nq * d, 0.0);
  r.lse.assign(Hq * Nq, 0.0);
  const std::size_t G = Hq / H;
  for (std::size_t hq = 0; hq < Hq; ++hq) {
    const std::size_t h = hq / G;
    for (std::size_t i = 0; i < Nq; ++i) {
      const float* qi = q.data() + (hq * Nq + i) * d;
      std::vector<double> a;
      std::vector<const float*> vs;
      auto add = [&](const float* k, const float* v) {
        double s = 0;
        for (std::size_t t = 0; t < d; ++t) s += double(qi[t]) * k[t];
        a.push_back(s * scale);
        vs.push_back(v);
      };
      for (std::size_t j = 0; j < N; ++j) add(fk.data() + (h * N + j) * d, fv.data() + (h * N + j) * d);
      const std::size_t tend = causal ? std::min(T, i + 1) : T;
      for (std::size_t j = 0; j < tend; ++j) add(uk.data() + (h * T + j) * d, uv.data() + (h * T + j) * d);
      double mx = -1e300;
      for (double x : a) mx = std::max(mx, x);
      double z = 0;
      for (double x : a) z += std::exp(x - mx);
      double* o = r.out.data() + (hq * Nq + i) * d;
      for (std::size_t j = 0; j < a.size(); ++j) {
        const double p = std::exp(a[j] - mx) / z;
        for (std::size_t t = 0; t < d; ++t) o[t] += p * vs[j][t];
      }
      r.lse[hq * Nq + i] = mx + std::log(z);
    }
  }
  return r;
}

double max_rel(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(double(got[i]) - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  return num / std::max(den, 1e-30);
}

// T orthonormal rows in d ≥ T dims (Gram–Schmidt on Gaussian rows, float64).
std::vector<float> orthonormal_rows(std::size_t T, std::size_t d, std::uint64_t seed) {
  auto g = gaussian(T * d, seed);
  std::vector<double> a(g.begin(), g.end());
  for (std::size_t t = 0; t < T; ++t) {
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t u = 0; u < t; ++u) {
        double dot = 0;
        for (std::size_t i = 0; i < d; ++i) dot += a[t * d + i] * a[u * d + i];
        for (std::size_t i = 0; i < d; ++i) a[t * d + i] -= dot * a[u * d + i];
      }
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) s += a[t * d + i] * a[t * d + i];
    for (std::size_t i = 0; i < d; ++i) a[t * d + i] /= std::sqrt(s);
  }
  return std::vector<float>(a.begin(), a.end());
}

// Average over the Nu queries of head hq of the true attention mass (over the N
// fixed keys of KV head h) that falls on the keys marked `in`.
double recovered_mass(const std::vector<float>& q, std::size_t hq, std::size_t Nu, const std::vector<float>& fk,
                      std::size_t h, std::size_t N, std::size_t d, const std::vector<bool>& in) {
  const double scale = 1.0 / std::sqrt(double(d));
  double mass = 0;
  for (std::size_t r = 0; r < Nu; ++r) {
    const float* qi = q.data() + (hq * Nu + r) * d;
    std::vector<double> a(N);
    double mx = -1e300;
    for (std::size_t t = 0; t < N; ++t) {
      double s = 0;
      for (std::size_t i = 0; i < d; ++i) s += double(qi[i]) * fk[(h * N + t) * d + i];
      a[t] = s * scale;
      mx = std::max(mx, a[t]);
    }
    double z = 0, zs = 0;
    for (std::size_t t = 0; t < N; ++t) {
      z += std::exp(a[t] - mx);
      if (in[t]) zs += std::exp(a[t] - mx);
    }
    mass += zs / z / double(Nu);
  }
  return mass;
}

std::vector<bool> selected_set(const SqueezedSelection& sel, std::size_t g, std::size_t N) {
  std::vector<bool> in(N, false);
  for (std::size_t i = sel.offsets[g]; i < sel.offsets[g + 1]; ++i) in[std::size_t(sel.indices[i])] = true;
  return in;
}

bool ascending_unique(const std::int32_t* p, std::size_t n) {
  for (std::size_t i = 1; i < n; ++i)
    if (p[i] <= p[i - 1]) return false;
  return true;
}

}  // namespace

// ================================================================ K-means
NNSCOPE_TEST(kmeans_matches_bruteforce_lloyd) {
  for (bool cosine : {true, false}) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const std::size_t n = 240, d = 5, k = 6;
      auto x = blobs(n, d, 6, seed, 0.6f);
      const auto y = cosine ? unit_rows(x, n, d) : x;
      std::vector<float> init(k * d);
      for (std::size_t j = 0; j < k; ++j)  // first k points of different blobs
        std::memcpy(init.data() + j * d, y.data() + (j * 37 % n) * d, d * sizeof(float));
      KmeansOptions o;
      o.clusters = k;
      o.iterations = 25;
      o.cosine = cosine;
      o.initial_centroids = init.data();
      const KmeansResult r = kmeans(x.data(), n, d, o);
      const BfResult b = bf_lloyd(x, n, d, init, k, 25, cosine);
      EXPECT(r.labels == b.labels);
      EXPECT_EQ(r.iterations, b.iterations);
      EXPECT_EQ(r.reseeded, std::size_t(0));
      for (std::size_t i = 0; i < k * d; ++i) EXPECT_NEAR(r.centroids[i], b.raw_means[i], 1e-5);
      std::size_t total = 0;
      for (auto s : r.sizes) total += std::size_t(s);
      EXPECT_EQ(total, n);
    }
  }
}

NNSCOPE_TEST(kmeans_bounds_equal_full_lloyd) {
  // Hamerly's bounds skip points; the result must equal plain Lloyd (every point
  // re-assigned by kmeans_assign every iteration, float64 means) bit for bit.
  for (std::uint64_t seed : {4u, 5u}) {
    const std::size_t n = 4000, d = 20, k = 60, iters = 25;
    auto x = blobs(n, d, 30, seed, 0.7f);
    std::vector<float> c(k * d);
    for (std::size_t j = 0; j < k; ++j) std::memcpy(c.data() + j * d, x.data() + (j * 61 % n) * d, d * sizeof(float));
    KmeansOptions o;
    o.clusters = k;
    o.iterations = iters;
    o.cosine = false;
    o.initial_centroids = c.data();
    const KmeansResult r = kmeans(x.data(), n, d, o);
    std::vector<std::int32_t> lab(n), prev(n);
    std::vector<float> dist(n);
    std::size_t it = 0;
    for (std::size_t t = 0; t < iters; ++t) {
      kmeans_assign(x.data(), n, d, c.data(), k, lab.data(), dist.data());
      ++it;
      if (t > 0 && lab == prev) break;
      for (std::size_t j = 0; j < k; ++j) {
        std::vector<double> acc(d, 0.0);
        std::size_t cnt = 0;
        for (std::size_t i = 0; i < n; ++i)
          if (lab[i] == std::int32_t(j)) {
            ++cnt;
            for (std::size_t q = 0; q < d; ++q) acc[q] += x[i * d + q];
          }
        EXPECT(cnt > 0);
        for (std::size_t q = 0; q < d; ++q) c[j * d + q] = static_cast<float>(acc[q] * (1.0 / double(cnt)));
      }
      prev = lab;
    }
    EXPECT(r.skipped > n);  // the bounds did prune
    EXPECT_EQ(r.iterations, it);
    EXPECT(r.labels == lab);
    EXPECT(std::memcmp(r.centroids.data(), c.data(), k * d * sizeof(float)) == 0);
    if (std::getenv("NNSCOPE_TEST_VERBOSE"))
      std::printf("  seed %zu: %zu iterations, %zu of %zu point-iterations skipped\n", std::size_t(seed), r.iterations,
                  r.skipped, n * (r.iterations - 1));
  }
}

NNSCOPE_TEST(kmeans_inertia_nonincreasing) {
  for (auto init : {KmeansInit::PlusPlus, KmeansInit::Random}) {
    for (bool cosine : {true, false}) {
      const std::size_t n = 3000, d = 24, k = 40;
      auto x = blobs(n, d, 25, 11, 0.8f);
      KmeansOptions o;
      o.clusters = k;
      o.iterations = 30;
      o.init = init;
      o.cosine = cosine;
      o.seed = 5;
      const KmeansResult r = kmeans(x.data(), n, d, o);
      EXPECT(r.history.size() == r.iterations && r.iterations >= 2);
      for (std::size_t t = 1; t < r.history.size(); ++t)
        EXPECT(r.history[t] <= r.history[t - 1] * (1 + 1e-6) + 1e-9);
      EXPECT(r.inertia <= r.history.back() * (1 + 1e-5) + 1e-9);
      EXPECT(r.history.front() > r.history.back());  // Lloyd made progress
      EXPECT(r.skipped > 0);                             // the bounds pruned something
      // inertia is Σ‖y − μ_label‖² in the clustered space: recompute in float64
      const auto y = cosine ? unit_rows(x, n, d) : x;
      std::vector<double> mu(k * d, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t t = 0; t < d; ++t) mu[std::size_t(r.labels[i]) * d + t] += y[i * d + t];
      for (std::size_t j = 0; j < k; ++j)
        for (std::size_t t = 0; t < d; ++t) mu[j * d + t] /= double(r.sizes[j]);
      double in = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t t = 0; t < d; ++t) {
          const double df = y[i * d + t] - mu[std::size_t(r.labels[i]) * d + t];
          in += df * df;
        }
      EXPECT_NEAR(r.inertia, in, 1e-4 * in);
    }
  }
}

NNSCOPE_TEST(kmeans_deterministic_across_threads) {
  Restore restore;
  const std::size_t n = 5000, d = 64, k = 120;
  auto x = blobs(n, d, 50, 21, 1.0f);
  KmeansOptions o;
  o.clusters = k;
  o.iterations = 8;
  o.seed = 77;
  set_num_threads(1);
  const KmeansResult a = kmeans(x.data(), n, d, o);
  set_num_threads(2);
  const KmeansResult b = kmeans(x.data(), n, d, o);
  set_num_threads(3);
  const KmeansResult c = kmeans(x.data(), n, d, o);
  for (const KmeansResult* r : {&b, &c}) {
    EXPECT(r->labels == a.labels);
    EXPECT(r->sizes == a.sizes);
    EXPECT(std::memcmp(r->centroids.data(), a.centroids.data(), a.centroids.size() * sizeof(float)) == 0);
    EXPECT(std::memcmp(&r->inertia, &a.inertia, sizeof(double)) == 0);
    EXPECT_EQ(r->iterations, a.iterations);
  }
  // A different seed gives a different clustering (the seed is used).
  o.seed = 78;
  const KmeansResult e = kmeans(x.data(), n, d, o);
  EXPECT(!(e.labels == a.labels));
}

NNSCOPE_TEST(kmeans_reseeds_empty_clusters) {
  const std::size_t n = 500, d = 8, k = 10;
  auto x = blobs(n, d, 5, 31, 0.5f);
  for (bool cosine : {true, false}) {
    // All initial centres equal: everything lands in cluster 0, nine clusters empty.
    std::vector<float> init(k * d);
    const auto y = cosine ? unit_rows(x, n, d) : x;
    for (std::size_t j = 0; j < k; ++j) std::memcpy(init.data() + j * d, y.data(), d * sizeof(float));
    KmeansOptions o;
    o.clusters = k;
    o.iterations = 15;
    o.cosine = cosine;
    o.initial_centroids = init.data();
    const KmeansResult r = kmeans(x.data(), n, d, o);
    EXPECT(r.reseeded >= k - 1);
    for (std::size_t j = 0; j < k; ++j) {
      EXPECT(r.sizes[j] >= 1);
      double nrm = 0;
      for (std::size_t t = 0; t < d; ++t) {
        EXPECT(std::isfinite(r.centroids[j * d + t]));
        nrm += double(r.centroids[j * d + t]) * r.centroids[j * d + t];
      }
      EXPECT(nrm > 0);
    }
    // iterations = 0 with empties: one assignment + reseed, no update, still no empty cluster.
    o.iterations = 0;
    const KmeansResult z = kmeans(x.data(), n, d, o);
    EXPECT_EQ(z.iterations, std::size_t(1));
    EXPECT_EQ(z.reseeded, k - 1);
    for (std::size_t j = 0; j < k; ++j) EXPECT(z.sizes[j] >= 1);
  }
  // All-identical points, k = 5: every cluster gets a point, centroids = the point.
  std::vector<float> same(100 * 4);
  for (std::size_t i = 0; i < 100; ++i)
    for (std::size_t t = 0; t < 4; ++t) same[i * 4 + t] = float(t) - 1.5f;
  KmeansOptions o;
  o.clusters = 5;
  const KmeansResult r = kmeans(same.data(), 100, 4, o);
  for (std::size_t j = 0; j < 5; ++j) {
    EXPECT(r.sizes[j] >= 1);
    for (std::size_t t = 0; t < 4; ++t) EXPECT_NEAR(r.centroids[j * 4 + t], float(t) - 1.5f, 1e-6);
  }
  EXPECT_NEAR(r.inertia, 0.0, 1e-9);
  // More clusters than points: clamped.
  o.clusters = 500;
  const KmeansResult big = kmeans(same.data(), 100, 4, o);
  EXPECT_EQ(big.clusters, std::size_t(100));
  for (auto s : big.sizes) EXPECT_EQ(s, 1);
}

NNSCOPE_TEST(kmeans_cosine_assignment_and_raw_means) {
  // Two directions, magnitudes 1..100 each, plus zero rows. Cosine K-means (k = 2)
  // must split by direction; Euclidean K-means splits by magnitude instead.
  const std::size_t d = 3, per = 60, n = 2 * per + 2;
  std::vector<float> x(n * d, 0.0f);
  for (std::size_t i = 0; i < per; ++i) {
    const float m = 1.0f + 99.0f * float(i) / float(per - 1);
    x[i * d + 0] = m;
    x[i * d + 1] = 0.01f * float(i % 3);
    x[(per + i) * d + 1] = m;
    x[(per + i) * d + 2] = 0.01f * float(i % 5);
  }
  // rows 2·per and 2·per+1 are zero rows
  KmeansOptions o;
  o.clusters = 2;
  o.iterations = 20;
  o.seed = 3;
  o.cosine = true;
  const KmeansResult r = kmeans(x.data(), n, d, o);
  for (std::size_t i = 1; i < per; ++i) EXPECT_EQ(r.labels[i], r.labels[0]);
  for (std::size_t i = 1; i < per; ++i) EXPECT_EQ(r.labels[per + i], r.labels[per]);
  EXPECT(r.labels[0] != r.labels[per]);
  // Centroids are the raw means of the members (zero rows included), not unit vectors.
  std::vector<double> mean(2 * d, 0.0);
  std::vector<std::size_t> cnt(2, 0);
  for (std::size_t i = 0; i < n; ++i) {
    ++cnt[std::size_t(r.labels[i])];
    for (std::size_t t = 0; t < d; ++t) mean[std::size_t(r.labels[i]) * d + t] += x[i * d + t];
  }
  for (std::size_t j = 0; j < 2; ++j)
    for (std::size_t t = 0; t < d; ++t) {
      EXPECT(std::isfinite(r.centroids[j * d + t]));
      EXPECT_NEAR(r.centroids[j * d + t], mean[j * d + t] / double(cnt[j]), 1e-4);
    }
  double nrm = 0;
  for (std::size_t t = 0; t < d; ++t) nrm += double(r.centroids[t]) * r.centroids[t];
  EXPECT(std::sqrt(nrm) > 10);  // raw magnitude (~50), not the unit-sphere mean
  // Euclidean on the same data does not split by direction.
  o.cosine = false;
  const KmeansResult e = kmeans(x.data(), n, d, o);
  bool mixed = false;
  for (std::size_t i = 0; i < per; ++i) mixed |= e.labels[i] != e.labels[0];
  EXPECT(mixed);
}

NNSCOPE_TEST(kmeans_assign_every_isa) {
  Restore restore;
  const std::size_t n = 777, d = 37, k = 45;
  auto y = gaussian(n * d, 41);
  auto c = gaussian(k * d, 42);
  // Plant exact ties: centre 30 equals centre 3 (the lower index must win).
  std::memcpy(c.data() + 30 * d, c.data() + 3 * d, d * sizeof(float));
  std::vector<std::int32_t> ref(n);
  for (std::size_t i = 0; i < n; ++i) {
    double best = 1e300;
    for (std::size_t j = 0; j < k; ++j) {
      double s = 0;
      for (std::size_t t = 0; t < d; ++t) {
        const double df = double(y[i * d + t]) - c[j * d + t];
        s += df * df;
      }
      if (s < best) {
        best = s;
        ref[i] = std::int32_t(j);
      }
    }
  }
  std::vector<std::int32_t> first;
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(cpu_isa())) continue;
    set_isa_limit(isa);
    std::vector<std::int32_t> lab(n);
    std::vector<float> dist(n);
    const double tot = kmeans_assign(y.data(), n, d, c.data(), k, lab.data(), dist.data());
    std::size_t agree = 0;
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      agree += lab[i] == ref[i];
      EXPECT(lab[i] != 30);
      sum += dist[i];
    }
    EXPECT(agree >= n - 2);  // float32 expansion may flip a near-tie
    EXPECT_NEAR(tot, sum, 1e-9 * sum);
    // The exp/sum kernel of the score softmax against libm.
    std::vector<float> l(53), l0;
    std::vector<double> w(53);
    for (std::size_t j = 0; j < l.size(); ++j) {
      l[j] = 150.0f - 3.1f * float(j);  // down to −10 below the max … −160
      w[j] = double(j % 4 + 1);
    }
    l0 = l;
    const double z = attention::detail::kmeans_kernel().exp_shift_sum(l.size(), l.data(), w.data());
    double zr = 0;
    for (std::size_t j = 0; j < l.size(); ++j) {
      const double e = std::exp(double(l0[j]) - 150.0);
      EXPECT_NEAR(l[j], e, 2e-6 * e + 1e-37);
      zr += w[j] * e;
    }
    EXPECT_NEAR(z, zr, 1e-6 * zr);
    if (first.empty()) first = lab;
    else EXPECT(lab == first);
    // The argmin kernel itself: label, best and second best against a scalar
    // reference, with planted ties, on row lengths around the vector widths.
    for (std::size_t kk : {1u, 2u, 5u, 8u, 15u, 16u, 17u, 31u, 32u, 33u, 45u, 100u}) {
      const std::size_t rows = 9;
      auto g = gaussian(rows * kk, 43 + kk);
      auto cn = gaussian(kk, 44 + kk);
      for (auto& v : g) v = std::round(v * 4) / 4;  // many exact ties
      for (auto& v : cn) v = std::round(v * 4) / 4;
      std::vector<std::int32_t> l(rows);
      std::vector<float> b(rows), sec(rows);
      attention::detail::kmeans_kernel().argmin_rows(rows, kk, g.data(), kk, cn.data(), l.data(), b.data(),
                                                     sec.data());
      for (std::size_t r = 0; r < rows; ++r) {
        float m1 = std::numeric_limits<float>::infinity(), m2 = m1;
        std::int32_t mi = -1;
        for (std::size_t j = 0; j < kk; ++j) {
          const float v = g[r * kk + j] + cn[j];
          if (v < m1) {
            m2 = m1;
            m1 = v;
            mi = std::int32_t(j);
          } else if (v < m2) {
            m2 = v;
          }
        }
        EXPECT_EQ(l[r], mi);
        EXPECT_EQ(b[r], m1);
        EXPECT_EQ(sec[r], m2);
      }
    }
  }
}

NNSCOPE_TEST(kmeans_bad_input_and_cancel) {
  std::vector<float> x = gaussian(40, 1);
  KmeansOptions o;
  o.clusters = 2;
  EXPECT_THROWS_CODE(kmeans(x.data(), 0, 4, o), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(kmeans(x.data(), 10, 0, o), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(kmeans(nullptr, 10, 4, o), ErrorCode::InvalidArgument);
  o.clusters = 0;
  EXPECT_THROWS_CODE(kmeans(x.data(), 10, 4, o), ErrorCode::InvalidArgument);
  o.clusters = 2;
  x[17] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROWS_CODE(kmeans(x.data(), 10, 4, o), ErrorCode::NonFinite);
  auto y = gaussian(4000 * 16, 3);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  o.clusters = 20;
  EXPECT_THROWS_CODE(kmeans(y.data(), 4000, 16, o, ctx), ErrorCode::Cancelled);
}

// ================================================================ scoring
NNSCOPE_TEST(scores_match_float64_bruteforce) {
  const std::size_t H = 2, N = 400, W = 40, C = 16, d = 24;
  const std::vector<std::size_t> empty = {3, 9};
  for (float qscale : {0.2f, 60.0f}) {  // 60: logits of several hundred (overflow in the reference)
    SqueezedContext c = make_context(H, N, W, C, d, 5, empty);
    validate_context(c);
    for (std::size_t G : {1u, 2u}) {
      const std::size_t Hq = H * G, Nq = 7;
      auto q = gaussian(Hq * Nq * d, 6, qscale);
      for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
        ScoreOptions so;
        so.policy = pol;
        const CentroidScores s = centroid_scores(c, qview(q, Hq, Nq, d), so);
        const std::size_t groups = pol == GroupPolicy::PerQueryHead ? Hq : H;
        EXPECT_EQ(s.groups, groups);
        double maxlogit = 0;
        for (std::size_t g = 0; g < groups; ++g) {
          const std::size_t h = pol == GroupPolicy::PerQueryHead ? g / G : g;
          const std::size_t rows = pol == GroupPolicy::PerQueryHead ? Nq : G * Nq;
          const float* qr = q.data() + g * rows * d;
          std::vector<bool> alive(C, true);
          const auto ref = bf_scores(c.centroids.data() + h * C * d, c.sizes.data() + h * C, alive, C, d, qr, rows,
                                     1.0 / std::sqrt(double(d)));
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < C; ++j) {
              double dot = 0;
              for (std::size_t t = 0; t < d; ++t) dot += double(qr[r * d + t]) * c.centroids[(h * C + j) * d + t];
              maxlogit = std::max(maxlogit, std::fabs(dot / std::sqrt(double(d))));
            }
          for (std::size_t j = 0; j < C; ++j) {
            const float v = s.scores[g * C + j];
            EXPECT(std::isfinite(v));
            const bool is_empty = std::find(empty.begin(), empty.end(), j) != empty.end();
            if (is_empty) {
              EXPECT_EQ(v, 0.0f);
              EXPECT_EQ(int(s.scored[g * C + j]), 0);
            } else {
              EXPECT_EQ(int(s.scored[g * C + j]), 1);
              // float32 logits: relative error grows with |logit| (~1e-7·|a|).
              const double tol = (qscale > 1 ? 2e-4 : 2e-6) * ref[j] + 1e-12;
              EXPECT_NEAR(v, ref[j], tol);
            }
          }
          // Σ_j n_j·s_j = 1 (every query's estimated distribution sums to one).
          double mass = 0;
          for (std::size_t j = 0; j < C; ++j) mass += double(c.sizes[h * C + j]) * s.scores[g * C + j];
          EXPECT_NEAR(mass, 1.0, 1e-5);
          EXPECT_EQ(s.centroids_scored[g], C);
        }
        if (qscale > 1) EXPECT(maxlogit > 100);
      }
    }
  }
}

NNSCOPE_TEST(scores_hierarchical_bruteforce) {
  // A hand-made two-level context: fine clusters grouped under 4 coarse parents.
  const std::size_t H = 2, N = 600, W = 20, C = 24, C1 = 4, d = 16;
  SqueezedContext c = make_context(H, N, W, C, d, 8, {5});
  c.hierarchical = true;
  c.coarse_clusters = C1;
  c.coarse_centroids = gaussian(H * C1 * d, 9, 2.0f);
  c.parent.resize(H * C);
  c.coarse_sizes.assign(H * C1, 0);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t j = 0; j < C; ++j) {
      c.parent[h * C + j] = std::int32_t((j * 7 + h) % C1);
      c.coarse_sizes[h * C1 + std::size_t(c.parent[h * C + j])] += c.sizes[h * C + j];
    }
  validate_context(c);
  const std::size_t Hq = 4, Nq = 5, G = 2;
  auto q = gaussian(Hq * Nq * d, 10, 1.5f);
  const double scale = 1.0 / std::sqrt(double(d));
  for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
    ScoreOptions so;
    so.policy = pol;
    // τ¹ between the coarse scores: the median coarse score of group 0.
    ScoreOptions probe = so;
    probe.coarse_threshold = -1;  // keep all
    const CentroidScores all = centroid_scores(c, qview(q, Hq, Nq, d), probe);
    std::vector<float> cs0(all.coarse_scores.begin(), all.coarse_scores.begin() + C1);
    std::sort(cs0.begin(), cs0.end());
    so.coarse_threshold = 0.5 * (double(cs0[1]) + double(cs0[2]));
    const CentroidScores s = centroid_scores(c, qview(q, Hq, Nq, d), so);
    for (std::size_t g = 0; g < s.groups; ++g) {
      const std::size_t h = pol == GroupPolicy::PerQueryHead ? g / G : g;
      const std::size_t rows = pol == GroupPolicy::PerQueryHead ? Nq : G * Nq;
      const float* qr = q.data() + g * rows * d;
      std::vector<bool> all1(C1, true);
      const auto cref = bf_scores(c.coarse_centroids.data() + h * C1 * d, c.coarse_sizes.data() + h * C1, all1, C1, d,
                                  qr, rows, scale);
      std::vector<bool> alive(C, false);
      std::size_t children = 0;
      for (std::size_t j = 0; j < C1; ++j) {
        EXPECT_NEAR(s.coarse_scores[g * C1 + j], cref[j], 1e-5 * cref[j] + 1e-12);
        EXPECT_EQ(int(s.coarse_kept[g * C1 + j]), int(cref[j] > so.coarse_threshold));
      }
      for (std::size_t j = 0; j < C; ++j) {
        alive[j] = cref[std::size_t(c.parent[h * C + j])] > so.coarse_threshold && c.sizes[h * C + j] > 0;
        children += alive[j];
      }
      const auto fref = bf_scores(c.centroids.data() + h * C * d, c.sizes.data() + h * C, alive, C, d, qr, rows, scale);
      for (std::size_t j = 0; j < C; ++j) {
        EXPECT_EQ(int(s.scored[g * C + j]), int(alive[j]));
        EXPECT_NEAR(s.scores[g * C + j], fref[j], 1e-5 * fref[j] + 1e-12);
      }
      EXPECT_EQ(s.centroids_scored[g], C1 + children);
      if (g == 0 || pol == GroupPolicy::Shared) EXPECT(children < C);
    }
  }
}

// ================================================================ calibration
NNSCOPE_TEST(calibration_quantiles_bruteforce) {
  // pooled_quantiles on a known multiset (numpy: np.quantile([1,2,3,4], .5) = 2.5, .9 → 3.7).
  ScorePool p;
  p.scores = {4, 1, 3, 2};
  p.counts = {1, 1, 1, 1};
  auto v = pooled_quantiles(p, {0.5, 0.9, 0.1});
  EXPECT_NEAR(v[0], 2.5, 1e-12);
  EXPECT_NEAR(v[1], 3.7, 1e-12);
  EXPECT_NEAR(v[2], 1.3, 1e-12);
  // Run-length form equals the expanded multiset.
  p.scores = {0.5f, 0.25f, 1.0f};
  p.counts = {3, 2, 0};
  v = pooled_quantiles(p, {0.5, 0.75});  // [.25 .25 .5 .5 .5]
  EXPECT_NEAR(v[0], 0.5, 1e-12);
  EXPECT_NEAR(v[1], 0.5, 1e-12);

  const std::size_t H = 2, N = 500, W = 50, C = 20, d = 16;
  const std::vector<double> qs = {0.013, 0.5, 0.7, 0.8, 0.9, 0.9991};
  for (float qscale : {1.0f, 80.0f}) {
    SqueezedContext c = make_context(H, N, W, C, d, 12, {0, 7, 19});
    const std::size_t Hq = 4, Nw = 9;
    auto q = gaussian(Hq * Nw * d, 13, qscale);
    for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
      CalibrateOptions co;
      co.quantiles = qs;
      co.policy = pol;
      const Calibration k = calibrate(c, qview(q, Hq, Nw, d), co);
      EXPECT_EQ(k.thresholds.size(), qs.size());
      // Brute force: every clustered key of every group gets its cluster's
      // float64 score; sort; numpy linear interpolation.
      std::vector<double> all;
      const std::size_t G = Hq / H, groups = pol == GroupPolicy::PerQueryHead ? Hq : H;
      const std::size_t rows = pol == GroupPolicy::PerQueryHead ? Nw : G * Nw;
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t h = pol == GroupPolicy::PerQueryHead ? g / G : g;
        std::vector<bool> alive(C, true);
        const auto s = bf_scores(c.centroids.data() + h * C * d, c.sizes.data() + h * C, alive, C, d,
                                 q.data() + g * rows * d, rows, 1.0 / std::sqrt(double(d)));
        for (std::size_t t = 0; t < N - W; ++t) all.push_back(s[std::size_t(c.labels[h * (N - W) + t])]);
      }
      if (qscale > 1) {  // the regime where the reference's calibration overflowed
        double mx = 0;
        for (std::size_t r = 0; r < Hq * Nw; ++r)
          for (std::size_t j = 0; j < C; ++j) {
            const std::size_t h = r / Nw / G;
            double dot = 0;
            for (std::size_t t = 0; t < d; ++t) dot += double(q[r * d + t]) * c.centroids[(h * C + j) * d + t];
            mx = std::max(mx, dot / std::sqrt(double(d)));
          }
        EXPECT(mx > 100);
      }
      std::sort(all.begin(), all.end());
      for (std::size_t i = 0; i < qs.size(); ++i) {
        const double vi = qs[i] * double(all.size() - 1);
        const std::size_t lo = std::size_t(std::floor(vi));
        const double gmm = vi - double(lo);
        const double a = all[lo], b = all[std::min(lo + 1, all.size() - 1)];
        const double ref = a + (b - a) * gmm;
        EXPECT(std::isfinite(k.thresholds[i]));
        EXPECT_NEAR(k.thresholds[i], ref, (qscale > 1 ? 3e-4 : 1e-5) * std::fabs(ref) + 1e-12);
        if (i) EXPECT(k.thresholds[i] >= k.thresholds[i - 1]);
      }
      EXPECT(c.calibration.thresholds == k.thresholds);
      // The pooled form across "layers": two pools of the same layer = the same quantiles.
      ScorePool f;
      pool_calibration_scores(c, qview(q, Hq, Nw, d), pol, 0, f, nullptr);
      pool_calibration_scores(c, qview(q, Hq, Nw, d), pol, 0, f, nullptr);
      EXPECT_EQ(f.keys(), 2 * groups * (N - W));
      const auto v2 = pooled_quantiles(f, {0.5});
      EXPECT_NEAR(v2[0], k.thresholds[1], 1e-7 * std::fabs(v2[0]));
    }
  }
  ScorePool e;
  EXPECT_THROWS_CODE(pooled_quantiles(e, {0.5}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(pooled_quantiles(p, {1.0}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(pooled_quantiles(p, {0.0}), ErrorCode::InvalidArgument);
}

// ================================================================ selection
NNSCOPE_TEST(selection_modes_exact) {
  const std::size_t H = 2, N = 300, W = 30, C = 10, d = 8, nc = N - W;
  SqueezedContext c = make_context(H, N, W, C, d, 14, {4});
  // Hand-made scores with ties: cluster scores per group (Shared: 2 groups).
  CentroidScores s;
  s.policy = GroupPolicy::Shared;
  s.groups = H;
  s.clusters = C;
  s.scores = {0.5f, 0.9f, 0.9f, 0.1f, 0.0f, 0.3f, 0.3f, 0.2f, 0.05f, 0.7f,
              0.2f, 0.2f, 0.2f, 0.2f, 0.0f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
  s.scored.assign(H * C, 1);
  s.scored[4] = s.scored[C + 4] = 0;
  s.centroids_scored = {C, C};
  auto check_common = [&](const SqueezedSelection& sel) {
    EXPECT_EQ(sel.groups, H);
    EXPECT_EQ(sel.offsets[0], std::size_t(0));
    for (std::size_t g = 0; g < H; ++g) {
      const std::int32_t* ix = sel.indices.data() + sel.offsets[g];
      const std::size_t n = sel.offsets[g + 1] - sel.offsets[g];
      EXPECT(ascending_unique(ix, n));
      EXPECT(n >= W);
      for (std::size_t t = 0; t < W; ++t) EXPECT_EQ(ix[n - W + t], std::int32_t(nc + t));  // window always
      EXPECT_EQ(sel.stats[g].kept_keys, n);
      EXPECT_EQ(sel.stats[g].kept_clustered, n - W);
      EXPECT_NEAR(sel.stats[g].kept_fraction, double(n) / N, 1e-15);
      EXPECT_NEAR(sel.stats[g].kv_budget, double(n) / N + double(C) / (2.0 * N), 1e-15);
    }
  };
  // Threshold: keep iff score > τ (strict): group 0 τ = 0.3 → clusters 0, 1, 2, 9.
  SelectOptions so;
  so.mode = SelectMode::Threshold;
  so.threshold = 0.3;
  SqueezedSelection sel = select_keys(c, s, so);
  check_common(sel);
  for (std::size_t g = 0; g < H; ++g) {
    std::size_t expect = 0;
    for (std::size_t j = 0; j < C; ++j)
      if (j != 4 && double(s.scores[g * C + j]) > so.threshold) expect += std::size_t(c.sizes[(g)*C + j]);
    EXPECT_EQ(sel.stats[g].kept_clustered, expect);
    const std::int32_t* ix = sel.indices.data() + sel.offsets[g];
    for (std::size_t i = 0; i + W < sel.offsets[g + 1] - sel.offsets[g]; ++i) {
      const std::int32_t l = c.labels[g * nc + std::size_t(ix[i])];
      EXPECT(double(s.scores[g * C + std::size_t(l)]) > so.threshold);
    }
  }
  EXPECT_EQ(sel.stats[1].kept_clustered, std::size_t(0));  // all 0.2 ≤ 0.3
  // KeepFraction and Budget: exact counts, ranking by score then cluster index,
  // the boundary cluster contributes its lowest-index keys.
  for (int mode = 0; mode < 2; ++mode) {
    for (double f : {0.0, 0.1, 0.37, 0.5, 1.0}) {
      SelectOptions o;
      std::size_t target;
      if (mode == 0) {
        o.mode = SelectMode::KeepFraction;
        o.keep_fraction = f;
        target = std::size_t(std::ceil(f * double(nc)));
      } else {
        o.mode = SelectMode::Budget;
        o.budget = std::size_t(f * 300);  // 300 > nc: clamped
        target = std::min(o.budget, nc);
      }
      const SqueezedSelection r = select_keys(c, s, o);
      check_common(r);
      for (std::size_t g = 0; g < H; ++g) {
        std::size_t avail = nc - std::size_t(c.sizes[g * C + 4]);  // cluster 4 not scored
        EXPECT_EQ(r.stats[g].kept_clustered, std::min(target, avail));
        // Brute force of the rule.
        std::vector<std::size_t> ord;
        for (std::size_t j = 0; j < C; ++j)
          if (j != 4) ord.push_back(j);
        std::stable_sort(ord.begin(), ord.end(),
                         [&](std::size_t a, std::size_t b) { return s.scores[g * C + a] > s.scores[g * C + b]; });
        std::vector<bool> keep(nc, false);
        std::size_t left = target;
        for (std::size_t j : ord) {
          for (std::size_t t = 0; t < nc && left; ++t)
            if (std::size_t(c.labels[g * nc + t]) == j) {
              keep[t] = true;
              --left;
            }
        }
        std::vector<std::int32_t> expect;
        for (std::size_t t = 0; t < nc; ++t)
          if (keep[t]) expect.push_back(std::int32_t(t));
        for (std::size_t t = nc; t < N; ++t) expect.push_back(std::int32_t(t));
        std::vector<std::int32_t> got(r.indices.begin() + std::ptrdiff_t(r.offsets[g]),
                                      r.indices.begin() + std::ptrdiff_t(r.offsets[g + 1]));
        EXPECT(got == expect);
      }
    }
  }
  // Per-query-head groups with GQA: select from queries end to end.
  auto q = gaussian(4 * 3 * d, 15);
  SelectOptions o;
  o.mode = SelectMode::KeepFraction;
  o.keep_fraction = 0.2;
  o.score.policy = GroupPolicy::PerQueryHead;
  const SqueezedSelection r = select_keys(c, qview(q, 4, 3, d), o);
  EXPECT_EQ(r.groups, std::size_t(4));
  EXPECT(r.per_query_head);
  for (std::size_t g = 0; g < 4; ++g) EXPECT_EQ(r.stats[g].kept_keys, std::size_t(std::ceil(0.2 * nc)) + W);
  o.mode = SelectMode::Threshold;
  o.threshold = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROWS_CODE(select_keys(c, qview(q, 4, 3, d), o), ErrorCode::NonFinite);
  o.mode = SelectMode::KeepFraction;
  o.keep_fraction = 1.5;
  EXPECT_THROWS_CODE(select_keys(c, qview(q, 4, 3, d), o), ErrorCode::InvalidArgument);
}

// ================================================================ attention identity
NNSCOPE_TEST(all_keys_equals_dense_prefill_and_decode) {
  const std::size_t H = 2, N = 700, d = 32, Nu = 9;
  for (std::size_t G : {1u, 4u}) {
    const std::size_t Hq = H * G;
    auto fk = gaussian(H * N * d, 21, 1.0f);
    auto fv = gaussian(H * N * d, 22, 1.0f);
    auto uk = gaussian(H * Nu * d, 23, 1.0f);
    auto uv = gaussian(H * Nu * d, 24, 1.0f);
    auto q = gaussian(Hq * Nu * d, 25, 1.0f);
    BuildOptions bo;
    bo.window = 64;
    bo.iterations = 5;
    const SqueezedContext c = build_context(view(fk, H, N, d), bo);
    validate_context(c);
    const double scale = 1.0 / std::sqrt(double(d));
    const BfAttn ref = bf_attention(q, Hq, Nu, d, fk, fv, H, N, uk, uv, Nu, true, scale);
    for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
      for (int mode = 0; mode < 3; ++mode) {
        SelectOptions so;
        so.score.policy = pol;
        if (mode == 0) {
          so.mode = SelectMode::KeepFraction;
          so.keep_fraction = 1.0;
        } else if (mode == 1) {
          so.mode = SelectMode::Threshold;
          so.threshold = -1.0;
        } else {
          so.mode = SelectMode::Budget;
          so.budget = N;
        }
        std::vector<float> out(Hq * Nu * d), lse(Hq * Nu);
        SqueezedReport rep;
        squeezed_prefill(view(fk, H, N, d), view(fv, H, N, d), c, qview(q, Hq, Nu, d), view(uk, H, Nu, d),
                         view(uv, H, Nu, d), so, Output{out.data(), lse.data()}, &rep);
        EXPECT(max_rel(out, ref.out) <= 1e-5);
        for (std::size_t i = 0; i < lse.size(); ++i) EXPECT_NEAR(lse[i], ref.lse[i], 1e-5 * std::fabs(ref.lse[i]) + 1e-5);
        for (const auto& st : rep.selection.stats) EXPECT_EQ(st.kept_keys, N);
      }
      // Decode: one query per head against fixed + a tail in a DecodeTail with spare capacity.
      DecodeTail tail(H, d, 4);
      tail.append(uk.data(), uv.data(), 0);
      std::vector<float> k1(H * 5 * d), v1(H * 5 * d), k2(H * 4 * d), v2(H * 4 * d);
      for (std::size_t h = 0; h < H; ++h) {
        std::memcpy(k1.data() + h * 5 * d, uk.data() + h * Nu * d, 5 * d * sizeof(float));
        std::memcpy(v1.data() + h * 5 * d, uv.data() + h * Nu * d, 5 * d * sizeof(float));
        std::memcpy(k2.data() + h * 4 * d, uk.data() + (h * Nu + 5) * d, 4 * d * sizeof(float));
        std::memcpy(v2.data() + h * 4 * d, uv.data() + (h * Nu + 5) * d, 4 * d * sizeof(float));
      }
      tail.append(k1.data(), v1.data(), 5);
      tail.append(k2.data(), v2.data(), 4);
      EXPECT_EQ(tail.tokens(), Nu);
      EXPECT(tail.capacity() >= Nu);
      auto q1 = gaussian(Hq * d, 26);
      const BfAttn r1 = bf_attention(q1, Hq, 1, d, fk, fv, H, N, uk, uv, Nu, false, scale);
      SelectOptions so;
      so.score.policy = pol;
      so.mode = SelectMode::KeepFraction;
      so.keep_fraction = 1.0;
      std::vector<float> out(Hq * d), lse(Hq);
      squeezed_decode(view(fk, H, N, d), view(fv, H, N, d), c, qview(q1, Hq, 1, d), tail.keys(), tail.values(), so,
                      Output{out.data(), lse.data()}, nullptr);
      EXPECT(max_rel(out, r1.out) <= 1e-5);
      for (std::size_t i = 0; i < lse.size(); ++i) EXPECT_NEAR(lse[i], r1.lse[i], 1e-5 * std::fabs(r1.lse[i]) + 1e-5);
      // Empty tail: decode over the fixed context only (lse may be omitted).
      const BfAttn r0 = bf_attention(q1, Hq, 1, d, fk, fv, H, N, uk, uv, 0, false, scale);
      DecodeTail none(H, d, 2);
      squeezed_decode(view(fk, H, N, d), view(fv, H, N, d), c, qview(q1, Hq, 1, d), none.keys(), none.values(), so,
                      Output{out.data(), nullptr}, nullptr);
      EXPECT(max_rel(out, r0.out) <= 1e-5);
    }
  }
}

// ================================================================ planted structure
NNSCOPE_TEST(planted_topics_recovered) {
  // 32 topic directions; keys = 6·anchor(topic) + noise; every head's queries sit
  // near 2–3 topics. Keep 10 % → ≥ 95 % of the true attention mass and ≤ 5 %
  // output error, per head.
  const std::size_t H = 2, N = 4096, d = 64, T = 32, Hq = 4, Nu = 6;
  const auto anchors = orthonormal_rows(T, d, 51);
  std::vector<float> fk = gaussian(H * N * d, 53, 0.2f), fv = gaussian(H * N * d, 54, 1.0f);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t t = 0; t < N; ++t) {
      const std::size_t topic = (t + 5 * h) % T;  // balanced topics (~125 clustered keys each)
      for (std::size_t i = 0; i < d; ++i) fk[(h * N + t) * d + i] += 6.0f * anchors[topic * d + i];
    }
  // PerQueryHead: query head hq looks at topics {hq, hq + 7, (hq + 13 if hq even)}.
  // Shared: the G = 2 heads of a group look at the same topics (their union must
  // fit the budget), with different weights and noise.
  auto make_q = [&](bool shared) {
    std::vector<float> q = gaussian(Hq * Nu * d, shared ? 56 : 55, 0.2f);
    for (std::size_t hq = 0; hq < Hq; ++hq) {
      const std::size_t b = shared ? hq / 2 : hq;
      std::vector<std::size_t> topics = {b, b + 7};
      if (b % 2 == 0) topics.push_back(b + 13);
      for (std::size_t r = 0; r < Nu; ++r)
        for (std::size_t k = 0; k < topics.size(); ++k) {
          const float w = 16.0f / std::sqrt(float(topics.size())) * (shared && k == 0 ? 1.1f : 1.0f);
          for (std::size_t i = 0; i < d; ++i) q[(hq * Nu + r) * d + i] += w * anchors[topics[k] * d + i];
        }
    }
    return q;
  };
  BuildOptions bo;
  bo.iterations = 10;
  bo.seed = 3;
  const SqueezedContext c = build_context(view(fk, H, N, d), bo);
  EXPECT_EQ(c.clusters, std::size_t(std::floor(0.05 * double(N - 100))));
  validate_context(c);
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<float> none;
  for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
    const auto q = make_q(pol == GroupPolicy::Shared);
    const BfAttn ref = bf_attention(q, Hq, Nu, d, fk, fv, H, N, none, none, 0, false, scale);
    SelectOptions so;
    so.mode = SelectMode::KeepFraction;
    so.keep_fraction = 0.10;
    so.score.policy = pol;
    std::vector<float> out(Hq * Nu * d);
    DecodeTail empty(H, d, 1);
    SqueezedReport rep;
    squeezed_decode(view(fk, H, N, d), view(fv, H, N, d), c, qview(q, Hq, Nu, d), empty.keys(), empty.values(), so,
                    Output{out.data(), nullptr}, &rep);
    const SqueezedSelection& sel = rep.selection;
    for (std::size_t hq = 0; hq < Hq; ++hq) {
      const std::size_t g = pol == GroupPolicy::PerQueryHead ? hq : hq / 2, h = hq / 2;
      const double mass = recovered_mass(q, hq, Nu, fk, h, N, d, selected_set(sel, g, N));
      double err = 0, nrm = 0;
      for (std::size_t i = 0; i < Nu * d; ++i) {
        const double df = out[hq * Nu * d + i] - ref.out[hq * Nu * d + i];
        err += df * df;
        nrm += ref.out[hq * Nu * d + i] * ref.out[hq * Nu * d + i];
      }
      const double rel = std::sqrt(err / nrm);
      if (!(mass >= 0.95 && rel <= 0.05) || std::getenv("NNSCOPE_TEST_VERBOSE"))
        std::printf("  policy %d head %zu: mass %.4f rel err %.4f kept %zu\n", int(pol), hq, mass, rel,
                    sel.stats[g].kept_keys);
      EXPECT(mass >= 0.95);
      EXPECT(rel <= 0.05);
      EXPECT_EQ(sel.stats[g].kept_clustered, std::size_t(std::ceil(0.1 * double(N - 100))));
    }
  }
}

NNSCOPE_TEST(hierarchical_scores_fewer_centroids) {
  // Same planted data, two-level context; calibrate on window-like queries.
  const std::size_t H = 2, N = 4096, d = 64, T = 32, Hq = 2, Nu = 4;
  const auto anchors = orthonormal_rows(T, d, 61);
  std::vector<float> fk = gaussian(H * N * d, 63, 0.2f), fv = gaussian(H * N * d, 64);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t t = 0; t < N; ++t) {
      const std::size_t topic = (t + 5 * h) % T;  // balanced topics (~125 clustered keys each)
      for (std::size_t i = 0; i < d; ++i) fk[(h * N + t) * d + i] += 6.0f * anchors[topic * d + i];
    }
  auto make_q = [&](std::size_t rows, std::uint64_t seed) {
    std::vector<float> q = gaussian(Hq * rows * d, seed, 0.2f);
    for (std::size_t hq = 0; hq < Hq; ++hq)
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t t : {hq * 3 + 1, hq * 3 + 20})
          for (std::size_t i = 0; i < d; ++i) q[(hq * rows + r) * d + i] += 11.0f * anchors[t * d + i];
    return q;
  };
  BuildOptions bo;
  bo.iterations = 10;
  bo.hierarchical = true;
  SqueezedContext c = build_context(view(fk, H, N, d), bo);
  validate_context(c);
  EXPECT(c.hierarchical);
  EXPECT_EQ(c.coarse_clusters, std::size_t(std::floor(0.01 * double(N - 100))));
  // Coarse centroid = unweighted mean of its member fine centroids; coarse sizes in keys.
  const std::size_t C = c.clusters, C1 = c.coarse_clusters;
  for (std::size_t h = 0; h < H; ++h) {
    std::vector<double> m(C1 * d, 0.0);
    std::vector<std::size_t> cnt(C1, 0);
    std::vector<std::int64_t> keys(C1, 0);
    for (std::size_t j = 0; j < C; ++j) {
      const std::size_t p = std::size_t(c.parent[h * C + j]);
      ++cnt[p];
      keys[p] += c.sizes[h * C + j];
      for (std::size_t i = 0; i < d; ++i) m[p * d + i] += c.centroids[(h * C + j) * d + i];
    }
    for (std::size_t p = 0; p < C1; ++p) {
      EXPECT_EQ(keys[p], std::int64_t(c.coarse_sizes[h * C1 + p]));
      for (std::size_t i = 0; i < d; ++i)
        EXPECT_NEAR(c.coarse_centroids[(h * C1 + p) * d + i], m[p * d + i] / double(cnt[p]), 1e-4);
    }
  }
  auto calib = make_q(16, 65);
  CalibrateOptions co;
  co.quantiles = {0.9};
  co.coarse_quantiles = {0.5};
  const Calibration k = calibrate(c, qview(calib, Hq, 16, d), co);
  EXPECT_EQ(k.coarse_thresholds.size(), std::size_t(1));
  EXPECT(std::isfinite(k.coarse_thresholds[0]) && std::isfinite(k.thresholds[0]));
  auto q = make_q(Nu, 66);
  SelectOptions so;
  so.mode = SelectMode::Threshold;
  so.threshold = k.thresholds[0];
  so.score.coarse_threshold = k.coarse_thresholds[0];
  const SqueezedSelection two = select_keys(c, qview(q, Hq, Nu, d), so);
  so.score.hierarchical = false;
  const SqueezedSelection flat = select_keys(c, qview(q, Hq, Nu, d), so);
  for (std::size_t g = 0; g < Hq; ++g) {
    EXPECT_EQ(flat.stats[g].centroids_scored, C);
    EXPECT(two.stats[g].centroids_scored < C);
    EXPECT(two.stats[g].centroids_scored > C1);
    EXPECT(two.stats[g].kv_budget < flat.stats[g].kv_budget + 1e-12 || two.stats[g].kept_keys > flat.stats[g].kept_keys);
    // The two-level selection still finds the queried topics' attention mass.
    const double m2 = recovered_mass(q, g, Nu, fk, g, N, d, selected_set(two, g, N));
    const double m1 = recovered_mass(q, g, Nu, fk, g, N, d, selected_set(flat, g, N));
    if (!(m2 >= 0.95 && m2 >= m1 - 0.02) || std::getenv("NNSCOPE_TEST_VERBOSE"))
      std::printf("  group %zu: flat kept %zu scored %zu mass %.4f, two-level kept %zu scored %zu mass %.4f\n", g,
                  flat.stats[g].kept_keys, flat.stats[g].centroids_scored, m1, two.stats[g].kept_keys,
                  two.stats[g].centroids_scored, m2);
    EXPECT(m2 >= 0.95);
    EXPECT(m2 >= m1 - 0.02);
    EXPECT(flat.stats[g].kept_clustered > 0);
  }
}

NNSCOPE_TEST(squeezed_deterministic_across_threads) {
  Restore restore;
  const std::size_t H = 2, N = 1500, d = 32, Hq = 4, Nu = 5;
  auto fk = gaussian(H * N * d, 101), fv = gaussian(H * N * d, 102);
  auto uk = gaussian(H * Nu * d, 103), uv = gaussian(H * Nu * d, 104), q = gaussian(Hq * Nu * d, 105, 2.0f);
  BuildOptions bo;
  bo.hierarchical = true;
  bo.coarse_fraction = 0.02;
  bo.iterations = 6;
  std::vector<SqueezedContext> cs;
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<std::int32_t>> idx;
  for (int th : {1, 2}) {
    set_num_threads(th);
    SqueezedContext c = build_context(view(fk, H, N, d), bo);
    CalibrateOptions co;
    calibrate(c, qview(q, Hq, Nu, d), co);
    SelectOptions so;
    so.threshold = c.calibration.thresholds[2];
    so.score.coarse_threshold = c.calibration.coarse_thresholds[0];
    std::vector<float> out(Hq * Nu * d), lse(Hq * Nu);
    SqueezedReport rep;
    squeezed_prefill(view(fk, H, N, d), view(fv, H, N, d), c, qview(q, Hq, Nu, d), view(uk, H, Nu, d),
                     view(uv, H, Nu, d), so, Output{out.data(), lse.data()}, &rep);
    out.insert(out.end(), lse.begin(), lse.end());
    outs.push_back(out);
    idx.push_back(rep.selection.indices);
    cs.push_back(std::move(c));
  }
  EXPECT(cs[0].labels == cs[1].labels);
  EXPECT(cs[0].parent == cs[1].parent);
  EXPECT(std::memcmp(cs[0].centroids.data(), cs[1].centroids.data(), cs[0].centroids.size() * 4) == 0);
  EXPECT(std::memcmp(cs[0].coarse_centroids.data(), cs[1].coarse_centroids.data(),
                     cs[0].coarse_centroids.size() * 4) == 0);
  EXPECT(cs[0].calibration.thresholds == cs[1].calibration.thresholds);
  EXPECT(cs[0].calibration.coarse_thresholds == cs[1].calibration.coarse_thresholds);
  EXPECT(idx[0] == idx[1]);
  EXPECT(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * 4) == 0);
  EXPECT(idx[0].size() < Hq * N);  // something was pruned
}

// ================================================================ degenerate inputs
NNSCOPE_TEST(degenerate_inputs) {
  // All-identical keys.
  {
    const std::size_t H = 2, N = 300, d = 16;
    std::vector<float> k(H * N * d);
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = float(i % d) * 0.1f - 0.7f;
    BuildOptions bo;
    bo.window = 20;
    const SqueezedContext c = build_context(view(k, H, N, d), bo);
    validate_context(c);
    EXPECT_EQ(c.clusters, std::size_t(14));
    for (float v : c.centroids) EXPECT(std::isfinite(v));
    for (auto s : c.sizes) EXPECT(s >= 1);
    auto q = gaussian(H * 3 * d, 71);
    SqueezedContext cc = c;
    const Calibration cal = calibrate(cc, qview(q, H, 3, d), CalibrateOptions{});
    for (double t : cal.thresholds) EXPECT(std::isfinite(t));
    SelectOptions so;
    so.mode = SelectMode::KeepFraction;
    so.keep_fraction = 0.25;
    const SqueezedSelection s = select_keys(c, qview(q, H, 3, d), so);
    for (std::size_t g = 0; g < H; ++g) EXPECT_EQ(s.stats[g].kept_clustered, std::size_t(std::ceil(0.25 * 280)));
  }
  // N smaller than the requested centroid count and the window.
  {
    const std::size_t H = 1, N = 10, d = 4;
    auto k = gaussian(H * N * d, 72);
    BuildOptions bo;
    bo.clusters = 50;
    SqueezedContext c = build_context(view(k, H, N, d), bo);
    EXPECT_EQ(c.window, std::size_t(9));
    EXPECT_EQ(c.clusters, std::size_t(1));
    bo.window = 0;
    c = build_context(view(k, H, N, d), bo);
    EXPECT_EQ(c.clusters, std::size_t(10));
    for (auto s : c.sizes) EXPECT_EQ(s, 1);
    validate_context(c);
    bo.clusters = 0;
    bo.hierarchical = true;
    c = build_context(view(k, H, N, d), bo);  // C = ⌊0.05·10⌋ → 1, C1 → 1
    EXPECT_EQ(c.clusters, std::size_t(1));
    EXPECT_EQ(c.coarse_clusters, std::size_t(1));
    validate_context(c);
  }
  // d = 1, everything selected = dense.
  {
    const std::size_t H = 2, N = 200, d = 1, Nu = 3;
    auto fk = gaussian(H * N, 73), fv = gaussian(H * N, 74), uk = gaussian(H * Nu, 75), uv = gaussian(H * Nu, 76);
    auto q = gaussian(H * Nu, 77);
    BuildOptions bo;
    bo.window = 10;
    const SqueezedContext c = build_context(view(fk, H, N, d), bo);
    validate_context(c);
    SelectOptions so;
    so.mode = SelectMode::KeepFraction;
    so.keep_fraction = 1.0;
    std::vector<float> out(H * Nu * d);
    squeezed_prefill(view(fk, H, N, d), view(fv, H, N, d), c, qview(q, H, Nu, d), view(uk, H, Nu, d),
                     view(uv, H, Nu, d), so, Output{out.data(), nullptr}, nullptr);
    const BfAttn ref = bf_attention(q, H, Nu, d, fk, fv, H, N, uk, uv, Nu, true, 1.0);
    EXPECT(max_rel(out, ref.out) <= 1e-5);
  }
  // fp16 keys: the build sees the same float values as an F32 copy of them.
  {
    const std::size_t H = 1, N = 400, d = 8;
    auto k = gaussian(H * N * d, 78);
    std::vector<std::uint16_t> h16(k.size());
    std::vector<float> back(k.size());
    for (std::size_t i = 0; i < k.size(); ++i) {
      h16[i] = float_to_half(k[i]);
      back[i] = half_to_float(h16[i]);
    }
    KvView v16;
    v16.data = h16.data();
    v16.storage = Storage::F16;
    v16.heads = H;
    v16.tokens = N;
    v16.d = d;
    BuildOptions bo;
    const SqueezedContext a = build_context(v16, bo), b = build_context(view(back, H, N, d), bo);
    EXPECT(a.labels == b.labels);
    EXPECT(a.centroids == b.centroids);
  }
}

// ================================================================ errors, progress
NNSCOPE_TEST(bad_inputs_error_codes) {
  const std::size_t H = 2, N = 100, d = 8;
  auto k = gaussian(H * N * d, 81);
  BuildOptions bo;
  EXPECT_THROWS_CODE(build_context(view(k, H, 0, d), bo), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(build_context(view(k, H, N, 0), bo), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(build_context(view(k, 0, N, d), bo), ErrorCode::InvalidArgument);
  KvView nul = view(k, H, N, d);
  nul.data = nullptr;
  EXPECT_THROWS_CODE(build_context(nul, bo), ErrorCode::InvalidArgument);
  for (double f : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    BuildOptions b2;
    b2.centroid_fraction = f;
    EXPECT_THROWS_CODE(build_context(view(k, H, N, d), b2), ErrorCode::InvalidArgument);
    BuildOptions b3;
    b3.hierarchical = true;
    b3.coarse_fraction = f;
    EXPECT_THROWS_CODE(build_context(view(k, H, N, d), b3), ErrorCode::InvalidArgument);
  }
  auto bad = k;
  bad[(1 * N + 99) * d + 3] = std::numeric_limits<float>::infinity();  // a window key of head 1
  EXPECT_THROWS_CODE(build_context(view(bad, H, N, d), bo), ErrorCode::NonFinite);
  bad = k;
  bad[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROWS_CODE(build_context(view(bad, H, N, d), bo), ErrorCode::NonFinite);

  bo.window = 10;
  SqueezedContext c = build_context(view(k, H, N, d), bo);
  auto q = gaussian(3 * 2 * d, 82);
  EXPECT_THROWS_CODE(centroid_scores(c, qview(q, 3, 2, d), ScoreOptions{}), ErrorCode::Shape);  // 3 % 2
  EXPECT_THROWS_CODE(centroid_scores(c, qview(q, 2, 3, d - 1), ScoreOptions{}), ErrorCode::Shape);
  EXPECT_THROWS_CODE(centroid_scores(c, qview(q, 2, 0, d), ScoreOptions{}), ErrorCode::Shape);
  auto qn = q;
  qn[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROWS_CODE(centroid_scores(c, qview(qn, 2, 3, d), ScoreOptions{}), ErrorCode::NonFinite);
  CalibrateOptions co;
  co.quantiles = {0.5, 1.0};
  EXPECT_THROWS_CODE(calibrate(c, qview(q, 2, 3, d), co), ErrorCode::InvalidArgument);
  co.quantiles = {};
  EXPECT_THROWS_CODE(calibrate(c, qview(q, 2, 3, d), co), ErrorCode::InvalidArgument);
  // validate_context catches corrupted contexts.
  SqueezedContext bad_c = c;
  bad_c.labels[7] = std::int32_t(c.clusters);
  EXPECT_THROWS_CODE(validate_context(bad_c), ErrorCode::InvalidArgument);
  bad_c = c;
  bad_c.sizes[0] += 1;
  EXPECT_THROWS_CODE(validate_context(bad_c), ErrorCode::InvalidArgument);
  bad_c = c;
  bad_c.centroids.pop_back();
  EXPECT_THROWS_CODE(validate_context(bad_c), ErrorCode::Shape);
  bad_c = c;
  bad_c.centroids[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROWS_CODE(validate_context(bad_c), ErrorCode::NonFinite);
  bad_c = c;
  bad_c.calibration.quantiles = {0.5};
  bad_c.calibration.thresholds = {std::numeric_limits<double>::infinity()};
  EXPECT_THROWS_CODE(validate_context(bad_c), ErrorCode::NonFinite);
  // Attention shapes.
  auto v = gaussian(H * N * d, 83);
  auto uk = gaussian(H * 2 * d, 84);
  std::vector<float> out(2 * 2 * d);
  SelectOptions so;
  EXPECT_THROWS_CODE(squeezed_prefill(view(k, H, N - 1, d), view(v, H, N, d), c, qview(q, 2, 2, d),
                                      view(uk, H, 2, d), view(uk, H, 2, d), so, Output{out.data(), nullptr}, nullptr),
                     ErrorCode::Shape);
  EXPECT_THROWS_CODE(squeezed_prefill(view(k, H, N, d), view(v, H, N, d), c, qview(q, 2, 3, d), view(uk, H, 2, d),
                                      view(uk, H, 2, d), so, Output{out.data(), nullptr}, nullptr),
                     ErrorCode::Shape);  // user K/V rows ≠ user queries
  EXPECT_THROWS_CODE(DecodeTail(0, 4, 1), ErrorCode::InvalidArgument);
}

NNSCOPE_TEST(build_progress_and_cancel) {
  const std::size_t H = 3, N = 600, d = 16;
  auto k = gaussian(H * N * d, 91);
  std::vector<double> seen;
  OpContext ctx;
  std::mutex mu;
  bool units_ok = true;
  ctx.progress = [&](double done, double total) {
    std::lock_guard<std::mutex> lock(mu);
    units_ok &= total == double(H);  // progress in heads (fractions within a head)
    seen.push_back(done);
  };
  BuildOptions bo;
  bo.iterations = 3;
  const SqueezedContext c = build_context(view(k, H, N, d), bo, ctx);
  EXPECT(units_ok);
  EXPECT(seen.size() >= H);
  EXPECT_EQ(seen.back(), double(H));
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT(seen[i] >= seen[i - 1]);
  EXPECT_EQ(c.kmeans_iterations.size(), H);
  for (auto it : c.kmeans_iterations) EXPECT(it >= 1 && it <= 3);
  OpContext cx;
  cx.cancel = std::make_shared<CancelToken>();
  cx.cancel->cancel();
  EXPECT_THROWS_CODE(build_context(view(k, H, N, d), bo, cx), ErrorCode::Cancelled);
  // Same seed, same context; different heads use different streams.
  const SqueezedContext c2 = build_context(view(k, H, N, d), bo);
  EXPECT(c2.labels == c.labels && c2.centroids == c.centroids);
}

// ================================================================ SqueezedDecoder
// The decoder (cluster-sorted copy of the fixed K/V) selects exactly what
// squeezed_decode selects and gives the same attention to float32 rounding; the
// all-keys selection equals a float64 dense reference; results are identical for
// any thread count; 16-bit storage and GQA policies; devices.
NNSCOPE_TEST(decoder_matches_squeezed_decode) {
  Restore restore;
  const std::size_t H = 2, N = 900, d = 32, T = 6;
  for (Storage st : {Storage::F32, Storage::F16}) {
    auto fk = gaussian(H * N * d, 301), fv = gaussian(H * N * d, 302);
    auto tk = gaussian(H * T * d, 303), tv = gaussian(H * T * d, 304);
    std::vector<std::uint16_t> hk(fk.size()), hv(fv.size());
    if (st == Storage::F16) {
      for (std::size_t i = 0; i < fk.size(); ++i) {
        hk[i] = float_to_half(fk[i]);
        hv[i] = float_to_half(fv[i]);
      }
    }
    KvView K = view(fk, H, N, d), V = view(fv, H, N, d);
    if (st == Storage::F16) {
      K.data = hk.data();
      V.data = hv.data();
      K.storage = V.storage = Storage::F16;
    }
    BuildOptions bo;
    bo.window = 50;
    bo.iterations = 4;
    bo.clusters = 40;
    auto c = std::make_shared<const SqueezedContext>(build_context(K, bo));
    SqueezedDecoder dec(c, K, V, 2);
    EXPECT(dec.device() == Device::Cpu);
    std::vector<float> tk2(H * 4 * d), tv2(H * 4 * d);
    for (std::size_t h = 0; h < H; ++h) {
      std::memcpy(tk2.data() + h * 4 * d, tk.data() + (h * T + 2) * d, 4 * d * 4);
      std::memcpy(tv2.data() + h * 4 * d, tv.data() + (h * T + 2) * d, 4 * d * 4);
    }
    // the tail in one DecodeTail for the reference
    DecodeTail tail(H, d, T);
    std::vector<float> tk1(H * 2 * d), tv1(H * 2 * d);
    for (std::size_t h = 0; h < H; ++h) {
      std::memcpy(tk1.data() + h * 2 * d, tk.data() + h * T * d, 2 * d * 4);
      std::memcpy(tv1.data() + h * 2 * d, tv.data() + h * T * d, 2 * d * 4);
    }
    tail.append(tk1.data(), tv1.data(), 2);
    tail.append(tk2.data(), tv2.data(), 4);
    dec.append(tk1.data(), tv1.data(), 2);
    dec.append(tk2.data(), tv2.data(), 4);  // grows the tail (capacity 2)
    EXPECT_EQ(dec.tokens(), T);
    for (std::size_t G : {1u, 2u})
      for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared})
        for (int mode = 0; mode < 4; ++mode) {
          const std::size_t Hq = H * G;
          auto q = gaussian(Hq * d, 310 + mode + 10 * G, 2.0f);
          SelectOptions so;
          so.score.policy = pol;
          if (mode == 0) {
            so.mode = SelectMode::KeepFraction;
            so.keep_fraction = 0.13;  // a boundary cluster gives part of its keys
          } else if (mode == 1) {
            so.mode = SelectMode::Budget;
            so.budget = 77;
          } else if (mode == 2) {
            so.mode = SelectMode::Threshold;
            so.threshold = 0.8 / double(N);
          } else {
            so.mode = SelectMode::KeepFraction;
            so.keep_fraction = 0.0;  // window only
          }
          std::vector<float> o1(Hq * d), l1(Hq), o2(Hq * d), l2(Hq);
          SqueezedReport r1, r2, r3;
          squeezed_decode(K, V, *c, qview(q, Hq, 1, d), tail.keys(), tail.values(), so, Output{o1.data(), l1.data()},
                          &r1);
          dec.step(qview(q, Hq, 1, d), so, Output{o2.data(), l2.data()}, &r2);
          EXPECT(r1.selection.indices == r2.selection.indices);
          EXPECT(r1.selection.offsets == r2.selection.offsets);
          EXPECT_EQ(r1.selection.groups, r2.selection.groups);
          for (std::size_t g = 0; g < r1.selection.groups; ++g) {
            EXPECT_EQ(r1.selection.stats[g].kept_keys, r2.selection.stats[g].kept_keys);
            EXPECT_EQ(r1.selection.stats[g].centroids_scored, r2.selection.stats[g].centroids_scored);
            EXPECT(r1.selection.stats[g].kv_budget == r2.selection.stats[g].kv_budget);
          }
          for (std::size_t i = 0; i < o1.size(); ++i) EXPECT_NEAR(o2[i], o1[i], 2e-6 + 2e-6 * std::fabs(o1[i]));
          for (std::size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l2[i], l1[i], 2e-6 + 2e-6 * std::fabs(l1[i]));
          // stats only
          std::vector<float> o3(Hq * d);
          dec.step(qview(q, Hq, 1, d), so, Output{o3.data(), nullptr}, &r3, false);
          EXPECT(r3.selection.indices.empty() && r3.selection.offsets.empty());
          EXPECT_EQ(r3.selection.stats[0].kept_keys, r2.selection.stats[0].kept_keys);
          EXPECT(std::memcmp(o3.data(), o2.data(), o2.size() * 4) == 0);
        }
    dec.clear();
    EXPECT_EQ(dec.tokens(), std::size_t(0));
  }
}

NNSCOPE_TEST(decoder_all_keys_equals_dense_and_threads) {
  Restore restore;
  const std::size_t H = 2, N = 1300, d = 64, T = 3, Hq = 4;
  auto fk = gaussian(H * N * d, 401), fv = gaussian(H * N * d, 402);
  auto tk = gaussian(H * T * d, 403), tv = gaussian(H * T * d, 404), q = gaussian(Hq * d, 405, 1.5f);
  BuildOptions bo;
  bo.iterations = 3;
  auto c = std::make_shared<const SqueezedContext>(build_context(view(fk, H, N, d), bo));
  const BfAttn ref = bf_attention(q, Hq, 1, d, fk, fv, H, N, tk, tv, T, false, 1.0 / std::sqrt(double(d)));
  SelectOptions all;
  all.mode = SelectMode::KeepFraction;
  all.keep_fraction = 1.0;
  SelectOptions some = all;
  some.keep_fraction = 0.1;
  std::vector<std::vector<float>> runs;
  for (int th : {1, 2, 3}) {
    set_num_threads(th);
    SqueezedDecoder dec(c, view(fk, H, N, d), view(fv, H, N, d), 1);
    dec.append(tk.data(), tv.data(), T);
    std::vector<float> out(Hq * d), lse(Hq);
    dec.step(qview(q, Hq, 1, d), all, Output{out.data(), lse.data()}, nullptr);
    EXPECT(max_rel(out, ref.out) <= 1e-5);
    for (std::size_t i = 0; i < Hq; ++i) EXPECT_NEAR(lse[i], ref.lse[i], 1e-5 * std::fabs(ref.lse[i]) + 1e-5);
    std::vector<float> o2(Hq * d), l2(Hq);
    dec.step(qview(q, Hq, 1, d), some, Output{o2.data(), l2.data()}, nullptr);
    out.insert(out.end(), o2.begin(), o2.end());
    out.insert(out.end(), l2.begin(), l2.end());
    runs.push_back(out);
  }
  EXPECT(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * 4) == 0);
  EXPECT(std::memcmp(runs[0].data(), runs[2].data(), runs[0].size() * 4) == 0);
}

NNSCOPE_TEST(devices_without_gpu) {
  // This test runs where no backend is installed (or no GPU answers): 'cuda' is
  // refused with a reason, 'auto' runs the CPU path bit for bit.
  if (resolve_device(Device::Auto) == Device::Cuda) test::skip("a GPU answered: covered by test_cuda_attention");
  const std::size_t H = 2, N = 400, d = 16, Hq = 2;
  auto fk = gaussian(H * N * d, 501), fv = gaussian(H * N * d, 502), q = gaussian(Hq * d, 503);
  const KvView K = view(fk, H, N, d), V = view(fv, H, N, d);
  auto expect_unavailable = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT(e.code() == ErrorCode::DeviceUnavailable);
      EXPECT(std::string(e.what()).find("not available:") != std::string::npos);
      return;
    }
    EXPECT(!"no DeviceUnavailable error");
  };
  std::vector<float> out(Hq * d), lse(Hq), out2(Hq * d), lse2(Hq);
  DenseOptions dc;
  dc.device = Device::Cuda;
  expect_unavailable([&] { dense_attention(qview(q, Hq, 1, d), K, V, dc, Output{out.data(), lse.data()}, {}); });
  DenseOptions da;
  da.device = Device::Auto;
  dense_attention(qview(q, Hq, 1, d), K, V, da, Output{out.data(), lse.data()}, {});
  dense_attention(qview(q, Hq, 1, d), K, V, DenseOptions{}, Output{out2.data(), lse2.data()}, {});
  EXPECT(std::memcmp(out.data(), out2.data(), out.size() * 4) == 0 && std::memcmp(lse.data(), lse2.data(), 8) == 0);
  std::vector<std::int32_t> idx = {1, 5, 9, 2, 3};
  std::vector<std::size_t> off = {0, 3, 5};
  expect_unavailable([&] {
    sparse_attention(qview(q, Hq, 1, d), K, V, Selection{idx.data(), off.data(), false}, 0.0f,
                     Output{out.data(), lse.data()}, {}, Device::Cuda);
  });
  KmeansOptions ko;
  ko.clusters = 4;
  ko.device = Device::Cuda;
  expect_unavailable([&] { kmeans(fk.data(), N, d, ko); });
  ko.device = Device::Auto;
  const KmeansResult ka = kmeans(fk.data(), N, d, ko);
  ko.device = Device::Cpu;
  const KmeansResult kc = kmeans(fk.data(), N, d, ko);
  EXPECT(ka.labels == kc.labels && std::memcmp(ka.centroids.data(), kc.centroids.data(), kc.centroids.size() * 4) == 0);
  BuildOptions bo;
  bo.iterations = 2;
  bo.device = Device::Cuda;
  expect_unavailable([&] { build_context(K, bo); });
  bo.device = Device::Cpu;
  auto c = std::make_shared<SqueezedContext>(build_context(K, bo));
  CalibrateOptions co;
  co.device = Device::Cuda;
  expect_unavailable([&] { calibrate(*c, qview(q, Hq, 1, d), co); });
  SelectOptions so;
  so.score.device = Device::Cuda;
  expect_unavailable([&] { select_keys(*c, qview(q, Hq, 1, d), so); });
  DecodeTail none(H, d, 1);
  expect_unavailable([&] {
    squeezed_decode(K, V, *c, qview(q, Hq, 1, d), none.keys(), none.values(), so, Output{out.data(), lse.data()},
                    nullptr);
  });
  expect_unavailable([&] { SqueezedDecoder(c, K, V, 4, Device::Cuda); });
  so.score.device = Device::Auto;
  squeezed_decode(K, V, *c, qview(q, Hq, 1, d), none.keys(), none.values(), so, Output{out.data(), lse.data()}, nullptr);
  so.score.device = Device::Cpu;
  squeezed_decode(K, V, *c, qview(q, Hq, 1, d), none.keys(), none.values(), so, Output{out2.data(), lse2.data()},
                  nullptr);
  EXPECT(std::memcmp(out.data(), out2.data(), out.size() * 4) == 0);
  SqueezedDecoder dec(c, K, V, 4, Device::Auto);
  EXPECT(dec.device() == Device::Cpu);
}
