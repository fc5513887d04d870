// nnscope native benchmark: the topology family's graph side on the CPU — the
// steepest-descent basin path of 0-dim persistence on a grid, and the brute-force
// kNN graph. No Node needed.
//
//   bench_knn [--threads 1,2] [--quick] [--json FILE]
//
//   basins_<field>_<nb>   topology::basins_grid on a 1000×1000 grid (10⁶ vertices):
//                         field "smooth" (a sum of 6 Gaussian wells on a tilted
//                         plane: few minima, the loss-landscape case) and "random"
//                         (i.i.d. Gaussian values: ~n/5 minima, the worst case);
//                         Axis and Full neighbourhoods. The note reports the
//                         number of pairs.
//   knn_<n>x<dim>         topology::knn_graph (k = 4·dim, union) on n uniform
//                         random points; M dist/s = n² / time / 10⁶.
// Each figure: median, min, max of ≥ 3 timed samples after a warm-up.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "bench_util.h"
#include "topology/basins.h"
#include "topology/knn.h"

using namespace nnscope;
using namespace nnscope::topology;
using namespace nnscope::bench;

namespace {

std::vector<double> smooth_field(std::size_t rows, std::size_t cols) {
  const double cx[] = {0.2, 0.7, 0.4, 0.85, 0.1, 0.55}, cy[] = {0.3, 0.8, 0.6, 0.2, 0.9, 0.45};
  std::vector<double> f(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const double x = double(i) / double(rows), y = double(j) / double(cols);
      double v = 0.3 * x + 0.1 * y;
      for (int w = 0; w < 6; ++w) {
        const double dx = x - cx[w], dy = y - cy[w];
        v -= (1.0 + 0.1 * w) * std::exp(-(dx * dx + dy * dy) / 0.01);
      }
      f[i * cols + j] = v;
    }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {num_threads()};
  bool quick = false;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = parse_list<int>(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
  }
  const int samples = quick ? 3 : 7;
  std::printf("nnscope bench_knn — %s, ISA %s\n", cpu_model().c_str(), isa_name(active_isa()));
  std::printf("%-28s %7s %10s %10s %10s  %s\n", "case", "threads", "median ms", "min ms", "max ms", "note");
  std::string rows_json;
  auto emit = [&](const std::string& name, int th, const SampleStats& s, const std::string& note) {
    std::printf("%-28s %7d %10.2f %10.2f %10.2f  %s\n", name.c_str(), th, s.median * 1e3, s.min * 1e3, s.max * 1e3,
                note.c_str());
    if (!rows_json.empty()) rows_json += ",\n";
    rows_json += "    {\"case\": \"" + json_escape(name) + "\", \"threads\": " + std::to_string(th) +
                 ", \"median_s\": " + std::to_string(s.median) + ", \"min_s\": " + std::to_string(s.min) +
                 ", \"max_s\": " + std::to_string(s.max) + ", \"note\": \"" + json_escape(note) + "\"}";
  };

  const std::size_t R = 1000, C = 1000;
  const GridShape grid{{R, C}};
  std::vector<double> random(R * C);
  Rng(7).gaussian(random.data(), random.size());
  const std::vector<double> smooth = smooth_field(R, C);
  const std::pair<const char*, const std::vector<double>*> fields[] = {{"smooth", &smooth}, {"random", &random}};
  for (int th : threads) {
    set_num_threads(th);
    for (const auto& field : fields)
      for (const auto& nb : {std::make_pair("axis", Neighborhood::Axis), std::make_pair("full", Neighborhood::Full)}) {
        std::size_t pairs = 0;
        const SampleStats s = time_samples(
            [&] {
              const BasinResult r = basins_grid(field.second->data(), grid, nb.second);
              pairs = r.pairs.size();
            },
            samples);
        emit(std::string("basins_") + field.first + "_" + nb.first, th, s, std::to_string(pairs) + " pairs");
      }
    const std::vector<std::pair<std::size_t, std::size_t>> knn_sizes =
        quick ? std::vector<std::pair<std::size_t, std::size_t>>{{4096, 2}}
              : std::vector<std::pair<std::size_t, std::size_t>>{{4096, 2}, {16384, 3}, {16384, 4}};
    for (const auto& sz : knn_sizes) {
      const std::size_t n = sz.first, dim = sz.second;
      std::vector<double> x(n * dim);
      Rng(11).uniform(x.data(), x.size());
      std::size_t edges = 0;
      const SampleStats s = time_samples(
          [&] {
            const CsrGraph g = knn_graph(x.data(), n, dim, 4 * dim);
            edges = g.adj.size() / 2;
          },
          samples);
      char note[96];
      std::snprintf(note, sizeof note, "%.0f M dist/s, %zu edges", double(n) * double(n) / s.median / 1e6, edges);
      emit("knn_" + std::to_string(n) + "x" + std::to_string(dim), th, s, note);
    }
  }
  write_json_or_die(json, "{\n  \"bench\": \"knn\",\n  \"cpu\": \"" + json_escape(cpu_model()) +
                              "\",\n  \"rows\": [\n" + rows_json + "\n  ]\n}\n");
  return 0;
}
