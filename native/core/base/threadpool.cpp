#include "base/threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif

#include "base/error.h"

namespace nnscope {

namespace {

// Before a worker sleeps on the queue, or a caller on its job, it polls for up to
// this long: an op made of several short parallel regions (a decode step) then
// hands its next region to a worker that is still awake instead of paying a
// futex wake-up (tens of microseconds, more on a VM) per region.
constexpr auto kSpin = std::chrono::microseconds(150);

// A spin-wait hint to the core (x86 PAUSE; nothing elsewhere).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  _mm_pause();
#endif
}

// Polls ready() with a pause between tries until it holds (true) or kSpin has
// passed (false).
template <typename Ready>
bool spin_until(Ready&& ready) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= until) return false;
  }
}

}  // namespace

struct ThreadPool::Job {
  std::size_t n = 0;
  const std::function<void(std::size_t)>* fn = nullptr;
  std::atomic<std::size_t> next{0};       // next chunk to claim
  std::atomic<std::size_t> done{0};       // chunks finished (or skipped)
  std::atomic<int> helpers{0};            // workers that joined (not counting the caller)
  int max_helpers = 0;
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  std::condition_variable cv;

  // Claims and runs chunks until none is left. Returns after its last chunk.
  void work() {
    for (;;) {
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          (*fn)(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          failed.store(true, std::memory_order_relaxed);
        }
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
  bool exhausted() const { return next.load(std::memory_order_relaxed) >= n; }
};

static int env_threads() {
  const char* s = std::getenv("NNSCOPE_NUM_THREADS");
  if (s && *s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 1024u));
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(env_threads());
  return pool;
}

ThreadPool::ThreadPool(int threads) { resize(threads); }

ThreadPool::~ThreadPool() { stop_workers(); }

int ThreadPool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

void ThreadPool::stop_workers() {
  std::vector<std::thread> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;  // workers of older generations exit
    posted_.fetch_add(1, std::memory_order_release);  // and stop polling
    old.swap(workers_);
  }
  cv_.notify_all();
  for (auto& t : old) t.join();
}

void ThreadPool::start_workers(int workers) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t gen = generation_;
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, gen] { worker_loop(gen); });
}

void ThreadPool::resize(int threads) {
  NNSCOPE_CHECK(threads >= 1 && threads <= 1024, ErrorCode::InvalidArgument,
                "thread count must be between 1 and 1024");
  stop_workers();
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_ = threads;
  }
  start_workers(threads - 1);
}

void ThreadPool::worker_loop(std::size_t generation) {
  std::uint64_t seen = posted_.load(std::memory_order_acquire);
  bool woken = false;
  for (;;) {
    std::shared_ptr<Job> job;
    // Poll for a new job first (not right after a wake-up: that has one to take);
    // sleep on cv_ only when none came within kSpin.
    const bool fresh = woken || spin_until([&] { return posted_.load(std::memory_order_acquire) != seen; });
    woken = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      seen = posted_.load(std::memory_order_relaxed);  // changes only under mu_
      if (generation_ != generation) return;
      // Take the oldest job that still has chunks and room for a helper.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->exhausted()) {
          it = queue_.erase(it);
          continue;
        }
        if ((*it)->helpers.load(std::memory_order_relaxed) < (*it)->max_helpers) {
          job = *it;
          job->helpers.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        ++it;
      }
      if (!job) {
        if (fresh) continue;  // what was posted is taken or done: poll once more
        // Nothing to do (or every queued job is full): wait for a change.
        cv_.wait(lock, [&] {
          if (generation_ != generation) return true;
          for (auto& j : queue_)
            if (!j->exhausted() && j->helpers.load(std::memory_order_relaxed) < j->max_helpers) return true;
          return false;
        });
        seen = posted_.load(std::memory_order_relaxed);
        woken = true;
        continue;
      }
    }
    job->work();
  }
}

void ThreadPool::run(std::size_t n_chunks, const std::function<void(std::size_t)>& fn, int max_threads) {
  if (n_chunks == 0) return;
  auto job = std::make_shared<Job>();
  job->n = n_chunks;
  job->fn = &fn;
  int participants;
  {
    std::lock_guard<std::mutex> lock(mu_);
    participants = size_;
  }
  if (max_threads > 0) participants = std::min(participants, max_threads);
  job->max_helpers = static_cast<int>(std::min<std::size_t>(participants - 1, n_chunks - 1));
  if (job->max_helpers > 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(job);
      posted_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
  }
  job->work();
  spin_until([&] { return job->done.load(std::memory_order_acquire) == job->n; });
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load(std::memory_order_acquire) == job->n; });
  }
  if (job->max_helpers > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), job);
    if (it != queue_.end()) queue_.erase(it);
  }
  cv_.notify_all();  // waiting workers re-scan the queue
  if (job->error) std::rethrow_exception(job->error);
}

int num_threads() { return ThreadPool::global().size(); }
void set_num_threads(int n) { ThreadPool::global().resize(n); }

}  // namespace nnscope
