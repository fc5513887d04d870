// nnscope core: the process-wide thread pool.
//
// run(n, fn) executes fn(i) for every chunk i in [0, n). The calling thread takes
// chunks too, so a job always completes even when every worker is busy with other
// callers' jobs, and nested calls cannot deadlock. Several callers (e.g. several
// Node AsyncWorkers) may submit at once; their jobs share the workers first come,
// first served. The chunking is the caller's: results that must not depend on the
// thread count should make chunk boundaries independent of size(). An idle worker,
// and a caller waiting for its job's last chunks, polls for up to 150 µs before it
// sleeps, so back-to-back short jobs (a decode step) skip the futex wake-ups.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nnscope {

class ThreadPool {
 public:
  // The process-wide pool, created on first use with hardware_concurrency() threads
  // (or NNSCOPE_NUM_THREADS when that environment variable is a positive integer).
  static ThreadPool& global();

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that work on a job: the workers plus the calling thread.
  int size() const;
  // Sets the number of participating threads (>= 1). Safe while jobs run: pending
  // chunks are finished by their callers and the new workers.
  void resize(int threads);

  // Runs fn(i) for i in [0, n_chunks) and returns when all have finished. If any
  // chunk throws, the remaining unclaimed chunks are skipped and the first
  // exception is rethrown here. max_threads > 0 caps the participants of this job.
  void run(std::size_t n_chunks, const std::function<void(std::size_t)>& fn, int max_threads = 0);

 private:
  struct Job;
  void worker_loop(std::size_t generation);
  void start_workers(int workers);
  void stop_workers();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  // Bumped (under mu_) by every queued job and by stop_workers(): what an idle
  // worker polls for a while before it sleeps on cv_.
  std::atomic<std::uint64_t> posted_{0};
  std::vector<std::thread> workers_;
  std::size_t generation_ = 0;
  int size_ = 1;
};

// parallel_for over [begin, end) in chunks of `grain` indices (the last may be
// shorter); fn(lo, hi) handles one chunk. Chunk boundaries depend only on grain.
template <typename F>
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, F&& fn, int max_threads = 0) {
  if (end <= begin) return;
  if (grain == 0) grain = 1;
  const std::size_t n = (end - begin + grain - 1) / grain;
  if (n == 1) {
    fn(begin, end);
    return;
  }
  ThreadPool::global().run(
      n,
      [&](std::size_t i) {
        const std::size_t lo = begin + i * grain;
        const std::size_t hi = lo + grain < end ? lo + grain : end;
        fn(lo, hi);
      },
      max_threads);
}

// Number of threads the global pool uses.
int num_threads();
// Resizes the global pool (n >= 1).
void set_num_threads(int n);

}  // namespace nnscope
