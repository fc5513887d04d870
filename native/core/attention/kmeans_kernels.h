// nnscope core, attention internals: per-ISA kernel table of the K-means
// assignment step (kmeans.cpp) and of the centroid-score softmax (squeezed.cpp).
// Not a public header.
//
// The ISA files (kmeans_avx2.cpp, kmeans_avx512.cpp) include only this header and
// <immintrin.h>, define everything else with internal linkage and use no
// standard-library templates, so no AVX-compiled inline function can be picked
// by the linker for baseline code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nnscope::attention::detail {

struct KmeansKernel {
  const char* name;
  // For each row r < rows: v_j = g[r·ldg + j] + cn[j] (one float32 add, no FMA);
  // label[r] = the lowest j with the minimum v_j, best[r] = that minimum,
  // second[r] = the minimum over j ≠ label[r] (+Inf when k = 1). The result is
  // the same on every tier (exact comparisons of the same values).
  void (*argmin_rows)(std::size_t rows, std::size_t k, const float* g, std::size_t ldg, const float* cn,
                      std::int32_t* label, float* best, float* second);
  // Centroid-score row: m = max_j l[j]; l[j] ← exp(l[j] − m) (float32, a few ulp;
  // arguments below −87 give ~1e-38, never 0 or NaN); returns Z = Σ_j w[j]·l[j]
  // accumulated in float64 (fixed order per tier). n ≥ 1, l finite.
  double (*exp_shift_sum)(std::size_t n, float* l, const double* w);
};

const KmeansKernel& kmeans_kernel();  // the active tier
const KmeansKernel* kmeans_kernel_avx2();
const KmeansKernel* kmeans_kernel_avx512();
const KmeansKernel& kmeans_kernel_generic();

}  // namespace nnscope::attention::detail
