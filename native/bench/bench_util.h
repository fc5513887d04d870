// nnscope native benchmarks: helpers shared by the bench_*.cpp executables.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nnscope::bench {

// A JSON string body: quotes and backslashes escaped, control characters dropped.
inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o;
}

// Writes body to path (nothing when path is empty); exits with status 1 on failure.
inline void write_json_or_die(const std::string& path, const std::string& body) {
  if (path.empty()) return;
  std::ofstream f(path);
  f << body;
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::printf("wrote %s\n", path.c_str());
}

// The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).
inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown";
}

// The first output line: "nnscope <bench> — CPU: <model>, N hardware threads, pool P threads, ISA <isa>".
inline void print_machine_line(const char* bench, int pool_threads, const char* isa) {
  std::printf("nnscope %s — CPU: %s, %u hardware threads, pool %d threads, ISA %s\n", bench, cpu_model().c_str(),
              std::thread::hardware_concurrency(), pool_threads, isa);
}

// The JSON object {"cpu", "hardware_threads", "pool_threads", "active_isa"} (no trailing newline).
inline std::string machine_json(int pool_threads, const char* isa) {
  return "{\"cpu\": \"" + json_escape(cpu_model()) + "\", \"hardware_threads\": " +
         std::to_string(std::thread::hardware_concurrency()) + ", \"pool_threads\": " + std::to_string(pool_threads) +
         ", \"active_isa\": \"" + isa + "\"}";
}

// "a,b,c" → {a, b, c} (non-negative integers; empty items skipped).
template <typename T = std::size_t>
std::vector<T> parse_list(const char* s) {
  std::vector<T> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (!tok.empty()) v.push_back(static_cast<T>(std::strtoull(tok.c_str(), nullptr, 10)));
  return v;
}

// Median (the mean of the middle two for an even count), min and max of some timings, in seconds.
struct SampleStats {
  double median = 0, min = 0, max = 0;
};

// The SampleStats of t (any order; t must not be empty).
inline SampleStats sample_stats(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const std::size_t h = t.size() / 2;
  return {t.size() % 2 ? t[h] : 0.5 * (t[h - 1] + t[h]), t.front(), t.back()};
}

// Runs fn once untimed (when warm), then `samples` (≥ 1) timed runs on the steady clock.
template <typename F>
SampleStats time_samples(F&& fn, int samples, bool warm = true) {
  using Clock = std::chrono::steady_clock;
  if (warm) fn();
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return sample_stats(std::move(t));
}

// One double through a printf format ("%.6f" …).
inline std::string format_num(const char* format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

// The usual options: --samples N (≥ 1), --quick, --only SUBSTR, --json FILE, --help.
struct CommonArgs {
  int samples = 5;
  bool quick = false;
  std::string json, only;
  // Whether a case of this name runs under --only.
  bool wanted(const std::string& name) const { return only.empty() || name.find(only) != std::string::npos; }
};

// Reads argv into a (its fields hold the defaults). Returns -1 to go on, else the
// exit status: 0 after printing the usage for --help / -h, 2 for an unknown option.
inline int parse_common_args(int argc, char** argv, CommonArgs& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--samples" && i + 1 < argc) {
      a.samples = std::max(1, std::atoi(argv[++i]));
    } else if (s == "--quick") {
      a.quick = true;
    } else if (s == "--only" && i + 1 < argc) {
      a.only = argv[++i];
    } else if (s == "--json" && i + 1 < argc) {
      a.json = argv[++i];
    } else if (s == "--help" || s == "-h") {
      std::printf("usage: %s [--samples N] [--quick] [--only SUBSTR] [--json FILE]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s (try --help)\n", s.c_str());
      return 2;
    }
  }
  return -1;
}

}  // namespace nnscope::bench
