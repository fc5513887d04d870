// nnscope core, landscape family: the O(P) and O(n·k) loops behind loss
// landscapes — direction normalisation (Li et al. 2018's layer and filter
// modes), float64 re-orthonormalisation, seeded random directions, and the
// coordinates of regular grids and scattered samples. The losses themselves come
// from models::Objective::loss_grid.
//
// Layouts. A direction is a flat vector of P parameters cut into tensors
// (offset, shape); the tensors must tile [0, P) exactly (any order). A tensor of
// rank ≥ 2 is a weight: its filters are the slices along the first axis (for a
// [out, in] matrix, row r = the weights into output unit r). A rank-1 tensor is a
// bias-like vector.
//
// Grids. dims = steps^k, row-major with the LAST axis fastest — the index layout
// of topology/graph.h — so point n = ((i_0·s + i_1)·s + …) has coordinates
// (a(i_0), …, a(i_{k−1})).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"

namespace nnscope::landscape {

struct TensorSlice {
  std::size_t offset = 0;
  std::vector<std::size_t> shape;  // rank ≥ 1
};

enum class Normalization {
  None,    // directions unchanged (biases per BiasMode)
  Layer,   // every tensor t: d_t ← d_t·‖θ_t‖/(‖d_t‖ + 1e-10) (Landscaper; Li et al.'s "layer")
  Filter,  // every filter f of a weight: d_f ← d_f·‖θ_f‖/(‖d_f‖ + 1e-10) (Li et al.'s "filter")
};

// What happens to the rank-1 tensors.
enum class BiasMode {
  Keep,       // left as they are
  Zero,       // set to 0 (Li et al.'s --xignore biasbn)
  Normalize,  // scaled as one tensor: d_b ← d_b·‖θ_b‖/(‖d_b‖ + 1e-10)
};

// Scale added to ‖d‖ in the normalisations (the reference tools' 1e-10).
inline constexpr double kNormEps = 1e-10;

// Checks that `layout` tiles [0, P): InvalidArgument otherwise (or for a rank-0 shape).
void check_layout(const std::vector<TensorSlice>& layout, std::size_t P);

// Normalises the k directions dirs (k×P, row-major) in place against θ₀, in
// float64 per tensor / filter. Weights (rank ≥ 2) follow `mode`; rank-1 tensors
// follow `biases`. Deterministic for any thread count.
void normalize_directions(const float* theta0, float* dirs, std::size_t k, std::size_t P,
                          const std::vector<TensorSlice>& layout, Normalization mode, BiasMode biases,
                          const OpContext& ctx);

// Modified Gram–Schmidt, two passes, in float64, in place: rows of dirs (k×P)
// become orthonormal spanning the same space. InvalidArgument when a row is zero
// or (numerically) in the span of the previous rows (residual ≤ 1e-10 of its norm).
void orthonormalize(double* dirs, std::size_t k, std::size_t P, const OpContext& ctx);
// The same on float32 rows (computed in float64, rounded once at the end). When
// scale_to (P entries) is given, every row is then scaled to ‖scale_to‖ (rows stay
// mutually orthogonal, Gram = ‖scale_to‖²·I).
void orthonormalize(float* dirs, std::size_t k, std::size_t P, const OpContext& ctx,
                    const float* scale_to = nullptr);

// k directions of P standard normal entries: row j is Philox stream j of `seed`
// (base/rng.h), so any row is reproducible on its own.
void random_directions(float* out, std::size_t k, std::size_t P, std::uint64_t seed, const OpContext& ctx);

enum class Spacing {
  Linspace,    // a(i) = distance·(2i − (steps−1))/(steps−1): steps points from −distance to +distance
  Landscaper,  // a(i) = distance·2·(i − ⌊steps/2⌋)/steps: Landscaper's step 2·distance/steps
};

// The coordinate of grid index i (float64, before the float32 rounding of the
// coordinate arrays). Linspace is exactly symmetric, a(i) = −a(steps−1−i), and
// exactly 0 at the centre of an odd grid.
double grid_coordinate(std::size_t i, std::size_t steps, double distance, Spacing spacing);

// steps^k, or TooLarge when it exceeds max_points; InvalidArgument for k = 0 or steps < 2.
std::size_t grid_points(std::size_t k, std::size_t steps, std::size_t max_points);

// Coordinates of grid points [begin, begin + count) into out (count×k, float32).
void grid_coordinates(float* out, std::size_t k, std::size_t steps, double distance, Spacing spacing,
                      std::size_t begin, std::size_t count, const OpContext& ctx);

enum class Scatter {
  Uniform,  // a_ij = −distance + 2·distance·u, u from Philox stream 0 (draw i·k + j)
  Latin,    // Latin hypercube: per axis j a random permutation π_j (stream 1 + j) and
            // a_ij = −distance + 2·distance·(π_j(i) + u_ij)/n (u from stream 0)
};

// n scattered samples in the box [−distance, distance]^k into out (n×k, float32).
void scattered_coordinates(float* out, std::size_t n, std::size_t k, double distance, Scatter method,
                           std::uint64_t seed, const OpContext& ctx);

}  // namespace nnscope::landscape
