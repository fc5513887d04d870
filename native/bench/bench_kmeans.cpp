// nnscope native benchmark: Squeezed Attention's offline K-means and online
// centroid lookup on the CPU. No Node needed.
//
//   bench_kmeans [--threads 1,2] [--quick] [--json FILE]
//
// K-means (one head, cosine, float32 keys ~ N(0, 1)):
//   kmeans_assign     the assignment step alone (tiled SGEMM + fused argmin);
//                     GFLOP/s = 2·N·C·d / time.
//   kmeans_iteration  one Lloyd iteration (assign + update), from
//                     (t(I iterations) − t(1 iteration)) / (I − 1) with the same
//                     initial centres, so initialisation is excluded; iterations
//                     after the first skip the points Hamerly's bounds prove
//                     unchanged (the note gives the fraction); GFLOP/s counts the
//                     full 2·N·C·d as the nominal work of an iteration.
//   kmeans_init       k-means++ seeding (+ one assignment).
//   kmeans_total      kmeans() with its defaults (k-means++, ≤ 20 iterations; it
//                     stops early when no label changes), all pool threads only.
// Sizes: N = 16K, d = 128, C = 819 (5 %) and N = 8K, C = 410 (the JS bench runs
// scikit-learn's KMeans on the same sizes side by side).
// Decode lookup (N = 32K fixed context, H = 8 KV heads, d = 128, C = 5 %,
// synthetic context with random centroids and labels, one query per head):
//   decode_score       centroid scores (§1.3) for the 8 query heads;
//   decode_select_thr  scores + threshold selection + compaction (τ keeps ~10 %);
//   decode_select_frac scores + keep-fraction 10 % selection;
//   decode_squeezed    the full decode (lookup + sparse attention, 8-token tail);
//   decode_decoder     the same through a SqueezedDecoder (cluster-sorted K/V copy);
//   decode_dense       dense attention over the whole fixed context (baseline).
// Each figure: median, min, max of ≥ 3 timed samples after a warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attention/attention.h"
#include "attention/kmeans.h"
#include "attention/squeezed.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "bench_util.h"

using namespace nnscope;
using namespace nnscope::attention;
using namespace nnscope::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;  // seconds
};

Stat time_it(const std::function<void()>& fn, int samples, bool warm = true) {
  if (warm) fn();
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  Stat st;
  st.min = t.front();
  st.max = t.back();
  const std::size_t h = t.size() / 2;
  st.median = t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]);
  return st;
}

struct Row {
  std::string op;
  std::size_t n = 0, d = 0, k = 0, heads = 1;
  int threads = 0;
  Stat st;            // seconds
  double gflops = 0;  // at the median (0: not applicable)
  std::string note;
};

void print_row(const Row& r) {
  std::printf("%-19s N=%-6zu d=%-4zu C=%-5zu H=%-2zu %7d %10.3f %10.3f %10.3f", r.op.c_str(), r.n, r.d, r.k, r.heads,
              r.threads, r.st.median * 1e3, r.st.min * 1e3, r.st.max * 1e3);
  if (r.gflops > 0) std::printf(" %8.1f GFLOP/s", r.gflops);
  if (!r.note.empty()) std::printf("  %s", r.note.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> thread_list;
  bool quick = false;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      thread_list = parse_list(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--threads 1,2] [--quick] [--json FILE]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const int all_threads = num_threads();
  if (thread_list.empty()) {
    if (all_threads > 1 && !quick) thread_list.push_back(1);
    thread_list.push_back(std::size_t(all_threads));
  }
  const int samples = quick ? 3 : 5;
  std::printf("nnscope bench_kmeans — CPU: %s, %u hardware threads, pool %d threads, ISA %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), all_threads, isa_name(active_isa()));
  std::printf("%-19s %-35s %7s %10s %10s %10s\n", "op", "shape", "threads", "median ms", "min ms", "max ms");
  std::vector<Row> rows;
  auto add = [&](Row r) {
    print_row(r);
    rows.push_back(std::move(r));
  };

  // ---------------------------------------------------------------- K-means
  struct KCase {
    std::size_t n, d, k;
  };
  std::vector<KCase> kcases = {{16384, 128, 819}, {8192, 128, 410}};
  if (quick) kcases = {{8192, 128, 410}};
  for (const KCase& kc : kcases) {
    std::vector<float> x(kc.n * kc.d);
    Rng(7).gaussian(x.data(), x.size());
    // Initial centres in the clustered (unit) space: k random normalised points.
    std::vector<float> c0(kc.k * kc.d);
    for (std::size_t j = 0; j < kc.k; ++j) {
      const float* r = x.data() + (j * 13 % kc.n) * kc.d;
      double s = 0;
      for (std::size_t t = 0; t < kc.d; ++t) s += double(r[t]) * r[t];
      for (std::size_t t = 0; t < kc.d; ++t) c0[j * kc.d + t] = static_cast<float>(r[t] / std::sqrt(s));
    }
    std::vector<float> y(x);
    for (std::size_t i = 0; i < kc.n; ++i) {
      double s = 0;
      for (std::size_t t = 0; t < kc.d; ++t) s += double(y[i * kc.d + t]) * y[i * kc.d + t];
      for (std::size_t t = 0; t < kc.d; ++t) y[i * kc.d + t] = static_cast<float>(y[i * kc.d + t] / std::sqrt(s));
    }
    const double flops = 2.0 * double(kc.n) * double(kc.k) * double(kc.d);
    for (std::size_t th : thread_list) {
      set_num_threads(int(th));
      std::vector<std::int32_t> lab(kc.n);
      std::vector<float> dist(kc.n);
      Row r;
      r.n = kc.n;
      r.d = kc.d;
      r.k = kc.k;
      r.threads = int(th);
      r.op = "kmeans_assign";
      r.st = time_it([&] { kmeans_assign(y.data(), kc.n, kc.d, c0.data(), kc.k, lab.data(), dist.data()); }, samples);
      r.gflops = flops / r.st.median / 1e9;
      add(r);

      const std::size_t iters = quick ? 4 : 8;
      KmeansOptions o;
      o.clusters = kc.k;
      o.initial_centroids = c0.data();
      std::size_t ran = 0, skipped = 0;
      o.iterations = 1;
      const Stat t1 = time_it([&] { kmeans(x.data(), kc.n, kc.d, o); }, samples);
      o.iterations = iters;
      const Stat tI = time_it(
          [&] {
            const KmeansResult kr = kmeans(x.data(), kc.n, kc.d, o);
            ran = kr.iterations;
            skipped = kr.skipped;
          },
          samples);
      r.op = "kmeans_iteration";
      r.st.median = (tI.median - t1.median) / double(iters - 1);
      r.st.min = (tI.min - t1.max) / double(iters - 1);
      r.st.max = (tI.max - t1.min) / double(iters - 1);
      r.gflops = flops / r.st.median / 1e9;
      char nb[160];
      std::snprintf(nb, sizeof nb, "%s%.0f %% of points skipped by the bounds", ran == iters ? "" : "converged early; ",
                    100.0 * double(skipped) / double(kc.n * (ran - 1)));
      r.note = nb;
      add(r);
      r.note.clear();

      KmeansOptions pp;
      pp.clusters = kc.k;
      pp.iterations = 0;
      r.op = "kmeans_init";
      r.st = time_it([&] { kmeans(x.data(), kc.n, kc.d, pp); }, quick ? 2 : 3, false);
      r.gflops = 0;
      r.note = "k-means++ + 1 assignment";
      add(r);
      r.note.clear();

      if (!quick && int(th) == all_threads) {
        KmeansOptions def;
        def.clusters = kc.k;
        std::size_t it_total = 0, sk = 0;
        r.op = "kmeans_total";
        r.st = time_it(
            [&] {
              const KmeansResult kr = kmeans(x.data(), kc.n, kc.d, def);
              it_total = kr.iterations;
              sk = kr.skipped;
            },
            2, false);
        char nb[160];
        std::snprintf(nb, sizeof nb, "k-means++, %zu iterations, %.0f %% of points skipped", it_total,
                      it_total > 1 ? 100.0 * double(sk) / double(kc.n * (it_total - 1)) : 0.0);
        r.note = nb;
        add(r);
        r.note.clear();
      }
    }
  }
  set_num_threads(all_threads);

  // ---------------------------------------------------------------- decode lookup
  {
    const std::size_t H = 8, N = quick ? 8192 : 32768, d = 128, W = 100, Hq = 8;
    const std::size_t nc = N - W, C = std::size_t(std::floor(0.05 * double(nc)));
    SqueezedContext c;
    c.heads = H;
    c.tokens = N;
    c.d = d;
    c.window = W;
    c.clusters = C;
    c.centroids.resize(H * C * d);
    Rng(11).gaussian(c.centroids.data(), c.centroids.size());
    c.labels.resize(H * nc);
    c.sizes.assign(H * C, 0);
    const Rng lr(12);
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t t = 0; t < nc; ++t) {
        const auto l = std::int32_t(lr.below_at(h * nc + t, C));
        c.labels[h * nc + t] = l;
        ++c.sizes[h * C + std::size_t(l)];
      }
    std::vector<float> q(Hq * d), fk(H * N * d), fv(H * N * d), tk(H * 8 * d), tv(H * 8 * d);
    Rng(13).gaussian(q.data(), q.size());
    Rng(14).gaussian(fk.data(), fk.size());
    Rng(15).gaussian(fv.data(), fv.size());
    Rng(16).gaussian(tk.data(), tk.size());
    Rng(17).gaussian(tv.data(), tv.size());
    const Queries qv{q.data(), Hq, 1, d};
    ScoreOptions so;
    // τ for ~10 % kept: the 0.9 quantile of this query's own per-key scores.
    const CentroidScores s0 = centroid_scores(c, qv, so);
    ScorePool pool;
    for (std::size_t g = 0; g < s0.groups; ++g)
      for (std::size_t j = 0; j < C; ++j) {
        pool.scores.push_back(s0.scores[g * C + j]);
        pool.counts.push_back(c.sizes[g * C + j]);
      }
    const double tau = pooled_quantiles(pool, {0.9})[0];
    KvView k, v, tkv, tvv;
    k.data = fk.data();
    k.heads = H;
    k.tokens = N;
    k.d = d;
    v = k;
    v.data = fv.data();
    tkv = k;
    tkv.data = tk.data();
    tkv.tokens = 8;
    tvv = tkv;
    tvv.data = tv.data();
    Row r;
    r.n = N;
    r.d = d;
    r.k = C;
    r.heads = H;
    r.threads = all_threads;
    const int ds = quick ? 5 : 11;
    r.op = "decode_score";
    r.st = time_it([&] { centroid_scores(c, qv, so); }, ds);
    r.gflops = 2.0 * double(Hq) * double(C) * double(d) / r.st.median / 1e9;
    add(r);
    r.gflops = 0;
    SelectOptions sel;
    sel.mode = SelectMode::Threshold;
    sel.threshold = tau;
    std::size_t kept = 0;
    r.op = "decode_select_thr";
    r.st = time_it([&] { kept = select_keys(c, qv, sel).indices.size(); }, ds);
    char note[128];
    std::snprintf(note, sizeof note, "kept %.1f %% of the fixed context", 100.0 * double(kept) / double(Hq * N));
    r.note = note;
    add(r);
    sel.mode = SelectMode::KeepFraction;
    sel.keep_fraction = 0.1;
    r.op = "decode_select_frac";
    r.st = time_it([&] { kept = select_keys(c, qv, sel).indices.size(); }, ds);
    std::snprintf(note, sizeof note, "kept %.1f %% of the fixed context", 100.0 * double(kept) / double(Hq * N));
    r.note = note;
    add(r);
    std::vector<float> out(Hq * d), lse(Hq);
    r.op = "decode_squeezed";
    r.st = time_it(
        [&] { squeezed_decode(k, v, c, qv, tkv, tvv, sel, Output{out.data(), lse.data()}, nullptr); }, ds);
    r.note = "keep 10 % + 8-token tail";
    add(r);
    {
      // The same decode through a SqueezedDecoder (fixed K/V bound once, cluster-sorted).
      auto cs = std::make_shared<const SqueezedContext>(c);
      SqueezedDecoder dec(cs, k, v, 8);
      dec.append(tk.data(), tv.data(), 8);
      r.op = "decode_decoder";
      r.st = time_it([&] { dec.step(qv, sel, Output{out.data(), lse.data()}, nullptr); }, ds);
      r.note = "SqueezedDecoder: keep 10 % + 8-token tail";
      add(r);
    }
    r.op = "decode_dense";
    r.st = time_it([&] { dense_attention(qv, k, v, DenseOptions{}, Output{out.data(), lse.data()}, {}); }, ds);
    std::snprintf(note, sizeof note, "%.1f GB/s of K+V", 2.0 * double(H * N * d) * 4 / r.st.median / 1e9);
    r.note = note;
    add(r);
  }

  if (!json_path.empty()) {
    std::string body = "{\n  \"benchmark\": \"kmeans\",\n";
    body += "  \"machine\": {\"cpu\": \"" + json_escape(cpu_model()) + "\", \"hardware_threads\": " +
            std::to_string(std::thread::hardware_concurrency()) + ", \"pool_threads\": " +
            std::to_string(all_threads) + ", \"cpu_isa\": \"" + isa_name(cpu_isa()) + "\", \"active_isa\": \"" +
            isa_name(active_isa()) + "\"},\n";
    body += "  \"unit\": \"ms\",\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      char buf[768];
      std::snprintf(buf, sizeof buf,
                    "    {\"op\": \"%s\", \"device\": \"cpu\", \"n\": %zu, \"d\": %zu, \"clusters\": %zu, \"heads\": %zu, "
                    "\"threads\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"gflops\": %.2f%s}%s\n",
                    r.op.c_str(), r.n, r.d, r.k, r.heads, r.threads, r.st.median * 1e3, r.st.min * 1e3,
                    r.st.max * 1e3, r.gflops,
                    r.note.empty() ? "" : (", \"note\": \"" + json_escape(r.note) + "\"").c_str(),
                    i + 1 < rows.size() ? "," : "");
      body += buf;
    }
    body += "  ]\n}\n";
    write_json_or_die(json_path, body);
  }
  return 0;
}
