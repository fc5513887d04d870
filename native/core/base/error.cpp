#include "base/error.h"

namespace nnscope {

const char* code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::Shape: return "ERR_SHAPE";
    case ErrorCode::Dtype: return "ERR_DTYPE";
    case ErrorCode::NonFinite: return "ERR_NON_FINITE";
    case ErrorCode::TooLarge: return "ERR_TOO_LARGE";
    case ErrorCode::UnknownDevice: return "ERR_UNKNOWN_DEVICE";
    case ErrorCode::DeviceUnavailable: return "ERR_DEVICE_UNAVAILABLE";
    case ErrorCode::Cancelled: return "ERR_CANCELLED";
    case ErrorCode::Format: return "ERR_FORMAT";
    case ErrorCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::Cuda: return "ERR_CUDA";
    case ErrorCode::Io: return "ERR_IO";
    case ErrorCode::Internal: return "ERR_INTERNAL";
    case ErrorCode::Detached: return "ERR_DETACHED";
    case ErrorCode::Callback: return "ERR_CALLBACK";
  }
  return "ERR_INTERNAL";
}

}  // namespace nnscope
