// nnscope core: counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
//
// Draw i of a stream is a pure function of (seed, stream, i), so fills are
// reproducible bit for bit whatever the thread count, and any slice of a stream can
// be generated on its own (offset). Each Philox block (counter c) yields four
// 32-bit words; the layouts are fixed:
//   uniform float  : 4 per block  (24-bit mantissa, values in (0, 1))
//   uniform double : 2 per block  (53-bit, values in (0, 1))
//   gaussian       : 2 per block  (Box–Muller on the block's two doubles, in double)
//   rademacher     : 128 per block (one bit each, ±1)
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace nnscope {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t stream, uint64_t seed) noexcept;

struct Rng {
  uint64_t seed = 0;
  uint64_t stream = 0;  // independent substreams of one seed (e.g. one per restart)

  Rng() = default;
  Rng(uint64_t seed_, uint64_t stream_ = 0) : seed(seed_), stream(stream_) {}

  // Fill out[0..n) with draws offset .. offset+n of the stream. Parallel for large n.
  void uniform(float* out, std::size_t n, uint64_t offset = 0) const;
  void uniform(double* out, std::size_t n, uint64_t offset = 0) const;
  void gaussian(float* out, std::size_t n, uint64_t offset = 0) const;
  void gaussian(double* out, std::size_t n, uint64_t offset = 0) const;
  void rademacher(float* out, std::size_t n, uint64_t offset = 0) const;
  void rademacher(double* out, std::size_t n, uint64_t offset = 0) const;

  // Single draws at index i (same values as the fills).
  double uniform_at(uint64_t i) const noexcept;
  double gaussian_at(uint64_t i) const noexcept;
  // A uniform integer in [0, n) at index i (n > 0; rejection-free Lemire multiply,
  // bias below 2^-32 relative for n < 2^32).
  uint64_t below_at(uint64_t i, uint64_t n) const noexcept;
};

}  // namespace nnscope
