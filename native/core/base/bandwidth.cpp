#include "base/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "base/buffer.h"
#include "base/threadpool.h"

namespace nnscope {

BandwidthResult measure_read_bandwidth(std::size_t bytes, int samples, const OpContext& ctx) {
  BandwidthResult r;
  const std::size_t n = std::max<std::size_t>(bytes, std::size_t(1) << 20) / 8;
  r.bytes = n * 8;
  r.threads = num_threads();
  AlignedBuffer<std::uint64_t> buf(n);
  parallel_for(0, n, std::size_t(1) << 20, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  });
  const std::size_t chunk = std::size_t(1) << 21;  // 16 MiB per task
  const std::size_t chunks = (n + chunk - 1) / chunk;
  std::vector<std::uint64_t> part(chunks);
  volatile std::uint64_t sink = 0;
  auto pass = [&] {
    ThreadPool::global().run(chunks, [&](std::size_t c) {
      const std::uint64_t* p = buf.data() + c * chunk;
      const std::size_t len = std::min(chunk, n - c * chunk);
      std::uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::size_t i = 0;
      for (; i + 8 <= len; i += 8)
        for (int j = 0; j < 8; ++j) a[j] += p[i + j];
      for (; i < len; ++i) a[0] += p[i];
      part[c] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    });
    std::uint64_t s = 0;
    for (std::uint64_t v : part) s += v;
    sink = sink + s;
  };
  pass();
  for (int s = 0; s < std::max(1, samples); ++s) {
    ctx.check();
    const auto t0 = std::chrono::steady_clock::now();
    pass();
    r.sample_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = r.sample_ms;
  std::sort(sorted.begin(), sorted.end());
  r.gbs = double(r.bytes) / (sorted[sorted.size() / 2] * 1e-3) / 1e9;
  return r;
}

}  // namespace nnscope
