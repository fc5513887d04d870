// nnscope core, topology: sorting by float64 value, shared by the merge-tree sweep
// (mergetree.cpp) and the basin sweep (basins.cpp).
//
// sort_key maps a finite double to an unsigned integer with the same order (−0.0
// and +0.0 share a key), so values sort as integers. KeyBuckets is the first pass
// of a sample sort: a monotone map from keys to kBuckets buckets, drawn from a
// sample of the keys so that the buckets hold similar counts; each bucket is then
// small enough to be sorted in cache by radix_sort_run. Any key distribution sorts
// correctly: a skewed one only makes some buckets larger.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/context.h"
#include "base/threadpool.h"

namespace nnscope::topology {

// Order-preserving map of a finite double to an unsigned key; −0.0 and +0.0 share one key.
inline std::uint64_t sort_key(double x) noexcept {
  if (x == 0.0) x = 0.0;
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

// The key of ±0.0 (sort_key(0.0) == sort_key(-0.0)).
inline constexpr std::uint64_t kZeroKey = 0x8000000000000000ull;

// The inverse of sort_key (the key of ±0.0 gives +0.0).
inline double key_value(std::uint64_t k) noexcept {
  const std::uint64_t u = (k >> 63) ? (k & 0x7fffffffffffffffull) : ~k;
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// A monotone map key → bucket in [0, kBuckets): splitters drawn from a sorted
// sample, read through a table over the top 16 bits of key − (the sample's least
// key); keys outside the sample's range go to the first or the last bucket.
class KeyBuckets {
 public:
  static constexpr std::size_t kBuckets = 256;
  // sample: keys drawn from the data (any order, at least one; sorted here).
  explicit KeyBuckets(std::vector<std::uint64_t> sample) {
    std::sort(sample.begin(), sample.end());
    lo_ = sample.front();
    hi_ = sample.back();
    std::uint64_t split[kBuckets - 1];
    for (std::size_t j = 0; j + 1 < kBuckets; ++j) split[j] = sample[((j + 1) * sample.size()) / kBuckets];
    while (((hi_ - lo_) >> shift_) >= kTable) ++shift_;
    table_.resize(kTable);
    for (std::size_t p = 0; p < kTable; ++p) {
      // every key of slot p maps to the bucket of the slot's first key: monotone
      const std::uint64_t first = lo_ + (std::uint64_t(p) << shift_);
      table_[p] = std::uint8_t(std::upper_bound(split, split + kBuckets - 1, first) - split);
    }
  }
  std::size_t operator()(std::uint64_t key) const noexcept {
    if (key < lo_) return 0;
    if (key > hi_) return kBuckets - 1;
    return table_[(key - lo_) >> shift_];
  }

 private:
  static constexpr std::size_t kTable = std::size_t(1) << 16;
  std::uint64_t lo_ = 0, hi_ = 0;
  int shift_ = 0;
  std::vector<std::uint8_t> table_;
};

// A sample of key_of(i) for i in [0, n): 16 per bucket, evenly spaced.
template <typename KeyOf>
std::vector<std::uint64_t> sample_keys(std::size_t n, KeyOf&& key_of) {
  std::vector<std::uint64_t> s(std::min<std::size_t>(n, 16 * KeyBuckets::kBuckets));
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = key_of((i * n) / s.size());
  return s;
}

// Stable sort of a[0, n) by the member `key`: MSD radix on the highest byte in
// which the keys differ, recursing into the sub-ranges (insertion sort below 32
// elements). Fast on the small buckets of a sample sort, whose keys share a long
// prefix. tmp is scratch, grown as needed.
template <typename Rec>
void radix_sort_run(Rec* a, std::size_t n, std::vector<Rec>& tmp) {
  if (n <= 32) {  // insertion sort (stable)
    for (std::size_t i = 1; i < n; ++i) {
      const Rec x = a[i];
      std::size_t j = i;
      for (; j > 0 && a[j - 1].key > x.key; --j) a[j] = a[j - 1];
      a[j] = x;
    }
    return;
  }
  std::uint64_t lo = a[0].key, hi = a[0].key;
  for (std::size_t i = 1; i < n; ++i) {
    lo = std::min(lo, a[i].key);
    hi = std::max(hi, a[i].key);
  }
  if (lo == hi) return;  // all keys equal: already in (stable) order
  int top = 63;
  while (!(((lo ^ hi) >> top) & 1)) --top;
  const int shift = top & ~7;  // the byte holding the highest differing bit
  std::size_t start[257] = {};
  for (std::size_t i = 0; i < n; ++i) ++start[((a[i].key >> shift) & 255) + 1];
  for (int b = 0; b < 256; ++b) start[b + 1] += start[b];
  if (tmp.size() < n) tmp.resize(n);
  {
    std::size_t pos[256];
    std::copy(start, start + 256, pos);
    for (std::size_t i = 0; i < n; ++i) tmp[pos[(a[i].key >> shift) & 255]++] = a[i];
  }
  std::copy(tmp.begin(), tmp.begin() + std::ptrdiff_t(n), a);
  if (shift == 0) return;  // the last byte: each sub-range holds one key
  for (int b = 0; b < 256; ++b) radix_sort_run(a + start[b], start[b + 1] - start[b], tmp);
}

// Per-(chunk, bucket) counts, laid out [chunk][bucket], become destinations: where
// chunk c's elements of bucket b start, buckets in order and chunks in order within
// a bucket (so a scatter in chunk order is stable). Returns where each bucket starts
// (kBuckets + 1 entries, the last = the total).
template <typename Count>
std::vector<std::size_t> bucket_destinations(std::vector<Count>& at, std::size_t chunks) {
  constexpr std::size_t B = KeyBuckets::kBuckets;
  std::vector<std::size_t> start(B + 1, 0);
  std::size_t sum = 0;
  for (std::size_t b = 0; b < B; ++b) {
    start[b] = sum;
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t cnt = at[c * B + b];
      at[c * B + b] = Count(sum);
      sum += cnt;
    }
  }
  start[B] = sum;
  return start;
}

// Sorts each bucket [start[b], start[b + 1]) of rec by key, buckets in parallel.
template <typename Rec>
void sort_buckets(Rec* rec, const std::vector<std::size_t>& start, const OpContext& ctx) {
  parallel_for(0, start.size() - 1, 1, [&](std::size_t b0, std::size_t b1) {
    ctx.check();
    std::vector<Rec> tmp;
    for (std::size_t b = b0; b < b1; ++b) radix_sort_run(rec + start[b], start[b + 1] - start[b], tmp);
  });
}

}  // namespace nnscope::topology
