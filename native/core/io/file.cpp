#include "io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <system_error>
#include <utility>

#include "base/error.h"

namespace nnscope::io {

namespace {

constexpr std::size_t kMaxIoChunk = std::size_t(1) << 30;  // Linux caps one call near 2 GiB

[[noreturn]] void io_fail(const std::string& what, const std::string& path, int err) {
  fail(ErrorCode::Io, what + " '" + path + "': " + errno_text(err));
}

}  // namespace

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// ---------------------------------------------------------------- ReadFile

ReadFile::ReadFile(ReadFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), size_(std::exchange(o.size_, 0)), path_(std::move(o.path_)) {}

ReadFile& ReadFile::operator=(ReadFile&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    size_ = std::exchange(o.size_, 0);
    path_ = std::move(o.path_);
  }
  return *this;
}

ReadFile::~ReadFile() { close(); }

void ReadFile::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ReadFile ReadFile::open(const std::string& path) {
  ReadFile f;
  f.path_ = path;
  int fd;
  // O_NONBLOCK so that opening a FIFO does not wait for a writer; it is refused
  // below and has no effect on regular files.
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) io_fail("cannot open", path, errno);
  f.fd_ = fd;
  struct stat st;
  if (::fstat(fd, &st) != 0) io_fail("cannot stat", path, errno);
  if (S_ISDIR(st.st_mode)) fail(ErrorCode::Io, "cannot read '" + path + "': it is a directory");
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::Io, "cannot read '" + path + "': not a regular file");
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  f.size_ = static_cast<std::uint64_t>(st.st_size);
  return f;
}

void ReadFile::read_at(std::uint64_t offset, void* dst, std::size_t n) const {
  if (fd_ < 0) fail(ErrorCode::Internal, "read from a closed file");
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
      fail(ErrorCode::Io, "cannot read '" + path_ + "': offset beyond the OS limit");
    const std::size_t want = std::min(n, kMaxIoChunk);
    const ssize_t got = ::pread(fd_, p, want, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      io_fail("cannot read", path_, errno);
    }
    if (got == 0)
      fail(ErrorCode::Io, "cannot read '" + path_ + "': unexpected end of file at byte " + std::to_string(offset) +
                              " (the file shrank while open?)");
    p += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

// ---------------------------------------------------------------- MappedFile

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    unmap();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { unmap(); }

void MappedFile::unmap() noexcept {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

bool MappedFile::try_map(const ReadFile& file, MappedFile* out, std::string* why) {
  if (!file.is_open()) {
    if (why) *why = "file not open";
    return false;
  }
  if (file.size() == 0) {
    if (why) *why = "empty file";
    return false;
  }
  if (file.size() > std::numeric_limits<std::size_t>::max()) {
    if (why) *why = "file larger than the address space";
    return false;
  }
  const auto len = static_cast<std::size_t>(file.size());
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, file.fd(), 0);
  if (p == MAP_FAILED) {
    if (why) *why = "mmap failed: " + errno_text(errno);
    return false;
  }
  out->unmap();
  out->data_ = static_cast<const unsigned char*>(p);
  out->size_ = len;
  return true;
}

// ---------------------------------------------------------------- AtomicFile

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  if (path.empty()) fail(ErrorCode::InvalidArgument, "empty output path");
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) fail(ErrorCode::InvalidArgument, "output path '" + path + "' names a directory");
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_ = dir + "." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    int fd;
    do {
      fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
      fd_ = fd;
      return;
    }
    if (errno != EEXIST) io_fail("cannot create a temporary file next to", path, errno);
  }
  fail(ErrorCode::Io, "cannot create a temporary file next to '" + path + "': too many name collisions");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t n) {
  if (fd_ < 0) fail(ErrorCode::Internal, "write to a closed AtomicFile");
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {
    const ssize_t put = ::write(fd_, p, std::min(n, kMaxIoChunk));
    if (put < 0) {
      if (errno == EINTR) continue;
      io_fail("cannot write", temp_, errno);
    }
    if (put == 0) fail(ErrorCode::Io, "cannot write '" + temp_ + "': the device accepts no more data");
    p += put;
    n -= static_cast<std::size_t>(put);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0 || committed_) fail(ErrorCode::Internal, "AtomicFile committed twice");
  if (::fsync(fd_) != 0) io_fail("cannot fsync", temp_, errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) io_fail("cannot close", temp_, errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) io_fail("cannot rename the temporary file onto", path_, errno);
  committed_ = true;
  // Make the rename durable (best effort).
  const std::size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string(".") : (slash == 0 ? "/" : path_.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace nnscope::io
