// nnscope core, topology family: the topological landscape profile (research
// note §1.7, §2.2; Landscaper's generate_profile, paper (a)).
//
// Every branch b of a JOIN tree is drawn as a basin (a valley). Its samples are
// the vertices of its subtree in the branch tree — b's own segment plus those of
// every branch that died into it, recursively (the sublevel component b stands
// for). At loss y its half-width is hw·#{samples of b with value ≤ y}, hw =
// half_width_per_sample, for y from b's birth value to its death value (the
// component's max for a root). The flank is sampled at `levels` + 1 equally
// spaced losses, both ends exact, so the top width is 2·hw·(samples of b); with
// the default hw = ½ a basin's full width at the top is its sample count (the
// pylosslandscapes convention; hw = 1 gives Landscaper's scale).
//
// Layout. Each basin owns a slot [center − W/2, center + W/2], W = 2·hw·samples.
// Roots (one per connected component) are packed left to right from x = 0, widest
// first; the children of a basin are packed side by side, widest first (ties by
// branch id), in an interval of length Σ W_child centred on the parent's center.
// Guarantees: slots of siblings are disjoint; a child's slot lies inside its
// parent's slot (samples are nested) and its y-range [birth, death] inside the
// parent's; each flank is non-decreasing in y and lies inside the basin's slot;
// a root's width at its top equals 2·hw·(vertices of its component).
// Polygons need not nest level by level (a child's slot is fixed while the
// parent narrows below the child's death), as in Landscaper.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/context.h"
#include "topology/mergetree.h"

namespace nnscope::topology {

struct ProfileOptions {
  std::size_t levels = 64;              // flank intervals per basin (≥ 1)
  double half_width_per_sample = 0.5;   // hw (> 0, finite)
};

struct ProfileBasin {
  std::int32_t branch = -1;   // branch id in the tree (basins[i].branch == i)
  std::int32_t parent = -1;   // parent branch id; −1 for a root
  std::int64_t samples = 0;   // subtree samples
  double center = 0.0, width = 0.0;  // the slot
  double y_min = 0.0, y_max = 0.0;   // birth value; death value (component max for a root)
  double mean_loss = 0.0;     // mean value over the basin's samples (for colouring)
  std::vector<double> y;           // levels + 1 losses, y_min … y_max
  std::vector<double> half_width;  // hw·#{samples ≤ y[j]}
  std::vector<double> x, py;       // closed polygon: right flank up, then left flank down
};

struct LandscapeProfile {
  std::vector<ProfileBasin> basins;  // one per branch, by branch id
  double width = 0.0;                // Σ root slot widths = 2·hw·N
  double y_min = 0.0, y_max = 0.0;
};

// values must be the field the tree was built from (n == tree.vertices, else Shape).
// A split tree → InvalidArgument; bad options → InvalidArgument; branches·(levels+1)
// above 2^31 − 1 → TooLarge (use fewer levels or simplify first).
LandscapeProfile landscape_profile(const MergeTree& tree, const double* values, std::size_t n,
                                   const ProfileOptions& opts = {}, const OpContext& ctx = {});

}  // namespace nnscope::topology
