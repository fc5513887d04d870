// nnscope native benchmark: the model engine on the CPU. No Node needed.
//
//   bench_models [--threads 1,2] [--samples 5] [--grid-points N | --full-grid] [--quick] [--only SUBSTR]
//                [--json FILE]
//
// --only runs the rows whose "model op" contains SUBSTR (e.g. "pinn hvp").
//
//   pinn   default convection PINN (2→50→50→50→50→1 tanh, 256 IC points, 100 BC
//          pairs) with 1,000 collocation points: loss, loss_grad, hvp (float32) and
//          hvp64 (float64 reference path)
//   mlp    64→256→256→10 relu, softmax cross-entropy, 4,096 samples (Gaussian
//          blobs): loss, loss_grad, hvp
//   grid   loss_grid points per second: the default PINN (N_f = 100, the papers'
//          set-up) on the 41³ grid of coefficients in [−1, 1]³ along 3 random
//          directions (the first --grid-points rows of it, 5 samples; or all 68,921
//          rows once, no warm-up, with --full-grid), and
//          the MLP above along 3 directions (layer-0 split path)
//
// Each time is the median of ≥5 samples after a warm-up (min and max alongside),
// with the median process CPU time per call (all threads) for machines shared
// with other load; loss_grid reports points/s = points / median wall time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/pinn.h"

using namespace nnscope;
using namespace nnscope::bench;
using namespace nnscope::models;
using Clock = std::chrono::steady_clock;

namespace {

struct Stat {
  double median = 0, min = 0, max = 0;  // wall seconds per call
  double cpu_median = 0;                // process CPU seconds per call (all threads)
  int samples = 0;
};

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median_of(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const std::size_t h = t.size() / 2;
  return t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]);
}

Stat measure(const std::function<void()>& fn, int samples, bool warm_up = true) {
  if (warm_up) fn();  // sizes scratch
  std::vector<double> t, c;
  for (int s = 0; s < samples; ++s) {
    const double c0 = process_cpu_s();
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    c.push_back(process_cpu_s() - c0);
  }
  Stat st;
  st.samples = samples;
  st.min = *std::min_element(t.begin(), t.end());
  st.max = *std::max_element(t.begin(), t.end());
  st.median = median_of(t);
  st.cpu_median = median_of(c);
  return st;
}



struct Row {
  std::string model, op, shape;
  int threads = 1;
  Stat st;
  double points = 0;  // loss_grid rows per call (0 otherwise)
};

void print_row(const Row& r) {
  std::printf("%-5s %-10s %-40s %3d %10.3f %10.3f %10.3f %10.3f ms", r.model.c_str(), r.op.c_str(), r.shape.c_str(),
              r.threads, r.st.median * 1e3, r.st.min * 1e3, r.st.max * 1e3, r.st.cpu_median * 1e3);
  if (r.points > 0) std::printf("  %9.0f points/s", r.points / r.st.median);
  std::printf("\n");
}


}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads_list;
  int samples = 5;
  std::size_t grid_points = 4096;
  bool quick = false;
  std::string json_path, only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads_list = parse_list<int>(argv[++i]);
    } else if (a == "--samples" && i + 1 < argc) {
      samples = std::max(5, std::atoi(argv[++i]));
    } else if (a == "--grid-points" && i + 1 < argc) {
      grid_points = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--full-grid") {
      grid_points = 41 * 41 * 41;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--threads 1,2] [--samples 5] [--grid-points N | --full-grid] [--quick] [--only SUBSTR] [--json FILE]\n",
                  argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const int all_threads = num_threads();
  if (threads_list.empty()) threads_list = {all_threads};
  if (quick) grid_points = std::min<std::size_t>(grid_points, 1024);
  grid_points = std::min<std::size_t>(std::max<std::size_t>(grid_points, 1), 41 * 41 * 41);

  std::printf("nnscope bench_models — CPU: %s, %u hardware threads; ISA cpu %s, active %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), isa_name(cpu_isa()), isa_name(active_isa()));
  std::printf("(cpu = process CPU time per call, all threads: robust to other load on the machine)\n");
  std::printf("%-5s %-10s %-40s %3s %10s %10s %10s %10s\n", "model", "op", "shape", "thr", "median", "min", "max",
              "cpu");

  // ---- models
  PinnSpec ps;
  ps.n_collocation = 1000;
  PinnObjective pinn(ps);
  const std::vector<float> th_p = pinn_init(ps, 1);
  const std::size_t Pp = pinn.dim();
  std::vector<float> v_p(Pp), g_p(Pp), hv_p(Pp);
  Rng(2).gaussian(v_p.data(), Pp);
  std::vector<double> th_p64(th_p.begin(), th_p.end()), v_p64(v_p.begin(), v_p.end()), hv_p64(Pp);

  MlpSpec ms;
  ms.widths = {64, 256, 256, 10};
  ms.hidden = Activation::Relu;
  ms.loss = LossKind::SoftmaxCrossEntropy;
  const OwnedDataset blobs = make_blobs(4096, 64, 10, 2.0, 3);
  MlpObjective mlp(ms, blobs.view());
  const std::vector<float> th_m = mlp_init(ms, 1);
  const std::size_t Pm = mlp.dim();
  std::vector<float> v_m(Pm), g_m(Pm), hv_m(Pm);
  Rng(4).gaussian(v_m.data(), Pm);

  PinnSpec pg;  // the papers' set-up: N_f = 100
  PinnObjective pinn_grid(pg);
  const std::vector<float> th_g = pinn_init(pg, 1);
  const std::size_t k = 3;
  std::vector<float> dirs_g(k * pinn_grid.dim()), dirs_m(k * Pm);
  Rng(5).gaussian(dirs_g.data(), dirs_g.size());
  Rng(6).gaussian(dirs_m.data(), dirs_m.size());
  for (float& d : dirs_g) d *= 0.01f;
  for (float& d : dirs_m) d *= 0.01f;
  std::vector<float> coords(grid_points * k);
  for (std::size_t i = 0; i < grid_points; ++i) {
    std::size_t r = i;
    for (std::size_t j = 0; j < k; ++j) {
      coords[i * k + j] = -1.0f + 2.0f * float(r % 41) / 40.0f;
      r /= 41;
    }
  }
  const std::size_t mlp_points = quick ? 32 : 128;
  std::vector<double> grid_out(grid_points);

  std::vector<Row> rows;
  auto add = [&](const std::string& model, const std::string& op, const std::string& shape, int t,
                 const std::function<void()>& fn, double points = 0, int n_samples = 0) {
    if (!only.empty() && (model + " " + op).find(only) == std::string::npos) return;
    // n_samples = 1: one long run (the full 41³ grid), no warm-up
    Row r{model, op, shape, t, measure(fn, n_samples ? n_samples : samples, n_samples != 1), points};
    print_row(r);
    rows.push_back(r);
  };

  const std::string pinn_shape = "2-50-50-50-50-1 tanh, Nf=1000";
  const std::string mlp_shape = "64-256-256-10 relu CE, n=4096";
  const std::string grid_shape = "PINN Nf=100, 41^3 grid, k=3";
  for (int t : threads_list) {
    set_num_threads(std::max(1, t));
    add("pinn", "loss", pinn_shape, t, [&] { pinn.loss(th_p.data(), {}); });
    add("pinn", "loss_grad", pinn_shape, t, [&] { pinn.loss_grad(th_p.data(), g_p.data(), {}); });
    add("pinn", "hvp", pinn_shape, t, [&] { pinn.hvp(th_p.data(), v_p.data(), hv_p.data(), {}); });
    if (!quick)
      add("pinn", "hvp64", pinn_shape, t, [&] { pinn.hvp64(th_p64.data(), v_p64.data(), hv_p64.data(), {}); });
    add("mlp", "loss", mlp_shape, t, [&] { mlp.loss(th_m.data(), {}); });
    add("mlp", "loss_grad", mlp_shape, t, [&] { mlp.loss_grad(th_m.data(), g_m.data(), {}); });
    add("mlp", "hvp", mlp_shape, t, [&] { mlp.hvp(th_m.data(), v_m.data(), hv_m.data(), {}); });
    add(
        "pinn", "loss_grid", grid_shape + " (" + std::to_string(grid_points) + " pts)", t,
        [&] {
          pinn_grid.loss_grid(th_g.data(), dirs_g.data(), k, coords.data(), grid_points, grid_out.data(), {});
        },
        double(grid_points), grid_points >= 20000 ? 1 : 0);
    add(
        "mlp", "loss_grid", "MLP above, k=3 (" + std::to_string(mlp_points) + " pts)", t,
        [&] { mlp.loss_grid(th_m.data(), dirs_m.data(), k, coords.data(), mlp_points, grid_out.data(), {}); },
        double(mlp_points));
  }
  set_num_threads(all_threads);

  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
      return 1;
    }
    f << "{\n  \"benchmark\": \"models\",\n";
    f << "  \"machine\": {\"cpu\": \"" << json_escape(cpu_model()) << "\", \"hardware_threads\": "
      << std::thread::hardware_concurrency() << ", \"pool_threads\": " << all_threads << ", \"cpu_isa\": \""
      << isa_name(cpu_isa()) << "\", \"active_isa\": \"" << isa_name(active_isa()) << "\"},\n";
    f << "  \"samples\": " << samples << ",\n  \"results\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      char buf[768];
      std::snprintf(buf, sizeof buf,
                    "    {\"model\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"device\": \"cpu\", \"threads\": %d, "
                    "\"unit\": \"s\", \"median\": %.6e, \"min\": %.6e, \"max\": %.6e, \"cpu_median\": %.6e, "
                    "\"samples\": %d%s}%s\n",
                    r.model.c_str(), r.op.c_str(), json_escape(r.shape).c_str(), r.threads, r.st.median, r.st.min,
                    r.st.max, r.st.cpu_median, r.st.samples,
                    r.points > 0 ? (", \"points\": " + std::to_string(std::size_t(r.points)) +
                                    ", \"points_per_s\": " + std::to_string(r.points / r.st.median))
                                       .c_str()
                                 : "",
                    i + 1 < rows.size() ? "," : "");
      f << buf;
    }
    f << "  ]\n}\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
