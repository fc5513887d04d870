#include "base/finite.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/error.h"
#include "base/threadpool.h"

namespace nnscope {

namespace {

// Exponent-all-ones test on the bit pattern: branch-free, vectorises at SSE2.
inline bool bad_bits(uint32_t u) { return (u & 0x7f800000u) == 0x7f800000u; }
inline bool bad_bits(uint64_t u) { return (u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull; }

template <typename T, typename U>
std::size_t scan(const T* x, std::size_t lo, std::size_t hi) {
  constexpr std::size_t kBlock = 256;
  for (std::size_t b = lo; b < hi; b += kBlock) {
    const std::size_t e = b + kBlock < hi ? b + kBlock : hi;
    int any = 0;
    for (std::size_t i = b; i < e; ++i) {
      U u;
      std::memcpy(&u, x + i, sizeof u);
      any |= bad_bits(u);
    }
    if (any)
      for (std::size_t i = b; i < e; ++i)
        if (!std::isfinite(x[i])) return i;
  }
  return hi;
}

template <typename T, typename U>
std::size_t first_bad(const T* x, std::size_t n) {
  constexpr std::size_t kGrain = 1 << 18;
  if (n <= kGrain) return scan<T, U>(x, 0, n);
  std::atomic<std::size_t> best{n};
  parallel_for(0, n, kGrain, [&](std::size_t lo, std::size_t hi) {
    if (lo >= best.load(std::memory_order_relaxed)) return;
    const std::size_t i = scan<T, U>(x, lo, hi);
    if (i < hi) {
      std::size_t cur = best.load();
      while (i < cur && !best.compare_exchange_weak(cur, i)) {
      }
    }
  });
  return best.load();
}

template <typename T>
void require(const T* x, std::size_t n, const std::string& what) {
  const std::size_t i = first_nonfinite(x, n);
  if (i < n)
    fail(ErrorCode::NonFinite, what + " contains a non-finite value (" + (std::isnan(x[i]) ? "NaN" : "Infinity") +
                                   ") at index " + std::to_string(i));
}

}  // namespace

std::size_t first_nonfinite(const float* x, std::size_t n) { return first_bad<float, uint32_t>(x, n); }
std::size_t first_nonfinite(const double* x, std::size_t n) { return first_bad<double, uint64_t>(x, n); }
void require_finite(const float* x, std::size_t n, const std::string& what) { require(x, n, what); }
void require_finite(const double* x, std::size_t n, const std::string& what) { require(x, n, what); }

}  // namespace nnscope
