// nnscope native tests: restores the process-wide CPU settings a test changes.
#pragma once
#include "base/cpu.h"
#include "base/threadpool.h"

namespace nnscope::test {

// Restores the ISA limit and the pool size when a test ends (also on failure).
struct CpuSettingsGuard {
  Isa isa = active_isa();
  int threads = num_threads();
  ~CpuSettingsGuard() {
    set_isa_limit(isa);
    set_num_threads(threads);
  }
};

}  // namespace nnscope::test
