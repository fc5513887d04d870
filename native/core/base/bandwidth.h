// nnscope core: a memory read-bandwidth probe (for benchmarks: the roofline that
// bandwidth-bound ops such as decode attention or GEMV are compared against).
#pragma once
#include <cstddef>
#include <vector>

#include "base/context.h"

namespace nnscope {

struct BandwidthResult {
  double gbs = 0;                 // median over the samples, 1e9 bytes/s
  std::vector<double> sample_ms;  // one timed pass over the buffer each
  std::size_t bytes = 0;
  int threads = 0;
};

// Reads a freshly written buffer of `bytes` (rounded down to 8-byte words, at least
// 1 MiB) `samples` times with every pool thread (16 MiB per task, 8 independent
// accumulators per task) after one untimed pass. Checks ctx between passes.
BandwidthResult measure_read_bandwidth(std::size_t bytes, int samples, const OpContext& ctx = {});

}  // namespace nnscope
