// Tests of the CUDA hessian spaces (native/cuda/hessian*): the device Krylov space
// of GpuBackend::make_dense_space / make_objective_space against the CPU space
// (hessian::make_cpu_space) on the same operators — every Space operation, then
// the core algorithms running on both (Lanczos α/β per step, eigsh eigenpairs,
// Hutchinson / Hutch++ trace, SLQ nodes and weights), NaN/Inf products, cancellation,
// determinism, and the objective space over a GPU MLP objective (its device HVP has
// the bits of the objective's host HVP, and may be called concurrently with it).
// Those gpu_* tests start with require_gpu_or_skip().
//
// The emu_* tests need no GPU: the kernels of cuda/hessian_kernels.cuh and the
// space itself (SpaceCore, the same source hessian.cu compiles) run under the host
// emulator cuda/cuda_emu.h, with linalg_kernels.cuh for the GEMV/GEMM/BLAS-1 and
// models_kernels.cuh for an MLP Hessian, and go through the very comparison
// functions the GPU tests use. In a CPU-only build every test of this file skips.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/context.h"
#include "base/device.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "hessian/hessian.h"
#include "hessian/operators.h"
#include "hessian/space.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "setup.h"

#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/backend.h"
#include "cuda/hessian.h"
#include "cuda/memory.h"
#include "cuda/models.h"

namespace {

using namespace nnscope;
using hessian::Space;

const double kNaN64 = std::numeric_limits<double>::quiet_NaN();

std::vector<double> gaussian64(std::size_t n, uint64_t seed) {
  std::vector<double> v(n);
  Rng(seed).gaussian(v.data(), n);
  return v;
}

// A symmetric n×n float matrix with the given eigenvalues: A = H·Λ·H with the
// Householder reflection H = I − 2uuᵀ (u a seeded unit vector), so the spectrum is
// known exactly (up to the float rounding of A) and every entry is non-zero.
// vectors (optional): the eigenvectors, row i = column i of H (‖·‖ = 1).
std::vector<float> planted(const std::vector<double>& lambda, uint64_t seed, std::vector<double>* vectors = nullptr) {
  const std::size_t n = lambda.size();
  std::vector<double> u = gaussian64(n, seed);
  double nu = 0.0;
  for (double x : u) nu += x * x;
  nu = std::sqrt(nu);
  for (double& x : u) x /= nu;
  double ulu = 0.0;
  for (std::size_t i = 0; i < n; ++i) ulu += u[i] * lambda[i] * u[i];
  std::vector<float> a(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double v = -2.0 * u[i] * u[j] * (lambda[i] + lambda[j]) + 4.0 * u[i] * u[j] * ulu;
      if (i == j) v += lambda[i];
      a[i * n + j] = float(v);
    }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];  // exactly symmetric
  if (vectors) {
    vectors->assign(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < n; ++r) (*vectors)[i * n + r] = (r == i ? 1.0 : 0.0) - 2.0 * u[r] * u[i];
  }
  return a;
}

// Wigner matrix: symmetric, entries N(0, 1/n) (spectrum ≈ [−2, 2]).
std::vector<float> wigner(std::size_t n, uint64_t seed) {
  std::vector<double> g = gaussian64(n * n, seed);
  std::vector<float> a(n * n);
  const double s = 1.0 / std::sqrt(double(n));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = float(g[i * n + j] * s);
  return a;
}

// A spectrum with 5 separated top values (10 … 5), two separated bottom values
// (−3, −2.5) and a bulk uniform in [−1, 1] (n ≥ 32: the 7 positions are distinct).
std::vector<double> test_spectrum(std::size_t n, uint64_t seed) {
  std::vector<double> l(n);
  Rng r(seed);
  for (std::size_t i = 0; i < n; ++i) l[i] = 2.0 * r.uniform_at(i) - 1.0;
  const double special[] = {10.0, 8.5, 7.0, 6.0, 5.0, -3.0, -2.5};
  for (std::size_t i = 0; i < 7; ++i) l[(i * 7919) % n] = special[i];
  return l;
}

std::vector<double> store(Space& s, std::size_t slot) {
  std::vector<double> v(s.dim());
  s.store(slot, v.data());
  return v;
}

double norm2(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

std::string at(const char* what, std::size_t i) { return std::string(what) + " [" + std::to_string(i) + "]"; }

// Every Space operation of `dev` against `cpu` (the same operator, n ≥ 8).
void compare_space_ops(Space& dev, Space& cpu, uint64_t seed) {
  const std::size_t n = cpu.dim();
  EXPECT_EQ(dev.dim(), n);
  EXPECT(dev.single_precision());
  dev.reserve(10);
  cpu.reserve(10);
  EXPECT(dev.slots() >= 10);
  // Slots 0..3: an orthonormal basis (double Gram–Schmidt, then rounded to float so
  // both spaces hold the same values); 4..6 Gaussian.
  std::vector<std::vector<double>> v(7);
  for (std::size_t i = 0; i < 7; ++i) {
    v[i] = gaussian64(n, seed + i);
    if (i < 4) {
      for (int pass = 0; pass < 2; ++pass)
        for (std::size_t j = 0; j < i; ++j) {
          double d = 0.0;
          for (std::size_t e = 0; e < n; ++e) d += v[j][e] * v[i][e];
          for (std::size_t e = 0; e < n; ++e) v[i][e] -= d * v[j][e];
        }
      const double nr = norm2(v[i]);
      for (double& x : v[i]) x /= nr;
    }
    for (double& x : v[i]) x = double(float(x));
    dev.load(i, v[i].data());
    cpu.load(i, v[i].data());
  }
  // store: exact round trip
  for (std::size_t i = 0; i < 7; ++i) EXPECT(store(dev, i) == v[i]);
  // dot / norm: float64 sums of the same exact products (only the order differs)
  for (std::size_t a = 0; a < 7; ++a)
    for (std::size_t b = a; b < 7; b += 2) {
      double mag = 0.0;
      for (std::size_t e = 0; e < n; ++e) mag += std::fabs(v[a][e] * v[b][e]);
      EXPECT_NEAR(dev.dot(a, b), cpu.dot(a, b), 1e-12 * mag);
    }
  for (std::size_t a = 0; a < 7; ++a) EXPECT_NEAR(dev.norm(a), cpu.norm(a), 1e-12 * cpu.norm(a));
  // apply: the operator's products (the device may accumulate in float)
  EXPECT_EQ(dev.products(), std::uint64_t(0));
  dev.apply(4, 7, {});
  cpu.apply(4, 7, {});
  EXPECT_EQ(dev.products(), std::uint64_t(1));
  {
    const std::vector<double> a = store(dev, 7), b = store(cpu, 7);
    double d = 0.0;
    for (std::size_t e = 0; e < n; ++e) d += (a[e] - b[e]) * (a[e] - b[e]);
    const double rel = std::sqrt(d) / std::max(norm2(b), 1e-30);
    if (!(rel <= 1e-5)) throw test::Failure("apply: relative error " + std::to_string(rel));
  }
  // axpy: one fused multiply-add per element on both sides (≤ 1 ulp apart)
  dev.axpy(0.37, 4, 5);
  cpu.axpy(0.37, 4, 5);
  dev.axpy(0.0, 6, 5);  // alpha 0: nothing
  cpu.axpy(0.0, 6, 5);
  {
    const std::vector<double> a = store(dev, 5), b = store(cpu, 5);
    for (std::size_t e = 0; e < n; ++e)
      if (!(std::fabs(a[e] - b[e]) <= 2.5e-7 * (std::fabs(v[5][e]) + 0.37 * std::fabs(v[4][e]))))
        throw test::Failure(at("axpy", e));
  }
  // scale: x = float(double(x)·α) on both: the same bits
  dev.scale(6, -1.0 / 3.0);
  cpu.scale(6, -1.0 / 3.0);
  EXPECT(store(dev, 6) == store(cpu, 6));
  // copy (and copy onto itself)
  dev.copy(6, 8);
  dev.copy(8, 8);
  EXPECT(store(dev, 8) == store(dev, 6));
  // orthogonalize slot 5 against the basis 0..3, twice, with coefficients
  const std::vector<double> y0 = store(dev, 5);
  std::vector<double> ref_c(4, 0.0);
  for (std::size_t j = 0; j < 4; ++j)
    for (std::size_t e = 0; e < n; ++e) ref_c[j] += v[j][e] * y0[e];
  const double ny = norm2(y0);
  std::vector<double> cd(4, kNaN64), cc(4, kNaN64);
  dev.orthogonalize(0, 4, 5, 2, cd.data());
  cpu.orthogonalize(0, 4, 5, 2, cc.data());
  for (std::size_t j = 0; j < 4; ++j) {
    EXPECT_NEAR(cd[j], cc[j], 1e-6 * ny);
    EXPECT_NEAR(cd[j], ref_c[j], 1e-6 * ny);
  }
  {
    const std::vector<double> a = store(dev, 5), b = store(cpu, 5);
    for (std::size_t e = 0; e < n; ++e)
      if (!(std::fabs(a[e] - b[e]) <= 1e-6 * ny)) throw test::Failure(at("orthogonalize", e));
    for (std::size_t j = 0; j < 4; ++j) EXPECT_NEAR(dev.dot(j, 5), 0.0, 1e-6 * ny);
  }
  // one pass without coefficients; zero passes / empty block leave y and zero coeffs
  dev.orthogonalize(0, 4, 5, 1, nullptr);
  const std::vector<double> y1 = store(dev, 5);
  std::vector<double> z(4, 7.0);
  dev.orthogonalize(0, 4, 5, 0, z.data());
  EXPECT(z == std::vector<double>(4, 0.0));
  dev.orthogonalize(0, 0, 5, 2, nullptr);
  EXPECT(store(dev, 5) == y1);
  // combine: slots 7..9 = Σ_j slot j · Y[j][i], Y 4×3
  const std::vector<double> Y = gaussian64(12, seed + 50);
  dev.combine(0, 4, Y.data(), 3, 7);
  cpu.combine(0, 4, Y.data(), 3, 7);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::vector<double> a = store(dev, 7 + i), b = store(cpu, 7 + i);
    for (std::size_t e = 0; e < n; ++e) {
      double r = 0.0, mag = 0.0;
      for (std::size_t j = 0; j < 4; ++j) {
        const double t = double(float(Y[j * 3 + i])) * v[j][e];
        r += t;
        mag += std::fabs(t);
      }
      if (!(std::fabs(a[e] - b[e]) <= 5e-7 * mag + 1e-30 && std::fabs(a[e] - r) <= 5e-7 * mag + 1e-30))
        throw test::Failure(at("combine", e));
    }
  }
  dev.combine(0, 0, nullptr, 2, 7);  // an empty block: zeros
  EXPECT(store(dev, 8) == std::vector<double>(n, 0.0));
  // growing keeps the contents
  const std::vector<double> keep4 = store(dev, 4);
  dev.reserve(17);
  EXPECT(dev.slots() >= 17);
  EXPECT(store(dev, 4) == keep4);
  EXPECT(store(dev, 16) == std::vector<double>(n, 0.0));  // new slots start at zero
  // refusals
  EXPECT_THROWS_CODE(dev.apply(3, 3, {}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(dev.dot(0, 99), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(dev.load(99, v[0].data()), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(dev.orthogonalize(0, 4, 2, 2, nullptr), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(dev.orthogonalize(14, 4, 2, 2, nullptr), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(dev.combine(0, 4, Y.data(), 3, 2), ErrorCode::InvalidArgument);
  EXPECT_EQ(dev.products(), std::uint64_t(1));
}

// Lanczos on both spaces from the same seeded start: α, β per step within tol
// (absolute), the same products, and the extreme Ritz values within tol.
void compare_lanczos(Space& dev, Space& cpu, std::size_t steps, uint64_t seed, double tol) {
  hessian::LanczosOptions o;
  o.steps = steps;
  o.seed = seed;
  const hessian::LanczosResult a = hessian::lanczos(dev, o, {});
  const hessian::LanczosResult b = hessian::lanczos(cpu, o, {});
  EXPECT_EQ(a.alpha.size(), b.alpha.size());
  EXPECT_EQ(a.beta.size(), b.beta.size());
  EXPECT_EQ(a.products, b.products);
  EXPECT_EQ(a.restarts, b.restarts);
  for (std::size_t j = 0; j < a.alpha.size(); ++j)
    if (!(std::fabs(a.alpha[j] - b.alpha[j]) <= tol))
      throw test::Failure("lanczos alpha[" + std::to_string(j) + "]: " + std::to_string(a.alpha[j]) + " vs " +
                          std::to_string(b.alpha[j]));
  for (std::size_t j = 0; j < a.beta.size(); ++j)
    if (!(std::fabs(a.beta[j] - b.beta[j]) <= tol))
      throw test::Failure("lanczos beta[" + std::to_string(j) + "]: " + std::to_string(a.beta[j]) + " vs " +
                          std::to_string(b.beta[j]));
  const std::size_t m = a.alpha.size();
  std::vector<double> ta(m), tb(m);
  hessian::tridiagonal_eigen(m, a.alpha.data(), a.beta.data(), ta.data(), nullptr);
  hessian::tridiagonal_eigen(m, b.alpha.data(), b.beta.data(), tb.data(), nullptr);
  EXPECT_NEAR(ta.front(), tb.front(), tol);
  EXPECT_NEAR(ta.back(), tb.back(), tol);
  // the same call again gives the same bits
  const hessian::LanczosResult a2 = hessian::lanczos(dev, o, {});
  EXPECT(a2.alpha == a.alpha);
  EXPECT(a2.beta == a.beta);
}

// eigsh on both spaces: both converge; values within rel of each other and of
// `exact` (when given, ordered like the result); eigenvectors parallel.
void compare_eigsh(Space& dev, Space& cpu, const hessian::EigOptions& o, const std::vector<double>& exact,
                   double rel) {
  const hessian::EigResult a = hessian::eigsh(dev, o, {});
  const hessian::EigResult b = hessian::eigsh(cpu, o, {});
  EXPECT(a.converged);
  EXPECT(b.converged);
  EXPECT_EQ(a.values.size(), o.k);
  EXPECT_EQ(b.values.size(), o.k);
  const std::size_t n = dev.dim();
  double scale = 0.0;
  for (double x : b.values) scale = std::max(scale, std::fabs(x));
  for (std::size_t q = 0; q < o.k; ++q) {
    if (!(std::fabs(a.values[q] - b.values[q]) <= rel * scale))
      throw test::Failure("eigsh value " + std::to_string(q) + ": " + std::to_string(a.values[q]) + " vs cpu " +
                          std::to_string(b.values[q]));
    if (!exact.empty() && !(std::fabs(a.values[q] - exact[q]) <= rel * scale))
      throw test::Failure("eigsh value " + std::to_string(q) + ": " + std::to_string(a.values[q]) + " vs exact " +
                          std::to_string(exact[q]));
    EXPECT(a.residuals[q] <= 1e-4 * scale);
  }
  if (o.vectors) {
    EXPECT_EQ(a.vectors.size(), o.k * n);
    for (std::size_t q = 0; q < o.k; ++q) {
      double d = 0.0, na = 0.0;
      for (std::size_t e = 0; e < n; ++e) {
        d += a.vectors[q * n + e] * b.vectors[q * n + e];
        na += a.vectors[q * n + e] * a.vectors[q * n + e];
      }
      EXPECT_NEAR(std::sqrt(na), 1.0, 1e-5);
      if (!(std::fabs(d) >= 1.0 - 1e-3)) throw test::Failure("eigsh vector " + std::to_string(q) + ": |cos| " + std::to_string(d));
    }
  }
}

// Hutchinson (a fixed number of samples), Hutch++ (a budget of hpp products) and
// SLQ (2 runs of `steps`) on both spaces.
void compare_trace_slq(Space& dev, Space& cpu, double anorm, std::size_t samples, std::size_t hpp,
                       std::size_t steps) {
  const std::size_t n = dev.dim();
  hessian::TraceOptions t;
  t.max_products = samples;
  t.min_samples = samples;
  t.rel_tol = 0.0;  // never stop early: both take every sample
  t.seed = 5;
  const hessian::TraceResult a = hessian::trace(dev, t, {});
  const hessian::TraceResult b = hessian::trace(cpu, t, {});
  EXPECT_EQ(a.samples.size(), b.samples.size());
  EXPECT_EQ(a.products, b.products);
  for (std::size_t i = 0; i < a.samples.size(); ++i) EXPECT_NEAR(a.samples[i], b.samples[i], 1e-5 * double(n) * anorm);
  t.method = hessian::TraceMethod::HutchPlusPlus;
  t.max_products = hpp;
  const hessian::TraceResult a2 = hessian::trace(dev, t, {});
  const hessian::TraceResult b2 = hessian::trace(cpu, t, {});
  EXPECT_EQ(a2.products, b2.products);
  EXPECT_NEAR(a2.estimate, b2.estimate, 1e-5 * double(n) * anorm);
  hessian::SlqOptions s;
  s.steps = steps;
  s.runs = 2;
  s.seed = 9;
  const hessian::SlqResult qa = hessian::slq(dev, s, {});
  const hessian::SlqResult qb = hessian::slq(cpu, s, {});
  EXPECT_EQ(qa.nodes.size(), qb.nodes.size());
  EXPECT_EQ(qa.products, qb.products);
  double first_a = 0.0, first_b = 0.0;
  for (std::size_t i = 0; i < qa.nodes.size(); ++i) {
    EXPECT_NEAR(qa.nodes[i], qb.nodes[i], 1e-4 * anorm);
    EXPECT_NEAR(qa.weights[i], qb.weights[i], 1e-3);
    first_a += qa.weights[i] * qa.nodes[i];
    first_b += qb.weights[i] * qb.nodes[i];
  }
  EXPECT_NEAR(first_a, first_b, 1e-4 * anorm);  // Σ w·λ = mean of vᵀAv over the runs
}

// NaN / Inf products: the first bad product's number in a NonFinite error.
void expect_nonfinite(const std::function<void()>& f, const std::string& number) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    if (e.code() != ErrorCode::NonFinite)
      throw test::Failure(std::string("expected NonFinite, got ") + code_name(e.code()) + ": " + e.what());
    if (std::string(e.what()).find("#" + number) == std::string::npos)
      throw test::Failure(std::string("NonFinite message should name product #") + number + ": " + e.what());
  }
  if (!threw) throw test::Failure("expected a NonFinite error");
}

// Cancellation: before the start (nothing runs) and from the progress callback.
void check_cancel(Space& s) {
  s.reserve(3);
  const std::vector<double> v = gaussian64(s.dim(), 3);
  s.load(0, v.data());
  const std::uint64_t p0 = s.products();
  OpContext pre;
  pre.cancel = std::make_shared<CancelToken>();
  pre.cancel->cancel();
  EXPECT_THROWS_CODE(s.apply(0, 1, pre), ErrorCode::Cancelled);
  EXPECT_EQ(s.products(), p0);
  hessian::LanczosOptions o;
  o.steps = 10;
  EXPECT_THROWS_CODE(hessian::lanczos(s, o, pre), ErrorCode::Cancelled);
  OpContext mid;
  mid.cancel = std::make_shared<CancelToken>();
  int reports = 0;
  mid.progress = [&](double, double) {
    if (++reports == 3) mid.cancel->cancel();
  };
  const std::uint64_t p1 = s.products();
  EXPECT_THROWS_CODE(hessian::lanczos(s, o, mid), ErrorCode::Cancelled);
  EXPECT(s.products() - p1 <= 3);
  // and the space still works
  const hessian::LanczosResult r = hessian::lanczos(s, o, {});
  EXPECT_EQ(r.alpha.size(), std::size_t(10));
}

// ---------------------------------------------------------------- models helpers
models::OwnedDataset make_data(std::size_t n, std::size_t d_in, std::size_t d_out, uint64_t seed) {
  models::OwnedDataset d;
  d.n = n;
  d.d_in = d_in;
  d.d_out = d_out;
  d.inputs.resize(n * d_in);
  Rng(seed).gaussian(d.inputs.data(), d.inputs.size());
  d.targets.resize(n * d_out);
  Rng(seed + 1).uniform(d.targets.data(), d.targets.size());
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) d.labels[i] = int32_t((i * 7) % d_out);
  return d;
}

models::MlpSpec mlp_spec(std::vector<std::size_t> widths, models::Activation act, models::LossKind loss,
                         double wd) {
  models::MlpSpec s;
  s.widths = std::move(widths);
  s.hidden = act;
  s.loss = loss;
  s.weight_decay = wd;
  return s;
}

// ---------------------------------------------------------------- GPU tests
std::unique_ptr<cuda::DeviceSpace> dense_space(const std::vector<float>& a, std::size_t n) {
  auto s = gpu_backend()->make_dense_space(a.data(), n);
  auto* d = dynamic_cast<cuda::DeviceSpace*>(s.get());
  EXPECT(d != nullptr);
  s.release();
  return std::unique_ptr<cuda::DeviceSpace>(d);
}

void gpu_space_ops_match_cpu_impl() {
  test::require_gpu_or_skip();
  for (std::size_t n : {std::size_t(9), std::size_t(1001), std::size_t(4099)}) {
    const std::vector<float> a = wigner(n, 10 + n);
    hessian::DenseOperator<float> op(a.data(), n);
    auto cpu = hessian::make_cpu_space(op);
    auto dev = dense_space(a, n);
    compare_space_ops(*dev, *cpu, 20 + n);
    // the device layout: 16-byte strides and slots, zero padding
    EXPECT(dev->stride() % 4 == 0 && dev->stride() >= n && dev->stride() < n + 4);
    for (std::size_t s = 0; s < 3; ++s)
      EXPECT(reinterpret_cast<std::uintptr_t>(dev->slot_pointer(s)) % 16 == 0);
    std::vector<float> pad(dev->stride() - n + 1, -1.0f);
    dev->synchronize();
    cuda::Stream st;
    cuda::copy_to_host(pad.data(), dev->slot_pointer(5) + n - 1, pad.size() * sizeof(float), st.handle());
    st.synchronize();
    for (std::size_t i = 1; i < pad.size(); ++i) EXPECT_EQ(pad[i], 0.0f);
    EXPECT(dev->device() == gpu_info().device);
    EXPECT(dev->stream() != nullptr);
  }
}

void gpu_lanczos_matches_cpu_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = 2000;
  const std::vector<float> a = wigner(n, 31);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  auto dev = dense_space(a, n);
  compare_lanczos(*dev, *cpu, 40, 7, 1e-4 * 2.0);  // ‖A‖ ≈ 2
  // full reorthogonalisation on the device: the basis is orthonormal to float precision
  double worst = 0.0;
  for (std::size_t i = 0; i < 40; i += 3)
    for (std::size_t j = 0; j <= i; j += 2) worst = std::max(worst, std::fabs(dev->dot(i, j) - (i == j ? 1.0 : 0.0)));
  EXPECT(worst <= 1e-5);
  // a diagonal matrix: Lanczos with m = n reproduces its diagonal exactly
  const std::size_t d = 24;
  std::vector<float> diag(d * d, 0.0f);
  for (std::size_t i = 0; i < d; ++i) diag[i * d + i] = float(i) - 7.5f;
  auto dd = dense_space(diag, d);
  hessian::LanczosOptions o;
  o.steps = d;
  const hessian::LanczosResult r = hessian::lanczos(*dd, o, {});
  std::vector<double> ev(d);
  hessian::tridiagonal_eigen(d, r.alpha.data(), r.beta.data(), ev.data(), nullptr);
  for (std::size_t i = 0; i < d; ++i) EXPECT_NEAR(ev[i], double(i) - 7.5, 1e-4);
}

void gpu_eigsh_matches_cpu_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = 3000;
  const std::vector<double> lambda = test_spectrum(n, 41);
  const std::vector<float> a = planted(lambda, 42);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  auto dev = dense_space(a, n);
  std::vector<double> sorted = lambda;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  hessian::EigOptions o;
  o.k = 5;
  o.seed = 3;
  compare_eigsh(*dev, *cpu, o, {sorted.begin(), sorted.begin() + 5}, 1e-4);
  o.which = hessian::Which::SmallestAlgebraic;
  o.k = 2;
  o.vectors = false;
  compare_eigsh(*dev, *cpu, o, {-3.0, -2.5}, 1e-4);
  // PyHessian's power iteration (parity mode): the same iterations, the same values
  hessian::PowerOptions po;
  po.k = 2;
  po.seed = 4;
  const hessian::EigResult pa = hessian::power_iteration(*dev, po, {});
  const hessian::EigResult pb = hessian::power_iteration(*cpu, po, {});
  EXPECT_EQ(pa.products, pb.products);
  for (std::size_t q = 0; q < 2; ++q) {
    EXPECT_NEAR(pa.values[q], pb.values[q], 1e-5 * 10.0);
    EXPECT_NEAR(pa.residuals[q], pb.residuals[q], 1e-4 * 10.0);
  }
  EXPECT_NEAR(pa.values[0], 10.0, 0.1);  // its stopping rule is loose
  // the edge of a Wigner semicircle (small gaps: many thick restarts)
  const std::vector<float> w = wigner(1500, 43);
  hessian::DenseOperator<float> wop(w.data(), 1500);
  auto wcpu = hessian::make_cpu_space(wop);
  auto wdev = dense_space(w, 1500);
  o.which = hessian::Which::LargestAlgebraic;
  o.k = 2;
  o.basis = 30;
  o.max_products = 6000;
  compare_eigsh(*wdev, *wcpu, o, {}, 1e-4);
}

void gpu_trace_and_slq_match_cpu_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = 1500;
  const std::vector<float> a = planted(test_spectrum(n, 51), 52);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  auto dev = dense_space(a, n);
  compare_trace_slq(*dev, *cpu, 10.0, 12, 30, 40);
}

void gpu_nonfinite_products_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = 300;
  std::vector<float> a = wigner(n, 61);
  a[5 * n + 7] = a[7 * n + 5] = std::numeric_limits<float>::quiet_NaN();
  auto dev = dense_space(a, n);
  dev->reserve(4);
  const std::vector<double> v = gaussian64(n, 62);
  dev->load(0, v.data());
  dev->apply(0, 1, {});  // asynchronous: reported with the next value
  dev->apply(0, 2, {});
  expect_nonfinite([&] { (void)dev->norm(1); }, "1");  // the first bad product
  EXPECT(std::isfinite(dev->dot(0, 0)));               // reported once; the space goes on
  dev->apply(0, 3, {});
  expect_nonfinite([&] { (void)store(*dev, 0); }, "3");
  dev->apply(0, 1, {});
  expect_nonfinite([&] { dev->synchronize(); }, "4");
  hessian::LanczosOptions o;
  o.steps = 5;
  expect_nonfinite([&] { hessian::lanczos(*dev, o, {}); }, "5");
  // +Inf in the matrix
  std::vector<float> b = wigner(n, 63);
  b[0] = std::numeric_limits<float>::infinity();
  auto dev2 = dense_space(b, n);
  hessian::EigOptions eo;
  expect_nonfinite([&] { hessian::eigsh(*dev2, eo, {}); }, "1");
}

void gpu_cancellation_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = 500;
  auto dev = dense_space(wigner(n, 71), n);
  check_cancel(*dev);
}

void gpu_objective_space_matches_cpu_impl() {
  test::require_gpu_or_skip();
  using models::Activation;
  using models::LossKind;
  struct Case {
    std::vector<std::size_t> widths;
    Activation act;
    LossKind loss;
    double wd;
  };
  const Case cases[] = {{{8, 32, 16, 3}, Activation::Tanh, LossKind::SoftmaxCrossEntropy, 0.0},
                        {{5, 24, 24, 2}, Activation::Gelu, LossKind::Mse, 1e-3}};
  uint64_t seed = 80;
  for (const Case& c : cases) {
    const models::MlpSpec spec = mlp_spec(c.widths, c.act, c.loss, c.wd);
    const models::OwnedDataset data = make_data(400, c.widths.front(), c.widths.back(), seed);
    models::MlpObjective cpu_f(spec, data.view());
    auto gpu_f = gpu_backend()->make_mlp_objective(spec, data.view(), {});
    const std::vector<float> theta = models::mlp_init(spec, seed + 1);
    const std::size_t P = theta.size();
    hessian::ModelOperator op(cpu_f, theta.data());
    auto cpu = hessian::make_cpu_space(op);
    auto dev = gpu_backend()->make_objective_space(*gpu_f, theta.data());
    EXPECT_EQ(dev->dim(), P);
    // one product: the bits of the objective's own (host) HVP, close to the CPU's
    std::vector<float> vf(P), hv_host(P), hv_cpu(P);
    Rng(seed + 2).gaussian(vf.data(), P);
    std::vector<double> vd(vf.begin(), vf.end());
    dev->reserve(2);
    dev->load(0, vd.data());
    dev->apply(0, 1, {});
    const std::vector<double> hv_dev = store(*dev, 1);
    gpu_f->hvp(theta.data(), vf.data(), hv_host.data(), {});
    cpu_f.hvp(theta.data(), vf.data(), hv_cpu.data(), {});
    double num = 0.0, den = 0.0;
    for (std::size_t p = 0; p < P; ++p) {
      if (!(hv_dev[p] == double(hv_host[p]))) throw test::Failure(at("device hvp vs host hvp bits", p));
      num += (hv_dev[p] - hv_cpu[p]) * (hv_dev[p] - hv_cpu[p]);
      den += double(hv_cpu[p]) * hv_cpu[p];
    }
    EXPECT(std::sqrt(num) <= 1e-4 * std::sqrt(den));
    // the algorithms
    double scale = 0.0;
    {
      hessian::EigOptions o;
      o.k = 1;
      o.which = hessian::Which::LargestMagnitude;
      o.vectors = false;
      scale = std::fabs(hessian::eigsh(*cpu, o, {}).values[0]);
    }
    // (α, β of later steps amplify the products' rounding differences: a looser bound)
    compare_lanczos(*dev, *cpu, 10, seed + 3, 3e-4 * scale);
    hessian::EigOptions o;
    o.k = 2;
    o.seed = seed + 4;
    o.vectors = false;
    o.max_products = 3000;
    compare_eigsh(*dev, *cpu, o, {}, 1e-4);
    seed += 10;
  }
  // not a GPU objective
  const models::MlpSpec spec = mlp_spec({3, 4, 2}, Activation::Tanh, LossKind::Mse, 0.0);
  const models::OwnedDataset data = make_data(20, 3, 2, 99);
  models::MlpObjective cpu_f(spec, data.view());
  const std::vector<float> theta = models::mlp_init(spec, 1);
  EXPECT_THROWS_CODE(gpu_backend()->make_objective_space(cpu_f, theta.data()), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(cuda::device_hvp(cpu_f), ErrorCode::InvalidArgument);
}

void gpu_objective_space_nonfinite_and_cancel_impl() {
  test::require_gpu_or_skip();
  const models::MlpSpec spec = mlp_spec({4, 16, 2}, models::Activation::Tanh, models::LossKind::Mse, 0.0);
  const models::OwnedDataset data = make_data(100, 4, 2, 91);
  auto f = gpu_backend()->make_mlp_objective(spec, data.view(), {});
  std::vector<float> theta = models::mlp_init(spec, 92);
  auto dev = gpu_backend()->make_objective_space(*f, theta.data());
  check_cancel(*dev);
  theta[3] = std::numeric_limits<float>::quiet_NaN();
  auto bad = gpu_backend()->make_objective_space(*f, theta.data());
  hessian::LanczosOptions o;
  o.steps = 4;
  expect_nonfinite([&] { hessian::lanczos(*bad, o, {}); }, "1");
  // the space copied θ: changing the caller's array changes nothing
  theta[3] = 0.5f;
  expect_nonfinite([&] { hessian::lanczos(*bad, o, {}); }, "2");
}

// The objective's host calls from another thread while a space runs Lanczos on its
// device HVP: both stay correct (mutex + stream ordering).
void gpu_objective_space_concurrent_host_calls_impl() {
  test::require_gpu_or_skip();
  const models::MlpSpec spec =
      mlp_spec({10, 64, 64, 4}, models::Activation::Tanh, models::LossKind::SoftmaxCrossEntropy, 0.0);
  const models::OwnedDataset data = make_data(2000, 10, 4, 101);
  auto f = gpu_backend()->make_mlp_objective(spec, data.view(), {});
  const std::vector<float> theta = models::mlp_init(spec, 102);
  const std::size_t P = theta.size();
  std::vector<float> v(P), ref(P), out(P);
  Rng(103).gaussian(v.data(), P);
  f->hvp(theta.data(), v.data(), ref.data(), {});
  auto dev = gpu_backend()->make_objective_space(*f, theta.data());
  hessian::LanczosOptions o;
  o.steps = 30;
  o.seed = 104;
  const hessian::LanczosResult alone = hessian::lanczos(*dev, o, {});
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0}, calls{0};
  std::thread other([&] {
    std::vector<float> mine(P);
    while (!stop.load()) {
      f->hvp(theta.data(), v.data(), mine.data(), {});
      if (std::memcmp(mine.data(), ref.data(), P * sizeof(float)) != 0) ++mismatches;
      (void)f->loss(theta.data(), {});
      ++calls;
    }
  });
  hessian::LanczosResult together;
  try {
    together = hessian::lanczos(*dev, o, {});
  } catch (...) {
    stop = true;
    other.join();
    throw;
  }
  stop = true;
  other.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT(calls.load() > 0);
  EXPECT(together.alpha == alone.alpha);
  EXPECT(together.beta == alone.beta);
}

}  // namespace

// ================================================================ host emulation
// The kernel sources (linalg_kernels.cuh for the SGEMM/SGEMV/BLAS-1, models_kernels.cuh
// for an MLP HVP, hessian_kernels.cuh for the space) compiled for the host emulator
// in namespace nnscope::cuda::emu.
#include "cuda_emu_support.h"
#include "cuda/linalg_kernels.cuh"

namespace nnscope::cuda::emu {
inline void gemm_dev(const linalg::GemmArgs& g, void* stream) {
  linalg::validate(g);
  if (g.m == 0 || g.n == 0) return;
  sgemm_launch((long long)g.m, gemm_params(g), g.trans_a, g.trans_b, 1, 64, stream);
}
}  // namespace nnscope::cuda::emu

#include "cuda/hessian_kernels.cuh"
#include "cuda/models_kernels.cuh"

namespace {

namespace ek = nnscope::cuda::emu;

// "Device memory" of the emulated space: 16-byte aligned host memory, filled with
// NaN bytes at allocation (reads of unwritten memory show).
struct EmuBuffer {
  std::vector<float4> mem;
  std::size_t n = 0;
  void* data() const { return n ? const_cast<float4*>(mem.data()) : nullptr; }
  std::size_t bytes() const { return n; }
};

// SpaceCore's environment on the host: the emulated linalg kernels, no stream.
class EmuEnv {
 public:
  using Buffer = EmuBuffer;
  int syncs = 0;                   // host waits: only where a value comes back
  std::size_t max_download = 0;    // the largest device → host copy

  void activate() {}
  void* stream() const { return nullptr; }
  Buffer alloc(std::size_t bytes) {
    Buffer b;
    b.mem.resize((bytes + 15) / 16);
    if (!b.mem.empty()) std::memset(static_cast<void*>(b.mem.data()), 0xff, b.mem.size() * 16);
    b.n = bytes;
    return b;
  }
  void upload(void* d, const void* s, std::size_t b) { if (b) std::memcpy(d, s, b); }
  void download(void* d, const void* s, std::size_t b) {
    if (b) std::memcpy(d, s, b);
    max_download = std::max(max_download, b);
  }
  void copy(void* d, const void* s, std::size_t b) { if (b) std::memcpy(d, s, b); }
  void zero(void* d, std::size_t b) { if (b) std::memset(d, 0, b); }
  void sync() { ++syncs; }
  void drain() noexcept {}
  void gemv(const linalg::GemvArgs& g, float* ws) {
    linalg::validate(g);
    if ((g.trans ? g.n : g.m) == 0) return;
    ek::sgemv_launch(ek::gemv_params(g), g.trans, ws, nullptr);
  }
  std::size_t gemv_ws(const linalg::GemvArgs& g) {
    return (std::size_t)ek::gemv_workspace_floats(g.trans, (long long)g.m, (long long)g.n);
  }
  void gemm(const linalg::GemmArgs& g) { ek::gemm_dev(g, nullptr); }
  void dot(std::size_t n, const float* x, const float* y, double* out, double* ws) {
    ek::dot_launch((long long)n, x, y, out, ws, nullptr);
  }
  void nrm2(std::size_t n, const float* x, double* out, double* ws) { ek::nrm2_launch((long long)n, x, out, ws, nullptr); }
  std::size_t reduce_ws() { return ek::kReduceMaxBlocks; }
  void axpy(std::size_t n, float alpha, const float* x, float* y) { ek::saxpy_launch((long long)n, alpha, x, y, nullptr); }
};

// The dense space of hessian.cu, emulated; bad_product > 0 makes that product's
// last entry NaN (a flaky operator).
class EmuDenseSpace final : public ek::SpaceCore<EmuEnv> {
 public:
  EmuDenseSpace(const std::vector<float>& a, std::size_t n, std::uint64_t bad_product = 0)
      : SpaceCore(n), bad_(bad_product) {
    a_ = env().alloc(n * stride_floats() * sizeof(float));
    float* d = static_cast<float*>(a_.data());
    std::fill(d, d + n * stride_floats(), 0.0f);
    for (std::size_t i = 0; i < n; ++i) std::copy(a.begin() + i * n, a.begin() + (i + 1) * n, d + i * stride_floats());
  }
  std::uint64_t calls = 0;

 protected:
  void product(const float* x, float* y, const OpContext&) override {
    linalg::GemvArgs g;
    g.m = g.n = dim();
    g.a = static_cast<const float*>(a_.data());
    g.lda = stride_floats();
    g.x = x;
    g.y = y;
    env().gemv(g, nullptr);
    if (++calls == bad_ && dim() > 0) y[dim() - 1] = std::nanf("");
  }

 private:
  EmuBuffer a_;
  std::uint64_t bad_ = 0;
};

// The objective space of hessian.cu, emulated: the HVP passes of models_kernels.cuh
// on the slots (θ in emulated device memory).
class EmuObjectiveSpace final : public ek::SpaceCore<EmuEnv> {
 public:
  EmuObjectiveSpace(ek::MProblem p, const std::vector<float>& theta)
      : SpaceCore(theta.size()), prob_(std::move(p)) {
    ws_.assign(ek::carve_work(prob_.net, prob_.rows, nullptr, nullptr) + 4, std::nanf(""));
    ek::carve_work(prob_.net, prob_.rows, ws_.data(), &work_);
    std::copy(prob_.x.begin(), prob_.x.end(), work_.x);
    prob_.head.y = prob_.y.data();
    prob_.head.labels = prob_.labels.data();
    prob_.head.ic_target = prob_.ic_target.data();
    theta_ = env().alloc(theta.size() * sizeof(float));
    env().upload(theta_.data(), theta.data(), theta.size() * sizeof(float));
  }

 protected:
  void product(const float* x, float* y, const OpContext&) override {
    const float* th = static_cast<const float*>(theta_.data());
    ek::run_pass(prob_.net, prob_.rows, work_, prob_.head, ek::kModeHvp, th, x, y, loss_, nullptr);
    if (prob_.weight_decay != 0.0) ek::add_decay_launch((long long)dim(), prob_.weight_decay, x, y, nullptr);
  }

 private:
  ek::MProblem prob_;
  ek::MWork work_;
  std::vector<float> ws_;
  EmuBuffer theta_;
  double loss_[1] = {0.0};
};

void emu_rowdot_matches_dot_impl() {
  // each coefficient has the bits of the emulated sdot of its row (same grid, same trees)
  for (std::size_t n : {std::size_t(1), std::size_t(6), std::size_t(4096), std::size_t(9001)})
    for (std::size_t rows : {std::size_t(1), std::size_t(3)})
      for (int misalign = 0; misalign < 2; ++misalign) {
        const std::size_t ld = (n + 3) / 4 * 4 + (misalign ? 1 : 0);
        std::vector<float4> vb((rows * ld + 8) / 4 + 1), yb(n / 4 + 2);
        float* V = reinterpret_cast<float*>(vb.data());
        float* y = reinterpret_cast<float*>(yb.data()) + misalign;
        Rng(n + rows).gaussian(V, rows * ld);
        Rng(n + rows + 1).gaussian(y, n);
        const std::size_t ws = ek::rowdot_workspace_doubles(rows, n);
        EXPECT_EQ(ws, rows * std::size_t(ek::reduce_blocks((long long)n)));
        std::vector<double> partial(ws + 1, -1.0), cd(rows, 100.0);
        std::vector<float> cf(rows, -1.0f);
        ek::rowdot_launch((int)rows, (long long)n, V, (long long)ld, y, false, partial.data(), cd.data(), cf.data(),
                          nullptr);
        EXPECT_EQ(partial[ws], -1.0);  // the workspace bound holds
        std::vector<double> dot(1 + ek::kReduceMaxBlocks);
        for (std::size_t r = 0; r < rows; ++r) {
          ek::dot_launch((long long)n, V + r * ld, y, dot.data(), dot.data() + 1, nullptr);
          EXPECT_EQ(cd[r], dot[0]);
          EXPECT_EQ(cf[r], float(dot[0]));
          double ref = 0.0;
          for (std::size_t i = 0; i < n; ++i) ref += double(V[r * ld + i]) * y[i];
          EXPECT_NEAR(cd[r], ref, 1e-12 * (1.0 + std::fabs(ref)) * std::sqrt(double(n)));
        }
        // accumulate: cd += the new sums, cf = this pass's
        const std::vector<double> first = cd;
        ek::rowdot_launch((int)rows, (long long)n, V, (long long)ld, y, true, partial.data(), cd.data(), cf.data(),
                          nullptr);
        for (std::size_t r = 0; r < rows; ++r) {
          EXPECT_EQ(cd[r], first[r] + first[r]);
          EXPECT_EQ(cf[r], float(first[r]));
        }
      }
  EXPECT_EQ(ek::h_reduce_blocks(1), ek::reduce_blocks(1));
  EXPECT_EQ(ek::h_reduce_blocks(4097), ek::reduce_blocks(4097));
  EXPECT_EQ(ek::h_reduce_blocks(1LL << 40), ek::reduce_blocks(1LL << 40));
}

void emu_scale_and_nonfinite_impl() {
  for (std::size_t n : {std::size_t(1), std::size_t(255), std::size_t(1000)}) {
    std::vector<float> x(n + 1, 42.0f), x0;
    Rng(n).gaussian(x.data(), n);
    x0 = x;
    ek::scale_launch((long long)n, -0.3, x.data(), nullptr);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(x[i], float(double(x0[i]) * -0.3));
    EXPECT_EQ(x[n], 42.0f);  // nothing past n
    unsigned long long flag = 0;
    ek::nonfinite_launch((long long)n, x.data(), &flag, 5, nullptr);
    EXPECT_EQ(flag, 0ull);
    const float bad[] = {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    for (float b : bad)
      for (std::size_t pos : {std::size_t(0), n / 2, n - 1}) {
        std::vector<float> y = x0;
        y[pos] = b;
        flag = 0;
        ek::nonfinite_launch((long long)n, y.data(), &flag, 7, nullptr);
        EXPECT_EQ(flag, 7ull);
        ek::nonfinite_launch((long long)n, y.data(), &flag, 9, nullptr);
        EXPECT_EQ(flag, 7ull);  // the first bad product stays
      }
    // the largest finite values and denormals are finite
    std::vector<float> edge(n, std::numeric_limits<float>::max());
    edge[0] = -std::numeric_limits<float>::max();
    if (n > 1) edge[1] = std::numeric_limits<float>::denorm_min();
    flag = 0;
    ek::nonfinite_launch((long long)n, edge.data(), &flag, 3, nullptr);
    EXPECT_EQ(flag, 0ull);
  }
}

void emu_space_ops_match_cpu_impl() {
  for (std::size_t n : {std::size_t(9), std::size_t(37), std::size_t(64)}) {
    const std::vector<float> a = wigner(n, 10 + n);
    hessian::DenseOperator<float> op(a.data(), n);
    auto cpu = hessian::make_cpu_space(op);
    EmuDenseSpace dev(a, n);
    compare_space_ops(dev, *cpu, 20 + n);
    EXPECT(dev.stride_floats() % 4 == 0 && dev.stride_floats() >= n && dev.stride_floats() < n + 4);
    for (std::size_t s = 0; s < 3; ++s) EXPECT(reinterpret_cast<std::uintptr_t>(dev.slot_ptr(s)) % 16 == 0);
    for (std::size_t s = 0; s < dev.slots(); ++s)
      for (std::size_t i = n; i < dev.stride_floats(); ++i) EXPECT_EQ(dev.slot_ptr(s)[i], 0.0f);  // padding stays 0
  }
}

void emu_lanczos_matches_cpu_impl() {
  const std::size_t n = 40;
  const std::vector<float> a = wigner(n, 31);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  EmuDenseSpace dev(a, n);
  const int s0 = dev.env().syncs;
  compare_lanczos(dev, *cpu, 10, 7, 1e-5 * 2.0);
  // only scalars come back (dots, norms, the m+1 coefficients; never a vector), a
  // few per step (compare_lanczos runs the device twice: 20 products)
  const int waits = dev.env().syncs - s0;
  if (!(waits <= 8 * 20 + 4)) throw test::Failure("host waits: " + std::to_string(waits));
  EXPECT(dev.env().max_download <= 11 * sizeof(double));
  EXPECT(dev.env().max_download < n * sizeof(float));
  // m = n on a diagonal matrix: exact
  const std::size_t d = 8;
  std::vector<float> diag(d * d, 0.0f);
  for (std::size_t i = 0; i < d; ++i) diag[i * d + i] = float(i) - 3.5f;
  EmuDenseSpace dd(diag, d);
  hessian::LanczosOptions o;
  o.steps = d;
  const hessian::LanczosResult r = hessian::lanczos(dd, o, {});
  std::vector<double> ev(d);
  hessian::tridiagonal_eigen(d, r.alpha.data(), r.beta.data(), ev.data(), nullptr);
  for (std::size_t i = 0; i < d; ++i) EXPECT_NEAR(ev[i], double(i) - 3.5, 1e-5);
}

void emu_eigsh_matches_cpu_impl() {
  const std::size_t n = 48;
  const std::vector<double> lambda = test_spectrum(n, 41);
  const std::vector<float> a = planted(lambda, 42);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  EmuDenseSpace dev(a, n);
  std::vector<double> sorted = lambda;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  hessian::EigOptions o;
  o.k = 3;
  o.basis = 10;  // < n: thick restarts
  o.seed = 3;
  compare_eigsh(dev, *cpu, o, {sorted.begin(), sorted.begin() + 3}, 1e-4);
}

void emu_trace_and_slq_match_cpu_impl() {
  const std::size_t n = 32;
  const std::vector<float> a = planted(test_spectrum(n, 51), 52);
  hessian::DenseOperator<float> op(a.data(), n);
  auto cpu = hessian::make_cpu_space(op);
  EmuDenseSpace dev(a, n);
  compare_trace_slq(dev, *cpu, 10.0, 4, 9, 6);
}

void emu_nonfinite_and_cancel_impl() {
  const std::size_t n = 20;
  const std::vector<float> a = wigner(n, 61);
  {
    EmuDenseSpace dev(a, n, 3);  // the 3rd product is bad
    hessian::LanczosOptions o;
    o.steps = 8;
    expect_nonfinite([&] { hessian::lanczos(dev, o, {}); }, "3");
    EXPECT(std::isfinite(dev.norm(0)));  // reported once
  }
  {
    EmuDenseSpace dev(a, n, 1);
    dev.reserve(3);
    const std::vector<double> v = gaussian64(n, 62);
    dev.load(0, v.data());
    dev.apply(0, 1, {});  // bad, not yet reported
    dev.apply(0, 2, {});  // good
    expect_nonfinite([&] { (void)dev.dot(0, 2); }, "1");
    dev.apply(0, 2, {});
    EXPECT(std::isfinite(dev.norm(2)));
  }
  EmuDenseSpace dev(a, n);
  check_cancel(dev);
}

void emu_objective_space_matches_cpu_impl() {
  const models::MlpSpec spec = mlp_spec({3, 6, 5, 2}, models::Activation::Tanh, models::LossKind::Mse, 1e-2);
  const models::OwnedDataset data = make_data(11, 3, 2, 70);
  models::MlpObjective cpu_f(spec, data.view());
  std::vector<float> theta = models::mlp_init(spec, 71);
  for (std::size_t i = 0; i < theta.size(); ++i) theta[i] += 0.05f * float(i % 5) - 0.1f;
  hessian::ModelOperator op(cpu_f, theta.data());
  auto cpu = hessian::make_cpu_space(op);
  EmuObjectiveSpace dev(ek::mlp_problem(spec, data.view(), {}), theta);
  double scale = 0.0;
  {
    hessian::EigOptions o;
    o.which = hessian::Which::LargestMagnitude;
    o.vectors = false;
    scale = std::fabs(hessian::eigsh(*cpu, o, {}).values[0]);
  }
  compare_lanczos(dev, *cpu, 8, 72, 1e-4 * scale);
}

}  // namespace

#define NNSCOPE_CUDA_CASE(fn) fn()
#else
#define NNSCOPE_CUDA_CASE(fn) ::nnscope::test::skip("nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off)")
#endif  // NNSCOPE_HAVE_CUDA

// ---------------------------------------------------------------- registered cases
NNSCOPE_TEST(emu_rowdot_matches_dot) { NNSCOPE_CUDA_CASE(emu_rowdot_matches_dot_impl); }
NNSCOPE_TEST(emu_scale_and_nonfinite) { NNSCOPE_CUDA_CASE(emu_scale_and_nonfinite_impl); }
NNSCOPE_TEST(emu_space_ops_match_cpu) { NNSCOPE_CUDA_CASE(emu_space_ops_match_cpu_impl); }
NNSCOPE_TEST(emu_lanczos_matches_cpu) { NNSCOPE_CUDA_CASE(emu_lanczos_matches_cpu_impl); }
NNSCOPE_TEST(emu_eigsh_matches_cpu) { NNSCOPE_CUDA_CASE(emu_eigsh_matches_cpu_impl); }
NNSCOPE_TEST(emu_trace_and_slq_match_cpu) { NNSCOPE_CUDA_CASE(emu_trace_and_slq_match_cpu_impl); }
NNSCOPE_TEST(emu_nonfinite_and_cancel) { NNSCOPE_CUDA_CASE(emu_nonfinite_and_cancel_impl); }
NNSCOPE_TEST(emu_objective_space_matches_cpu) { NNSCOPE_CUDA_CASE(emu_objective_space_matches_cpu_impl); }
NNSCOPE_TEST(gpu_space_ops_match_cpu) { NNSCOPE_CUDA_CASE(gpu_space_ops_match_cpu_impl); }
NNSCOPE_TEST(gpu_lanczos_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_lanczos_matches_cpu_impl); }
NNSCOPE_TEST(gpu_eigsh_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_eigsh_matches_cpu_impl); }
NNSCOPE_TEST(gpu_trace_and_slq_match_cpu) { NNSCOPE_CUDA_CASE(gpu_trace_and_slq_match_cpu_impl); }
NNSCOPE_TEST(gpu_nonfinite_products) { NNSCOPE_CUDA_CASE(gpu_nonfinite_products_impl); }
NNSCOPE_TEST(gpu_cancellation) { NNSCOPE_CUDA_CASE(gpu_cancellation_impl); }
NNSCOPE_TEST(gpu_objective_space_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_objective_space_matches_cpu_impl); }
NNSCOPE_TEST(gpu_objective_space_nonfinite_and_cancel) { NNSCOPE_CUDA_CASE(gpu_objective_space_nonfinite_and_cancel_impl); }
NNSCOPE_TEST(gpu_objective_space_concurrent_host_calls) { NNSCOPE_CUDA_CASE(gpu_objective_space_concurrent_host_calls_impl); }
