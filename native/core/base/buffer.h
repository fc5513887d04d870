// nnscope core: aligned, owning buffers for scratch space and packed panels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

#include "base/error.h"

namespace nnscope {

constexpr std::size_t kAlign = 64;  // a cache line; enough for AVX-512 loads

// Multiplies sizes, failing with ErrorCode::TooLarge instead of wrapping around.
inline std::size_t checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    fail(ErrorCode::TooLarge, "size overflows: product of dimensions is too large");
  return a * b;
}

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~AlignedBuffer() { release(); }

  // Discards the contents; allocates only when growing.
  void resize(std::size_t n) {
    if (n <= n_ && ptr_) {
      n_ = n;
      return;
    }
    release();
    if (n == 0) return;
    std::size_t bytes = checked_mul(n, sizeof(T));
    bytes = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, bytes);
    if (!p) fail(ErrorCode::OutOfMemory, "out of memory allocating " + std::to_string(bytes) + " bytes");
    ptr_ = static_cast<T*>(p);
    n_ = n;
  }

  T* data() noexcept { return ptr_; }
  const T* data() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return n_; }
  T& operator[](std::size_t i) noexcept { return ptr_[i]; }
  const T& operator[](std::size_t i) const noexcept { return ptr_[i]; }

 private:
  void release() noexcept {
    std::free(ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace nnscope
