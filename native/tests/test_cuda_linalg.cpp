// Tests of the CUDA backend (native/cuda): linalg on the GPU against the CPU ops
// and float64 references, the runtime probe, and — with no GPU needed — the
// architecture bookkeeping and the kernel sources run under the host emulator
// (cuda/cuda_emu.h).
//
// Every GPU test starts with require_gpu_or_skip(). The emu_* and arch_* tests and
// info_reports_build_and_availability run everywhere CUDA was compiled in; in a
// CPU-only build every test of this file skips (ctest registers the names found in
// the source, so each one exists in both builds).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/context.h"
#include "base/device.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "reference.h"
#include "linalg/blas.h"
#include "setup.h"

#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/arch.h"
#include "cuda/backend.h"
#include "cuda/linalg.h"
#include "cuda/memory.h"

namespace {

using namespace nnscope;
using linalg::GemmArgs;
using linalg::GemvArgs;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.0f;  // in C's padding: must survive untouched

// A rows×cols row-major view with leading dimension cols+pad inside an owned buffer.
// The base is 16-byte aligned, or one float past that (misalign), so both the
// vectorised and the scalar load paths of the kernels get exercised. Everything
// outside the view (padding, slack) holds `fill_outside`.
struct Strided {
  std::vector<float> buf;
  float* p = nullptr;
  std::size_t rows = 0, cols = 0, ld = 0;

  float& at(std::size_t r, std::size_t c) { return p[r * ld + c]; }
  float at(std::size_t r, std::size_t c) const { return p[r * ld + c]; }
};

// With NNSCOPE_TEST_EXACT_BUFFERS set (for AddressSanitizer runs of the emulated
// kernels) a buffer ends right after the view's last element, so any read past it is
// reported; the base is then 16-byte aligned only if the allocator's is.
bool exact_buffers() {
  static const bool exact = std::getenv("NNSCOPE_TEST_EXACT_BUFFERS") != nullptr;
  return exact;
}

Strided make_strided(std::size_t rows, std::size_t cols, std::size_t pad, bool misalign, uint64_t seed,
                     float fill_outside, bool ld_multiple_of_4 = false) {
  Strided s;
  s.rows = rows;
  s.cols = cols;
  s.ld = cols + pad;
  if (ld_multiple_of_4) s.ld = (s.ld + 3) / 4 * 4;
  if (s.ld == 0) s.ld = 1;
  if (exact_buffers()) {
    const std::size_t used = rows == 0 || cols == 0 ? 0 : (rows - 1) * s.ld + cols;
    s.buf.assign(used + (misalign ? 1 : 0), fill_outside);
    s.p = s.buf.data() + (misalign ? 1 : 0);
  } else {
    s.buf.assign(rows * s.ld + 8, fill_outside);
    const auto addr = reinterpret_cast<std::uintptr_t>(s.buf.data());
    const std::size_t skip = ((16 - addr % 16) % 16) / sizeof(float);
    s.p = s.buf.data() + skip + (misalign ? 1 : 0);
  }
  std::vector<float> v(rows * cols);
  Rng(seed).gaussian(v.data(), v.size());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) s.at(r, c) = v[r * cols + c];
  return s;
}

struct GemmCase {
  bool ta = false, tb = false;
  std::size_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  std::size_t pad = 0;     // extra leading-dimension elements of A, B and C
  bool misalign = false;   // start A, B, C one float past 16-byte alignment
  bool ld4 = false;        // round each leading dimension up to a multiple of 4
  uint64_t seed = 1;
};

std::string describe(const GemmCase& c) {
  return std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + " " + std::to_string(c.m) + "x" + std::to_string(c.n) +
         "x" + std::to_string(c.k) + " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) +
         " pad=" + std::to_string(c.pad) + (c.ld4 ? " ld%4=0" : "") + (c.misalign ? " misaligned" : "");
}

// Operands of one case; C starts as NaN when beta == 0 (it must not be read).
struct GemmData {
  Strided a, b, c, c0;
  GemmArgs args(const GemmCase& cs) {
    GemmArgs g;
    g.trans_a = cs.ta;
    g.trans_b = cs.tb;
    g.m = cs.m;
    g.n = cs.n;
    g.k = cs.k;
    g.alpha = cs.alpha;
    g.beta = cs.beta;
    g.a = a.p;
    g.lda = a.ld;
    g.b = b.p;
    g.ldb = b.ld;
    g.c = c.p;
    g.ldc = c.ld;
    return g;
  }
};

GemmData make_gemm_data(const GemmCase& cs) {
  GemmData d;
  d.a = make_strided(cs.ta ? cs.k : cs.m, cs.ta ? cs.m : cs.k, cs.pad, cs.misalign, cs.seed * 7 + 1, kNaN, cs.ld4);
  d.b = make_strided(cs.tb ? cs.n : cs.k, cs.tb ? cs.k : cs.n, cs.pad, cs.misalign, cs.seed * 7 + 2, kNaN, cs.ld4);
  d.c = make_strided(cs.m, cs.n, cs.pad, cs.misalign, cs.seed * 7 + 3, kSentinel, cs.ld4);
  if (cs.beta == 0.0f)
    for (std::size_t i = 0; i < cs.m; ++i)
      for (std::size_t j = 0; j < cs.n; ++j) d.c.at(i, j) = kNaN;
  d.c0 = d.c;
  d.c0.p = d.c0.buf.data() + (d.c.p - d.c.buf.data());
  return d;
}

double op_a(const GemmArgs& g, std::size_t i, std::size_t p) { return g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p]; }
double op_b(const GemmArgs& g, std::size_t p, std::size_t j) { return g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j]; }

// The documented kernel arithmetic, on the host: an FMA chain over k in order, then
// alpha·acc (+ fma(beta, C, ·)); k == 0 or alpha == 0 only scales C.
float gemm_chain(const GemmArgs& g, const Strided& c0, std::size_t i, std::size_t j) {
  const float c = c0.at(i, j);
  if (g.k == 0 || g.alpha == 0.0f) return g.beta != 0.0f ? g.beta * c : 0.0f;
  float acc = 0.0f;
  for (std::size_t p = 0; p < g.k; ++p) acc = std::fmaf(float(op_a(g, i, p)), float(op_b(g, p, j)), acc);
  const float v = g.alpha * acc;
  return g.beta != 0.0f ? std::fmaf(g.beta, c, v) : v;
}

double gemm_ref(const GemmArgs& g, const Strided& c0, std::size_t i, std::size_t j) {
  return test::gemm_ref_at(g, i, j, c0.at(i, j));
}

// Rows checked: all of them for small products, else 24 spread over m.
std::vector<std::size_t> rows_to_check(std::size_t m, std::size_t n, std::size_t k) {
  std::vector<std::size_t> rows;
  if (double(m) * double(n) * double(std::max<std::size_t>(k, 1)) <= 4e7) {
    for (std::size_t i = 0; i < m; ++i) rows.push_back(i);
  } else {
    for (std::size_t t = 0; t < 24; ++t) rows.push_back(std::min(m - 1, (t * (m - 1)) / 23));
    rows.push_back(m / 2 + 1 < m ? m / 2 + 1 : m - 1);
  }
  return rows;
}

// ‖X − R‖_F / ‖R‖_F over the given rows (absolute when R is 0).
struct FrobErr {
  double diff2 = 0.0, ref2 = 0.0;
  void add(double x, double r) {
    diff2 += (x - r) * (x - r);
    ref2 += r * r;
  }
  double rel() const { return ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2); }
};

double gemm_tolerance(std::size_t k) { return 1e-5 * std::sqrt(double(std::max<std::size_t>(k, 1))); }

// Runs `run` on the case and checks: float64 reference (relative Frobenius error ≤
// 1e-5·sqrt(k)); the host FMA-chain values exactly (when `bitwise`); C's padding
// untouched; optionally the CPU sgemm on the same inputs.
template <typename Run>
void check_gemm(const GemmCase& cs, Run&& run, bool bitwise, bool compare_cpu) {
  GemmData d = make_gemm_data(cs);
  GemmArgs g = d.args(cs);
  run(g);
  const std::string what = describe(cs);
  const auto rows = rows_to_check(cs.m, cs.n, cs.k);
  FrobErr err;
  for (std::size_t i : rows)
    for (std::size_t j = 0; j < cs.n; ++j) {
      const float x = d.c.at(i, j);
      if (!std::isfinite(x)) throw test::Failure(what + ": non-finite C[" + std::to_string(i) + "][" + std::to_string(j) + "]");
      err.add(x, gemm_ref(g, d.c0, i, j));
      if (bitwise) {
        const float want = gemm_chain(g, d.c0, i, j);
        if (!(x == want))
          throw test::Failure(what + ": C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " +
                              std::to_string(x) + ", FMA chain gives " + std::to_string(want));
      }
    }
  if (!(err.rel() <= gemm_tolerance(cs.k)))
    throw test::Failure(what + ": relative Frobenius error " + std::to_string(err.rel()) + " vs float64");
  // padding and slack of C untouched
  for (std::size_t idx = 0; idx < d.c.buf.size(); ++idx) {
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(idx) - (d.c.p - d.c.buf.data());
    const bool inside = off >= 0 && std::size_t(off) < cs.m * d.c.ld && std::size_t(off) % d.c.ld < cs.n;
    if (!inside && d.c.buf[idx] != kSentinel) throw test::Failure(what + ": wrote outside C's view");
  }
  if (compare_cpu) {
    GemmData e = make_gemm_data(cs);
    GemmArgs h = e.args(cs);
    linalg::sgemm_cpu(h);
    FrobErr diff;
    for (std::size_t i : rows)
      for (std::size_t j = 0; j < cs.n; ++j) diff.add(d.c.at(i, j), e.c.at(i, j));
    if (!(diff.rel() <= 2.0 * gemm_tolerance(cs.k)))
      throw test::Failure(what + ": CUDA vs CPU relative difference " + std::to_string(diff.rel()));
  }
}

struct Shape {
  std::size_t m, n, k;
};

// ---------------------------------------------------------------- GEMV helpers
struct GemvCase {
  bool trans = false;
  std::size_t m = 0, n = 0;
  float alpha = 1.0f, beta = 0.0f;
  std::size_t pad = 0;
  bool misalign = false;
  bool ld4 = false;
  uint64_t seed = 1;
};

std::string describe(const GemvCase& c) {
  return std::string(c.trans ? "T " : "N ") + std::to_string(c.m) + "x" + std::to_string(c.n) +
         " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad) + (c.ld4 ? " ld%4=0" : "") +
         (c.misalign ? " misaligned" : "");
}

struct GemvData {
  Strided a, x, y, y0;
};

GemvData make_gemv_data(const GemvCase& cs) {
  GemvData d;
  const std::size_t xl = cs.trans ? cs.m : cs.n, yl = cs.trans ? cs.n : cs.m;
  d.a = make_strided(cs.m, cs.n, cs.pad, cs.misalign, cs.seed * 5 + 1, kNaN, cs.ld4);
  d.x = make_strided(1, xl, 0, cs.misalign, cs.seed * 5 + 2, kNaN);
  d.y = make_strided(1, yl, 0, cs.misalign, cs.seed * 5 + 3, kSentinel);
  if (cs.beta == 0.0f)
    for (std::size_t i = 0; i < yl; ++i) d.y.p[i] = kNaN;
  d.y0 = d.y;
  d.y0.p = d.y0.buf.data() + (d.y.p - d.y.buf.data());
  return d;
}

GemvArgs gemv_args(const GemvCase& cs, GemvData& d) {
  GemvArgs g;
  g.trans = cs.trans;
  g.m = cs.m;
  g.n = cs.n;
  g.alpha = cs.alpha;
  g.beta = cs.beta;
  g.a = d.a.p;
  g.lda = d.a.ld;
  g.x = d.x.p;
  g.y = d.y.p;
  return g;
}

template <typename Run>
void check_gemv(const GemvCase& cs, Run&& run, bool compare_cpu) {
  GemvData d = make_gemv_data(cs);
  GemvArgs g = gemv_args(cs, d);
  run(g);
  const std::size_t yl = cs.trans ? cs.n : cs.m, len = cs.trans ? cs.m : cs.n;
  FrobErr err;
  for (std::size_t i = 0; i < yl; ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < len; ++j)
      s += double(cs.trans ? d.a.at(j, i) : d.a.at(i, j)) * double(d.x.p[j]);
    double r = double(cs.alpha) * s;
    if (cs.beta != 0.0f) r += double(cs.beta) * double(d.y0.p[i]);
    if (!std::isfinite(d.y.p[i])) throw test::Failure(describe(cs) + ": non-finite y");
    err.add(d.y.p[i], r);
  }
  const double tol = 1e-5 * std::sqrt(double(std::max<std::size_t>(len, 1)));
  if (!(err.rel() <= tol)) throw test::Failure(describe(cs) + ": relative error " + std::to_string(err.rel()));
  for (std::size_t i = yl; i < d.y.buf.size() - (d.y.p - d.y.buf.data()); ++i)
    if (d.y.p[i] != kSentinel) throw test::Failure(describe(cs) + ": wrote past y");
  if (compare_cpu) {
    GemvData e = make_gemv_data(cs);
    GemvArgs h = gemv_args(cs, e);
    linalg::sgemv_cpu(h);
    FrobErr diff;
    for (std::size_t i = 0; i < yl; ++i) diff.add(d.y.p[i], e.y.p[i]);
    if (!(diff.rel() <= 2.0 * tol))
      throw test::Failure(describe(cs) + ": CUDA vs CPU relative difference " + std::to_string(diff.rel()));
  }
}

std::vector<GemvCase> gemv_cases(std::size_t big_m) {
  std::vector<GemvCase> cases;
  const Shape shapes[] = {{1, 1, 0}, {37, 53, 0}, {5, 0, 0}, {0, 6, 0}, {big_m, 45, 0}, {64, 128, 0}, {3, 1031, 0}};
  uint64_t seed = 11;
  for (const Shape& s : shapes)
    for (bool trans : {false, true})
      for (int variant = 0; variant < 3; ++variant) {
        GemvCase c;
        c.trans = trans;
        c.m = s.m;
        c.n = s.n;
        c.alpha = variant == 1 ? -0.75f : 1.25f;
        c.beta = variant == 1 ? 0.5f : 0.0f;
        c.pad = variant == 1 ? 3 : 0;
        c.misalign = variant == 1;
        c.ld4 = variant == 2;
        c.seed = seed++;
        cases.push_back(c);
      }
  return cases;
}

double dot_ref(std::size_t n, const float* x, const float* y, double* abs_sum) {
  double s = 0.0, a = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    s += double(x[i]) * double(y[i]);
    a += std::fabs(double(x[i]) * double(y[i]));
  }
  *abs_sum = a;
  return s;
}

// ================================================================ no GPU needed

void arch_strings_and_support_impl() {
  using cuda::architectures_support;
  using cuda::describe_architectures;
  EXPECT_EQ(describe_architectures("80-real;90-real;90-virtual"), std::string("sm_80 sm_90 compute_90"));
  EXPECT_EQ(describe_architectures("90"), std::string("sm_90 compute_90"));
  EXPECT_EQ(describe_architectures("75-virtual 120a-real"), std::string("sm_120a compute_75"));
  EXPECT_EQ(describe_architectures("native"), std::string("native"));
  const char* list = "80-real;90-real;90-virtual";
  EXPECT(architectures_support(list, 8, 0));
  EXPECT(architectures_support(list, 8, 6));    // sm_80 SASS runs on 8.x
  EXPECT(architectures_support(list, 9, 0));
  EXPECT(architectures_support(list, 10, 0));   // compute_90 PTX JITs forward
  EXPECT(!architectures_support(list, 7, 5));   // too old for both
  EXPECT(!architectures_support("80-real;90-real", 10, 0));  // no PTX: no forward path
  EXPECT(!architectures_support("90a-real", 10, 0));
  EXPECT(architectures_support("90a-real", 9, 0));
  EXPECT(architectures_support("native", 7, 0));  // unknown: the runtime check decides
  // what this build was compiled with parses (CMake passes CMAKE_CUDA_ARCHITECTURES)
  std::vector<cuda::ArchTarget> t;
  EXPECT(cuda::parse_architectures(cuda::compiled_architectures(), &t) ||
         std::string(cuda::compiled_architectures()).find_first_of("0123456789") == std::string::npos);
}

void info_reports_build_and_availability_impl() {
  const GpuInfo info = gpu_info();
  EXPECT(info.compiled);
  EXPECT(!info.architectures.empty());
  EXPECT(info.runtime_version >= 12000);
  GpuBackend* b = cuda::backend();
  EXPECT(b == gpu_backend());
  EXPECT_EQ(b->available(), info.available);
  if (!info.available) {
    std::printf("(no GPU: %s)\n", info.reason.c_str());
    EXPECT(!info.reason.empty());
    EXPECT_EQ(b->unavailable_reason(), info.reason);
    EXPECT(resolve_device(Device::Auto) == Device::Cpu);
    float a[4] = {1, 2, 3, 4}, c[4] = {0, 0, 0, 0};
    GemmArgs g;
    g.m = g.n = g.k = 2;
    g.a = a;
    g.lda = 2;
    g.b = a;
    g.ldb = 2;
    g.c = c;
    g.ldc = 2;
    EXPECT_THROWS_CODE(linalg::sgemm(Device::Cuda, g), ErrorCode::DeviceUnavailable);
    EXPECT_THROWS_CODE(b->sgemm(g, {}), ErrorCode::DeviceUnavailable);
    EXPECT_THROWS_CODE(linalg::sdot(Device::Cuda, 4, a, a), ErrorCode::DeviceUnavailable);
    EXPECT_THROWS_CODE(b->snrm2(4, a), ErrorCode::DeviceUnavailable);
    // Auto falls back to the CPU
    linalg::sgemm(Device::Auto, g);
    EXPECT_NEAR(c[0], 7.0, 1e-6);
  } else {
    std::printf("(GPU: %s, sm_%d%d, %d SMs, %zu MiB, driver %d, runtime %d, built for %s)\n", info.name.c_str(),
                info.cc_major, info.cc_minor, info.multiprocessors, info.total_memory >> 20, info.driver_version,
                info.runtime_version, info.architectures.c_str());
    EXPECT(info.reason.empty());
    EXPECT(!info.name.empty());
    EXPECT(info.device_count >= 1);
    EXPECT(info.cc_major >= 5);
    EXPECT(info.multiprocessors > 0);
    EXPECT(info.total_memory > 0 && info.free_memory > 0 && info.free_memory <= info.total_memory);
    EXPECT(info.driver_version >= info.runtime_version);
    EXPECT(resolve_device(Device::Auto) == Device::Cuda);
  }
}

// ================================================================ GPU

void run_gpu_gemm(const GemmArgs& g) { linalg::sgemm(Device::Cuda, g); }

void gpu_gemm_shapes_all_transposes_impl() {
  test::require_gpu_or_skip();
  const Shape shapes[] = {{1, 1, 1},   {0, 5, 7},     {5, 0, 7},    {5, 7, 0},     {2, 3, 1},
                          {127, 129, 131}, {1, 513, 257}, {513, 1, 257}, {300, 200, 1}, {33, 47, 4099},
                          {256, 384, 200}, {1100, 1300, 96}};
  uint64_t seed = 100;
  for (const Shape& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (int variant = 0; variant < 2; ++variant) {
        GemmCase c;
        c.ta = t & 1;
        c.tb = t & 2;
        c.m = s.m;
        c.n = s.n;
        c.k = s.k;
        c.alpha = variant ? -0.75f : 1.5f;
        c.beta = variant ? 0.5f : 0.0f;  // beta 0: C holds NaN
        c.pad = variant ? 3 : 0;         // ld > minimal
        c.seed = seed++;
        check_gemm(c, run_gpu_gemm, /*bitwise=*/true, /*compare_cpu=*/true);
      }
}

void gpu_gemm_large_tiles_impl() {
  test::require_gpu_or_skip();
  // big enough that the planner takes the 128×128 tile; rows are sampled
  for (int t = 0; t < 4; ++t) {
    GemmCase c;
    c.ta = t & 1;
    c.tb = t & 2;
    c.m = 2049;
    c.n = 2050;
    c.k = 515;
    c.alpha = 1.0f;
    c.beta = t == 3 ? -1.0f : 0.0f;
    c.pad = t == 2 ? 1 : 0;
    c.seed = 900 + t;
    check_gemm(c, run_gpu_gemm, true, false);
  }
}

void gpu_gemm_alpha_zero_and_k_zero_impl() {
  test::require_gpu_or_skip();
  for (float beta : {0.0f, 2.0f})
    for (std::size_t k : {std::size_t(0), std::size_t(5)}) {
      GemmCase c;
      c.m = 70;
      c.n = 33;
      c.k = k;
      c.alpha = k ? 0.0f : 1.0f;
      c.beta = beta;
      c.pad = 2;
      check_gemm(c, run_gpu_gemm, true, false);
    }
}

void gpu_gemm_deterministic_impl() {
  test::require_gpu_or_skip();
  GemmCase c;
  c.m = 300;
  c.n = 257;
  c.k = 999;
  c.ta = true;
  GemmData d1 = make_gemm_data(c), d2 = make_gemm_data(c);
  run_gpu_gemm(d1.args(c));
  run_gpu_gemm(d2.args(c));
  EXPECT(std::memcmp(d1.c.buf.data(), d2.c.buf.data(), d1.c.buf.size() * sizeof(float)) == 0);
}

// A product split into several launches: progress arrives per launch, cancellation
// from the progress callback stops it, and the backend keeps working.
void gpu_gemm_chunked_progress_and_cancel_impl() {
  test::require_gpu_or_skip();
  GemmCase c;
  c.m = 16384;
  c.n = 4096;
  c.k = 4096;  // 5.5e11 flops: three launches of ~2.5e11
  c.ta = true;  // the launches start at column offsets of A's storage
  c.seed = 77;
  GemmData d = make_gemm_data(c);
  GemmArgs g = d.args(c);
  std::vector<double> reports;
  OpContext ctx;
  ctx.progress = [&](double done, double total) {
    EXPECT_EQ(total, double(c.m));
    reports.push_back(done);
  };
  linalg::sgemm(Device::Cuda, g, ctx);
  EXPECT(reports.size() >= 2);  // at least two launches (3 on an H100/H200: ~2.5e11 flops each)
  for (std::size_t i = 1; i < reports.size(); ++i) EXPECT(reports[i] > reports[i - 1]);
  EXPECT_EQ(reports.back(), double(c.m));
  FrobErr err;
  for (std::size_t i : rows_to_check(c.m, c.n, c.k))
    for (std::size_t j = 0; j < c.n; j += 7) err.add(d.c.at(i, j), gemm_ref(g, d.c0, i, j));
  EXPECT(err.rel() <= gemm_tolerance(c.k));

  // cancel from the first progress report: the next launch is never issued
  OpContext cancelling;
  cancelling.cancel = std::make_shared<CancelToken>();
  int seen = 0;
  cancelling.progress = [&](double, double) {
    ++seen;
    cancelling.cancel->cancel();
  };
  EXPECT_THROWS_CODE(linalg::sgemm(Device::Cuda, g, cancelling), ErrorCode::Cancelled);
  if (reports.size() >= 3) EXPECT_EQ(seen, 1);  // stopped before the third launch
  EXPECT(seen <= 2);

  GemmCase small;
  small.m = 65;
  small.n = 31;
  small.k = 17;
  check_gemm(small, run_gpu_gemm, true, false);
}

void gpu_cancelled_before_start_impl() {
  test::require_gpu_or_skip();
  GemmCase c;
  c.m = 64;
  c.n = 64;
  c.k = 64;
  GemmData d = make_gemm_data(c);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  EXPECT_THROWS_CODE(linalg::sgemm(Device::Cuda, d.args(c), ctx), ErrorCode::Cancelled);
  GemvCase v;
  v.m = 10;
  v.n = 10;
  GemvData e = make_gemv_data(v);
  EXPECT_THROWS_CODE(linalg::sgemv(Device::Cuda, gemv_args(v, e), ctx), ErrorCode::Cancelled);
  // still works afterwards
  check_gemm(c, run_gpu_gemm, true, false);
}

void gpu_concurrent_callers_impl() {
  test::require_gpu_or_skip();
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &errors] {
      try {
        for (int it = 0; it < 3; ++it) {
          GemmCase c;
          c.m = 100 + 37 * t + it;
          c.n = 90 + 11 * it;
          c.k = 200 + t;
          c.ta = t & 1;
          c.tb = it & 1;
          c.beta = it == 2 ? 0.5f : 0.0f;
          c.seed = 1000 + 10 * t + it;
          check_gemm(c, run_gpu_gemm, true, false);
          std::vector<float> x(5000 + t), y(5000 + t);
          Rng(50 + t).gaussian(x.data(), x.size());
          Rng(60 + t).gaussian(y.data(), y.size());
          double abs_sum = 0.0;
          const double ref = dot_ref(x.size(), x.data(), y.data(), &abs_sum);
          EXPECT_NEAR(linalg::sdot(Device::Cuda, x.size(), x.data(), y.data()), ref, 1e-10 * abs_sum);
        }
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  for (auto& th : threads) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void gpu_gemv_impl() {
  test::require_gpu_or_skip();
  for (const GemvCase& c : gemv_cases(70001))
    check_gemv(c, [](const GemvArgs& g) { linalg::sgemv(Device::Cuda, g); }, /*compare_cpu=*/true);
}

void gpu_dot_nrm2_axpy_impl() {
  test::require_gpu_or_skip();
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(5), std::size_t(4096), std::size_t(10007),
                        std::size_t((1 << 20) + 3)}) {
    std::vector<float> x(n + 1), y(n + 1);
    Rng(3 + n).gaussian(x.data(), x.size());
    Rng(4 + n).gaussian(y.data(), y.size());
    double abs_sum = 0.0;
    const double ref = dot_ref(n, x.data(), y.data(), &abs_sum);
    const double d = linalg::sdot(Device::Cuda, n, x.data(), y.data());
    // double accumulation: a missing or doubled term would cost ~abs_sum/n ≫ 1e-10·abs_sum
    EXPECT_NEAR(d, ref, 1e-10 * abs_sum + 1e-300);
    EXPECT_NEAR(d, linalg::sdot_cpu(n, x.data(), y.data()), 2e-10 * abs_sum + 1e-300);
    double sq = 0.0;
    const double ref2 = dot_ref(n, x.data(), x.data(), &sq);
    const double nr = linalg::snrm2(Device::Cuda, n, x.data());
    EXPECT_NEAR(nr, std::sqrt(ref2), 1e-10 * std::sqrt(sq) + 1e-300);
    EXPECT_NEAR(nr, linalg::snrm2_cpu(n, x.data()), 2e-10 * std::sqrt(sq) + 1e-300);
    // unaligned views too (the host wrapper repacks, the sums must not change)
    if (n > 1) EXPECT_NEAR(linalg::snrm2(Device::Cuda, n - 1, x.data() + 1), linalg::snrm2_cpu(n - 1, x.data() + 1),
                           2e-10 * std::sqrt(sq));
    // axpy: fma(alpha, x, y) per element
    std::vector<float> yg(y), yc(y);
    const float alpha = -1.375f;
    linalg::saxpy(Device::Cuda, n, alpha, x.data(), yg.data());
    linalg::saxpy_cpu(n, alpha, x.data(), yc.data());
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(yg[i], std::fmaf(alpha, x[i], y[i]));
      EXPECT_NEAR(yg[i], yc[i], 1e-6 * (std::fabs(yc[i]) + 1.0));
    }
    EXPECT_EQ(yg[n], y[n]);  // one past the end untouched
  }
}

void gpu_reductions_deterministic_impl() {
  test::require_gpu_or_skip();
  const std::size_t n = (std::size_t(1) << 22) + 5;
  std::vector<float> x(n), y(n);
  Rng(8).gaussian(x.data(), n);
  Rng(9).gaussian(y.data(), n);
  const double d1 = linalg::sdot(Device::Cuda, n, x.data(), y.data());
  const double d2 = linalg::sdot(Device::Cuda, n, x.data(), y.data());
  const double r1 = linalg::snrm2(Device::Cuda, n, x.data());
  const double r2 = linalg::snrm2(Device::Cuda, n, x.data());
  EXPECT(std::memcmp(&d1, &d2, sizeof(double)) == 0);
  EXPECT(std::memcmp(&r1, &r2, sizeof(double)) == 0);
  GemvCase c;
  c.trans = true;
  c.m = 50000;
  c.n = 300;
  GemvData e1 = make_gemv_data(c), e2 = make_gemv_data(c);
  linalg::sgemv(Device::Cuda, gemv_args(c, e1));
  linalg::sgemv(Device::Cuda, gemv_args(c, e2));
  EXPECT(std::memcmp(e1.y.buf.data(), e2.y.buf.data(), e1.y.buf.size() * sizeof(float)) == 0);
}

// The device-pointer API on views that are misaligned or have ld > minimal (the
// host API always packs, so only this reaches the scalar load paths on a GPU),
// with both tile sizes forced: every variant gives the host FMA chain exactly.
void gpu_gemm_device_views_both_tiles_impl() {
  test::require_gpu_or_skip();
  cuda::set_device(gpu_info().device);
  cuda::Stream stream;
  // the view's span: from its first element to its last (padding between rows included)
  auto span = [](const Strided& h) { return h.rows == 0 || h.cols == 0 ? 0 : (h.rows - 1) * h.ld + h.cols; };
  auto to_device = [&](const Strided& h, std::size_t off, cuda::DeviceBuffer& d) {
    d = cuda::DeviceBuffer((span(h) + off + 4) * sizeof(float));
    cuda::copy_to_device(d.as<float>() + off, h.p, span(h) * sizeof(float), stream.handle());
    return d.as<float>() + off;
  };
  uint64_t seed = 300;
  const Shape shapes[] = {{257, 263, 129}, {33, 17, 9}, {130, 1, 64}};
  for (const Shape& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (int variant = 0; variant < 3; ++variant) {
        GemmCase c;
        c.ta = t & 1;
        c.tb = t & 2;
        c.m = s.m;
        c.n = s.n;
        c.k = s.k;
        c.alpha = 0.5f;
        c.beta = variant == 1 ? -1.5f : 0.0f;
        c.pad = variant == 0 ? 0 : 3;
        c.ld4 = variant == 2;
        c.seed = seed++;
        const std::size_t off = variant == 1 ? 1 : 0;  // misaligned device views
        for (int tile : {0, 64, 128}) {
          GemmData d = make_gemm_data(c);
          GemmArgs g = d.args(c);
          cuda::DeviceBuffer da, db, dc;
          GemmArgs dg = g;
          dg.a = to_device(d.a, off, da);
          dg.b = to_device(d.b, off, db);
          dg.c = to_device(d.c, off, dc);
          cuda::sgemm_async_tile(dg, tile, stream.handle());
          cuda::copy_to_host(d.c.p, dg.c, span(d.c) * sizeof(float), stream.handle());
          stream.synchronize();
          for (std::size_t i = 0; i < c.m; ++i)
            for (std::size_t j = 0; j < c.n; ++j)
              if (!(d.c.at(i, j) == gemm_chain(g, d.c0, i, j)))
                throw test::Failure(describe(c) + " tile " + std::to_string(tile) + ": C[" + std::to_string(i) +
                                    "][" + std::to_string(j) + "] differs from the FMA chain");
          for (std::size_t i = 0; i + 1 < c.m; ++i)  // padding between rows untouched
            for (std::size_t j = c.n; j < d.c.ld; ++j) EXPECT_EQ(d.c.at(i, j), kSentinel);
        }
      }
  EXPECT_THROWS_CODE(cuda::sgemm_async_tile(GemmArgs{}, 32, stream.handle()), ErrorCode::InvalidArgument);
}

void gpu_device_pointer_api_impl() {
  test::require_gpu_or_skip();
  // the low-level API on device memory with a caller's stream (what Lanczos will use)
  const GpuInfo info = gpu_info();
  cuda::set_device(info.device);
  cuda::Stream stream;
  const std::size_t n = 3001;
  std::vector<float> x(n), y(n);
  Rng(21).gaussian(x.data(), n);
  Rng(22).gaussian(y.data(), n);
  cuda::DeviceBuffer dx(n * sizeof(float)), dy(n * sizeof(float)),
      dr((1 + cuda::reduce_workspace_doubles()) * sizeof(double));
  cuda::copy_to_device(dx.data(), x.data(), n * sizeof(float), stream.handle());
  cuda::copy_to_device(dy.data(), y.data(), n * sizeof(float), stream.handle());
  double* r = dr.as<double>();
  cuda::sdot_async(n, dx.as<float>(), dy.as<float>(), r, r + 1, stream.handle());
  double got = 0.0;
  cuda::copy_to_host(&got, r, sizeof(double), stream.handle());
  stream.synchronize();
  double abs_sum = 0.0;
  EXPECT_NEAR(got, dot_ref(n, x.data(), y.data(), &abs_sum), 1e-10 * abs_sum);
  // GEMM on device pointers: (1×n)·(n×1)
  linalg::GemmArgs g;
  g.m = 1;
  g.n = 1;
  g.k = n;
  g.a = dx.as<float>();
  g.lda = n;
  g.b = dy.as<float>();
  g.ldb = 1;
  g.trans_b = false;
  cuda::DeviceBuffer dc(sizeof(float));
  g.c = dc.as<float>();
  g.ldc = 1;
  cuda::sgemm_async(g, stream.handle());
  float c = 0.0f;
  cuda::copy_to_host(&c, dc.data(), sizeof(float), stream.handle());
  stream.synchronize();
  EXPECT_NEAR(c, dot_ref(n, x.data(), y.data(), &abs_sum), 1e-4 * abs_sum);
  // kernel attributes are readable, and the GEMM kernels do not spill
  const auto attrs = cuda::kernel_attributes();
  EXPECT(!attrs.empty());
  for (const auto& a : attrs) {
    std::printf("  %-26s %3d regs %6d B smem %4d B local  sm_%d / compute_%d\n", a.name.c_str(), a.registers,
                a.shared_bytes, a.local_bytes, a.binary_version, a.ptx_version);
    EXPECT(a.registers > 0);
  }
}

}  // namespace

// ================================================================ host emulation
// The kernel sources of linalg_kernels.cuh compiled for the host emulator, in their
// own namespace (nnscope::cuda::emu) so they never meet the real kernels.
#include "cuda_emu_support.h"
#include "cuda/linalg_kernels.cuh"

namespace {

using namespace nnscope;

// What linalg.cu's sgemm_async does, on host memory, with the tile forced.
void emu_gemm(const GemmArgs& g, int tile) {
  if (g.m == 0 || g.n == 0) return;
  cuda::emu::sgemm_launch((long long)g.m, cuda::emu::gemm_params(g), g.trans_a, g.trans_b, 1, tile, nullptr);
}

void emu_gemm_all_transposes_impl() {
  const Shape shapes[] = {{1, 1, 1}, {2, 3, 1}, {127, 129, 131}, {1, 70, 9}, {70, 1, 33}, {33, 65, 8}, {9, 6, 20}};
  uint64_t seed = 500;
  for (int tile : {64, 128})
    for (const Shape& s : shapes)
      for (int t = 0; t < 4; ++t)
        for (int variant = 0; variant < 4; ++variant) {
          GemmCase c;
          c.ta = t & 1;
          c.tb = t & 2;
          c.m = s.m;
          c.n = s.n;
          c.k = s.k;
          c.alpha = variant == 1 ? -0.75f : 1.5f;
          c.beta = variant == 0 || variant == 3 ? 0.0f : 0.5f;
          c.pad = variant == 2 ? 3 : (variant == 1 ? 4 : 0);
          c.misalign = variant == 2;  // scalar loads
          c.ld4 = variant == 3;       // float4 paths with ragged edges (ld % 4 == 0, sizes odd)
          c.seed = seed++;
          check_gemm(c, [tile](const GemmArgs& g) { emu_gemm(g, tile); }, /*bitwise=*/true, /*compare_cpu=*/false);
        }
}

void emu_gemm_degenerate_impl() {
  const Shape shapes[] = {{0, 5, 7}, {5, 0, 7}, {5, 7, 0}, {6, 130, 0}};
  for (const Shape& s : shapes)
    for (float beta : {0.0f, -2.0f})
      for (float alpha : {1.0f, 0.0f}) {
        GemmCase c;
        c.m = s.m;
        c.n = s.n;
        c.k = s.k;
        c.alpha = alpha;
        c.beta = beta;
        c.pad = 1;
        check_gemm(c, [](const GemmArgs& g) { emu_gemm(g, 0); }, true, false);
      }
  // several launches along m (the grid-size split), both layouts of A
  for (int t = 0; t < 4; ++t)
    for (int tile : {64, 128}) {
      GemmCase c;
      c.ta = t & 1;
      c.tb = t & 2;
      c.m = 300;
      c.n = 21;
      c.k = 13;
      c.beta = 0.25f;
      c.ld4 = true;
      c.seed = 70 + t;
      check_gemm(c,
                 [tile](const GemmArgs& g) {
                   cuda::emu::sgemm_launch((long long)g.m, cuda::emu::gemm_params(g), g.trans_a, g.trans_b, 1, tile,
                                           nullptr, /*max_rows=*/tile * 2);
                 },
                 true, false);
    }
  // the planner: 128×128 once there is a block per multiprocessor
  EXPECT_EQ(cuda::emu::gemm_tile(128 * 11, 128 * 12, 132), 128);
  EXPECT_EQ(cuda::emu::gemm_tile(1000, 1000, 132), 64);
}

void emu_gemv_impl() {
  for (const GemvCase& c : gemv_cases(2500)) {
    if (!c.trans && c.m > 300) continue;  // a warp per row: too many emulated threads
    check_gemv(c,
               [](const GemvArgs& g) {
                 std::vector<float> ws(std::max<long long>(1, cuda::emu::gemv_workspace_floats(g.trans, g.m, g.n)),
                                       kNaN);
                 cuda::emu::sgemv_launch(cuda::emu::gemv_params(g), g.trans, ws.data(), nullptr);
               },
               false);
  }
  int rps = 0;
  EXPECT_EQ(cuda::emu::gemv_t_splits(2500, &rps), 3);
  EXPECT_EQ(rps, 834);
  EXPECT_EQ(cuda::emu::gemv_t_splits(0, &rps), 1);
  EXPECT_EQ(cuda::emu::gemv_t_splits(10000000, &rps), 64);
  EXPECT(64LL * rps >= 10000000LL);
}

void emu_dot_nrm2_axpy_impl() {
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(4099), std::size_t(10007)})
    for (int variant = 0; variant < 4; ++variant) {  // aligned, both misaligned, only y, only x misaligned
      Strided x = make_strided(1, n, 0, variant == 1 || variant == 3, 40 + n, kNaN);
      Strided y = make_strided(1, n, 0, variant == 1 || variant == 2, 41 + n, kNaN);
      std::vector<double> out(1 + cuda::emu::kReduceMaxBlocks, -1.0);
      cuda::emu::dot_launch((long long)n, x.p, y.p, out.data(), out.data() + 1, nullptr);
      double abs_sum = 0.0;
      const double ref = dot_ref(n, x.p, y.p, &abs_sum);
      EXPECT_NEAR(out[0], ref, 1e-12 * abs_sum + 1e-300);
      EXPECT_EQ(out[1 + cuda::emu::reduce_blocks((long long)n)], -1.0);  // workspace bound respected
      cuda::emu::nrm2_launch((long long)n, x.p, out.data(), out.data() + 1, nullptr);
      double sq = 0.0;
      const double ref2 = dot_ref(n, x.p, x.p, &sq);
      EXPECT_NEAR(out[0], std::sqrt(ref2), 1e-12 * std::sqrt(sq) + 1e-300);
      std::vector<float> y0(y.p, y.p + n);
      const float alpha = 0.625f;
      cuda::emu::saxpy_launch((long long)n, alpha, x.p, y.p, nullptr);
      for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(y.p[i], std::fmaf(alpha, x.p[i], y0[i]));
      if (!exact_buffers()) EXPECT(std::isnan(y.p[n]));  // slack untouched
    }
  EXPECT_EQ(cuda::emu::reduce_blocks(1), 1);
  EXPECT_EQ(cuda::emu::reduce_blocks(4097), 2);
  EXPECT_EQ(cuda::emu::reduce_blocks(1LL << 40), cuda::emu::kReduceMaxBlocks);
}

}  // namespace

#define NNSCOPE_CUDA_CASE(fn) fn()
#else
#define NNSCOPE_CUDA_CASE(fn) ::nnscope::test::skip("nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off)")
#endif  // NNSCOPE_HAVE_CUDA

// ---------------------------------------------------------------- registered cases
NNSCOPE_TEST(info_reports_build_and_availability) { NNSCOPE_CUDA_CASE(info_reports_build_and_availability_impl); }
NNSCOPE_TEST(arch_strings_and_support) { NNSCOPE_CUDA_CASE(arch_strings_and_support_impl); }
NNSCOPE_TEST(emu_gemm_all_transposes) { NNSCOPE_CUDA_CASE(emu_gemm_all_transposes_impl); }
NNSCOPE_TEST(emu_gemm_degenerate) { NNSCOPE_CUDA_CASE(emu_gemm_degenerate_impl); }
NNSCOPE_TEST(emu_gemv) { NNSCOPE_CUDA_CASE(emu_gemv_impl); }
NNSCOPE_TEST(emu_dot_nrm2_axpy) { NNSCOPE_CUDA_CASE(emu_dot_nrm2_axpy_impl); }
NNSCOPE_TEST(gpu_gemm_shapes_all_transposes) { NNSCOPE_CUDA_CASE(gpu_gemm_shapes_all_transposes_impl); }
NNSCOPE_TEST(gpu_gemm_large_tiles) { NNSCOPE_CUDA_CASE(gpu_gemm_large_tiles_impl); }
NNSCOPE_TEST(gpu_gemm_alpha_zero_and_k_zero) { NNSCOPE_CUDA_CASE(gpu_gemm_alpha_zero_and_k_zero_impl); }
NNSCOPE_TEST(gpu_gemm_deterministic) { NNSCOPE_CUDA_CASE(gpu_gemm_deterministic_impl); }
NNSCOPE_TEST(gpu_gemm_chunked_progress_and_cancel) { NNSCOPE_CUDA_CASE(gpu_gemm_chunked_progress_and_cancel_impl); }
NNSCOPE_TEST(gpu_cancelled_before_start) { NNSCOPE_CUDA_CASE(gpu_cancelled_before_start_impl); }
NNSCOPE_TEST(gpu_concurrent_callers) { NNSCOPE_CUDA_CASE(gpu_concurrent_callers_impl); }
NNSCOPE_TEST(gpu_gemv) { NNSCOPE_CUDA_CASE(gpu_gemv_impl); }
NNSCOPE_TEST(gpu_dot_nrm2_axpy) { NNSCOPE_CUDA_CASE(gpu_dot_nrm2_axpy_impl); }
NNSCOPE_TEST(gpu_reductions_deterministic) { NNSCOPE_CUDA_CASE(gpu_reductions_deterministic_impl); }
NNSCOPE_TEST(gpu_gemm_device_views_both_tiles) { NNSCOPE_CUDA_CASE(gpu_gemm_device_views_both_tiles_impl); }
NNSCOPE_TEST(gpu_device_pointer_api) { NNSCOPE_CUDA_CASE(gpu_device_pointer_api_impl); }
