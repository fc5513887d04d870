// Tests of tensor file I/O: the JSON pull parser, dtype conversions (known bit
// patterns, exhaustive binary16 checks, ties), the safetensors reader (files the
// test writes byte by byte, malformed variants, corruption sweeps, mmap vs
// streaming) and the atomic writer.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/error.h"
#include "harness.h"
#include "io/dtype.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace nnscope::io {
// For the harness's failure messages.
inline std::ostream& operator<<(std::ostream& os, Dtype d) { return os << dtype_name(d); }
}  // namespace nnscope::io

using namespace nnscope;
using namespace nnscope::io;
using nnscope::test::Failure;

namespace {

// ---------------------------------------------------------------- helpers

struct TempDir {
  std::string path;
  TempDir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/nnscope-safetensors-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw Failure("mkdtemp failed for " + tmpl);
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file as bytes: length prefix, header text, data.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

void put_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Failure("cannot write " + path);
}

std::string get_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::uint32_t fbits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsf(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct SplitMix {
  std::uint64_t s;
  explicit SplitMix(std::uint64_t seed) : s(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Same value, NaN equal to NaN, -0 distinct from +0.
bool same_value(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs f, which must throw nnscope::Error with `code` and a message containing `part`.
template <typename F>
void expect_error(const std::string& label, ErrorCode code, const std::string& part, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() != code)
      throw Failure(label + ": expected " + code_name(code) + ", got " + code_name(e.code()) + ": " + e.what());
    if (!part.empty() && !contains(e.what(), part))
      throw Failure(label + ": message lacks \"" + part + "\": " + e.what());
    return;
  }
  throw Failure(label + ": expected an error " + code_name(code));
}

// Walks an arbitrary JSON document with the pull parser.
void json_walk(const std::string& text, std::size_t depth = 64) {
  JsonReader r(text, "test", depth);
  r.skip_value();
  r.finish();
}

// Reference binary16 value of a bit pattern (not inf/NaN), in double.
double f16_reference(std::uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

// Round-to-nearest-even reference for binary32 → a format with `mant_bits`
// fraction bits, minimum normal exponent `emin` and overflow threshold `inf_at`
// (the halfway point above the largest finite value), in double arithmetic.
double round_reference(float f, int mant_bits, int emin, double inf_at) {
  const double a = std::fabs(static_cast<double>(f));
  double r;
  if (a == 0) {
    r = 0;
  } else if (a >= inf_at) {
    r = HUGE_VAL;
  } else {
    int e;
    std::frexp(a, &e);  // a = m · 2^e, m ∈ [0.5, 1): the leading bit is 2^(e-1)
    const int lead = std::max(e - 1, emin);
    const double ulp = std::ldexp(1.0, lead - mant_bits);
    r = std::nearbyint(a / ulp) * ulp;  // a / ulp is exact; nearbyint rounds ties to even
  }
  return std::signbit(f) ? -r : r;
}

// A small valid file: tensor "a" F32 [2] = {1, 2}.
const std::string kValidHeader = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
std::string valid_data() { return bytes_of(std::vector<float>{1.0f, 2.0f}); }

}  // namespace

// ================================================================ JSON

NNSCOPE_TEST(json_reader_walks_valid_documents) {
  const std::string doc =
      "{ \"a\" : [1, 2, {\"b\": null}, [], {}],\n\t\"s\": \"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\xc3\xa9\","
      " \"t\": true, \"f\": false, \"n\": -1.5e+3, \"u\": 9007199254740991, \"z\": 0 }  \r\n";
  JsonReader r(doc, "test");
  r.begin_object();
  std::string key, s;
  std::vector<std::string> keys;
  while (r.next_key(key)) {
    keys.push_back(key);
    if (key == "s") {
      r.read_string(s);
    } else if (key == "t") {
      EXPECT(r.read_bool());
    } else if (key == "f") {
      EXPECT(!r.read_bool());
    } else if (key == "u") {
      EXPECT_EQ(r.read_uint((std::uint64_t(1) << 53) - 1, "u"), (std::uint64_t(1) << 53) - 1);
    } else if (key == "z") {
      EXPECT_EQ(r.read_uint(10, "z"), std::uint64_t(0));
    } else {
      r.skip_value();
    }
  }
  r.finish();
  EXPECT_EQ(keys.size(), std::size_t(7));
  EXPECT_EQ(s, std::string("q\"b\\s/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9"));

  for (const char* ok : {"{}", "[]", "0", "-0", "1E+2", "\"\"", "  [ 1 , [ 2 ] ]  ", "null", "true",
                         "\"\\u0000\"", "{\"\":1}", "[0.5, -1e-7, 123456789012345678901234567890]"})
    json_walk(ok);

  // read_uint: the limits are exact.
  {
    JsonReader r2("18446744073709551615", "test");
    EXPECT_EQ(r2.read_uint(std::numeric_limits<std::uint64_t>::max(), "x"), std::numeric_limits<std::uint64_t>::max());
  }
  expect_error("u64 overflow", ErrorCode::Format, "too large", [] {
    JsonReader r2("18446744073709551616", "test");
    r2.read_uint(std::numeric_limits<std::uint64_t>::max(), "x");
  });
  expect_error("2^53", ErrorCode::Format, "too large", [] {
    JsonReader r2("9007199254740992", "test");
    r2.read_uint((std::uint64_t(1) << 53) - 1, "x");
  });
  expect_error("negative", ErrorCode::Format, "non-negative", [] {
    JsonReader r2("-1", "test");
    r2.read_uint(100, "x");
  });
  expect_error("fraction", ErrorCode::Format, "integer", [] {
    JsonReader r2("1.0", "test");
    r2.read_uint(100, "x");
  });
  expect_error("exponent", ErrorCode::Format, "integer", [] {
    JsonReader r2("1e2", "test");
    r2.read_uint(1000, "x");
  });
  // Depth: exactly the limit is fine, one more is not.
  json_walk(std::string(64, '[') + std::string(64, ']'), 64);
  expect_error("depth 65", ErrorCode::Format, "nesting deeper than 64",
               [] { json_walk(std::string(65, '[') + std::string(65, ']'), 64); });
}

NNSCOPE_TEST(json_reader_rejects_malformed_text) {
  const std::vector<std::string> bad = {
      "",
      "   ",
      "{",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{\"a\":}",
      "{1:2}",
      "{'a':1}",
      "[1 2]",
      "01",
      "1.",
      ".5",
      "+1",
      "-",
      "1e",
      "1e+",
      "0x10",
      "NaN",
      "Infinity",
      "tru",
      "nul",
      "True",
      "\"abc",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\u12g4\"",
      "\"\\ud800\"",
      "\"\\udc00\"",
      "\"\\ud800\\u0041\"",
      "\"\\ud800x\"",
      "\"a\x01\"",
      "\"tab\there\"",
      "\"\xc0\xaf\"",          // overlong '/'
      "\"\xe0\x80\xaf\"",      // overlong, 3 bytes
      "\"\xed\xa0\x80\"",      // UTF-8 encoded surrogate
      "\"\xf4\x90\x80\x80\"",  // above U+10FFFF
      "\"\x80\"",              // lone continuation byte
      "\"\xc3\"",              // truncated sequence
      "\"\xff\"",
      "{} x",
      "[1] [2]",
      "{\"a\":1}}",
      "1 2",
      std::string("{}\0", 3),
      "{\"a\":1,\"a\":2}",
      "[{\"b\":[{\"a\":1,\"\\u0061\":2}]}]",
  };
  for (const auto& text : bad)
    expect_error("malformed JSON " + text, ErrorCode::Format, "", [&] { json_walk(text); });

  // A nesting bomb is rejected at the limit, without recursion, for any depth.
  for (std::size_t n : {65u, 1000u, 1000000u}) {
    expect_error("array bomb", ErrorCode::Format, "nesting deeper", [&] { json_walk(std::string(n, '[')); });
    std::string obj;
    for (std::size_t i = 0; i < n; ++i) obj += "{\"a\":";
    expect_error("object bomb", ErrorCode::Format, "nesting deeper", [&] { json_walk(obj); });
  }
}

// ================================================================ dtype conversions

NNSCOPE_TEST(f16_known_bit_patterns) {
  EXPECT_EQ(f32_to_f16(1.0f), std::uint16_t(0x3c00));
  EXPECT_EQ(f32_to_f16(-2.5f), std::uint16_t(0xc100));
  EXPECT_EQ(f32_to_f16(65504.0f), std::uint16_t(0x7bff));
  EXPECT_EQ(f32_to_f16(-65504.0f), std::uint16_t(0xfbff));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), std::uint16_t(0x0001));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24)), std::uint16_t(0x03ff));  // largest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), std::uint16_t(0x0400));  // smallest normal
  EXPECT_EQ(f32_to_f16(0.0f), std::uint16_t(0x0000));
  EXPECT_EQ(f32_to_f16(-0.0f), std::uint16_t(0x8000));
  EXPECT_EQ(f32_to_f16(HUGE_VALF), std::uint16_t(0x7c00));
  EXPECT_EQ(f32_to_f16(-HUGE_VALF), std::uint16_t(0xfc00));
  const std::uint16_t qnan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT((qnan & 0x7c00) == 0x7c00 && (qnan & 0x03ff) != 0);
  // A signalling NaN whose payload lies only in the low bits must stay a NaN.
  const std::uint16_t snan = f32_to_f16(bitsf(0x7f800001u));
  EXPECT((snan & 0x7c00) == 0x7c00 && (snan & 0x03ff) != 0);
  // Rounding: ties to even, at every binade boundary that matters.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), std::uint16_t(0x3c00));      // tie → even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), std::uint16_t(0x3c02));  // tie → even (up)
  EXPECT_EQ(f32_to_f16(65519.0f), std::uint16_t(0x7bff));
  EXPECT_EQ(f32_to_f16(65520.0f), std::uint16_t(0x7c00));  // tie between 65504 (odd) and 2^16 → inf
  EXPECT_EQ(f32_to_f16(1e10f), std::uint16_t(0x7c00));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), std::uint16_t(0x0000));  // tie → even zero
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), std::uint16_t(0x0001));
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), std::uint16_t(0x0002));  // 1.5 ulp: tie → 2
  EXPECT_EQ(f32_to_f16(std::ldexp(5.0f, -25)), std::uint16_t(0x0002));  // 2.5 ulp: tie → 2
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), std::uint16_t(0x0400));  // rounds up into the normals
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -30)), std::uint16_t(0x0000));

  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc100), -2.5f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT(std::isinf(f16_to_f32(0x7c00)) && f16_to_f32(0x7c00) > 0);
  EXPECT(std::isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0);
  EXPECT(std::isnan(f16_to_f32(0x7e00)) && std::isnan(f16_to_f32(0x7c01)) && std::isnan(f16_to_f32(0xffff)));
  EXPECT(std::signbit(f16_to_f32(0x8000)) && f16_to_f32(0x8000) == 0.0f);
}

NNSCOPE_TEST(f16_exhaustive_round_trip_and_ties) {
  // Every one of the 65,536 patterns decodes to its exact value and encodes back.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (is_nan) {
      EXPECT(std::isnan(f));
      const std::uint16_t back = f32_to_f16(f);
      EXPECT((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
      if (h & 0x200) EXPECT_EQ(back, static_cast<std::uint16_t>(h));  // quiet NaNs keep their payload
      continue;
    }
    if ((h & 0x7c00) != 0x7c00) EXPECT(same_value(f, f16_reference(static_cast<std::uint16_t>(h))));
    EXPECT_EQ(f32_to_f16(f), static_cast<std::uint16_t>(h));
  }
  // Every midpoint between neighbours (and its float neighbours) rounds correctly.
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    const double lo = f16_reference(static_cast<std::uint16_t>(h));
    const double hi = h + 1 == 0x7c00 ? 65536.0 : f16_reference(static_cast<std::uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
    EXPECT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    for (std::uint16_t sign : {std::uint16_t(0), std::uint16_t(0x8000)}) {
      const float m = sign ? -mid : mid;
      const auto even = static_cast<std::uint16_t>((h & 1) ? h + 1 : h);
      EXPECT_EQ(f32_to_f16(m), static_cast<std::uint16_t>(even | sign));
      EXPECT_EQ(f32_to_f16(std::nextafter(m, 0.0f)), static_cast<std::uint16_t>(h | sign));
      EXPECT_EQ(f32_to_f16(std::nextafter(m, sign ? -HUGE_VALF : HUGE_VALF)), static_cast<std::uint16_t>((h + 1) | sign));
    }
  }
  // Random floats against a double-arithmetic reference.
  SplitMix rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const float f = bitsf(static_cast<std::uint32_t>(rng.next()));
    if (std::isnan(f)) continue;
    const double want = round_reference(f, 10, -14, 65520.0);
    EXPECT(same_value(f16_to_f32(f32_to_f16(f)), want));
  }
}

NNSCOPE_TEST(bf16_known_bit_patterns_and_ties) {
  EXPECT_EQ(f32_to_bf16(1.0f), std::uint16_t(0x3f80));
  EXPECT_EQ(f32_to_bf16(-2.5f), std::uint16_t(0xc020));
  EXPECT_EQ(f32_to_bf16(HUGE_VALF), std::uint16_t(0x7f80));
  EXPECT_EQ(f32_to_bf16(-0.0f), std::uint16_t(0x8000));
  const std::uint16_t nan = f32_to_bf16(bitsf(0x7f800001u));  // payload only in the dropped bits
  EXPECT((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0);
  EXPECT_EQ(f32_to_bf16(bitsf(0x3f808000u)), std::uint16_t(0x3f80));  // tie, even below
  EXPECT_EQ(f32_to_bf16(bitsf(0x3f818000u)), std::uint16_t(0x3f82));  // tie, even above
  EXPECT_EQ(f32_to_bf16(bitsf(0x3f808001u)), std::uint16_t(0x3f81));  // just above the tie
  EXPECT_EQ(f32_to_bf16(bitsf(0x3f807fffu)), std::uint16_t(0x3f80));  // just below the tie
  EXPECT_EQ(f32_to_bf16(bitsf(0x7f7fffffu)), std::uint16_t(0x7f80));  // FLT_MAX rounds to inf
  EXPECT_EQ(f32_to_bf16(bitsf(0x7f7f7fffu)), std::uint16_t(0x7f7f));
  EXPECT_EQ(f32_to_bf16(bitsf(0x00010000u)), std::uint16_t(0x0001));  // subnormal, exact
  EXPECT_EQ(f32_to_bf16(bitsf(0x00008000u)), std::uint16_t(0x0000));  // subnormal tie → even zero
  EXPECT_EQ(f32_to_bf16(bitsf(0x00018000u)), std::uint16_t(0x0002));  // subnormal tie → even
  EXPECT_EQ(f32_to_bf16(bitsf(0x007fffffu)), std::uint16_t(0x0080));  // into the smallest normal
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc020), -2.5f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));
  EXPECT(std::isinf(bf16_to_f32(0xff80)) && bf16_to_f32(0xff80) < 0);
  EXPECT(std::isnan(bf16_to_f32(0x7fc0)));
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_f32(static_cast<std::uint16_t>(b));
    EXPECT_EQ(fbits(f), b << 16);
    if (!std::isnan(f) || (b & 0x40)) EXPECT_EQ(f32_to_bf16(f), static_cast<std::uint16_t>(b));
  }
  SplitMix rng(11);
  const double inf_at = std::ldexp(1.0, 128) - std::ldexp(1.0, 127 - 8);  // halfway above the largest bf16
  for (int i = 0; i < 1000000; ++i) {
    const float f = bitsf(static_cast<std::uint32_t>(rng.next()));
    if (std::isnan(f)) continue;
    EXPECT(same_value(bf16_to_f32(f32_to_bf16(f)), round_reference(f, 7, -126, inf_at)));
  }
}

NNSCOPE_TEST(f8_decodes_known_values) {
  EXPECT_EQ(f8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(f8e4m3_to_f32(0xb8), -1.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f8e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
  EXPECT(std::isnan(f8e4m3_to_f32(0x7f)) && std::isnan(f8e4m3_to_f32(0xff)));
  EXPECT_EQ(f8e4m3_to_f32(0x78), 256.0f);  // exponent 15 is finite in E4M3
  EXPECT_EQ(f8e5m2_to_f32(0x3c), 1.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x7b), 57344.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x01), std::ldexp(1.0f, -16));
  EXPECT(std::isinf(f8e5m2_to_f32(0x7c)) && std::isnan(f8e5m2_to_f32(0x7d)));
  EXPECT_EQ(f8e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(f8e8m0_to_f32(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(f8e8m0_to_f32(254), std::ldexp(1.0f, 127));
  EXPECT(std::isnan(f8e8m0_to_f32(255)));
  for (int v = 0; v < 256; ++v) {  // E4M3 agrees with its definition
    const int s = v >> 7, e = (v >> 3) & 15, m = v & 7;
    if (e == 15 && m == 7) continue;
    const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
    EXPECT(same_value(f8e4m3_to_f32(static_cast<std::uint8_t>(v)), s ? -mag : mag));
  }
}

// ================================================================ round trips

NNSCOPE_TEST(round_trip_every_dtype_exactly) {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  SplitMix rng(42);
  struct Src {
    std::string name;
    Dtype dtype;
    std::vector<std::uint64_t> shape;
    std::string bytes;
  };
  std::vector<Src> src;
  for (int d = 0; d < kNumDtypes; ++d) {
    const auto dt = static_cast<Dtype>(d);
    Src s{std::string("t_") + dtype_name(dt), dt, {3, 5}, {}};
    s.bytes.resize(15 * dtype_size(dt));
    for (auto& c : s.bytes) c = static_cast<char>(rng.next());
    if (dt == Dtype::BOOL)
      for (auto& c : s.bytes) c = static_cast<char>(c & 1);
    if (dt == Dtype::I64 || dt == Dtype::U64)  // within ±2^53 so F64 reads are exact
      for (std::size_t i = 0; i < 15; ++i) s.bytes[i * 8 + 7] = s.bytes[i * 8 + 6] = 0;
    src.push_back(std::move(s));
  }
  src.push_back({"scalar", Dtype::F64, {}, bytes_of(std::vector<double>{-0.125})});
  src.push_back({"empty", Dtype::F32, {0, 4}, {}});
  src.push_back({"zero_dim_last", Dtype::I16, {7, 0}, {}});
  src.push_back({"ünïcødé \"name\"\n\\", Dtype::U8, {2}, std::string("\x07\xff", 2)});
  std::vector<TensorWrite> w;
  for (const auto& s : src) w.push_back({s.name, s.dtype, s.shape, s.bytes.data(), std::nullopt});
  const std::map<std::string, std::string> md = {{"format", "pt"}, {"note", "ünï \"q\" \\ \n\t\x01"}, {"", ""}};
  write_safetensors(path, w, md);

  for (bool use_mmap : {true, false}) {
    auto f = SafetensorsFile::open(path, {use_mmap});
    EXPECT_EQ(f.mapped(), use_mmap);
    EXPECT(f.metadata() == md);
    EXPECT_EQ(f.tensors().size(), src.size());
    for (std::size_t i = 1; i < f.tensors().size(); ++i)  // header order = sorted names
      EXPECT(f.tensors()[i - 1].name < f.tensors()[i].name);
    for (const auto& s : src) {
      const TensorInfo& t = f.info(s.name);
      EXPECT_EQ(t.dtype, s.dtype);
      EXPECT(t.shape == s.shape);
      EXPECT_EQ(t.nbytes(), std::uint64_t(s.bytes.size()));
      std::string raw(s.bytes.size(), '\0');
      f.read(s.name, raw.data(), raw.size(), s.dtype);
      EXPECT(raw == s.bytes);
      if (use_mmap) {
        const TensorView v = f.view(s.name, s.dtype);
        EXPECT_EQ(v.nbytes, s.bytes.size());
        EXPECT(v.aligned);
        EXPECT(std::memcmp(v.data, s.bytes.data(), v.nbytes) == 0);
      }
      // Float64 decoding agrees with an independent per-element decoding.
      std::vector<double> got(static_cast<std::size_t>(t.numel));
      f.read(s.name, got.data(), got.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        const char* p = s.bytes.data() + i * dtype_size(s.dtype);
        double want = 0;
        auto ld = [&](auto z) {
          std::memcpy(&z, p, sizeof z);
          return z;
        };
        switch (s.dtype) {
          case Dtype::BOOL:
          case Dtype::U8: want = ld(std::uint8_t()); break;
          case Dtype::I8: want = ld(std::int8_t()); break;
          case Dtype::F8_E4M3: want = f8e4m3_to_f32(ld(std::uint8_t())); break;
          case Dtype::F8_E5M2: want = f8e5m2_to_f32(ld(std::uint8_t())); break;
          case Dtype::F8_E8M0: want = f8e8m0_to_f32(ld(std::uint8_t())); break;
          case Dtype::I16: want = ld(std::int16_t()); break;
          case Dtype::U16: want = ld(std::uint16_t()); break;
          case Dtype::F16: want = f16_to_f32(ld(std::uint16_t())); break;
          case Dtype::BF16: want = bf16_to_f32(ld(std::uint16_t())); break;
          case Dtype::I32: want = ld(std::int32_t()); break;
          case Dtype::U32: want = ld(std::uint32_t()); break;
          case Dtype::F32: want = ld(float()); break;
          case Dtype::I64: want = static_cast<double>(ld(std::int64_t())); break;
          case Dtype::U64: want = static_cast<double>(ld(std::uint64_t())); break;
          case Dtype::F64: want = ld(double()); break;
        }
        EXPECT(same_value(got[i], want));
      }
      // Float32 decoding of the dtypes that fit float32 exactly.
      if (dtype_size(s.dtype) <= 2 && t.numel > 0) {
        std::vector<float> g32(static_cast<std::size_t>(t.numel));
        f.read(s.name, g32.data(), g32.size());
        for (std::size_t i = 0; i < g32.size(); ++i) EXPECT(same_value(g32[i], got[i]));
      }
    }
  }
}

NNSCOPE_TEST(writer_layout_is_canonical) {
  TempDir dir;
  // One tensor, no metadata: the exact bytes.
  {
    const std::string path = dir.file("one.safetensors");
    const std::vector<float> w = {1.5f, -2.0f};
    write_safetensors(path, {{"w", Dtype::F32, {2}, w.data(), std::nullopt}});
    const std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
    EXPECT(get_file(path) == st_file(padded, bytes_of(w)));
  }
  // Mixed dtypes given in no particular order.
  const std::string path = dir.file("mixed.safetensors");
  const std::vector<std::uint16_t> h3 = {1, 2, 3};
  const std::vector<float> f5 = {1, 2, 3, 4, 5};
  const std::vector<std::uint8_t> u7 = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<double> d1 = {3.25};
  const std::vector<std::int32_t> i2 = {-1, 7};
  write_safetensors(path,
                    {{"zeta.h", Dtype::F16, {3}, h3.data(), std::nullopt},
                     {"alpha.f", Dtype::F32, {5}, f5.data(), std::nullopt},
                     {"mid.u", Dtype::U8, {7}, u7.data(), std::nullopt},
                     {"beta.d", Dtype::F64, {}, d1.data(), std::nullopt},
                     {"Alpha.i", Dtype::I32, {1, 2}, i2.data(), std::nullopt}},
                    {{"k2", "v2"}, {"k1", "v1"}});
  const std::string bytes = get_file(path);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, std::uint64_t(0));
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"k1\":\"v1\",\"k2\":\"v2\"},", 0), std::size_t(0));
  const std::size_t close = header.rfind('}');
  EXPECT(header.find_first_not_of(' ', close + 1) == std::string::npos);  // padded with spaces only
  auto f = SafetensorsFile::open(path);
  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  EXPECT((names == std::vector<std::string>{"Alpha.i", "alpha.f", "beta.d", "mid.u", "zeta.h"}));
  // Data order: element size descending, then name; contiguous from 0.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : f.tensors()) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto a, auto b) { return a->begin < b->begin; });
  std::vector<std::string> data_order;
  std::uint64_t cursor = 0;
  for (auto t : by_offset) {
    data_order.push_back(t->name);
    EXPECT_EQ(t->begin, cursor);
    cursor = t->end;
    EXPECT_EQ((f.data_start() + t->begin) % dtype_size(t->dtype), std::uint64_t(0));
    EXPECT(f.view(t->name, t->dtype).aligned);
  }
  EXPECT((data_order == std::vector<std::string>{"beta.d", "Alpha.i", "alpha.f", "zeta.h", "mid.u"}));
  EXPECT_EQ(f.file_size(), 8 + n + cursor);
  EXPECT_EQ(f.file_size(), std::uint64_t(bytes.size()));
}

NNSCOPE_TEST(foreign_header_layouts_read_back_exactly) {
  TempDir dir;
  // Data laid out by hand: bf16 [2] | f64 [1] (unaligned: offset 4) | f16 [3] | i64 [2] | f32 [1].
  std::string data;
  auto put16 = [&](std::uint16_t v) { data += std::string(reinterpret_cast<const char*>(&v), 2); };
  put16(0x3f80);  // bf16 1.0
  put16(0xc020);  // bf16 -2.5
  const double d = -1.0 / 3.0;
  data += std::string(reinterpret_cast<const char*>(&d), 8);
  put16(0x7bff);  // f16 65504
  put16(0x0001);  // f16 2^-24
  put16(0xfc00);  // f16 -inf
  const std::int64_t big[2] = {-(std::int64_t(1) << 53), 123456789};
  data += std::string(reinterpret_cast<const char*>(big), 16);
  const float pi = 3.14159274f;
  data += std::string(reinterpret_cast<const char*>(&pi), 4);
  EXPECT_EQ(data.size(), std::size_t(4 + 8 + 6 + 16 + 4));

  const std::string tensors_a =
      "\n\t\"x\\u00e9\" :\t{ \"data_offsets\" : [ 34 , 38 ], \"shape\":[1,1] ,\"dtype\":\"F32\"},\r\n"
      "  \"b\\/f\": {\"shape\": [2], \"dtype\": \"BF16\", \"extra\": {\"nested\": [1, {\"x\": null}, \"s\", true, -2.5e3]},"
      " \"data_offsets\": [0, 4]},\n"
      "  \"\\ud83d\\ude00\": {\"dtype\":\"F16\",\"data_offsets\":[12,18],\"shape\":[3]},\n"
      "  \"ints\" : {\"dtype\" : \"I64\", \"shape\" : [2], \"data_offsets\" : [18, 34]},\n"
      "  \"d\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [4, 12]}\n";
  const std::string md = "\"__metadata__\" : { \"format\" : \"pt\", \"uni\": \"\\u00fc\\n\" }";
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"metadata_last", "{" + tensors_a + "," + md + "}   "},
      {"metadata_first", "{ " + md + "," + tensors_a + "}\n"},
      {"metadata_absent", "{" + tensors_a + "}"},
      {"metadata_null", "{\"__metadata__\":null," + tensors_a + "}   \t"},
  };
  for (const auto& [label, header] : variants) {
    const std::string path = dir.file(label + ".safetensors");
    put_file(path, st_file(header, data));
    for (bool use_mmap : {true, false}) {
      auto f = SafetensorsFile::open(path, {use_mmap});
      const bool has_md = label == "metadata_last" || label == "metadata_first";
      if (has_md)
        EXPECT((f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"uni", "\xc3\xbc\n"}}));
      else
        EXPECT(f.metadata().empty());
      std::vector<std::string> names;
      for (const auto& t : f.tensors()) names.push_back(t.name);
      EXPECT((names == std::vector<std::string>{"x\xc3\xa9", "b/f", "\xf0\x9f\x98\x80", "ints", "d"}));
      std::vector<float> bf(2), h(3), x(1);
      std::vector<double> dd(1), ii(2);
      f.read("b/f", bf.data(), 2);
      f.read("\xf0\x9f\x98\x80", h.data(), 3);
      f.read("x\xc3\xa9", x.data(), 1);
      f.read("d", dd.data(), 1);
      f.read("ints", ii.data(), 2);
      EXPECT_EQ(bf[0], 1.0f);
      EXPECT_EQ(bf[1], -2.5f);
      EXPECT_EQ(h[0], 65504.0f);
      EXPECT_EQ(h[1], std::ldexp(1.0f, -24));
      EXPECT(std::isinf(h[2]) && h[2] < 0);
      EXPECT_EQ(x[0], pi);
      EXPECT_EQ(dd[0], d);
      EXPECT_EQ(ii[0], -9007199254740992.0);
      EXPECT_EQ(ii[1], 123456789.0);
      EXPECT((f.info("x\xc3\xa9").shape == std::vector<std::uint64_t>{1, 1}));
      EXPECT(f.info("d").shape.empty() && f.info("d").numel == 1);
      if (use_mmap) {
        // The header length is not a multiple of 8: views may be unaligned, and say so.
        const TensorView v = f.view("d", Dtype::F64);
        EXPECT_EQ(v.aligned, reinterpret_cast<std::uintptr_t>(v.data) % 8 == 0);
        double dv;
        std::memcpy(&dv, v.data, 8);
        EXPECT_EQ(dv, d);
      }
    }
  }
  EXPECT(variants[0].second.size() % 8 != 0 || variants[1].second.size() % 8 != 0);
}

// ================================================================ malformed files

NNSCOPE_TEST(malformed_files_are_format_errors) {
  TempDir dir;
  const std::string d8 = valid_data();
  const std::string f32x2 = "\"dtype\":\"F32\",\"shape\":[2]";
  auto one = [](const std::string& entry) { return "{\"a\":{" + entry + "}}"; };
  struct Case {
    std::string label, bytes, part;
  };
  std::string bomb = "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8],\"x\":" + std::string(100000, '[') +
                     std::string(100000, ']') + "}}";
  std::string entry_bomb = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string md_bomb = "{\"__metadata__\":{\"k\":" + std::string(5000, '{') + "}}";
  const std::vector<Case> cases = {
      {"empty file", "", "shorter than the 8-byte"},
      {"7 bytes", std::string(7, '\0'), "shorter than the 8-byte"},
      {"length only", le64(0), "must begin with '{'"},
      {"truncated header", st_file(kValidHeader, d8).substr(0, 30), "runs past the end of the file"},
      {"header length past EOF", le64(kValidHeader.size() + 9) + kValidHeader + d8, "runs past the end of the file"},
      {"header length 2^64-1", le64(~std::uint64_t(0)) + kValidHeader + d8, "exceeds the limit"},
      {"header length 200 MB", le64(200000000) + kValidHeader + d8, "exceeds the limit"},
      {"truncated data", st_file(kValidHeader, d8.substr(0, 5)), "run past the end of the data buffer"},
      {"not JSON", st_file("hello, world", ""), "must begin with '{'"},
      {"JSON array", st_file("[{\"a\":1}]", ""), "must begin with '{'"},
      {"leading space", st_file(" " + kValidHeader, d8), "must begin with '{'"},
      {"invalid UTF-8 name", st_file("{\"a\xff\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8), "not valid UTF-8"},
      {"overlong UTF-8", st_file("{\"a\xc0\xaf\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8), "not valid UTF-8"},
      {"dtype F33", st_file(one("\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]"), d8), "unknown dtype 'F33'"},
      {"dtype lowercase", st_file(one("\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]"), d8), "unknown dtype"},
      {"dtype number", st_file(one("\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), d8), "must be a string"},
      {"shape negative", st_file(one("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), d8), "non-negative"},
      {"shape fraction", st_file(one("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), d8), "must be an integer"},
      {"shape exponent", st_file(one("\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]"), d8), "must be an integer"},
      {"shape string", st_file(one("\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]"), d8), "must be an array"},
      {"shape element string", st_file(one("\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]"), d8),
       "non-negative integer, found a string"},
      {"shape null", st_file(one("\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,8]"), d8), "must be an array"},
      {"shape nested", st_file(one("\"dtype\":\"F32\",\"shape\":[[2]],\"data_offsets\":[0,8]"), d8), "found an array"},
      {"shape dim 2^53",
       st_file(one("\"dtype\":\"F32\",\"shape\":[9007199254740992],\"data_offsets\":[0,8]"), d8), "too large"},
      {"shape product overflow",
       st_file(one("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,8]"), d8),
       "overflows 64 bits"},
      {"shape byte size overflow",
       st_file(one("\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,8]"), d8),
       "overflows 64 bits"},
      {"shape/offsets mismatch", st_file(one("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), d8),
       "needs 12 bytes"},
      {"begin > end", st_file(one(f32x2 + ",\"data_offsets\":[8,0]"), d8), "begin > end"},
      {"offsets past the data", st_file(one("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]"), d8),
       "run past the end of the data buffer"},
      {"offset 2^64", st_file(one(f32x2 + ",\"data_offsets\":[0,18446744073709551616]"), d8), "too large"},
      {"offset negative", st_file(one(f32x2 + ",\"data_offsets\":[-8,0]"), d8), "non-negative"},
      {"offsets 3 entries", st_file(one(f32x2 + ",\"data_offsets\":[0,8,8]"), d8), "exactly 2"},
      {"offsets 1 entry", st_file(one(f32x2 + ",\"data_offsets\":[8]"), d8), "exactly 2"},
      {"offsets object", st_file(one(f32x2 + ",\"data_offsets\":{\"0\":8}"), d8), "must be an array"},
      {"overlapping tensors",
       st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[4,12]}}",
               d8 + std::string(4, '\0')),
       "overlaps"},
      {"identical ranges",
       st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8),
       "overlaps"},
      {"empty tensor inside another",
       st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[0],"
               "\"data_offsets\":[4,4]}}", d8),
       "overlaps"},
      {"hole", st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[4,12]}}", d8 + std::string(4, '\0')), "hole"},
      {"trailing data", st_file(kValidHeader, d8 + "junk"), "trailing data"},
      {"missing dtype", st_file(one("\"shape\":[2],\"data_offsets\":[0,8]"), d8), "no \"dtype\""},
      {"missing shape", st_file(one("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), d8), "no \"shape\""},
      {"missing offsets", st_file(one(f32x2), d8), "no \"data_offsets\""},
      {"duplicate tensor name",
       st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8),
       "duplicate tensor name"},
      {"duplicate name via escape",
       st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"\\u0061\":{" + f32x2 + ",\"data_offsets\":[0,8]}}",
               d8),
       "duplicate tensor name"},
      {"duplicate dtype key", st_file(one("\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), d8),
       "duplicate key \"dtype\""},
      {"duplicate key inside an unknown field",
       st_file(one(f32x2 + ",\"x\":{\"y\":[{\"k\":1,\"k\":2}]},\"data_offsets\":[0,8]"), d8), "duplicate key \"k\""},
      {"duplicate unknown key", st_file(one(f32x2 + ",\"x\":1,\"data_offsets\":[0,8],\"x\":2"), d8), "duplicate key 'x'"},
      {"duplicate metadata key", st_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\":{" + f32x2 +
                                             ",\"data_offsets\":[0,8]}}", d8),
       "duplicate metadata key"},
      {"duplicate __metadata__", st_file("{\"__metadata__\":{},\"__metadata__\":{}}", ""), "duplicate key \"__metadata__\""},
      {"metadata number value", st_file("{\"__metadata__\":{\"k\":1}}", ""), "must be a string, found a number"},
      {"metadata null value", st_file("{\"__metadata__\":{\"k\":null}}", ""), "must be a string, found null"},
      {"metadata array", st_file("{\"__metadata__\":[\"k\"]}", ""), "must be an object"},
      {"metadata depth bomb", st_file(md_bomb, ""), "must be a string, found an object"},
      {"empty name", st_file("{\"\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8), "empty tensor name"},
      {"entry is a string", st_file("{\"a\":\"F32\"}", ""), "must be an object"},
      {"entry depth bomb", st_file(entry_bomb, ""), "must be an object, found an array"},
      {"nested depth bomb", st_file(bomb, d8), "nesting deeper than 64"},
      {"trailing garbage", st_file(kValidHeader + "x", d8), "after the end of the JSON value"},
      {"two objects", st_file(kValidHeader + "{}", d8), "after the end of the JSON value"},
      {"NUL padding", st_file(kValidHeader + std::string(3, '\0'), d8), "after the end of the JSON value"},
      {"trailing comma", st_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},}", d8), "trailing comma"},
      {"unterminated JSON", st_file("{\"a\":{\"dtype\":\"F32\"", ""), "unexpected end"},
      {"unterminated string", st_file("{\"a\":{\"dtype\":\"F32", ""), "unterminated string"},
      {"lone surrogate", st_file("{\"\\ud800\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8), "surrogate"},
      {"raw control char", st_file("{\"a\x01\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", d8), "control character"},
      {"single quotes", st_file("{'a':{}}", ""), "expected a string key"},
      {"unsupported F4", st_file(one("\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]"), "\x11"),
       "unknown dtype 'F4'"},
  };
  EXPECT(cases.size() >= 12);
  for (const auto& c : cases) {
    const std::string path = dir.file("bad.safetensors");
    put_file(path, c.bytes);
    for (bool use_mmap : {true, false})
      expect_error(c.label, ErrorCode::Format, c.part, [&] { SafetensorsFile::open(path, {use_mmap}); });
  }
  // The same rules accept the edge cases next to them.
  const std::vector<std::pair<std::string, std::string>> fine = {
      {"empty object", st_file("{}", "")},
      {"padded", st_file(kValidHeader + "     ", d8)},
      {"zero-size tensors anywhere",
       st_file("{\"z0\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{" + f32x2 +
                   ",\"data_offsets\":[0,8]},\"z8\":{\"dtype\":\"I64\",\"shape\":[3,0,9007199254740991],"
                   "\"data_offsets\":[8,8]}}",
               d8)},
  };
  for (const auto& [label, bytes] : fine) {
    const std::string path = dir.file("fine.safetensors");
    put_file(path, bytes);
    auto f = SafetensorsFile::open(path);
    EXPECT(f.tensors().size() <= 3);
  }
}

NNSCOPE_TEST(corruption_sweeps_never_crash) {
  TempDir dir;
  const std::string path = dir.file("base.safetensors");
  const std::vector<float> a = {1, 2, 3};
  const std::vector<std::uint16_t> h = {0x3c00, 0x4000};
  const std::vector<std::int64_t> n = {5, -6};
  write_safetensors(path,
                    {{"a", Dtype::F32, {3}, a.data(), std::nullopt},
                     {"h", Dtype::F16, {2, 1}, h.data(), std::nullopt},
                     {"n", Dtype::I64, {2}, n.data(), std::nullopt}},
                    {{"k", "v"}});
  const std::string base = get_file(path);
  const std::string mutated = dir.file("mutated.safetensors");
  // Opens and reads everything; the only acceptable failure is a format error
  // (or a dtype error from a conversion of garbage that opened fine).
  std::size_t opened = 0, rejected = 0;
  auto probe = [&](const std::string& bytes) {
    put_file(mutated, bytes);
    for (bool use_mmap : {true, false}) {
      try {
        auto f = SafetensorsFile::open(mutated, {use_mmap});
        ++opened;
        for (const auto& t : f.tensors()) {
          std::vector<double> out(static_cast<std::size_t>(t.numel));
          try {
            f.read(t.name, out.data(), out.size());
          } catch (const Error& e) {
            if (e.code() != ErrorCode::Dtype && e.code() != ErrorCode::Format) throw;
          }
        }
      } catch (const Error& e) {
        if (e.code() != ErrorCode::Format)
          throw Failure(std::string("unexpected ") + code_name(e.code()) + ": " + e.what());
        ++rejected;
      }
    }
  };
  // Every truncation is an error: the data must end exactly at the end of the file.
  for (std::size_t len = 0; len < base.size(); ++len) {
    put_file(mutated, base.substr(0, len));
    expect_error("truncated to " + std::to_string(len), ErrorCode::Format, "",
                 [&] { SafetensorsFile::open(mutated); });
  }
  // Every byte of the length prefix and the header, replaced by interesting bytes.
  std::uint64_t hn = 0;
  for (int i = 7; i >= 0; --i) hn = (hn << 8) | static_cast<unsigned char>(base[i]);
  const char repl[] = {'\0', '\xff', '"', '{', '}', '[', ']', ',', ':', '1', '-', ' ', '\\', 'e', '\x80'};
  for (std::size_t pos = 0; pos < 8 + hn; ++pos)
    for (char c : repl) {
      if (base[pos] == c) continue;
      std::string b = base;
      b[pos] = c;
      probe(b);
    }
  // Random multi-byte corruption, insertions and deletions (fixed seed).
  SplitMix rng(2024);
  for (int it = 0; it < 3000; ++it) {
    std::string b = base;
    const int edits = 1 + static_cast<int>(rng.next() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const std::size_t pos = rng.next() % b.size();
      switch (rng.next() % 3) {
        case 0: b[pos] = static_cast<char>(rng.next()); break;
        case 1: b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<char>(rng.next())); break;
        default: b.erase(pos, 1); break;
      }
    }
    probe(b);
  }
  EXPECT(rejected > 0);
  EXPECT(opened > 0);  // e.g. a metadata byte changed: still a valid file
}

// ================================================================ reading

NNSCOPE_TEST(big_file_mmap_and_streaming_agree) {
  TempDir dir;
  const std::string path = dir.file("big.safetensors");
  const std::size_t n = std::size_t(16) << 20;  // 16 Mi floats = 64 MiB
  std::vector<float> big(n);
  for (std::size_t i = 0; i < n; ++i) big[i] = static_cast<float>(i % 10007) * 0.25f - static_cast<float>(i % 13);
  std::vector<float> halfsrc(1 << 20);
  for (std::size_t i = 0; i < halfsrc.size(); ++i) halfsrc[i] = std::sin(static_cast<float>(i)) * 1000.0f;
  write_safetensors(path,
                    {{"big", Dtype::F32, {4096, 4096}, big.data(), std::nullopt},
                     {"half", Dtype::F16, {1024, 1024}, halfsrc.data(), Dtype::F32},
                     {"bhalf", Dtype::BF16, {1 << 20}, halfsrc.data(), Dtype::F32}});
  auto mapped = SafetensorsFile::open(path);
  auto streamed = SafetensorsFile::open(path, {false});
  EXPECT(mapped.mapped());
  EXPECT(!streamed.mapped());
  EXPECT(mapped.file_size() > (std::uint64_t(64) << 20));
  {
    std::vector<float> a(n), b(n);
    double last_done = 0, last_total = 0;
    int reports = 0;
    OpContext ctx;
    ctx.progress = [&](double done, double total) {
      ++reports;
      EXPECT(done > last_done);
      last_done = done;
      last_total = total;
    };
    mapped.read("big", a.data(), n, {}, ctx);
    EXPECT(reports >= 16);  // 4 MiB chunks
    EXPECT_EQ(last_done, static_cast<double>(n));
    EXPECT_EQ(last_total, static_cast<double>(n));
    streamed.read("big", b.data(), n);
    EXPECT(std::memcmp(a.data(), big.data(), n * 4) == 0);
    EXPECT(std::memcmp(b.data(), big.data(), n * 4) == 0);
    const TensorView v = mapped.view("big", Dtype::F32);
    EXPECT(v.aligned && v.nbytes == n * 4);
    EXPECT(std::memcmp(v.data, big.data(), n * 4) == 0);
  }
  {
    std::vector<double> a(n), b(n);
    mapped.read("big", a.data(), n);
    streamed.read("big", b.data(), n);
    EXPECT(a == b);
    for (std::size_t i = 0; i < n; i += 4099) EXPECT_EQ(a[i], static_cast<double>(big[i]));
  }
  for (const char* name : {"half", "bhalf"}) {
    std::vector<float> a(halfsrc.size()), b(halfsrc.size());
    mapped.read(name, a.data(), a.size());
    streamed.read(name, b.data(), b.size());
    EXPECT(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const float want = name[0] == 'h' ? f16_to_f32(f32_to_f16(halfsrc[i])) : bf16_to_f32(f32_to_bf16(halfsrc[i]));
      EXPECT_EQ(a[i], want);
    }
  }
  // Cancellation is honoured between chunks, on both paths.
  OpContext cancelled;
  cancelled.cancel = std::make_shared<CancelToken>();
  cancelled.cancel->cancel();
  std::vector<float> sink(n);
  EXPECT_THROWS_CODE(mapped.read("big", sink.data(), n, {}, cancelled), ErrorCode::Cancelled);
  EXPECT_THROWS_CODE(streamed.read("big", sink.data(), n, {}, cancelled), ErrorCode::Cancelled);
}

NNSCOPE_TEST(lossy_conversions_fail_unless_rounding_is_allowed) {
  TempDir dir;
  const std::string path = dir.file("lossy.safetensors");
  const std::int64_t two53 = std::int64_t(1) << 53;
  const std::vector<std::int64_t> i64 = {3, two53, -two53, std::numeric_limits<std::int64_t>::min(), two53 + 1,
                                         std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint64_t> u64 = {std::numeric_limits<std::uint64_t>::max()};
  const std::vector<std::int32_t> i32 = {16777216, 16777217};
  const std::vector<double> f64 = {0.1, std::numeric_limits<double>::quiet_NaN(), -HUGE_VAL, 1e300};
  const std::vector<std::uint8_t> boolbad = {0, 1, 2};
  write_safetensors(path, {{"i64", Dtype::I64, {6}, i64.data(), std::nullopt},
                           {"i64ok", Dtype::I64, {4}, i64.data(), std::nullopt},
                           {"u64", Dtype::U64, {1}, u64.data(), std::nullopt},
                           {"i32", Dtype::I32, {2}, i32.data(), std::nullopt},
                           {"f64", Dtype::F64, {4}, f64.data(), std::nullopt},
                           {"f64ok", Dtype::F64, {3}, f64.data(), std::nullopt},
                           {"bool", Dtype::BOOL, {2}, boolbad.data(), std::nullopt}});
  auto f = SafetensorsFile::open(path);
  std::vector<double> d6(6), d4(4), d1(1), d2(2);
  std::vector<float> f2(2), f4(4), f3(3);
  // Integers: exact when representable (±2^53, -2^63 are), else a dtype error naming the element.
  f.read("i64ok", d4.data(), 4);
  EXPECT((d4 == std::vector<double>{3.0, 9007199254740992.0, -9007199254740992.0, -9223372036854775808.0}));
  expect_error("i64 → f64", ErrorCode::Dtype, "element 4", [&] { f.read("i64", d6.data(), 6); });
  f.read("i64", d6.data(), 6, ConvertOptions{true});
  EXPECT_EQ(d6[4], 9007199254740992.0);  // 2^53 + 1 rounds to even
  EXPECT_EQ(d6[5], 9223372036854775808.0);
  expect_error("u64 → f64", ErrorCode::Dtype, "not exactly representable", [&] { f.read("u64", d1.data(), 1); });
  f.read("i32", d2.data(), 2);  // exact in double
  EXPECT_EQ(d2[1], 16777217.0);
  expect_error("i32 → f32", ErrorCode::Dtype, "element 1", [&] { f.read("i32", f2.data(), 2); });
  f.read("i32", f2.data(), 2, ConvertOptions{true});
  EXPECT_EQ(f2[1], 16777216.0f);
  // F64 → F32 rounds; overflow of a finite value is an error unless rounding is allowed.
  f.read("f64ok", f3.data(), 3);
  EXPECT_EQ(f3[0], 0.1f);
  EXPECT(std::isnan(f3[1]));
  EXPECT(std::isinf(f3[2]) && f3[2] < 0);
  expect_error("f64 → f32 overflow", ErrorCode::Dtype, "finite range", [&] { f.read("f64", f4.data(), 4); });
  f.read("f64", f4.data(), 4, ConvertOptions{true});
  EXPECT(std::isinf(f4[3]) && f4[3] > 0);
  (void)boolbad;
}

NNSCOPE_TEST(read_and_view_argument_errors) {
  TempDir dir;
  const std::string path = dir.file("args.safetensors");
  const std::vector<float> a = {1, 2, 3, 4};
  write_safetensors(path, {{"a", Dtype::F32, {2, 2}, a.data(), std::nullopt}});
  // A BOOL tensor whose bytes are not 0/1, written by hand (the writer refuses it).
  const std::string bpath = dir.file("bool.safetensors");
  put_file(bpath, st_file("{\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", std::string("\0\1\2", 3)));
  auto f = SafetensorsFile::open(path);
  auto s = SafetensorsFile::open(path, {false});
  std::vector<float> out(4);
  std::vector<std::int32_t> i(4);
  EXPECT_THROWS_CODE(f.read("missing", out.data(), 4), ErrorCode::InvalidArgument);
  EXPECT(f.find("missing") == nullptr && f.find("a") != nullptr);
  EXPECT_THROWS_CODE(f.read("a", out.data(), 3), ErrorCode::Shape);
  EXPECT_THROWS_CODE(f.read("a", out.data(), 15, Dtype::F32), ErrorCode::Shape);
  EXPECT_THROWS_CODE(f.read("a", i.data(), 16, Dtype::I32), ErrorCode::Dtype);
  EXPECT_THROWS_CODE(f.read("a", nullptr, 16, Dtype::F32), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(f.view("a", Dtype::F16), ErrorCode::Dtype);
  EXPECT_THROWS_CODE(s.view("a", Dtype::F32), ErrorCode::InvalidArgument);
  EXPECT_EQ(s.unmapped_reason(), std::string("mmap disabled"));
  // Moving the file keeps views valid (the mapping moves with it).
  const TensorView v = f.view("a", Dtype::F32);
  SafetensorsFile moved = std::move(f);
  EXPECT(std::memcmp(v.data, a.data(), 16) == 0);
  EXPECT_EQ(moved.view("a", Dtype::F32).data, v.data);
  for (bool use_mmap : {true, false}) {
    auto b = SafetensorsFile::open(bpath, {use_mmap});
    std::vector<std::uint8_t> raw(3);
    std::vector<float> fb(3);
    expect_error("bool raw", ErrorCode::Format, "element 2 of a BOOL", [&] { b.read("b", raw.data(), 3, Dtype::BOOL); });
    expect_error("bool f32", ErrorCode::Format, "element 2 of a BOOL", [&] { b.read("b", fb.data(), 3); });
  }
}

NNSCOPE_TEST(missing_or_unreadable_files_are_io_errors) {
  TempDir dir;
  expect_error("missing", ErrorCode::Io, "No such file", [&] { SafetensorsFile::open(dir.file("nope.safetensors")); });
  expect_error("directory", ErrorCode::Io, "directory", [&] { SafetensorsFile::open(dir.path); });
  // A FIFO is refused at once (opening it must not wait for a writer).
  if (::mkfifo(dir.file("fifo").c_str(), 0600) == 0) {
    expect_error("fifo", ErrorCode::Io, "not a regular file", [&] { SafetensorsFile::open(dir.file("fifo")); });
    std::filesystem::remove(dir.file("fifo"));
  }
  const std::vector<float> a = {1};
  expect_error("write into a missing directory", ErrorCode::Io, "",
               [&] { write_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", Dtype::F32, {1}, a.data(), {}}}); });
  expect_error("write onto a directory", ErrorCode::Io, "", [&] {
    std::filesystem::create_directory(dir.file("sub"));
    write_safetensors(dir.file("sub"), {{"a", Dtype::F32, {1}, a.data(), {}}});
  });
  EXPECT((dir.entries() == std::vector<std::string>{"sub"}));  // no temporary file left behind
  if (::geteuid() != 0) {  // root reads anything
    const std::string p = dir.file("locked.safetensors");
    write_safetensors(p, {{"a", Dtype::F32, {1}, a.data(), {}}});
    std::filesystem::permissions(p, std::filesystem::perms::none);
    expect_error("permission", ErrorCode::Io, "Permission denied", [&] { SafetensorsFile::open(p); });
  }
}

// ================================================================ writing

NNSCOPE_TEST(writer_converts_with_round_to_nearest_even) {
  TempDir dir;
  const std::string path = dir.file("conv.safetensors");
  const std::vector<float> src = {1.0f,  -2.5f, 65504.0f, std::ldexp(1.0f, -24), HUGE_VALF, 65520.0f,
                                  1.0f + std::ldexp(1.0f, -11), bitsf(0x3f818000u)};
  const std::vector<double> d = {0.1, -1e-50};
  write_safetensors(path, {{"h", Dtype::F16, {8}, src.data(), Dtype::F32},
                           {"b", Dtype::BF16, {8}, src.data(), Dtype::F32},
                           {"f", Dtype::F32, {2}, d.data(), Dtype::F64}});
  auto f = SafetensorsFile::open(path);
  std::vector<std::uint16_t> h(8), b(8);
  f.read("h", h.data(), 16, Dtype::F16);
  f.read("b", b.data(), 16, Dtype::BF16);
  EXPECT((h == std::vector<std::uint16_t>{0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x7c00, 0x3c00, 0x3c0c}));
  EXPECT((b == std::vector<std::uint16_t>{0x3f80, 0xc020, 0x4780, 0x3380, 0x7f80, 0x4780, 0x3f80, 0x3f82}));
  std::vector<float> fv(2);
  f.read("f", fv.data(), 2);
  EXPECT_EQ(fv[0], 0.1f);
  EXPECT(fv[1] == 0.0f && std::signbit(fv[1]));
  const std::vector<std::int32_t> ints = {1};
  expect_error("i32 → f16", ErrorCode::Dtype, "cannot store I32 data as F16",
               [&] { write_safetensors(path, {{"x", Dtype::F16, {1}, ints.data(), Dtype::I32}}); });
  const std::vector<double> huge = {1e300};
  expect_error("lossy f64 → f32", ErrorCode::Dtype, "tensor 'x'",
               [&] { write_safetensors(path, {{"x", Dtype::F32, {1}, huge.data(), Dtype::F64}}); });
}

NNSCOPE_TEST(writer_rejects_bad_input_and_leaves_target_untouched) {
  TempDir dir;
  const std::string path = dir.file("keep.safetensors");
  const std::vector<float> a = {1, 2};
  write_safetensors(path, {{"a", Dtype::F32, {2}, a.data(), {}}});
  const std::string before = get_file(path);
  const std::vector<std::uint8_t> bad_bool = {0, 3};
  struct Bad {
    std::string label;
    ErrorCode code;
    std::vector<TensorWrite> tensors;
    std::map<std::string, std::string> md;
  };
  const std::vector<Bad> bad = {
      {"empty name", ErrorCode::InvalidArgument, {{"", Dtype::F32, {2}, a.data(), {}}}, {}},
      {"duplicate", ErrorCode::InvalidArgument,
       {{"a", Dtype::F32, {2}, a.data(), {}}, {"a", Dtype::F32, {1}, a.data(), {}}}, {}},
      {"__metadata__ name", ErrorCode::InvalidArgument, {{"__metadata__", Dtype::F32, {2}, a.data(), {}}}, {}},
      {"invalid UTF-8 name", ErrorCode::InvalidArgument, {{"a\xff", Dtype::F32, {2}, a.data(), {}}}, {}},
      {"invalid UTF-8 metadata", ErrorCode::InvalidArgument, {}, {{"k", "\xc0\xaf"}}},
      {"null data", ErrorCode::InvalidArgument, {{"a", Dtype::F32, {2}, nullptr, {}}}, {}},
      {"dimension above 2^53", ErrorCode::TooLarge, {{"a", Dtype::F32, {std::uint64_t(1) << 53, 0}, nullptr, {}}}, {}},
      {"element count overflow", ErrorCode::TooLarge,
       {{"a", Dtype::F32, {std::uint64_t(1) << 40, std::uint64_t(1) << 40}, a.data(), {}}}, {}},
      {"BOOL byte 3", ErrorCode::InvalidArgument, {{"b", Dtype::BOOL, {2}, bad_bool.data(), {}}}, {}},
  };
  for (const auto& c : bad) {
    expect_error(c.label, c.code, "", [&] { write_safetensors(path, c.tensors, c.md); });
    EXPECT(get_file(path) == before);
    EXPECT((dir.entries() == std::vector<std::string>{"keep.safetensors"}));
  }
  // Cancelled half way through the data: the old file stays, the temporary goes.
  std::vector<float> big(std::size_t(4) << 20, 1.5f);  // 16 MiB: several 4 MiB chunks
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  int reports = 0;
  ctx.progress = [&](double, double) {
    if (++reports == 2) ctx.cancel->cancel();
  };
  EXPECT_THROWS_CODE(write_safetensors(path, {{"big", Dtype::F32, {big.size()}, big.data(), {}}}, {}, ctx),
                     ErrorCode::Cancelled);
  EXPECT_EQ(reports, 2);
  EXPECT(get_file(path) == before);
  EXPECT((dir.entries() == std::vector<std::string>{"keep.safetensors"}));
  // Zero tensors and no metadata is a valid (empty) file.
  write_safetensors(dir.file("empty.safetensors"), {});
  EXPECT(get_file(dir.file("empty.safetensors")) == le64(8) + "{}      ");
  EXPECT(SafetensorsFile::open(dir.file("empty.safetensors")).tensors().empty());
}

NNSCOPE_TEST(overwrite_is_atomic_for_open_readers) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const std::vector<float> v1 = {1, 2, 3}, v2 = {7, 8};
  write_safetensors(path, {{"w", Dtype::F32, {3}, v1.data(), {}}});
  auto old_mapped = SafetensorsFile::open(path);
  auto old_streamed = SafetensorsFile::open(path, {false});
  write_safetensors(path, {{"w", Dtype::F32, {2}, v2.data(), {}}}, {{"version", "2"}});
  // Readers that opened the old file keep reading the old inode, whole.
  std::vector<float> got(3);
  old_mapped.read("w", got.data(), 3);
  EXPECT(got == v1);
  old_streamed.read("w", got.data(), 3);
  EXPECT(got == v1);
  auto fresh = SafetensorsFile::open(path);
  std::vector<float> now(2);
  fresh.read("w", now.data(), 2);
  EXPECT(now == v2);
  EXPECT_EQ(fresh.metadata().at("version"), std::string("2"));
  EXPECT((dir.entries() == std::vector<std::string>{"w.safetensors"}));
}
