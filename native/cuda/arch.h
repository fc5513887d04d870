// nnscope CUDA backend: the compiled GPU architectures (CMAKE_CUDA_ARCHITECTURES,
// passed to the build as NNSCOPE_CUDA_ARCHS) and whether they can run on a device.
// Plain C++, no CUDA headers; the tests check it without a GPU.
#pragma once
#include <string>
#include <vector>

namespace nnscope::cuda {

struct ArchTarget {
  int major = 0, minor = 0;  // compute capability of the target
  char variant = 0;          // 0, 'a' (arch-specific, e.g. sm_90a) or 'f' (family-specific)
  bool sass = false;         // machine code (sm_XY)
  bool ptx = false;          // PTX (compute_XY), JIT-compiled by the driver
};

// Parses a CMake architecture list such as "80-real;90-real;90-virtual" (entries
// separated by ';', ',' or spaces; "NN" alone means both SASS and PTX). Returns false
// when an entry has another form ("native", "all", "OFF", ...).
bool parse_architectures(const std::string& list, std::vector<ArchTarget>* out);

// "sm_80 sm_90 compute_90" for the list above; the list verbatim when it does not parse.
std::string describe_architectures(const std::string& list);

// Whether a build for `list` holds code for a device of compute capability
// major.minor: SASS sm_XY runs on X.y for y ≥ Y (sm_XYa only on X.Y), PTX compute_XY
// is JIT-compiled for any X'.Y' ≥ X.Y (compute_XYa only for X.Y). An unparsable list
// answers true: the runtime check of the kernel image (cudaFuncGetAttributes) decides.
bool architectures_support(const std::string& list, int major, int minor);

// The list this library was compiled with (NNSCOPE_CUDA_ARCHS, empty if unknown).
const char* compiled_architectures() noexcept;

}  // namespace nnscope::cuda
