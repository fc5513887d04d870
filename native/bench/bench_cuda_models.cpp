// nnscope native benchmark: the CUDA model objectives (native/cuda/models*). No Node.
//
//   bench_cuda_models [--quick] [--json FILE]
//
// The convection PINN (2→50→50→50→50→1, tanh, 1,000 collocation points plus the
// 256 IC points and 100 BC pairs of the default grid):
//  - loss, loss_grad, hvp of the GPU objective: each call is synchronous (θ in,
//    passes on the objective's stream, result out, stream synchronised), timed
//    with a steady wall clock around the call; median (min, max) of 30 samples
//    after 3 warm-ups (15 with --quick);
//  - the same calls of the CPU objective (models::PinnObjective, all threads) in
//    the same run, median of 5;
//  - loss_grid: the 41³ = 68,921-point grid in 3 random directions (coefficients
//    in [−1, 1]), points per second on the GPU (one full run after a warm-up on a
//    small grid), and the CPU objective on the first 2,000 points (500 with --quick).
// Without CUDA compiled in, or with no usable GPU, it prints why and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "base/device.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "models/pinn.h"
#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/backend.h"
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

template <typename F>
Stats time_calls(int warmup, int samples, F&& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < samples; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  Stats s;
  s.samples = samples;
  s.min = t.front();
  s.max = t.back();
  s.median = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  return s;
}

std::string stats_json(const Stats& s) {
  std::ostringstream o;
  o << "{\"median_s\":" << s.median << ",\"min_s\":" << s.min << ",\"max_s\":" << s.max << ",\"samples\":" << s.samples
    << "}";
  return o.str();
}

double wall(const std::function<void()>& f) {
  const auto a = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
#ifndef NNSCOPE_HAVE_CUDA
  std::printf("bench_cuda_models: nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off); nothing to do\n");
  write_json_or_die(args.json,
                    "{\"bench\":\"cuda_models\",\"compiled\":false,\"available\":false,\"reason\":\"built without CUDA\"}\n");
  return 0;
#else
  set_gpu_backend(cuda::backend());
  const GpuInfo info = cuda::backend()->info();
  if (!info.available) {
    std::printf("bench_cuda_models: no usable GPU: %s\n", info.reason.c_str());
    write_json_or_die(args.json, "{\"bench\":\"cuda_models\",\"compiled\":true,\"available\":false,\"reason\":\"" +
                                     json_escape(info.reason) + "\"}\n");
    return 0;
  }
  try {
    models::PinnSpec spec;
    spec.n_collocation = 1000;
    models::PinnObjective cpu(spec);
    auto gpu = cuda::backend()->make_pinn_objective(spec, cpu.points());
    const std::vector<float> theta = models::pinn_init(spec, 1);
    const std::size_t P = theta.size();
    std::vector<float> v(P), out(P);
    Rng(2).gaussian(v.data(), P);
    const int gs = args.quick ? 15 : 30;

    std::printf("bench_cuda_models on %s (%d SMs), CPU threads %d; PINN %zu params, 1000 collocation points\n",
                info.name.c_str(), info.multiprocessors, ThreadPool::global().size(), P);
    const Stats gl = time_calls(3, gs, [&] { (void)gpu->loss(theta.data(), {}); });
    const Stats gg = time_calls(3, gs, [&] { (void)gpu->loss_grad(theta.data(), out.data(), {}); });
    const Stats gh = time_calls(3, gs, [&] { gpu->hvp(theta.data(), v.data(), out.data(), {}); });
    const Stats cl = time_calls(1, 5, [&] { (void)cpu.loss(theta.data(), {}); });
    const Stats cg = time_calls(1, 5, [&] { (void)cpu.loss_grad(theta.data(), out.data(), {}); });
    const Stats ch = time_calls(1, 5, [&] { cpu.hvp(theta.data(), v.data(), out.data(), {}); });
    std::printf("%-10s %14s %14s %10s\n", "op", "gpu median ms", "cpu median ms", "speed-up");
    const char* names[] = {"loss", "loss_grad", "hvp"};
    const Stats* g3[] = {&gl, &gg, &gh};
    const Stats* c3[] = {&cl, &cg, &ch};
    for (int i = 0; i < 3; ++i)
      std::printf("%-10s %14.3f %14.3f %9.1fx\n", names[i], g3[i]->median * 1e3, c3[i]->median * 1e3,
                  c3[i]->median / g3[i]->median);

    // loss_grid: 41³ points in 3 random directions (each scaled to ‖θ‖/√P per entry)
    const std::size_t steps = 41, k = 3, n = steps * steps * steps;
    std::vector<float> dirs(k * P);
    Rng(3).gaussian(dirs.data(), dirs.size());
    double tn = 0.0;
    for (float t : theta) tn += double(t) * t;
    const float sc = float(std::sqrt(tn / double(P)));
    for (float& d : dirs) d *= sc;
    std::vector<float> coords(n * k);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t a = i / (steps * steps), b = (i / steps) % steps, c = i % steps;
      coords[i * k + 0] = -1.0f + 2.0f * float(a) / float(steps - 1);
      coords[i * k + 1] = -1.0f + 2.0f * float(b) / float(steps - 1);
      coords[i * k + 2] = -1.0f + 2.0f * float(c) / float(steps - 1);
    }
    std::vector<double> res(n);
    gpu->loss_grid(theta.data(), dirs.data(), k, coords.data(), 256, res.data(), {});  // warm-up
    const double tg = wall([&] { gpu->loss_grid(theta.data(), dirs.data(), k, coords.data(), n, res.data(), {}); });
    const std::size_t nc = args.quick ? 500 : 2000;
    std::vector<double> resc(nc);
    const double tc = wall([&] { cpu.loss_grid(theta.data(), dirs.data(), k, coords.data(), nc, resc.data(), {}); });
    double maxrel = 0.0;
    for (std::size_t i = 0; i < nc; ++i)
      maxrel = std::max(maxrel, std::fabs(res[i] - resc[i]) / std::max(std::fabs(resc[i]), 1e-30));
    const double gpps = double(n) / tg, cpps = double(nc) / tc;
    std::printf("loss_grid  41^3 = %zu points, k = 3: gpu %.2f s (%.0f points/s); cpu %zu points %.2f s (%.0f points/s); "
                "max rel diff on the common points %.2e\n",
                n, tg, gpps, nc, tc, cpps, maxrel);
    std::printf("summary: PINN hvp %.3f ms (cpu %.3f ms), loss_grid %.0f points/s (cpu %.0f) on %s\n", gh.median * 1e3,
                ch.median * 1e3, gpps, cpps, info.name.c_str());

    std::ostringstream js;
    js.precision(9);
    js << "{\"bench\":\"cuda_models\",\"compiled\":true,\"available\":true,\"device\":\"" << json_escape(info.name)
       << "\",\"cc\":\"" << info.cc_major << "." << info.cc_minor << "\",\"multiprocessors\":" << info.multiprocessors
       << ",\"cpu_threads\":" << ThreadPool::global().size() << ",\"timer\":\"steady wall clock around synchronous calls\""
       << ",\"pinn\":{\"params\":" << P << ",\"collocation\":1000,\"rows\":" << (cpu.points().ic_x.size() + 2 * cpu.points().bc_t.size() + 3000)
       << ",\"gpu\":{\"loss\":" << stats_json(gl) << ",\"loss_grad\":" << stats_json(gg) << ",\"hvp\":" << stats_json(gh)
       << "},\"cpu\":{\"loss\":" << stats_json(cl) << ",\"loss_grad\":" << stats_json(cg) << ",\"hvp\":" << stats_json(ch)
       << "}},\"loss_grid\":{\"points\":" << n << ",\"k\":3,\"gpu_seconds\":" << tg << ",\"gpu_points_per_s\":" << gpps
       << ",\"cpu_points\":" << nc << ",\"cpu_seconds\":" << tc << ",\"cpu_points_per_s\":" << cpps
       << ",\"max_rel_diff\":" << maxrel << "}}\n";
    write_json_or_die(args.json, js.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_models failed: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
