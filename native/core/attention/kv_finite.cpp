#include "attention/kv_finite.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"

namespace nnscope::attention {

namespace {

// First non-finite element of a row of 16-bit patterns: all exponent bits set
// (fp16: 0x7c00, bf16: 0x7f80).
std::size_t first_bad16(const std::uint16_t* p, std::size_t n, std::uint16_t mask) {
  for (std::size_t i = 0; i < n; ++i)
    if ((p[i] & mask) == mask) return i;
  return n;
}

}  // namespace

void require_finite_kv(const KvView& kv, const std::string& what) {
  const std::size_t rows = kv.heads * kv.tokens;
  if (rows == 0 || kv.d == 0) return;
  const std::uint16_t mask = kv.storage == Storage::F16 ? 0x7c00u : 0x7f80u;
  std::atomic<std::size_t> first{rows};
  const std::size_t chunk = std::max<std::size_t>(1, (1u << 16) / kv.d);
  parallel_for(0, rows, chunk, [&](std::size_t r0, std::size_t r1) {
    if (r0 >= first.load(std::memory_order_relaxed)) return;
    for (std::size_t r = r0; r < r1; ++r) {
      const std::size_t h = r / kv.tokens, t = r % kv.tokens;
      const bool bad = kv.storage == Storage::F32 ? first_nonfinite(kv.f32(h, t), kv.d) < kv.d
                                                  : first_bad16(kv.u16(h, t), kv.d, mask) < kv.d;
      if (bad) {
        std::size_t cur = first.load();
        while (r < cur && !first.compare_exchange_weak(cur, r)) {
        }
        return;
      }
    }
  });
  const std::size_t r = first.load();
  if (r < rows)
    fail(ErrorCode::NonFinite, what + " contain NaN or ±Infinity (head " + std::to_string(r / kv.tokens) + ", token " +
                                   std::to_string(r % kv.tokens) + ")");
}

}  // namespace nnscope::attention
