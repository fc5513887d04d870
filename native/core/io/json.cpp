#include "io/json.h"

#include <cstdio>
#include <set>

#include "base/error.h"

namespace nnscope::io {

namespace {

// Length of the valid UTF-8 sequence starting at p (avail > 0 bytes there), or 0.
inline std::size_t utf8_len(const unsigned char* p, std::size_t avail) noexcept {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t i, unsigned char lo, unsigned char hi) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1, 0x80, 0xbf) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2, 0x80, 0xbf) ? 3 : 0;  // no UTF-16 surrogates
  if (c == 0xf0) return cont(1, 0x90, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  return 0;  // continuation byte, overlong lead (C0, C1) or beyond U+10FFFF (F5..FF)
}

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string excerpt_text(const std::string& s) { return s.size() > 40 ? s.substr(0, 40) + "..." : s; }

[[noreturn]] void misuse(const char* what) { fail(ErrorCode::Internal, std::string("JsonReader misuse: ") + what); }

}  // namespace

std::size_t utf8_invalid_at(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = utf8_len(p + i, n - i);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

JsonReader::JsonReader(std::string_view text, std::string context, std::size_t max_depth)
    : s_(text), context_(std::move(context)), max_depth_(max_depth) {}

const char* JsonReader::type_name(Type t) noexcept {
  switch (t) {
    case Type::Object: return "an object";
    case Type::Array: return "an array";
    case Type::String: return "a string";
    case Type::Number: return "a number";
    case Type::Bool: return "a boolean";
    case Type::Null: return "null";
  }
  return "?";
}

void JsonReader::error_at(std::size_t pos, const std::string& what) const {
  fail(ErrorCode::Format, context_ + ": " + what + " (at byte " + std::to_string(pos) + ")");
}

std::string JsonReader::describe_byte(std::size_t pos) const {
  if (pos >= s_.size()) return "the end of the text";
  const auto c = static_cast<unsigned char>(s_[pos]);
  char buf[16];
  if (c >= 0x21 && c < 0x7f)
    std::snprintf(buf, sizeof buf, "'%c'", c);
  else
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
  return buf;
}

std::string JsonReader::excerpt(std::size_t begin, std::size_t end) const {
  if (end > s_.size()) end = s_.size();
  if (begin > end) begin = end;
  std::string t(s_.substr(begin, end - begin));
  if (t.size() > 32) t = t.substr(0, 32) + "...";
  return t;
}

void JsonReader::skip_ws() noexcept {
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++pos_;
  }
}

void JsonReader::expect_value_position() {
  if (!want_value_) misuse("a value was read where none is expected");
}

JsonReader::Type JsonReader::peek() {
  skip_ws();
  if (pos_ >= s_.size()) error("unexpected end of the text where a value was expected");
  switch (s_[pos_]) {
    case '{': return Type::Object;
    case '[': return Type::Array;
    case '"': return Type::String;
    case 't':
    case 'f': return Type::Bool;
    case 'n': return Type::Null;
    default:
      if (s_[pos_] == '-' || is_digit(s_[pos_])) return Type::Number;
  }
  error("unexpected " + describe_byte(pos_) + " where a value was expected");
}

void JsonReader::push(bool object) {
  if (stack_.size() >= max_depth_)
    error("nesting deeper than " + std::to_string(max_depth_) + " levels");
  stack_.push_back({object, true});
}

void JsonReader::begin_object() {
  expect_value_position();
  const Type t = peek();
  if (t != Type::Object) error(std::string("expected an object, found ") + type_name(t));
  push(true);
  ++pos_;
  want_value_ = false;
}

void JsonReader::begin_array() {
  expect_value_position();
  const Type t = peek();
  if (t != Type::Array) error(std::string("expected an array, found ") + type_name(t));
  push(false);
  ++pos_;
  want_value_ = false;
}

bool JsonReader::next_key(std::string& key) {
  if (want_value_ || stack_.empty() || !stack_.back().object) misuse("next_key outside an object");
  skip_ws();
  if (pos_ >= s_.size()) error("unexpected end of the text inside an object");
  Frame& f = stack_.back();
  if (s_[pos_] == '}' && f.first) {
    ++pos_;
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return false;
  }
  if (!f.first) {
    if (s_[pos_] == '}') {
      ++pos_;
      stack_.pop_back();
      if (stack_.empty()) done_ = true;
      return false;
    }
    if (s_[pos_] != ',') error("expected ',' or '}' in an object, found " + describe_byte(pos_));
    ++pos_;
    skip_ws();
  }
  f.first = false;
  if (pos_ >= s_.size() || s_[pos_] != '"') {
    if (pos_ < s_.size() && s_[pos_] == '}') error("trailing comma before '}'");
    error("expected a string key, found " + describe_byte(pos_));
  }
  // Parse the key with the string reader (it needs a value position).
  want_value_ = true;
  read_string(key);
  skip_ws();
  if (pos_ >= s_.size() || s_[pos_] != ':') error("expected ':' after a key, found " + describe_byte(pos_));
  ++pos_;
  want_value_ = true;
  return true;
}

bool JsonReader::next_item() {
  if (want_value_ || stack_.empty() || stack_.back().object) misuse("next_item outside an array");
  skip_ws();
  if (pos_ >= s_.size()) error("unexpected end of the text inside an array");
  Frame& f = stack_.back();
  if (s_[pos_] == ']') {
    ++pos_;
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return false;
  }
  if (!f.first) {
    if (s_[pos_] != ',') error("expected ',' or ']' in an array, found " + describe_byte(pos_));
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') error("trailing comma before ']'");
  }
  f.first = false;
  want_value_ = true;
  return true;
}

void JsonReader::read_string(std::string& out) {
  expect_value_position();
  const Type t = peek();
  if (t != Type::String) error(std::string("expected a string, found ") + type_name(t));
  const std::size_t start = pos_;
  ++pos_;
  out.clear();
  const std::size_t n = s_.size();
  const auto* p = reinterpret_cast<const unsigned char*>(s_.data());
  for (;;) {
    if (pos_ >= n) error_at(start, "unterminated string");
    const unsigned char c = p[pos_];
    if (c == '"') {
      ++pos_;
      break;
    }
    if (c == '\\') {
      if (pos_ + 1 >= n) error_at(start, "unterminated string");
      const char e = s_[pos_ + 1];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          auto hex4 = [&](std::size_t at) -> std::uint32_t {
            if (at + 4 > n) error_at(at, "truncated \\u escape");
            std::uint32_t v = 0;
            for (std::size_t k = 0; k < 4; ++k) {
              const int h = hex_value(s_[at + k]);
              if (h < 0) error_at(at + k, "invalid hex digit " + describe_byte(at + k) + " in a \\u escape");
              v = v * 16 + static_cast<std::uint32_t>(h);
            }
            return v;
          };
          std::uint32_t cp = hex4(pos_ + 2);
          if (cp >= 0xdc00 && cp <= 0xdfff) error("lone low surrogate \\u" + excerpt(pos_ + 2, pos_ + 6) + " in a string");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            const std::size_t lo_at = pos_ + 6;
            if (lo_at + 2 > n || s_[lo_at] != '\\' || s_[lo_at + 1] != 'u')
              error("high surrogate \\u" + excerpt(pos_ + 2, pos_ + 6) + " not followed by a low surrogate");
            const std::uint32_t lo = hex4(lo_at + 2);
            if (lo < 0xdc00 || lo > 0xdfff)
              error("high surrogate \\u" + excerpt(pos_ + 2, pos_ + 6) + " not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            pos_ += 6;  // the second escape; the first is skipped below
          }
          append_utf8(out, cp);
          pos_ += 4;  // the hex digits; "\u" below
          break;
        }
        default:
          error("invalid escape '\\" + std::string(1, e) + "' in a string");
      }
      pos_ += 2;
      continue;
    }
    if (c < 0x20) error("unescaped control character " + describe_byte(pos_) + " in a string");
    if (c < 0x80) {
      // A run of plain ASCII.
      std::size_t end = pos_ + 1;
      while (end < n && p[end] >= 0x20 && p[end] < 0x80 && p[end] != '"' && p[end] != '\\') ++end;
      out.append(s_.data() + pos_, end - pos_);
      pos_ = end;
      continue;
    }
    const std::size_t len = utf8_len(p + pos_, n - pos_);
    if (len == 0) error("invalid UTF-8 in a string");
    out.append(s_.data() + pos_, len);
    pos_ += len;
  }
  want_value_ = false;
  if (stack_.empty()) done_ = true;
}

JsonReader::NumberScan JsonReader::scan_number() {
  NumberScan ns{pos_, pos_, false, false, false};
  const std::size_t n = s_.size();
  if (pos_ < n && s_[pos_] == '-') {
    ns.negative = true;
    ++pos_;
  }
  if (pos_ >= n || !is_digit(s_[pos_])) error("invalid number: a digit must follow '-'");
  if (s_[pos_] == '0') {
    ++pos_;
    if (pos_ < n && is_digit(s_[pos_])) error_at(ns.begin, "invalid number: leading zeros are not allowed");
  } else {
    while (pos_ < n && is_digit(s_[pos_])) ++pos_;
  }
  if (pos_ < n && s_[pos_] == '.') {
    ns.fraction = true;
    ++pos_;
    if (pos_ >= n || !is_digit(s_[pos_])) error("invalid number: a digit must follow '.'");
    while (pos_ < n && is_digit(s_[pos_])) ++pos_;
  }
  if (pos_ < n && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
    ns.exponent = true;
    ++pos_;
    if (pos_ < n && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
    if (pos_ >= n || !is_digit(s_[pos_])) error("invalid number: the exponent has no digits");
    while (pos_ < n && is_digit(s_[pos_])) ++pos_;
  }
  ns.end = pos_;
  return ns;
}

std::uint64_t JsonReader::read_uint(std::uint64_t max, const std::string& what) {
  expect_value_position();
  const Type t = peek();
  if (t != Type::Number) error("expected " + what + " to be a non-negative integer, found " + type_name(t));
  const NumberScan ns = scan_number();
  const std::string lit = excerpt(ns.begin, ns.end);
  if (ns.negative) error_at(ns.begin, what + " must be non-negative, found " + lit);
  if (ns.fraction || ns.exponent) error_at(ns.begin, what + " must be an integer, found " + lit);
  std::uint64_t v = 0;
  for (std::size_t i = ns.begin; i < ns.end; ++i) {
    const auto d = static_cast<std::uint64_t>(s_[i] - '0');
    if (d > max || v > (max - d) / 10)
      error_at(ns.begin, what + " is too large: " + lit + " > " + std::to_string(max));
    v = v * 10 + d;
  }
  want_value_ = false;
  if (stack_.empty()) done_ = true;
  return v;
}

bool JsonReader::read_bool() {
  expect_value_position();
  const Type t = peek();
  if (t != Type::Bool) error(std::string("expected a boolean, found ") + type_name(t));
  bool v;
  if (s_.substr(pos_, 4) == "true") {
    v = true;
    pos_ += 4;
  } else if (s_.substr(pos_, 5) == "false") {
    v = false;
    pos_ += 5;
  } else {
    error("invalid literal " + excerpt(pos_, pos_ + 5));
  }
  want_value_ = false;
  if (stack_.empty()) done_ = true;
  return v;
}

void JsonReader::read_null() {
  expect_value_position();
  const Type t = peek();
  if (t != Type::Null) error(std::string("expected null, found ") + type_name(t));
  if (s_.substr(pos_, 4) != "null") error("invalid literal " + excerpt(pos_, pos_ + 4));
  pos_ += 4;
  want_value_ = false;
  if (stack_.empty()) done_ = true;
}

void JsonReader::skip_value() {
  expect_value_position();
  const std::size_t base = stack_.size();
  std::string scratch;
  std::vector<std::set<std::string>> keysets;  // keys seen, one set per open skipped object
  for (;;) {
    // A value is expected here.
    switch (peek()) {
      case Type::Object:
        begin_object();
        keysets.emplace_back();
        break;
      case Type::Array: begin_array(); break;
      case Type::String: read_string(scratch); break;
      case Type::Bool: read_bool(); break;
      case Type::Null: read_null(); break;
      case Type::Number:
        scan_number();
        want_value_ = false;
        if (stack_.empty()) done_ = true;
        break;
    }
    // Advance to the next value inside the skipped subtree, or stop.
    for (;;) {
      if (stack_.size() == base) return;
      if (stack_.back().object) {
        const std::size_t at = pos_;
        if (next_key(scratch)) {
          if (!keysets.back().insert(scratch).second) error_at(at, "duplicate key \"" + excerpt_text(scratch) + "\"");
          break;
        }
        keysets.pop_back();
      } else if (next_item()) {
        break;
      }
    }
  }
}

void JsonReader::finish() {
  if (!done_) misuse("finish() before the top-level value was read");
  skip_ws();
  if (pos_ != s_.size()) error("unexpected " + describe_byte(pos_) + " after the end of the JSON value");
}

}  // namespace nnscope::io
