// nnscope core, topology: the kNN distance kernel, AVX2/FMA tier (compiled with
// -mavx2 -mfma). Contract in knn.h (detail::KnnKernel): four candidates per vector,
// the same fma chain over the dims as the generic tier, so the bits agree.
#include "topology/knn.h"

#if defined(NNSCOPE_X86) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace nnscope::topology::detail {
namespace {

void distances(const double* q, const double* soa, std::size_t ld, std::size_t dim, std::size_t j0, std::size_t j1,
               double* out) {
  for (std::size_t j = j0; j < j1; j += 8) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (std::size_t d = 0; d < dim; ++d) {
      const __m256d qd = _mm256_set1_pd(q[d]);
      const double* p = soa + d * ld + j;
      const __m256d a = _mm256_sub_pd(qd, _mm256_loadu_pd(p));
      const __m256d b = _mm256_sub_pd(qd, _mm256_loadu_pd(p + 4));
      s0 = _mm256_fmadd_pd(a, a, s0);
      s1 = _mm256_fmadd_pd(b, b, s1);
    }
    _mm256_storeu_pd(out + (j - j0), s0);
    _mm256_storeu_pd(out + (j - j0) + 4, s1);
  }
}

const KnnKernel kKernel = {"avx2", distances};

}  // namespace

const KnnKernel* knn_kernel_avx2() { return &kKernel; }

}  // namespace nnscope::topology::detail

#else
namespace nnscope::topology::detail {
const KnnKernel* knn_kernel_avx2() { return nullptr; }
}  // namespace nnscope::topology::detail
#endif
