// nnscope CUDA backend, test support: a host emulator for the subset of CUDA that
// linalg_kernels.cuh uses, so the native tests can run the real kernel sources (index
// arithmetic, tiling, edge handling, reductions, launch planning) on a machine
// without a GPU. Never include it together with CUDA headers, and only from a test.
//
// A launch runs its blocks one after another, on blockDim host threads (std::thread);
// __syncthreads is a barrier over them, __shared__ variables become
// function-local statics (one copy, used by one block at a time), and a warp
// shuffle is an exchange through a per-warp slot array with two barriers over the
// warp's threads. This is slow (a thread per CUDA thread): keep emulated problems
// small. The emulated barriers order memory like real ones (mutex + condition
// variable), so ThreadSanitizer reports a missing __syncthreads as a data race.
// Only one emulated launch may run at a time in a process.
#pragma once

#include <math.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef __CUDACC__
#error "cuda_emu.h is for host-only test builds"
#endif

// ---------------------------------------------------------------- CUDA vocabulary
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

#define NNSCOPE_CUDA_EMU 1

namespace nnscope::cuda_emu {

// A 16-byte access must be 16-byte aligned on the GPU (else a misaligned-address
// fault); on the host it would silently work, so the emulator stops instead.
inline void check_aligned16(const void* p) {
  if (reinterpret_cast<unsigned long long>(p) % 16 != 0) {
    std::fprintf(stderr, "cuda_emu: misaligned 16-byte access at %p\n", p);
    std::abort();
  }
}

class Barrier {
 public:
  explicit Barrier(unsigned n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const unsigned long long gen = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    if (!cv_.wait_for(lock, std::chrono::seconds(120), [&] { return generation_ != gen; })) {
      std::fprintf(stderr, "cuda_emu: barrier timed out (a thread skipped a __syncthreads or a shuffle?)\n");
      std::abort();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned n_;
  unsigned arrived_ = 0;
  unsigned long long generation_ = 0;
};

struct BlockState {
  std::unique_ptr<Barrier> block;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<std::array<unsigned long long, 32>> slots;
};

inline thread_local uint3 t_thread_idx;
inline thread_local uint3 t_block_idx;
inline dim3 g_block_dim;
inline dim3 g_grid_dim;
inline BlockState* g_block = nullptr;

inline unsigned linear_thread() {
  return t_thread_idx.x + g_block_dim.x * (t_thread_idx.y + g_block_dim.y * t_thread_idx.z);
}

// Runs kernel<<<grid, block>>>(args...) on the host; returns when it has finished.
// One host thread per CUDA thread of a block, created once per launch; the threads
// run the blocks in order, meeting at a barrier between blocks.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel argument count");
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  const unsigned nthreads = block.x * block.y * block.z;
  const unsigned long long nblocks = 1ull * grid.x * grid.y * grid.z;
  if (nthreads == 0 || nblocks == 0) return;
  g_grid_dim = grid;
  g_block_dim = block;
  BlockState st;
  st.block = std::make_unique<Barrier>(nthreads);
  const unsigned nwarps = (nthreads + 31) / 32;
  for (unsigned w = 0; w < nwarps; ++w)
    st.warps.push_back(std::make_unique<Barrier>(nthreads - 32 * w < 32 ? nthreads - 32 * w : 32));
  st.slots.resize(nwarps);
  g_block = &st;
  std::vector<std::thread> threads;
  threads.reserve(nthreads);
  for (unsigned t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      t_thread_idx.x = t % block.x;
      t_thread_idx.y = (t / block.x) % block.y;
      t_thread_idx.z = t / (block.x * block.y);
      for (unsigned long long b = 0; b < nblocks; ++b) {
        t_block_idx.x = unsigned(b % grid.x);
        t_block_idx.y = unsigned((b / grid.x) % grid.y);
        t_block_idx.z = unsigned(b / (1ull * grid.x * grid.y));
        std::tuple<std::decay_t<P>...> mine = params;  // by-value kernel parameters
        std::apply(kernel, mine);
        st.block->wait();  // the block is done before the next one starts
      }
    });
  }
  for (auto& th : threads) th.join();
  g_block = nullptr;
}

}  // namespace nnscope::cuda_emu

#define threadIdx (::nnscope::cuda_emu::t_thread_idx)
#define blockIdx (::nnscope::cuda_emu::t_block_idx)
#define blockDim (::nnscope::cuda_emu::g_block_dim)
#define gridDim (::nnscope::cuda_emu::g_grid_dim)

inline void __syncthreads() { ::nnscope::cuda_emu::g_block->block->wait(); }

template <typename T>
inline T __shfl_down_sync(unsigned /*mask: full warps only*/, T v, unsigned delta) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  using namespace ::nnscope::cuda_emu;
  const unsigned lin = linear_thread(), warp = lin / 32, lane = lin % 32;
  auto& slots = g_block->slots[warp];
  Barrier& bar = *g_block->warps[warp];
  std::memcpy(&slots[lane], &v, sizeof(T));
  bar.wait();
  T r = v;
  if (lane + delta < 32) std::memcpy(&r, &slots[lane + delta], sizeof(T));
  bar.wait();
  return r;
}
