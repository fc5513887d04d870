// nnscope core: a small, strict pull parser for JSON (RFC 8259), built for
// untrusted file headers.
//
// The caller walks the document by its expected schema (begin_object /
// next_key / read_string / …); nothing is materialised that the caller does not
// ask for, so memory stays proportional to what the caller keeps. Hardening:
//   • no recursion: containers are tracked on an explicit stack with a depth
//     limit (default 64), skip_value() is iterative;
//   • strings: UTF-8 validated byte by byte (no overlong forms, no encoded
//     surrogates, nothing above U+10FFFF), unescaped control characters
//     rejected, escapes \" \\ \/ \b \f \n \r \t \uXXXX with surrogate pairs
//     required to pair up (a lone surrogate is an error);
//   • numbers follow the JSON grammar exactly (no leading zeros, no "+", no
//     "1.", no ".5", no NaN/Infinity); read_uint() rejects a sign, fraction or
//     exponent and detects overflow against a caller-given maximum;
//   • literals true / false / null only where the caller accepts them;
//   • finish() rejects anything but whitespace after the top-level value.
//   • duplicate keys (compared after unescaping) are rejected by skip_value()
//     in every object it skips; in objects the caller walks with next_key()
//     the caller detects them (it knows which keys it keeps).
// Every error is nnscope::Error(ErrorCode::Format) with the byte offset.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nnscope::io {

// Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629:
// shortest form, no surrogates, ≤ U+10FFFF), or s.size() when s is valid.
std::size_t utf8_invalid_at(std::string_view s) noexcept;

class JsonReader {
 public:
  enum class Type { Object, Array, String, Number, Bool, Null };

  // `context` prefixes every error message (e.g. "model.safetensors: header").
  explicit JsonReader(std::string_view text, std::string context = "JSON", std::size_t max_depth = 64);

  // The type of the value that starts at the next non-whitespace byte.
  Type peek();
  static const char* type_name(Type t) noexcept;

  // Containers. begin_*() consumes the opening bracket. next_key() /
  // next_item() advance to the next member / element and return true (a value
  // must then be read or skipped), or consume the closing bracket and return false.
  void begin_object();
  bool next_key(std::string& key);
  void begin_array();
  bool next_item();

  // Scalars. Each reads the next value and fails if it has another type.
  void read_string(std::string& out);
  // A non-negative integer literal (no sign, fraction or exponent) ≤ max; `what`
  // names it in errors ("dimension 2 of the shape of 'w'").
  std::uint64_t read_uint(std::uint64_t max, const std::string& what);
  bool read_bool();
  void read_null();
  // Skips one value of any type, however nested (iteratively, depth-limited),
  // still validating it fully, duplicate keys included.
  void skip_value();

  // Requires the top-level value to be complete and only whitespace to follow.
  void finish();

  std::size_t offset() const noexcept { return pos_; }
  [[noreturn]] void error(const std::string& what) const { error_at(pos_, what); }
  [[noreturn]] void error_at(std::size_t pos, const std::string& what) const;

 private:
  struct Frame {
    bool object;
    bool first;
  };
  void skip_ws() noexcept;
  void expect_value_position();
  void push(bool object);
  // Scans a number literal at pos_, returns its extent and what it contains.
  struct NumberScan {
    std::size_t begin, end;
    bool negative, fraction, exponent;
  };
  NumberScan scan_number();
  std::string describe_byte(std::size_t pos) const;
  std::string excerpt(std::size_t begin, std::size_t end) const;

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string context_;
  std::size_t max_depth_;
  std::vector<Frame> stack_;
  bool want_value_ = true;  // a value must come next (start, after a key, after next_item)
  bool done_ = false;       // the top-level value is complete
};

}  // namespace nnscope::io
