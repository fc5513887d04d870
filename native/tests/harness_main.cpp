#include <cstring>
#include <exception>

#include "base/error.h"
#include "harness.h"
#include "setup.h"

namespace nnscope::test {
std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}
}  // namespace nnscope::test

// Usage: <exe>            runs every case, prints one line per case and a summary
//        <exe> NAME       runs one case (what ctest does)
//        <exe> --list     prints the case names
int main(int argc, char** argv) {
  using namespace nnscope::test;
  nnscope::test::setup();
  if (argc > 1 && !std::strcmp(argv[1], "--list")) {
    for (auto& c : registry()) std::printf("%s\n", c.name);
    return 0;
  }
  int passed = 0, failed = 0, skipped = 0, ran = 0;
  for (auto& c : registry()) {
    if (argc > 1 && std::strcmp(argv[1], c.name) != 0) continue;
    ++ran;
    try {
      c.fn();
      ++passed;
      std::printf("ok   %s\n", c.name);
    } catch (const Skip& s) {
      ++skipped;
      std::printf("skip %s: %s\n", c.name, s.why.c_str());
    } catch (const nnscope::Error& e) {
      ++failed;
      std::printf("FAIL %s: unexpected %s: %s\n", c.name, nnscope::code_name(e.code()), e.what());
    } catch (const std::exception& e) {
      ++failed;
      std::printf("FAIL %s: %s\n", c.name, e.what());
    }
  }
  if (ran == 0) {
    std::printf("no test named '%s'\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (failed) return 1;
  if (skipped && !passed) return 77;
  return 0;
}
