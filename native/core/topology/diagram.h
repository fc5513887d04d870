// nnscope core, topology family: distances between 0-dim persistence diagrams.
//
// A diagram holds finite pairs (birth ≤ death) and, separately, the births of its
// essential classes (death = +∞). Ground metric: L∞, as GUDHI and persim use:
// d((b, d), (b', d')) = max(|b − b'|, |d − d'|); a point's distance to the diagonal
// is (d − b)/2 (to its projection). Points may be matched to the diagonal.
//
// Essential classes are matched only among themselves: ascending births in order
// (optimal on the line for both costs). Different numbers of essential classes give
// +∞. The total is max(finite part, essential part) for the bottleneck distance and
// finite part + essential part for the 1-Wasserstein distance; diagrams without
// essential classes contribute 0 there.
//
// Both distances are exact (no approximation): the bottleneck distance is the
// smallest candidate cost (a pair cost or a half persistence) at which the bipartite
// graph of points and diagonal copies has a perfect matching (binary search,
// Hopcroft–Karp; O(N^2.5 log N) for N = n + m points); the 1-Wasserstein distance is
// a minimum-cost perfect assignment in float64 (Hungarian method with potentials,
// O(N^3)), reported as the sum of the chosen costs.
#pragma once
#include <cstddef>
#include <vector>

namespace nnscope::topology {

struct Diagram {
  std::vector<double> birth, death;  // finite pairs, birth[i] ≤ death[i]
  std::vector<double> essential;     // births of the essential classes
};

// Errors: InvalidArgument (birth/death of different lengths, death < birth),
// NonFinite (a NaN or ±Inf value).
double bottleneck_distance(const Diagram& a, const Diagram& b);
double wasserstein1_distance(const Diagram& a, const Diagram& b);

}  // namespace nnscope::topology
