// nnscope core, hessian family: PyHessian's suite (top eigenvalues, trace,
// eigenvalue spectral density) done with proper Krylov methods, over any Space
// (space.h). Every algorithm takes a seed (Philox streams: same seed, same
// result, any thread count), checks ctx for cancellation at every product,
// reports progress in products, and returns the products it used.
//
// References: Lanczos with full reorthogonalisation (Parlett, "The Symmetric
// Eigenvalue Problem", ch. 13); thick restart (Wu & Simon, SIAM J. Matrix Anal.
// Appl. 22, 2000); Hutchinson (1989); Hutch++ (Meyer, Musco, Musco, Woodruff,
// SOSA 2021); stochastic Lanczos quadrature (Golub & Meurant; Ubaru, Chen, Saad
// 2017); PyHessian (Yao, Gholami, Keutzer, Mahoney 2020) for the parity modes and
// the density-grid defaults.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "hessian/space.h"

namespace nnscope::hessian {

// ---------------------------------------------------------------- tridiagonal
// Eigen-decomposition of the symmetric tridiagonal T (diagonal alpha[0..n),
// off-diagonal beta[0..n-1), beta[i] couples i and i+1) by implicit QL with
// Wilkinson shifts, in float64. values ascending. If vectors is non-null it
// receives the n×n eigenvector matrix, column j (vectors[i·n + j]) the unit
// eigenvector of values[j]. n = 0 allowed. Throws NonFinite on NaN/Inf input,
// Internal if it fails to converge (30·n sweeps).
void tridiagonal_eigen(std::size_t n, const double* alpha, const double* beta, double* values,
                       double* vectors);

// ---------------------------------------------------------------- Lanczos
struct LanczosOptions {
  std::size_t steps = 100;     // m: Krylov dimension (clamped to n)
  std::uint64_t seed = 0;      // start vector: Rademacher / √n from this seed (stream 0)
  int reorth_passes = 2;       // full reorthogonalisation passes per step (0 = none)
};

struct LanczosResult {
  std::vector<double> alpha, beta;  // T's diagonal (m) and off-diagonal (m-1)
  std::size_t restarts = 0;         // invariant subspaces met (β≈0): continued with a fresh orthogonal vector
  std::uint64_t products = 0;
};

// m Lanczos steps from slot `start` (already normalised to unit length), basis in
// slots [0, m) (slot 0 receives the start vector; start may be 0). On breakdown
// (β below n·eps·‖T‖) the next basis vector is a fresh random vector orthogonalised
// against the basis and β is recorded as 0. The space grows to m+1 slots.
LanczosResult lanczos(Space& space, std::size_t steps, std::uint64_t seed, int reorth_passes,
                      const OpContext& ctx);
// The same from a seeded Rademacher start vector.
LanczosResult lanczos(Space& space, const LanczosOptions& opts, const OpContext& ctx);

// ---------------------------------------------------------------- top-k eigenpairs
enum class Which { LargestAlgebraic, SmallestAlgebraic, LargestMagnitude };

struct EigOptions {
  std::size_t k = 1;
  Which which = Which::LargestAlgebraic;
  // Converged when ‖A·v − λ·v‖ ≤ tol · max(|λ|, ‖T‖·eps-floor): relative residual.
  // 0 = default (1e-10 for float64 storage, 1e-5 for float32).
  double tol = 0;
  std::size_t max_products = 0;  // 0 = max(1000, 20·basis)
  std::size_t basis = 0;         // Krylov basis size per restart cycle; 0 = min(n, max(2k+8, 20))
  std::uint64_t seed = 0;
  bool vectors = true;           // return eigenvectors
};

struct EigResult {
  std::vector<double> values;     // k values, ordered by `which` (largest first for LA/LM, smallest first for SA)
  std::vector<double> vectors;    // k×n row-major unit vectors when requested
  std::vector<double> residuals;  // ‖A·v − λ·v‖ of each pair (from the Lanczos relation)
  bool converged = false;         // all k pairs met the tolerance
  std::size_t restarts = 0;       // restart cycles used
  std::uint64_t products = 0;
};

// Thick-restart Lanczos (full reorthogonalisation). k is clamped to n; for n ≤
// basis the space is exhausted exactly. Not converging within max_products is not an
// error: converged = false and the best estimates are returned.
EigResult eigsh(Space& space, const EigOptions& opts, const OpContext& ctx);

struct PowerOptions {
  std::size_t k = 1;
  std::size_t max_iter = 100;  // per eigenvalue (PyHessian's maxIter)
  double tol = 1e-3;           // |λ_prev − λ| / (|λ_prev| + 1e-6) < tol (PyHessian's rule)
  std::uint64_t seed = 0;      // Gaussian start vectors
  bool vectors = true;
};

// PyHessian's power iteration with deflation by projection (largest |λ| first),
// as a parity mode. residuals are computed with one extra product per pair.
EigResult power_iteration(Space& space, const PowerOptions& opts, const OpContext& ctx);

// ---------------------------------------------------------------- trace
enum class TraceMethod { Hutchinson, HutchPlusPlus };

struct TraceOptions {
  TraceMethod method = TraceMethod::Hutchinson;
  std::size_t max_products = 1000;
  std::size_t min_samples = 10;  // Hutchinson: no stop before this many samples
  // Stop when the standard error ≤ max(abs_tol, rel_tol · |estimate|) (Hutchinson).
  double rel_tol = 1e-3;
  double abs_tol = 0;
  // Hutch++: products split as sketch k = products/3 (A·S), the rest on the
  // deflated Hutchinson part; 0 = use max_products.
  std::uint64_t seed = 0;
};

struct TraceResult {
  double estimate = 0;
  double std_error = 0;          // standard error of the estimate (Hutch++: of its Hutchinson part)
  std::vector<double> samples;   // Hutchinson vᵀAv samples (Hutch++: the deflated samples)
  bool converged = false;        // the standard-error rule was met (Hutch++: always true)
  std::uint64_t products = 0;
};

TraceResult trace(Space& space, const TraceOptions& opts, const OpContext& ctx);

// ---------------------------------------------------------------- density (SLQ)
struct SlqOptions {
  std::size_t steps = 100;  // m Lanczos steps per run (PyHessian's iter)
  std::size_t runs = 1;     // n_v
  std::uint64_t seed = 0;   // run r uses Philox stream r
};

struct SlqResult {
  std::size_t runs = 0, steps = 0;  // steps actually used (min(m, n))
  std::vector<double> nodes;        // runs×steps Ritz values (ascending per run)
  std::vector<double> weights;      // runs×steps squared first components; each run sums to 1
  std::uint64_t products = 0;
};

SlqResult slq(Space& space, const SlqOptions& opts, const OpContext& ctx);

struct GridOptions {
  std::size_t points = 10000;
  double sigma_squared = 1e-5;  // variance = sigma_squared · max(1, range) (PyHessian)
  double overhead = 0.01;       // grid = [mean_r min_j λ − overhead, mean_r max_j λ + overhead]
};

struct DensityGrid {
  std::vector<double> grid, density;  // density integrates to 1 (Σ φ·Δt = 1)
  double variance = 0;
};

// PyHessian's density_generate with the PR #23 (first-row weights) semantics.
DensityGrid density_grid(const SlqResult& slq, const GridOptions& opts);

}  // namespace nnscope::hessian
