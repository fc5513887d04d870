// nnscope native benchmark: the CUDA attention family (native/cuda/attention.h).
// No Node needed.
//
//   bench_cuda_attention [--quick] [--tokens N] [--user NU] [--json FILE]
//
// One layer of a long-context model, batch 1: H = 32 query and KV heads, d = 128,
// fp16 K/V, a fixed context of N = 131072 tokens (--quick: 32768), W = 100 window
// tokens, 5 % centroids (C = ⌊0.05·(N − W)⌋ per head, float32), keep 10 % of the
// clustered keys (KeepFraction 0.1, so the kept fraction is exact whatever the
// data), NU = 1024 user tokens. Random Gaussian data (latency does not depend on
// cluster structure; labels uniform over the clusters), all resident on the GPU:
//  - decode, one query per head: dense = attention over the fixed K/V + over the
//    1024-token tail + LSE merge; squeezed = squeezed_decode_async (scores →
//    selection → sparse attention → tail → merge, no host synchronisation); plus
//    the squeezed phases alone (scores, selection, sparse attention);
//  - prefill of NU user tokens: dense = non-causal attention over the fixed K/V +
//    causal attention among the user tokens + merge; squeezed = squeezed_prefill_async;
//  - K-means (one head, n = N − W keys, k = C, cosine) per Lloyd iteration, and the
//    assignment step alone (GFLOP/s = 2·n·k·d / time).
// Times: CUDA events around each call, median (min, max) after warm-ups. Decode
// reports GB/s of the bytes each variant must read (K/V rows, centroids, labels,
// tail) against the card's peak 2 × memory clock × bus width / 8; prefill reports
// TFLOP/s of its matrix products (4·rows·keys·d per head). Without CUDA compiled
// in, or with no usable GPU, it prints why and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/kv.h"
#include "attention/squeezed.h"
#include "base/device.h"
#include "base/rng.h"
#include "bench_util.h"
#ifdef NNSCOPE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cuda/attention.h"
#include "cuda/backend.h"
#include "cuda/memory.h"
#endif

using namespace nnscope;
using namespace nnscope::bench;

namespace {

struct Args {
  bool quick = false;
  std::size_t tokens = 0, user = 1024;
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
    } else if (s == "--tokens" && i + 1 < argc) {
      a.tokens = std::strtoull(argv[++i], nullptr, 10);
    } else if (s == "--user" && i + 1 < argc) {
      a.user = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--tokens N] [--user NU] [--json FILE]\n", argv[0]);
      std::exit(2);
    }
  }
  if (a.tokens == 0) a.tokens = a.quick ? 32768 : 131072;
  if (a.user == 0) a.user = 1;
  return a;
}

#ifdef NNSCOPE_HAVE_CUDA

struct Stats {
  double median = 0, min = 0, max = 0;  // milliseconds
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

int attr(cudaDeviceAttr a, int dev) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

// Times `f` (enqueued on `stream`) with CUDA events: `warm` untimed runs, then `reps`.
Stats time_ms(const std::function<void()>& f, void* stream, int warm, int reps) {
  cuda::Event start(true), stop(true);
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    start.record(stream);
    f();
    stop.record(stream);
    stop.synchronize();
    t.push_back(double(cuda::Event::elapsed_ms(start, stop)));
  }
  return stats(t);
}

// Fills `bytes` of device memory with copies of a random host block (fp16 patterns
// of N(0, 1) values, or float32 N(0, scale²)).
void fill_random(void* dst, std::size_t bytes, bool half, float scale, uint64_t seed, void* stream) {
  const std::size_t block = std::min<std::size_t>(bytes, std::size_t(32) << 20);
  std::vector<unsigned char> host(block);
  const std::size_t n = block / (half ? 2 : 4);
  std::vector<float> g(n);
  Rng(seed).gaussian(g.data(), n);
  if (half) {
    auto* h = reinterpret_cast<std::uint16_t*>(host.data());
    for (std::size_t i = 0; i < n; ++i) h[i] = attention::float_to_half(g[i] * scale);
  } else {
    auto* f = reinterpret_cast<float*>(host.data());
    for (std::size_t i = 0; i < n; ++i) f[i] = g[i] * scale;
  }
  char* d = static_cast<char*>(dst);
  cuda::copy_to_device(d, host.data(), block, stream);
  for (std::size_t off = block; off < bytes; off += block) {
    const std::size_t len = std::min(block, bytes - off);
    if (cudaMemcpyAsync(d + off, d, len, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream)) != cudaSuccess)
      throw std::runtime_error("cudaMemcpyAsync failed");
  }
}

attention::KvView kv(const void* data, std::size_t H, std::size_t N, std::size_t d) {
  attention::KvView v;
  v.data = data;
  v.storage = attention::Storage::F16;
  v.heads = H;
  v.tokens = N;
  v.d = d;
  return v;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

std::string jstats(const Stats& s) {
  std::ostringstream o;
  o.precision(6);
  o << "{\"median_ms\":" << s.median << ",\"min_ms\":" << s.min << ",\"max_ms\":" << s.max << ",\"samples\":"
    << s.samples << "}";
  return o.str();
}

#endif

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
#ifndef NNSCOPE_HAVE_CUDA
  std::printf("bench_cuda_attention: nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off); nothing to do\n");
  write_json_or_die(args.json,
                    "{\"bench\":\"cuda_attention\",\"compiled\":false,\"available\":false,\"reason\":\"built without CUDA\"}\n");
  return 0;
#else
  set_gpu_backend(cuda::backend());
  const GpuInfo info = cuda::backend()->info();
  if (!info.available) {
    std::printf("bench_cuda_attention: no usable GPU: %s\n", info.reason.c_str());
    write_json_or_die(args.json, "{\"bench\":\"cuda_attention\",\"compiled\":true,\"available\":false,\"reason\":\"" +
                                     json_escape(info.reason) + "\"}\n");
    return 0;
  }
  try {
    namespace A = nnscope::attention;
    const int dev = info.device;
    cuda::set_device(dev);
    const double mem_clock_hz = attr(cudaDevAttrMemoryClockRate, dev) * 1e3;
    const int bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth, dev);
    const double peak_gbs = 2.0 * mem_clock_hz * bus_bits / 8.0 / 1e9;
    std::printf("device: %s (sm_%d%d), %d SMs; memory %.1f GiB, %d-bit bus at %.0f MHz = peak %.0f GB/s\n",
                info.name.c_str(), info.cc_major, info.cc_minor, info.multiprocessors,
                double(info.total_memory) / (1u << 30), bus_bits, mem_clock_hz / 1e6, peak_gbs);

    const std::size_t H = 32, Hq = 32, d = 128, N = args.tokens, Nu = args.user, Nt = 1024;
    const std::size_t W = std::min<std::size_t>(100, N - 1), Nc = N - W;
    const std::size_t C = std::max<std::size_t>(1, std::size_t(std::floor(0.05 * double(Nc))));
    std::printf("problem: H=%zu (MHA), d=%zu, fp16 K/V, fixed N=%zu (window %zu), C=%zu centroids/head (5%%), "
                "keep 10%%, user tokens %zu, decode tail %zu\n",
                H, d, N, W, C, Nu, Nt);

    cuda::Stream stream;
    void* s = stream.handle();
    // ---- data
    const std::size_t kv_bytes = H * N * d * 2;
    cuda::DeviceBuffer K(kv_bytes), V(kv_bytes), UK(H * Nu * d * 2), UV(H * Nu * d * 2), TK(H * Nt * d * 2),
        TV(H * Nt * d * 2);
    fill_random(K.data(), kv_bytes, true, 1.0f, 1, s);
    fill_random(V.data(), kv_bytes, true, 1.0f, 2, s);
    fill_random(UK.data(), UK.bytes(), true, 1.0f, 3, s);
    fill_random(UV.data(), UV.bytes(), true, 1.0f, 4, s);
    fill_random(TK.data(), TK.bytes(), true, 1.0f, 5, s);
    fill_random(TV.data(), TV.bytes(), true, 1.0f, 6, s);
    cuda::DeviceBuffer qd(Hq * d * 4), qp(Hq * Nu * d * 4);
    fill_random(qd.data(), qd.bytes(), false, 1.0f, 7, s);
    fill_random(qp.data(), qp.bytes(), false, 1.0f, 8, s);
    // context: random centroids, uniform random labels
    cuda::DeviceBuffer cent(H * C * d * 4), labels(H * Nc * 4), sizes(H * C * 4);
    fill_random(cent.data(), cent.bytes(), false, 0.5f, 9, s);
    {
      std::vector<std::int32_t> lab(H * Nc), sz(H * C, 0);
      std::vector<float> u(H * Nc);
      Rng(10).uniform(u.data(), u.size());
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t t = 0; t < Nc; ++t) {
          std::size_t j = std::size_t(double(u[h * Nc + t]) * double(C));
          if (j >= C) j = C - 1;
          lab[h * Nc + t] = std::int32_t(j);
          ++sz[h * C + j];
        }
      cuda::copy_to_device(labels.data(), lab.data(), labels.bytes(), s);
      cuda::copy_to_device(sizes.data(), sz.data(), sizes.bytes(), s);
      stream.synchronize();
    }
    cuda::DeviceSqueezedContext ctx;
    ctx.heads = H;
    ctx.tokens = N;
    ctx.d = d;
    ctx.window = W;
    ctx.clusters = C;
    ctx.centroids = cent.as<float>();
    ctx.labels = labels.as<std::int32_t>();
    ctx.sizes = sizes.as<std::int32_t>();

    const A::KvView fk = kv(K.data(), H, N, d), fv = kv(V.data(), H, N, d);
    const A::KvView uk = kv(UK.data(), H, Nu, d), uv = kv(UV.data(), H, Nu, d);
    const A::KvView tk = kv(TK.data(), H, Nt, d), tv = kv(TV.data(), H, Nt, d);
    A::SelectOptions so;
    so.mode = A::SelectMode::KeepFraction;
    so.keep_fraction = 0.1;
    so.score.policy = A::GroupPolicy::PerQueryHead;
    const cuda::AttentionTuning tune;

    // ================================================================ decode
    const A::Queries q1{qd.as<float>(), Hq, 1, d};
    cuda::DeviceBuffer o1(Hq * d * 4), l1(Hq * 4), o1b(Hq * d * 4), l1b(Hq * 4), o1s(Hq * d * 4), l1s(Hq * 4);
    const std::size_t ws_dd = std::max(cuda::dense_attention_workspace(q1, fk, fv, tune),
                                       cuda::dense_attention_workspace(q1, tk, tv, tune));
    cuda::DeviceBuffer wsd(std::max<std::size_t>(ws_dd, 256));
    auto dense_decode = [&] {
      cuda::dense_attention_async(q1, fk, fv, A::DenseOptions{}, A::Output{o1.as<float>(), l1.as<float>()},
                                  wsd.data(), wsd.bytes(), s, tune);
      cuda::dense_attention_async(q1, tk, tv, A::DenseOptions{}, A::Output{o1b.as<float>(), l1b.as<float>()},
                                  wsd.data(), wsd.bytes(), s, tune);
      cuda::merge_partials_async(Hq, d, o1.as<float>(), l1.as<float>(), o1b.as<float>(), l1b.as<float>(), s);
    };
    const std::size_t ws_sd = cuda::squeezed_workspace(ctx, q1, tk, tv, false, so, tune);
    cuda::DeviceBuffer wss(ws_sd);
    cuda::DeviceSelectionView selv;
    auto sq_decode = [&] {
      cuda::squeezed_decode_async(fk, fv, ctx, q1, tk, tv, so, A::Output{o1s.as<float>(), l1s.as<float>()}, &selv,
                                  wss.data(), wss.bytes(), s, tune);
    };
    const Stats t_dd = time_ms(dense_decode, s, 5, 30);
    const Stats t_sd = time_ms(sq_decode, s, 5, 30);
    // kept keys (measured) and the phases alone
    std::vector<std::size_t> offs(Hq + 1);
    cuda::copy_to_host(offs.data(), selv.offsets, offs.size() * sizeof(std::size_t), s);
    stream.synchronize();
    const std::size_t kept = offs[Hq];
    const double kept_frac = double(kept) / double(Hq * N);
    cuda::DeviceBuffer scd(Hq * C * 4), skd(Hq * C), idx(Hq * N * 4), off(Hq * 8 + 8);
    const std::size_t ws_sc = cuda::centroid_scores_workspace(ctx, q1, so.score, tune);
    const std::size_t ws_se = cuda::select_keys_workspace(ctx, Hq);
    cuda::DeviceBuffer wsc(std::max<std::size_t>(ws_sc, 256)), wse(std::max<std::size_t>(ws_se, 256));
    auto scores = [&] {
      cuda::centroid_scores_async(ctx, q1, so.score, scd.as<float>(), skd.as<std::uint8_t>(), nullptr, wsc.data(),
                                  wsc.bytes(), s, tune);
    };
    auto select = [&] {
      cuda::select_keys_async(ctx, so.score.policy, Hq, scd.as<float>(), skd.as<std::uint8_t>(), so,
                              idx.as<std::int32_t>(), off.as<std::size_t>(), wse.data(), wse.bytes(), s);
    };
    const Stats t_sc = time_ms(scores, s, 3, 20);
    const Stats t_se = time_ms(select, s, 3, 20);
    const A::Selection sel{idx.as<std::int32_t>(), off.as<std::size_t>(), true};
    const std::size_t ws_sp = cuda::sparse_attention_workspace(q1, fk, fv, true, tune);
    cuda::DeviceBuffer wsp(std::max<std::size_t>(ws_sp, 256));
    auto sparse = [&] {
      cuda::sparse_attention_async(q1, fk, fv, sel, 0.0f, A::Output{o1b.as<float>(), l1b.as<float>()}, wsp.data(),
                                   wsp.bytes(), s, tune);
    };
    const Stats t_sp = time_ms(sparse, s, 3, 20);
    std::vector<float> hd(Hq * d), hs(Hq * d);
    dense_decode();
    sq_decode();
    cuda::copy_to_host(hd.data(), o1.data(), hd.size() * 4, s);
    cuda::copy_to_host(hs.data(), o1s.data(), hs.size() * 4, s);
    stream.synchronize();
    const double err_decode = rel_l2(hs, hd);

    const double dense_bytes = double(2 * H * N * d * 2 + 2 * H * Nt * d * 2);
    const double sq_bytes = double(kept) * d * 2 * 2 + double(H * C * d * 4) + double(H * Nc * 4) + double(H * C * 4) +
                            double(2 * H * Nt * d * 2);
    const double gbs_dd = dense_bytes / (t_dd.median * 1e-3) / 1e9, gbs_sd = sq_bytes / (t_sd.median * 1e-3) / 1e9;
    std::printf("\ndecode (1 query/head):\n");
    std::printf("  dense     %8.3f ms (%.3f..%.3f)  %6.0f GB/s (%4.1f%% of peak) over %.2f GB\n", t_dd.median, t_dd.min,
                t_dd.max, gbs_dd, 100 * gbs_dd / peak_gbs, dense_bytes / 1e9);
    std::printf("  squeezed  %8.3f ms (%.3f..%.3f)  %6.0f GB/s (%4.1f%% of peak) over %.3f GB; kept %.2f%% of keys; "
                "speedup %.2fx; rel L2 vs dense %.3f\n",
                t_sd.median, t_sd.min, t_sd.max, gbs_sd, 100 * gbs_sd / peak_gbs, sq_bytes / 1e9, 100 * kept_frac,
                t_dd.median / t_sd.median, err_decode);
    std::printf("  phases: scores %.3f ms, selection %.3f ms, sparse attention %.3f ms\n", t_sc.median, t_se.median,
                t_sp.median);
    std::fflush(stdout);

    // ================================================================ prefill
    const A::Queries qn{qp.as<float>(), Hq, Nu, d};
    cuda::DeviceBuffer on(Hq * Nu * d * 4), ln(Hq * Nu * 4), onb(Hq * Nu * d * 4), lnb(Hq * Nu * 4),
        ons(Hq * Nu * d * 4), lns(Hq * Nu * 4);
    A::DenseOptions causal;
    causal.causal = true;
    const std::size_t ws_dp = std::max(cuda::dense_attention_workspace(qn, fk, fv, tune),
                                       cuda::dense_attention_workspace(qn, uk, uv, tune));
    cuda::DeviceBuffer wsdp(std::max<std::size_t>(ws_dp, 256));
    auto dense_prefill = [&] {
      cuda::dense_attention_async(qn, fk, fv, A::DenseOptions{}, A::Output{on.as<float>(), ln.as<float>()},
                                  wsdp.data(), wsdp.bytes(), s, tune);
      cuda::dense_attention_async(qn, uk, uv, causal, A::Output{onb.as<float>(), lnb.as<float>()}, wsdp.data(),
                                  wsdp.bytes(), s, tune);
      cuda::merge_partials_async(Hq * Nu, d, on.as<float>(), ln.as<float>(), onb.as<float>(), lnb.as<float>(), s);
    };
    const std::size_t ws_sp2 = cuda::squeezed_workspace(ctx, qn, uk, uv, true, so, tune);
    cuda::DeviceBuffer wssp(ws_sp2);
    cuda::DeviceSelectionView selp;
    auto sq_prefill = [&] {
      cuda::squeezed_prefill_async(fk, fv, ctx, qn, uk, uv, so, A::Output{ons.as<float>(), lns.as<float>()}, &selp,
                                   wssp.data(), wssp.bytes(), s, tune);
    };
    const int preps = args.quick ? 5 : 8;
    const Stats t_dp = time_ms(dense_prefill, s, 2, preps);
    const Stats t_spf = time_ms(sq_prefill, s, 2, preps);
    std::vector<std::size_t> offp(Hq + 1);
    cuda::copy_to_host(offp.data(), selp.offsets, offp.size() * sizeof(std::size_t), s);
    std::vector<float> hpd(Hq * Nu * d), hps(Hq * Nu * d);
    cuda::copy_to_host(hpd.data(), on.data(), hpd.size() * 4, s);
    cuda::copy_to_host(hps.data(), ons.data(), hps.size() * 4, s);
    stream.synchronize();
    const std::size_t kept_p = offp[Hq];
    const double err_prefill = rel_l2(hps, hpd);
    const double user_flops = 4.0 * double(Hq) * double(Nu) * double(Nu + 1) / 2.0 * double(d);
    const double dense_flops = 4.0 * double(Hq) * double(Nu) * double(N) * double(d) + user_flops;
    const double sq_flops = 4.0 * double(Nu) * double(kept_p) * double(d) + user_flops +
                            2.0 * 2.0 * double(Hq) * double(Nu) * double(C) * double(d);
    const bool mma = cuda::attention_mma_eligible(qn, fk, fv);
    std::printf("\nprefill (%zu user tokens, %s kernels):\n", Nu, mma ? "tensor-core" : "SIMT");
    std::printf("  dense     %8.2f ms (%.2f..%.2f)  %6.1f TFLOP/s\n", t_dp.median, t_dp.min, t_dp.max,
                dense_flops / (t_dp.median * 1e-3) / 1e12);
    std::printf("  squeezed  %8.2f ms (%.2f..%.2f)  %6.1f TFLOP/s (attention + two-pass lookup); kept %.2f%%; "
                "speedup %.2fx; rel L2 vs dense %.3f\n",
                t_spf.median, t_spf.min, t_spf.max, sq_flops / (t_spf.median * 1e-3) / 1e12,
                100.0 * double(kept_p) / double(Hq * N), t_dp.median / t_spf.median, err_prefill);
    std::fflush(stdout);

    // ================================================================ K-means
    const std::size_t kn = Nc, kk = C;
    cuda::DeviceBuffer kx(kn * d * 4), kinit(kk * d * 4), kc(kk * d * 4), kl(kn * 4), ksz(kk * 4),
        kh(8 * 8), kin(8), kst(16), kd2(kn * 4), ktot(8);
    fill_random(kx.data(), kx.bytes(), false, 1.0f, 11, s);
    {  // initial centres: normalised random points (the clustered space)
      std::vector<float> init(kk * d);
      Rng(12).gaussian(init.data(), init.size());
      for (std::size_t j = 0; j < kk; ++j) {
        double q = 0;
        for (std::size_t t = 0; t < d; ++t) q += double(init[j * d + t]) * init[j * d + t];
        for (std::size_t t = 0; t < d; ++t) init[j * d + t] = float(init[j * d + t] / std::sqrt(q));
      }
      cuda::copy_to_device(kinit.data(), init.data(), kinit.bytes(), s);
      stream.synchronize();
    }
    const std::size_t wsk_b = cuda::kmeans_workspace(kn, d, kk, true);
    cuda::DeviceBuffer wsk(wsk_b);
    auto kmeans_run = [&](std::size_t iters) {
      cuda::DeviceKmeans a;
      a.x = kx.as<float>();
      a.n = kn;
      a.d = d;
      a.k = kk;
      a.cosine = true;
      a.iterations = iters;
      a.initial = kinit.as<float>();
      a.centroids = kc.as<float>();
      a.labels = kl.as<std::int32_t>();
      a.sizes = ksz.as<std::int32_t>();
      a.history = kh.as<double>();
      a.inertia = kin.as<double>();
      a.state = kst.as<std::int32_t>();
      cuda::kmeans_async(a, wsk.data(), wsk.bytes(), s);
    };
    const Stats t_k1 = time_ms([&] { kmeans_run(1); }, s, 1, 3);
    const Stats t_k4 = time_ms([&] { kmeans_run(4); }, s, 0, 3);
    std::int32_t state[4] = {0, 0, 0, 0};
    cuda::copy_to_host(state, kst.data(), sizeof(state), s);
    stream.synchronize();
    const double per_iter = state[1] > 1 ? (t_k4.median - t_k1.median) / double(state[1] - 1) : t_k1.median;
    const std::size_t wsa_b = cuda::kmeans_assign_workspace(kn, kk);
    cuda::DeviceBuffer wsa(wsa_b);
    const Stats t_as = time_ms(
        [&] {
          cuda::kmeans_assign_async(kx.as<float>(), kn, d, kinit.as<float>(), kk, kl.as<std::int32_t>(),
                                    kd2.as<float>(), ktot.as<double>(), wsa.data(), wsa.bytes(), s);
        },
        s, 1, 5);
    const double assign_tflops = 2.0 * double(kn) * double(kk) * double(d) / (t_as.median * 1e-3) / 1e12;
    std::printf("\nk-means (one head: n=%zu, k=%zu, d=%zu, cosine): %.2f ms per Lloyd iteration (%d iterations run "
                "in the 4-iteration call); assignment alone %.2f ms = %.1f TFLOP/s\n",
                kn, kk, d, per_iter, state[1], t_as.median, assign_tflops);

    std::printf("summary: decode dense %.3f ms vs squeezed %.3f ms (%.2fx, dense %.0f GB/s = %.0f%% of %.0f); prefill "
                "dense %.2f ms vs squeezed %.2f ms (%.2fx); k-means %.1f ms/iter on %s\n",
                t_dd.median, t_sd.median, t_dd.median / t_sd.median, gbs_dd, 100 * gbs_dd / peak_gbs, peak_gbs,
                t_dp.median, t_spf.median, t_dp.median / t_spf.median, per_iter, info.name.c_str());

    std::ostringstream js;
    js.precision(6);
    js << "{\"bench\":\"cuda_attention\",\"compiled\":true,\"available\":true,\n"
       << " \"device\":{\"name\":\"" << json_escape(info.name) << "\",\"cc\":\"" << info.cc_major << "."
       << info.cc_minor << "\",\"multiprocessors\":" << info.multiprocessors << ",\"memory_peak_gbs\":" << peak_gbs
       << ",\"memory_clock_mhz\":" << mem_clock_hz / 1e6 << ",\"bus_bits\":" << bus_bits << "},\n"
       << " \"peak_derivation\":\"2 x cudaDevAttrMemoryClockRate x cudaDevAttrGlobalMemoryBusWidth / 8\",\n"
       << " \"problem\":{\"heads\":" << H << ",\"query_heads\":" << Hq << ",\"d\":" << d << ",\"storage\":\"f16\""
       << ",\"fixed_tokens\":" << N << ",\"window\":" << W << ",\"centroids_per_head\":" << C
       << ",\"keep_fraction\":0.1,\"user_tokens\":" << Nu << ",\"decode_tail\":" << Nt << "},\n"
       << " \"decode\":{\"dense\":" << jstats(t_dd) << ",\"squeezed\":" << jstats(t_sd)
       << ",\"scores\":" << jstats(t_sc) << ",\"selection\":" << jstats(t_se) << ",\"sparse_attention\":" << jstats(t_sp)
       << ",\"dense_bytes\":" << dense_bytes << ",\"squeezed_bytes\":" << sq_bytes << ",\"dense_gbs\":" << gbs_dd
       << ",\"squeezed_gbs\":" << gbs_sd << ",\"dense_pct_of_peak\":" << 100 * gbs_dd / peak_gbs
       << ",\"kept_fraction\":" << kept_frac << ",\"speedup\":" << t_dd.median / t_sd.median
       << ",\"rel_l2_vs_dense\":" << err_decode << "},\n"
       << " \"prefill\":{\"tensor_cores\":" << (mma ? "true" : "false") << ",\"dense\":" << jstats(t_dp)
       << ",\"squeezed\":" << jstats(t_spf) << ",\"dense_tflops\":" << dense_flops / (t_dp.median * 1e-3) / 1e12
       << ",\"squeezed_tflops\":" << sq_flops / (t_spf.median * 1e-3) / 1e12
       << ",\"kept_fraction\":" << double(kept_p) / double(Hq * N) << ",\"speedup\":" << t_dp.median / t_spf.median
       << ",\"rel_l2_vs_dense\":" << err_prefill << "},\n"
       << " \"kmeans\":{\"n\":" << kn << ",\"k\":" << kk << ",\"d\":" << d << ",\"cosine\":true"
       << ",\"ms_per_iteration\":" << per_iter << ",\"one_iteration\":" << jstats(t_k1)
       << ",\"four_iterations\":" << jstats(t_k4) << ",\"iterations_run\":" << state[1]
       << ",\"assign\":" << jstats(t_as) << ",\"assign_tflops\":" << assign_tflops << "}}\n";
    write_json_or_die(args.json, js.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_attention: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
