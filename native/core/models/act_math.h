// nnscope core (models, internal): the float32 exp / tanh / sigmoid loops, included
// once by each ISA tier's translation unit (see act_kernels.h). Everything here
// has internal linkage and uses only built-ins. The forms are branch-free so the
// compiler vectorises them at the tier's width:
//   exp      x = n·ln2 + r, |r| ≤ ln2/2, degree-6 polynomial (Cephes expf), 2^n by
//            exponent bits; x clamped to [−87.3, 88.3] so 2^n stays normal.
//   tanh     odd polynomial below |x| = 0.625 (Cephes tanhf), 1 − 2/(e^{2|x|} + 1)
//            above; a few ulp from the libm value.
//   sigmoid  1/(1 + e^−x).
// No include guard on purpose: one inclusion per translation unit.

// GCC will not if-convert the clamps and selects while it must preserve FP
// exception flags (-ftrapping-math, its default), so the loops would stay scalar.
// Nothing here reads the flags; the values computed are the same.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

namespace {

inline float am_exp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  // round(x·log2 e) by the 1.5·2^23 trick (exact under round-to-nearest)
  float n = x * 1.44269504088896341f + 12582912.0f;
  n -= 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  const float y = p * r * r + r + 1.0f;
  const int bits = (static_cast<int>(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

inline float am_tanh(float x) {
  const float ax = __builtin_fabsf(x);
  const float e = am_exp(2.0f * (ax > 9.5f ? 9.5f : ax));
  const float big = 1.0f - 2.0f / (e + 1.0f);
  const float z = x * x;
  float p = -5.70498872745E-3f;
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  const float small = p * z * ax + ax;
  const float r = ax < 0.625f ? small : big;
  return x < 0.0f ? -r : r;
}

void am_exp_loop(std::size_t n, const float* __restrict x, float* __restrict y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = am_exp(x[i]);
}
void am_tanh_loop(std::size_t n, const float* __restrict x, float* __restrict y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = am_tanh(x[i]);
}
void am_sigmoid_loop(std::size_t n, const float* __restrict x, float* __restrict y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + am_exp(-x[i]));
}

}  // namespace
