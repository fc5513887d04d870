// nnscope core, hessian family: helpers shared by the algorithm translation
// units (not a public header; the tests include it to check the dense solver).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "hessian/hessian.h"
#include "hessian/space.h"

namespace nnscope::hessian::detail {

constexpr double kEps64 = 2.220446049250313e-16;  // DBL_EPSILON
constexpr double kEps32 = 1.1920928955078125e-7;  // FLT_EPSILON

inline double storage_eps(const Space& s) { return s.single_precision() ? kEps32 : kEps64; }

// Random vectors into a slot (host-generated in float64 from Philox (seed, stream),
// then loaded). scale multiplies every entry.
void load_rademacher(Space& s, std::size_t slot, std::uint64_t seed, std::uint64_t stream, double scale);
void load_gaussian(Space& s, std::size_t slot, std::uint64_t seed, std::uint64_t stream);

// β at or below this is a breakdown (an invariant subspace): tnorm·max(eps_storage,
// min(n·eps64, 1e-12)). Never above the level at which the Lanczos relation's
// residual estimates would be corrupted for the storage precision.
double breakdown_threshold(const Space& s, double tnorm);

// Fills slot `dst` with a fresh random unit vector orthogonal (two CGS passes) to
// slots [0, count). Draws Rademacher vectors from (seed, stream), stream+1, ...
// until one keeps a sensible norm; *stream is advanced past the ones used.
// Requires count < dim. Uses no products.
void fresh_orthogonal(Space& s, std::size_t count, std::size_t dst, std::uint64_t seed, std::uint64_t* stream);

// One Lanczos step: slot dst = A·slot j, orthogonalised to slots [0, j+1), then
// normalised. passes 0: the plain three-term recurrence against slots j and j-1
// (beta_prev). local (the recurrence holds: T is tridiagonal at row j): the
// three-term recurrence, then up to `passes` full CGS passes, each after the first
// only when the previous cut the norm below 1/√2 (Kahan–Parlett). !local (the first
// step after a thick restart, whose arrow couples v_j to every kept vector):
// `passes` unconditional CGS passes (fused sweeps). Returns α_j (coefficient on
// slot j) and β_j = ‖residual‖. On breakdown (β ≤ breakdown_threshold) dst
// receives a fresh random unit vector orthogonal to [0, j+1) and β is returned as
// 0 (breakdown set), unless j+1 == dim (the basis already spans the space: nothing
// to restart, dst holds the unnormalised remainder). tnorm is the running estimate
// of ‖T‖ (updated); beta_prev also stands for the arrow's row sum after a restart.
struct StepResult {
  double alpha = 0, beta = 0;
  bool breakdown = false;
};
StepResult lanczos_step(Space& s, std::size_t j, std::size_t dst, int passes, double beta_prev, bool local,
                        double& tnorm, std::uint64_t seed, std::uint64_t* restart_stream,
                        std::vector<double>& coeffs, const OpContext& ctx);

// m Lanczos steps from the unit vector in slot 0 (basis in slots [0, m), slot m
// scratch). Breakdown restarts draw from (seed, restart_stream...). Progress:
// ctx.report(progress_done + products, progress_total) after every product.
LanczosResult lanczos_run(Space& s, std::size_t m, int passes, std::uint64_t seed, std::uint64_t restart_stream,
                          const OpContext& ctx, double progress_done, double progress_total);

// Dense symmetric eigen-decomposition (float64) of the n×n row-major a (only the
// lower triangle is read): Householder tridiagonalisation + implicit QL. values
// ascending; vectors (if non-null) n×n with column j the unit eigenvector of
// values[j]. Throws NonFinite on NaN/Inf, Internal on non-convergence.
void symmetric_eigen(std::size_t n, const double* a, double* values, double* vectors);

// The implicit QL iteration on a symmetric tridiagonal (d[n] diagonal, e[n-1]
// off-diagonal), accumulating rotations into z (n×n row-major, may be null);
// values left in d unsorted. Internal helper of tridiagonal_eigen / symmetric_eigen.
void tql(std::size_t n, double* d, double* e, double* z);
// Sorts d ascending (ties by index) and permutes the columns of z (may be null).
void sort_eigen(std::size_t n, double* d, double* z);

}  // namespace nnscope::hessian::detail
