// nnscope CUDA backend: RAII device memory, streams, events and copies (memory.h),
// and the CUDA error → nnscope::Error mapping (check.h).
#include "cuda/memory.h"

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/check.h"

namespace nnscope::cuda {

std::string describe(cudaError_t e) {
  const char* name = cudaGetErrorName(e);
  const char* text = cudaGetErrorString(e);
  return std::string(name ? name : "cudaError?") + ": " + (text ? text : "unknown error");
}

void throw_cuda(cudaError_t e, const char* what) {
  (void)cudaGetLastError();  // clear the thread's last-error slot (non-sticky errors)
  const std::string msg = std::string("CUDA ") + what + " failed (" + describe(e) + ")";
  switch (e) {
    case cudaErrorMemoryAllocation:
      fail(ErrorCode::OutOfMemory, msg);
    case cudaErrorInsufficientDriver:
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      fail(ErrorCode::DeviceUnavailable, msg);
    default:
      fail(ErrorCode::Cuda, msg);
  }
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

// ---------------------------------------------------------------- DeviceBuffer
DeviceBuffer::DeviceBuffer(std::size_t bytes) {
  if (bytes == 0) return;
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      fail(ErrorCode::OutOfMemory,
           "out of GPU memory allocating " + std::to_string(bytes) + " bytes (" + describe(e) + ")");
    }
    throw_cuda(e, "cudaMalloc");
  }
  ptr_ = p;
  bytes_ = bytes;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::reset() noexcept {
  if (ptr_) {
    if (cudaFree(ptr_) != cudaSuccess) (void)cudaGetLastError();
    ptr_ = nullptr;
    bytes_ = 0;
  }
}

// ---------------------------------------------------------------- Stream
Stream::Stream() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = s;
}

Stream::~Stream() {
  if (!stream_) return;
  synchronize_noexcept();
  if (cudaStreamDestroy(static_cast<cudaStream_t>(stream_)) != cudaSuccess) (void)cudaGetLastError();
}

void Stream::synchronize() const {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "stream synchronisation");
}

void Stream::synchronize_noexcept() const noexcept {
  if (cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)) != cudaSuccess) (void)cudaGetLastError();
}

// ---------------------------------------------------------------- Event
Event::Event(bool timing) {
  cudaEvent_t ev = nullptr;
  check(cudaEventCreateWithFlags(&ev, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  event_ = ev;
}

Event::~Event() {
  if (event_ && cudaEventDestroy(static_cast<cudaEvent_t>(event_)) != cudaSuccess) (void)cudaGetLastError();
}

void Event::record(void* stream) {
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}

void Event::synchronize() const {
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "event synchronisation");
}

float Event::elapsed_ms(const Event& start, const Event& stop) {
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.event_), static_cast<cudaEvent_t>(stop.event_)),
        "cudaEventElapsedTime");
  return ms;
}

// ---------------------------------------------------------------- copies
namespace {

std::size_t max_pitch() {
  int dev = 0, pitch = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&pitch, cudaDevAttrMaxPitch, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::size_t(1) << 31;  // conservative
  }
  return pitch > 0 ? std::size_t(pitch) : std::size_t(1) << 31;
}

void copy_rows(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
               std::size_t rows, cudaMemcpyKind kind, void* stream) {
  if (width == 0 || rows == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if ((dpitch == width && spitch == width) || rows == 1) {
    check(cudaMemcpyAsync(dst, src, width * rows, kind, s), "cudaMemcpyAsync");
    return;
  }
  const std::size_t limit = max_pitch();
  if (dpitch <= limit && spitch <= limit) {
    check(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, kind, s), "cudaMemcpy2DAsync");
    return;
  }
  auto* d = static_cast<char*>(dst);
  auto* p = static_cast<const char*>(src);
  for (std::size_t r = 0; r < rows; ++r)
    check(cudaMemcpyAsync(d + r * dpitch, p + r * spitch, width, kind, s), "cudaMemcpyAsync");
}

}  // namespace

void copy_to_device(void* dst, const void* src, std::size_t bytes, void* stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)),
        "copy to the device");
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, void* stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream)),
        "copy to the host");
}

void copy_rows_to_device(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                         std::size_t rows, void* stream) {
  copy_rows(dst, dpitch, src, spitch, width, rows, cudaMemcpyHostToDevice, stream);
}

void copy_rows_to_host(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                       std::size_t rows, void* stream) {
  copy_rows(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToHost, stream);
}

}  // namespace nnscope::cuda
