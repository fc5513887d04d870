// nnscope core, attention family: K-means (Lloyd) for Squeezed Attention's offline
// clustering of keys, on the CPU.
//
// Algorithm (the contract the tests check against a brute force):
//   1. Space. cosine = true: y_i = x_i / ‖x_i‖ (a zero row stays zero, never NaN);
//      cosine = false: y_i = x_i. Lloyd runs on y with squared Euclidean distance.
//   2. Init (in y space): initial_centroids if given; else k-means++ (the classic
//      D²-sampling: first centre uniform, each next one drawn ∝ its squared distance
//      to the nearest chosen centre; all distances 0 → uniform) or Random (k
//      distinct points, uniform), from Philox Rng(seed, stream).
//   3. Iteration t = 1..iterations:
//        assign  : label_i = argmin_j ‖y_i − c_j‖² (ties → lowest j); history[t-1]
//                  = Σ_i min_j ‖y_i − c_j‖² (float64 sum of float32 distances);
//        reseed  : every empty cluster (ascending j) takes the point farthest from
//                  its centre (ties → lowest point index) among clusters that still
//                  have ≥ 2 members; its label changes, its distance becomes 0;
//        stop    : if the labels equal the previous iteration's (converged);
//        update  : c_j = mean of the y_i labelled j (float64 sums, point order).
//      With iterations = 0 there is one assignment (+ reseed) and no update.
//      Iterations after the first keep Hamerly's bounds (an upper bound on each
//      point's distance to its centre, a lower bound on the distance to every
//      other centre, moved by the centre shifts, padded by the float32 rounding
//      of the expanded distances): a point whose bounds prove its label unchanged
//      skips the GEMM and gets its exact distance to its centre; the labels are
//      those of the full assignment.
//   4. Result: labels of the last assignment (no cluster is empty when n ≥ k);
//      centroids = per-cluster mean of the RAW rows x (cosine: the paper's rule;
//      non-cosine: the same as the centres in y); inertia = Σ_i ‖y_i − μ_label‖²
//      with μ the per-cluster mean in y space (float64), i.e. in the space clustered.
// Distances in the assignment use ‖y‖² − 2·y·c + ‖c‖² over tiles of points × all
// centres (SGEMM) with a fused argmin; the N×k matrix is never materialised.
// Deterministic: the same inputs, options and seed give the same bits for any
// thread count (fixed tiles, reductions in fixed order).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "base/device.h"

namespace nnscope::attention {

enum class KmeansInit { PlusPlus, Random };

struct KmeansOptions {
  std::size_t clusters = 1;      // k (≥ 1; clamped to n)
  std::size_t iterations = 20;   // Lloyd iterations cap (assign + update); 0 = assign once
  KmeansInit init = KmeansInit::PlusPlus;
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;      // Philox stream (e.g. one per head)
  bool cosine = true;
  // Optional [k, d] initial centres in the clustered space (unit vectors for
  // cosine, not re-normalised); overrides init. Mainly for tests.
  const float* initial_centroids = nullptr;
  // Cuda: the init (step 2) runs on the CPU, Lloyd on the GPU (cuda/attention.h:
  // kmeans_async); labels can differ only where two centres tie within float32
  // rounding, and `skipped` is 0. Auto → Cuda when a GPU answers.
  Device device = Device::Cpu;
};

struct KmeansResult {
  std::size_t clusters = 0, d = 0;       // k after clamping
  std::vector<float> centroids;          // [k, d]: raw means (see above)
  std::vector<std::int32_t> labels;      // [n]
  std::vector<std::int32_t> sizes;       // [k]
  double inertia = 0;                    // in the space clustered
  std::size_t iterations = 0;            // assignment steps run
  std::size_t reseeded = 0;              // empty clusters reseeded, all iterations
  bool converged = false;                // stopped because labels did not change
  std::size_t skipped = 0;               // point-iterations whose assignment the bounds proved unchanged
  std::vector<double> history;           // assignment inertia per iteration (non-increasing)
};

// Validates (InvalidArgument: n = 0, d = 0, clusters = 0, null x; NonFinite: NaN/Inf
// in x) and clusters the n rows of x [n, d]. Checks ctx for cancellation every
// iteration and reports progress in iterations.
KmeansResult kmeans(const float* x, std::size_t n, std::size_t d, const KmeansOptions& opts,
                    const OpContext& ctx = {});

// The assignment step alone (exposed for tests and GPU comparisons): labels[i] =
// argmin_j ‖y_i − c_j‖² (ties → lowest j) and dist2[i] the float32 distance
// (clamped at 0; dist2 may be null). y [n, d], centres [k, d]. Returns Σ dist2 in
// float64. Bit-identical for any thread count.
double kmeans_assign(const float* y, std::size_t n, std::size_t d, const float* centres, std::size_t k,
                     std::int32_t* labels, float* dist2, const OpContext& ctx = {});

}  // namespace nnscope::attention
