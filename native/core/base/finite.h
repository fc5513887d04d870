// nnscope core: finiteness scans (vectorised, multi-threaded for large arrays).
#pragma once
#include <cstddef>
#include <string>

namespace nnscope {

// Index of the first NaN or ±Inf in x[0..n), or n when all are finite.
std::size_t first_nonfinite(const float* x, std::size_t n);
std::size_t first_nonfinite(const double* x, std::size_t n);

// Throws ErrorCode::NonFinite naming `what` and the first bad index.
void require_finite(const float* x, std::size_t n, const std::string& what);
void require_finite(const double* x, std::size_t n, const std::string& what);

}  // namespace nnscope
