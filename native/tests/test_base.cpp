// Tests of the runtime base: thread pool, RNG, errors, devices, buffers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <thread>
#include <vector>

#include "base/buffer.h"
#include "base/context.h"
#include "base/cpu.h"
#include "base/device.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"

using namespace nnscope;

NNSCOPE_TEST(pool_runs_every_chunk_once) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(1000);
    pool.run(hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

NNSCOPE_TEST(pool_rethrows_first_error_and_stays_usable) {
  ThreadPool pool(3);
  EXPECT_THROWS_CODE(pool.run(100,
                              [&](std::size_t i) {
                                if (i == 17) fail(ErrorCode::Shape, "boom");
                              }),
                     ErrorCode::Shape);
  std::atomic<int> n{0};
  pool.run(50, [&](std::size_t) { n++; });
  EXPECT_EQ(n.load(), 50);
}

NNSCOPE_TEST(pool_nested_and_concurrent_callers) {
  ThreadPool& pool = ThreadPool::global();
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      pool.run(20, [&](std::size_t) {
        parallel_for(0, 100, 7, [&](std::size_t lo, std::size_t hi) { total += long(hi - lo); });
      });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4L * 20 * 100);
}

NNSCOPE_TEST(pool_resize_while_idle) {
  const int before = num_threads();
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  std::atomic<int> n{0};
  parallel_for(0, 1000, 10, [&](std::size_t lo, std::size_t hi) { n += int(hi - lo); });
  EXPECT_EQ(n.load(), 1000);
  EXPECT_THROWS_CODE(set_num_threads(0), ErrorCode::InvalidArgument);
  set_num_threads(before);
}

NNSCOPE_TEST(philox_known_answer) {
  // Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors):
  // counter 0, key 0 → 6627e8d5 e169c58d bc57ac4c 9b00dbd8
  auto w = philox4x32(0, 0, 0);
  EXPECT_EQ(w[0], 0x6627e8d5u);
  EXPECT_EQ(w[1], 0xe169c58du);
  EXPECT_EQ(w[2], 0xbc57ac4cu);
  EXPECT_EQ(w[3], 0x9b00dbd8u);
  // counter all ones, key all ones → 408f276d 41c83b0e a20bc7c6 6d5451fd
  w = philox4x32(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(w[0], 0x408f276du);
  EXPECT_EQ(w[1], 0x41c83b0eu);
  EXPECT_EQ(w[2], 0xa20bc7c6u);
  EXPECT_EQ(w[3], 0x6d5451fdu);
}

NNSCOPE_TEST(rng_reproducible_across_threads_and_offsets) {
  const std::size_t n = 100003;
  Rng rng(42, 7);
  std::vector<float> a(n), b(n), c(n - 1001);
  const int before = num_threads();
  set_num_threads(1);
  rng.gaussian(a.data(), n);
  set_num_threads(4);
  rng.gaussian(b.data(), n);
  rng.gaussian(c.data(), c.size(), 1001);
  set_num_threads(before);
  EXPECT(a == b);
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], a[i + 1001]);
  EXPECT_EQ(float(rng.gaussian_at(12345)), a[12345]);
  std::vector<float> d(n);
  Rng(43, 7).gaussian(d.data(), n);
  EXPECT(a != d);
  Rng(42, 8).gaussian(d.data(), n);
  EXPECT(a != d);
}

NNSCOPE_TEST(rng_distributions_have_right_moments) {
  const std::size_t n = 1 << 20;
  std::vector<double> x(n);
  Rng rng(1);
  // uniform(0,1): mean 1/2, variance 1/12, strictly inside (0, 1)
  rng.uniform(x.data(), n);
  double m = 0, v = 0;
  for (double e : x) { EXPECT(e > 0 && e < 1); m += e; }
  m /= n;
  for (double e : x) v += (e - m) * (e - m);
  v /= n;
  EXPECT_NEAR(m, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(v, 1.0 / 12, 0.002);
  // gaussian: mean 0, variance 1, kurtosis 3
  rng.gaussian(x.data(), n);
  m = 0; v = 0; double k4 = 0;
  for (double e : x) m += e;
  m /= n;
  for (double e : x) { v += (e - m) * (e - m); k4 += std::pow(e - m, 4); }
  v /= n; k4 /= n;
  EXPECT_NEAR(m, 0.0, 5 / std::sqrt(double(n)));
  EXPECT_NEAR(v, 1.0, 0.01);
  EXPECT_NEAR(k4 / (v * v), 3.0, 0.05);
  // rademacher: ±1, balanced
  std::vector<float> r(n);
  rng.rademacher(r.data(), n);
  double s = 0;
  for (float e : r) { EXPECT(e == 1.0f || e == -1.0f); s += e; }
  EXPECT_NEAR(s / n, 0.0, 5 / std::sqrt(double(n)));
  // below: in range, roughly uniform
  std::vector<int> counts(10);
  for (uint64_t i = 0; i < 100000; ++i) {
    auto b = rng.below_at(i, 10);
    EXPECT(b < 10);
    counts[b]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 600);
}

NNSCOPE_TEST(cancel_token_and_context) {
  OpContext ctx;
  ctx.check();  // no token: never cancelled
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.check();
  ctx.cancel->cancel();
  EXPECT(ctx.cancelled());
  EXPECT_THROWS_CODE(ctx.check(), ErrorCode::Cancelled);
  double last = -1;
  ctx.progress = [&](double done, double total) { last = done / total; };
  ctx.report(1, 4);
  EXPECT_EQ(last, 0.25);
}

NNSCOPE_TEST(buffer_alignment_and_overflow) {
  AlignedBuffer<float> b(1001);
  EXPECT(reinterpret_cast<std::uintptr_t>(b.data()) % kAlign == 0);
  EXPECT_EQ(b.size(), std::size_t(1001));
  EXPECT_THROWS_CODE(checked_mul(std::size_t(1) << 40, std::size_t(1) << 40), ErrorCode::TooLarge);
  EXPECT_THROWS_CODE(AlignedBuffer<double>(std::size_t(1) << 62), ErrorCode::TooLarge);
}

NNSCOPE_TEST(devices_parse_and_resolve) {
  EXPECT(parse_device("cpu") == Device::Cpu);
  EXPECT(parse_device("auto") == Device::Auto);
  EXPECT(parse_device("cuda") == Device::Cuda);
  EXPECT_THROWS_CODE(parse_device("tpu"), ErrorCode::UnknownDevice);
  EXPECT(resolve_device(Device::Cpu) == Device::Cpu);
  const GpuInfo info = gpu_info();
  if (info.available) {
    EXPECT(resolve_device(Device::Auto) == Device::Cuda);
  } else {
    EXPECT(!info.reason.empty());
    EXPECT(resolve_device(Device::Auto) == Device::Cpu);
    EXPECT_THROWS_CODE(resolve_device(Device::Cuda), ErrorCode::DeviceUnavailable);
  }
}

NNSCOPE_TEST(cpu_isa_limit) {
  const Isa full = cpu_isa();
  set_isa_limit(Isa::Generic);
  EXPECT(active_isa() == Isa::Generic);
  set_isa_limit(Isa::Avx512);
  EXPECT(active_isa() == full);
}

#include "base/finite.h"

NNSCOPE_TEST(finite_scan_finds_first_bad_value) {
  for (std::size_t n : {0ul, 1ul, 255ul, 256ul, 1000ul, 700001ul}) {
    std::vector<float> x(n, 1.5f);
    EXPECT_EQ(first_nonfinite(x.data(), n), n);
    if (n == 0) continue;
    for (std::size_t at : {n - 1, n / 2, std::size_t(0)}) {
      std::vector<float> y = x;
      y[at] = std::nanf("");
      if (at + 3 < n) y[at + 3] = INFINITY;  // a later bad value must not win
      EXPECT_EQ(first_nonfinite(y.data(), n), at);
      EXPECT_THROWS_CODE(require_finite(y.data(), n, "A"), ErrorCode::NonFinite);
    }
    std::vector<double> d(n, -2.0);
    d[n - 1] = -INFINITY;
    EXPECT_EQ(first_nonfinite(d.data(), n), n - 1);
  }
  // largest finite values and subnormals are finite
  float edge[3] = {3.4028235e38f, -3.4028235e38f, 1e-45f};
  EXPECT_EQ(first_nonfinite(edge, 3), std::size_t(3));
}
