// nnscope core: the safetensors tensor file format — a validating reader
// (memory-mapped, or streaming with pread) and an atomic writer.
//
// Format: 8 bytes little-endian u64 N; N bytes of UTF-8 JSON, an object mapping
// tensor name → {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the first byte after the header) plus an optional "__metadata__"
// object of string → string; then the data buffer. Row-major, little-endian.
//
// Validation (every rule → ErrorCode::Format with a message naming the tensor,
// the offending values and, for JSON errors, the header byte):
//   file     at least 8 bytes; N ≤ 100,000,000 (the reference implementation's
//            limit) and 8 + N ≤ file size;
//   header   valid UTF-8; begins with '{' (no leading whitespace, as the spec
//            says); strict JSON (see io/json.h), nesting ≤ 64 levels; only
//            whitespace after the object (the spec's trailing-space padding);
//            no duplicate key at any level (compared after unescaping);
//   tensors  name non-empty; entry an object with exactly one each of "dtype"
//            (a known dtype string, see io/dtype.h), "shape" (array of integers
//            0 … 2^53−1, no sign/fraction/exponent), "data_offsets" (array of
//            exactly two integers 0 … 2^53−1); other keys in an entry are
//            skipped, as the reference does (they must still be valid JSON);
//            begin ≤ end ≤ data buffer size; numel · dtype size (overflow
//            checked) == end − begin;
//   layout   tensors sorted by offset must tile the data buffer exactly: no
//            overlap, no hole, and no bytes after the last tensor (the data
//            buffer ends at the end of the file), as the reference requires;
//   metadata "__metadata__" is an object whose values are all strings (or null,
//            meaning none); it may appear anywhere among the keys.
// Integers above 2^53−1 are refused so every size is exact in JavaScript.
//
// A file is read through a read-only mmap by default (pages load on demand, so
// files larger than RAM work); when mmap is disabled or refused, reads stream
// through pread in 4 MiB chunks. The file must not be truncated by another
// process while mapped (the OS would raise SIGBUS on access; no format can guard
// against that). A SafetensorsFile is immutable after open(): read() and view()
// may be called from several threads at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/context.h"
#include "io/dtype.h"

namespace nnscope::io {

constexpr std::uint64_t kSafetensorsMaxHeader = 100000000;      // bytes
constexpr std::uint64_t kMaxExactInteger = (std::uint64_t(1) << 53) - 1;  // Number.MAX_SAFE_INTEGER

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::uint64_t> shape;  // row-major; empty for a scalar
  std::uint64_t numel = 1;           // product of shape (1 for a scalar, 0 if a dim is 0)
  std::uint64_t begin = 0, end = 0;  // data_offsets: bytes relative to the data buffer
  std::uint64_t nbytes() const noexcept { return end - begin; }
};

struct SafetensorsOpenOptions {
  bool mmap = true;  // false: never map, stream every read with pread
};

// A zero-copy window into the mapping. `data` stays valid while the
// SafetensorsFile (or the object it was moved into) lives. It is aligned to the
// dtype size when `aligned` (always for files written by write_safetensors);
// foreign files may place tensors at any byte, so check before casting.
struct TensorView {
  const void* data = nullptr;
  std::size_t nbytes = 0;
  const TensorInfo* info = nullptr;
  bool aligned = false;
};

class SafetensorsFile {
 public:
  // Opens and validates `path` (see the rules above). ErrorCode::Io when it cannot
  // be opened or read (missing, a directory, permissions), ErrorCode::Format when
  // it is not a valid safetensors file. A failed mmap falls back to streaming.
  static SafetensorsFile open(const std::string& path, const SafetensorsOpenOptions& opts = {});

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const noexcept;
  bool mapped() const noexcept;
  // Why the file is not mapped ("disabled", "mmap failed: …"); empty when mapped.
  const std::string& unmapped_reason() const noexcept;
  std::uint64_t file_size() const noexcept;
  std::uint64_t header_size() const noexcept;  // N
  std::uint64_t data_start() const noexcept;   // 8 + N: file offset of data byte 0

  // Every tensor, in the order the header lists them.
  const std::vector<TensorInfo>& tensors() const noexcept;
  // nullptr when there is no such tensor.
  const TensorInfo* find(std::string_view name) const noexcept;
  // ErrorCode::InvalidArgument when there is no such tensor.
  const TensorInfo& info(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const noexcept;

  // Reads tensor `name` into dst as dst_dtype: the file's own dtype (a byte copy;
  // BOOL bytes are checked to be 0/1), F32 or F64 (exact decoding of every dtype;
  // lossy cases fail unless conv.allow_rounding, see ConvertOptions). dst_bytes
  // must equal numel · dtype_size(dst_dtype) (ErrorCode::Shape otherwise). Checks
  // ctx for cancellation between 4 MiB chunks and reports progress in elements.
  void read(std::string_view name, void* dst, std::size_t dst_bytes, Dtype dst_dtype,
            const ConvertOptions& conv = {}, const OpContext& ctx = {}) const;
  // The same into float / double arrays of exactly numel elements.
  void read(std::string_view name, float* dst, std::size_t count, const ConvertOptions& conv = {},
            const OpContext& ctx = {}) const;
  void read(std::string_view name, double* dst, std::size_t count, const ConvertOptions& conv = {},
            const OpContext& ctx = {}) const;

  // The tensor's bytes in place. ErrorCode::Dtype unless the tensor's dtype is
  // `expected`; ErrorCode::InvalidArgument when the file is not mapped.
  TensorView view(std::string_view name, Dtype expected) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One tensor to write. `data` holds numel elements of `source` (default: `dtype`),
// row-major, any alignment; it may be null only when numel is 0.
struct TensorWrite {
  std::string name;
  Dtype dtype = Dtype::F32;            // the dtype stored in the file
  std::vector<std::uint64_t> shape;    // empty for a scalar
  const void* data = nullptr;
  std::optional<Dtype> source;         // dtype of `data` when it differs from `dtype`:
                                       // F32 → F16 / BF16 (round to nearest even, IEEE
                                       // overflow to ±inf), any → F32 / F64 (as read())
};

// Writes a safetensors file atomically (io/file.h AtomicFile: temp file in the
// same directory, fsync, rename). Layout: header keys sorted bytewise with
// "__metadata__" first (omitted when metadata is empty); the header is padded
// with spaces so the data starts at a multiple of 8; the data buffer is
// contiguous with tensors ordered by dtype size (largest first) then name, so
// every tensor is aligned to its element size. Errors: ErrorCode::InvalidArgument
// (empty, duplicate, "__metadata__" or non-UTF-8 names or metadata; null data;
// BOOL bytes other than 0/1), Dtype (unsupported conversion, lossy F64 → F32),
// TooLarge (a dimension or offset above 2^53−1, header over 100 MB), Io (OS
// errors), Cancelled. On any error the destination is untouched and the
// temporary file removed.
void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {}, const OpContext& ctx = {});

}  // namespace nnscope::io
