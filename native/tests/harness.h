// nnscope native tests: a minimal harness. Each NNSCOPE_TEST(name) becomes its
// own ctest test (native/tests/CMakeLists.txt scans the sources for it), run as
// `<executable> <name>`. A test fails by throwing; skip() exits with code 77,
// which ctest reports as skipped.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nnscope::test {

struct Case {
  const char* name;
  void (*fn)();
};
std::vector<Case>& registry();
struct Register {
  Register(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

struct Skip {
  std::string why;
};
[[noreturn]] inline void skip(const std::string& why) { throw Skip{why}; }

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename A, typename B>
std::string describe(const char* what, const A& a, const B& b, const char* file, int line) {
  std::ostringstream os;
  os.precision(17);
  os << file << ":" << line << ": " << what << " (" << a << " vs " << b << ")";
  return os.str();
}

}  // namespace nnscope::test

#define NNSCOPE_TEST(name)                                                    \
  static void nnscope_test_##name();                                          \
  static ::nnscope::test::Register nnscope_reg_##name(#name, nnscope_test_##name); \
  static void nnscope_test_##name()

#define EXPECT(cond)                                                                      \
  do {                                                                                    \
    if (!(cond))                                                                          \
      throw ::nnscope::test::Failure(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                     ": expected " #cond);                                \
  } while (0)

#define EXPECT_EQ(a, b)                                                                              \
  do {                                                                                               \
    const auto& va_ = (a);                                                                           \
    const auto& vb_ = (b);                                                                           \
    if (!(va_ == vb_))                                                                               \
      throw ::nnscope::test::Failure(::nnscope::test::describe(#a " == " #b, va_, vb_, __FILE__, __LINE__)); \
  } while (0)

// |a - b| <= tol
#define EXPECT_NEAR(a, b, tol)                                                                       \
  do {                                                                                               \
    const double va_ = (a), vb_ = (b);                                                               \
    if (!(std::fabs(va_ - vb_) <= (tol)))                                                            \
      throw ::nnscope::test::Failure(::nnscope::test::describe(#a " ~= " #b, va_, vb_, __FILE__, __LINE__)); \
  } while (0)

// Runs stmt and expects an nnscope::Error with the given code.
#define EXPECT_THROWS_CODE(stmt, errcode)                                                   \
  do {                                                                                      \
    bool threw_ = false;                                                                    \
    try {                                                                                   \
      stmt;                                                                                 \
    } catch (const ::nnscope::Error& e_) {                                                  \
      threw_ = true;                                                                        \
      if (e_.code() != (errcode))                                                           \
        throw ::nnscope::test::Failure(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                       ": wrong error code " + ::nnscope::code_name(e_.code()) + \
                                       ": " + e_.what());                                   \
    }                                                                                       \
    if (!threw_)                                                                            \
      throw ::nnscope::test::Failure(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                     ": expected an error from " #stmt);                    \
  } while (0)
