// nnscope core, attention family: finiteness scans of key/value tensors in any
// storage (the 16-bit patterns are checked by their exponent bits, no conversion).
#pragma once
#include <string>

#include "attention/kv.h"

namespace nnscope::attention {

// Throws ErrorCode::NonFinite naming `what`, the head and the token of the first
// NaN/±Inf element. Multi-threaded for large tensors.
void require_finite_kv(const KvView& kv, const std::string& what);

}  // namespace nnscope::attention
