// nnscope CUDA backend: compiled architectures (arch.h). Plain C++.
#include "cuda/arch.h"

#include <cctype>

#ifndef NNSCOPE_CUDA_ARCHS
#define NNSCOPE_CUDA_ARCHS ""
#endif

namespace nnscope::cuda {

namespace {

bool parse_entry(const std::string& e, ArchTarget* t) {
  std::size_t i = 0;
  int num = 0;
  while (i < e.size() && std::isdigit(static_cast<unsigned char>(e[i]))) {
    num = num * 10 + (e[i] - '0');
    if (num > 100000) return false;
    ++i;
  }
  if (i < 2) return false;  // at least two digits: "80", "120"
  t->major = num / 10;
  t->minor = num % 10;
  t->variant = 0;
  if (i < e.size() && (e[i] == 'a' || e[i] == 'f')) t->variant = e[i++];
  const std::string rest = e.substr(i);
  if (rest.empty()) {
    t->sass = t->ptx = true;
  } else if (rest == "-real") {
    t->sass = true;
    t->ptx = false;
  } else if (rest == "-virtual") {
    t->sass = false;
    t->ptx = true;
  } else {
    return false;
  }
  return true;
}

std::string target_name(const ArchTarget& t, bool sass) {
  std::string s = sass ? "sm_" : "compute_";
  s += std::to_string(t.major * 10 + t.minor);
  if (t.variant) s += t.variant;
  return s;
}

}  // namespace

bool parse_architectures(const std::string& list, std::vector<ArchTarget>* out) {
  out->clear();
  std::string cur;
  auto flush = [&]() -> bool {
    if (cur.empty()) return true;
    ArchTarget t;
    if (!parse_entry(cur, &t)) return false;
    out->push_back(t);
    cur.clear();
    return true;
  };
  for (char c : list) {
    if (c == ';' || c == ',' || c == ' ' || c == '\t') {
      if (!flush()) return false;
    } else {
      cur += c;
    }
  }
  if (!flush()) return false;
  return !out->empty();
}

std::string describe_architectures(const std::string& list) {
  std::vector<ArchTarget> targets;
  if (!parse_architectures(list, &targets)) return list;
  std::vector<std::string> names;
  auto add = [&](const std::string& n) {
    for (auto& x : names)
      if (x == n) return;
    names.push_back(n);
  };
  for (auto& t : targets)
    if (t.sass) add(target_name(t, true));
  for (auto& t : targets)
    if (t.ptx) add(target_name(t, false));
  std::string s;
  for (auto& n : names) s += (s.empty() ? "" : " ") + n;
  return s;
}

bool architectures_support(const std::string& list, int major, int minor) {
  std::vector<ArchTarget> targets;
  if (!parse_architectures(list, &targets)) return true;
  const int dev = major * 10 + minor;
  for (auto& t : targets) {
    const int cc = t.major * 10 + t.minor;
    if (t.variant == 'a') {
      if (dev == cc) return true;  // sm_XYa / compute_XYa: that exact chip only
      continue;
    }
    if (t.sass && major == t.major && minor >= t.minor) return true;  // binary compatible within a major
    if (t.ptx && t.variant == 0 && dev >= cc) return true;           // PTX JITs forward
    if (t.ptx && t.variant == 'f' && major == t.major && minor >= t.minor) return true;
  }
  return false;
}

const char* compiled_architectures() noexcept { return NNSCOPE_CUDA_ARCHS; }

}  // namespace nnscope::cuda
