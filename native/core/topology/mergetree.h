// nnscope core, topology family: merge trees and 0-dim persistence of sublevel
// (join tree) and superlevel (split tree) sets of a scalar field on an implicit
// grid or a CSR graph (graph.h), by ONE sort of the vertices and a union-find
// sweep (path halving, union by rank): O(n log n + m·α(n)), or O(n + m·α(n))
// here since the sort is a sample sort with an in-cache radix sort per bucket (keysort.h).
//
// Order. The join tree sweeps the vertices in increasing (value, index) order
// (graph.h's vertex_less; −0.0 == +0.0). The split tree sweeps the EXACT REVERSE
// of that order, i.e. decreasing (value, index): ties go to the LARGER index
// first. Join and split trees of one field therefore simulate the same generic
// function (as a contour tree needs), and split(f) equals the join tree of
// g(i) = −f(N−1−i) on the graph with vertex i renamed N−1−i (on grids: every
// axis flipped, which maps each Neighborhood to itself). Below, "minimum",
// "earlier", "lower" refer to the sweep order; for a split tree read maximum.
//
// Sweep. A vertex with no earlier neighbour starts a component: a new branch
// (an extremum). A vertex whose earlier neighbours lie in ≥2 components is a
// saddle (merge vertex): by the ELDER rule every merged component but the one
// with the earliest extremum dies there, giving one pair per dying component
// (multiplicity k−1 for a k-fold merge). Branch ids are the extrema's ranks in
// the sweep order, so a branch always dies into a branch with a smaller id and
// branch 0 is the first vertex of the sweep.
//
// Segmentation (branch decomposition). Each vertex is labelled with the branch
// of the component it joins when it is swept, i.e. the elder extremum of that
// component right after the vertex is added (a saddle gets the surviving
// branch). Labels never change afterwards, so branch b holds its extremum and
// every vertex added to b's component while b was its elder.
//
// Persistence. pair (birth, death) = (extremum of the dying branch, saddle),
// persistence = |f(death) − f(birth)| ≥ 0. Pairs are sorted by (death, birth) in
// sweep order. Every connected component keeps one essential class (its first
// extremum, death = ±inf); its finite stand-in is |f(last) − f(birth)| with
// `last` the component's last vertex in the sweep (its max for a join tree).
// Zero-persistence pairs (births on non-convex plateaus under the index tie
// rule) are dropped by default, exactly as simplify() with "persistence ≤ 0"
// would: their branches are merged into the branch that killed them, so a
// plateau creates no spurious extremum. keep_zero_persistence keeps them.
//
// Tree. Nodes: every extremum, every distinct saddle, and per component a root
// at its last vertex (the global max of a join tree; a saddle or extremum node
// is reused when it is that vertex). Arcs go child → parent along each branch:
// extremum → the saddles where younger branches join it (sweep order) → its own
// death saddle (or its root).
//
// Input. Values must be finite (NaN or ±Inf → NonFinite). Empty input →
// InvalidArgument; more than 2^31 − 1 vertices → TooLarge. Cancellation is
// checked every 65,536 swept vertices; progress reports vertices swept.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "topology/graph.h"

namespace nnscope::topology {

enum class TreeKind { Join, Split };  // Join: sublevel sets (minima); Split: superlevel sets (maxima)

struct MergeTreeOptions {
  TreeKind kind = TreeKind::Join;
  bool keep_zero_persistence = false;  // see the header comment
  // CSR input: true skips the O(m log deg) symmetry check (the caller guarantees
  // u ∈ N(v) ⇔ v ∈ N(u)); false checks and sweeps the union of both directions
  // when the lists are asymmetric (as basins_graph does).
  bool assume_symmetric = false;
};

// One 0-dim pair. Plain so that other producers (steepest-descent basins) compare
// field by field after sorting by (death, birth).
struct MergePair {
  std::int64_t birth = -1;     // vertex: the younger extremum
  std::int64_t death = -1;     // vertex: the saddle where its component merges into an elder one
  double birth_value = 0.0;
  double death_value = 0.0;
  double persistence = 0.0;    // |death_value − birth_value|
  std::int32_t branch = -1;    // the dying branch
  std::int32_t into = -1;      // the elder branch it merges into
};

struct EssentialComponent {
  std::int64_t birth = -1;     // the component's first vertex in the sweep (global min of a join tree)
  double birth_value = 0.0;    // (death = +inf for a join tree, −inf for a split tree)
  std::int64_t last = -1;      // the component's last vertex in the sweep (its max for a join tree)
  double last_value = 0.0;
  double persistence = 0.0;    // finite stand-in |last_value − birth_value|
  std::int32_t branch = -1;
  std::int64_t vertices = 0;   // size of the connected component
};

struct Branch {
  std::int64_t extremum = -1;  // minimum (join) / maximum (split) vertex
  std::int64_t saddle = -1;    // death vertex; −1 for an essential branch
  double birth_value = 0.0;
  double death_value = 0.0;    // ±inf for an essential branch
  std::int32_t parent = -1;    // the branch it dies into (smaller id); −1 when essential
  std::int64_t size = 0;       // vertices labelled with this branch in the segmentation
};

enum class NodeType : std::uint8_t { Extremum, Saddle, Root };

struct TreeNode {
  std::int64_t vertex = -1;
  double value = 0.0;
  NodeType type = NodeType::Extremum;
  std::int32_t multiplicity = 0;  // saddles: branches that die here (≥ 1); 0 otherwise
};

struct TreeArc {
  std::int32_t child = -1, parent = -1;  // node ids (child is earlier in the sweep)
  std::int64_t child_vertex = -1, parent_vertex = -1;
  double child_value = 0.0, parent_value = 0.0;
  std::int32_t branch = -1;              // the branch whose chain the arc lies on
};

struct MergeTree {
  TreeKind kind = TreeKind::Join;
  std::size_t vertices = 0;
  double min_value = 0.0, max_value = 0.0;  // of the whole field
  std::vector<Branch> branches;             // id = rank of the extremum in the sweep
  std::vector<std::int64_t> extrema;        // branches[i].extremum (the minima of a join tree)
  std::vector<std::int64_t> saddles;        // distinct merge vertices, in sweep order
  std::vector<std::int32_t> saddle_multiplicity;  // branches dying at saddles[i]
  std::vector<MergePair> pairs;       // finite pairs, sorted by (death, birth) in sweep order
  std::vector<EssentialComponent> essential;    // one per connected component, by branch id
  std::vector<TreeNode> nodes;              // node i < branches.size() is branch i's extremum
  std::vector<TreeArc> arcs;
  std::vector<std::int32_t> roots;          // node id of each component's root (as `essential`)
  std::vector<std::int32_t> segmentation;   // branch id per vertex
};

// Merge tree of values[0..n) on the implicit grid (n must equal shape.vertices(),
// else Shape). dims: 1…8 axes, each ≥ 1.
MergeTree merge_tree(const GridShape& shape, Neighborhood nb, const double* values, std::size_t n,
                     const MergeTreeOptions& opts = {}, const OpContext& ctx = {});
// Merge tree on an explicit graph (n must equal graph.vertices), taken as undirected:
// an asymmetric list is symmetrised (see assume_symmetric); duplicates and self loops
// are ignored. Malformed CSR (offsets not of size vertices + 1, not non-decreasing
// from 0 to adj.size(), a neighbour out of range) → InvalidArgument.
MergeTree merge_tree(const CsrGraph& graph, const double* values, std::size_t n,
                     const MergeTreeOptions& opts = {}, const OpContext& ctx = {});

struct SimplifyOptions {
  double epsilon = 0.0;   // ≥ 0
  bool relative = false;  // threshold = epsilon·(max_value − min_value) instead of epsilon
};
// Persistence simplification: removes every pair with persistence STRICTLY below the
// threshold (p < ε; ε = 0 removes nothing). Since a branch's persistence never
// exceeds its parent's, removed branches form whole subtrees; each is merged into its
// nearest kept ancestor (the branch that killed it), which receives its vertices in
// the re-labelled segmentation. Kept pairs are unchanged; branch ids are compacted
// in their original order. Negative or non-finite epsilon → InvalidArgument.
MergeTree simplify(const MergeTree& tree, const SimplifyOptions& opts);

// The sweep order: vertex ids sorted by (value, index), or its exact reverse when
// descending, by a sample sort of the float64 bit patterns (keysort.h; stable,
// −0 == +0) on the thread pool (the same permutation for any thread count).
// Values must be finite (NonFinite); n ≤ 2^31 − 1 (TooLarge).
std::vector<std::int32_t> sweep_order(const double* values, std::size_t n, bool descending,
                                      const OpContext& ctx = {});

}  // namespace nnscope::topology
