// Tests of the native model engine: MLPs and the convection PINN — loss, gradient
// and HVP against float64 finite differences and the assembled Hessian, float32
// against float64, determinism across thread counts, the batched landscape loss
// against the one-point loss, cancellation and argument validation.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/cpu.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "models/activation.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/pinn.h"

using namespace nnscope;
using namespace nnscope::models;

namespace {

constexpr double kPi = 3.14159265358979323846;

double norm(const std::vector<double>& a) {
  double s = 0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return norm(d) / std::max(norm(b), 1e-300);
}
std::vector<double> to64(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

std::vector<double> gauss64(std::size_t n, uint64_t seed, double scale = 1.0) {
  std::vector<double> v(n);
  Rng(seed, 7).gaussian(v.data(), n);
  for (double& x : v) x *= scale;
  return v;
}

// 5-point central difference of f at 0 with step h (error O(h⁴)).
double fd5(const std::function<double(double)>& f, double h) {
  return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h);
}

// Gradient of loss64 by 5-point differences, coordinate by coordinate.
template <typename Obj>
std::vector<double> fd_grad(Obj& obj, const std::vector<double>& theta, double h) {
  std::vector<double> g(theta.size()), t = theta;
  for (std::size_t i = 0; i < theta.size(); ++i) {
    g[i] = fd5(
        [&](double s) {
          t[i] = theta[i] + s;
          const double l = obj.loss64(t.data());
          t[i] = theta[i];
          return l;
        },
        h);
  }
  return g;
}

// Directional derivative of loss64 along v.
template <typename Obj>
double fd_dir(Obj& obj, const std::vector<double>& theta, const std::vector<double>& v, double h) {
  std::vector<double> t(theta.size());
  return fd5(
      [&](double s) {
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = theta[i] + s * v[i];
        return obj.loss64(t.data());
      },
      h);
}

// H·v by 5-point differences of the float64 gradient along v.
template <typename Obj>
std::vector<double> fd_hvp(Obj& obj, const std::vector<double>& theta, const std::vector<double>& v, double h) {
  const std::size_t P = theta.size();
  std::vector<double> out(P, 0.0), t(P), g(P);
  const double c[4] = {-2, -1, 1, 2}, w[4] = {1, -8, 8, -1};
  for (int s = 0; s < 4; ++s) {
    for (std::size_t i = 0; i < P; ++i) t[i] = theta[i] + c[s] * h * v[i];
    obj.loss_grad64(t.data(), g.data(), {});
    for (std::size_t i = 0; i < P; ++i) out[i] += w[s] * g[i] / (12 * h);
  }
  return out;
}

// Parameters with some life in them: Xavier weights ×1.3 and N(0, 0.3²) biases.
std::vector<double> lively_params(const std::vector<std::size_t>& widths, Activation act, uint64_t seed) {
  std::vector<float> th(mlp_num_params(widths));
  init_params(widths, act, seed, th.data(), InitKind::XavierNormal);
  std::vector<double> t = to64(th);
  const ParamLayout lay = mlp_layout(widths);
  const std::vector<double> noise = gauss64(t.size(), seed + 99, 0.3);
  for (const auto& e : lay.entries)
    for (std::size_t i = 0; i < e.size(); ++i) {
      double& x = t[e.offset + i];
      x = e.shape.size() == 2 ? 1.3 * x : noise[e.offset + i];
    }
  // round to float so both paths see the same θ
  for (double& x : t) x = double(float(x));
  return t;
}

// n samples, d_in inputs; float targets (d_out) for MSE (Gaussian) and BCE
// (uniform soft labels), int labels for CE.
OwnedDataset small_data(std::size_t n, std::size_t d_in, std::size_t d_out, LossKind loss, uint64_t seed) {
  OwnedDataset d;
  d.n = n;
  d.d_in = d_in;
  d.d_out = d_out;
  d.inputs.resize(n * d_in);
  Rng(seed, 1).gaussian(d.inputs.data(), d.inputs.size());
  if (loss == LossKind::SoftmaxCrossEntropy) {
    d.labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) d.labels[i] = int32_t(Rng(seed, 2).below_at(i, d_out));
  } else {
    d.targets.resize(n * d_out);
    if (loss == LossKind::Mse)
      Rng(seed, 3).gaussian(d.targets.data(), d.targets.size());
    else
      Rng(seed, 3).uniform(d.targets.data(), d.targets.size());
  }
  return d;
}

std::vector<float> to32(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Gradient and HVP of every loss with this activation (hidden, and as the output
// activation for MSE) against float64 central differences; float32 against float64.
void check_mlp_fd(Activation act) {
  struct Case {
    LossKind loss;
    Activation out;
    std::size_t d_out;
  };
  const Case cases[] = {{LossKind::Mse, Activation::Identity, 2},
                        {LossKind::Mse, act, 2},
                        {LossKind::SoftmaxCrossEntropy, Activation::Identity, 3},
                        {LossKind::BinaryCrossEntropy, Activation::Identity, 2}};
  uint64_t seed = 11;
  for (const Case& c : cases) {
    ++seed;
    MlpSpec spec;
    spec.widths = {3, 6, 5, c.d_out};
    spec.hidden = act;
    spec.output = c.out;
    spec.loss = c.loss;
    spec.weight_decay = 0.01;
    const OwnedDataset data = small_data(16, 3, c.d_out, c.loss, seed);
    MlpObjective obj(spec, data.view());
    const std::vector<double> th = lively_params(spec.widths, act, seed);
    const std::size_t P = obj.dim();
    EXPECT_EQ(P, th.size());
    const double h = 1e-5;
    std::vector<double> g(P);
    const double L = obj.loss_grad64(th.data(), g.data(), {});
    EXPECT_NEAR(L, obj.loss64(th.data()), 1e-14 * std::fabs(L));
    const std::vector<double> gfd = fd_grad(obj, th, h);
    const double eg = rel_err(g, gfd);
    if (!(eg <= 1e-6))
      throw test::Failure(std::string("gradient vs FD, act ") + activation_name(act) + " loss " +
                          loss_name(c.loss) + ": rel err " + std::to_string(eg));
    const std::vector<double> v = gauss64(P, seed + 5);
    std::vector<double> hv(P);
    obj.hvp64(th.data(), v.data(), hv.data(), {});
    const std::vector<double> hfd = fd_hvp(obj, th, v, h);
    const double eh = rel_err(hv, hfd);
    if (!(eh <= 1e-6))
      throw test::Failure(std::string("HVP vs FD, act ") + activation_name(act) + " loss " + loss_name(c.loss) +
                          ": rel err " + std::to_string(eh));
    // float32 paths against float64
    const std::vector<float> th32 = to32(th), v32 = to32(v);
    std::vector<float> g32(P), hv32(P);
    const double L32 = obj.loss_grad(th32.data(), g32.data(), {});
    EXPECT_NEAR(L32, L, 1e-5 * std::fabs(L));
    EXPECT_NEAR(obj.loss(th32.data(), {}), L32, 1e-12 * std::fabs(L));
    EXPECT(rel_err(to64(g32), g) <= 1e-3);
    obj.hvp(th32.data(), v32.data(), hv32.data(), {});
    EXPECT(rel_err(to64(hv32), hv) <= 1e-3);
  }
}

std::vector<float> random_dirs(std::size_t k, std::size_t P, uint64_t seed, double scale) {
  std::vector<float> d(k * P);
  Rng(seed, 5).gaussian(d.data(), d.size());
  for (float& x : d) x = float(x * scale);
  return d;
}

// θ₀ + Σ_j a_j d_j exactly as loss_grid forms it (float, j in order).
std::vector<float> point(const std::vector<float>& th0, const std::vector<float>& dirs, const float* a, std::size_t k) {
  const std::size_t P = th0.size();
  std::vector<float> t(P);
  for (std::size_t p = 0; p < P; ++p) {
    float s = th0[p];
    for (std::size_t j = 0; j < k; ++j) s += a[j] * dirs[j * P + p];
    t[p] = s;
  }
  return t;
}

template <typename Obj>
void check_grid(Obj& obj, const std::vector<float>& th0, std::size_t k, uint64_t seed, std::size_t n_points,
                double scale) {
  const std::size_t P = obj.dim();
  const std::vector<float> dirs = random_dirs(k, P, seed, scale);
  std::vector<float> coords(n_points * k);
  Rng(seed, 6).uniform(coords.data(), coords.size());
  for (float& c : coords) c = 2 * c - 1;
  std::vector<double> out(n_points, -1.0);
  obj.loss_grid(th0.data(), dirs.data(), k, coords.data(), n_points, out.data(), {});
  for (std::size_t i = 0; i < n_points; ++i) {
    const std::vector<float> t = point(th0, dirs, coords.data() + i * k, k);
    const double l = obj.loss(t.data(), {});
    if (!(std::fabs(out[i] - l) <= 2e-6 * std::fabs(l) + 1e-12))
      throw test::Failure("loss_grid row " + std::to_string(i) + " (k=" + std::to_string(k) +
                          "): " + std::to_string(out[i]) + " vs loss() " + std::to_string(l));
  }
}

PinnSpec small_pinn(Activation act = Activation::Tanh) {
  PinnSpec s;
  s.widths = {2, 8, 8, 1};
  s.activation = act;
  s.x_grid = 16;
  s.t_grid = 10;
  s.n_collocation = 20;
  s.beta = 3.0;
  s.lambda = 0.7;
  s.seed = 4;
  return s;
}

}  // namespace

// ---------------------------------------------------------------- activations
NNSCOPE_TEST(activation_derivatives_match_differences) {
  for (Activation a : {Activation::Identity, Activation::Tanh, Activation::Relu, Activation::Gelu,
                       Activation::Softplus, Activation::Sigmoid}) {
    for (double z : {-3.1, -1.2, -0.4, 0.3, 0.9, 2.5}) {
      const detail::ActDerivs d = detail::act_eval(a, z);
      const double h = 1e-4;
      auto f = [&](int order) {
        return [&, order](double s) {
          const auto e = detail::act_eval(a, z + s);
          return order == 0 ? e.f : order == 1 ? e.d1 : e.d2;
        };
      };
      EXPECT_NEAR(fd5(f(0), h), d.d1, 1e-9);
      EXPECT_NEAR(fd5(f(1), h), d.d2, 1e-9);
      EXPECT_NEAR(fd5(f(2), h), d.d3, 1e-9);
    }
  }
  // closed forms at a point
  const double z = 0.7;
  EXPECT_NEAR(detail::act_eval(Activation::Tanh, z).f, std::tanh(z), 1e-15);
  EXPECT_NEAR(detail::act_eval(Activation::Gelu, z).f, z * 0.5 * (1 + std::erf(z / std::sqrt(2.0))), 1e-15);
  EXPECT_NEAR(detail::act_eval(Activation::Softplus, z).f, std::log1p(std::exp(z)), 1e-15);
  EXPECT_NEAR(detail::act_eval(Activation::Sigmoid, z).f, 1 / (1 + std::exp(-z)), 1e-15);
  EXPECT_EQ(detail::act_eval(Activation::Relu, -z).f, 0.0);
}

NNSCOPE_TEST(fast_float_exp_and_tanh_are_accurate) {
  // every ISA tier this CPU has (generic, AVX2, AVX-512)
  const Isa top = cpu_isa();
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(top)) continue;
    set_isa_limit(isa);
    const std::size_t n = 200001;
    std::vector<float> x(n), y(n), e(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = float(-20.0 + 40.0 * double(i) / double(n - 1));
    detail::vtanh(n, x.data(), y.data());
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = std::tanh(double(x[i]));
      worst = std::max(worst, std::fabs(y[i] - r) / std::max(std::fabs(r), 1e-30));
    }
    EXPECT(worst <= 4e-7);
    for (std::size_t i = 0; i < n; ++i) x[i] = float(-80.0 + 160.0 * double(i) / double(n - 1));
    detail::vexp(n, x.data(), e.data());
    worst = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = std::exp(double(x[i]));
      worst = std::max(worst, std::fabs(e[i] - r) / r);
    }
    EXPECT(worst <= 4e-7);
    // odd, saturating, exact at 0; sigmoid through the activation kernel
    float z[3] = {0.0f, 30.0f, -30.0f}, t[3];
    detail::vtanh(3, z, t);
    EXPECT_EQ(t[0], 0.0f);
    EXPECT_EQ(t[1], 1.0f);
    EXPECT_EQ(t[2], -1.0f);
    float zs[4] = {-3.0f, -0.5f, 0.25f, 4.0f}, s[4];
    detail::act_forward<float>(Activation::Sigmoid, 1, 4, zs, nullptr, s, nullptr, nullptr, nullptr);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(s[i], 1 / (1 + std::exp(-double(zs[i]))), 3e-7 * s[i]);
  }
  set_isa_limit(Isa::Avx512);
}

// ---------------------------------------------------------------- MLP derivatives
NNSCOPE_TEST(mlp_fd_identity) { check_mlp_fd(Activation::Identity); }
NNSCOPE_TEST(mlp_fd_tanh) { check_mlp_fd(Activation::Tanh); }
NNSCOPE_TEST(mlp_fd_relu) { check_mlp_fd(Activation::Relu); }
NNSCOPE_TEST(mlp_fd_gelu) { check_mlp_fd(Activation::Gelu); }
NNSCOPE_TEST(mlp_fd_softplus) { check_mlp_fd(Activation::Softplus); }
NNSCOPE_TEST(mlp_fd_sigmoid) { check_mlp_fd(Activation::Sigmoid); }

NNSCOPE_TEST(mlp_full_hessian_symmetric_and_consistent) {
  for (int variant = 0; variant < 3; ++variant) {
    MlpSpec spec;
    spec.widths = {2, 5, 4, 3};
    spec.hidden = variant == 0 ? Activation::Tanh : variant == 1 ? Activation::Gelu : Activation::Relu;
    spec.loss = variant == 1 ? LossKind::Mse : LossKind::SoftmaxCrossEntropy;
    const OwnedDataset data = small_data(24, 2, 3, spec.loss, 70 + variant);
    MlpObjective obj(spec, data.view());
    const std::size_t P = obj.dim();
    EXPECT_EQ(P, std::size_t(2 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3));
    const std::vector<double> th = lively_params(spec.widths, spec.hidden, 80 + variant);
    std::vector<double> H(P * P), e(P, 0.0), col(P);
    for (std::size_t j = 0; j < P; ++j) {
      e[j] = 1.0;
      obj.hvp64(th.data(), e.data(), col.data(), {});
      e[j] = 0.0;
      for (std::size_t i = 0; i < P; ++i) H[i * P + j] = col[i];
    }
    double hmax = 0, asym = 0;
    for (std::size_t i = 0; i < P; ++i)
      for (std::size_t j = 0; j < P; ++j) {
        hmax = std::max(hmax, std::fabs(H[i * P + j]));
        asym = std::max(asym, std::fabs(H[i * P + j] - H[j * P + i]));
      }
    EXPECT(hmax > 1e-3);
    EXPECT(asym <= 1e-13 * hmax);
    const std::vector<double> v = gauss64(P, 90 + variant);
    std::vector<double> hv(P), Hv(P, 0.0);
    obj.hvp64(th.data(), v.data(), hv.data(), {});
    for (std::size_t i = 0; i < P; ++i)
      for (std::size_t j = 0; j < P; ++j) Hv[i] += H[i * P + j] * v[j];
    EXPECT(rel_err(hv, Hv) <= 1e-13);
    // the Hessian column of a parameter against differences of the gradient
    const std::vector<double> hfd = fd_hvp(obj, th, v, 1e-5);
    EXPECT(rel_err(hv, hfd) <= 1e-6);
    // weight decay adds wd·v
    MlpSpec spec_wd = spec;
    spec_wd.weight_decay = 0.37;
    MlpObjective obj_wd(spec_wd, data.view());
    std::vector<double> hv_wd(P);
    obj_wd.hvp64(th.data(), v.data(), hv_wd.data(), {});
    for (std::size_t i = 0; i < P; ++i) EXPECT_NEAR(hv_wd[i], hv[i] + 0.37 * v[i], 1e-13 * (1 + std::fabs(hv[i])));
    std::vector<double> g(P), g_wd(P);
    const double l = obj.loss_grad64(th.data(), g.data(), {});
    const double l_wd = obj_wd.loss_grad64(th.data(), g_wd.data(), {});
    double sq = 0;
    for (double x : th) sq += x * x;
    EXPECT_NEAR(l_wd, l + 0.5 * 0.37 * sq, 1e-13 * l_wd);
    for (std::size_t i = 0; i < P; ++i) EXPECT_NEAR(g_wd[i], g[i] + 0.37 * th[i], 1e-14 * (1 + std::fabs(g[i])));
  }
}

NNSCOPE_TEST(mlp_relu_mse_hessian_is_gauss_newton_in_last_layer) {
  // relu hidden, identity output, MSE: the Hessian block of the last layer's
  // weights is (2/(n·d_out))·Σ_i a_i a_iᵀ ⊗ I (σ'' = 0 does not break anything).
  MlpSpec spec;
  spec.widths = {3, 4, 2};
  spec.hidden = Activation::Relu;
  const OwnedDataset data = small_data(10, 3, 2, LossKind::Mse, 5);
  MlpObjective obj(spec, data.view());
  const std::vector<double> th = lively_params(spec.widths, spec.hidden, 6);
  const ParamLayout& lay = obj.layout();
  const ParamEntry* w1 = lay.find("layer1.weight");
  const ParamEntry* w0 = lay.find("layer0.weight");
  const ParamEntry* b0 = lay.find("layer0.bias");
  EXPECT(w1 && w0 && b0);
  // hidden activations in double
  std::vector<double> A(10 * 4);
  for (std::size_t i = 0; i < 10; ++i)
    for (std::size_t j = 0; j < 4; ++j) {
      double z = th[b0->offset + j];
      for (std::size_t q = 0; q < 3; ++q) z += th[w0->offset + j * 3 + q] * double(data.inputs[i * 3 + q]);
      A[i * 4 + j] = z > 0 ? z : 0;
    }
  const std::size_t P = obj.dim();
  std::vector<double> e(P, 0.0), col(P);
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t c = 0; c < 4; ++c) {
      const std::size_t j = w1->offset + r * 4 + c;
      e[j] = 1;
      obj.hvp64(th.data(), e.data(), col.data(), {});
      e[j] = 0;
      for (std::size_t r2 = 0; r2 < 2; ++r2)
        for (std::size_t c2 = 0; c2 < 4; ++c2) {
          double expect = 0;
          if (r2 == r)
            for (std::size_t i = 0; i < 10; ++i) expect += A[i * 4 + c] * A[i * 4 + c2];
          expect *= 2.0 / 20.0;
          EXPECT_NEAR(col[w1->offset + r2 * 4 + c2], expect, 1e-13 * (1 + std::fabs(expect)));
        }
    }
}

NNSCOPE_TEST(mlp_subset_equals_gathered_dataset) {
  MlpSpec spec;
  spec.widths = {3, 7, 3};
  spec.loss = LossKind::SoftmaxCrossEntropy;
  const OwnedDataset data = small_data(40, 3, 3, spec.loss, 8);
  const std::vector<std::size_t> idx = {5, 0, 39, 17, 17, 22};
  MlpObjective sub(spec, data.view(), idx);
  EXPECT_EQ(sub.batch_size(), idx.size());
  OwnedDataset g;
  g.n = idx.size();
  g.d_in = 3;
  g.d_out = 3;
  for (std::size_t i : idx) {
    g.inputs.insert(g.inputs.end(), data.inputs.begin() + i * 3, data.inputs.begin() + (i + 1) * 3);
    g.labels.push_back(data.labels[i]);
  }
  MlpObjective full(spec, g.view());
  const std::vector<float> th = mlp_init(spec, 3);
  std::vector<float> g1(sub.dim()), g2(sub.dim());
  EXPECT_EQ(sub.loss_grad(th.data(), g1.data(), {}), full.loss_grad(th.data(), g2.data(), {}));
  EXPECT(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)) == 0);
}

NNSCOPE_TEST(mlp_predict_matches_double_forward) {
  MlpSpec spec;
  spec.widths = {2, 3, 2};
  spec.hidden = Activation::Tanh;
  spec.output = Activation::Sigmoid;
  const std::vector<float> th = mlp_init(spec, 21);
  const float x[4] = {0.3f, -1.2f, 2.0f, 0.5f};
  float out[4];
  mlp_predict(spec, th.data(), x, 2, out);
  for (int i = 0; i < 2; ++i) {
    double h[3];
    for (int j = 0; j < 3; ++j) {
      double z = th[6 + j];
      for (int q = 0; q < 2; ++q) z += double(th[j * 2 + q]) * x[i * 2 + q];
      h[j] = std::tanh(z);
    }
    for (int o = 0; o < 2; ++o) {
      double z = th[9 + 6 + o];
      for (int j = 0; j < 3; ++j) z += double(th[9 + o * 3 + j]) * h[j];
      EXPECT_NEAR(out[i * 2 + o], 1 / (1 + std::exp(-z)), 2e-6);
    }
  }
}

// ---------------------------------------------------------------- PINN
NNSCOPE_TEST(pinn_default_points_follow_reference) {
  PinnSpec s;
  const PinnPoints p = pinn_points(s);
  EXPECT_EQ(p.ic_x.size(), std::size_t(256));
  EXPECT_EQ(p.bc_t.size(), std::size_t(100));
  EXPECT_EQ(p.f_x.size(), std::size_t(100));
  EXPECT_EQ(p.ic_x[0], 0.0);
  EXPECT_NEAR(p.ic_x[255], 2 * kPi * 255 / 256, 1e-15);
  EXPECT_EQ(p.bc_t.front(), 0.0);
  EXPECT_EQ(p.bc_t.back(), 1.0);
  std::vector<std::pair<long, long>> seen;
  for (std::size_t i = 0; i < 100; ++i) {
    const double ix = p.f_x[i] / (2 * kPi) * 256, it = p.f_t[i] * 99;
    EXPECT_NEAR(ix, std::round(ix), 1e-9);
    EXPECT_NEAR(it, std::round(it), 1e-9);
    EXPECT(std::round(ix) >= 1 && std::round(ix) <= 255);
    EXPECT(std::round(it) >= 1 && std::round(it) <= 99);
    seen.emplace_back(std::lround(ix), std::lround(it));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT(std::unique(seen.begin(), seen.end()) == seen.end());  // distinct
  const PinnPoints p2 = pinn_points(s);
  EXPECT(p2.f_x == p.f_x && p2.f_t == p.f_t);
  s.seed = 1;
  EXPECT(pinn_points(s).f_x != p.f_x);
  s.collocation_sampling = PinnSampling::Random;
  s.boundary_sampling = PinnSampling::Random;
  s.n_initial = 50;
  s.n_boundary = 30;
  s.n_collocation = 1000;
  const PinnPoints r = pinn_points(s);
  EXPECT_EQ(r.ic_x.size(), std::size_t(50));
  EXPECT_EQ(r.bc_t.size(), std::size_t(30));
  for (std::size_t i = 0; i < 1000; ++i) EXPECT(r.f_x[i] > 0 && r.f_x[i] < 2 * kPi && r.f_t[i] > 0 && r.f_t[i] < 1);
}

NNSCOPE_TEST(pinn_linear_network_known_loss) {
  // widths 2→1: u = a·x + c·t + b, so u_x = a, u_t = c and
  // L = mean (a x_i + b − sin x_i)² + (2π a)² + λ (c + β a)².
  PinnSpec s;
  s.widths = {2, 1};
  s.beta = 5.0;
  s.lambda = 2.0;
  PinnObjective obj(s);
  const double a = 0.3, c = -0.7, b = 0.1;
  const double th[3] = {a, c, b};
  double ic = 0;
  for (double x : obj.points().ic_x) ic += (a * x + b - std::sin(x)) * (a * x + b - std::sin(x));
  ic /= double(obj.points().ic_x.size());
  const double expect = ic + 4 * kPi * kPi * a * a + 2.0 * (c + 5.0 * a) * (c + 5.0 * a);
  EXPECT_NEAR(obj.loss64(th), expect, 1e-13 * expect);
  const float th32[3] = {float(a), float(c), float(b)};
  EXPECT_NEAR(obj.loss(th32, {}), expect, 1e-5 * expect);
  const auto terms = obj.loss_terms(th32);
  EXPECT_NEAR(terms.boundary, 4 * kPi * kPi * a * a, 1e-5);
  EXPECT_NEAR(terms.residual, 2.0 * (c + 5.0 * a) * (c + 5.0 * a), 1e-5);
  EXPECT_NEAR(terms.initial + terms.boundary + terms.residual, obj.loss(th32, {}), 1e-9);
  // quadratic in θ: the Hessian is constant; H·e_c = ∂²L/∂c∂θ = 2λ·(β, 1, 0)
  const double e[3] = {0, 1, 0};
  double hv[3];
  obj.hvp64(th, e, hv, {});
  EXPECT_NEAR(hv[0], 2 * 2.0 * 5.0, 1e-12);
  EXPECT_NEAR(hv[1], 2 * 2.0, 1e-12);
  EXPECT_NEAR(hv[2], 0.0, 1e-12);
}

NNSCOPE_TEST(pinn_input_tangents_match_differences) {
  for (Activation act : {Activation::Tanh, Activation::Gelu, Activation::Sigmoid}) {
    PinnSpec s;
    s.widths = {2, 12, 9, 1};
    s.activation = act;
    const std::vector<double> th = lively_params(s.widths, act, 31);
    const std::vector<double> x = {0.1, 1.7, 3.3, 5.9}, t = {0.0, 0.25, 0.6, 0.95};
    std::vector<double> u(4), ux(4), ut(4), up(4), um(4);
    pinn_predict64(s, th.data(), x.data(), t.data(), 4, u.data(), ux.data(), ut.data());
    const double h = 1e-3;
    for (std::size_t i = 0; i < 4; ++i) {
      auto at = [&](double dx, double dt) {
        double xx = x[i] + dx, tt = t[i] + dt, r;
        pinn_predict64(s, th.data(), &xx, &tt, 1, &r);
        return r;
      };
      EXPECT_NEAR(ux[i], fd5([&](double e) { return at(e, 0); }, h), 1e-10);
      EXPECT_NEAR(ut[i], fd5([&](double e) { return at(0, e); }, h), 1e-10);
    }
    const std::vector<float> th32 = to32(th);
    std::vector<float> u32(4), ux32(4), ut32(4);
    pinn_predict(s, th32.data(), x.data(), t.data(), 4, u32.data(), ux32.data(), ut32.data());
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(u32[i], u[i], 1e-5);
      EXPECT_NEAR(ux32[i], ux[i], 1e-5);
      EXPECT_NEAR(ut32[i], ut[i], 1e-5);
    }
  }
}

NNSCOPE_TEST(pinn_gradient_and_hvp_match_differences) {
  for (Activation act : {Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Softplus}) {
    const PinnSpec s = small_pinn(act);
    PinnObjective obj(s);
    const std::vector<double> th = lively_params(s.widths, act, 41);
    const std::size_t P = obj.dim();
    std::vector<double> g(P);
    obj.loss_grad64(th.data(), g.data(), {});
    const std::vector<double> gfd = fd_grad(obj, th, 1e-5);
    const double eg = rel_err(g, gfd);
    if (!(eg <= 1e-6)) throw test::Failure(std::string("PINN grad ") + activation_name(act) + " " + std::to_string(eg));
    const std::vector<double> v = gauss64(P, 42);
    std::vector<double> hv(P);
    obj.hvp64(th.data(), v.data(), hv.data(), {});
    const double eh = rel_err(hv, fd_hvp(obj, th, v, 1e-5));
    if (!(eh <= 1e-6)) throw test::Failure(std::string("PINN hvp ") + activation_name(act) + " " + std::to_string(eh));
    const std::vector<float> th32 = to32(th), v32 = to32(v);
    std::vector<float> g32(P), hv32(P);
    obj.loss_grad(th32.data(), g32.data(), {});
    obj.hvp(th32.data(), v32.data(), hv32.data(), {});
    EXPECT(rel_err(to64(g32), g) <= 1e-3);
    EXPECT(rel_err(to64(hv32), hv) <= 1e-3);
  }
}

NNSCOPE_TEST(pinn_default_size_directional_checks) {
  PinnSpec s;  // 2→50→50→50→50→1 tanh, 256 IC, 100 BC pairs, 100 collocation points
  s.beta = 10.0;
  PinnObjective obj(s);
  const std::size_t P = obj.dim();
  EXPECT_EQ(P, std::size_t(2 * 50 + 50 + 3 * (50 * 50 + 50) + 50 + 1));
  const std::vector<double> th = lively_params(s.widths, s.activation, 51);
  std::vector<double> g(P), hv(P);
  obj.loss_grad64(th.data(), g.data(), {});
  for (uint64_t r = 0; r < 2; ++r) {
    std::vector<double> v = gauss64(P, 60 + r);
    const double nv = norm(v);
    for (double& x : v) x /= nv;
    double gv = 0;
    for (std::size_t i = 0; i < P; ++i) gv += g[i] * v[i];
    const double fd = fd_dir(obj, th, v, 1e-4);
    EXPECT_NEAR(gv, fd, 1e-6 * std::fabs(fd));
    obj.hvp64(th.data(), v.data(), hv.data(), {});
    EXPECT(rel_err(hv, fd_hvp(obj, th, v, 1e-4)) <= 1e-6);
    // float32 against float64
    const std::vector<float> th32 = to32(th), v32 = to32(v);
    std::vector<float> g32(P), hv32(P);
    obj.loss_grad(th32.data(), g32.data(), {});
    obj.hvp(th32.data(), v32.data(), hv32.data(), {});
    EXPECT(rel_err(to64(g32), g) <= 1e-3);
    EXPECT(rel_err(to64(hv32), hv) <= 1e-3);
  }
}

NNSCOPE_TEST(pinn_relative_l2_known_answers) {
  PinnSpec s;
  std::vector<float> zero(pinn_layout(s).total, 0.0f);
  EXPECT_NEAR(pinn_relative_l2(s, zero.data()), 1.0, 1e-12);  // u ≡ 0
  // a linear network u = a x + c t + b against brute force
  PinnSpec lin;
  lin.widths = {2, 1};
  lin.beta = 2.0;
  const float th[3] = {0.25f, -0.5f, 0.125f};
  double num = 0, den = 0;
  for (std::size_t it = 0; it < 100; ++it)
    for (std::size_t ix = 0; ix < 256; ++ix) {
      const double x = 2 * kPi * double(ix) / 256, t = double(it) / 99;
      const double ex = std::sin(x - 2.0 * t), u = 0.25 * double(float(x)) - 0.5 * double(float(t)) + 0.125;
      num += (u - ex) * (u - ex);
      den += ex * ex;
    }
  EXPECT_NEAR(pinn_relative_l2(lin, th), std::sqrt(num / den), 1e-6);
}

// ---------------------------------------------------------------- determinism, grid
NNSCOPE_TEST(results_bit_identical_across_thread_counts) {
  const int before = num_threads();
  MlpSpec spec;
  spec.widths = {5, 32, 16, 4};
  spec.hidden = Activation::Gelu;
  spec.loss = LossKind::SoftmaxCrossEntropy;
  spec.weight_decay = 1e-3;
  const OwnedDataset data = make_blobs(1000, 5, 4, 1.0, 3);
  MlpObjective mlp(spec, data.view());
  PinnSpec ps;
  ps.n_collocation = 500;
  PinnObjective pinn(ps);
  struct Run {
    double l = 0;
    std::vector<float> g, hv;
    std::vector<double> grid;
  };
  auto run = [&](Objective& obj, const std::vector<float>& th) {
    Run r;
    const std::size_t P = obj.dim();
    r.g.resize(P);
    r.hv.resize(P);
    r.l = obj.loss_grad(th.data(), r.g.data(), {});
    std::vector<float> v(P);
    Rng(9).gaussian(v.data(), P);
    obj.hvp(th.data(), v.data(), r.hv.data(), {});
    const std::vector<float> dirs = random_dirs(2, P, 10, 0.05);
    std::vector<float> coords(2 * 24);
    Rng(11).uniform(coords.data(), coords.size());
    r.grid.resize(24);
    obj.loss_grid(th.data(), dirs.data(), 2, coords.data(), 24, r.grid.data(), {});
    return r;
  };
  const std::vector<float> th_m = mlp_init(spec, 1), th_p = pinn_init(ps, 1);
  std::vector<Run> rm, rp;
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    rm.push_back(run(mlp, th_m));
    rp.push_back(run(pinn, th_p));
  }
  set_num_threads(before);
  for (const auto* rs : {&rm, &rp})
    for (std::size_t i = 1; i < rs->size(); ++i) {
      const Run &a = (*rs)[0], &b = (*rs)[i];
      EXPECT(std::memcmp(&a.l, &b.l, sizeof(double)) == 0);
      EXPECT(std::memcmp(a.g.data(), b.g.data(), a.g.size() * sizeof(float)) == 0);
      EXPECT(std::memcmp(a.hv.data(), b.hv.data(), a.hv.size() * sizeof(float)) == 0);
      EXPECT(std::memcmp(a.grid.data(), b.grid.data(), a.grid.size() * sizeof(double)) == 0);
    }
}

NNSCOPE_TEST(loss_grid_equals_loss_mlp) {
  // d_in = 6: k < 6 takes the layer-0 split (X·W₀ᵀ + Σ a_j X·D_jᵀ).
  MlpSpec spec;
  spec.widths = {6, 20, 12, 3};
  spec.hidden = Activation::Tanh;
  spec.loss = LossKind::SoftmaxCrossEntropy;
  spec.weight_decay = 0.01;
  const OwnedDataset data = make_blobs(300, 6, 3, 1.5, 4);
  MlpObjective obj(spec, data.view());
  const std::vector<float> th = mlp_init(spec, 5);
  for (std::size_t k = 1; k <= 4; ++k) check_grid(obj, th, k, 100 + k, 13, 0.3);
  check_grid(obj, th, 7, 200, 5, 0.3);  // k ≥ d_in: direct path
  // k = 0: every row is L(θ₀)
  std::vector<double> out(3);
  obj.loss_grid(th.data(), nullptr, 0, nullptr, 3, out.data(), {});
  for (double o : out) EXPECT_EQ(o, obj.loss(th.data(), {}));
}

NNSCOPE_TEST(loss_grid_equals_loss_pinn) {
  PinnSpec s;
  s.n_collocation = 300;
  PinnObjective obj(s);
  const std::vector<float> th = pinn_init(s, 6);
  for (std::size_t k = 1; k <= 4; ++k) check_grid(obj, th, k, 300 + k, 9, 0.2);  // k = 1 < d_in: split path
  // progress reaches the total
  double last = 0, total = 0;
  OpContext ctx;
  ctx.progress = [&](double d, double t) {
    EXPECT(d >= last);
    last = d;
    total = t;
  };
  const std::size_t n = 600;
  std::vector<float> dirs = random_dirs(1, obj.dim(), 1, 0.1), coords(n);
  std::vector<double> out(n);
  obj.loss_grid(th.data(), dirs.data(), 1, coords.data(), n, out.data(), ctx);
  EXPECT_EQ(last, double(n));
  EXPECT_EQ(total, double(n));
}

NNSCOPE_TEST(precancelled_context_throws) {
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  MlpSpec spec;
  spec.widths = {1, 4, 1};
  const OwnedDataset data = make_sine(50, 0.1, 1);
  MlpObjective mlp(spec, data.view());
  PinnObjective pinn(small_pinn());
  for (Objective* o : {static_cast<Objective*>(&mlp), static_cast<Objective*>(&pinn)}) {
    std::vector<float> th(o->dim(), 0.1f), g(o->dim());
    std::vector<double> th64(o->dim(), 0.1), g64(o->dim());
    double out[2];
    float coords[2] = {0, 1};
    EXPECT_THROWS_CODE(o->loss(th.data(), ctx), ErrorCode::Cancelled);
    EXPECT_THROWS_CODE(o->loss_grad(th.data(), g.data(), ctx), ErrorCode::Cancelled);
    EXPECT_THROWS_CODE(o->hvp(th.data(), th.data(), g.data(), ctx), ErrorCode::Cancelled);
    EXPECT_THROWS_CODE(o->loss_grad64(th64.data(), g64.data(), ctx), ErrorCode::Cancelled);
    EXPECT_THROWS_CODE(o->hvp64(th64.data(), th64.data(), g64.data(), ctx), ErrorCode::Cancelled);
    EXPECT_THROWS_CODE(o->loss_grid(th.data(), th.data(), 1, coords, 2, out, ctx), ErrorCode::Cancelled);
  }
  PinnSpec s;
  std::vector<float> th(pinn_layout(s).total, 0.0f);
  EXPECT_THROWS_CODE(pinn_relative_l2(s, th.data(), ctx), ErrorCode::Cancelled);
}

NNSCOPE_TEST(bad_specs_and_data_throw) {
  const OwnedDataset blobs = make_blobs(20, 3, 4, 1.0, 2);
  MlpSpec ok;
  ok.widths = {3, 5, 4};
  ok.loss = LossKind::SoftmaxCrossEntropy;
  MlpObjective fine(ok, blobs.view());
  EXPECT_EQ(fine.dim(), std::size_t(3 * 5 + 5 + 5 * 4 + 4));

  MlpSpec s = ok;
  s.widths = {};
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::InvalidArgument);
  s.widths = {3};
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::InvalidArgument);
  s.widths = {3, 0, 4};
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::InvalidArgument);
  s.widths = {2, 5, 4};  // input width mismatch
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::Shape);
  s = ok;
  s.weight_decay = -1;
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::InvalidArgument);
  s = ok;
  s.widths = {3, 5, 3};  // labels 0..3 do not fit 3 classes
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::InvalidArgument);
  OwnedDataset neg = blobs;
  neg.labels[7] = -1;
  EXPECT_THROWS_CODE(MlpObjective(ok, neg.view()), ErrorCode::InvalidArgument);
  s = ok;
  s.loss = LossKind::Mse;
  s.widths = {3, 5, 2};  // one-hot targets are 4 wide
  EXPECT_THROWS_CODE(MlpObjective(s, blobs.view()), ErrorCode::Shape);
  const OwnedDataset sine = make_sine(10, 0.0, 1);
  s.widths = {1, 4, 1};
  s.loss = LossKind::SoftmaxCrossEntropy;  // no labels
  EXPECT_THROWS_CODE(MlpObjective(s, sine.view()), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(MlpObjective(ok, blobs.view(), {0, 20}), ErrorCode::InvalidArgument);
  OwnedDataset nan = blobs;
  nan.inputs[4] = std::nanf("");
  EXPECT_THROWS_CODE(MlpObjective(ok, nan.view()), ErrorCode::NonFinite);
  EXPECT_THROWS_CODE(MlpObjective(ok, Dataset{}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(parse_activation("swish"), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(parse_loss("hinge"), ErrorCode::InvalidArgument);
  EXPECT(parse_activation("gelu") == Activation::Gelu);
  EXPECT(parse_loss("binary_cross_entropy") == LossKind::BinaryCrossEntropy);

  PinnSpec p;
  p.widths = {3, 8, 1};
  EXPECT_THROWS_CODE(PinnObjective{p}, ErrorCode::InvalidArgument);
  p = PinnSpec{};
  p.widths = {2, 8, 2};
  EXPECT_THROWS_CODE(PinnObjective{p}, ErrorCode::InvalidArgument);
  p = PinnSpec{};
  p.n_collocation = 0;
  EXPECT_THROWS_CODE(PinnObjective{p}, ErrorCode::InvalidArgument);
  p = PinnSpec{};
  p.x_grid = 4;
  p.t_grid = 3;
  p.n_collocation = 7;  // only 3·2 interior grid points
  EXPECT_THROWS_CODE(PinnObjective{p}, ErrorCode::InvalidArgument);
  p = PinnSpec{};
  p.beta = std::nan("");
  EXPECT_THROWS_CODE(PinnObjective{p}, ErrorCode::InvalidArgument);
  PinnPoints pts;
  pts.ic_x = {0.0, 1.0};
  pts.f_x = {1.0, 2.0};
  pts.f_t = {0.5};
  EXPECT_THROWS_CODE(PinnObjective(PinnSpec{}, pts), ErrorCode::Shape);
}

// ---------------------------------------------------------------- layout, init, data
NNSCOPE_TEST(layout_names_offsets_and_init) {
  const ParamLayout lay = mlp_layout({4, 3, 2});
  EXPECT_EQ(lay.total, std::size_t(4 * 3 + 3 + 3 * 2 + 2));
  EXPECT_EQ(lay.entries.size(), std::size_t(4));
  EXPECT_EQ(lay.entries[0].name, std::string("layer0.weight"));
  EXPECT(lay.entries[0].shape == (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(lay.entries[1].name, std::string("layer0.bias"));
  EXPECT_EQ(lay.entries[1].offset, std::size_t(12));
  EXPECT_EQ(lay.find("layer1.weight")->offset, std::size_t(15));
  EXPECT_EQ(lay.find("layer1.bias")->offset, std::size_t(21));
  EXPECT(lay.find("layer2.weight") == nullptr);

  MlpSpec spec;
  spec.widths = {300, 200, 10};
  spec.hidden = Activation::Tanh;
  const std::vector<float> a = mlp_init(spec, 7), b = mlp_init(spec, 7), c = mlp_init(spec, 8);
  EXPECT(a == b);
  EXPECT(a != c);
  const ParamLayout L2 = mlp_layout(spec.widths);
  auto sd = [&](const std::vector<float>& t, const ParamEntry& e) {
    double s = 0;
    for (std::size_t i = 0; i < e.size(); ++i) s += double(t[e.offset + i]) * t[e.offset + i];
    return std::sqrt(s / double(e.size()));
  };
  EXPECT_NEAR(sd(a, L2.entries[0]), std::sqrt(2.0 / 500), 0.02 * std::sqrt(2.0 / 500));  // Xavier
  for (std::size_t i = 0; i < 200; ++i) EXPECT_EQ(a[L2.entries[1].offset + i], 0.0f);
  spec.hidden = Activation::Relu;
  const std::vector<float> he = mlp_init(spec, 7);
  EXPECT_NEAR(sd(he, L2.entries[0]), std::sqrt(2.0 / 300), 0.02 * std::sqrt(2.0 / 300));  // He
  const std::vector<float> u = mlp_init(spec, 7, InitKind::XavierUniform);
  const double bound = std::sqrt(6.0 / 500);
  for (std::size_t i = 0; i < L2.entries[0].size(); ++i) EXPECT(std::fabs(u[i]) <= bound);
}

NNSCOPE_TEST(dataset_generators) {
  const OwnedDataset sp = make_two_spirals(101, 0.0, 1);
  EXPECT_EQ(sp.n, std::size_t(101));
  EXPECT_EQ(sp.inputs.size(), std::size_t(202));
  EXPECT_EQ(std::count(sp.labels.begin(), sp.labels.end(), 1), 50);
  for (std::size_t i = 0; i < sp.n; ++i) {
    EXPECT_EQ(sp.targets[i], float(sp.labels[i]));
    EXPECT(std::hypot(sp.inputs[2 * i], sp.inputs[2 * i + 1]) < 1.0001);
  }
  // class 1 is class 0 rotated by π
  const OwnedDataset sp2 = make_two_spirals(100, 0.0, 1);
  EXPECT_NEAR(sp2.inputs[2 * 50], -sp2.inputs[0], 1e-6);
  EXPECT(make_two_spirals(100, 0.1, 1).inputs == make_two_spirals(100, 0.1, 1).inputs);
  EXPECT(make_two_spirals(100, 0.1, 1).inputs != make_two_spirals(100, 0.1, 2).inputs);

  const OwnedDataset bl = make_blobs(60, 4, 3, 0.5, 2);
  EXPECT_EQ(bl.d_out, std::size_t(3));
  for (std::size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(bl.labels[i], int32_t(i % 3));
    EXPECT_EQ(bl.targets[i * 3 + i % 3], 1.0f);
  }
  const OwnedDataset sn = make_sine(500, 0.0, 3);
  for (std::size_t i = 0; i < 500; ++i) {
    EXPECT(std::fabs(sn.inputs[i]) <= float(kPi));
    EXPECT_NEAR(sn.targets[i], std::sin(double(sn.inputs[i])), 1e-6);
  }
  EXPECT(sn.view().labels == nullptr && sn.view().d_out == 1);
}
