// nnscope core: element types of tensor files (the safetensors dtype set) and
// exact conversions between them and float32 / float64.
//
// All multi-byte values are little-endian (the host must be little-endian; a
// big-endian build fails at compile time in dtype.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nnscope::io {

// The dtypes a safetensors file may declare. The sub-byte types of newer writers
// (F4, F6_E2M3, F6_E3M2) and complex C64 are not supported: a file using them is
// rejected as a format error naming the dtype.
enum class Dtype : std::uint8_t {
  BOOL,     // 1 byte, 0 or 1
  U8,
  I8,
  F8_E4M3,  // OCP FP8 E4M3 ("fn": bias 7, no infinities, S.1111.111 is NaN, max 448)
  F8_E5M2,  // OCP FP8 E5M2 (bias 15, IEEE-like: the top byte of a binary16)
  F8_E8M0,  // OCP MX scale: 2^(e-127), 0xFF is NaN, no sign, no zero
  I16,
  U16,
  F16,      // IEEE binary16
  BF16,     // bfloat16: the top half of a binary32
  I32,
  U32,
  F32,
  I64,
  U64,
  F64,
};

constexpr int kNumDtypes = 16;

// "F32", "BF16", … exactly as safetensors spells them.
const char* dtype_name(Dtype d) noexcept;
// Bytes per element (1, 2, 4 or 8).
std::size_t dtype_size(Dtype d) noexcept;
// Parses a safetensors dtype string (exact, case-sensitive). False when unknown.
bool parse_dtype(std::string_view s, Dtype* out) noexcept;
bool dtype_is_float(Dtype d) noexcept;

// ---- scalar conversions (exact bit manipulation, no FPU mode dependence)

// binary16 → binary32: exact for every input, including subnormals, ±0, ±inf;
// NaN payloads are kept (shifted into the top of the float's mantissa).
float f16_to_f32(std::uint16_t h) noexcept;
// binary32 → binary16, round to nearest, ties to even. Finite values that round
// beyond 65504 become ±inf (IEEE overflow); NaN stays NaN (quiet, top payload bits kept).
std::uint16_t f32_to_f16(float f) noexcept;
// bfloat16 → binary32: exact (a 16-bit shift), NaN payloads kept.
float bf16_to_f32(std::uint16_t b) noexcept;
// binary32 → bfloat16, round to nearest, ties to even; overflow → ±inf; NaN stays NaN (quiet).
std::uint16_t f32_to_bf16(float f) noexcept;
// FP8 → binary32, exact.
float f8e4m3_to_f32(std::uint8_t v) noexcept;
float f8e5m2_to_f32(std::uint8_t v) noexcept;
float f8e8m0_to_f32(std::uint8_t v) noexcept;

// ---- array conversion

struct ConvertOptions {
  // false (default): a conversion that would lose information fails instead:
  //   • an integer not exactly representable in the destination float
  //     (I64/U64 → F64 beyond 2^53 unless the value happens to be representable,
  //     I32/U32/I64/U64 → F32 beyond 2^24 likewise) → ErrorCode::Dtype;
  //   • F64 → F32 of a finite value beyond ±FLT_MAX → ErrorCode::Dtype.
  //   F64 → F32 of in-range values always rounds to nearest even (float32 is the
  //   compute type; this is the one narrowing allowed by default).
  // true: every conversion rounds to nearest even, overflow goes to ±inf.
  bool allow_rounding = false;
};

// True when convert() supports src → dst: dst == src (a byte copy); dst F32 or
// F64 from any dtype above (decoding); F32 → F16 or BF16 (encoding, round to
// nearest even, overflow → ±inf as IEEE prescribes, whatever allow_rounding says).
bool can_convert(Dtype src, Dtype dst) noexcept;

// Converts n elements at src (little-endian, any alignment) to dst (any alignment).
// `first_index` only numbers elements in error messages. Throws ErrorCode::Dtype for
// an unsupported pair or a lossy value (see ConvertOptions), ErrorCode::Format for a
// BOOL byte other than 0 or 1.
void convert(const void* src, Dtype src_dtype, void* dst, Dtype dst_dtype, std::size_t n,
             const ConvertOptions& opts = {}, std::size_t first_index = 0);

}  // namespace nnscope::io
