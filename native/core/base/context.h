// nnscope core: what every long-running op receives from its caller —
// a cancellation token checked inside loops and an optional progress sink.
#pragma once
#include <atomic>
#include <functional>
#include <memory>

#include "base/error.h"

namespace nnscope {

// Shared between the caller (which may cancel from any thread) and the op.
class CancelToken {
 public:
  void cancel() noexcept { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return flag_.load(std::memory_order_relaxed); }
  // Throws Error(Cancelled) if cancellation was requested. Cheap: one relaxed load.
  void check() const {
    if (cancelled()) fail(ErrorCode::Cancelled, "the operation was cancelled");
  }

 private:
  std::atomic<bool> flag_{false};
};

// Receives (done, total) in work units chosen by the op. May be called from any
// worker thread; implementations must be thread-safe and cheap (the addon's sink
// coalesces and forwards to JS). Ops call it at coarse granularity only.
using ProgressFn = std::function<void(double done, double total)>;
// The same with a value that describes the state reached (e.g. a training loss).
using ProgressValueFn = std::function<void(double done, double total, double value)>;

// The per-call context handed to every op. Both members may be empty.
struct OpContext {
  std::shared_ptr<CancelToken> cancel;
  ProgressFn progress;
  ProgressValueFn progress_value;  // optional; report_value falls back to progress

  bool cancelled() const noexcept { return cancel && cancel->cancelled(); }
  void check() const {
    if (cancel) cancel->check();
  }
  void report(double done, double total) const {
    if (progress) progress(done, total);
  }
  void report_value(double done, double total, double value) const {
    if (progress_value) progress_value(done, total, value);
    else report(done, total);
  }
};

}  // namespace nnscope
