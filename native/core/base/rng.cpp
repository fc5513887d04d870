#include "base/rng.h"

#include <cmath>

#include "base/threadpool.h"

namespace nnscope {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t stream, uint64_t seed) noexcept {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(M0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(M1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += W0; k1 += W1;
  }
  return {c0, c1, c2, c3};
}

namespace {

inline float u24(uint32_t w) { return (static_cast<float>(w >> 8) + 0.5f) * (1.0f / 16777216.0f); }
inline double u53(uint32_t hi, uint32_t lo) {
  const uint64_t x = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(x) + 0.5) * (1.0 / 9007199254740992.0);
}
inline void box_muller(double u1, double u2, double& z0, double& z1) {
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 6.283185307179586476925286766559 * u2;
  z0 = r * std::cos(t);
  z1 = r * std::sin(t);
}

// Calls emit(index, value) for draws [offset, offset+n) where each block yields
// `per` draws computed by gen(block words, slot).
template <typename T, int Per, typename Gen>
void fill_blocks(const Rng& rng, T* out, std::size_t n, uint64_t offset, Gen gen) {
  constexpr std::size_t kGrain = 1 << 14;  // fixed chunking: results do not depend on threads
  parallel_for(0, n, kGrain, [&](std::size_t lo, std::size_t hi) {
    std::size_t i = lo;
    while (i < hi) {
      const uint64_t idx = offset + i;
      const uint64_t block = idx / Per;
      const int slot0 = static_cast<int>(idx % Per);
      T vals[Per];
      gen(philox4x32(block, rng.stream, rng.seed), vals);
      for (int s = slot0; s < Per && i < hi; ++s, ++i) out[i] = vals[s];
    }
  });
}

template <typename T>
void gauss_block(const std::array<uint32_t, 4>& w, T* v) {
  double z0, z1;
  box_muller(u53(w[0], w[1]), u53(w[2], w[3]), z0, z1);
  v[0] = static_cast<T>(z0);
  v[1] = static_cast<T>(z1);
}

template <typename T>
void rad_block(const std::array<uint32_t, 4>& w, T* v) {
  for (int k = 0; k < 128; ++k) v[k] = ((w[k >> 5] >> (k & 31)) & 1u) ? T(1) : T(-1);
}

}  // namespace

void Rng::uniform(float* out, std::size_t n, uint64_t offset) const {
  fill_blocks<float, 4>(*this, out, n, offset, [](const std::array<uint32_t, 4>& w, float* v) {
    for (int k = 0; k < 4; ++k) v[k] = u24(w[k]);
  });
}
void Rng::uniform(double* out, std::size_t n, uint64_t offset) const {
  fill_blocks<double, 2>(*this, out, n, offset, [](const std::array<uint32_t, 4>& w, double* v) {
    v[0] = u53(w[0], w[1]);
    v[1] = u53(w[2], w[3]);
  });
}
void Rng::gaussian(float* out, std::size_t n, uint64_t offset) const {
  fill_blocks<float, 2>(*this, out, n, offset, gauss_block<float>);
}
void Rng::gaussian(double* out, std::size_t n, uint64_t offset) const {
  fill_blocks<double, 2>(*this, out, n, offset, gauss_block<double>);
}
void Rng::rademacher(float* out, std::size_t n, uint64_t offset) const {
  fill_blocks<float, 128>(*this, out, n, offset, rad_block<float>);
}
void Rng::rademacher(double* out, std::size_t n, uint64_t offset) const {
  fill_blocks<double, 128>(*this, out, n, offset, rad_block<double>);
}

double Rng::uniform_at(uint64_t i) const noexcept {
  const auto w = philox4x32(i / 2, stream, seed);
  return (i % 2 == 0) ? u53(w[0], w[1]) : u53(w[2], w[3]);
}
double Rng::gaussian_at(uint64_t i) const noexcept {
  double v[2];
  gauss_block<double>(philox4x32(i / 2, stream, seed), v);
  return v[i % 2];
}
uint64_t Rng::below_at(uint64_t i, uint64_t n) const noexcept {
  const auto w = philox4x32(i / 2, stream, seed);
  const uint64_t x = (i % 2 == 0) ? ((static_cast<uint64_t>(w[0]) << 32) | w[1])
                                  : ((static_cast<uint64_t>(w[2]) << 32) | w[3]);
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

}  // namespace nnscope
