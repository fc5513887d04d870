#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <utility>

#include "base/error.h"
#include "io/file.h"
#include "io/json.h"

namespace nnscope::io {

namespace {

constexpr std::size_t kChunkBytes = std::size_t(4) << 20;  // streaming / conversion granularity
constexpr std::size_t kMaxJsonDepth = 64;

std::string quote(std::string_view s) {
  // For messages: the name as written, shortened, control bytes escaped.
  std::string out = "'";
  std::size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 120) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "'";
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    if (i == 16 && shape.size() > 17) {
      s += "... (" + std::to_string(shape.size()) + " dims)";
      break;
    }
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string range_text(std::uint64_t b, std::uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

// numel of a shape; false on 64-bit overflow (a zero dimension makes it 0 whatever the rest).
bool shape_numel(const std::vector<std::uint64_t>& shape, std::uint64_t* out) {
  for (std::uint64_t d : shape)
    if (d == 0) {
      *out = 0;
      return true;
    }
  std::uint64_t n = 1;
  for (std::uint64_t d : shape) {
    if (n > UINT64_MAX / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

std::uint64_t load_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---------------------------------------------------------------- header parsing

struct ParsedHeader {
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

void parse_tensor_entry(JsonReader& r, TensorInfo& t) {
  const std::string who = "tensor " + quote(t.name);
  const JsonReader::Type type = r.peek();
  if (type != JsonReader::Type::Object)
    r.error("the entry of " + who + " must be an object, found " + JsonReader::type_name(type));
  r.begin_object();
  bool have_dtype = false, have_shape = false, have_offsets = false;
  std::vector<std::string> others;  // unknown keys, kept only to detect duplicates
  std::string key, value;
  while (r.next_key(key)) {
    const std::size_t key_at = r.offset();
    if (key == "dtype") {
      if (have_dtype) r.error_at(key_at, "duplicate key \"dtype\" in the entry of " + who);
      have_dtype = true;
      const JsonReader::Type vt = r.peek();
      if (vt != JsonReader::Type::String)
        r.error("the dtype of " + who + " must be a string, found " + JsonReader::type_name(vt));
      const std::size_t at = r.offset();
      r.read_string(value);
      if (!parse_dtype(value, &t.dtype)) r.error_at(at, "unknown dtype " + quote(value) + " of " + who);
    } else if (key == "shape") {
      if (have_shape) r.error_at(key_at, "duplicate key \"shape\" in the entry of " + who);
      have_shape = true;
      const JsonReader::Type vt = r.peek();
      if (vt != JsonReader::Type::Array)
        r.error("the shape of " + who + " must be an array, found " + JsonReader::type_name(vt));
      r.begin_array();
      while (r.next_item())
        t.shape.push_back(
            r.read_uint(kMaxExactInteger, "dimension " + std::to_string(t.shape.size()) + " of the shape of " + who));
    } else if (key == "data_offsets") {
      if (have_offsets) r.error_at(key_at, "duplicate key \"data_offsets\" in the entry of " + who);
      have_offsets = true;
      const JsonReader::Type vt = r.peek();
      if (vt != JsonReader::Type::Array)
        r.error("the data_offsets of " + who + " must be an array, found " + JsonReader::type_name(vt));
      const std::size_t at = r.offset();
      r.begin_array();
      std::uint64_t v[2] = {0, 0};
      int n = 0;
      while (r.next_item()) {
        if (n == 2) r.error_at(at, "the data_offsets of " + who + " must have exactly 2 entries");
        v[n] = r.read_uint(kMaxExactInteger, std::string(n ? "the end" : "the begin") + " offset of " + who);
        ++n;
      }
      if (n != 2) r.error_at(at, "the data_offsets of " + who + " must have exactly 2 entries");
      t.begin = v[0];
      t.end = v[1];
    } else {
      if (std::find(others.begin(), others.end(), key) != others.end())
        r.error_at(key_at, "duplicate key " + quote(key) + " in the entry of " + who);
      others.push_back(key);
      r.skip_value();
    }
  }
  if (!have_dtype) r.error("the entry of " + who + " has no \"dtype\"");
  if (!have_shape) r.error("the entry of " + who + " has no \"shape\"");
  if (!have_offsets) r.error("the entry of " + who + " has no \"data_offsets\"");
}

void parse_metadata(JsonReader& r, std::map<std::string, std::string>& md) {
  const JsonReader::Type type = r.peek();
  if (type == JsonReader::Type::Null) {
    r.read_null();
    return;
  }
  if (type != JsonReader::Type::Object)
    r.error(std::string("\"__metadata__\" must be an object of strings, found ") + JsonReader::type_name(type));
  r.begin_object();
  std::string key, value;
  while (r.next_key(key)) {
    const std::size_t key_at = r.offset();
    const JsonReader::Type vt = r.peek();
    if (vt != JsonReader::Type::String)
      r.error("the metadata value of " + quote(key) + " must be a string, found " + JsonReader::type_name(vt));
    r.read_string(value);
    if (!md.emplace(key, value).second) r.error_at(key_at, "duplicate metadata key " + quote(key));
  }
}

ParsedHeader parse_header(std::string_view text, const std::string& context) {
  const std::size_t bad = utf8_invalid_at(text);
  if (bad != text.size())
    fail(ErrorCode::Format, context + ": not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  if (text.empty() || text[0] != '{')
    fail(ErrorCode::Format, context + ": must begin with '{' (the header is not a JSON object" +
                                std::string(text.empty() ? ", it is empty)" : ")"));
  ParsedHeader h;
  JsonReader r(text, context, kMaxJsonDepth);
  r.begin_object();
  std::map<std::string, std::size_t, std::less<>> seen;
  bool have_metadata = false;
  std::string key;
  while (r.next_key(key)) {
    const std::size_t key_at = r.offset();
    if (key == "__metadata__") {
      if (have_metadata) r.error_at(key_at, "duplicate key \"__metadata__\"");
      have_metadata = true;
      parse_metadata(r, h.metadata);
      continue;
    }
    if (key.empty()) r.error_at(key_at, "empty tensor name");
    if (!seen.emplace(key, h.tensors.size()).second) r.error_at(key_at, "duplicate tensor name " + quote(key));
    h.tensors.emplace_back();
    h.tensors.back().name = key;
    parse_tensor_entry(r, h.tensors.back());
  }
  r.finish();
  return h;
}

// Checks every tensor against the data buffer and the buffer's exact tiling.
void validate_layout(std::vector<TensorInfo>& tensors, std::uint64_t data_size, const std::string& path) {
  const std::string where = path + ": ";
  for (TensorInfo& t : tensors) {
    const std::string who = "tensor " + quote(t.name);
    if (t.begin > t.end)
      fail(ErrorCode::Format, where + who + ": data_offsets " + range_text(t.begin, t.end) + " has begin > end");
    if (t.end > data_size)
      fail(ErrorCode::Format, where + who + ": data_offsets " + range_text(t.begin, t.end) +
                                  " run past the end of the data buffer (" + std::to_string(data_size) +
                                  " bytes after the header)");
    std::uint64_t numel = 0;
    if (!shape_numel(t.shape, &numel))
      fail(ErrorCode::Format, where + who + ": the element count of shape " + shape_text(t.shape) +
                                  " overflows 64 bits");
    const std::uint64_t size = dtype_size(t.dtype);
    if (numel > UINT64_MAX / size)
      fail(ErrorCode::Format, where + who + ": the byte size of shape " + shape_text(t.shape) + " of " +
                                  dtype_name(t.dtype) + " overflows 64 bits");
    if (numel * size != t.end - t.begin)
      fail(ErrorCode::Format, where + who + ": shape " + shape_text(t.shape) + " of " + dtype_name(t.dtype) +
                                  " needs " + std::to_string(numel * size) + " bytes but data_offsets " +
                                  range_text(t.begin, t.end) + " span " + std::to_string(t.end - t.begin));
    t.numel = numel;
  }
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (tensors[a].begin != tensors[b].begin) return tensors[a].begin < tensors[b].begin;
    if (tensors[a].end != tensors[b].end) return tensors[a].end < tensors[b].end;
    return a < b;
  });
  std::uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (std::size_t i : order) {
    const TensorInfo& t = tensors[i];
    if (t.begin < cursor)
      fail(ErrorCode::Format, where + "tensor " + quote(t.name) + " (data_offsets " + range_text(t.begin, t.end) +
                                  ") overlaps tensor " + quote(prev->name) + " (" +
                                  range_text(prev->begin, prev->end) + ")");
    if (t.begin > cursor)
      fail(ErrorCode::Format, where + "bytes [" + std::to_string(cursor) + ", " + std::to_string(t.begin) +
                                  ") of the data buffer belong to no tensor (a hole before tensor " +
                                  quote(t.name) + "); safetensors requires the tensors to cover the buffer");
    cursor = t.end;
    prev = &t;
  }
  if (cursor != data_size)
    fail(ErrorCode::Format, where + "bytes [" + std::to_string(cursor) + ", " + std::to_string(data_size) +
                                ") of the data buffer belong to no tensor (trailing data after the last "
                                "tensor); safetensors requires the tensors to cover the buffer");
}

// Rethrows an error of a per-tensor operation with the tensor named.
template <typename F>
void with_tensor_context(const std::string& prefix, ErrorCode format_as, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    ErrorCode code = e.code();
    if (code == ErrorCode::Format) code = format_as;
    if (code == ErrorCode::Cancelled || code == ErrorCode::Io) throw;
    throw Error(code, prefix + e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------- reader

struct SafetensorsFile::Impl {
  std::string path;
  ReadFile file;  // open only when not mapped
  MappedFile map;
  std::string unmapped_reason;
  std::uint64_t file_size = 0, header_size = 0, data_start = 0;
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::size_t, std::less<>> index;
  std::map<std::string, std::string> metadata;
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path, const SafetensorsOpenOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->file = ReadFile::open(path);
  const std::uint64_t size = impl->file.size();
  impl->file_size = size;
  if (size < 8)
    fail(ErrorCode::Format, path + ": the file is " + std::to_string(size) +
                                " bytes, shorter than the 8-byte header length of a safetensors file");
  unsigned char len_bytes[8];
  impl->file.read_at(0, len_bytes, 8);
  const std::uint64_t n = load_u64_le(len_bytes);
  if (n > kSafetensorsMaxHeader)
    fail(ErrorCode::Format, path + ": the header length " + std::to_string(n) + " exceeds the limit of " +
                                std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (n > size - 8)
    fail(ErrorCode::Format, path + ": the header length " + std::to_string(n) + " runs past the end of the file (" +
                                std::to_string(size) + " bytes)");
  impl->header_size = n;
  impl->data_start = 8 + n;
  std::string header(static_cast<std::size_t>(n), '\0');
  impl->file.read_at(8, header.data(), header.size());
  ParsedHeader parsed = parse_header(header, path + ": header");
  validate_layout(parsed.tensors, size - 8 - n, path);
  impl->tensors = std::move(parsed.tensors);
  impl->metadata = std::move(parsed.metadata);
  for (std::size_t i = 0; i < impl->tensors.size(); ++i) impl->index.emplace(impl->tensors[i].name, i);

  if (!opts.mmap) {
    impl->unmapped_reason = "mmap disabled";
  } else if (MappedFile::try_map(impl->file, &impl->map, &impl->unmapped_reason)) {
    impl->unmapped_reason.clear();
    impl->file.close();  // the mapping keeps the file alive
  }
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const noexcept { return impl_->path; }
bool SafetensorsFile::mapped() const noexcept { return static_cast<bool>(impl_->map); }
const std::string& SafetensorsFile::unmapped_reason() const noexcept { return impl_->unmapped_reason; }
std::uint64_t SafetensorsFile::file_size() const noexcept { return impl_->file_size; }
std::uint64_t SafetensorsFile::header_size() const noexcept { return impl_->header_size; }
std::uint64_t SafetensorsFile::data_start() const noexcept { return impl_->data_start; }
const std::vector<TensorInfo>& SafetensorsFile::tensors() const noexcept { return impl_->tensors; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const noexcept { return impl_->metadata; }

const TensorInfo* SafetensorsFile::find(std::string_view name) const noexcept {
  auto it = impl_->index.find(name);
  return it == impl_->index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo& SafetensorsFile::info(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(ErrorCode::InvalidArgument, impl_->path + ": no tensor named " + quote(name));
  return *t;
}

void SafetensorsFile::read(std::string_view name, void* dst, std::size_t dst_bytes, Dtype dst_dtype,
                           const ConvertOptions& conv, const OpContext& ctx) const {
  const TensorInfo& t = info(name);
  const std::string prefix = impl_->path + ": tensor " + quote(t.name) + ": ";
  if (!can_convert(t.dtype, dst_dtype))
    fail(ErrorCode::Dtype, prefix + "cannot read " + dtype_name(t.dtype) + " as " + dtype_name(dst_dtype));
  const std::size_t ss = dtype_size(t.dtype), ds = dtype_size(dst_dtype);
  // numel · ss fits the file, numel · ds (≤ 8 · numel) may not fit size_t on 32-bit.
  if (t.numel > SIZE_MAX / ds) fail(ErrorCode::TooLarge, prefix + "too large for this address space");
  const std::size_t numel = static_cast<std::size_t>(t.numel);
  if (dst_bytes != numel * ds)
    fail(ErrorCode::Shape, prefix + "has " + std::to_string(numel) + " elements of " + dtype_name(dst_dtype) +
                               " (" + std::to_string(numel * ds) + " bytes), the destination holds " +
                               std::to_string(dst_bytes) + " bytes");
  if (numel == 0) return;
  if (!dst) fail(ErrorCode::InvalidArgument, prefix + "null destination");
  auto* out = static_cast<unsigned char*>(dst);
  const std::uint64_t src_off = impl_->data_start + t.begin;
  const std::size_t chunk = std::max<std::size_t>(1, kChunkBytes / std::max(ss, ds));
  std::vector<unsigned char> bounce;
  const bool direct = !impl_->map && t.dtype == dst_dtype;  // stream straight into dst
  if (!impl_->map && !direct) bounce.resize(std::min(numel, chunk) * ss);
  with_tensor_context(prefix, ErrorCode::Format, [&] {
    for (std::size_t done = 0; done < numel;) {
      ctx.check();
      const std::size_t k = std::min(chunk, numel - done);
      const unsigned char* src;
      if (impl_->map) {
        src = impl_->map.data() + src_off + done * ss;
      } else if (direct) {
        impl_->file.read_at(src_off + done * ss, out + done * ds, k * ss);
        if (t.dtype == Dtype::BOOL)  // validates the bytes (the copy onto itself is a no-op)
          convert(out + done * ds, t.dtype, out + done * ds, dst_dtype, k, conv, done);
        done += k;
        ctx.report(static_cast<double>(done), static_cast<double>(numel));
        continue;
      } else {
        impl_->file.read_at(src_off + done * ss, bounce.data(), k * ss);
        src = bounce.data();
      }
      convert(src, t.dtype, out + done * ds, dst_dtype, k, conv, done);
      done += k;
      ctx.report(static_cast<double>(done), static_cast<double>(numel));
    }
  });
}

void SafetensorsFile::read(std::string_view name, float* dst, std::size_t count, const ConvertOptions& conv,
                           const OpContext& ctx) const {
  const TensorInfo& t = info(name);
  if (count != t.numel)
    fail(ErrorCode::Shape, impl_->path + ": tensor " + quote(t.name) + " has " + std::to_string(t.numel) +
                               " elements, the destination " + std::to_string(count));
  read(name, dst, count * sizeof(float), Dtype::F32, conv, ctx);
}

void SafetensorsFile::read(std::string_view name, double* dst, std::size_t count, const ConvertOptions& conv,
                           const OpContext& ctx) const {
  const TensorInfo& t = info(name);
  if (count != t.numel)
    fail(ErrorCode::Shape, impl_->path + ": tensor " + quote(t.name) + " has " + std::to_string(t.numel) +
                               " elements, the destination " + std::to_string(count));
  read(name, dst, count * sizeof(double), Dtype::F64, conv, ctx);
}

TensorView SafetensorsFile::view(std::string_view name, Dtype expected) const {
  const TensorInfo& t = info(name);
  if (t.dtype != expected)
    fail(ErrorCode::Dtype, impl_->path + ": tensor " + quote(t.name) + " is " + dtype_name(t.dtype) + ", not " +
                               dtype_name(expected));
  if (!impl_->map)
    fail(ErrorCode::InvalidArgument, impl_->path + " is not memory-mapped (" + impl_->unmapped_reason +
                                         "): no zero-copy view; use read()");
  TensorView v;
  v.data = impl_->map.data() + impl_->data_start + t.begin;
  v.nbytes = static_cast<std::size_t>(t.nbytes());
  v.info = &t;
  v.aligned = reinterpret_cast<std::uintptr_t>(v.data) % dtype_size(t.dtype) == 0;
  return v;
}

// ---------------------------------------------------------------- writer

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void require_utf8(std::string_view s, const std::string& what) {
  const std::size_t bad = utf8_invalid_at(s);
  if (bad != s.size())
    fail(ErrorCode::InvalidArgument, what + " is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata, const OpContext& ctx) {
  // ---- validate everything before touching the file system
  for (const auto& [k, v] : metadata) {
    require_utf8(k, "metadata key " + quote(k));
    require_utf8(v, "the metadata value of " + quote(k));
  }
  const std::size_t nt = tensors.size();
  std::vector<std::uint64_t> bytes(nt);
  std::vector<std::size_t> by_name(nt);
  std::iota(by_name.begin(), by_name.end(), std::size_t(0));
  std::sort(by_name.begin(), by_name.end(), [&](std::size_t a, std::size_t b) { return tensors[a].name < tensors[b].name; });
  for (std::size_t i = 0; i < nt; ++i) {
    if (i > 0 && tensors[by_name[i]].name == tensors[by_name[i - 1]].name)
      fail(ErrorCode::InvalidArgument, "duplicate tensor name " + quote(tensors[by_name[i]].name));
  }
  for (std::size_t i = 0; i < nt; ++i) {
    const TensorWrite& t = tensors[i];
    const std::string who = "tensor " + quote(t.name);
    if (t.name.empty()) fail(ErrorCode::InvalidArgument, "empty tensor name");
    if (t.name == "__metadata__") fail(ErrorCode::InvalidArgument, "a tensor may not be named \"__metadata__\"");
    require_utf8(t.name, "tensor name " + quote(t.name));
    if (dtype_size(t.dtype) == 0) fail(ErrorCode::Dtype, who + ": invalid dtype");
    const Dtype src = t.source.value_or(t.dtype);
    if (!can_convert(src, t.dtype))
      fail(ErrorCode::Dtype, who + ": cannot store " + dtype_name(src) + " data as " + dtype_name(t.dtype));
    for (std::uint64_t d : t.shape)
      if (d > kMaxExactInteger) fail(ErrorCode::TooLarge, who + ": dimension " + std::to_string(d) + " exceeds 2^53-1");
    std::uint64_t numel = 0;
    if (!shape_numel(t.shape, &numel) || numel > kMaxExactInteger / 8)
      fail(ErrorCode::TooLarge, who + ": shape " + shape_text(t.shape) + " has too many elements");
    if (numel > SIZE_MAX / 8) fail(ErrorCode::TooLarge, who + ": too large for this address space");
    bytes[i] = numel * dtype_size(t.dtype);
    if (numel > 0 && !t.data) fail(ErrorCode::InvalidArgument, who + ": null data");
  }
  // Data order: larger elements first (natural alignment from an 8-aligned start), then name.
  std::vector<std::size_t> data_order = by_name;
  std::stable_sort(data_order.begin(), data_order.end(), [&](std::size_t a, std::size_t b) {
    return dtype_size(tensors[a].dtype) > dtype_size(tensors[b].dtype);
  });
  std::vector<std::uint64_t> begin(nt);
  std::uint64_t total = 0;
  for (std::size_t i : data_order) {
    begin[i] = total;
    if (bytes[i] > kMaxExactInteger - total) fail(ErrorCode::TooLarge, "the data buffer exceeds 2^53-1 bytes");
    total += bytes[i];
  }

  // ---- header
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h.push_back(',');
      first = false;
      append_json_string(h, k);
      h.push_back(':');
      append_json_string(h, v);
    }
    h.push_back('}');
  }
  for (std::size_t j = 0; j < nt; ++j) {
    const std::size_t i = by_name[j];
    const TensorWrite& t = tensors[i];
    if (h.size() > 1) h.push_back(',');
    append_json_string(h, t.name);
    h += ":{\"dtype\":\"";
    h += dtype_name(t.dtype);
    h += "\",\"shape\":[";
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (d) h.push_back(',');
      h += std::to_string(t.shape[d]);
    }
    h += "],\"data_offsets\":[" + std::to_string(begin[i]) + "," + std::to_string(begin[i] + bytes[i]) + "]}";
    if (h.size() > kSafetensorsMaxHeader)
      fail(ErrorCode::TooLarge, "the safetensors header would exceed " + std::to_string(kSafetensorsMaxHeader) + " bytes");
  }
  h.push_back('}');
  h.append((8 - h.size() % 8) % 8, ' ');
  if (h.size() > kSafetensorsMaxHeader)
    fail(ErrorCode::TooLarge, "the safetensors header would exceed " + std::to_string(kSafetensorsMaxHeader) + " bytes");

  // ---- file
  AtomicFile out(path);
  unsigned char len[8];
  for (int b = 0; b < 8; ++b) len[b] = static_cast<unsigned char>(static_cast<std::uint64_t>(h.size()) >> (8 * b));
  out.write(len, 8);
  out.write(h.data(), h.size());
  std::vector<unsigned char> buf;
  std::uint64_t written = 0;
  for (std::size_t i : data_order) {
    const TensorWrite& t = tensors[i];
    const Dtype src = t.source.value_or(t.dtype);
    const std::size_t ss = dtype_size(src), ds = dtype_size(t.dtype);
    const std::size_t numel = static_cast<std::size_t>(bytes[i] / ds);
    const std::size_t chunk = std::max<std::size_t>(1, kChunkBytes / std::max(ss, ds));
    const auto* in = static_cast<const unsigned char*>(t.data);
    with_tensor_context("tensor " + quote(t.name) + ": ", ErrorCode::InvalidArgument, [&] {
      for (std::size_t done = 0; done < numel;) {
        ctx.check();
        const std::size_t k = std::min(chunk, numel - done);
        if (src == t.dtype && src != Dtype::BOOL) {
          out.write(in + done * ss, k * ss);
        } else {
          buf.resize(k * ds);
          convert(in + done * ss, src, buf.data(), t.dtype, k, ConvertOptions{}, done);
          out.write(buf.data(), k * ds);
        }
        done += k;
        written += k * ds;
        ctx.report(static_cast<double>(written), static_cast<double>(total));
      }
    });
  }
  ctx.check();
  out.commit();
}

}  // namespace nnscope::io
