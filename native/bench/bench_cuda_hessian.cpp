// nnscope native benchmark: the CUDA hessian spaces (native/cuda/hessian*). No Node.
//
//   bench_cuda_hessian [--quick] [--json FILE]
//
// Lanczos on the Hessian of a GPU MLP objective (softmax cross-entropy, tanh;
// 2,048 samples; ~1e5 and ~1e6 parameters, the larger one skipped with --quick):
//  - hvp: the bare device product (Space::apply, θ and v already on the GPU): a
//    run of applies, then one synchronisation, wall clock / products; median of 5
//    runs of 20 (10 with --quick);
//  - host hvp: Objective::hvp (θ, v copied in, Hv copied out) for comparison;
//  - lanczos: hessian::lanczos with full reorthogonalisation (2 CGS passes against
//    the whole basis), m = 20 and m = 80 steps, wall clock / m = the per-step time;
//    overhead = per-step − hvp (the reorthogonalisation, the norms, the two host
//    round trips per step). Median of 3 runs.
// eigsh (thick-restart Lanczos, top 5, default tolerance 1e-5) on a dense
// symmetric float32 matrix with a planted spectrum (5 separated top values, a bulk
// in [−1, 1]), n = 4,096 and 16,384 (4,096 only with --quick): wall clock,
// products, time per product against the bare GEMV (sgemv_async on the same
// matrix), the GEMV's memory throughput (4n² bytes per product) beside the device's
// peak (2 × memory clock × bus width / 8), and the largest relative error of the 5
// values. The CPU space (all threads) runs the same eigsh at n = 4,096 in the same
// run. Without CUDA compiled in, or with no usable GPU, it prints why and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "base/device.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "hessian/hessian.h"
#include "hessian/operators.h"
#include "models/dataset.h"
#include "models/mlp.h"
#ifdef NNSCOPE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/backend.h"
#include "cuda/hessian.h"
#endif

using namespace nnscope;
using namespace nnscope::bench;

namespace {

struct Args {
  bool quick = false;
  std::string json;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--quick") {
      a.quick = true;
    } else if (s == "--json" && i + 1 < argc) {
      a.json = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--json FILE]\n", argv[0]);
      std::exit(2);
    }
  }
  return a;
}

#ifdef NNSCOPE_HAVE_CUDA
struct Stats {
  double median = 0, min = 0, max = 0;  // seconds
  int samples = 0;
};

Stats stats_of(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  Stats s;
  s.samples = int(t.size());
  s.min = t.front();
  s.max = t.back();
  s.median = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  return s;
}

double wall(const std::function<void()>& f) {
  const auto a = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

Stats time_runs(int warmup, int samples, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < samples; ++i) t.push_back(wall(f));
  return stats_of(t);
}

std::string stats_json(const Stats& s) {
  std::ostringstream o;
  o.precision(9);
  o << "{\"median_s\":" << s.median << ",\"min_s\":" << s.min << ",\"max_s\":" << s.max << ",\"samples\":" << s.samples
    << "}";
  return o.str();
}

int attr(cudaDeviceAttr a, int dev) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

// The dense planted-spectrum matrix: A = H·Λ·H, H = I − 2uuᵀ.
std::vector<float> planted(const std::vector<double>& lambda, uint64_t seed) {
  const std::size_t n = lambda.size();
  std::vector<double> u(n);
  Rng(seed).gaussian(u.data(), n);
  double nu = 0.0;
  for (double x : u) nu += x * x;
  nu = std::sqrt(nu);
  for (double& x : u) x /= nu;
  double ulu = 0.0;
  for (std::size_t i = 0; i < n; ++i) ulu += u[i] * lambda[i] * u[i];
  std::vector<float> a(n * n);
  ThreadPool::global().run(n, [&](std::size_t i) {
    for (std::size_t j = 0; j < n; ++j) {
      double v = -2.0 * u[i] * u[j] * (lambda[i] + lambda[j]) + 4.0 * u[i] * u[j] * ulu;
      if (i == j) v += lambda[i];
      a[i * n + j] = float(v);
    }
  });
  return a;
}

std::vector<double> spectrum(std::size_t n) {
  std::vector<double> l(n);
  Rng r(17);
  for (std::size_t i = 0; i < n; ++i) l[i] = 2.0 * r.uniform_at(i) - 1.0;
  const double top[] = {10.0, 8.5, 7.0, 6.0, 5.0};
  for (std::size_t i = 0; i < 5; ++i) l[(i * 7919) % n] = top[i];
  return l;
}

// Median seconds per bare product: runs of `count` applies, one synchronisation each.
Stats product_time(cuda::DeviceSpace& s, int count, int runs) {
  const std::size_t n = s.dim();
  s.reserve(2);
  std::vector<double> v(n);
  Rng(5).gaussian(v.data(), n);
  double nv = 0.0;
  for (double x : v) nv += x * x;
  for (double& x : v) x /= std::sqrt(nv);
  s.load(0, v.data());
  s.apply(0, 1, {});
  s.synchronize();
  std::vector<double> t;
  for (int r = 0; r < runs; ++r)
    t.push_back(wall([&] {
                  for (int i = 0; i < count; ++i) s.apply(0, 1, {});
                  s.synchronize();
                }) /
                count);
  return stats_of(t);
}

struct LanczosRow {
  std::size_t steps = 0;
  Stats run;
  double per_step = 0, overhead = 0;
};

struct MlpRow {
  std::vector<std::size_t> widths;
  std::size_t params = 0, samples = 0;
  Stats hvp, host_hvp;
  std::vector<LanczosRow> lanczos;
  double lambda_max = 0;
};

struct DenseRow {
  std::size_t n = 0;
  Stats gemv;
  double gemv_gbs = 0;
  double eigsh_s = 0, per_product = 0, max_rel_err = 0;
  std::uint64_t products = 0;
  std::size_t restarts = 0;
  bool converged = false;
  double cpu_eigsh_s = -1;
  std::uint64_t cpu_products = 0;
};
#endif

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
#ifndef NNSCOPE_HAVE_CUDA
  std::printf("bench_cuda_hessian: nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off); nothing to do\n");
  write_json_or_die(args.json,
                    "{\"bench\":\"cuda_hessian\",\"compiled\":false,\"available\":false,\"reason\":\"built without CUDA\"}\n");
  return 0;
#else
  set_gpu_backend(cuda::backend());
  const GpuInfo info = cuda::backend()->info();
  if (!info.available) {
    std::printf("bench_cuda_hessian: no usable GPU: %s\n", info.reason.c_str());
    write_json_or_die(args.json, "{\"bench\":\"cuda_hessian\",\"compiled\":true,\"available\":false,\"reason\":\"" +
                                     json_escape(info.reason) + "\"}\n");
    return 0;
  }
  try {
    GpuBackend& gpu = *cuda::backend();
    const int dev = info.device;
    const double mem_clock_hz = attr(cudaDevAttrMemoryClockRate, dev) * 1e3;
    const int bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth, dev);
    const double peak_gbs = 2.0 * mem_clock_hz * bus_bits / 8.0 / 1e9;
    std::printf("bench_cuda_hessian on %s (%d SMs, memory peak %.0f GB/s), CPU threads %d\n", info.name.c_str(),
                info.multiprocessors, peak_gbs, ThreadPool::global().size());

    // ---------------------------------------------------------------- MLP Hessians
    std::vector<std::vector<std::size_t>> nets = {{64, 256, 256, 10}};
    if (!args.quick) nets.push_back({128, 1024, 768, 10});
    const std::size_t samples = 2048;
    const int count = args.quick ? 10 : 20;
    std::vector<MlpRow> mlp;
    std::printf("\n%-22s %9s %12s %12s %6s %13s %13s %9s\n", "MLP", "params", "hvp ms", "host hvp ms", "m",
                "ms per step", "overhead ms", "overhead");
    for (const auto& w : nets) {
      MlpRow row;
      row.widths = w;
      row.samples = samples;
      models::MlpSpec spec;
      spec.widths = w;
      spec.hidden = models::Activation::Tanh;
      spec.loss = models::LossKind::SoftmaxCrossEntropy;
      const models::OwnedDataset data = models::make_blobs(samples, w.front(), w.back(), 1.0, 7);
      auto f = gpu.make_mlp_objective(spec, data.view(), {});
      const std::vector<float> theta = models::mlp_init(spec, 8);
      row.params = theta.size();
      auto base = gpu.make_objective_space(*f, theta.data());
      auto* space = dynamic_cast<cuda::DeviceSpace*>(base.get());
      row.hvp = product_time(*space, count, 5);
      std::vector<float> v(row.params), hv(row.params);
      Rng(9).gaussian(v.data(), v.size());
      row.host_hvp = time_runs(2, 5, [&] { f->hvp(theta.data(), v.data(), hv.data(), {}); });
      for (std::size_t m : {std::size_t(20), std::size_t(80)}) {
        hessian::LanczosOptions o;
        o.steps = m;
        o.seed = 1;
        LanczosRow lr;
        lr.steps = m;
        hessian::LanczosResult res;
        lr.run = time_runs(1, 3, [&] { res = hessian::lanczos(*space, o, {}); });
        lr.per_step = lr.run.median / double(m);
        lr.overhead = lr.per_step - row.hvp.median;
        if (m == 80) {
          std::vector<double> ev(res.alpha.size());
          hessian::tridiagonal_eigen(ev.size(), res.alpha.data(), res.beta.data(), ev.data(), nullptr);
          row.lambda_max = ev.back();
        }
        std::printf("%-22s %9zu %12.3f %12.3f %6zu %13.3f %13.3f %8.0f%%\n",
                    (std::to_string(w[0]) + "-" + std::to_string(w[1]) + "-" + std::to_string(w[2]) + "-" +
                     std::to_string(w[3]))
                        .c_str(),
                    row.params, row.hvp.median * 1e3, row.host_hvp.median * 1e3, m, lr.per_step * 1e3,
                    lr.overhead * 1e3, 100.0 * lr.overhead / row.hvp.median);
        row.lanczos.push_back(lr);
      }
      mlp.push_back(row);
    }

    // ---------------------------------------------------------------- dense eigsh
    std::vector<std::size_t> sizes = {4096};
    if (!args.quick) sizes.push_back(16384);
    std::vector<DenseRow> dense;
    std::printf("\n%-7s %10s %10s %9s %9s %12s %12s %10s %12s\n", "n", "gemv ms", "GB/s", "products", "restarts",
                "eigsh s", "ms/product", "max relerr", "cpu eigsh s");
    for (std::size_t n : sizes) {
      DenseRow row;
      row.n = n;
      const std::vector<double> lambda = spectrum(n);
      std::vector<double> top = lambda;
      std::sort(top.begin(), top.end(), std::greater<double>());
      const std::vector<float> a = planted(lambda, 23);
      auto base = gpu.make_dense_space(a.data(), n);
      auto* space = dynamic_cast<cuda::DeviceSpace*>(base.get());
      row.gemv = product_time(*space, count, 5);
      row.gemv_gbs = 4.0 * double(n) * double(n) / row.gemv.median / 1e9;
      hessian::EigOptions o;
      o.k = 5;
      o.seed = 2;
      hessian::EigResult r;
      (void)hessian::eigsh(*space, o, {});  // warm-up
      row.eigsh_s = wall([&] { r = hessian::eigsh(*space, o, {}); });
      row.products = r.products;
      row.restarts = r.restarts;
      row.converged = r.converged;
      row.per_product = row.eigsh_s / double(std::max<std::uint64_t>(r.products, 1));
      for (std::size_t q = 0; q < r.values.size(); ++q)
        row.max_rel_err = std::max(row.max_rel_err, std::fabs(r.values[q] - top[q]) / std::fabs(top[q]));
      if (n <= 4096) {
        hessian::DenseOperator<float> op(a.data(), n);
        auto cpu = hessian::make_cpu_space(op);
        hessian::EigResult rc;
        row.cpu_eigsh_s = wall([&] { rc = hessian::eigsh(*cpu, o, {}); });
        row.cpu_products = rc.products;
      }
      std::printf("%-7zu %10.3f %10.0f %9llu %9zu %12.3f %12.3f %10.1e %12s\n", n, row.gemv.median * 1e3,
                  row.gemv_gbs, (unsigned long long)row.products, row.restarts, row.eigsh_s, row.per_product * 1e3,
                  row.max_rel_err,
                  row.cpu_eigsh_s < 0 ? "-" : std::to_string(row.cpu_eigsh_s).substr(0, 7).c_str());
      dense.push_back(row);
    }

    const MlpRow& m0 = mlp.back();
    const LanczosRow& l0 = m0.lanczos.back();
    const DenseRow& d0 = dense.back();
    std::printf("summary: MLP %zu params: hvp %.3f ms, Lanczos step (m=%zu) %.3f ms (+%.0f%%); eigsh top-5 n=%zu %.3f s "
                "(%llu products, GEMV %.0f GB/s of %.0f) on %s\n",
                m0.params, m0.hvp.median * 1e3, l0.steps, l0.per_step * 1e3, 100.0 * l0.overhead / m0.hvp.median,
                d0.n, d0.eigsh_s, (unsigned long long)d0.products, d0.gemv_gbs, peak_gbs, info.name.c_str());

    std::ostringstream js;
    js.precision(9);
    js << "{\"bench\":\"cuda_hessian\",\"compiled\":true,\"available\":true,\"device\":\"" << json_escape(info.name)
       << "\",\"cc\":\"" << info.cc_major << "." << info.cc_minor << "\",\"multiprocessors\":" << info.multiprocessors
       << ",\"memory_peak_gbs\":" << peak_gbs << ",\"cpu\":\"" << json_escape(cpu_model())
       << "\",\"cpu_threads\":" << ThreadPool::global().size()
       << ",\"timer\":\"steady wall clock; device products timed as a run of applies plus one synchronisation\""
       << ",\"mlp\":[";
    for (std::size_t i = 0; i < mlp.size(); ++i) {
      const MlpRow& r = mlp[i];
      js << (i ? "," : "") << "{\"widths\":[";
      for (std::size_t j = 0; j < r.widths.size(); ++j) js << (j ? "," : "") << r.widths[j];
      js << "],\"params\":" << r.params << ",\"samples\":" << r.samples << ",\"hvp\":" << stats_json(r.hvp)
         << ",\"host_hvp\":" << stats_json(r.host_hvp) << ",\"lambda_max_ritz\":" << r.lambda_max << ",\"lanczos\":[";
      for (std::size_t j = 0; j < r.lanczos.size(); ++j) {
        const LanczosRow& l = r.lanczos[j];
        js << (j ? "," : "") << "{\"steps\":" << l.steps << ",\"run\":" << stats_json(l.run)
           << ",\"per_step_s\":" << l.per_step << ",\"overhead_s\":" << l.overhead
           << ",\"overhead_fraction\":" << l.overhead / r.hvp.median << "}";
      }
      js << "]}";
    }
    js << "],\"dense_eigsh\":[";
    for (std::size_t i = 0; i < dense.size(); ++i) {
      const DenseRow& r = dense[i];
      js << (i ? "," : "") << "{\"n\":" << r.n << ",\"k\":5,\"gemv\":" << stats_json(r.gemv)
         << ",\"gemv_gbs\":" << r.gemv_gbs << ",\"eigsh_s\":" << r.eigsh_s << ",\"products\":" << r.products
         << ",\"restarts\":" << r.restarts << ",\"converged\":" << (r.converged ? "true" : "false")
         << ",\"per_product_s\":" << r.per_product << ",\"max_rel_err\":" << r.max_rel_err;
      if (r.cpu_eigsh_s >= 0) js << ",\"cpu_eigsh_s\":" << r.cpu_eigsh_s << ",\"cpu_products\":" << r.cpu_products;
      js << "}";
    }
    js << "]}\n";
    write_json_or_die(args.json, js.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_hessian failed: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
