// nnscope CUDA backend: device memory, streams and events as RAII objects, and
// host↔device copies. A plain C++ header (no CUDA headers): CUDA handles are opaque
// (a stream is its cudaStream_t passed as void*), so .cpp files compiled without the
// CUDA toolkit can include it. Every function acts on the calling thread's current
// device (set_device) and throws nnscope::Error (Cuda, OutOfMemory) on failure.
#pragma once
#include <cstddef>

namespace nnscope::cuda {

// Makes `device` current for the calling host thread (cudaSetDevice).
void set_device(int device);

// Plain device memory from cudaMalloc (never managed memory), freed by the
// destructor. Zero bytes allocate nothing (data() is null).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  void* data() const noexcept { return ptr_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const noexcept { return bytes_; }
  void reset() noexcept;  // frees (errors are ignored: a destructor must not throw)

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// A stream created with cudaStreamNonBlocking (it does not serialise with the legacy
// default stream, so concurrent callers on other threads do not wait for each
// other). The destructor waits for the stream's work, then destroys it.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void* handle() const noexcept { return stream_; }
  void synchronize() const;             // throws on an error from the stream's work
  void synchronize_noexcept() const noexcept;

 private:
  void* stream_ = nullptr;
};

// A completion marker (cudaEventDisableTiming unless `timing`).
class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void* handle() const noexcept { return event_; }
  void record(void* stream);
  void synchronize() const;
  // Milliseconds between two recorded timing events (both must have completed).
  static float elapsed_ms(const Event& start, const Event& stop);

 private:
  void* event_ = nullptr;
};

// Stream-ordered copies. From or to pageable host memory the runtime may block the
// host until the data is staged; call Stream::synchronize() before reading results.
void copy_to_device(void* dst, const void* src, std::size_t bytes, void* stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, void* stream);
// Copies `rows` rows of `width` bytes between pitched layouts (pitches in bytes,
// each ≥ width). Contiguous layouts become one copy; pitches beyond what
// cudaMemcpy2D accepts fall back to one copy per row.
void copy_rows_to_device(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                         std::size_t width, std::size_t rows, void* stream);
void copy_rows_to_host(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                       std::size_t width, std::size_t rows, void* stream);

}  // namespace nnscope::cuda
