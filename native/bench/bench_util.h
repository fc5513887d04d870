// nnscope native benchmarks: helpers shared by the bench_*.cpp executables.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
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

}  // namespace nnscope::bench
