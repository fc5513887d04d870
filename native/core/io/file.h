// nnscope core: POSIX file plumbing for tensor files — a read-only handle with
// positioned reads, a read-only whole-file memory map, and an atomic writer.
// Every OS failure is nnscope::Error(ErrorCode::Io) naming the path and the
// errno text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace nnscope::io {

// "No such file or directory", … for an errno value (thread-safe).
std::string errno_text(int err);

// A read-only file descriptor (RAII, movable).
class ReadFile {
 public:
  ReadFile() = default;
  ReadFile(ReadFile&& o) noexcept;
  ReadFile& operator=(ReadFile&& o) noexcept;
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;
  ~ReadFile();

  // Opens a regular file for reading (Io when it cannot be opened, is a
  // directory or another non-regular file).
  static ReadFile open(const std::string& path);

  bool is_open() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }
  // The size at open time.
  std::uint64_t size() const noexcept { return size_; }
  // Reads exactly n bytes at `offset` (pread, retried on EINTR and short reads).
  // Io on an OS error or when the file ends early (it shrank since open).
  void read_at(std::uint64_t offset, void* dst, std::size_t n) const;
  void close() noexcept;

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string path_;
};

// A read-only, private memory map of a whole file (RAII, movable). Pages are
// loaded on demand, so files larger than RAM map fine.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Maps file.size() bytes; returns false (with the reason in *why) when the OS
  // refuses (no mmap support, address space, size 0), so callers can fall back.
  static bool try_map(const ReadFile& file, MappedFile* out, std::string* why);

  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  void unmap() noexcept;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Writes `path` atomically: bytes go to a new temporary file in the same
// directory (".<name>.tmp.<pid>.<n>", created exclusively, mode 0666 & ~umask),
// and commit() fsyncs it, renames it over `path` and fsyncs the directory (best
// effort: some file systems refuse directory fsync). Until commit() succeeds the
// old `path` is untouched; destroying an uncommitted writer removes the
// temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(const void* data, std::size_t n);
  void commit();
  const std::string& temp_path() const noexcept { return temp_; }

 private:
  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace nnscope::io
