// Tests of the CUDA attention family (native/cuda/attention*): dense and sparse
// flash attention (SIMT and tensor-core paths, split-K), the LSE merge, K-means,
// centroid scoring, key selection and the composed Squeezed Attention prefill /
// decode, each compared with the CPU op of native/core/attention on the same
// inputs.
//
// The emu_* tests need no GPU: the kernel sources of attention_kernels.cuh,
// attention_kernels_squeezed.cuh and attention_kernels_kmeans.cuh, with the same
// host-side planning code attention.cu uses, run under the host emulator
// cuda/cuda_emu.h on small problems (a host thread per CUDA thread). The tensor-core
// kernel (attention_kernels_mma.cuh: warp shuffles, mma.sync) is outside the
// emulator and is covered by the gpu_* tests only, which start with
// require_gpu_or_skip(). In a CPU-only build every test of this file skips.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/kmeans.h"
#include "attention/kv.h"
#include "attention/squeezed.h"
#include "base/context.h"
#include "base/device.h"
#include "base/error.h"
#include "base/rng.h"
#include "harness.h"
#include "setup.h"

#ifdef NNSCOPE_HAVE_CUDA
#include "cuda/attention.h"
#include "cuda/memory.h"

namespace {

using namespace nnscope;
using namespace nnscope::attention;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> gaussian(std::size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  if (n) Rng(seed).gaussian(v.data(), n);
  for (float& x : v) x *= scale;
  return v;
}
std::vector<float> uniform(std::size_t n, uint64_t seed) {
  std::vector<float> v(n);
  if (n) Rng(seed).uniform(v.data(), n);
  return v;
}

// A K or V tensor [heads, stride ≥ tokens, d] in one storage type; the float copy
// holds the exactly representable values (rounded through the storage type).
struct KvBuf {
  Storage st = Storage::F32;
  std::size_t heads = 0, tokens = 0, d = 0, stride = 0;
  std::vector<float> f;          // [heads, stride, d] values
  std::vector<std::uint16_t> h;  // 16-bit patterns (st != F32)
  std::size_t offset = 0;        // elements skipped at the start (misaligned views)

  KvBuf() = default;
  KvBuf(Storage s, std::size_t H, std::size_t N, std::size_t d_, uint64_t seed, std::size_t extra_rows = 0,
        std::size_t off = 0)
      : st(s), heads(H), tokens(N), d(d_), stride(N + extra_rows), offset(off) {
    f = gaussian(off + H * stride * d, seed);
    if (st != Storage::F32) {
      h.resize(f.size());
      for (std::size_t i = 0; i < f.size(); ++i) {
        h[i] = st == Storage::F16 ? float_to_half(f[i]) : float_to_bf16(f[i]);
        f[i] = st == Storage::F16 ? half_to_float(h[i]) : bf16_to_float(h[i]);
      }
    }
  }
  const void* data() const {
    return st == Storage::F32 ? static_cast<const void*>(f.data() + offset)
                              : static_cast<const void*>(h.data() + offset);
  }
  std::size_t bytes() const { return (st == Storage::F32 ? 4 : 2) * f.size(); }
  const void* raw() const { return st == Storage::F32 ? static_cast<const void*>(f.data()) : h.data(); }
  KvView view(const void* base = nullptr) const {
    KvView v;
    v.data = base ? static_cast<const char*>(base) + offset * (st == Storage::F32 ? 4 : 2) : data();
    v.storage = st;
    v.heads = heads;
    v.tokens = tokens;
    v.d = d;
    v.head_stride = stride == tokens ? 0 : stride;
    return v;
  }
};

const char* st_name(Storage s) { return s == Storage::F32 ? "f32" : s == Storage::F16 ? "f16" : "bf16"; }

// Per-row comparison of outputs [rows, d] and lse [rows]: ‖a−b‖ ≤ tol·‖b‖ + floor
// per row, a zero reference row must be exactly zero, lse within tol·max(1,|b|),
// −Inf exactly.
void expect_rows(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>* la,
                 const std::vector<float>* lb, std::size_t rows, std::size_t d, double tol, const std::string& what) {
  for (std::size_t r = 0; r < rows; ++r) {
    double num = 0, den = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double x = a[r * d + c], y = b[r * d + c];
      if (!std::isfinite(x)) throw test::Failure(what + ": non-finite output at row " + std::to_string(r));
      num += (x - y) * (x - y);
      den += y * y;
    }
    if (!(std::sqrt(num) <= tol * std::sqrt(den) + 1e-7))
      throw test::Failure(what + ": row " + std::to_string(r) + " rel err " +
                          std::to_string(std::sqrt(num) / std::max(std::sqrt(den), 1e-30)));
    if (la && lb) {
      const float x = (*la)[r], y = (*lb)[r];
      if (y == kNegInf) {
        if (x != kNegInf) throw test::Failure(what + ": lse should be -Inf at row " + std::to_string(r));
      } else if (!(std::fabs(double(x) - double(y)) <= tol * std::max(1.0, std::fabs(double(y))))) {
        throw test::Failure(what + ": lse row " + std::to_string(r) + ": " + std::to_string(x) + " vs " +
                            std::to_string(y));
      }
    }
  }
}

// Random CSR selection: groups lists over [0, N) (ascending, unique) with keep
// probability p; group 0 empty, group 1 full when there are ≥ 3 groups.
struct Csr {
  std::vector<std::int32_t> idx;
  std::vector<std::size_t> off;
};
Csr random_csr(std::size_t groups, std::size_t N, double p, uint64_t seed) {
  Csr s;
  s.off.push_back(0);
  const std::vector<float> u = uniform(groups * N, seed);
  for (std::size_t g = 0; g < groups; ++g) {
    for (std::size_t t = 0; t < N; ++t) {
      bool keep = u[g * N + t] < p;
      if (groups >= 3 && g == 0) keep = false;
      if (groups >= 3 && g == 1) keep = true;
      if (keep) s.idx.push_back(std::int32_t(t));
    }
    s.off.push_back(s.idx.size());
  }
  return s;
}

// 256-byte aligned host scratch (emulated device workspace), filled with NaN bytes.
struct HostWs {
  std::vector<double> buf;
  void* p = nullptr;
  explicit HostWs(std::size_t bytes) {
    buf.assign(bytes / 8 + 64, kNaN);
    const auto a = reinterpret_cast<std::uintptr_t>(buf.data());
    p = reinterpret_cast<void*>((a + 255) / 256 * 256);
  }
  void* data() const { return p; }
};

// A crafted squeezed context (random centroids, labels, sizes; optional coarse level).
SqueezedContext crafted_context(std::size_t H, std::size_t N, std::size_t W, std::size_t d, std::size_t C,
                                std::size_t C1, uint64_t seed) {
  SqueezedContext c;
  c.heads = H;
  c.tokens = N;
  c.d = d;
  c.window = W;
  c.clusters = C;
  const std::size_t nc = N - W;
  c.centroids = gaussian(H * C * d, seed, 0.7f);
  c.labels.resize(H * nc);
  c.sizes.assign(H * C, 0);
  const std::vector<float> u = uniform(H * nc, seed + 1);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t t = 0; t < nc; ++t) {
      // skewed: low clusters more frequent; some clusters stay empty
      std::size_t j = std::size_t(double(u[h * nc + t]) * double(u[h * nc + t]) * double(C));
      if (j >= C) j = C - 1;
      if (j % 7 == 3) j = (j + 1) % C;  // clusters ≡ 3 (mod 7) stay empty
      c.labels[h * nc + t] = std::int32_t(j);
      ++c.sizes[h * C + j];
    }
  if (C1 > 0) {
    c.hierarchical = true;
    c.coarse_clusters = C1;
    c.coarse_centroids = gaussian(H * C1 * d, seed + 2, 0.7f);
    c.parent.resize(H * C);
    c.coarse_sizes.assign(H * C1, 0);
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t j = 0; j < C; ++j) {
        const std::int32_t par = std::int32_t((j * 5 + h) % C1);
        c.parent[h * C + j] = par;
        c.coarse_sizes[h * C1 + std::size_t(par)] += c.sizes[h * C + j];
      }
  }
  return c;
}

// Points around `k` planted directions (cosine-separable), [n, d].
std::vector<float> planted_points(std::size_t n, std::size_t d, std::size_t k, uint64_t seed) {
  const std::vector<float> dirs = gaussian(k * d, seed, 3.0f);
  const std::vector<float> noise = gaussian(n * d, seed + 1, 0.3f);
  const std::vector<float> scale = uniform(n, seed + 2);
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c)
      x[i * d + c] = (0.5f + scale[i]) * dirs[(i % k) * d + c] + noise[i * d + c];
  return x;
}

// Initial centres: rows `pick` of x, normalised when cosine (the clustered space).
std::vector<float> initial_from(const std::vector<float>& x, std::size_t d, const std::vector<std::size_t>& pick,
                                bool cosine) {
  std::vector<float> c;
  for (std::size_t i : pick) {
    const float* r = x.data() + i * d;
    double s = 0;
    for (std::size_t t = 0; t < d; ++t) s += double(r[t]) * r[t];
    const double inv = cosine && s > 0 ? 1.0 / std::sqrt(s) : 1.0;
    for (std::size_t t = 0; t < d; ++t) c.push_back(float(r[t] * inv));
  }
  return c;
}


cuda::DeviceSqueezedContext host_context(const SqueezedContext& c) {
  cuda::DeviceSqueezedContext x;
  x.heads = c.heads;
  x.tokens = c.tokens;
  x.d = c.d;
  x.window = c.window;
  x.clusters = c.clusters;
  x.centroids = c.centroids.data();
  x.labels = c.labels.data();
  x.sizes = c.sizes.data();
  x.hierarchical = c.hierarchical;
  x.coarse_clusters = c.coarse_clusters;
  x.coarse_centroids = c.hierarchical ? c.coarse_centroids.data() : nullptr;
  x.parent = c.hierarchical ? c.parent.data() : nullptr;
  x.coarse_sizes = c.hierarchical ? c.coarse_sizes.data() : nullptr;
  return x;
}

// A threshold strictly between two distinct scored values near quantile p, with a
// relative gap ≥ 1e-3 on both sides (so float rounding cannot flip a comparison).
double safe_threshold(const CentroidScores& s, double p) {
  std::vector<float> v;
  for (std::size_t i = 0; i < s.scores.size(); ++i)
    if (s.scored[i]) v.push_back(s.scores[i]);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  if (v.size() < 2) return 0.0;
  std::size_t i = std::min(v.size() - 2, std::size_t(p * double(v.size())));
  for (std::size_t tries = 0; tries < v.size(); ++tries, i = (i + 1) % (v.size() - 1)) {
    const double a = v[i], b = v[i + 1];
    if (b - a > 2e-3 * b) return 0.5 * (a + b);
  }
  return 0.5 * (double(v[0]) + double(v[1]));
}

void expect_scores(const std::vector<float>& se, const std::vector<std::uint8_t>& ke, const std::vector<float>& sc,
                   const std::vector<std::uint8_t>& kc, const std::string& what) {
  EXPECT_EQ(se.size(), sc.size());
  for (std::size_t i = 0; i < sc.size(); ++i) {
    if (ke[i] != kc[i]) throw test::Failure(what + ": scored flag " + std::to_string(i));
    if (!(std::fabs(double(se[i]) - double(sc[i])) <= 1e-5 * std::fabs(double(sc[i])) + 1e-12))
      throw test::Failure(what + ": score " + std::to_string(i) + ": " + std::to_string(se[i]) + " vs " +
                          std::to_string(sc[i]));
  }
}

void expect_selection(const std::vector<std::int32_t>& idx, const std::vector<std::size_t>& off,
                      const SqueezedSelection& ref, const std::string& what) {
  if (!(off == ref.offsets)) throw test::Failure(what + ": offsets differ from the CPU's");
  for (std::size_t i = 0; i < ref.indices.size(); ++i)
    if (idx[i] != ref.indices[i]) throw test::Failure(what + ": index " + std::to_string(i) + " differs");
}

// ================================================================ GPU
// Device copies of host vectors, and the public API on them.
template <typename T>
struct Dev {
  cuda::DeviceBuffer buf;
  std::size_t n = 0;
  Dev() = default;
  explicit Dev(std::size_t n_) : buf(std::max<std::size_t>(n_, 1) * sizeof(T)), n(n_) {}
  Dev(const std::vector<T>& v, void* s) : Dev(v.size()) {
    if (n) cuda::copy_to_device(buf.data(), v.data(), n * sizeof(T), s);
  }
  T* p() const { return buf.as<T>(); }
  std::vector<T> get(const cuda::Stream& s) const {
    std::vector<T> v(n);
    if (n) cuda::copy_to_host(v.data(), buf.data(), n * sizeof(T), s.handle());
    s.synchronize();
    return v;
  }
};

// A KvBuf on the device (same layout, same offset).
struct DevKv {
  cuda::DeviceBuffer buf;
  const KvBuf* host = nullptr;
  DevKv(const KvBuf& h, const cuda::Stream& s) : buf(std::max<std::size_t>(h.bytes(), 16)), host(&h) {
    if (h.bytes()) cuda::copy_to_device(buf.data(), h.raw(), h.bytes(), s.handle());
  }
  KvView view() const { return host->view(buf.data()); }
};

struct Result {
  std::vector<float> out, lse;
};

cuda::AttentionTuning tuning(cuda::AttentionKernel k, int sms = 0) {
  cuda::AttentionTuning t;
  t.kernel = k;
  t.multiprocessors = sms;
  return t;
}

Result gpu_dense(const std::vector<float>& qv, std::size_t Hq, std::size_t Nq, std::size_t d, const DevKv& K,
                 const DevKv& V, const DenseOptions& o, const cuda::AttentionTuning& t, const cuda::Stream& s) {
  Dev<float> q(qv, s.handle()), out(Hq * Nq * d), lse(Hq * Nq);
  const Queries dq{q.p(), Hq, Nq, d};
  const std::size_t wsb = cuda::dense_attention_workspace(dq, K.view(), V.view(), t);
  cuda::DeviceBuffer ws(wsb);
  cuda::dense_attention_async(dq, K.view(), V.view(), o, Output{out.p(), lse.p()}, ws.data(), wsb, s.handle(), t);
  return {out.get(s), lse.get(s)};
}

Result gpu_sparse(const std::vector<float>& qv, std::size_t Hq, std::size_t Nq, std::size_t d, const DevKv& K,
                  const DevKv& V, const Csr& sel, bool pq, const cuda::AttentionTuning& t, const cuda::Stream& s) {
  Dev<float> q(qv, s.handle()), out(Hq * Nq * d), lse(Hq * Nq);
  Dev<std::int32_t> idx(sel.idx, s.handle());
  Dev<std::size_t> off(sel.off, s.handle());
  const Queries dq{q.p(), Hq, Nq, d};
  const std::size_t wsb = cuda::sparse_attention_workspace(dq, K.view(), V.view(), pq, t);
  cuda::DeviceBuffer ws(wsb);
  cuda::sparse_attention_async(dq, K.view(), V.view(), Selection{idx.p(), off.p(), pq}, 0.0f,
                               Output{out.p(), lse.p()}, ws.data(), wsb, s.handle(), t);
  return {out.get(s), lse.get(s)};
}

// Tolerance of the tensor-core path (queries and probabilities rounded to 16 bits).
double mma_tol(Storage st) { return st == Storage::BF16 ? 2e-2 : 3e-3; }

void expect_bitwise(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  EXPECT_EQ(a.size(), b.size());
  if (!a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0)
    throw test::Failure(what + ": repeated runs differ");
}

void gpu_dense_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  struct C {
    std::size_t Hq, Hkv, Nq, N, d;
    Storage st;
    bool causal;
    std::size_t qoff;
  };
  const Storage F = Storage::F32, H = Storage::F16, B = Storage::BF16;
  const C cases[] = {
      {8, 2, 1, 4096, 128, F, false, 0},   {8, 2, 1, 4096, 128, H, false, 0}, {8, 2, 1, 4096, 128, B, false, 0},
      {8, 8, 300, 300, 64, F, true, 0},    {8, 8, 300, 300, 64, H, true, 0},  {4, 1, 5, 3000, 96, H, true, 2995},
      {2, 2, 17, 1000, 256, B, false, 0},  {2, 1, 3, 777, 40, F, false, 0},   {1, 1, 2, 500, 1000, F, false, 0},
      {32, 8, 1, 20000, 128, H, false, 0},
  };
  uint64_t seed = 2000;
  for (const C& c : cases) {
    seed += 10;
    const std::string what = "gpu dense Nq=" + std::to_string(c.Nq) + " N=" + std::to_string(c.N) +
                             " d=" + std::to_string(c.d) + " " + st_name(c.st);
    const std::vector<float> qv = gaussian(c.Hq * c.Nq * c.d, seed, 0.8f);
    const KvBuf K(c.st, c.Hkv, c.N, c.d, seed + 1), V(c.st, c.Hkv, c.N, c.d, seed + 2);
    const DevKv dK(K, s), dV(V, s);
    DenseOptions o;
    o.causal = c.causal;
    o.query_offset = c.qoff;
    const std::size_t rows = c.Hq * c.Nq;
    std::vector<float> oc(rows * c.d), lc(rows);
    dense_attention(Queries{qv.data(), c.Hq, c.Nq, c.d}, K.view(), V.view(), o, Output{oc.data(), lc.data()}, {});
    const Result r1 = gpu_dense(qv, c.Hq, c.Nq, c.d, dK, dV, o, tuning(cuda::AttentionKernel::Simt), s);
    expect_rows(r1.out, oc, &r1.lse, &lc, rows, c.d, 1e-5, what + " simt");
    const Result r2 = gpu_dense(qv, c.Hq, c.Nq, c.d, dK, dV, o, tuning(cuda::AttentionKernel::Simt), s);
    expect_bitwise(r2.out, r1.out, what);
    expect_bitwise(r2.lse, r1.lse, what);
    // Another split-K plan (one multiprocessor: no split) agrees within rounding.
    const Result r3 = gpu_dense(qv, c.Hq, c.Nq, c.d, dK, dV, o, tuning(cuda::AttentionKernel::Simt, 1), s);
    expect_rows(r3.out, oc, &r3.lse, &lc, rows, c.d, 1e-5, what + " simt, 1 SM plan");
    const Result ra = gpu_dense(qv, c.Hq, c.Nq, c.d, dK, dV, o, tuning(cuda::AttentionKernel::Auto), s);
    const bool mma = c.st != F && c.d % 16 == 0 && c.d <= 128 && c.Hq / c.Hkv * c.Nq > 16;
    expect_rows(ra.out, oc, &ra.lse, &lc, rows, c.d, mma ? mma_tol(c.st) : 1e-5, what + " auto");
  }
}

void gpu_sparse_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  struct C {
    bool pq;
    std::size_t Hq, Hkv, Nq, N, d;
    Storage st;
    double p;
  };
  const Storage F = Storage::F32, H = Storage::F16, B = Storage::BF16;
  const C cases[] = {
      {true, 8, 2, 1, 8192, 128, F, 0.1},   {false, 8, 2, 1, 8192, 128, H, 0.1}, {true, 8, 2, 64, 8192, 128, B, 0.1},
      {false, 8, 2, 64, 8192, 64, H, 0.2},  {true, 4, 4, 3, 5000, 40, F, 0.5},   {false, 4, 1, 33, 3000, 256, B, 0.3},
      {true, 32, 8, 1, 32768, 128, H, 0.05},
  };
  uint64_t seed = 3000;
  for (const C& c : cases) {
    seed += 10;
    const std::string what = std::string("gpu sparse ") + (c.pq ? "per-head" : "shared") +
                             " Nq=" + std::to_string(c.Nq) + " N=" + std::to_string(c.N) + " d=" + std::to_string(c.d) +
                             " " + st_name(c.st);
    const std::vector<float> qv = gaussian(c.Hq * c.Nq * c.d, seed, 0.8f);
    const KvBuf K(c.st, c.Hkv, c.N, c.d, seed + 1), V(c.st, c.Hkv, c.N, c.d, seed + 2);
    const DevKv dK(K, s), dV(V, s);
    const Csr sel = random_csr(c.pq ? c.Hq : c.Hkv, c.N, c.p, seed + 3);
    const std::size_t rows = c.Hq * c.Nq;
    std::vector<float> oc(rows * c.d), lc(rows);
    sparse_attention(Queries{qv.data(), c.Hq, c.Nq, c.d}, K.view(), V.view(),
                     Selection{sel.idx.data(), sel.off.data(), c.pq}, 0.0f, Output{oc.data(), lc.data()}, {});
    const Result r1 = gpu_sparse(qv, c.Hq, c.Nq, c.d, dK, dV, sel, c.pq, tuning(cuda::AttentionKernel::Simt), s);
    expect_rows(r1.out, oc, &r1.lse, &lc, rows, c.d, 1e-5, what + " simt");
    const Result r2 = gpu_sparse(qv, c.Hq, c.Nq, c.d, dK, dV, sel, c.pq, tuning(cuda::AttentionKernel::Simt), s);
    expect_bitwise(r2.out, r1.out, what);
    expect_bitwise(r2.lse, r1.lse, what);
    cuda::AttentionTuning tb = tuning(cuda::AttentionKernel::Simt);
    tb.max_selected = sel.idx.size();  // the tightest grid
    const Result r3 = gpu_sparse(qv, c.Hq, c.Nq, c.d, dK, dV, sel, c.pq, tb, s);
    expect_rows(r3.out, oc, &r3.lse, &lc, rows, c.d, 1e-5, what + " max_selected");
    const Result ra = gpu_sparse(qv, c.Hq, c.Nq, c.d, dK, dV, sel, c.pq, tuning(cuda::AttentionKernel::Auto), s);
    const std::size_t R = c.pq ? c.Nq : c.Hq / c.Hkv * c.Nq;
    const bool mma = c.st != F && c.d % 16 == 0 && c.d <= 128 && R > 16;
    expect_rows(ra.out, oc, &ra.lse, &lc, rows, c.d, mma ? mma_tol(c.st) : 1e-5, what + " auto");
  }
}

// The tensor-core kernel against the SIMT kernel (same inputs, 16-bit rounding of
// the queries and probabilities only) and against the CPU.
void gpu_mma_matches_simt_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  uint64_t seed = 4000;
  for (Storage st : {Storage::F16, Storage::BF16})
    for (std::size_t d : {std::size_t(32), std::size_t(64), std::size_t(80), std::size_t(128)}) {
      seed += 10;
      const std::size_t Hq = 4, Hkv = 2, N = 1500;
      const KvBuf K(st, Hkv, N, d, seed + 1), V(st, Hkv, N, d, seed + 2);
      const DevKv dK(K, s), dV(V, s);
      EXPECT(cuda::attention_mma_eligible(Queries{nullptr, Hq, 1, d}, dK.view(), dV.view()));
      for (int variant = 0; variant < 3; ++variant) {
        const std::size_t Nq = variant == 0 ? 200 : 100;
        const std::vector<float> qv = gaussian(Hq * Nq * d, seed + 5 + variant, 0.8f);
        const std::string what = std::string("mma ") + st_name(st) + " d=" + std::to_string(d) +
                                 " variant " + std::to_string(variant);
        const std::size_t rows = Hq * Nq;
        std::vector<float> oc(rows * d), lc(rows);
        Result rm, rs;
        if (variant < 2) {
          DenseOptions o;
          o.causal = true;
          o.query_offset = variant == 0 ? N - Nq : 0;  // causal tail / a prefix of the keys
          dense_attention(Queries{qv.data(), Hq, Nq, d}, K.view(), V.view(), o, Output{oc.data(), lc.data()}, {});
          rm = gpu_dense(qv, Hq, Nq, d, dK, dV, o, tuning(cuda::AttentionKernel::Mma), s);
          rs = gpu_dense(qv, Hq, Nq, d, dK, dV, o, tuning(cuda::AttentionKernel::Simt), s);
          const Result rm2 = gpu_dense(qv, Hq, Nq, d, dK, dV, o, tuning(cuda::AttentionKernel::Mma), s);
          expect_bitwise(rm2.out, rm.out, what);
        } else {
          const Csr sel = random_csr(Hq, N, 0.2, seed + 9);
          sparse_attention(Queries{qv.data(), Hq, Nq, d}, K.view(), V.view(), Selection{sel.idx.data(), sel.off.data(), true},
                           0.0f, Output{oc.data(), lc.data()}, {});
          rm = gpu_sparse(qv, Hq, Nq, d, dK, dV, sel, true, tuning(cuda::AttentionKernel::Mma), s);
          rs = gpu_sparse(qv, Hq, Nq, d, dK, dV, sel, true, tuning(cuda::AttentionKernel::Simt), s);
        }
        expect_rows(rs.out, oc, &rs.lse, &lc, rows, d, 1e-5, what + " simt vs cpu");
        expect_rows(rm.out, rs.out, &rm.lse, &rs.lse, rows, d, mma_tol(st), what + " mma vs simt");
      }
    }
  // Not eligible: float32 storage, d % 16 ≠ 0.
  const KvBuf K32(Storage::F32, 1, 10, 64, 1), K16(Storage::F16, 1, 10, 40, 2);
  const DevKv dK32(K32, s), dK16(K16, s);
  EXPECT(!cuda::attention_mma_eligible(Queries{nullptr, 1, 1, 64}, dK32.view(), dK32.view()));
  EXPECT(!cuda::attention_mma_eligible(Queries{nullptr, 1, 1, 40}, dK16.view(), dK16.view()));
}

void gpu_lse_merge_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  const std::size_t rows = 5000, d = 128;
  std::vector<float> oa = gaussian(rows * d, 7), ob = gaussian(rows * d, 8);
  std::vector<float> la = gaussian(rows, 9, 3.0f), lb = gaussian(rows, 10, 3.0f);
  for (std::size_t r = 0; r < rows; r += 5) la[r] = kNegInf;
  for (std::size_t r = 0; r < rows; r += 7) lb[r] = kNegInf;
  Dev<float> doa(oa, s.handle()), dla(la, s.handle()), dob(ob, s.handle()), dlb(lb, s.handle());
  merge_partials(rows, d, oa.data(), la.data(), ob.data(), lb.data());
  cuda::merge_partials_async(rows, d, doa.p(), dla.p(), dob.p(), dlb.p(), s.handle());
  const std::vector<float> go = doa.get(s), gl = dla.get(s);
  expect_rows(go, oa, &gl, &la, rows, d, 1e-6, "gpu lse merge");
}

// ---------------------------------------------------------------- K-means
struct GpuKmeans {
  std::vector<float> centroids;
  std::vector<std::int32_t> labels, sizes, state;
  std::vector<double> history;
  double inertia = 0;
};

GpuKmeans gpu_kmeans(const std::vector<float>& x, std::size_t n, std::size_t d, std::size_t k, bool cosine,
                     std::size_t iters, const std::vector<float>& init, const cuda::Stream& s) {
  Dev<float> dx(x, s.handle()), di(init, s.handle()), dc(k * d);
  Dev<std::int32_t> dl(n), dsz(k), dst(4);
  Dev<double> dh(std::max<std::size_t>(iters, 1)), din(1);
  cuda::DeviceKmeans a;
  a.x = dx.p();
  a.n = n;
  a.d = d;
  a.k = k;
  a.cosine = cosine;
  a.iterations = iters;
  a.initial = di.p();
  a.centroids = dc.p();
  a.labels = dl.p();
  a.sizes = dsz.p();
  a.history = dh.p();
  a.inertia = din.p();
  a.state = dst.p();
  const std::size_t wsb = cuda::kmeans_workspace(n, d, k, cosine);
  cuda::DeviceBuffer ws(wsb);
  cuda::kmeans_async(a, ws.data(), wsb, s.handle());
  GpuKmeans r;
  r.centroids = dc.get(s);
  r.labels = dl.get(s);
  r.sizes = dsz.get(s);
  r.state = dst.get(s);
  r.history = dh.get(s);
  r.inertia = din.get(s)[0];
  return r;
}

void gpu_kmeans_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  struct C {
    std::size_t n, d, k;
    bool cosine;
    std::size_t iters;
    bool duplicates;
  };
  const C cases[] = {{6000, 64, 40, true, 12, false}, {6000, 64, 40, false, 12, false},
                     {6000, 64, 40, true, 0, true},   {20000, 128, 100, true, 6, true}};
  uint64_t seed = 5000;
  for (const C& c : cases) {
    seed += 10;
    const std::string what = "gpu kmeans n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
                             (c.cosine ? " cosine" : "") + " iters=" + std::to_string(c.iters);
    const std::vector<float> x = planted_points(c.n, c.d, c.k, seed);
    std::vector<std::size_t> pick(c.k);
    for (std::size_t j = 0; j < c.k; ++j) pick[j] = c.duplicates && j % 5 == 1 ? j - 1 : j;  // duplicates → reseeds
    const std::vector<float> init = initial_from(x, c.d, pick, c.cosine);
    KmeansOptions o;
    o.clusters = c.k;
    o.iterations = c.iters;
    o.cosine = c.cosine;
    o.initial_centroids = init.data();
    const KmeansResult r = kmeans(x.data(), c.n, c.d, o);
    const GpuKmeans g = gpu_kmeans(x, c.n, c.d, c.k, c.cosine, c.iters, init, s);
    if (!(g.labels == r.labels)) throw test::Failure(what + ": labels differ from the CPU's");
    if (!(g.sizes == r.sizes)) throw test::Failure(what + ": sizes differ");
    EXPECT_EQ(std::size_t(g.state[1]), r.iterations);
    EXPECT_EQ(g.state[0] != 0, r.converged);
    EXPECT_EQ(std::size_t(g.state[2]), r.reseeded);
    for (std::size_t i = 0; i < c.k * c.d; ++i)
      if (!(g.centroids[i] == r.centroids[i])) throw test::Failure(what + ": centroid element " + std::to_string(i));
    for (std::size_t t = 0; t < r.iterations; ++t)
      EXPECT_NEAR(g.history[t], r.history[t], 1e-5 * std::fabs(r.history[t]) + 1e-6 * double(c.n));
    EXPECT_NEAR(g.inertia, r.inertia, 1e-9 * std::fabs(r.inertia) + 1e-9);
    const GpuKmeans g2 = gpu_kmeans(x, c.n, c.d, c.k, c.cosine, c.iters, init, s);
    expect_bitwise(g2.centroids, g.centroids, what);
    EXPECT(g2.labels == g.labels);
    EXPECT(g2.history == g.history);
  }
}

void gpu_kmeans_assign_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  const std::size_t n = 20000, d = 128, k = 500;
  std::vector<float> y = gaussian(n * d, 61);
  for (std::size_t i = 0; i < n; ++i) {
    double q = 0;
    for (std::size_t t = 0; t < d; ++t) q += double(y[i * d + t]) * y[i * d + t];
    for (std::size_t t = 0; t < d; ++t) y[i * d + t] = float(y[i * d + t] / std::sqrt(q));
  }
  std::vector<std::size_t> pick(k);
  for (std::size_t j = 0; j < k; ++j) pick[j] = j * 37;
  const std::vector<float> c = initial_from(y, d, pick, true);
  std::vector<std::int32_t> lc(n);
  std::vector<float> dc(n);
  const double tc = kmeans_assign(y.data(), n, d, c.data(), k, lc.data(), dc.data());
  Dev<float> dy(y, s.handle()), dcent(c, s.handle()), dd(n);
  Dev<std::int32_t> dl(n);
  Dev<double> dt(1);
  const std::size_t wsb = cuda::kmeans_assign_workspace(n, k);
  cuda::DeviceBuffer ws(wsb);
  cuda::kmeans_assign_async(dy.p(), n, d, dcent.p(), k, dl.p(), dd.p(), dt.p(), ws.data(), wsb, s.handle());
  const std::vector<std::int32_t> lg = dl.get(s);
  const std::vector<float> dg = dd.get(s);
  const double tg = dt.get(s)[0];
  // Labels may differ only between centres within float32 rounding of each other.
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (lg[i] == lc[i]) continue;
    ++differ;
    auto dist = [&](std::int32_t j) {
      double e = 0;
      for (std::size_t t = 0; t < d; ++t) {
        const double f = double(y[i * d + t]) - c[std::size_t(j) * d + t];
        e += f * f;
      }
      return e;
    };
    EXPECT_NEAR(dist(lg[i]), dist(lc[i]), 1e-5);
  }
  EXPECT(differ <= n / 1000);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(dg[i], dc[i], 2e-5);
  EXPECT_NEAR(tg, tc, 1e-5 * tc);
}

// ---------------------------------------------------------------- squeezed
struct DevContext {
  Dev<float> cent, ccent;
  Dev<std::int32_t> labels, sizes, parent, csizes;
  cuda::DeviceSqueezedContext view;
  DevContext(const SqueezedContext& c, const cuda::Stream& s)
      : cent(c.centroids, s.handle()),
        ccent(c.coarse_centroids, s.handle()),
        labels(c.labels, s.handle()),
        sizes(c.sizes, s.handle()),
        parent(c.parent, s.handle()),
        csizes(c.coarse_sizes, s.handle()) {
    view = host_context(c);
    view.centroids = cent.p();
    view.labels = labels.p();
    view.sizes = sizes.p();
    if (c.hierarchical) {
      view.coarse_centroids = ccent.p();
      view.parent = parent.p();
      view.coarse_sizes = csizes.p();
    }
  }
};

void gpu_scores_select_match_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  for (std::size_t C1 : {std::size_t(0), std::size_t(160)}) {
    const SqueezedContext c = crafted_context(4, 16384, 100, 128, 800, C1, 71 + C1);
    const DevContext dc(c, s);
    for (std::size_t Nq : {std::size_t(1), std::size_t(128)}) {
      const std::vector<float> qv = gaussian(16 * Nq * 128, 80 + Nq, 0.9f);
      const Queries q{qv.data(), 16, Nq, 128};
      Dev<float> dq(qv, s.handle());
      const Queries gq{dq.p(), 16, Nq, 128};
      for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
        const std::string what = "gpu scores C1=" + std::to_string(C1) + " Nq=" + std::to_string(Nq) +
                                 (pol == GroupPolicy::Shared ? " shared" : " per-head");
        ScoreOptions so;
        so.policy = pol;
        so.hierarchical = C1 > 0;
        if (C1 > 0) {
          ScoreOptions all = so;
          all.coarse_threshold = -1.0;
          const CentroidScores s0 = centroid_scores(c, q, all);
          CentroidScores cs;
          cs.scores = s0.coarse_scores;
          cs.scored.assign(cs.scores.size(), 1);
          so.coarse_threshold = safe_threshold(cs, 0.5);
        }
        const CentroidScores ref = centroid_scores(c, q, so);
        const std::size_t groups = ref.groups;
        Dev<float> sc(groups * c.clusters), csc(groups * std::max<std::size_t>(C1, 1));
        Dev<std::uint8_t> kd(groups * c.clusters);
        const std::size_t wsb = cuda::centroid_scores_workspace(dc.view, gq, so);
        cuda::DeviceBuffer ws(wsb);
        cuda::centroid_scores_async(dc.view, gq, so, sc.p(), kd.p(), C1 ? csc.p() : nullptr, ws.data(), wsb,
                                    s.handle());
        const std::vector<float> gs = sc.get(s);
        const std::vector<std::uint8_t> gk = kd.get(s);
        expect_scores(gs, gk, ref.scores, ref.scored, what);
        // Selection from the CPU's scores: exactly the CPU's.
        Dev<float> rs(ref.scores, s.handle());
        Dev<std::uint8_t> rk(ref.scored, s.handle());
        for (SelectMode mode : {SelectMode::Threshold, SelectMode::KeepFraction, SelectMode::Budget}) {
          SelectOptions o;
          o.mode = mode;
          o.score = so;
          o.threshold = safe_threshold(ref, 0.7);
          o.keep_fraction = 0.1;
          o.budget = 1234;
          const SqueezedSelection cpu = select_keys(c, ref, o);
          Dev<std::int32_t> idx(groups * c.tokens);
          Dev<std::size_t> off(groups + 1);
          const std::size_t sb = cuda::select_keys_workspace(dc.view, groups);
          cuda::DeviceBuffer sws(sb);
          cuda::select_keys_async(dc.view, pol, groups, rs.p(), rk.p(), o, idx.p(), off.p(), sws.data(), sb,
                                  s.handle());
          const std::vector<std::size_t> go = off.get(s);
          const std::vector<std::int32_t> gi = idx.get(s);
          expect_selection(gi, go, cpu, what + " select mode " + std::to_string(int(mode)));
        }
      }
    }
  }
}

void gpu_squeezed_matches_cpu_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  const std::size_t H = 2, Hq = 8, N = 6000, d = 64;
  const KvBuf FK(Storage::F16, H, N, d, 7001), FV(Storage::F16, H, N, d, 7002);
  const DevKv dFK(FK, s), dFV(FV, s);
  BuildOptions bo;
  bo.clusters = 300;
  bo.window = 100;
  bo.iterations = 8;
  bo.seed = 5;
  bo.hierarchical = true;
  bo.coarse_clusters = 60;
  const SqueezedContext c = build_context(FK.view(), bo);
  const DevContext dc(c, s);
  uint64_t seed = 7100;
  for (int prefill = 1; prefill >= 0; --prefill)
    for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared})
      for (SelectMode mode : {SelectMode::Threshold, SelectMode::KeepFraction})
        for (bool hier : {false, true}) {
          seed += 10;
          const std::size_t Nq = prefill ? 100 : 1, dn = prefill ? 100 : 37, cap = prefill ? 100 : 64;
          const std::string what = std::string("gpu squeezed ") + (prefill ? "prefill" : "decode") +
                                   (pol == GroupPolicy::Shared ? " shared" : " per-head") + " mode " +
                                   std::to_string(int(mode)) + (hier ? " two-level" : "");
          const std::vector<float> qv = gaussian(Hq * Nq * d, seed, 0.9f);
          const Queries q{qv.data(), Hq, Nq, d};
          const KvBuf DK(Storage::F32, H, dn, d, seed + 1, cap - dn), DV(Storage::F32, H, dn, d, seed + 2, cap - dn);
          const DevKv dDK(DK, s), dDV(DV, s);
          SelectOptions o;
          o.mode = mode;
          o.keep_fraction = 0.1;
          o.score.policy = pol;
          o.score.hierarchical = hier;
          if (hier) {
            ScoreOptions all = o.score;
            all.coarse_threshold = -1.0;
            const CentroidScores s0 = centroid_scores(c, q, all);
            CentroidScores cs;
            cs.scores = s0.coarse_scores;
            cs.scored.assign(cs.scores.size(), 1);
            o.score.coarse_threshold = safe_threshold(cs, 0.5);
          }
          if (mode == SelectMode::Threshold) o.threshold = safe_threshold(centroid_scores(c, q, o.score), 0.8);
          const std::size_t rows = Hq * Nq;
          std::vector<float> oc(rows * d), lc(rows);
          SqueezedReport rep;
          if (prefill)
            squeezed_prefill(FK.view(), FV.view(), c, q, DK.view(), DV.view(), o, Output{oc.data(), lc.data()}, &rep);
          else
            squeezed_decode(FK.view(), FV.view(), c, q, DK.view(), DV.view(), o, Output{oc.data(), lc.data()}, &rep);
          Dev<float> dq(qv, s.handle());
          const Queries gq{dq.p(), Hq, Nq, d};
          for (cuda::AttentionKernel kern : {cuda::AttentionKernel::Simt, cuda::AttentionKernel::Auto}) {
            const cuda::AttentionTuning t = tuning(kern);
            Dev<float> out(rows * d), lse(rows);
            const std::size_t wsb = cuda::squeezed_workspace(dc.view, gq, dDK.view(), dDV.view(), prefill != 0, o, t);
            cuda::DeviceBuffer ws(wsb);
            cuda::DeviceSelectionView sel;
            if (prefill)
              cuda::squeezed_prefill_async(dFK.view(), dFV.view(), dc.view, gq, dDK.view(), dDV.view(), o,
                                           Output{out.p(), lse.p()}, &sel, ws.data(), wsb, s.handle(), t);
            else
              cuda::squeezed_decode_async(dFK.view(), dFV.view(), dc.view, gq, dDK.view(), dDV.view(), o,
                                          Output{out.p(), lse.p()}, &sel, ws.data(), wsb, s.handle(), t);
            std::vector<std::size_t> off(sel.groups + 1);
            cuda::copy_to_host(off.data(), sel.offsets, off.size() * sizeof(std::size_t), s.handle());
            s.synchronize();
            std::vector<std::int32_t> idx(off.back());
            if (!idx.empty()) cuda::copy_to_host(idx.data(), sel.indices, idx.size() * 4, s.handle());
            s.synchronize();
            expect_selection(idx, off, rep.selection, what);
            const std::vector<float> go = out.get(s), gl = lse.get(s);
            const bool simt = kern == cuda::AttentionKernel::Simt;
            expect_rows(go, oc, &gl, &lc, rows, d, simt ? 1e-5 : mma_tol(Storage::F16),
                        what + (simt ? " simt" : " auto"));
            if (simt) {  // repeat: the same bits
              Dev<float> out2(rows * d), lse2(rows);
              if (prefill)
                cuda::squeezed_prefill_async(dFK.view(), dFV.view(), dc.view, gq, dDK.view(), dDV.view(), o,
                                             Output{out2.p(), lse2.p()}, nullptr, ws.data(), wsb, s.handle(), t);
              else
                cuda::squeezed_decode_async(dFK.view(), dFV.view(), dc.view, gq, dDK.view(), dDV.view(), o,
                                            Output{out2.p(), lse2.p()}, nullptr, ws.data(), wsb, s.handle(), t);
              expect_bitwise(out2.get(s), go, what);
              expect_bitwise(lse2.get(s), gl, what);
            }
          }
        }
}

void gpu_invalid_inputs_impl() {
  test::require_gpu_or_skip();
  cuda::Stream s;
  const KvBuf K(Storage::F32, 2, 64, 32, 1), V(Storage::F32, 2, 64, 32, 2);
  const DevKv dK(K, s), dV(V, s);
  Dev<float> q(3 * 4 * 32), out(3 * 4 * 32), lse(12);
  const DenseOptions o;
  // 3 query heads over 2 KV heads.
  EXPECT_THROWS_CODE(cuda::dense_attention_async(Queries{q.p(), 3, 4, 32}, dK.view(), dV.view(), o,
                                                 Output{out.p(), lse.p()}, nullptr, 0, s.handle()),
                     ErrorCode::Shape);
  // d mismatch.
  EXPECT_THROWS_CODE(cuda::dense_attention_async(Queries{q.p(), 2, 4, 16}, dK.view(), dV.view(), o,
                                                 Output{out.p(), lse.p()}, nullptr, 0, s.handle()),
                     ErrorCode::Shape);
  // Workspace too small (a decode on many multiprocessors needs split-K partials).
  const KvBuf K2(Storage::F32, 1, 20000, 32, 3);
  const DevKv dK2(K2, s);
  const Queries q1{q.p(), 1, 1, 32};
  const std::size_t need = cuda::dense_attention_workspace(q1, dK2.view(), dK2.view(), tuning(cuda::AttentionKernel::Simt, 132));
  EXPECT(need > 0);
  cuda::DeviceBuffer small(need / 2 / 256 * 256 + 256);
  EXPECT_THROWS_CODE(cuda::dense_attention_async(q1, dK2.view(), dK2.view(), o, Output{out.p(), lse.p()}, small.data(),
                                                 need / 2, s.handle(), tuning(cuda::AttentionKernel::Simt, 132)),
                     ErrorCode::InvalidArgument);
  // Tensor cores forced on float32 K/V.
  EXPECT_THROWS_CODE(cuda::dense_attention_async(Queries{q.p(), 2, 4, 32}, dK.view(), dV.view(), o,
                                                 Output{out.p(), lse.p()}, nullptr, 0, s.handle(),
                                                 tuning(cuda::AttentionKernel::Mma)),
                     ErrorCode::InvalidArgument);
  // K-means: more clusters than points.
  EXPECT_THROWS_CODE(cuda::kmeans_workspace(10, 4, 11, true), ErrorCode::InvalidArgument);
  // Squeezed context with the window covering every token.
  cuda::DeviceSqueezedContext c;
  c.heads = 1;
  c.tokens = 10;
  c.d = 32;
  c.window = 10;
  c.clusters = 1;
  SelectOptions so;
  EXPECT_THROWS_CODE(cuda::centroid_scores_workspace(c, Queries{q.p(), 1, 1, 32}, so.score), ErrorCode::Shape);
  s.synchronize();
}

// The public CPU-side API with device = Cuda (attention/gpu.h through the
// backend's attention_ops(): upload → kernels → download) against device = Cpu.
void gpu_public_api_matches_cpu_impl() {
  test::require_gpu_or_skip();
  const std::size_t H = 2, N = 3000, d = 64, Hq = 4, T = 5, Nu = 7;
  const auto fk = gaussian(H * N * d, 901), fv = gaussian(H * N * d, 902);
  const auto tk = gaussian(H * Nu * d, 903), tv = gaussian(H * Nu * d, 904);
  const auto q1 = gaussian(Hq * d, 905, 2.0f), qn = gaussian(Hq * Nu * d, 906, 2.0f);
  auto kv = [&](const std::vector<float>& x, std::size_t tokens) {
    KvView v;
    v.data = x.data();
    v.heads = H;
    v.tokens = tokens;
    v.d = d;
    return v;
  };
  auto close = [](const std::vector<float>& a, const std::vector<float>& b, double tol, const char* what) {
    EXPECT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(std::fabs(a[i] - b[i]) <= tol * (1.0 + std::fabs(b[i]))))
        throw test::Failure(std::string(what) + ": GPU and CPU differ at " + std::to_string(i));
  };
  const Queries Q1{q1.data(), Hq, 1, d}, QN{qn.data(), Hq, Nu, d};
  // dense (decode + causal prefill) and sparse
  for (bool causal : {false, true}) {
    const Queries& q = causal ? QN : Q1;
    std::vector<float> oc(q.heads * q.tokens * d), lc(q.heads * q.tokens), og(oc.size()), lg(lc.size());
    DenseOptions o;
    o.causal = causal;
    o.query_offset = causal ? N - Nu : 0;
    dense_attention(q, kv(fk, N), kv(fv, N), o, Output{oc.data(), lc.data()}, {});
    o.device = Device::Cuda;
    dense_attention(q, kv(fk, N), kv(fv, N), o, Output{og.data(), lg.data()}, {});
    close(og, oc, 1e-4, "dense out");
    close(lg, lc, 1e-5, "dense lse");
  }
  {
    std::vector<std::int32_t> idx;
    std::vector<std::size_t> off = {0};
    for (std::size_t g = 0; g < H; ++g) {
      for (std::size_t t = g; t < N; t += 7) idx.push_back(std::int32_t(t));
      off.push_back(idx.size());
    }
    std::vector<float> oc(Hq * d), lc(Hq), og(Hq * d), lg(Hq);
    sparse_attention(Q1, kv(fk, N), kv(fv, N), Selection{idx.data(), off.data(), false}, 0.0f,
                     Output{oc.data(), lc.data()}, {});
    sparse_attention(Q1, kv(fk, N), kv(fv, N), Selection{idx.data(), off.data(), false}, 0.0f,
                     Output{og.data(), lg.data()}, {}, Device::Cuda);
    close(og, oc, 1e-4, "sparse out");
    close(lg, lc, 1e-5, "sparse lse");
  }
  // K-means: the same seeding, Lloyd on the device; the inertia agrees.
  KmeansOptions ko;
  ko.clusters = 40;
  ko.iterations = 8;
  const KmeansResult kc = kmeans(fk.data(), N, d, ko);
  ko.device = Device::Cuda;
  const KmeansResult kg = kmeans(fk.data(), N, d, ko);
  EXPECT_EQ(kg.labels.size(), kc.labels.size());
  EXPECT(std::fabs(kg.inertia - kc.inertia) <= 1e-3 * kc.inertia);
  std::size_t same = 0;
  for (std::size_t i = 0; i < N; ++i) same += kg.labels[i] == kc.labels[i];
  EXPECT(same >= N * 99 / 100);
  // Context, scores, squeezed prefill / decode, decoder.
  BuildOptions bo;
  bo.iterations = 5;
  bo.window = 64;
  auto c = std::make_shared<const SqueezedContext>(build_context(kv(fk, N), bo));
  ScoreOptions so;
  const CentroidScores sc = centroid_scores(*c, Q1, so);
  so.device = Device::Cuda;
  const CentroidScores sg = centroid_scores(*c, Q1, so);
  close(sg.scores, sc.scores, 1e-4, "centroid scores");
  EXPECT(sg.scored == sc.scored && sg.centroids_scored == sc.centroids_scored);
  SelectOptions sel;
  sel.mode = SelectMode::KeepFraction;
  sel.keep_fraction = 0.2;
  for (bool prefill : {false, true}) {
    const Queries& q = prefill ? QN : Q1;
    const std::size_t dt = prefill ? Nu : T;
    std::vector<float> oc(q.heads * q.tokens * d), lc(q.heads * q.tokens), og(oc.size()), lg(lc.size());
    SqueezedReport rc, rg;
    SelectOptions s2 = sel;
    KvView dk = kv(tk, dt), dv = kv(tv, dt);
    dk.head_stride = dv.head_stride = Nu;
    for (int dev = 0; dev < 2; ++dev) {
      s2.score.device = dev ? Device::Cuda : Device::Cpu;
      auto& o = dev ? og : oc;
      auto& l = dev ? lg : lc;
      auto& r = dev ? rg : rc;
      if (prefill) squeezed_prefill(kv(fk, N), kv(fv, N), *c, q, dk, dv, s2, Output{o.data(), l.data()}, &r);
      else squeezed_decode(kv(fk, N), kv(fv, N), *c, q, dk, dv, s2, Output{o.data(), l.data()}, &r);
    }
    close(og, oc, 1e-4, prefill ? "squeezed prefill" : "squeezed decode");
    EXPECT(rg.selection.offsets == rc.selection.offsets);
    EXPECT(rg.selection.indices == rc.selection.indices);
    EXPECT_EQ(rg.selection.stats[0].kept_keys, rc.selection.stats[0].kept_keys);
  }
  // Resident decoder: the tail grows on the device (capacity 2 → 4 → 8).
  SqueezedDecoder dcpu(c, kv(fk, N), kv(fv, N), 2, Device::Cpu), dgpu(c, kv(fk, N), kv(fv, N), 2, Device::Cuda);
  EXPECT(dgpu.device() == Device::Cuda);
  for (std::size_t step = 0; step < T; ++step) {
    std::vector<float> k1(H * d), v1(H * d);
    for (std::size_t h = 0; h < H; ++h) {
      std::memcpy(k1.data() + h * d, tk.data() + (h * Nu + step) * d, d * 4);
      std::memcpy(v1.data() + h * d, tv.data() + (h * Nu + step) * d, d * 4);
    }
    dcpu.append(k1.data(), v1.data(), 1);
    dgpu.append(k1.data(), v1.data(), 1);
    EXPECT_EQ(dgpu.tokens(), step + 1);
    std::vector<float> oc(Hq * d), lc(Hq), og(Hq * d), lg(Hq);
    SqueezedReport rc, rg;
    dcpu.step(Q1, sel, Output{oc.data(), lc.data()}, &rc);
    dgpu.step(Q1, sel, Output{og.data(), lg.data()}, &rg);
    close(og, oc, 1e-4, "decoder out");
    close(lg, lc, 1e-5, "decoder lse");
    EXPECT(rg.selection.indices == rc.selection.indices);
    EXPECT(rg.selection.offsets == rc.selection.offsets);
  }
  dgpu.clear();
  EXPECT_EQ(dgpu.tokens(), std::size_t(0));
}

}  // namespace
#endif  // NNSCOPE_HAVE_CUDA

#ifdef NNSCOPE_HAVE_CUDA
// ================================================================ host emulation
// The kernel sources compiled for the host emulator in namespace
// nnscope::cuda::emu, with the planning code attention.cu uses.
#include "cuda_emu_support.h"
#include "cuda/attention_kernels.cuh"
#include "cuda/attention_kernels_kmeans.cuh"
#include "cuda/attention_kernels_squeezed.cuh"

namespace {

namespace ek = nnscope::cuda::emu::attn;
using ek::i64;

// The SIMT flash kernel (the only one the emulator runs).
void emu_run(const ek::FlashPlan& P, const ek::FlashParams& p, i64 chunks) {
  ek::launch_flash_simt(P.simt, p, chunks, nullptr);
}

// dense_attention_async on host memory through the emulated kernels.
void emu_dense(const Queries& q, const KvView& k, const KvView& v, const DenseOptions& o, const Output& out, int sms,
               i64 chunk) {
  if (q.heads == 0 || q.tokens == 0) return;
  if (k.tokens == 0) {
    ek::launch_fill_empty(i64(q.heads * q.tokens), int(q.d), out.out, out.lse, nullptr);
    return;
  }
  ek::FlashPlan P = ek::dense_plan(q, k, sms, false);
  if (chunk) ek::plan_force_chunk(P, int(k.heads), int(q.heads / k.heads * q.tokens), int(q.d), i64(k.tokens), chunk);
  HostWs ws(P.workspace());
  const ek::FlashParams p = ek::dense_params(q, k, v, o, out);
  ek::flash_pipeline(P, p, ws.data(), nullptr, [&](const ek::FlashParams& fp, i64 c) { emu_run(P, fp, c); });
}

void emu_sparse(const Queries& q, const KvView& k, const KvView& v, const Selection& sel, float scale,
                const Output& out, int sms, i64 chunk, i64 max_selected = 0) {
  if (q.heads == 0 || q.tokens == 0) return;
  ek::FlashPlan P = ek::sparse_plan(q, k, sel.per_query_head, max_selected, sms, false);
  const int groups = sel.per_query_head ? int(q.heads) : int(k.heads);
  const int R = sel.per_query_head ? int(q.tokens) : int(q.heads / k.heads * q.tokens);
  if (chunk) ek::plan_force_chunk(P, groups, R, int(q.d), i64(k.tokens), chunk);
  HostWs ws(P.workspace());
  const ek::FlashParams p = ek::sparse_params(q, k, v, sel, scale, out);
  ek::flash_pipeline(P, p, ws.data(), nullptr, [&](const ek::FlashParams& fp, i64 c) { emu_run(P, fp, c); });
}

// ---------------------------------------------------------------- dense
struct DenseCase {
  std::size_t Hq, Hkv, Nq, N, d;
  Storage st;
  bool causal;
  std::size_t qoff;
  i64 chunk;
  int sms;
  std::size_t extra_rows, misalign;
};

void check_dense_case(const DenseCase& c, uint64_t seed) {
  const std::string what = "dense Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) +
                           " Nq=" + std::to_string(c.Nq) + " N=" + std::to_string(c.N) + " d=" + std::to_string(c.d) +
                           " " + st_name(c.st) + (c.causal ? " causal" : "") + " chunk=" + std::to_string(c.chunk);
  const std::vector<float> qv = gaussian(c.Hq * c.Nq * c.d, seed, 0.8f);
  const KvBuf K(c.st, c.Hkv, c.N, c.d, seed + 1, c.extra_rows, c.misalign);
  const KvBuf V(c.st, c.Hkv, c.N, c.d, seed + 2, c.extra_rows, c.misalign);
  const Queries q{qv.data(), c.Hq, c.Nq, c.d};
  DenseOptions o;
  o.causal = c.causal;
  o.query_offset = c.qoff;
  const std::size_t rows = c.Hq * c.Nq;
  std::vector<float> oc(rows * c.d), lc(rows), oe(rows * c.d, kNaN), le(rows, kNaN);
  dense_attention(q, K.view(), V.view(), o, Output{oc.data(), lc.data()}, {});
  emu_dense(q, K.view(), V.view(), o, Output{oe.data(), le.data()}, c.sms, c.chunk);
  expect_rows(oe, oc, &le, &lc, rows, c.d, 1e-5, what);
}

void emu_dense_matches_cpu_impl() {
  const Storage F = Storage::F32, H = Storage::F16, B = Storage::BF16;
  const DenseCase cases[] = {
      {4, 2, 1, 200, 32, F, false, 0, 0, 1, 0, 0},     // decode, one chunk
      {4, 2, 1, 200, 32, F, false, 0, 64, 1, 0, 0},    // decode, split-K (4 chunks)
      {4, 2, 1, 200, 32, B, false, 0, 0, 64, 0, 0},    // planner's own split (many multiprocessors)
      {4, 2, 3, 200, 16, H, true, 197, 64, 1, 0, 0},   // GQA decode of 3 tokens, causal tail
      {2, 2, 37, 37, 32, B, true, 0, 0, 1, 0, 0},      // causal prefill, prefill tile (BM 64)
      {4, 1, 9, 150, 20, F, true, 141, 32, 1, 5, 0},   // G = 4, head_stride > tokens, padded d
      {2, 1, 5, 100, 18, H, false, 0, 0, 1, 0, 1},     // d % 4 ≠ 0, misaligned: scalar loads
      {2, 2, 40, 130, 64, F, false, 0, 64, 1, 0, 0},   // prefill tile with split-K
      {1, 1, 2, 70, 128, B, false, 0, 0, 1, 0, 0},     // d = 128 decode tile
      {1, 1, 10, 40, 96, F, true, 30, 0, 1, 0, 0},     // d = 96 → D = 128 prefill tile
      {1, 1, 3, 50, 200, F, false, 0, 32, 1, 0, 0},    // D = 256, two d-chunks, split
      {1, 1, 20, 45, 256, H, true, 25, 0, 1, 0, 0},    // D = 256 prefill tile
      {1, 1, 2, 33, 600, F, false, 0, 0, 1, 0, 0},     // D = 1024
      {2, 1, 5, 3, 16, F, true, 0, 0, 1, 0, 0},        // causal, fewer keys than queries
      {2, 1, 4, 0, 16, F, false, 0, 0, 1, 0, 0},       // no keys: (0, −Inf)
  };
  uint64_t seed = 100;
  for (const DenseCase& c : cases) check_dense_case(c, seed += 10);
}

// ---------------------------------------------------------------- sparse
struct SparseCase {
  bool pq;
  std::size_t Hq, Hkv, Nq, N, d;
  Storage st;
  double p;
  i64 chunk;
  std::size_t misalign;
};

void check_sparse_case(const SparseCase& c, uint64_t seed) {
  const std::string what = std::string("sparse ") + (c.pq ? "per-head" : "shared") + " Hq=" + std::to_string(c.Hq) +
                           " Nq=" + std::to_string(c.Nq) + " N=" + std::to_string(c.N) + " d=" + std::to_string(c.d) +
                           " " + st_name(c.st) + " chunk=" + std::to_string(c.chunk);
  const std::vector<float> qv = gaussian(c.Hq * c.Nq * c.d, seed, 0.8f);
  const KvBuf K(c.st, c.Hkv, c.N, c.d, seed + 1, 0, c.misalign);
  const KvBuf V(c.st, c.Hkv, c.N, c.d, seed + 2, 0, c.misalign);
  const std::size_t groups = c.pq ? c.Hq : c.Hkv;
  const Csr s = random_csr(groups, c.N, c.p, seed + 3);
  const Queries q{qv.data(), c.Hq, c.Nq, c.d};
  const Selection sel{s.idx.data(), s.off.data(), c.pq};
  const std::size_t rows = c.Hq * c.Nq;
  std::vector<float> oc(rows * c.d), lc(rows), oe(rows * c.d, kNaN), le(rows, kNaN);
  sparse_attention(q, K.view(), V.view(), sel, 0.0f, Output{oc.data(), lc.data()}, {});
  emu_sparse(q, K.view(), V.view(), sel, 0.0f, Output{oe.data(), le.data()}, 1, c.chunk);
  expect_rows(oe, oc, &le, &lc, rows, c.d, 1e-5, what);
  // The same with the grid bounded by the exact total (max_selected).
  std::fill(oe.begin(), oe.end(), kNaN);
  emu_sparse(q, K.view(), V.view(), sel, 0.0f, Output{oe.data(), le.data()}, 1, 0, i64(s.idx.size()));
  expect_rows(oe, oc, &le, &lc, rows, c.d, 1e-5, what + " (max_selected)");
}

void emu_sparse_matches_cpu_impl() {
  const Storage F = Storage::F32, H = Storage::F16, B = Storage::BF16;
  const SparseCase cases[] = {
      {true, 4, 2, 1, 200, 32, F, 0.3, 0, 0},    // decode, one chunk per group, empty + full groups
      {true, 4, 2, 1, 200, 32, F, 0.3, 32, 0},   // chunk table, several chunks per group
      {false, 4, 2, 3, 200, 16, H, 0.5, 64, 0},  // shared by the G = 2 heads of a KV head
      {true, 3, 1, 20, 120, 20, B, 0.4, 32, 0},  // prefill tile, padded d
      {false, 2, 1, 1, 90, 18, H, 0.6, 0, 1},    // d % 4 ≠ 0, misaligned
      {false, 6, 3, 12, 160, 64, B, 0.25, 32, 0},
  };
  uint64_t seed = 500;
  for (const SparseCase& c : cases) check_sparse_case(c, seed += 10);
}

// ---------------------------------------------------------------- LSE merge
void emu_lse_merge_matches_cpu_impl() {
  const std::size_t rows = 41, d = 24;
  std::vector<float> oa = gaussian(rows * d, 7), ob = gaussian(rows * d, 8);
  std::vector<float> la = gaussian(rows, 9, 3.0f), lb = gaussian(rows, 10, 3.0f);
  for (std::size_t r = 0; r < rows; r += 5) la[r] = kNegInf;
  for (std::size_t r = 0; r < rows; r += 7) lb[r] = kNegInf;
  std::vector<float> oc = oa, lc = la, oe = oa, le = la;
  merge_partials(rows, d, oc.data(), lc.data(), ob.data(), lb.data());
  ek::launch_lse_merge(i64(rows), int(d), oe.data(), le.data(), ob.data(), lb.data(), nullptr);
  for (std::size_t i = 0; i < rows * d; ++i) EXPECT_EQ(oe[i], oc[i]);  // the same float64 arithmetic
  for (std::size_t r = 0; r < rows; ++r) EXPECT_EQ(le[r], lc[r]);
}

// ---------------------------------------------------------------- K-means
void emu_kmeans_assign_matches_cpu_impl() {
  const std::size_t n = 300, d = 16, k = 7;
  std::vector<float> y = planted_points(n, d, 5, 31);
  for (std::size_t i = 0; i < n; ++i) {  // unit rows
    double s = 0;
    for (std::size_t t = 0; t < d; ++t) s += double(y[i * d + t]) * y[i * d + t];
    for (std::size_t t = 0; t < d; ++t) y[i * d + t] = float(y[i * d + t] / std::sqrt(s));
  }
  const std::vector<float> c = initial_from(y, d, {0, 1, 2, 3, 4, 10, 11}, true);
  std::vector<std::int32_t> lc(n), le(n, -1);
  std::vector<float> dc(n), de(n, kNaN);
  const double tc = kmeans_assign(y.data(), n, d, c.data(), k, lc.data(), dc.data());
  const ek::AssignPlan P = ek::plan_assign(i64(n), int(k));
  HostWs ws(P.bytes);
  double te = kNaN;
  ek::launch_assign(P, y.data(), i64(n), int(d), c.data(), int(k), le.data(), de.data(), &te, ws.data(), nullptr);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(le[i], lc[i]);
    EXPECT_NEAR(de[i], dc[i], 1e-5 * std::max(1.0, double(dc[i])));
  }
  EXPECT_NEAR(te, tc, 1e-5 * std::fabs(tc));
}

void check_kmeans_init(const std::vector<float>& x, std::size_t n, std::size_t d, std::size_t k, bool cosine,
                       std::size_t iters, const std::vector<float>& init, const std::string& what);

void check_kmeans_case(const std::vector<float>& x, std::size_t n, std::size_t d, std::size_t k, bool cosine,
                       std::size_t iters, const std::vector<std::size_t>& pick, const std::string& what) {
  check_kmeans_init(x, n, d, k, cosine, iters, initial_from(x, d, pick, cosine), what);
}

void check_kmeans_init(const std::vector<float>& x, std::size_t n, std::size_t d, std::size_t k, bool cosine,
                       std::size_t iters, const std::vector<float>& init, const std::string& what) {
  KmeansOptions o;
  o.clusters = k;
  o.iterations = iters;
  o.cosine = cosine;
  o.initial_centroids = init.data();
  const KmeansResult r = kmeans(x.data(), n, d, o);

  const ek::KmeansPlan P = ek::plan_kmeans(i64(n), int(d), int(k), cosine);
  HostWs ws(P.bytes);
  std::vector<float> cent(k * d, kNaN);
  std::vector<std::int32_t> labels(n, -1), sizes(k, -1), state(4, -1);
  std::vector<double> hist(std::max<std::size_t>(iters, 1), -1.0);
  double inertia = kNaN;
  ek::KmeansArgs a;
  a.x = x.data();
  a.n = i64(n);
  a.d = int(d);
  a.k = int(k);
  a.cosine = cosine ? 1 : 0;
  a.iterations = int(iters);
  a.init = init.data();
  a.centroids = cent.data();
  a.labels = labels.data();
  a.sizes = sizes.data();
  a.history = hist.data();
  a.inertia = &inertia;
  a.state = state.data();
  ek::launch_kmeans(P, a, ws.data(), nullptr);

  if (!(labels == r.labels)) throw test::Failure(what + ": labels differ from the CPU's");
  if (!(sizes == r.sizes)) throw test::Failure(what + ": sizes differ");
  EXPECT_EQ(std::size_t(state[1]), r.iterations);
  EXPECT_EQ(state[0] != 0, r.converged);
  EXPECT_EQ(std::size_t(state[2]), r.reseeded);
  for (std::size_t i = 0; i < k * d; ++i)  // the same labels give the same float64 means, bit for bit
    if (!(cent[i] == r.centroids[i])) throw test::Failure(what + ": centroid element " + std::to_string(i));
  // The CPU takes exact distances for points its bounds skip, the GPU the expanded
  // form ‖y‖² − 2y·c + ‖c‖² for all: float32 rounding of about d·ε·(‖y‖² + ‖c‖²) each.
  double ymax = 1.0;
  if (!cosine)
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t t = 0; t < d; ++t) s += double(x[i * d + t]) * x[i * d + t];
      ymax = std::max(ymax, s);
    }
  const double abs_tol = 2.0 * double(d + 8) * 6e-8 * 2.0 * ymax * double(n);
  for (std::size_t t = 0; t < r.iterations; ++t)
    EXPECT_NEAR(hist[t], r.history[t], 1e-5 * std::fabs(r.history[t]) + abs_tol);
  EXPECT_NEAR(inertia, r.inertia, 1e-9 * std::fabs(r.inertia) + 1e-12);
}

void emu_kmeans_matches_cpu_impl() {
  const std::size_t n = 300, d = 16, k = 6;
  const std::vector<float> x = planted_points(n, d, k, 41);
  check_kmeans_case(x, n, d, k, true, 10, {0, 1, 2, 3, 4, 5}, "kmeans cosine, good init");
  check_kmeans_case(x, n, d, k, false, 10, {0, 6, 12, 18, 24, 30}, "kmeans euclidean, poor init");
  check_kmeans_case(x, n, d, k, true, 10, {0, 0, 1, 2, 3, 4}, "kmeans duplicate centres (reseed)");
  check_kmeans_case(x, n, d, k, true, 0, {0, 0, 0, 2, 3, 4}, "kmeans iterations = 0");
  check_kmeans_case(x, 9, d, 9, true, 5, {0, 1, 2, 3, 4, 5, 6, 7, 8}, "kmeans n = k");
  const std::vector<float> x2 = planted_points(700, 20, 9, 43);  // two sort tiles, d % 4 ≠ 0 of BK
  check_kmeans_case(x2, 700, 20, 12, true, 8, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "kmeans n = 700");
  // Many empty clusters at once, labels right after the reseed (no update): the
  // farthest-point rule and its order are visible in the labels.
  check_kmeans_case(x2, 700, 20, 12, true, 0, {5, 5, 5, 5, 5, 5, 5, 1, 2, 2, 3, 3}, "kmeans reseed x9");
  check_kmeans_case(x2, 700, 20, 12, false, 3, {5, 5, 5, 5, 5, 7, 7, 7, 2, 2, 3, 3}, "kmeans reseed, euclidean");
  // Exact distance ties in the reseed (identical points, spread over the threads):
  // the lowest point index wins.
  {
    const std::size_t na = 10, nb = 600, dd = 4;
    std::vector<float> x3((na + nb) * dd, 0.0f);
    for (std::size_t i = 0; i < na; ++i) x3[i * dd + 0] = 1.0f;
    for (std::size_t i = na; i < na + nb; ++i) x3[i * dd + 1] = 1.0f;
    const std::vector<float> init3 = {1, 0, 0, 0, 1, 0, 0, 0, 0, 0.8f, 0.6f, 0, 0, 0, 0, 1};
    check_kmeans_init(x3, na + nb, dd, 4, true, 0, init3, "kmeans reseed ties");
    check_kmeans_init(x3, na + nb, dd, 4, true, 4, init3, "kmeans reseed ties, iterated");
  }
}

}  // namespace
#endif  // NNSCOPE_HAVE_CUDA

#ifdef NNSCOPE_HAVE_CUDA
namespace {

// ---------------------------------------------------------------- squeezed helpers
// Emulated centroid scores (flat or two-level) of context c for queries q.
void emu_scores(const SqueezedContext& c, const Queries& q, const ScoreOptions& so, int force_split,
                std::vector<float>& scores, std::vector<std::uint8_t>& scored, std::vector<float>* coarse) {
  const cuda::DeviceSqueezedContext dc = host_context(c);
  SelectOptions o;
  o.score = so;
  const ek::SqzProblem P = ek::make_sqz_problem(dc, q, o, 4, 0);
  const ek::SqzPlan S = ek::plan_squeezed(P, true, force_split);
  HostWs ws(S.bytes);
  scores.assign(std::size_t(P.groups()) * c.clusters, kNaN);
  scored.assign(std::size_t(P.groups()) * c.clusters, 7);
  if (coarse) coarse->assign(std::size_t(P.groups()) * c.coarse_clusters, kNaN);
  ek::launch_squeezed_scores(P, S, ws.data(), scores.data(), scored.data(), coarse ? coarse->data() : nullptr,
                             nullptr);
}

void emu_scores_match_cpu_impl() {
  for (std::size_t C1 : {std::size_t(0), std::size_t(11)}) {
    const SqueezedContext c = crafted_context(2, 700, 30, 16, 150, C1, 61 + C1);
    for (std::size_t Nq : {std::size_t(1), std::size_t(40)}) {
      const std::vector<float> qv = gaussian(4 * Nq * 16, 70 + Nq, 0.9f);
      const Queries q{qv.data(), 4, Nq, 16};
      for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
        ScoreOptions so;
        so.policy = pol;
        so.hierarchical = C1 > 0;
        if (C1 > 0) {  // a coarse threshold that keeps about half of the coarse clusters
          ScoreOptions all = so;
          all.coarse_threshold = -1.0;
          const CentroidScores s0 = centroid_scores(c, q, all);
          CentroidScores cs;
          cs.scores = s0.coarse_scores;
          cs.scored.assign(cs.scores.size(), 1);
          so.coarse_threshold = safe_threshold(cs, 0.5);
        }
        const CentroidScores ref = centroid_scores(c, q, so);
        for (int split : {0, 64}) {
          const std::string what = std::string("scores C1=") + std::to_string(C1) + " Nq=" + std::to_string(Nq) +
                                   (pol == GroupPolicy::Shared ? " shared" : " per-head") +
                                   " split=" + std::to_string(split);
          std::vector<float> se, ce;
          std::vector<std::uint8_t> ke;
          emu_scores(c, q, so, split, se, ke, C1 > 0 ? &ce : nullptr);
          expect_scores(se, ke, ref.scores, ref.scored, what);
          if (C1 > 0) {
            std::vector<std::uint8_t> kk(ce.size(), 1), kr(ce.size(), 1);
            expect_scores(ce, kk, ref.coarse_scores, kr, what + " (coarse)");
          }
        }
      }
    }
  }
}

// Emulated select_keys from given scores.
void emu_select(const SqueezedContext& c, const CentroidScores& s, const SelectOptions& o,
                std::vector<std::int32_t>& idx, std::vector<std::size_t>& off) {
  const cuda::DeviceSqueezedContext dc = host_context(c);
  const int groups = int(s.groups);
  const ek::SelectPlan P = ek::plan_select(groups, i64(c.tokens));
  HostWs ws(P.workspace());
  ek::KeyMask m{};
  m.labels = c.labels.data();
  m.nc = i64(c.clustered());
  m.N = i64(c.tokens);
  m.pq = s.policy == GroupPolicy::PerQueryHead ? 1 : 0;
  m.G = m.pq ? int(s.groups / c.heads) : 1;
  m.C = int(c.clusters);
  m.scores = s.scores.data();
  m.scored = s.scored.data();
  m.sizes = c.sizes.data();
  long long target = 0;
  ek::select_mode(o, c.clustered(), &m.mode, &m.thr, &target);
  idx.assign(s.groups * c.tokens, -7);
  off.assign(s.groups + 1, 12345);
  ek::launch_select_keys(P, m, groups, target, ws.data(), idx.data(), off.data(), nullptr);
  (void)dc;
}

void emu_select_matches_cpu_impl() {
  const SqueezedContext c = crafted_context(2, 1500, 40, 16, 60, 0, 81);  // two tiles of keys
  const std::vector<float> qv = gaussian(4 * 3 * 16, 82, 0.9f);
  const Queries q{qv.data(), 4, 3, 16};
  for (GroupPolicy pol : {GroupPolicy::PerQueryHead, GroupPolicy::Shared}) {
    ScoreOptions so;
    so.policy = pol;
    CentroidScores s = centroid_scores(c, q, so);
    for (int ties = 0; ties < 2; ++ties) {
      if (ties)  // few distinct values: rank ties broken by cluster index
        for (float& v : s.scores) v = std::round(v * 200.0f) / 200.0f;
      std::vector<SelectOptions> modes(6);
      modes[0].mode = SelectMode::Threshold;
      modes[0].threshold = safe_threshold(s, 0.6);
      modes[1].mode = SelectMode::KeepFraction;
      modes[1].keep_fraction = 0.25;
      modes[2].mode = SelectMode::Budget;
      modes[2].budget = 77;
      modes[3].mode = SelectMode::KeepFraction;
      modes[3].keep_fraction = 1.0;
      modes[4].mode = SelectMode::Budget;
      modes[4].budget = 0;
      modes[5].mode = SelectMode::Threshold;
      modes[5].threshold = -1.0;  // every scored cluster
      for (std::size_t m = 0; m < modes.size(); ++m) {
        modes[m].score = so;
        const SqueezedSelection ref = select_keys(c, s, modes[m]);
        std::vector<std::int32_t> idx;
        std::vector<std::size_t> off;
        emu_select(c, s, modes[m], idx, off);
        expect_selection(idx, off, ref,
                         "select mode " + std::to_string(m) + (ties ? " ties" : "") +
                             (pol == GroupPolicy::Shared ? " shared" : " per-head"));
      }
    }
  }
}

// ---------------------------------------------------------------- composed
struct SqzCase {
  bool prefill;
  GroupPolicy pol;
  SelectMode mode;
  Storage st;
  bool hier;
  std::size_t Nq, tail, tail_cap;
  i64 chunk;
};

void check_squeezed_case(const SqueezedContext& c, const KvBuf& FK, const KvBuf& FV, const SqzCase& k,
                         uint64_t seed) {
  const std::size_t Hq = 4, d = c.d, H = c.heads;
  const std::string what = std::string(k.prefill ? "prefill" : "decode") +
                           (k.pol == GroupPolicy::Shared ? " shared" : " per-head") + " mode " +
                           std::to_string(int(k.mode)) + " " + st_name(k.st) + (k.hier ? " two-level" : "") +
                           " chunk=" + std::to_string(k.chunk);
  const std::vector<float> qv = gaussian(Hq * k.Nq * d, seed, 0.9f);
  const Queries q{qv.data(), Hq, k.Nq, d};
  const std::size_t dn = k.prefill ? k.Nq : k.tail;
  const KvBuf DK(Storage::F32, H, dn, d, seed + 1, k.prefill ? 0 : k.tail_cap - k.tail);
  const KvBuf DV(Storage::F32, H, dn, d, seed + 2, k.prefill ? 0 : k.tail_cap - k.tail);
  SelectOptions o;
  o.mode = k.mode;
  o.score.policy = k.pol;
  o.score.hierarchical = k.hier;
  o.keep_fraction = 0.3;
  if (k.hier) {
    ScoreOptions all = o.score;
    all.coarse_threshold = -1.0;
    const CentroidScores s0 = centroid_scores(c, q, all);
    CentroidScores cs;
    cs.scores = s0.coarse_scores;
    cs.scored.assign(cs.scores.size(), 1);
    o.score.coarse_threshold = safe_threshold(cs, 0.4);
  }
  if (k.mode == SelectMode::Threshold) o.threshold = safe_threshold(centroid_scores(c, q, o.score), 0.5);
  const std::size_t rows = Hq * k.Nq;
  std::vector<float> oc(rows * d), lc(rows), oe(rows * d, kNaN), le(rows, kNaN);
  SqueezedReport rep;
  if (k.prefill)
    squeezed_prefill(FK.view(), FV.view(), c, q, DK.view(), DV.view(), o, Output{oc.data(), lc.data()}, &rep);
  else
    squeezed_decode(FK.view(), FV.view(), c, q, DK.view(), DV.view(), o, Output{oc.data(), lc.data()}, &rep);

  const cuda::DeviceSqueezedContext dc = host_context(c);
  ek::SqzProblem P = ek::make_sqz_problem(dc, q, o, 2, 0);
  ek::set_sqz_kv(P, FK.view(), FV.view(), DK.view(), DV.view(), k.prefill, Output{oe.data(), le.data()});
  const ek::SqzPlan S = ek::plan_squeezed(P, false, 0, k.chunk);
  HostWs ws(S.bytes);
  ek::launch_squeezed(P, S, ws.data(), nullptr, emu_run);
  const ek::SqzViews v = ek::squeezed_views(S, ws.data());
  const std::vector<std::size_t> off(v.offsets, v.offsets + P.groups() + 1);
  const std::vector<std::int32_t> idx(v.indices, v.indices + off.back());
  expect_selection(idx, off, rep.selection, what);
  expect_rows(oe, oc, &le, &lc, rows, d, 1e-5, what);
  if (k.chunk != 32) return;
  // Without an lse output (the merge then uses workspace rows).
  std::vector<float> o2(rows * d, kNaN);
  ek::set_sqz_kv(P, FK.view(), FV.view(), DK.view(), DV.view(), k.prefill, Output{o2.data(), nullptr});
  const ek::SqzPlan S2 = ek::plan_squeezed(P, false, 0, k.chunk);
  HostWs ws2(S2.bytes);
  ek::launch_squeezed(P, S2, ws2.data(), nullptr, emu_run);
  for (std::size_t i = 0; i < rows * d; ++i) EXPECT_EQ(o2[i], oe[i]);
}

void emu_squeezed_matches_cpu_impl() {
  const std::size_t H = 2, N = 260, d = 16;
  for (Storage st : {Storage::F32, Storage::F16}) {
    const KvBuf FK(st, H, N, d, 91), FV(st, H, N, d, 92);
    BuildOptions bo;
    bo.clusters = 12;
    bo.window = 20;
    bo.iterations = 6;
    bo.seed = 3;
    bo.hierarchical = true;
    bo.coarse_clusters = 4;
    const SqueezedContext c = build_context(FK.view(), bo);
    const SqzCase cases[] = {
        {true, GroupPolicy::PerQueryHead, SelectMode::KeepFraction, st, false, 6, 0, 0, 0},
        {true, GroupPolicy::Shared, SelectMode::Threshold, st, false, 6, 0, 0, 32},
        {true, GroupPolicy::PerQueryHead, SelectMode::Threshold, st, true, 5, 0, 0, 0},
        {false, GroupPolicy::PerQueryHead, SelectMode::Threshold, st, false, 1, 5, 8, 32},
        {false, GroupPolicy::Shared, SelectMode::KeepFraction, st, true, 1, 3, 3, 0},
        {false, GroupPolicy::PerQueryHead, SelectMode::KeepFraction, st, false, 1, 0, 0, 64},  // empty tail
    };
    uint64_t seed = 900;
    for (const SqzCase& k : cases) check_squeezed_case(c, FK, FV, k, seed += 10);
  }
}

// ---------------------------------------------------------------- planning
void emu_planning_impl() {
  // Dense decode on a 132-SM device: one query per KV head is split into enough
  // chunks to fill the GPU; prefill is not split.
  const ek::FlashPlan dec = ek::plan_flash(false, 32, 1, 128, 131072, -1, 132, 8);
  EXPECT(dec.cpg >= 16);
  EXPECT(dec.partials);
  EXPECT_EQ(i64(dec.cpg) * dec.chunk >= 131072, true);
  EXPECT_EQ(dec.chunk % ek::kBN, 0);
  const ek::FlashPlan pre = ek::plan_flash(false, 32, 1024, 128, 131072, -1, 132, 32);
  EXPECT_EQ(pre.cpg, 1);
  EXPECT(!pre.partials);
  EXPECT_EQ(pre.workspace(), std::size_t(0));
  // Sparse: the grid bound covers any selection; the partial buffers stay capped.
  const ek::FlashPlan sp = ek::plan_flash(true, 32, 1024, 128, 131072, -1, 132, 64);
  EXPECT(sp.max_chunks >= 32);
  EXPECT(sp.ws_pout <= ek::kPartialCap + 256);
  std::size_t worst_chunks = 0;
  for (int g = 0; g < 32; ++g) worst_chunks += std::size_t(ek::cdiv(131072, sp.chunk));
  EXPECT(std::size_t(sp.max_chunks) >= worst_chunks);
  const ek::FlashPlan sd = ek::plan_flash(true, 32, 1, 128, 131072, -1, 132, 8);
  EXPECT_EQ(sd.chunk, ek::kMinDecodeChunk);
  // Scores: decode splits the centroids, prefill does not.
  const ek::ScorePlan s1 = ek::plan_scores(32, 1, 6553, 132);
  EXPECT(s1.nsplit > 1);
  EXPECT(s1.split * s1.nsplit >= 6553);
  const ek::ScorePlan s2 = ek::plan_scores(32, 1024, 6553, 132);
  EXPECT_EQ(s2.nsplit, 1);
  // SIMT tile shapes.
  EXPECT_EQ(ek::simt_config(128, 1).BM, 8);
  EXPECT_EQ(ek::simt_config(128, 100).BM, 32);
  EXPECT_EQ(ek::simt_config(600, 3).D, 1024);
}

}  // namespace

#define NNSCOPE_CUDA_CASE(fn) fn()
#else
#define NNSCOPE_CUDA_CASE(fn) ::nnscope::test::skip("nnscope was built without CUDA (nvcc not found or NNSCOPE_CUDA=off)")
#endif  // NNSCOPE_HAVE_CUDA

// ---------------------------------------------------------------- registered cases
NNSCOPE_TEST(emu_dense_matches_cpu) { NNSCOPE_CUDA_CASE(emu_dense_matches_cpu_impl); }
NNSCOPE_TEST(emu_sparse_matches_cpu) { NNSCOPE_CUDA_CASE(emu_sparse_matches_cpu_impl); }
NNSCOPE_TEST(emu_lse_merge_matches_cpu) { NNSCOPE_CUDA_CASE(emu_lse_merge_matches_cpu_impl); }
NNSCOPE_TEST(emu_kmeans_assign_matches_cpu) { NNSCOPE_CUDA_CASE(emu_kmeans_assign_matches_cpu_impl); }
NNSCOPE_TEST(emu_kmeans_matches_cpu) { NNSCOPE_CUDA_CASE(emu_kmeans_matches_cpu_impl); }
NNSCOPE_TEST(emu_scores_match_cpu) { NNSCOPE_CUDA_CASE(emu_scores_match_cpu_impl); }
NNSCOPE_TEST(emu_select_matches_cpu) { NNSCOPE_CUDA_CASE(emu_select_matches_cpu_impl); }
NNSCOPE_TEST(emu_squeezed_matches_cpu) { NNSCOPE_CUDA_CASE(emu_squeezed_matches_cpu_impl); }
NNSCOPE_TEST(emu_planning) { NNSCOPE_CUDA_CASE(emu_planning_impl); }
NNSCOPE_TEST(gpu_dense_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_dense_matches_cpu_impl); }
NNSCOPE_TEST(gpu_sparse_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_sparse_matches_cpu_impl); }
NNSCOPE_TEST(gpu_mma_matches_simt) { NNSCOPE_CUDA_CASE(gpu_mma_matches_simt_impl); }
NNSCOPE_TEST(gpu_lse_merge_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_lse_merge_matches_cpu_impl); }
NNSCOPE_TEST(gpu_kmeans_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_kmeans_matches_cpu_impl); }
NNSCOPE_TEST(gpu_kmeans_assign_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_kmeans_assign_matches_cpu_impl); }
NNSCOPE_TEST(gpu_scores_select_match_cpu) { NNSCOPE_CUDA_CASE(gpu_scores_select_match_cpu_impl); }
NNSCOPE_TEST(gpu_squeezed_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_squeezed_matches_cpu_impl); }
NNSCOPE_TEST(gpu_invalid_inputs) { NNSCOPE_CUDA_CASE(gpu_invalid_inputs_impl); }
NNSCOPE_TEST(gpu_public_api_matches_cpu) { NNSCOPE_CUDA_CASE(gpu_public_api_matches_cpu_impl); }
