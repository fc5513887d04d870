// nnscope core, attention family: storage types and views shared by every
// attention op. Keys/values/queries are row-major [heads, tokens, d]; keys and
// values may be stored as float32 or as 16-bit patterns (IEEE fp16, bfloat16),
// always computed in float32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nnscope::attention {

enum class Storage { F32, F16, BF16 };

inline std::size_t storage_bytes(Storage s) noexcept { return s == Storage::F32 ? 4 : 2; }

// IEEE binary16 → float32, exact (subnormals, ±Inf, NaN preserved).
inline float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float32 → IEEE binary16, round to nearest even; overflow → ±Inf, NaN stays NaN.
inline std::uint16_t float_to_half(float f) noexcept {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (x >= 0x47800000u) {                                                 // ≥ 65536 (incl. Inf): rounds to Inf
    // values in [65520, 65536) round to Inf as well (handled below by rounding)
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  }
  if (x < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (x < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25 rounds to 0
    const std::uint32_t e = x >> 23;
    const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // 14..24 → result = m >> (shift) with rounding
    std::uint32_t r = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t r = x - 0x38000000u;  // rebias exponent (127 → 15), mantissa in the low 23 bits
  const std::uint32_t rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // may carry into the exponent (→ Inf is correct)
  return static_cast<std::uint16_t>(sign | r);
}

inline float bf16_to_float(std::uint16_t b) noexcept {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float32 → bfloat16, round to nearest even; NaN stays NaN.
inline std::uint16_t float_to_bf16(float f) noexcept {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(x >> 16);
}

// A borrowed [heads, tokens, d] tensor of keys or values in any Storage. Rows are
// d elements apart; heads are head_stride rows apart (0 = tokens: dense), so a
// growing buffer with spare capacity per head is a view too.
struct KvView {
  const void* data = nullptr;
  Storage storage = Storage::F32;
  std::size_t heads = 0, tokens = 0, d = 0;
  std::size_t head_stride = 0;

  std::size_t row_index(std::size_t h, std::size_t t) const noexcept {
    return (h * (head_stride ? head_stride : tokens) + t) * d;
  }
  const float* f32(std::size_t h, std::size_t t) const noexcept {
    return static_cast<const float*>(data) + row_index(h, t);
  }
  const std::uint16_t* u16(std::size_t h, std::size_t t) const noexcept {
    return static_cast<const std::uint16_t*>(data) + row_index(h, t);
  }
  // Row (h, t) as float32 into out[d] (scalar; load_rows below is the fast path).
  void row(std::size_t h, std::size_t t, float* out) const noexcept {
    switch (storage) {
      case Storage::F32: std::memcpy(out, f32(h, t), d * sizeof(float)); break;
      case Storage::F16: {
        const std::uint16_t* p = u16(h, t);
        for (std::size_t i = 0; i < d; ++i) out[i] = half_to_float(p[i]);
        break;
      }
      case Storage::BF16: {
        const std::uint16_t* p = u16(h, t);
        for (std::size_t i = 0; i < d; ++i) out[i] = bf16_to_float(p[i]);
        break;
      }
    }
  }
};

// Rows [t0, t0 + n) of head h as float32 into out[n·d], with the vector
// conversions of the attention kernels (vcvtph2ps / bf16 shift on AVX2 and
// AVX-512 CPUs; attention.cpp). Bit-identical to row(). Shape when the rows are
// out of range, InvalidArgument for null pointers or an unknown storage.
void load_rows(const KvView& v, std::size_t h, std::size_t t0, std::size_t n, float* out);

}  // namespace nnscope::attention
