// nnscope core: the one error type of the engine, with stable codes.
#pragma once
#include <stdexcept>
#include <string>

namespace nnscope {

// Stable error codes. The addon maps each to the string code of the JS error
// (see code_name); never renumber or rename, only append.
enum class ErrorCode {
  InvalidArgument,    // ERR_INVALID_ARGUMENT
  Shape,              // ERR_SHAPE
  Dtype,              // ERR_DTYPE
  NonFinite,          // ERR_NON_FINITE
  TooLarge,           // ERR_TOO_LARGE
  UnknownDevice,      // ERR_UNKNOWN_DEVICE
  DeviceUnavailable,  // ERR_DEVICE_UNAVAILABLE
  Cancelled,          // ERR_CANCELLED
  Format,             // ERR_FORMAT
  OutOfMemory,        // ERR_OUT_OF_MEMORY
  Cuda,               // ERR_CUDA
  Io,                 // ERR_IO
  Internal,           // ERR_INTERNAL
  Detached,           // ERR_DETACHED: a typed array whose buffer was detached/transferred
  Callback,           // ERR_CALLBACK: a user callback threw or returned a bad value
};

const char* code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

// Checks an internal invariant or a caller contract; throws, never aborts.
#define NNSCOPE_CHECK(cond, code, msg)                   \
  do {                                                   \
    if (!(cond)) ::nnscope::fail((code), (msg));         \
  } while (0)

}  // namespace nnscope
