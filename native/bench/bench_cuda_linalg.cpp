// nnscope native benchmark: the CUDA linalg kernels. No Node needed.
//
//   bench_cuda_linalg [--quick] [--sizes 256,512,...] [--json FILE]
//
// SGEMM C = A·B (square n×n×n, no transposes, alpha 1, beta 0) on random float32:
//  - kernel: the GEMM alone on data already on the GPU, timed with CUDA events
//    around each launch; median (min, max) of >= 10 samples after 3 warm-ups;
//  - end-to-end: the backend's host-pointer call (allocate, copy in, compute, copy
//    out, free), wall clock, median of 3-5 samples after a warm-up;
//  - cpu: linalg::sgemm_cpu on the same machine in the same run, for a few sizes.
// GFLOP/s = 2·n³ / time. Beside it the device's FP32 peak, derived as
//   multiprocessors × FP32 lanes per multiprocessor (from the compute capability:
//   64 on sm_60/70/75/80, 128 on sm_50/61/86/89/90/100/120) × 2 flops per FMA ×
//   the peak SM clock (cudaDevAttrClockRate),
// and for the level-1 kernels (sdot, saxpy on 2^26 floats, GB/s of memory traffic)
// the memory peak 2 × memory clock × bus width / 8 (DDR/HBM double data rate).
// Without CUDA compiled in, or with no usable GPU, it prints why and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "base/device.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#ifdef NNSCOPE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/backend.h"
#include "cuda/linalg.h"
#include "cuda/memory.h"
#endif

using namespace nnscope;
using namespace nnscope::bench;

namespace {

struct Args {
  bool quick = false;
  std::vector<std::size_t> sizes;
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
    } else if (s == "--sizes" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string tok;
      while (std::getline(ss, tok, ','))
        if (!tok.empty()) a.sizes.push_back(std::strtoull(tok.c_str(), nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--sizes 256,512,...] [--json FILE]\n", argv[0]);
      std::exit(2);
    }
  }
  if (a.sizes.empty())
    a.sizes = a.quick ? std::vector<std::size_t>{256, 1024, 4096}
                      : std::vector<std::size_t>{256, 512, 1024, 2048, 4096, 8192};
  return a;
}


#ifdef NNSCOPE_HAVE_CUDA


struct Stats {
  double median = 0, min = 0, max = 0;  // seconds
  int samples = 0;
};

Stats stats(std::vector<double> t) {
  Stats s;
  if (t.empty()) return s;
  std::sort(t.begin(), t.end());
  s.samples = int(t.size());
  s.min = t.front();
  s.max = t.back();
  const std::size_t h = t.size() / 2;
  s.median = t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]);
  return s;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fp32_lanes_per_sm(int major, int minor, bool* known) {
  *known = true;
  switch (major) {
    case 5: return 128;
    case 6: return minor == 0 ? 64 : 128;
    case 7: return 64;
    case 8: return minor == 0 ? 64 : 128;
    case 9: return 128;
    case 10:
    case 11:
    case 12: return 128;
    default: *known = false; return 128;
  }
}

int attr(cudaDeviceAttr a, int dev) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

struct GemmRow {
  std::size_t n = 0;
  Stats kernel, e2e, cpu;
  double max_rel_err = 0;  // spot check of a few C entries against float64
};

double gflops(std::size_t n, double seconds) { return seconds > 0 ? 2.0 * double(n) * n * n / seconds / 1e9 : 0.0; }

#endif

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
#ifndef NNSCOPE_HAVE_CUDA
  std::printf("bench_cuda_linalg: nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off); nothing to do\n");
  write_json_or_die(args.json, "{\"bench\":\"cuda_linalg\",\"compiled\":false,\"available\":false,\"reason\":\"built without CUDA\"}\n");
  return 0;
#else
  set_gpu_backend(cuda::backend());
  const GpuInfo info = cuda::backend()->info();
  if (!info.available) {
    std::printf("bench_cuda_linalg: no usable GPU: %s\n", info.reason.c_str());
    write_json_or_die(args.json, "{\"bench\":\"cuda_linalg\",\"compiled\":true,\"available\":false,\"reason\":\"" +
                                     json_escape(info.reason) + "\"}\n");
    return 0;
  }
  try {
    const int dev = info.device;
    cuda::set_device(dev);
    bool lanes_known = true;
    const int lanes = fp32_lanes_per_sm(info.cc_major, info.cc_minor, &lanes_known);
    const double clock_hz = attr(cudaDevAttrClockRate, dev) * 1e3;
    const double peak_gflops = double(info.multiprocessors) * lanes * 2.0 * clock_hz / 1e9;
    const double mem_clock_hz = attr(cudaDevAttrMemoryClockRate, dev) * 1e3;
    const int bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth, dev);
    const double peak_gbs = 2.0 * mem_clock_hz * bus_bits / 8.0 / 1e9;

    std::printf("device: %s (sm_%d%d), %d SMs x %d FP32 lanes%s x 2 x %.0f MHz = FP32 peak %.0f GFLOP/s\n",
                info.name.c_str(), info.cc_major, info.cc_minor, info.multiprocessors, lanes,
                lanes_known ? "" : " (assumed)", clock_hz / 1e6, peak_gflops);
    std::printf("memory: %.1f GiB, %d-bit bus at %.0f MHz = peak %.0f GB/s; driver %d, runtime %d; built for %s\n",
                double(info.total_memory) / (1u << 30), bus_bits, mem_clock_hz / 1e6, peak_gbs, info.driver_version,
                info.runtime_version, info.architectures.c_str());
    std::printf("host threads (CPU SGEMM): %d\n", num_threads());
    const auto kattrs = cuda::kernel_attributes();
    for (const auto& a : kattrs)
      std::printf("  kernel %-26s %3d regs  %6d B smem  %4d B local  (sm_%d)\n", a.name.c_str(), a.registers,
                  a.shared_bytes, a.local_bytes, a.binary_version);

    cuda::Stream stream;
    cuda::Event start(true), stop(true);
    std::vector<GemmRow> rows;
    const std::vector<std::size_t> cpu_sizes = args.quick ? std::vector<std::size_t>{256, 512}
                                                          : std::vector<std::size_t>{256, 1024};

    std::printf("\n%-6s %12s %12s %12s %8s %14s %12s %10s\n", "n", "kernel GF/s", "(min)", "(max)", "% peak",
                "end-to-end GF/s", "cpu GF/s", "max relerr");
    for (std::size_t n : args.sizes) {
      GemmRow r;
      r.n = n;
      const std::size_t nn = n * n;
      std::vector<float> a(nn), b(nn), c(nn);
      Rng(1).uniform(a.data(), nn);
      Rng(2).uniform(b.data(), nn);
      for (auto* v : {&a, &b})
        for (float& x : *v) x = 2.0f * x - 1.0f;

      {  // kernel only, data resident on the GPU
        cuda::DeviceBuffer da(nn * sizeof(float)), db(nn * sizeof(float)), dc(nn * sizeof(float));
        cuda::copy_to_device(da.data(), a.data(), nn * sizeof(float), stream.handle());
        cuda::copy_to_device(db.data(), b.data(), nn * sizeof(float), stream.handle());
        linalg::GemmArgs g;
        g.m = g.n = g.k = n;
        g.a = da.as<float>();
        g.lda = n;
        g.b = db.as<float>();
        g.ldb = n;
        g.c = dc.as<float>();
        g.ldc = n;
        for (int w = 0; w < 3; ++w) cuda::sgemm_async(g, stream.handle());
        stream.synchronize();
        const int reps = n >= 4096 ? 10 : (args.quick ? 10 : 20);
        std::vector<double> t;
        for (int i = 0; i < reps; ++i) {
          start.record(stream.handle());
          cuda::sgemm_async(g, stream.handle());
          stop.record(stream.handle());
          stop.synchronize();
          t.push_back(cuda::Event::elapsed_ms(start, stop) / 1e3);
        }
        r.kernel = stats(t);
        cuda::copy_to_host(c.data(), dc.data(), nn * sizeof(float), stream.handle());
        stream.synchronize();
        // spot check: corners and the middle against float64
        const std::size_t probes[][2] = {{0, 0}, {n - 1, n - 1}, {n / 2, n / 3}, {n / 3, n - 1}};
        for (auto& pr : probes) {
          double s = 0.0, s_abs = 0.0;
          for (std::size_t p = 0; p < n; ++p) {
            s += double(a[pr[0] * n + p]) * b[p * n + pr[1]];
            s_abs += std::fabs(double(a[pr[0] * n + p]) * b[p * n + pr[1]]);
          }
          r.max_rel_err = std::max(r.max_rel_err, std::fabs(c[pr[0] * n + pr[1]] - s) / std::max(s_abs, 1e-30));
        }
      }
      {  // end to end through the backend (host pointers)
        linalg::GemmArgs g;
        g.m = g.n = g.k = n;
        g.a = a.data();
        g.lda = n;
        g.b = b.data();
        g.ldb = n;
        g.c = c.data();
        g.ldc = n;
        linalg::sgemm(Device::Cuda, g);
        const int reps = n >= 4096 ? 3 : 5;
        std::vector<double> t;
        for (int i = 0; i < reps; ++i) {
          const double t0 = now_s();
          linalg::sgemm(Device::Cuda, g);
          t.push_back(now_s() - t0);
        }
        r.e2e = stats(t);
      }
      if (std::find(cpu_sizes.begin(), cpu_sizes.end(), n) != cpu_sizes.end()) {
        linalg::GemmArgs g;
        g.m = g.n = g.k = n;
        g.a = a.data();
        g.lda = n;
        g.b = b.data();
        g.ldb = n;
        g.c = c.data();
        g.ldc = n;
        linalg::sgemm_cpu(g);
        std::vector<double> t;
        for (int i = 0; i < 3; ++i) {
          const double t0 = now_s();
          linalg::sgemm_cpu(g);
          t.push_back(now_s() - t0);
        }
        r.cpu = stats(t);
      }
      std::printf("%-6zu %12.1f %12.1f %12.1f %7.1f%% %14.1f %12s %10.1e\n", n, gflops(n, r.kernel.median),
                  gflops(n, r.kernel.max), gflops(n, r.kernel.min), 100.0 * gflops(n, r.kernel.median) / peak_gflops,
                  gflops(n, r.e2e.median),
                  r.cpu.samples ? std::to_string(int(std::lround(gflops(n, r.cpu.median)))).c_str() : "-",
                  r.max_rel_err);
      std::fflush(stdout);
      rows.push_back(r);
    }

    // level 1: sdot and saxpy on 2^26 floats resident on the GPU
    const std::size_t vn = args.quick ? (std::size_t(1) << 24) : (std::size_t(1) << 26);
    double dot_s = 0, axpy_s = 0;
    {
      cuda::DeviceBuffer dx(vn * sizeof(float)), dy(vn * sizeof(float)),
          dr((1 + cuda::reduce_workspace_doubles()) * sizeof(double));
      std::vector<float> x(vn, 0.5f);
      cuda::copy_to_device(dx.data(), x.data(), vn * sizeof(float), stream.handle());
      cuda::copy_to_device(dy.data(), x.data(), vn * sizeof(float), stream.handle());
      double* res = dr.as<double>();
      std::vector<double> td, ta;
      for (int i = 0; i < 13; ++i) {
        start.record(stream.handle());
        cuda::sdot_async(vn, dx.as<float>(), dy.as<float>(), res, res + 1, stream.handle());
        stop.record(stream.handle());
        stop.synchronize();
        if (i >= 3) td.push_back(cuda::Event::elapsed_ms(start, stop) / 1e3);
        start.record(stream.handle());
        cuda::saxpy_async(vn, 1e-3f, dx.as<float>(), dy.as<float>(), stream.handle());
        stop.record(stream.handle());
        stop.synchronize();
        if (i >= 3) ta.push_back(cuda::Event::elapsed_ms(start, stop) / 1e3);
      }
      dot_s = stats(td).median;
      axpy_s = stats(ta).median;
    }
    const double dot_gbs = 8.0 * vn / dot_s / 1e9, axpy_gbs = 12.0 * vn / axpy_s / 1e9;
    std::printf("\nsdot  n=%zu: %.0f GB/s (%.0f%% of peak)   saxpy: %.0f GB/s (%.0f%%)\n", vn, dot_gbs,
                100.0 * dot_gbs / peak_gbs, axpy_gbs, 100.0 * axpy_gbs / peak_gbs);

    double best = 0;
    std::size_t best_n = 0;
    for (auto& r : rows)
      if (gflops(r.n, r.kernel.median) > best) {
        best = gflops(r.n, r.kernel.median);
        best_n = r.n;
      }
    std::printf("summary: sgemm kernel best %.0f GFLOP/s at n=%zu (%.0f%% of FP32 peak %.0f) on %s\n", best, best_n,
                100.0 * best / peak_gflops, peak_gflops, info.name.c_str());

    std::ostringstream js;
    js.precision(6);
    js << "{\"bench\":\"cuda_linalg\",\"compiled\":true,\"available\":true,\n"
       << " \"device\":{\"name\":\"" << json_escape(info.name) << "\",\"cc\":\"" << info.cc_major << "." << info.cc_minor
       << "\",\"multiprocessors\":" << info.multiprocessors << ",\"fp32_lanes_per_sm\":" << lanes
       << ",\"lanes_known\":" << (lanes_known ? "true" : "false") << ",\"clock_mhz\":" << clock_hz / 1e6
       << ",\"fp32_peak_gflops\":" << peak_gflops << ",\"memory_bytes\":" << info.total_memory
       << ",\"memory_peak_gbs\":" << peak_gbs << ",\"driver\":" << info.driver_version
       << ",\"runtime\":" << info.runtime_version << ",\"architectures\":\"" << json_escape(info.architectures) << "\"},\n"
       << " \"peak_derivation\":\"multiprocessors x FP32 lanes/SM (by compute capability) x 2 x cudaDevAttrClockRate\",\n"
       << " \"kernels\":[";
    for (std::size_t i = 0; i < kattrs.size(); ++i)
      js << (i ? "," : "") << "{\"name\":\"" << json_escape(kattrs[i].name) << "\",\"registers\":" << kattrs[i].registers
         << ",\"shared_bytes\":" << kattrs[i].shared_bytes << ",\"local_bytes\":" << kattrs[i].local_bytes << "}";
    js << "],\n \"sgemm\":[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const GemmRow& r = rows[i];
      js << "  {\"n\":" << r.n << ",\"kernel_gflops\":{\"median\":" << gflops(r.n, r.kernel.median)
         << ",\"min\":" << gflops(r.n, r.kernel.max) << ",\"max\":" << gflops(r.n, r.kernel.min)
         << ",\"samples\":" << r.kernel.samples << "},\"kernel_ms_median\":" << r.kernel.median * 1e3
         << ",\"pct_of_peak\":" << 100.0 * gflops(r.n, r.kernel.median) / peak_gflops
         << ",\"end_to_end_gflops\":" << gflops(r.n, r.e2e.median) << ",\"end_to_end_ms_median\":" << r.e2e.median * 1e3;
      if (r.cpu.samples) js << ",\"cpu_gflops\":" << gflops(r.n, r.cpu.median);
      js << ",\"spot_max_rel_err\":" << r.max_rel_err << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    js << " ],\n \"level1\":{\"n\":" << vn << ",\"sdot_gbs\":" << dot_gbs << ",\"saxpy_gbs\":" << axpy_gbs << "},\n"
       << " \"cpu_threads\":" << num_threads() << "}\n";
    write_json_or_die(args.json, js.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_linalg: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
