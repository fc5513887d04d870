// nnscope native benchmark: the hessian family on the CPU. No Node needed.
//
//   bench_hessian [--samples N] [--quick] [--only SUBSTR] [--json FILE]
//
// Cases (--only matches the case name):
//   lanczos_overhead  m = 100 Lanczos steps (full reorthogonalisation, two CGS
//                     passes) on the Hessian of an MLP with ≈ 1e5 parameters
//                     (100→256→256→10 tanh, softmax cross-entropy, 256 samples),
//                     float32 ModelOperator, versus 100 bare hvp calls on the same
//                     objective: overhead % = (t_lanczos − t_hvp) / t_hvp.
//   orthogonalize     one CGS2 orthogonalisation of a vector of n = 1e5 against 50
//                     basis vectors (float32 and float64 spaces), in GB/s of basis
//                     traffic (3 sweeps of the block: dots, fused update+dots, update).
//   eigsh_dense       top-5 eigenpairs (largest algebraic) of a 4096×4096 dense
//                     symmetric matrix with a known spectrum (λ_i = 100/i, rotated by
//                     three random Householder reflectors), float64 at tol 1e-8 and
//                     float32 at tol 1e-5: time, products, restarts, max relative
//                     error of the values.
//
// Each time is the median of --samples runs (default 3; 1 warm-up run is not timed
// for the small cases) with min and max alongside, using all pool threads.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "hessian/hessian.h"
#include "hessian/operators.h"
#include "hessian/space.h"
#include "models/dataset.h"
#include "models/mlp.h"

using namespace nnscope;
using namespace nnscope::bench;
using namespace nnscope::hessian;
using Clock = std::chrono::steady_clock;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;  // seconds
  int samples = 0;
};

Stat time_it(const std::function<void()>& fn, int samples, bool warm) {
  if (warm) fn();
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  Stat st;
  st.samples = samples;
  st.min = t.front();
  st.max = t.back();
  const std::size_t h = t.size() / 2;
  st.median = t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]);
  return st;
}

struct Row {
  std::string name, shape, unit;
  double value = 0;  // the derived figure in `unit`
  Stat st;
  std::string extra;  // JSON members, already formatted (", \"k\": v" ...)
};

void print_row(const Row& r) {
  std::printf("%-22s %-44s %9.4f %9.4f %9.4f s   %10.3f %s\n", r.name.c_str(), r.shape.c_str(), r.st.median, r.st.min,
              r.st.max, r.value, r.unit.c_str());
  std::fflush(stdout);
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A = H3·H2·H1·diag(λ)·H1·H2·H3 (three random Householder reflectors), O(n²) each.
std::vector<double> reflected_matrix(const std::vector<double>& lambda, std::uint64_t seed) {
  const std::size_t n = lambda.size();
  std::vector<double> a(n * n, 0.0), u(n), w(n);
  for (std::size_t i = 0; i < n; ++i) a[i * n + i] = lambda[i];
  for (int h = 0; h < 3; ++h) {
    Rng(seed, h).gaussian(u.data(), n);
    double un = 0.0;
    for (double x : u) un += x * x;
    for (double& x : u) x /= std::sqrt(un);
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (std::size_t j = 0; j < n; ++j) s += a[i * n + j] * u[j];
      w[i] = s;
    }
    double uw = 0.0;
    for (std::size_t i = 0; i < n; ++i) uw += u[i] * w[i];
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        a[i * n + j] += -2.0 * u[i] * w[j] - 2.0 * w[i] * u[j] + 4.0 * uw * u[i] * u[j];
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j) a[j * n + i] = a[i * n + j];
  return a;
}

template <typename T>
struct NoOp final : Operator<T> {
  std::size_t n;
  explicit NoOp(std::size_t nn) : n(nn) {}
  std::size_t dim() const override { return n; }
  void apply(const T* x, T* y, const OpContext&) override {
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i];
  }
};

}  // namespace

int main(int argc, char** argv) {
  int samples = 3;
  bool quick = false;
  std::string json_path, only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--samples" && i + 1 < argc) {
      samples = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--samples N] [--quick] [--only SUBSTR] [--json FILE]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (quick) samples = 1;
  auto want = [&](const char* name) { return only.empty() || std::string(name).find(only) != std::string::npos; };
  const int threads = num_threads();
  std::printf("nnscope bench_hessian — CPU: %s, %u hardware threads, pool %d threads, ISA %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), threads, isa_name(active_isa()));
  std::printf("%-22s %-44s %9s %9s %9s     %10s\n", "case", "shape", "median", "min", "max", "derived");
  std::vector<Row> rows;

  // ---------------------------------------------------------------- (1) Lanczos overhead
  if (want("lanczos_overhead")) {
    using namespace nnscope::models;
    MlpSpec spec;
    spec.widths = {100, 256, 256, 10};
    spec.hidden = Activation::Tanh;
    spec.loss = LossKind::SoftmaxCrossEntropy;
    const OwnedDataset data = make_blobs(256, 100, 10, 1.0, 3);
    MlpObjective obj(spec, data.view());
    const std::vector<float> th = mlp_init(spec, 1);
    const std::size_t P = obj.dim();
    const std::size_t m = quick ? 30 : 100;
    std::vector<float> v(P), hv(P);
    Rng(2).gaussian(v.data(), P);
    const Stat hvp = time_it(
        [&] {
          for (std::size_t i = 0; i < m; ++i) obj.hvp(th.data(), v.data(), hv.data(), {});
        },
        samples, false);
    ModelOperator op(obj, th.data());
    std::uint64_t products = 0;
    const Stat lz = time_it(
        [&] {
          auto sp = make_cpu_space(op);
          LanczosOptions lo;
          lo.steps = m;
          products = lanczos(*sp, lo, {}).products;
        },
        samples, false);
    const std::string shape = "MLP 100-256-256-10 tanh CE, 256 samples, P=" + std::to_string(P);
    Row r1{"hvp x" + std::to_string(m), shape, "ms/hvp", 1e3 * hvp.median / double(m), hvp, ""};
    print_row(r1);
    rows.push_back(r1);
    const double overhead = 100.0 * (lz.median - hvp.median) / hvp.median;
    const double per_step = (lz.median - hvp.median) / double(m);
    Row r2{"lanczos m=" + std::to_string(m), shape, "% overhead", overhead, lz,
           ", \"products\": " + std::to_string(products) + ", \"overhead_percent\": " + fmt("%.2f", overhead) +
               ", \"reorth_ms_per_step\": " + fmt("%.3f", 1e3 * per_step) +
               ", \"hvp_ms\": " + fmt("%.3f", 1e3 * hvp.median / double(m))};
    print_row(r2);
    std::printf("  -> Lanczos overhead over the HVPs: %.1f%% (%.2f ms per step of reorthogonalisation etc., "
                "%.2f ms per hvp)\n",
                overhead, 1e3 * per_step, 1e3 * hvp.median / double(m));
    rows.push_back(r2);
  }

  // ---------------------------------------------------------------- orthogonalize throughput
  if (want("orthogonalize")) {
    const std::size_t n = 100000, count = 50;
    auto run = [&](auto tag) {
      using T = decltype(tag);
      NoOp<T> op(n);
      auto sp = make_cpu_space(op);
      sp->reserve(count + 1);
      std::vector<double> h(n);
      for (std::size_t j = 0; j <= count; ++j) {
        Rng(5, j).gaussian(h.data(), n);
        sp->load(j, h.data());
        if (j < count) {
          sp->orthogonalize(0, j, j, 2, nullptr);
          sp->scale(j, 1.0 / sp->norm(j));
        }
      }
      const int reps = 20;
      const Stat st = time_it(
          [&] {
            for (int r = 0; r < reps; ++r) sp->orthogonalize(0, count, count, 2, nullptr);
          },
          std::max(samples, 3), true);
      Stat per = st;
      per.median /= reps;
      per.min /= reps;
      per.max /= reps;
      const double bytes = 3.0 * double(count) * double(n) * sizeof(T);
      Row r{std::string("orthogonalize ") + (sizeof(T) == 4 ? "f32" : "f64"),
            "n=100000, 50 basis vectors, 2 passes", "GB/s", bytes / per.median / 1e9, per, ""};
      print_row(r);
      rows.push_back(r);
    };
    run(float{});
    run(double{});
  }

  // ---------------------------------------------------------------- (2) top-5 of a dense 4096² matrix
  if (want("eigsh_dense")) {
    const std::size_t n = quick ? 1024 : 4096, k = 5;
    std::vector<double> lambda(n);
    for (std::size_t i = 0; i < n; ++i) lambda[i] = 100.0 / double(i + 1);
    const std::vector<double> a = reflected_matrix(lambda, 11);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const std::vector<T> at(a.begin(), a.end());
      DenseOperator<T> op(at.data(), n);
      EigOptions o;
      o.k = k;
      o.tol = sizeof(T) == 4 ? 1e-5 : 1e-8;
      EigResult res;
      // One product alone, for scale.
      std::vector<T> x(n, T(1)), y(n);
      const Stat prod = time_it([&] { op.apply(x.data(), y.data(), {}); }, 5, true);
      const Stat st = time_it(
          [&] {
            auto sp = make_cpu_space(op);
            res = eigsh(*sp, o, {});
          },
          samples, false);
      double err = 0.0;
      for (std::size_t q = 0; q < res.values.size(); ++q)
        err = std::max(err, std::fabs(res.values[q] - lambda[q]) / lambda[q]);
      const std::string shape = std::to_string(n) + "x" + std::to_string(n) + (sizeof(T) == 4 ? " f32" : " f64") +
                                ", top-5 LA, tol " + (sizeof(T) == 4 ? "1e-5" : "1e-8");
      Row r{std::string("eigsh_dense ") + (sizeof(T) == 4 ? "f32" : "f64"), shape, "products",
            double(res.products), st,
            ", \"products\": " + std::to_string(res.products) + ", \"restarts\": " + std::to_string(res.restarts) +
                ", \"converged\": " + (res.converged ? "true" : "false") +
                ", \"max_rel_error\": " + fmt("%.3e", err) + ", \"product_ms\": " + fmt("%.3f", 1e3 * prod.median)};
      print_row(r);
      std::printf("  -> %zu products, %zu restarts, converged %s, max rel error %.2e, one product %.2f ms "
                  "(products %.0f%% of the time)\n",
                  std::size_t(res.products), res.restarts, res.converged ? "yes" : "no", err, 1e3 * prod.median,
                  100.0 * prod.median * double(res.products) / st.median);
      rows.push_back(r);
    };
    run(double{});
    run(float{});
  }

  if (!json_path.empty()) {
    std::string body = "{\n  \"benchmark\": \"hessian\",\n";
    body += "  \"machine\": {\"cpu\": \"" + json_escape(cpu_model()) + "\", \"hardware_threads\": " +
            std::to_string(std::thread::hardware_concurrency()) + ", \"pool_threads\": " + std::to_string(threads) +
            ", \"active_isa\": \"" + isa_name(active_isa()) + "\"},\n";
    body += "  \"samples\": " + std::to_string(samples) + ",\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      body += "    {\"case\": \"" + json_escape(r.name) + "\", \"shape\": \"" + json_escape(r.shape) +
              "\", \"median_s\": " + fmt("%.6f", r.st.median) + ", \"min_s\": " + fmt("%.6f", r.st.min) +
              ", \"max_s\": " + fmt("%.6f", r.st.max) + ", \"value\": " + fmt("%.6g", r.value) + ", \"unit\": \"" +
              json_escape(r.unit) + "\"" + r.extra + "}" + (i + 1 < rows.size() ? "," : "") + "\n";
    }
    body += "  ]\n}\n";
    write_json_or_die(json_path, body);
  }
  return 0;
}
