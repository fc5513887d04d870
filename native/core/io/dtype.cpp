#include "io/dtype.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "base/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nnscope tensor I/O assumes a little-endian host"
#endif

namespace nnscope::io {

namespace {

struct DtypeInfo {
  const char* name;
  std::size_t size;
  bool is_float;
};

constexpr DtypeInfo kInfo[kNumDtypes] = {
    {"BOOL", 1, false},    {"U8", 1, false},      {"I8", 1, false},  {"F8_E4M3", 1, true},
    {"F8_E5M2", 1, true},  {"F8_E8M0", 1, true},  {"I16", 2, false}, {"U16", 2, false},
    {"F16", 2, true},      {"BF16", 2, true},     {"I32", 4, false}, {"U32", 4, false},
    {"F32", 4, true},      {"I64", 8, false},     {"U64", 8, false}, {"F64", 8, true},
};

inline std::uint32_t bits_of(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(std::uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <typename T>
inline T load(const unsigned char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
inline void store(unsigned char* p, T v) noexcept {
  std::memcpy(p, &v, sizeof(T));
}

[[noreturn]] void lossy(Dtype src, Dtype dst, std::size_t index, const std::string& value,
                        const char* why) {
  fail(ErrorCode::Dtype, std::string("element ") + std::to_string(index) + " of a " + dtype_name(src) +
                             " tensor (" + value + ") " + why + " " + dtype_name(dst) +
                             "; allow rounding to convert it anyway");
}

// Integer → Out exactly, or false when the value is not representable.
template <typename Out>
inline bool exact_from_i64(std::int64_t x, Out* out) noexcept {
  const Out o = static_cast<Out>(x);
  // 2^63 is exactly representable in float and double; anything at or above it
  // came from rounding up and cannot be cast back.
  if (o >= static_cast<Out>(9223372036854775808.0)) return false;
  *out = o;
  return static_cast<std::int64_t>(o) == x;
}
template <typename Out>
inline bool exact_from_u64(std::uint64_t x, Out* out) noexcept {
  const Out o = static_cast<Out>(x);
  if (o >= static_cast<Out>(18446744073709551616.0)) return false;
  *out = o;
  return static_cast<std::uint64_t>(o) == x;
}

// Decodes n integers of type In: exact, or rounded when opts allow it, else an error.
template <typename Out, typename In>
void decode_ints(const unsigned char* s, Dtype src, unsigned char* d, Dtype dst, std::size_t n,
                 const ConvertOptions& opts, std::size_t first) {
  for (std::size_t i = 0; i < n; ++i) {
    const In x = load<In>(s + sizeof(In) * i);
    Out o;
    const bool exact = std::is_signed_v<In> ? exact_from_i64<Out>(static_cast<std::int64_t>(x), &o)
                                            : exact_from_u64<Out>(static_cast<std::uint64_t>(x), &o);
    if (!exact) {
      if (!opts.allow_rounding) lossy(src, dst, first + i, std::to_string(x), "is not exactly representable as");
      o = static_cast<Out>(x);
    }
    store<Out>(d + i * sizeof(Out), o);
  }
}

// Decodes n elements of src into Out (float or double), stored at any alignment.
template <typename Out>
void decode(const unsigned char* s, Dtype src, unsigned char* d, Dtype dst, std::size_t n,
            const ConvertOptions& opts, std::size_t first) {
  constexpr std::size_t W = sizeof(Out);
  switch (src) {
    case Dtype::BOOL:
      for (std::size_t i = 0; i < n; ++i) {
        const unsigned char b = s[i];
        if (b > 1)
          fail(ErrorCode::Format, "element " + std::to_string(first + i) + " of a BOOL tensor is the byte " +
                                      std::to_string(b) + ", not 0 or 1");
        store<Out>(d + i * W, static_cast<Out>(b));
      }
      return;
    case Dtype::U8:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(s[i]));
      return;
    case Dtype::I8:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(static_cast<std::int8_t>(s[i])));
      return;
    case Dtype::F8_E4M3:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(f8e4m3_to_f32(s[i])));
      return;
    case Dtype::F8_E5M2:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(f8e5m2_to_f32(s[i])));
      return;
    case Dtype::F8_E8M0:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(f8e8m0_to_f32(s[i])));
      return;
    case Dtype::I16:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(load<std::int16_t>(s + 2 * i)));
      return;
    case Dtype::U16:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(load<std::uint16_t>(s + 2 * i)));
      return;
    case Dtype::F16:
      for (std::size_t i = 0; i < n; ++i)
        store<Out>(d + i * W, static_cast<Out>(f16_to_f32(load<std::uint16_t>(s + 2 * i))));
      return;
    case Dtype::BF16:
      for (std::size_t i = 0; i < n; ++i)
        store<Out>(d + i * W, static_cast<Out>(bf16_to_f32(load<std::uint16_t>(s + 2 * i))));
      return;
    case Dtype::I32:
      return decode_ints<Out, std::int32_t>(s, src, d, dst, n, opts, first);
    case Dtype::U32:
      return decode_ints<Out, std::uint32_t>(s, src, d, dst, n, opts, first);
    case Dtype::F32:
      for (std::size_t i = 0; i < n; ++i) store<Out>(d + i * W, static_cast<Out>(load<float>(s + 4 * i)));
      return;
    case Dtype::I64:
      return decode_ints<Out, std::int64_t>(s, src, d, dst, n, opts, first);
    case Dtype::U64:
      return decode_ints<Out, std::uint64_t>(s, src, d, dst, n, opts, first);
    case Dtype::F64:
      for (std::size_t i = 0; i < n; ++i) {
        const double x = load<double>(s + 8 * i);
        const Out o = static_cast<Out>(x);
        if (!opts.allow_rounding && std::isinf(o) && std::isfinite(x)) {
          char buf[40];
          std::snprintf(buf, sizeof buf, "%.17g", x);
          lossy(src, dst, first + i, buf, "is beyond the finite range of");
        }
        store<Out>(d + i * W, o);
      }
      return;
  }
  fail(ErrorCode::Internal, "decode: bad dtype");
}

}  // namespace

const char* dtype_name(Dtype d) noexcept {
  const int i = static_cast<int>(d);
  return i >= 0 && i < kNumDtypes ? kInfo[i].name : "?";
}

std::size_t dtype_size(Dtype d) noexcept {
  const int i = static_cast<int>(d);
  return i >= 0 && i < kNumDtypes ? kInfo[i].size : 0;
}

bool dtype_is_float(Dtype d) noexcept {
  const int i = static_cast<int>(d);
  return i >= 0 && i < kNumDtypes && kInfo[i].is_float;
}

bool parse_dtype(std::string_view s, Dtype* out) noexcept {
  for (int i = 0; i < kNumDtypes; ++i)
    if (s == kInfo[i].name) {
      *out = static_cast<Dtype>(i);
      return true;
    }
  return false;
}

float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (man << 13));  // inf / NaN (payload kept)
  if (exp != 0) return float_of(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return float_of(sign);  // ±0
  // Subnormal: man · 2^-24, exact in binary32 (a normal float there).
  const float mag = static_cast<float>(man) * float_of(0x33800000u);  // 2^-24
  return float_of(sign | bits_of(mag));
}

std::uint16_t f32_to_f16(float f) noexcept {
  std::uint32_t x = bits_of(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x == 0x7f800000u) return sign | 0x7c00u;
    // NaN: keep the top 10 payload bits, force the quiet bit so it stays a NaN.
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  }
  // 65520 = halfway between 65504 (odd mantissa) and 2^16: ties to even → inf.
  if (x >= 0x477ff000u) return sign | 0x7c00u;
  if (x >= 0x38800000u) {  // ≥ 2^-14: a normal half
    const std::uint32_t r = x - 0x38000000u;  // rebias the exponent: 127 → 15
    const std::uint32_t rounded = r + 0x0fffu + ((r >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
  }
  // ≤ 2^-25 (half of the smallest subnormal, a tie to the even 0) → ±0.
  if (x <= 0x33000000u) return sign;
  // A half subnormal: q = round(value / 2^-24), value = significand · 2^(e-150).
  const std::uint32_t e = x >> 23;  // 102 … 112
  const std::uint32_t sig = (x & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126u - e;  // 14 … 24
  std::uint32_t q = sig >> shift;
  const std::uint32_t rem = sig & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal: correct
  return static_cast<std::uint16_t>(sign | q);
}

float bf16_to_f32(std::uint16_t b) noexcept { return float_of(static_cast<std::uint32_t>(b) << 16); }

std::uint16_t f32_to_bf16(float f) noexcept {
  const std::uint32_t x = bits_of(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest even; a carry out of the mantissa bumps the exponent, and
  // out of the largest finite exponent gives inf, as IEEE prescribes.
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float f8e4m3_to_f32(std::uint8_t v) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(v & 0x80u) << 24;
  const std::uint32_t exp = (v >> 3) & 0xfu;
  const std::uint32_t man = v & 0x7u;
  if (exp == 0xf && man == 0x7) return float_of(sign | 0x7fc00000u);  // the only NaN encoding
  if (exp != 0) return float_of(sign | ((exp + 120u) << 23) | (man << 20));
  if (man == 0) return float_of(sign);
  const float mag = static_cast<float>(man) * float_of(0x3b000000u);  // man · 2^-9
  return float_of(sign | bits_of(mag));
}

float f8e5m2_to_f32(std::uint8_t v) noexcept { return f16_to_f32(static_cast<std::uint16_t>(v) << 8); }

float f8e8m0_to_f32(std::uint8_t v) noexcept {
  if (v == 0xff) return float_of(0x7fc00000u);
  if (v == 0) return float_of(0x00400000u);  // 2^-127, a float subnormal
  return float_of(static_cast<std::uint32_t>(v) << 23);
}

bool can_convert(Dtype src, Dtype dst) noexcept {
  if (dtype_size(src) == 0 || dtype_size(dst) == 0) return false;
  if (src == dst || dst == Dtype::F32 || dst == Dtype::F64) return true;
  return src == Dtype::F32 && (dst == Dtype::F16 || dst == Dtype::BF16);
}

void convert(const void* src, Dtype src_dtype, void* dst, Dtype dst_dtype, std::size_t n,
             const ConvertOptions& opts, std::size_t first_index) {
  if (!can_convert(src_dtype, dst_dtype))
    fail(ErrorCode::Dtype, std::string("cannot convert ") + dtype_name(src_dtype) + " to " + dtype_name(dst_dtype));
  if (n == 0) return;
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  if (src_dtype == dst_dtype) {
    if (src_dtype == Dtype::BOOL)
      for (std::size_t i = 0; i < n; ++i)
        if (s[i] > 1)
          fail(ErrorCode::Format, "element " + std::to_string(first_index + i) + " of a BOOL tensor is the byte " +
                                      std::to_string(s[i]) + ", not 0 or 1");
    std::memmove(d, s, n * dtype_size(src_dtype));
    return;
  }
  switch (dst_dtype) {
    case Dtype::F32:
      decode<float>(s, src_dtype, d, dst_dtype, n, opts, first_index);
      return;
    case Dtype::F64:
      decode<double>(s, src_dtype, d, dst_dtype, n, opts, first_index);
      return;
    case Dtype::F16:
      for (std::size_t i = 0; i < n; ++i) store<std::uint16_t>(d + 2 * i, f32_to_f16(load<float>(s + 4 * i)));
      return;
    case Dtype::BF16:
      for (std::size_t i = 0; i < n; ++i) store<std::uint16_t>(d + 2 * i, f32_to_bf16(load<float>(s + 4 * i)));
      return;
    default:
      break;
  }
  fail(ErrorCode::Internal, "convert: unreachable");
}

}  // namespace nnscope::io
