// nnscope core, topology family: 0-dim sublevel persistence by steepest-descent
// basins — the data-parallel scheme the GPU runs (native/cuda/topology.h), with
// this CPU implementation as its reference.
//
// Filtration. Vertices enter in (value, index) order (graph.h), a strict total
// order, so every vertex is unique and plateaus are resolved by index. The pairs
// are those of the vertex-sorted union-find sweep with the elder rule, including
// zero-persistence pairs (birth value == death value) that plateaus produce.
//
// Steps (the GPU's, and basins_graph's):
//  (a) pointer[v] = the smallest of v and its neighbours in (value, index) order;
//  (b) pointer jumping: basin[v] = the local minimum v descends to (a vertex index);
//  (c) inter-basin edges: every graph edge (u, v) with basin(u) ≠ basin(v), weighted
//      by the later of u and v (the vertex at which the edge enters the filtration);
//      per basin pair only the earliest edge is kept;
//  (d) union-find over those edges in (weight value, weight vertex) order, elder rule:
//      the basin with the later minimum dies at the weight vertex.
// basins_grid on the CPU runs (a) and (b), then sweeps vertices instead of edges:
// the candidates are the vertices with a lower neighbour in another basin, each
// carrying the distinct basins of its lower neighbours (later edges of a basin
// pair struck out where a chunk sees them); they are sorted by (value, index)
// (a sample sort, keysort.h) and swept with a union-find over basin ids. The same
// pairs as (c)–(d): an edge's weight vertex is exactly such a candidate.
// Equal to the vertex-sorted sweep: every vertex joins its basin's minimum through
// its descent path, whose vertices all come earlier, so the components of each
// sublevel set are unions of (partial) basins linked by inter-basin edges; a merge
// can only happen at such an edge, and only the earliest edge of a basin pair can.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "topology/graph.h"

namespace nnscope::topology {

// A finite 0-dim pair: the component born at minimum `birth` dies at saddle `death`
// (vertex indices), with their values.
struct PersistencePair {
  std::int64_t birth = 0, death = 0;
  double birth_value = 0, death_value = 0;
};

// An essential class: the oldest minimum of a connected component (never dies).
struct EssentialClass {
  std::int64_t birth = 0;
  double birth_value = 0;
};

struct BasinResult {
  // Sorted by (death value, death vertex, birth value, birth vertex).
  std::vector<PersistencePair> pairs;
  // One per connected component, sorted by (birth value, birth vertex).
  std::vector<EssentialClass> essential;
  // basin[v] = the index of the local minimum v descends to (basin[m] = m for a minimum).
  std::vector<std::int64_t> basin;
};

// An inter-basin edge: basins a ≠ b (minimum vertices) and the weight vertex w.
struct BasinEdge {
  std::int64_t a = 0, b = 0, w = 0;
};

// Steepest-descent basins and 0-dim persistence of `values` (grid.vertices() float64
// values in the grid's row-major order) on the implicit grid graph of `nb`.
// Memory: about 60 bytes per vertex at the peak (random fields; less on smooth ones).
// Errors: InvalidArgument (no dims, more than kMaxGridDims, a zero dim, null values),
// TooLarge (more than 2^31 − 1 vertices), NonFinite (a NaN or ±Inf value), Cancelled.
BasinResult basins_grid(const double* values, const GridShape& grid, Neighborhood nb, const OpContext& ctx = {});

// The same on an explicit graph (values has g.vertices entries). The graph is taken
// as undirected (the union of its directed entries: an asymmetric list is
// symmetrised), duplicates and self loops are ignored.
// Errors: InvalidArgument (offsets not of size vertices+1, not non-decreasing from 0
// to adj.size(), an adj entry out of range, null values), NonFinite, Cancelled.
BasinResult basins_graph(const double* values, const CsrGraph& g, const OpContext& ctx = {});

// Step (d) alone, shared with the GPU path: from the basin labels (basin[v] = its
// minimum, basin[m] = m) and the inter-basin edges (any order, duplicates allowed),
// the pairs and essential classes of `result` (result.basin is left alone).
// Errors: InvalidArgument (an edge vertex or basin out of range, a label that is
// not a minimum).
void pairs_from_basin_edges(const double* values, std::size_t n, const std::vector<std::int64_t>& basin,
                            std::vector<BasinEdge> edges, BasinResult& result);

// Linear index offsets of the neighbourhood in a grid (for the implicit stencils of
// the CPU and GPU paths): for each offset e of neighbor_offsets(k, nb), Σ e_i·stride_i.
std::vector<std::int64_t> grid_linear_offsets(const GridShape& grid, const std::vector<std::vector<int>>& offsets);

// Validates a grid for the basin ops and returns its vertex count (errors as basins_grid).
std::size_t checked_grid_vertices(const GridShape& grid);

}  // namespace nnscope::topology
