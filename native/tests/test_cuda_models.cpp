// Tests of the CUDA model objectives (native/cuda/models*): the GPU objectives of
// GpuBackend::make_mlp_objective / make_pinn_objective against the CPU objectives
// (models::MlpObjective, PinnObjective) on the same seeded parameters — loss,
// gradient, Hessian-vector product, loss_grid — for every activation × loss and the
// PINN, plus determinism and cancellation. Those gpu_* tests start with
// require_gpu_or_skip().
//
// The emu_* tests need no GPU: the kernel sources and the passes of
// cuda/models_kernels.cuh (with the SGEMM of linalg_kernels.cuh) run under the host
// emulator cuda/cuda_emu.h on tiny problems and are compared with the CPU engine.
// In a CPU-only build every test of this file skips.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/device.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "models/activation.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/pinn.h"
#include "setup.h"

#ifdef NNSCOPE_HAVE_CUDA
namespace {

using namespace nnscope;
using namespace nnscope::models;

const Activation kActs[] = {Activation::Identity, Activation::Tanh,     Activation::Relu,
                            Activation::Gelu,     Activation::Softplus, Activation::Sigmoid};
const LossKind kLosses[] = {LossKind::Mse, LossKind::SoftmaxCrossEntropy, LossKind::BinaryCrossEntropy};

double rel_err(const float* a, const float* b, std::size_t n) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}
double rel_err1(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-30); }

std::vector<float> gaussian(std::size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  Rng(seed).gaussian(v.data(), n);
  for (float& x : v) x *= scale;
  return v;
}

// A dataset for `loss` with d_in inputs and d_out outputs: inputs N(0,1), targets
// N(0,1) (Mse), U[0,1] (Bce), labels i·7 mod d_out (Ce).
OwnedDataset make_data(std::size_t n, std::size_t d_in, std::size_t d_out, uint64_t seed) {
  OwnedDataset d;
  d.n = n;
  d.d_in = d_in;
  d.d_out = d_out;
  d.inputs = gaussian(n * d_in, seed);
  d.targets.resize(n * d_out);
  Rng(seed + 1).uniform(d.targets.data(), d.targets.size());
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) d.labels[i] = int32_t((i * 7) % d_out);
  return d;
}

MlpSpec mlp_spec(std::vector<std::size_t> widths, Activation act, LossKind loss, double wd = 0.0) {
  MlpSpec s;
  s.widths = std::move(widths);
  s.hidden = act;
  s.output = Activation::Identity;
  s.loss = loss;
  s.weight_decay = wd;
  return s;
}

// Small PINN point sets (user-given, so the sizes stay tiny).
PinnPoints small_points(std::size_t ni, std::size_t nb, std::size_t nf, uint64_t seed) {
  PinnPoints p;
  Rng r(seed);
  for (std::size_t i = 0; i < ni; ++i) p.ic_x.push_back(6.283185307179586 * r.uniform_at(i));
  for (std::size_t i = 0; i < nb; ++i) p.bc_t.push_back(r.uniform_at(1000 + i));
  for (std::size_t i = 0; i < nf; ++i) {
    p.f_x.push_back(6.283185307179586 * r.uniform_at(2000 + 2 * i));
    p.f_t.push_back(r.uniform_at(2001 + 2 * i));
  }
  return p;
}

// The k directions and n coefficient rows of a loss_grid test.
struct GridCase {
  std::size_t k = 0, n = 0;
  std::vector<float> dirs, coords;
};
GridCase grid_case(std::size_t P, std::size_t k, std::size_t n, uint64_t seed, float dir_scale = 0.1f) {
  GridCase g;
  g.k = k;
  g.n = n;
  g.dirs = gaussian(k * P, seed, dir_scale);
  g.coords.resize(n * k);
  Rng(seed + 9).uniform(g.coords.data(), g.coords.size());
  for (float& c : g.coords) c = 2.0f * c - 1.0f;
  if (n > 0)
    for (std::size_t j = 0; j < k; ++j) g.coords[j] = 0.0f;  // row 0: θ₀ itself
  return g;
}

// The CPU loss at each grid row, one point at a time (the reference).
std::vector<double> pointwise_losses(Objective& cpu, const std::vector<float>& theta0, const GridCase& g) {
  const std::size_t P = theta0.size();
  std::vector<double> out(g.n);
  std::vector<float> th(P);
  for (std::size_t i = 0; i < g.n; ++i) {
    th = theta0;
    for (std::size_t j = 0; j < g.k; ++j)
      for (std::size_t p = 0; p < P; ++p) th[p] += g.coords[i * g.k + j] * g.dirs[j * P + p];
    out[i] = cpu.loss(th.data(), {});
  }
  return out;
}

}  // namespace

#include "cuda/backend.h"
#include "cuda/models.h"

namespace {

// Compares `gpu` with `cpu` at theta: loss, gradient, HVP, loss_grid (relative ≤ tol).
void compare_objectives(Objective& gpu, Objective& cpu, const std::vector<float>& theta, uint64_t seed,
                        const std::string& what, double tol = 1e-4, std::size_t grid_points = 24) {
  const std::size_t P = cpu.dim();
  EXPECT_EQ(gpu.dim(), P);
  const double lc = cpu.loss(theta.data(), {}), lg = gpu.loss(theta.data(), {});
  if (!(rel_err1(lg, lc) <= tol)) throw test::Failure(what + ": loss " + std::to_string(lg) + " vs " + std::to_string(lc));
  std::vector<float> gc(P), gg(P);
  const double lc2 = cpu.loss_grad(theta.data(), gc.data(), {});
  const double lg2 = gpu.loss_grad(theta.data(), gg.data(), {});
  EXPECT(rel_err1(lg2, lc2) <= tol);
  EXPECT(rel_err1(lg2, lg) <= 1e-12);
  const double eg = rel_err(gg.data(), gc.data(), P);
  if (!(eg <= tol)) throw test::Failure(what + ": gradient rel err " + std::to_string(eg));
  const std::vector<float> v = gaussian(P, seed + 77);
  std::vector<float> hc(P), hg(P);
  cpu.hvp(theta.data(), v.data(), hc.data(), {});
  gpu.hvp(theta.data(), v.data(), hg.data(), {});
  const double eh = rel_err(hg.data(), hc.data(), P);
  if (!(eh <= tol)) throw test::Failure(what + ": hvp rel err " + std::to_string(eh));
  // loss_grid equals the one-point loss at every row
  const GridCase g = grid_case(P, 2, grid_points, seed + 5);
  std::vector<double> out(g.n, -1.0);
  gpu.loss_grid(theta.data(), g.dirs.data(), g.k, g.coords.data(), g.n, out.data(), {});
  const std::vector<double> ref = pointwise_losses(cpu, theta, g);
  for (std::size_t i = 0; i < g.n; ++i)
    if (!(rel_err1(out[i], ref[i]) <= tol))
      throw test::Failure(what + ": loss_grid row " + std::to_string(i) + ": " + std::to_string(out[i]) + " vs " +
                          std::to_string(ref[i]));
  EXPECT(rel_err1(out[0], lg) <= 1e-12);  // row 0 is θ₀
  // the float64 paths are the CPU reference
  std::vector<double> t64(theta.begin(), theta.end()), g64a(P), g64b(P);
  EXPECT_EQ(gpu.loss_grad64(t64.data(), g64a.data(), {}), cpu.loss_grad64(t64.data(), g64b.data(), {}));
  EXPECT(g64a == g64b);
}

// ---------------------------------------------------------------- GPU tests
void gpu_mlp_every_activation_and_loss_impl() {
  test::require_gpu_or_skip();
  GpuBackend& gpu = *gpu_backend();
  uint64_t seed = 100;
  for (Activation act : kActs)
    for (LossKind loss : kLosses) {
      const std::size_t d_out = loss == LossKind::Mse ? 2 : (loss == LossKind::BinaryCrossEntropy ? 1 : 3);
      const MlpSpec spec = mlp_spec({5, 16, 12, d_out}, act, loss, act == Activation::Tanh ? 1e-3 : 0.0);
      const OwnedDataset data = make_data(300, 5, d_out, seed);
      std::vector<std::size_t> idx;
      if (act == Activation::Gelu)
        for (std::size_t i = 0; i < 300; i += 3) idx.push_back(i);  // a fixed subset
      MlpObjective cpu(spec, data.view(), idx);
      auto g = gpu.make_mlp_objective(spec, data.view(), idx);
      const std::vector<float> theta = mlp_init(spec, seed + 1);
      compare_objectives(*g, cpu, theta, seed + 2,
                         std::string("mlp ") + activation_name(act) + "/" + loss_name(loss));
      ++seed;
    }
}

void gpu_mlp_large_batch_impl() {
  test::require_gpu_or_skip();
  // more rows than one 256-thread pass of the head / colsum lanes, wide layers
  const MlpSpec spec = mlp_spec({20, 128, 64, 10}, Activation::Gelu, LossKind::SoftmaxCrossEntropy, 1e-4);
  const OwnedDataset data = make_data(5000, 20, 10, 7);
  MlpObjective cpu(spec, data.view());
  auto g = gpu_backend()->make_mlp_objective(spec, data.view(), {});
  compare_objectives(*g, cpu, mlp_init(spec, 8), 9, "mlp large", 1e-4, 8);
}

void gpu_pinn_matches_cpu_impl() {
  test::require_gpu_or_skip();
  for (int variant = 0; variant < 3; ++variant) {
    PinnSpec spec;
    spec.n_collocation = 1000;
    spec.beta = variant == 1 ? 40.0 : 1.0;
    spec.lambda = variant == 2 ? 0.5 : 1.0;
    spec.weight_decay = variant == 2 ? 1e-3 : 0.0;
    if (variant == 2) spec.activation = Activation::Gelu;
    PinnObjective cpu(spec);
    auto g = gpu_backend()->make_pinn_objective(spec, cpu.points());
    compare_objectives(*g, cpu, pinn_init(spec, 11 + variant), 12 + variant, "pinn variant " + std::to_string(variant),
                       1e-4, 16);
  }
  // no boundary term
  PinnSpec spec;
  spec.widths = {2, 20, 20, 1};
  PinnPoints pts = small_points(50, 0, 200, 3);
  PinnObjective cpu(spec, pts);
  auto g = gpu_backend()->make_pinn_objective(spec, pts);
  compare_objectives(*g, cpu, pinn_init(spec, 4), 5, "pinn without BC");
}

void gpu_deterministic_impl() {
  test::require_gpu_or_skip();
  PinnSpec spec;
  spec.n_collocation = 500;
  PinnObjective cpu(spec);
  auto g = gpu_backend()->make_pinn_objective(spec, cpu.points());
  const std::vector<float> theta = pinn_init(spec, 21);
  const std::size_t P = theta.size();
  const std::vector<float> v = gaussian(P, 22);
  std::vector<float> g1(P), g2(P), h1(P), h2(P);
  const double l1 = g->loss_grad(theta.data(), g1.data(), {});
  const double l2 = g->loss_grad(theta.data(), g2.data(), {});
  g->hvp(theta.data(), v.data(), h1.data(), {});
  g->hvp(theta.data(), v.data(), h2.data(), {});
  EXPECT_EQ(l1, l2);
  EXPECT(std::memcmp(g1.data(), g2.data(), P * sizeof(float)) == 0);
  EXPECT(std::memcmp(h1.data(), h2.data(), P * sizeof(float)) == 0);
  EXPECT_EQ(g->loss(theta.data(), {}), l1);
  const GridCase gc = grid_case(P, 3, 300, 23);
  std::vector<double> o1(gc.n), o2(gc.n);
  g->loss_grid(theta.data(), gc.dirs.data(), 3, gc.coords.data(), gc.n, o1.data(), {});
  g->loss_grid(theta.data(), gc.dirs.data(), 3, gc.coords.data(), gc.n, o2.data(), {});
  EXPECT(o1 == o2);
}

void gpu_loss_grid_progress_and_cancel_impl() {
  test::require_gpu_or_skip();
  const MlpSpec spec = mlp_spec({3, 8, 1}, Activation::Tanh, LossKind::Mse);
  const OwnedDataset data = make_data(64, 3, 1, 31);
  auto g = gpu_backend()->make_mlp_objective(spec, data.view(), {});
  const std::vector<float> theta = mlp_init(spec, 32);
  const std::size_t P = theta.size();
  const std::size_t n = 3 * cuda::grid_block_points(P, 1u << 30) + 5;  // several blocks
  const GridCase gc = grid_case(P, 2, n, 33);
  std::vector<double> out(n, -1.0);
  // progress: increasing, ends at (n, n)
  std::vector<double> seen;
  OpContext ctx;
  ctx.progress = [&](double done, double total) {
    EXPECT_EQ(total, double(n));
    seen.push_back(done);
  };
  g->loss_grid(theta.data(), gc.dirs.data(), 2, gc.coords.data(), n, out.data(), ctx);
  EXPECT(seen.size() >= 4);
  EXPECT(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), double(n));
  for (double o : out) EXPECT(std::isfinite(o) && o >= 0.0);
  // cancelled from the progress callback after the first block: the next block refuses
  OpContext cctx;
  cctx.cancel = std::make_shared<CancelToken>();
  int reports = 0;
  cctx.progress = [&](double, double) {
    ++reports;
    cctx.cancel->cancel();
  };
  EXPECT_THROWS_CODE(g->loss_grid(theta.data(), gc.dirs.data(), 2, gc.coords.data(), n, out.data(), cctx),
                     ErrorCode::Cancelled);
  EXPECT_EQ(reports, 1);
  // cancelled before the start: every entry point refuses
  OpContext pre;
  pre.cancel = std::make_shared<CancelToken>();
  pre.cancel->cancel();
  std::vector<float> buf(P);
  EXPECT_THROWS_CODE(g->loss(theta.data(), pre), ErrorCode::Cancelled);
  EXPECT_THROWS_CODE(g->loss_grad(theta.data(), buf.data(), pre), ErrorCode::Cancelled);
  EXPECT_THROWS_CODE(g->hvp(theta.data(), theta.data(), buf.data(), pre), ErrorCode::Cancelled);
  // and the objective still works afterwards
  EXPECT(std::isfinite(g->loss(theta.data(), {})));
  // n_points == 0 and k == 0
  g->loss_grid(theta.data(), nullptr, 0, nullptr, 0, out.data(), {});
  std::vector<double> one(3);
  g->loss_grid(theta.data(), nullptr, 0, nullptr, 3, one.data(), {});
  const double l = g->loss(theta.data(), {});
  for (double o : one) EXPECT(rel_err1(o, l) <= 1e-12);
}

void gpu_invalid_inputs_impl() {
  test::require_gpu_or_skip();
  MlpSpec spec = mlp_spec({3, 4, 2}, Activation::Tanh, LossKind::SoftmaxCrossEntropy);
  OwnedDataset data = make_data(10, 3, 2, 41);
  data.labels[3] = 5;  // out of range
  EXPECT_THROWS_CODE(gpu_backend()->make_mlp_objective(spec, data.view(), {}), ErrorCode::InvalidArgument);
  PinnSpec ps;
  PinnPoints pts;  // empty
  EXPECT_THROWS_CODE(gpu_backend()->make_pinn_objective(ps, pts), ErrorCode::InvalidArgument);
}

}  // namespace

// ================================================================ host emulation
// The kernel sources (linalg_kernels.cuh for the SGEMM, models_kernels.cuh for the
// rest) compiled for the host emulator in namespace nnscope::cuda::emu.
#include "cuda_emu_support.h"
#include "cuda/linalg_kernels.cuh"

namespace nnscope::cuda::emu {
inline void gemm_dev(const linalg::GemmArgs& g, void* stream) {
  if (g.m == 0 || g.n == 0) return;
  sgemm_launch((long long)g.m, gemm_params(g), g.trans_a, g.trans_b, 1, 64, stream);
}
}  // namespace nnscope::cuda::emu

#include "cuda/models_kernels.cuh"

namespace {

namespace ek = nnscope::cuda::emu;

// What models.cu's GpuObjective does, on host memory through the emulated kernels.
struct EmuObjective {
  ek::MProblem prob;
  ek::MWork work;
  std::vector<float> ws, y, out, thetab, vb;
  std::vector<int> labels;
  std::vector<double> ic, loss{0.0};
  std::size_t P = 0;

  explicit EmuObjective(ek::MProblem p) : prob(std::move(p)) {
    P = (std::size_t)prob.net.nparams;
    ws.assign(ek::carve_work(prob.net, prob.rows, nullptr, nullptr) + 4, std::nanf(""));
    ek::carve_work(prob.net, prob.rows, ws.data(), &work);
    std::copy(prob.x.begin(), prob.x.end(), work.x);
    prob.head.y = prob.y.data();
    prob.head.labels = prob.labels.data();
    prob.head.ic_target = prob.ic_target.data();
    out.assign(P, std::nanf(""));
  }
  double finish(const float* theta) const {
    double l = loss[0];
    if (prob.weight_decay != 0.0) {
      double sq = 0.0;
      for (std::size_t p = 0; p < P; ++p) sq += double(theta[p]) * double(theta[p]);
      l += 0.5 * prob.weight_decay * sq;
    }
    return l;
  }
  double run(int mode, const std::vector<float>& theta, const std::vector<float>* v, std::vector<float>* res) {
    thetab = theta;
    if (v) vb = *v;
    std::fill(out.begin(), out.end(), std::nanf(""));  // every entry must be written
    ek::run_pass(prob.net, prob.rows, work, prob.head, mode, thetab.data(), v ? vb.data() : nullptr, out.data(),
                 loss.data(), nullptr);
    if (prob.weight_decay != 0.0 && mode != ek::kModeLoss)
      ek::add_decay_launch((long long)P, prob.weight_decay, mode == ek::kModeGrad ? thetab.data() : vb.data(),
                           out.data(), nullptr);
    if (res) *res = out;
    return finish(theta.data());
  }
  std::vector<double> grid(const std::vector<float>& theta0, const GridCase& g) {
    const std::size_t ld = (P + 3) / 4 * 4;
    std::vector<float> Theta(g.n * ld + 4, std::nanf(""));
    std::vector<double> l(g.n), sq(g.n);
    ek::run_grid_block(prob.net, prob.rows, work, prob.head, (long long)g.n, (int)g.k, theta0.data(), g.dirs.data(),
                       g.coords.data(), Theta.data(), (long long)ld, l.data(), sq.data(), nullptr);
    for (std::size_t q = 0; q < g.n; ++q) l[q] += 0.5 * prob.weight_decay * sq[q];
    return l;
  }
};

void emu_compare(EmuObjective& e, Objective& cpu, const std::vector<float>& theta, uint64_t seed,
                 const std::string& what, std::size_t grid_points = 3) {
  const std::size_t P = cpu.dim();
  EXPECT_EQ(e.P, P);
  const double tol = 2e-5;
  std::vector<float> gc(P), ge, hc(P), he;
  const double lc = cpu.loss_grad(theta.data(), gc.data(), {});
  const double le = e.run(ek::kModeGrad, theta, nullptr, &ge);
  if (!(rel_err1(le, lc) <= tol)) throw test::Failure(what + ": loss " + std::to_string(le) + " vs " + std::to_string(lc));
  const double eg = rel_err(ge.data(), gc.data(), P);
  if (!(eg <= tol)) throw test::Failure(what + ": gradient rel err " + std::to_string(eg));
  EXPECT_EQ(e.run(ek::kModeLoss, theta, nullptr, nullptr), le);  // loss-only pass, same bits
  const std::vector<float> v = gaussian(P, seed);
  cpu.hvp(theta.data(), v.data(), hc.data(), {});
  e.run(ek::kModeHvp, theta, &v, &he);
  const double eh = rel_err(he.data(), hc.data(), P);
  if (!(eh <= tol)) throw test::Failure(what + ": hvp rel err " + std::to_string(eh));
  // determinism: the same pass twice gives the same bits
  std::vector<float> he2;
  e.run(ek::kModeHvp, theta, &v, &he2);
  EXPECT(std::memcmp(he.data(), he2.data(), P * sizeof(float)) == 0);
  if (grid_points) {
    const GridCase g = grid_case(P, 2, grid_points, seed + 3);
    const std::vector<double> out = e.grid(theta, g);
    const std::vector<double> ref = pointwise_losses(cpu, theta, g);
    for (std::size_t i = 0; i < g.n; ++i)
      if (!(rel_err1(out[i], ref[i]) <= tol))
        throw test::Failure(what + ": grid row " + std::to_string(i) + ": " + std::to_string(out[i]) + " vs " +
                            std::to_string(ref[i]));
    EXPECT_EQ(out[0], le);  // θ₀ itself: the same bits as the one-point pass
  }
}

void emu_activation_kernel_impl() {
  // P = 5 primal rows of width 3, the last Nc = 2 with C = 2 channels.
  const long long P = 5, Nc = 2, n = 3, R = P + 2 * Nc;
  for (Activation act : kActs) {
    std::vector<float> z = gaussian(R * n, 50 + int(act), 2.0f), bias = gaussian(n, 60);
    const std::vector<float> z_in = z;
    std::vector<float> a(R * n, std::nanf("")), s1(P * n), s2(P * n), s3(P * n);
    ek::act_forward_launch(int(act), P, Nc, 2, (int)n, z.data(), bias.data(), a.data(), s1.data(), s2.data(),
                           s3.data(), nullptr);
    for (long long i = 0; i < P; ++i)
      for (long long j = 0; j < n; ++j) {
        const double zz = double(z_in[i * n + j] + bias[j]);
        const detail::ActDerivs r = detail::act_eval(act, zz);
        const long long e = i * n + j;
        EXPECT_NEAR(a[e], r.f, 2e-6 * (1 + std::fabs(r.f)));
        EXPECT_NEAR(s1[e], r.d1, 2e-6 * (1 + std::fabs(r.d1)));
        EXPECT_NEAR(s2[e], r.d2, 2e-6 * (1 + std::fabs(r.d2)));
        EXPECT_NEAR(s3[e], r.d3, 4e-6 * (1 + std::fabs(r.d3)));
        if (i >= P - Nc)
          for (int c = 0; c < 2; ++c) {
            const long long q = (P + c * Nc + (i - (P - Nc))) * n + j;
            EXPECT_NEAR(a[q], r.d1 * z_in[q], 4e-6 * (1 + std::fabs(r.d1 * z_in[q])));
            EXPECT_EQ(z[q], z_in[q]);  // channel rows get no bias
          }
      }
  }
}

void emu_colsum_and_sumsq_impl() {
  for (long long rows : {1LL, 9LL, 37LL})
    for (int n : {1, 33, 70}) {
      const std::vector<float> m = gaussian(rows * n, 70 + rows + n);
      std::vector<float> out(n, std::nanf(""));
      ek::colsum_launch(rows, n, m.data(), out.data(), nullptr);
      for (int j = 0; j < n; ++j) {
        double s = 0.0;
        for (long long i = 0; i < rows; ++i) s += m[i * n + j];
        EXPECT_NEAR(out[j], s, 1e-6 * (1 + std::fabs(s)));
      }
    }
  // perturbation and squared norms of 3 points, P = 7 (ld 8), k = 2
  const long long P = 7, ld = 8, M = 3;
  const std::vector<float> t0 = gaussian(P, 80), dirs = gaussian(2 * P, 81), coords = gaussian(M * 2, 82);
  std::vector<float> Th(M * ld, -7.0f);
  std::vector<double> sq(M);
  ek::perturb_launch(M, P, 2, ld, t0.data(), dirs.data(), coords.data(), Th.data(), nullptr);
  ek::sumsq_launch(M, P, ld, Th.data(), sq.data(), nullptr);
  for (long long q = 0; q < M; ++q) {
    double s = 0.0;
    for (long long p = 0; p < P; ++p) {
      const double ref = double(t0[p]) + double(coords[q * 2]) * dirs[p] + double(coords[q * 2 + 1]) * dirs[P + p];
      EXPECT_NEAR(Th[q * ld + p], ref, 1e-6 * (1 + std::fabs(ref)));
      s += double(Th[q * ld + p]) * Th[q * ld + p];
    }
    EXPECT_NEAR(sq[q], s, 1e-12 * s);
    EXPECT_EQ(Th[q * ld + P], -7.0f);  // padding untouched
  }
}

void emu_mlp_every_activation_and_loss_impl() {
  uint64_t seed = 200;
  for (Activation act : kActs)
    for (LossKind loss : kLosses) {
      const std::size_t d_out = loss == LossKind::Mse ? 2 : (loss == LossKind::BinaryCrossEntropy ? 2 : 3);
      const double wd = act == Activation::Sigmoid ? 1e-2 : 0.0;
      const MlpSpec spec = mlp_spec({3, 5, 4, d_out}, act, loss, wd);
      const OwnedDataset data = make_data(9, 3, d_out, seed);
      std::vector<std::size_t> idx;
      if (act == Activation::Softplus) idx = {8, 1, 4, 4, 0};  // a subset with a repeat
      MlpObjective cpu(spec, data.view(), idx);
      EmuObjective e(ek::mlp_problem(spec, data.view(), idx));
      std::vector<float> theta = mlp_init(spec, seed + 1);
      for (std::size_t i = 0; i < theta.size(); ++i) theta[i] += 0.05f * float((i % 5)) - 0.1f;  // nonzero biases
      emu_compare(e, cpu, theta, seed + 2, std::string("emu mlp ") + activation_name(act) + "/" + loss_name(loss),
                  act == Activation::Tanh || act == Activation::Relu ? 3 : 0);
      ++seed;
    }
}

void emu_pinn_matches_cpu_impl() {
  for (int variant = 0; variant < 3; ++variant) {
    PinnSpec spec;
    spec.widths = {2, 6, 5, 1};
    spec.activation = variant == 2 ? Activation::Gelu : Activation::Tanh;
    spec.beta = variant == 1 ? 40.0 : 2.0;
    spec.lambda = variant == 1 ? 0.5 : 1.0;
    spec.weight_decay = variant == 2 ? 1e-2 : 0.0;
    const PinnPoints pts = small_points(4, variant == 1 ? 0 : 3, 5, 90 + variant);
    PinnObjective cpu(spec, pts);
    EmuObjective e(ek::pinn_problem(spec, pts));
    EXPECT_EQ(e.prob.rows.R(), (long long)(4 + 2 * pts.bc_t.size() + 5 + 10));
    emu_compare(e, cpu, pinn_init(spec, 95 + variant), 96 + variant, "emu pinn variant " + std::to_string(variant),
                variant == 0 ? 3 : 0);
  }
}

void emu_problem_layout_impl() {
  PinnSpec spec;
  spec.widths = {2, 4, 1};
  const PinnPoints pts = small_points(2, 1, 2, 5);
  const ek::MProblem p = ek::pinn_problem(spec, pts);
  EXPECT_EQ(p.rows.P, 2 + 2 + 2);
  EXPECT_EQ(p.rows.Nc, 2);
  EXPECT_EQ(p.x.size(), std::size_t(2 * 10));
  EXPECT_EQ(p.x[2 * 3], 6.28318530717958647692f);  // BC partner at x = 2π
  EXPECT_EQ(p.x[2 * 3 + 1], float(pts.bc_t[0]));
  EXPECT_EQ(p.x[2 * 6], 1.0f);      // channel ∂/∂x of the first collocation point
  EXPECT_EQ(p.x[2 * 6 + 1], 0.0f);
  EXPECT_EQ(p.x[2 * 8], 0.0f);      // channel ∂/∂t
  EXPECT_EQ(p.x[2 * 8 + 1], 1.0f);
  EXPECT_EQ(p.net.nparams, (long long)pinn_layout(spec).total);
  const std::size_t floats = ek::carve_work(p.net, p.rows, nullptr, nullptr);
  EXPECT(floats % 4 == 0);
}

}  // namespace

#define NNSCOPE_CUDA_CASE(fn) fn()
#else
#define NNSCOPE_CUDA_CASE(fn) ::nnscope::test::skip("nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off)")
#endif  // NNSCOPE_HAVE_CUDA

// ---------------------------------------------------------------- registered cases
NNSCOPE_TEST(emu_activation_kernel) { NNSCOPE_CUDA_CASE(emu_activation_kernel_impl); }
NNSCOPE_TEST(emu_colsum_and_sumsq) { NNSCOPE_CUDA_CASE(emu_colsum_and_sumsq_impl); }
NNSCOPE_TEST(emu_mlp_every_activation_and_loss) { NNSCOPE_CUDA_CASE(emu_mlp_every_activation_and_loss_impl); }
NNSCOPE_TEST(emu_pinn_matches_cpu) { NNSCOPE_CUDA_CASE(emu_pinn_matches_cpu_impl); }
NNSCOPE_TEST(emu_problem_layout) { NNSCOPE_CUDA_CASE(emu_problem_layout_impl); }
NNSCOPE_TEST(gpu_mlp_every_activation_and_loss) { NNSCOPE_CUDA_CASE(gpu_mlp_every_activation_and_loss_impl); }
NNSCOPE_TEST(gpu_mlp_large_batch) { NNSCOPE_CUDA_CASE(gpu_mlp_large_batch_impl); }
NNSCOPE_TEST(gpu_pinn_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_pinn_matches_cpu_impl); }
NNSCOPE_TEST(gpu_deterministic) { NNSCOPE_CUDA_CASE(gpu_deterministic_impl); }
NNSCOPE_TEST(gpu_loss_grid_progress_and_cancel) { NNSCOPE_CUDA_CASE(gpu_loss_grid_progress_and_cancel_impl); }
NNSCOPE_TEST(gpu_invalid_inputs) { NNSCOPE_CUDA_CASE(gpu_invalid_inputs_impl); }
