// nnscope native benchmark: CPU (and, when built with CUDA and a GPU answers,
// GPU) dense linear algebra. No Node needed.
//
//   bench_linalg [--sizes 256,512,...] [--threads 1,2] [--quick] [--no-skinny] [--json FILE]
//
// SGEMM: C = A·B (no transposes, alpha 1, beta 0) on random float32 matrices;
// GFLOP/s = 2·m·n·k / time. Each figure is the median of ≥5 timed samples after a
// warm-up (small problems repeat the call inside a sample so that a sample lasts
// ≥ ~20 ms), with min and max. Level 1: sdot and saxpy in GB/s of memory traffic
// (dot reads 8 bytes per element, axpy reads 8 and writes 4).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "base/cpu.h"
#include "base/device.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#include "linalg/gemm_kernels.h"
#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/backend.h"
#endif

using namespace nnscope;
using namespace nnscope::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;  // of the derived rate (GFLOP/s or GB/s)
  int samples = 0;
};

// Times fn; `work` is flops (or bytes) per call. Returns rate statistics in G/s.
Stat measure(const std::function<void()>& fn, double work, int samples, double min_sample_s) {
  fn();  // warm-up (also sizes scratch buffers)
  auto t0 = Clock::now();
  fn();
  double once = std::chrono::duration<double>(Clock::now() - t0).count();
  int inner = 1;
  if (once < min_sample_s) inner = int(std::min(1e6, std::ceil(min_sample_s / std::max(once, 1e-9))));
  std::vector<double> rates;
  for (int s = 0; s < samples; ++s) {
    t0 = Clock::now();
    for (int r = 0; r < inner; ++r) fn();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(work * inner / dt / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  Stat st;
  st.samples = samples;
  st.min = rates.front();
  st.max = rates.back();
  const std::size_t h = rates.size() / 2;
  st.median = rates.size() % 2 ? rates[h] : 0.5 * (rates[h - 1] + rates[h]);
  return st;
}




struct Row {
  std::string op, device, shape, unit, note;
  std::size_t m = 0, n = 0, k = 0;
  int threads = 0;
  Stat st;
};

void print_row(const Row& r) {
  std::printf("%-7s %-5s %-18s %7d %10.1f %10.1f %10.1f  %s%s\n", r.op.c_str(), r.device.c_str(), r.shape.c_str(),
              r.threads, r.st.median, r.st.min, r.st.max, r.unit.c_str(), r.note.empty() ? "" : ("  " + r.note).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NNSCOPE_HAVE_CUDA
  set_gpu_backend(cuda::backend());
#endif
  std::vector<std::size_t> sizes = {256, 512, 1024, 2048, 4096};
  std::vector<std::size_t> thread_list;
  bool quick = false, skinny = true, sizes_given = false;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes = parse_list(argv[++i]);
      sizes_given = true;
    } else if (a == "--threads" && i + 1 < argc) {
      thread_list = parse_list(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--no-skinny") {
      skinny = false;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--sizes 256,512,...] [--threads 1,2] [--quick] [--no-skinny] [--json FILE]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const int all_threads = num_threads();
  if (thread_list.empty()) {
    thread_list.push_back(1);
    if (all_threads > 1) thread_list.push_back(std::size_t(all_threads));
  }
  if (quick && !sizes_given) {
    std::vector<std::size_t> s;
    for (auto v : sizes)
      if (v <= 1024) s.push_back(v);
    sizes = s;
  }
  const int samples = quick ? 5 : 7;
  const double min_sample = quick ? 0.01 : 0.03;

  const auto& gk = linalg::detail::gemm_kernel();
  std::printf("nnscope bench_linalg — CPU: %s, %u hardware threads, pool %d threads\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), all_threads);
  std::printf("ISA: cpu %s, active %s; sgemm kernel %s; %d samples (median, min, max)\n", isa_name(cpu_isa()),
              isa_name(active_isa()), gk.name, samples);
  std::printf("%-7s %-5s %-18s %7s %10s %10s %10s\n", "op", "dev", "shape m×n×k / n", "threads", "median", "min", "max");

  std::vector<Row> rows;
  Rng rng(1234);

  struct Shape {
    std::size_t m, n, k;
  };
  std::vector<Shape> shapes;
  for (auto s : sizes) shapes.push_back({s, s, s});
  if (skinny) {
    const std::size_t big = quick ? 1024 : 4096;
    shapes.push_back({big, big, 64});
    shapes.push_back({big, 64, big});
    shapes.push_back({64, big, big});
    shapes.push_back({1, big, big});
  }

  for (const Shape& sh : shapes) {
    std::vector<float> a(sh.m * sh.k), b(sh.k * sh.n), c(sh.m * sh.n);
    rng.uniform(a.data(), a.size());
    rng.uniform(b.data(), b.size(), a.size());
    linalg::GemmArgs g;
    g.m = sh.m;
    g.n = sh.n;
    g.k = sh.k;
    g.a = a.data();
    g.lda = sh.k;
    g.b = b.data();
    g.ldb = sh.n;
    g.c = c.data();
    g.ldc = sh.n;
    const double flops = 2.0 * double(sh.m) * double(sh.n) * double(sh.k);
    for (auto t : thread_list) {
      set_num_threads(int(t));
      Row r;
      r.op = "sgemm";
      r.device = "cpu";
      r.m = sh.m;
      r.n = sh.n;
      r.k = sh.k;
      r.shape = std::to_string(sh.m) + "x" + std::to_string(sh.n) + "x" + std::to_string(sh.k);
      r.threads = int(t);
      r.unit = "GFLOP/s";
      r.st = measure([&] { linalg::sgemm(Device::Cpu, g); }, flops, samples, min_sample);
      print_row(r);
      rows.push_back(r);
    }
  }

  // Level 1 at a large n.
  {
    const std::size_t n = quick ? (std::size_t(1) << 22) : (std::size_t(1) << 24);
    std::vector<float> x(n), y(n);
    rng.uniform(x.data(), n, 7);
    rng.uniform(y.data(), n, 7 + n);
    volatile double sink = 0;
    for (auto t : thread_list) {
      set_num_threads(int(t));
      Row r;
      r.device = "cpu";
      r.n = n;
      r.shape = std::to_string(n);
      r.threads = int(t);
      r.unit = "GB/s";
      r.op = "sdot";
      r.st = measure([&] { sink = sink + linalg::sdot(Device::Cpu, n, x.data(), y.data()); }, 8.0 * n, samples,
                     min_sample);
      print_row(r);
      rows.push_back(r);
      r.op = "saxpy";
      r.st = measure([&] { linalg::saxpy(Device::Cpu, n, 1e-7f, x.data(), y.data()); }, 12.0 * n, samples,
                     min_sample);
      print_row(r);
      rows.push_back(r);
    }
  }
  set_num_threads(all_threads);

  // GPU: end-to-end (host→device copies, kernel, device→host copy).
  std::string gpu_status;
  const GpuInfo info = gpu_info();
  if (!info.compiled) {
    gpu_status = "skipped: this build has no CUDA (" + info.reason + ")";
  } else if (!info.available) {
    gpu_status = "skipped: no usable GPU (" + info.reason + ")";
  } else {
    gpu_status = "ran on " + info.name + "; times are end-to-end including host↔device copies";
    for (auto s : sizes) {
      std::vector<float> a(s * s), b(s * s), c(s * s);
      rng.uniform(a.data(), a.size());
      rng.uniform(b.data(), b.size(), a.size());
      linalg::GemmArgs g;
      g.m = g.n = g.k = s;
      g.a = a.data();
      g.b = b.data();
      g.c = c.data();
      g.lda = g.ldb = g.ldc = s;
      Row r;
      r.op = "sgemm";
      r.device = "cuda";
      r.m = r.n = r.k = s;
      r.shape = std::to_string(s) + "x" + std::to_string(s) + "x" + std::to_string(s);
      r.threads = 0;
      r.unit = "GFLOP/s";
      r.note = "end-to-end incl. copies";
      r.st = measure([&] { linalg::sgemm(Device::Cuda, g); }, 2.0 * double(s) * s * s, samples, min_sample);
      print_row(r);
      rows.push_back(r);
    }
  }
  std::printf("GPU: %s\n", gpu_status.c_str());

  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
      return 1;
    }
    f << "{\n  \"benchmark\": \"linalg\",\n";
    f << "  \"machine\": {\"cpu\": \"" << json_escape(cpu_model()) << "\", \"hardware_threads\": "
      << std::thread::hardware_concurrency() << ", \"pool_threads\": " << all_threads << ", \"cpu_isa\": \""
      << isa_name(cpu_isa()) << "\", \"active_isa\": \"" << isa_name(active_isa()) << "\", \"sgemm_kernel\": \""
      << json_escape(gk.name) << "\"},\n";
    f << "  \"gpu\": \"" << json_escape(gpu_status) << "\",\n";
    f << "  \"samples\": " << samples << ",\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "    {\"op\": \"%s\", \"device\": \"%s\", \"m\": %zu, \"n\": %zu, \"k\": %zu, \"threads\": %d, "
                    "\"unit\": \"%s\", \"median\": %.3f, \"min\": %.3f, \"max\": %.3f%s}%s\n",
                    r.op.c_str(), r.device.c_str(), r.m, r.n, r.k, r.threads, r.unit.c_str(), r.st.median, r.st.min,
                    r.st.max, r.note.empty() ? "" : (", \"note\": \"" + json_escape(r.note) + "\"").c_str(),
                    i + 1 < rows.size() ? "," : "");
      f << buf;
    }
    f << "  ]\n}\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
