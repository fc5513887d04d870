// Tests of the CUDA topology ops (native/cuda/topology*): steepest-descent basins
// and 0-dim persistence on grids, and the brute-force kNN lists, against the CPU ops
// (topology::basins_grid, topology::knn_lists), which must be matched EXACTLY: the
// same pairs, essential classes and basin labels; the same neighbour indices and
// distance bits.
//
// The emu_* tests need no GPU: the kernels and host drivers of
// cuda/topology_kernels.cuh (the source topology.cu compiles) run under the host
// emulator cuda/cuda_emu.h over host memory. The gpu_* tests start with
// require_gpu_or_skip() and go through the installed GpuBackend's hooks. In a
// CPU-only build every test of this file skips.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/context.h"
#include "base/device.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "setup.h"
#include "topology/basins.h"
#include "topology/graph.h"
#include "topology/knn.h"
#include "topology_reference.h"

#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/topology.h"

namespace {

using namespace nnscope;
using namespace nnscope::topology;
using test::expect_same;
using test::kAllNeighborhoods;
using test::random_values;


void expect_same(const KnnLists& got, const KnnLists& want) {
  EXPECT_EQ(got.n, want.n);
  EXPECT_EQ(got.k, want.k);
  EXPECT(got.index == want.index);
  EXPECT(got.dist2 == want.dist2);
}

// Inter-basin edges over the forward half of the stencil, counted by brute force
// from coordinates (what the device's compaction must have produced).
long long count_edges(const std::vector<std::int64_t>& basin, const GridShape& g, Neighborhood nb) {
  long long c = 0;
  test::for_each_grid_neighbor(g, nb, [&](std::size_t v, std::size_t u, const std::vector<int>& e) {
    if (test::forward_offset(e) && basin[u] != basin[v]) ++c;
  });
  return c;
}

std::vector<GridShape> test_grids() {
  return {GridShape{{1}},       GridShape{{300}},        GridShape{{17, 23}},   GridShape{{1, 40}},
          GridShape{{9, 1, 7}}, GridShape{{6, 7, 5}},     GridShape{{3, 4, 3, 5}}, GridShape{{2, 2, 2, 2, 2, 3}}};
}

// ---------------------------------------------------------------- GPU (real device)
void gpu_basins_match_cpu_impl() {
  test::require_gpu_or_skip();
  GpuBackend& gpu = require_gpu();
  std::vector<GridShape> grids = test_grids();
  grids.push_back(GridShape{{512, 700}});
  grids.push_back(GridShape{{41, 41, 41}});
  grids.push_back(GridShape{{13, 13, 13, 13}});
  std::uint64_t seed = 1;
  for (const GridShape& g : grids)
    for (int levels : {0, 3})
      for (Neighborhood nb : kAllNeighborhoods) {
        const std::vector<double> f = random_values(g.vertices(), levels, seed++);
        expect_same(gpu.topology_basins_grid(f.data(), g, nb, {}), basins_grid(f.data(), g, nb));
      }
}

void gpu_knn_matches_cpu_impl() {
  test::require_gpu_or_skip();
  GpuBackend& gpu = require_gpu();
  for (std::size_t dim : {1, 2, 3, 4, 9}) {
    std::vector<double> x;
    std::vector<float> xf;
    const std::size_t n = 3000 + 117 * dim;
    test::random_points(n, dim, dim % 2 == 0 ? 5 : 0, dim, x, xf);
    const std::size_t k = std::min<std::size_t>(4 * dim, 64);
    expect_same(gpu.topology_knn(x.data(), n, dim, k, {}), knn_lists(x.data(), n, dim, k));
  }
}

void gpu_errors_impl() {
  test::require_gpu_or_skip();
  GpuBackend& gpu = require_gpu();
  std::vector<double> f(12, 0.0);
  f[3] = std::nan("");
  EXPECT_THROWS_CODE(gpu.topology_basins_grid(f.data(), GridShape{{3, 4}}, Neighborhood::Axis, {}),
                     ErrorCode::NonFinite);
  std::vector<double> x(200, 0.5);
  EXPECT_THROWS_CODE(gpu.topology_knn(x.data(), 100, 2, 65, {}), ErrorCode::InvalidArgument);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  f[3] = 1.0;
  EXPECT_THROWS_CODE(gpu.topology_basins_grid(f.data(), GridShape{{3, 4}}, Neighborhood::Axis, ctx),
                     ErrorCode::Cancelled);
}

}  // namespace

// ================================================================ host emulation
#include "cuda_emu_support.h"
#include "cuda/topology_kernels.cuh"

namespace {

namespace ek = nnscope::cuda::emu;

// The drivers' environment on the host: "device memory" is 16-byte aligned host
// memory filled with 0xff bytes (reads of unwritten memory show).
class EmuEnv {
 public:
  int downloads = 0;
  template <typename T>
  T* alloc(std::size_t count) {
    const std::size_t words = (count * sizeof(T) + 15) / 16 + 1;
    mem_.emplace_back(new float4[words]);
    std::memset(static_cast<void*>(mem_.back().get()), 0xff, words * 16);
    return reinterpret_cast<T*>(mem_.back().get());
  }
  void upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, std::size_t bytes) {
    ++downloads;
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void* stream() const { return nullptr; }

 private:
  std::vector<std::unique_ptr<float4[]>> mem_;
};

void emu_basins_match_cpu_impl() {
  std::uint64_t seed = 100;
  int cases = 0;
  for (const GridShape& g : test_grids())
    for (int levels : {0, 2, 3})
      for (Neighborhood nb : kAllNeighborhoods) {
        const std::vector<double> f = random_values(g.vertices(), levels, seed++);
        EmuEnv env;
        long long stats[2] = {0, 0};
        const BasinResult got = ek::run_basins_grid(env, f.data(), g, nb, OpContext{}, stats);
        const BasinResult want = basins_grid(f.data(), g, nb);
        expect_same(got, want);
        EXPECT_EQ(stats[1], count_edges(want.basin, g, nb));
        // pointer jumping halves every descent path per round: ≤ ⌈log2 n⌉ + 1 rounds
        EXPECT(stats[0] >= 1);
        EXPECT(double(stats[0]) <= std::ceil(std::log2(double(g.vertices()) + 1)) + 1);
        ++cases;
      }
  EXPECT_EQ(cases, 72);
}

void emu_basins_closed_form_impl() {
  // a 1-D zigzag (minima at 0, 2, …, 30) then a ramp down from 68@32 to 37@63: 33 …
  // 63 descend one step per pointer to 63 (⌈log2 30⌉ + 1 rounds of jumping), 32 to 30
  std::vector<double> f(64);
  for (std::size_t i = 0; i < 64; ++i) f[i] = i < 32 ? double(i % 2) + 0.01 * double(i) : 100.0 - double(i);
  EmuEnv env;
  long long stats[2] = {0, 0};
  const BasinResult r = ek::run_basins_grid(env, f.data(), GridShape{{64}}, Neighborhood::Axis, OpContext{}, stats);
  expect_same(r, basins_grid(f.data(), GridShape{{64}}, Neighborhood::Axis));
  EXPECT_EQ(r.essential.size(), std::size_t(1));
  EXPECT_EQ(r.essential[0].birth, 0);
  EXPECT_EQ(r.pairs.size(), std::size_t(16));  // 17 minima
  EXPECT_EQ(stats[0], 6);
  EXPECT_EQ(r.basin[32], 30);
  for (std::size_t v = 33; v < 64; ++v) EXPECT_EQ(r.basin[v], 63);
  // the last pair: minimum 63 (37) dies at 32 (68), the top of the ridge
  EXPECT_EQ(r.pairs.back().birth, 63);
  EXPECT_EQ(r.pairs.back().death, 32);
}

void emu_knn_matches_cpu_impl() {
  for (std::size_t dim : {1, 2, 3, 5, 12}) {
    std::vector<double> x;
    std::vector<float> xf;
    const std::size_t n = dim == 12 ? 400 : 150 + 40 * dim;  // dim 12: two shared-memory tiles
    test::random_points(n, dim, dim % 2 == 1 ? 5 : 0, 7 * dim, x, xf);
    const std::size_t k = std::min<std::size_t>(4 * dim, 64);
    EmuEnv env, envf;
    expect_same(ek::run_knn(env, x.data(), n, dim, k, OpContext{}), knn_lists(x.data(), n, dim, k));
    expect_same(ek::run_knn(envf, xf.data(), n, dim, k, OpContext{}), knn_lists(xf.data(), n, dim, k));
  }
}

void emu_errors_impl() {
  EmuEnv env;
  std::vector<double> f(12, 0.0);
  f[5] = std::numeric_limits<double>::infinity();
  EXPECT_THROWS_CODE(ek::run_basins_grid(env, f.data(), GridShape{{3, 4}}, Neighborhood::Axis, OpContext{}),
                     ErrorCode::NonFinite);
  EXPECT_THROWS_CODE(ek::run_basins_grid(env, f.data(), GridShape{{3, 0}}, Neighborhood::Axis, OpContext{}),
                     ErrorCode::InvalidArgument);
  std::vector<double> x(400, 0.25);
  EXPECT_THROWS_CODE(ek::run_knn(env, x.data(), 200, 2, 65, OpContext{}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(ek::run_knn(env, x.data(), 200, 2, 200, OpContext{}), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(ek::run_knn(env, x.data(), 1, 8000, 1, OpContext{}), ErrorCode::InvalidArgument);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  f[5] = 1.0;
  EXPECT_THROWS_CODE(ek::run_basins_grid(env, f.data(), GridShape{{3, 4}}, Neighborhood::Axis, ctx),
                     ErrorCode::Cancelled);
}

}  // namespace

#define NNSCOPE_CUDA_CASE(fn) fn()
#else
#define NNSCOPE_CUDA_CASE(fn) ::nnscope::test::skip("nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off)")
#endif  // NNSCOPE_HAVE_CUDA

// ---------------------------------------------------------------- registered cases
NNSCOPE_TEST(emu_basins_match_cpu) { NNSCOPE_CUDA_CASE(emu_basins_match_cpu_impl); }
NNSCOPE_TEST(emu_basins_closed_form) { NNSCOPE_CUDA_CASE(emu_basins_closed_form_impl); }
NNSCOPE_TEST(emu_knn_matches_cpu) { NNSCOPE_CUDA_CASE(emu_knn_matches_cpu_impl); }
NNSCOPE_TEST(emu_errors) { NNSCOPE_CUDA_CASE(emu_errors_impl); }
NNSCOPE_TEST(gpu_basins_match_cpu) { NNSCOPE_CUDA_CASE(gpu_basins_match_cpu_impl); }
NNSCOPE_TEST(gpu_knn_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_knn_matches_cpu_impl); }
NNSCOPE_TEST(gpu_errors) { NNSCOPE_CUDA_CASE(gpu_errors_impl); }
