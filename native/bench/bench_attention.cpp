// nnscope native benchmark: CPU attention kernels (attention/attention.h). No Node needed.
//
//   bench_attention [--quick] [--threads 1,2] [--json FILE]
//
// Measured in one run:
//  * read bandwidth: a threaded sum (with prefetch) over a 1 GiB buffer (the
//    pool's threads), the roofline for decode; on a shared machine the bandwidth
//    left to us drifts, so every decode row is also bracketed by two 512 MiB
//    probes and its "of bw" is against the larger of them;
//  * dense decode (Nq = 1) and prefill (Nq = 128), H = 8 and 32 (MHA), d = 128,
//    N = 16K and 32K keys, fp32 and fp16 K/V storage: median time, bytes of K and V
//    read (each read once), GB/s and its fraction of the measured bandwidth; for
//    prefill GFLOP/s = 4·Nq·N·d·H / time;
//  * sparse decode over a random 10 % of the keys (one list per KV head), the
//    last-level cache evicted before every sample (single calls);
//  * GQA decode (32 query heads, 8 KV heads, N = 32K);
//  * SGEMM (linalg) of the prefill logit shape (128 × 16384 × 128) and of 2048³:
//    the GEMM figures prefill is compared with.
// Each figure is the median of ≥ 5 samples after a warm-up (≥ 3 with --quick);
// short calls repeat inside a sample so that it lasts ≥ 50 ms. K/V (1 GiB of fp32
// at H = 32, N = 32K) are far larger than the last-level cache.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "attention/attention.h"
#include "attention/attn_kernels.h"
#include "base/buffer.h"
#include "base/cpu.h"
#include "base/device.h"
#include "base/threadpool.h"
#include "bench_util.h"
#include "linalg/blas.h"

using namespace nnscope;
using namespace nnscope::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;  // seconds per call
};

// Times fn; with `before`, every sample is one call preceded by before() (not
// timed), e.g. to evict the caches.
Stat time_it(const std::function<void()>& fn, int samples, double min_sample_s,
             const std::function<void()>& before = nullptr) {
  if (before) {
    fn();
    std::vector<double> t;
    for (int s = 0; s < samples; ++s) {
      before();
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
  fn();  // warm-up (sizes scratch buffers, faults pages)
  auto t0 = Clock::now();
  fn();
  const double once = std::chrono::duration<double>(Clock::now() - t0).count();
  int inner = 1;
  if (once < min_sample_s) inner = int(std::min(1e5, std::ceil(min_sample_s / std::max(once, 1e-9))));
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    t0 = Clock::now();
    for (int r = 0; r < inner; ++r) fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / inner);
  }
  std::sort(t.begin(), t.end());
  Stat st;
  st.min = t.front();
  st.max = t.back();
  const std::size_t h = t.size() / 2;
  st.median = t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]);
  return st;
}

// Deterministic uniform values in [-1, 1), filled in parallel.
void fill_uniform(float* p, std::size_t n, uint64_t seed) {
  parallel_for(0, n, std::size_t(1) << 22, [&](std::size_t lo, std::size_t hi) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + lo * 0xD1B54A32D192ED03ull + 1;
    for (std::size_t i = lo; i < hi; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p[i] = float(int64_t(x >> 40) - (int64_t(1) << 23)) * (1.0f / float(1 << 23));
    }
  });
}

// Read bandwidth: sum of a buffer's 64-bit words over the pool, in GB/s (median),
// with a software prefetch 2 KiB ahead (the decode kernels do the same; without
// it the sum reads ~10 % slower on the 2-core Cascade Lake it was tuned on).
struct BandwidthProbe {
  std::size_t n = 0;
  AlignedBuffer<uint64_t> buf;
  std::vector<uint64_t> part;
  volatile uint64_t sink = 0;
  static constexpr std::size_t kChunk = std::size_t(1) << 21;  // 16 MiB per task

  explicit BandwidthProbe(std::size_t bytes) : n(bytes / 8), buf(n), part((n + kChunk - 1) / kChunk) {
    parallel_for(0, n, std::size_t(1) << 20, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
    });
  }
  // Reads the first `bytes` of the buffer (evicts the last-level cache).
  void sweep(std::size_t bytes) {
    const std::size_t words = std::min(n, bytes / 8);
    uint64_t s = 0;
    for (std::size_t i = 0; i < words; i += 8) s += buf[i];
    sink = sink + s;
  }
  void sum_once() {
    const std::size_t chunks = part.size();
    ThreadPool::global().run(chunks, [&](std::size_t c) {
      const uint64_t* p = buf.data() + c * kChunk;
      const std::size_t len = std::min(kChunk, n - c * kChunk);
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      std::size_t i = 0;
      for (; i + 8 <= len; i += 8) {
        __builtin_prefetch(p + i + 256, 0, 3);  // T0; NTA reads ~20 % slower here
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
        a4 += p[i + 4];
        a5 += p[i + 5];
        a6 += p[i + 6];
        a7 += p[i + 7];
      }
      for (; i < len; ++i) a0 += p[i];
      part[c] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    });
    uint64_t s = 0;
    for (uint64_t v : part) s += v;
    sink = sink + s;
  }
  double gbs(int samples, Stat* stat = nullptr) {
    const Stat st = time_it([&] { sum_once(); }, samples, 0.0);
    if (stat) *stat = st;
    return double(n) * 8.0 / st.median / 1e9;
  }
};

struct Row {
  std::string op, storage;
  std::size_t heads = 0, nq = 0, n = 0, d = 0, selected = 0;
  int threads = 0;
  Stat st;
  double bytes = 0, flops = 0;
  double bw_local = 0;  // decode rows: bandwidth probed around the row (GB/s)
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json_path;
  std::vector<std::size_t> thread_list;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      thread_list = parse_list(argv[++i]);
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--quick] [--threads 1,2] [--json FILE]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const int all_threads = num_threads();
  if (thread_list.empty()) thread_list.push_back(std::size_t(all_threads));
  const int samples = quick ? 3 : 5;
  const double min_sample = 0.05;
  const std::size_t d = 128, Hmax = 32, Nmax = quick ? 16384 : 32768;
  const std::vector<std::size_t> heads_list = {8, 32};
  std::vector<std::size_t> n_list = {16384, 32768};
  if (quick) n_list = {16384};

  const auto& ak = attention::detail::attn_kernel();
  std::printf("nnscope bench_attention — CPU: %s, %u hardware threads, pool %d threads\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), all_threads);
  std::printf("ISA: cpu %s, active %s; attention kernel %s; %d samples (median)\n", isa_name(cpu_isa()),
              isa_name(active_isa()), ak.name, samples);

  // Read bandwidth first (then its buffer is freed).
  // Measured again at the end: the reference is the larger of the two (on a shared
  // machine a single figure can catch a busy moment).
  double bw_start;
  {
    BandwidthProbe big(std::size_t(1) << 30);
    bw_start = big.gbs(samples);
  }
  double bw = bw_start;
  std::printf("read bandwidth (threaded sum over 1 GiB, %d threads): %.2f GB/s\n", all_threads, bw);
  // Each decode row is bracketed by two shorter probes (512 MiB): its "of bw" is
  // against the larger, so a change in what the machine's neighbours draw between
  // rows does not show up as kernel efficiency.
  BandwidthProbe probe(std::size_t(1) << 29);

  // K/V for the largest case; smaller ones are views (head_stride = Nmax).
  const std::size_t kvn = Hmax * Nmax * d;
  AlignedBuffer<float> k32(kvn), v32(kvn);
  fill_uniform(k32.data(), kvn, 1);
  fill_uniform(v32.data(), kvn, 2);
  AlignedBuffer<std::uint16_t> k16(kvn), v16(kvn);
  parallel_for(0, kvn, std::size_t(1) << 22, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      k16[i] = attention::float_to_half(k32[i]);
      v16[i] = attention::float_to_half(v32[i]);
    }
  });
  const std::size_t nq_max = 128;
  AlignedBuffer<float> q(Hmax * nq_max * d), out(Hmax * nq_max * d), lse(Hmax * nq_max);
  fill_uniform(q.data(), Hmax * nq_max * d, 3);

  auto view = [&](attention::Storage st, bool is_k, std::size_t H, std::size_t N) {
    attention::KvView v;
    v.data = st == attention::Storage::F32 ? static_cast<const void*>(is_k ? k32.data() : v32.data())
                                           : static_cast<const void*>(is_k ? k16.data() : v16.data());
    v.storage = st;
    v.heads = H;
    v.tokens = N;
    v.d = d;
    v.head_stride = Nmax;
    return v;
  };

  std::vector<Row> rows;
  std::printf("%-17s %-4s %3s %4s %6s %3s %10s %9s %7s %9s\n", "op", "kv", "H", "Nq", "N", "thr", "median ms",
              "GB/s", "of bw", "GFLOP/s");
  std::printf("(decode rows: \"of bw\" against the bandwidth probed just before and after the row)\n");
  auto print = [&](const Row& r) {
    const double gbs = r.bytes / r.st.median / 1e9;
    const double ref = r.bw_local > 0 ? r.bw_local : bw;
    std::printf("%-17s %-4s %3zu %4zu %6zu %3d %10.3f %9.2f %6.0f%% ", r.op.c_str(), r.storage.c_str(), r.heads,
                r.nq, r.n, r.threads, r.st.median * 1e3, gbs, 100.0 * gbs / ref);
    if (r.bw_local > 0) std::printf("%9s (probe %.2f GB/s)", "", r.bw_local);
    if (r.flops > 0) std::printf("%9.1f", r.flops / r.st.median / 1e9);
    std::printf("\n");
    std::fflush(stdout);
  };

  for (std::size_t t : thread_list) {
    set_num_threads(int(t));
    for (const char* op : {"dense_decode", "dense_prefill", "sparse_decode"}) {
      const bool prefill = !std::strcmp(op, "dense_prefill"), sparse = !std::strcmp(op, "sparse_decode");
      const std::size_t nq = prefill ? nq_max : 1;
      for (attention::Storage st : {attention::Storage::F32, attention::Storage::F16}) {
        for (std::size_t H : heads_list) {
          for (std::size_t N : n_list) {
            if (N > Nmax) continue;
            const attention::KvView kv = view(st, true, H, N), vv = view(st, false, H, N);
            const attention::Queries qq{q.data(), H, nq, d};
            const attention::Output o{out.data(), lse.data()};
            Row r;
            r.op = op;
            r.storage = st == attention::Storage::F32 ? "f32" : "f16";
            r.heads = H;
            r.nq = nq;
            r.n = N;
            r.d = d;
            r.threads = int(t);
            const double row_bytes = double(d) * double(attention::storage_bytes(st));
            if (!sparse) {
              r.bytes = 2.0 * double(H) * double(N) * row_bytes;
              if (prefill) r.flops = 4.0 * double(nq) * double(N) * double(d) * double(H);
              const double b0 = prefill ? 0.0 : probe.gbs(3);
              r.st = time_it([&] { attention::dense_attention(qq, kv, vv, {}, o, {}); }, samples, min_sample);
              if (!prefill) r.bw_local = std::max(b0, probe.gbs(3));
            } else {
              // 10 % of the keys per head, random, ascending (deterministic).
              std::vector<std::int32_t> idx;
              std::vector<std::size_t> off = {0};
              uint64_t x = 88172645463325252ull + H * 7 + N;
              for (std::size_t h = 0; h < H; ++h) {
                for (std::size_t j = 0; j < N; ++j) {
                  x ^= x << 13;
                  x ^= x >> 7;
                  x ^= x << 17;
                  if ((x >> 11) % 10 == 0) idx.push_back(std::int32_t(j));
                }
                off.push_back(idx.size());
              }
              r.selected = idx.size();
              r.bytes = 2.0 * double(idx.size()) * row_bytes + 4.0 * double(idx.size());
              const attention::Selection sel{idx.data(), off.data(), false};
              const double b0 = probe.gbs(3);
              // The selected rows of the smaller cases fit in the last-level cache:
              // evict it before every (single-call) sample so rows come from DRAM.
              r.st = time_it([&] { attention::sparse_attention(qq, kv, vv, sel, 0, o, {}); }, 2 * samples + 1,
                             0.0, [&] { probe.sweep(std::size_t(128) << 20); });
              r.bw_local = std::max(b0, probe.gbs(3));
            }
            print(r);
            rows.push_back(r);
          }
        }
      }
    }
    // GQA decode: 32 query heads over 8 KV heads (the group's 4 heads share each K/V read).
    for (attention::Storage st : {attention::Storage::F32, attention::Storage::F16}) {
      const std::size_t N = Nmax, Hq = 32, Hkv = 8;
      const attention::KvView kv = view(st, true, Hkv, N), vv = view(st, false, Hkv, N);
      const attention::Queries qq{q.data(), Hq, 1, d};
      Row r;
      r.op = "dense_decode_gqa";
      r.storage = st == attention::Storage::F32 ? "f32" : "f16";
      r.heads = Hq;
      r.nq = 1;
      r.n = N;
      r.d = d;
      r.threads = int(t);
      r.bytes = 2.0 * double(Hkv) * double(N) * double(d) * double(attention::storage_bytes(st));
      const double b0 = probe.gbs(3);
      r.st = time_it([&] { attention::dense_attention(qq, kv, vv, {}, attention::Output{out.data(), lse.data()}, {}); },
                     samples, min_sample);
      r.bw_local = std::max(b0, probe.gbs(3));
      print(r);
      rows.push_back(r);
    }
    // GEMM figures: the prefill logit shape (128 × 16384 × 128) and a square 2048³.
    for (std::size_t shape = 0; shape < 2; ++shape) {
      const std::size_t m = shape ? 2048 : 128, n = shape ? 2048 : 16384, kk = shape ? 2048 : 128;
      std::vector<float> a(m * kk), b(kk * n), c(m * n);
      fill_uniform(a.data(), a.size(), 5);
      fill_uniform(b.data(), b.size(), 6);
      linalg::GemmArgs g;
      g.m = m;
      g.n = n;
      g.k = kk;
      g.a = a.data();
      g.lda = kk;
      g.b = b.data();
      g.ldb = n;
      g.c = c.data();
      g.ldc = n;
      Row r;
      r.op = shape ? "sgemm_2048" : "sgemm_ref";
      r.storage = "f32";
      r.nq = m;
      r.n = n;
      r.d = kk;
      r.heads = 1;
      r.threads = int(t);
      r.flops = 2.0 * double(m) * double(n) * double(kk);
      r.bytes = double(kk) * double(n) * 4.0;
      r.st = time_it([&] { linalg::sgemm(Device::Cpu, g); }, samples, min_sample);
      print(r);
      rows.push_back(r);
    }
  }
  set_num_threads(all_threads);
  const double bw_end = probe.gbs(samples);
  bw = std::max(bw_start, bw_end);
  std::printf("read bandwidth at the end: %.2f GB/s (start %.2f GB/s)\n", bw_end, bw_start);

  if (!json_path.empty()) {
    std::string body;
    char buf[768];
    body += "{\n  \"benchmark\": \"attention\",\n";
    std::snprintf(buf, sizeof buf,
                  "  \"machine\": {\"cpu\": \"%s\", \"hardware_threads\": %u, \"pool_threads\": %d, \"cpu_isa\": "
                  "\"%s\", \"active_isa\": \"%s\", \"attention_kernel\": \"%s\"},\n",
                  json_escape(cpu_model()).c_str(), std::thread::hardware_concurrency(), all_threads,
                  isa_name(cpu_isa()), isa_name(active_isa()), ak.name);
    body += buf;
    std::snprintf(buf, sizeof buf,
                  "  \"bandwidth\": {\"method\": \"threaded sum with prefetch: 1 GiB at the start, 512 MiB at the "
                  "end and around every decode row (bw_local_gbs, the reference of its bw_fraction)\", "
                  "\"threads\": %d, \"gbs\": %.3f, \"gbs_start\": %.3f, \"gbs_end\": %.3f},\n",
                  all_threads, bw, bw_start, bw_end);
    body += buf;
    std::snprintf(buf, sizeof buf, "  \"samples\": %d,\n  \"results\": [\n", samples);
    body += buf;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      const double gbs = r.bytes / r.st.median / 1e9;
      std::snprintf(buf, sizeof buf,
                    "    {\"op\": \"%s\", \"storage\": \"%s\", \"heads\": %zu, \"nq\": %zu, \"n\": %zu, \"d\": %zu, "
                    "\"selected\": %zu, \"threads\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
                    "\"bytes\": %.0f, \"gbs\": %.3f, \"bw_local_gbs\": %.3f, \"bw_fraction\": %.3f, "
                    "\"gflops\": %.2f}%s\n",
                    r.op.c_str(), r.storage.c_str(), r.heads, r.nq, r.n, r.d, r.selected, r.threads,
                    r.st.median * 1e3, r.st.min * 1e3, r.st.max * 1e3, r.bytes, gbs, r.bw_local,
                    gbs / (r.bw_local > 0 ? r.bw_local : bw),
                    r.flops > 0 ? r.flops / r.st.median / 1e9 : 0.0, i + 1 < rows.size() ? "," : "");
      body += buf;
    }
    body += "  ]\n}\n";
    write_json_or_die(json_path, body);
  }
  return 0;
}
