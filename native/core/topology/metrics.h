// nnscope core, topology family: summary metrics of a merge tree (research note
// §1.8, §2.2): counts of extrema and saddles, persistence statistics, persistence
// entropy, basin volumes and Landscaper's SMAD. All read a MergeTree (raw or
// simplified); for a split tree read "maxima" for minima.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "topology/mergetree.h"

namespace nnscope::topology {

struct PersistenceStats {
  std::size_t count = 0;
  double total = 0.0;    // Σ p
  double average = 0.0;  // total / count (0 when count = 0)
  double maximum = 0.0;  // 0 when count = 0
};

struct TopologyMetrics {
  std::size_t minima = 0;              // extrema = leaves = finite pairs + components
  std::size_t saddles = 0;             // distinct merge vertices (paper (b)'s "number of saddles")
  std::size_t saddles_with_multiplicity = 0;  // = finite pairs (a k-fold merge counts k − 1)
  std::size_t components = 0;          // essential classes
  // DEFAULT: finite pairs only. The essential pair's stand-in (max − min of its
  // component) measures the sampled range rather than any feature, dominates the
  // mean, and is the only term of a one-minimum landscape; report it separately.
  PersistenceStats persistence;
  // TTK PersistenceDiagram parity: the finite pairs plus, per component, the
  // essential class with persistence |last − birth| (max − min for one component).
  PersistenceStats persistence_with_essential;
  double essential_persistence = 0.0;  // Σ over components of |last − birth|
  // −Σ (p_i/P)·ln(p_i/P) over the finite lifetimes p_i, P = Σ p_i (natural log;
  // p_i = 0 contributes 0; 0 when P = 0).
  double entropy = 0.0;
  double range = 0.0;                  // max_value − min_value
};

TopologyMetrics metrics(const MergeTree& tree);

// Persistence entropy of arbitrary lifetimes (as TopologyMetrics::entropy). Negative
// or non-finite lifetimes → InvalidArgument.
double persistence_entropy(const std::vector<double>& lifetimes);

// Samples per branch of the segmentation (branches[i].size), indexed by branch id.
std::vector<std::int64_t> basin_volumes(const MergeTree& tree);

struct SmadOptions {
  bool normalize = false;  // divide each gap by (max_value − min_value) (0 when the range is 0)
  bool weighted = false;   // multiply each gap by vol = (samples of that minimum's basin) / N
};
// SMAD, Landscaper's LossLandscape.smad: P = the LEAF ARCS of the merge tree, i.e.
// the arcs from an extremum node to a merge (saddle) node; SMAD = (1/|P|) Σ_P
// |f(saddle) − f(extremum)| [· vol] [/ (max − min)], and 0 when the tree has no
// saddle. An arc from an extremum straight to a root that is not a saddle does not
// count. The basin of a minimum is its merge-tree branch (the segmentation), not a
// Morse–Smale descending manifold.
double smad(const MergeTree& tree, const SmadOptions& opts = {});

}  // namespace nnscope::topology
