// nnscope native benchmark: the topology family's merge-tree sweep on the CPU.
//
//   bench_topology [--samples N] [--quick] [--only SUBSTR] [--json FILE]
//
// Cases (--only matches the case name): the join tree with 0-dim persistence
// (merge_tree, default options: pairs, tree, segmentation) of a float64 field on
//   grid2d_axis / grid2d_freudenthal   1000×1000 (--quick: 300×300)
//   grid4d_axis / grid4d_freudenthal   41^4 = 2,825,761 vertices (--quick: 21^4)
// for a uniform random field (the worst case: about n/5..n/7 minima) and, on the
// 2-D grid, a smooth landscape (sum of 12 Gaussian wells); then the pairs alone by
// basins_grid (the CPU path of topology.persistence). Beside each field:
// std::sort of (value, index) pairs (the "one sort" yardstick; the target is
// merge_tree within 3× of it) and sweep_order alone (the sample sort). Median of
// --samples runs (default 5, 1 untimed warm-up), with min and max.
// Reference anchor from the research note §5.1 (another 2-core x86-64 machine,
// scipy Kruskal on the Axis graph, random field): 1.22 s (1000²), 6.70 s (41^4).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "topology/basins.h"
#include "topology/mergetree.h"

using namespace nnscope;
using namespace nnscope::bench;
using namespace nnscope::topology;

namespace {

struct Row {
  std::string name, shape;
  SampleStats tree, stdsort, order, basins;
  std::size_t minima = 0, pairs = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CommonArgs args;  // --samples 5 by default
  if (const int status = parse_common_args(argc, argv, args); status >= 0) return status;
  const bool quick = args.quick;
  const int samples = quick ? 1 : args.samples;
  const int threads = num_threads();
  print_machine_line("bench_topology", threads, isa_name(active_isa()));
  std::printf("%-30s %-22s %9s %9s %9s %9s %9s %7s %9s\n", "case", "shape", "tree s", "basins s", "std::sort",
              "order s", "ratio", "minima", "pairs");
  std::vector<Row> rows;

  const std::size_t side2 = quick ? 300 : 1000, side4 = quick ? 21 : 41;
  struct Case {
    std::string name;
    std::vector<std::size_t> dims;
    Neighborhood nb;
    bool smooth;
  };
  const std::vector<Case> cases = {
      {"grid2d_axis random", {side2, side2}, Neighborhood::Axis, false},
      {"grid2d_freudenthal random", {side2, side2}, Neighborhood::Freudenthal, false},
      {"grid2d_freudenthal smooth", {side2, side2}, Neighborhood::Freudenthal, true},
      {"grid4d_axis random", {side4, side4, side4, side4}, Neighborhood::Axis, false},
      {"grid4d_freudenthal random", {side4, side4, side4, side4}, Neighborhood::Freudenthal, false},
  };
  for (const Case& c : cases) {
    if (!args.wanted(c.name)) continue;
    const GridShape shape{c.dims};
    const std::size_t n = shape.vertices();
    std::vector<double> f(n);
    Rng(7).uniform(f.data(), n);
    if (c.smooth) {
      const std::size_t s = c.dims[0];
      for (std::size_t i = 0; i < s; ++i)
        for (std::size_t j = 0; j < s; ++j) {
          double v = 0;
          for (int w = 0; w < 12; ++w) {
            const double cx = double(s) * Rng(8).uniform_at(2 * w), cy = double(s) * Rng(8).uniform_at(2 * w + 1);
            const double dx = double(i) - cx, dy = double(j) - cy, sg = 0.08 * double(s);
            v -= (1.0 + 0.1 * w) * std::exp(-(dx * dx + dy * dy) / (2 * sg * sg));
          }
          f[i * s + j] = v;
        }
    }
    std::string shape_s;
    for (std::size_t d : c.dims) shape_s += (shape_s.empty() ? "" : "x") + std::to_string(d);
    Row r;
    r.name = c.name;
    r.shape = shape_s;
    MergeTree t;
    r.tree = time_samples([&] { t = merge_tree(shape, c.nb, f.data(), n); }, samples);
    r.minima = t.extrema.size();
    r.pairs = t.pairs.size();
    std::vector<std::pair<double, std::int32_t>> kv(n);
    r.stdsort = time_samples(
        [&] {
          for (std::size_t i = 0; i < n; ++i) kv[i] = {f[i], std::int32_t(i)};
          std::sort(kv.begin(), kv.end());
        },
        samples);
    r.order = time_samples([&] { (void)sweep_order(f.data(), n, false); }, samples);
    BasinResult b;
    r.basins = time_samples([&] { b = basins_grid(f.data(), shape, c.nb); }, samples);
    if (b.pairs.size() != r.pairs) {
      std::fprintf(stderr, "%s: basins gave %zu pairs, the tree %zu\n", c.name.c_str(), b.pairs.size(), r.pairs);
      return 1;
    }
    std::printf("%-30s %-22s %9.4f %9.4f %9.4f %9.4f %8.2fx %7zu %9zu\n", r.name.c_str(), r.shape.c_str(),
                r.tree.median, r.basins.median, r.stdsort.median, r.order.median, r.tree.median / r.stdsort.median,
                r.minima, r.pairs);
    std::fflush(stdout);
    rows.push_back(r);
  }

  if (!args.json.empty()) {
    std::string body = "{\n  \"benchmark\": \"topology\",\n";
    body += "  \"machine\": " + machine_json(threads, isa_name(active_isa())) + ",\n";
    body += "  \"samples\": " + std::to_string(samples) + ",\n";
    body += "  \"reference\": {\"source\": \"research note 5.1, scipy Kruskal, axis graph, random field, other "
            "machine\", \"grid2d_1000_s\": 1.22, \"grid4d_41_s\": 6.70},\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      body += "    {\"case\": \"" + json_escape(r.name) + "\", \"shape\": \"" + r.shape +
              "\", \"median_s\": " + format_num("%.6f", r.tree.median) +
              ", \"min_s\": " + format_num("%.6f", r.tree.min) + ", \"max_s\": " + format_num("%.6f", r.tree.max) +
              ", \"std_sort_median_s\": " + format_num("%.6f", r.stdsort.median) +
              ", \"sweep_order_median_s\": " + format_num("%.6f", r.order.median) +
              ", \"basins_median_s\": " + format_num("%.6f", r.basins.median) +
              ", \"ratio_to_std_sort\": " + format_num("%.3f", r.tree.median / r.stdsort.median) +
              ", \"minima\": " + std::to_string(r.minima) + ", \"pairs\": " + std::to_string(r.pairs) + "}" +
              (i + 1 < rows.size() ? "," : "") + "\n";
    }
    body += "  ]\n}\n";
    write_json_or_die(args.json, body);
  }
  return 0;
}
