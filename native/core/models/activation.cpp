#include "models/activation.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "base/cpu.h"
#include "models/act_kernels.h"
#include "models/act_math.h"

namespace nnscope::models::detail {
namespace {

const ActKernel kGeneric = {"generic", am_exp_loop, am_tanh_loop, am_sigmoid_loop};

template <typename T>
inline T t_sigmoid(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return 1.0f / (1.0f + am_exp(-x));
  } else {
    // stable in both tails
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace

template <typename T>
void act_forward(Activation act, std::size_t rows, std::size_t n, T* __restrict z, const T* __restrict bias,
                 T* __restrict a, T* __restrict s1, T* __restrict s2, T* __restrict s3) {
  const std::size_t len = rows * n;
  if (bias)
    for (std::size_t i = 0; i < rows; ++i) {
      T* zr = z + i * n;
      for (std::size_t j = 0; j < n; ++j) zr[j] += bias[j];
    }
  switch (act) {
    case Activation::Identity:
      if (a)
        for (std::size_t i = 0; i < len; ++i) a[i] = z[i];
      if (s1)
        for (std::size_t i = 0; i < len; ++i) s1[i] = T(1);
      if (s2)
        for (std::size_t i = 0; i < len; ++i) s2[i] = T(0);
      if (s3)
        for (std::size_t i = 0; i < len; ++i) s3[i] = T(0);
      return;
    case Activation::Relu:
      if (a)
        for (std::size_t i = 0; i < len; ++i) a[i] = z[i] > T(0) ? z[i] : T(0);
      if (s1)
        for (std::size_t i = 0; i < len; ++i) s1[i] = z[i] > T(0) ? T(1) : T(0);
      if (s2)
        for (std::size_t i = 0; i < len; ++i) s2[i] = T(0);
      if (s3)
        for (std::size_t i = 0; i < len; ++i) s3[i] = T(0);
      return;
    case Activation::Tanh:
      if constexpr (std::is_same_v<T, float>)
        act_kernel().tanh(len, z, a);
      else
        for (std::size_t i = 0; i < len; ++i) a[i] = std::tanh(z[i]);
      if (s1 || s2 || s3)
        for (std::size_t i = 0; i < len; ++i) {
          const T t = a[i], d1 = T(1) - t * t;
          if (s1) s1[i] = d1;
          if (s2) s2[i] = T(-2) * t * d1;
          if (s3) s3[i] = T(-2) * d1 * (d1 - T(2) * t * t);
        }
      return;
    case Activation::Sigmoid:
      if constexpr (std::is_same_v<T, float>)
        act_kernel().sigmoid(len, z, a);
      else
        for (std::size_t i = 0; i < len; ++i) a[i] = t_sigmoid(z[i]);
      if (s1 || s2 || s3)
        for (std::size_t i = 0; i < len; ++i) {
          const T s = a[i], d1 = s * (T(1) - s), u = T(1) - T(2) * s;
          if (s1) s1[i] = d1;
          if (s2) s2[i] = d1 * u;
          if (s3) s3[i] = d1 * (u * u - T(2) * d1);
        }
      return;
    case Activation::Softplus:
      for (std::size_t i = 0; i < len; ++i) {
        const T x = z[i];
        a[i] = (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
      }
      if (s1 || s2 || s3)
        for (std::size_t i = 0; i < len; ++i) {
          const T s = t_sigmoid(z[i]), d = s * (T(1) - s);
          if (s1) s1[i] = s;
          if (s2) s2[i] = d;
          if (s3) s3[i] = d * (T(1) - T(2) * s);
        }
      return;
    case Activation::Gelu:
      for (std::size_t i = 0; i < len; ++i) {
        const T x = z[i];
        const T Phi = T(0.5) * std::erfc(-x * T(kInvSqrt2));
        a[i] = x * Phi;
        if (s1 || s2 || s3) {
          const T phi = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
          if (s1) s1[i] = Phi + x * phi;
          if (s2) s2[i] = phi * (T(2) - x * x);
          if (s3) s3[i] = phi * (x * x * x - T(4) * x);
        }
      }
      return;
  }
}

template void act_forward<float>(Activation, std::size_t, std::size_t, float*, const float*, float*, float*, float*,
                                 float*);
template void act_forward<double>(Activation, std::size_t, std::size_t, double*, const double*, double*, double*,
                                  double*, double*);

ActDerivs act_eval(Activation act, double z) {
  double a = 0, s1 = 0, s2 = 0, s3 = 0;
  double zz = z;
  act_forward<double>(act, 1, 1, &zz, nullptr, &a, &s1, &s2, &s3);
  return {a, s1, s2, s3};
}

void vexp(std::size_t n, const float* x, float* y) { act_kernel().exp(n, x, y); }
void vtanh(std::size_t n, const float* x, float* y) { act_kernel().tanh(n, x, y); }

const ActKernel& act_kernel_generic() { return kGeneric; }

const ActKernel& act_kernel() { return select_kernel(act_kernel_avx512, act_kernel_avx2, kGeneric); }

}  // namespace nnscope::models::detail
