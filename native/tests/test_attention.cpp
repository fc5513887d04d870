// Tests of the CPU attention kernels (attention/attention.h): dense and sparse
// attention against a float64 brute-force softmax reference on odd sizes, every
// storage type and every ISA tier this CPU has; LSE-merge identities; large
// logits; determinism across thread counts; validation; and the fp16 / bf16
// conversions over all 65536 bit patterns.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/attn_kernels.h"
#include "attention/kv.h"
#include "base/context.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "harness.h"
#include "cpu_settings.h"

using namespace nnscope;
using namespace nnscope::attention;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const float kInfF = std::numeric_limits<float>::infinity();

using Restore = test::CpuSettingsGuard;

template <typename F>
void for_each_isa(F&& fn) {
  Restore restore;
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(cpu_isa())) continue;
    set_isa_limit(isa);
    EXPECT(active_isa() == isa);
    fn(isa);
  }
}

std::vector<float> gaussian(std::size_t n, uint64_t seed, float mult = 1.0f) {
  std::vector<float> v(n);
  if (n) Rng(seed).gaussian(v.data(), n);
  for (float& x : v) x *= mult;
  return v;
}

const char* storage_name(Storage s) { return s == Storage::F32 ? "f32" : s == Storage::F16 ? "f16" : "bf16"; }

// Keys or values in a storage, with the float64 copy of the stored (rounded) values.
struct Kv {
  Storage st = Storage::F32;
  std::size_t heads = 0, tokens = 0, d = 0, stride = 0;  // stride: allocated tokens per head
  std::vector<float> f;
  std::vector<std::uint16_t> h;
  std::vector<double> ref;  // [heads][tokens][d] compact

  KvView view() const {
    KvView v;
    v.data = st == Storage::F32 ? static_cast<const void*>(f.data()) : static_cast<const void*>(h.data());
    v.storage = st;
    v.heads = heads;
    v.tokens = tokens;
    v.d = d;
    v.head_stride = stride == tokens ? 0 : stride;
    return v;
  }
};

// Gaussian rows times mult; stride ≥ tokens leaves (NaN-filled) spare capacity per head.
Kv make_kv(Storage st, std::size_t heads, std::size_t tokens, std::size_t d, uint64_t seed, float mult = 1.0f,
           std::size_t stride = 0) {
  Kv kv;
  kv.st = st;
  kv.heads = heads;
  kv.tokens = tokens;
  kv.d = d;
  kv.stride = stride ? stride : tokens;
  const std::vector<float> g = gaussian(heads * tokens * d, seed, mult);
  const std::size_t total = heads * kv.stride * d;
  kv.ref.resize(heads * tokens * d);
  if (st == Storage::F32) kv.f.assign(total, std::numeric_limits<float>::quiet_NaN());
  else kv.h.assign(total, 0x7e00);
  for (std::size_t hh = 0; hh < heads; ++hh)
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t c = 0; c < d; ++c) {
        const std::size_t src = (hh * tokens + t) * d + c, dst = (hh * kv.stride + t) * d + c;
        const float x = g[src];
        if (st == Storage::F32) {
          kv.f[dst] = x;
          kv.ref[src] = x;
        } else if (st == Storage::F16) {
          kv.h[dst] = float_to_half(x);
          kv.ref[src] = half_to_float(kv.h[dst]);
        } else {
          kv.h[dst] = float_to_bf16(x);
          kv.ref[src] = bf16_to_float(kv.h[dst]);
        }
      }
  return kv;
}

struct Ref {
  std::vector<double> out, lse;
};

// Brute-force softmax in float64. lists (optional): per query head, the keys it
// attends (replaces the causal rule).
Ref reference(const std::vector<float>& q, std::size_t Hq, std::size_t Nq, std::size_t d, const Kv& K, const Kv& V,
              double scale, bool causal, std::size_t qoff, const std::vector<std::vector<int>>* lists = nullptr) {
  const std::size_t Hkv = K.heads, N = K.tokens, G = Hq / Hkv;
  Ref r;
  r.out.assign(Hq * Nq * d, 0.0);
  r.lse.assign(Hq * Nq, -kInf);
  std::vector<double> s;
  std::vector<std::size_t> keys;
  for (std::size_t h = 0; h < Hq; ++h) {
    const std::size_t kh = h / G;
    for (std::size_t i = 0; i < Nq; ++i) {
      keys.clear();
      if (lists) {
        for (int j : (*lists)[h]) keys.push_back(std::size_t(j));
      } else {
        for (std::size_t j = 0; j < N; ++j)
          if (!causal || j <= qoff + i) keys.push_back(j);
      }
      if (keys.empty()) continue;
      const float* qr = q.data() + (h * Nq + i) * d;
      s.assign(keys.size(), 0.0);
      double m = -kInf;
      for (std::size_t t = 0; t < keys.size(); ++t) {
        const double* kr = K.ref.data() + (kh * N + keys[t]) * d;
        double acc = 0;
        for (std::size_t c = 0; c < d; ++c) acc += double(qr[c]) * kr[c];
        s[t] = acc * scale;
        m = std::max(m, s[t]);
      }
      double l = 0;
      double* o = r.out.data() + (h * Nq + i) * d;
      for (std::size_t t = 0; t < keys.size(); ++t) {
        const double p = std::exp(s[t] - m);
        l += p;
        const double* vr = V.ref.data() + (kh * N + keys[t]) * d;
        for (std::size_t c = 0; c < d; ++c) o[c] += p * vr[c];
      }
      for (std::size_t c = 0; c < d; ++c) o[c] /= l;
      r.lse[h * Nq + i] = m + std::log(l);
    }
  }
  return r;
}

// max |out − ref| ≤ tol · max |ref|; lse within tol·max(1, |ref|), −Inf exactly
// where the reference has it (and then a zero output row). NaN fails.
void expect_close(const std::vector<float>& out, const std::vector<float>& lse, const Ref& r, double tol,
                  const std::string& what) {
  double maxref = 0, maxerr = 0;
  for (std::size_t i = 0; i < r.out.size(); ++i) {
    maxref = std::max(maxref, std::fabs(r.out[i]));
    const double e = std::fabs(double(out[i]) - r.out[i]);
    if (!(e <= maxerr)) maxerr = e;  // keeps NaN
  }
  if (!(maxerr <= tol * std::max(maxref, 1e-300)))
    throw test::Failure(what + ": output error " + std::to_string(maxerr) + " vs max |ref| " +
                        std::to_string(maxref));
  const std::size_t d = lse.empty() ? 0 : r.out.size() / lse.size();
  for (std::size_t i = 0; i < r.lse.size(); ++i) {
    if (r.lse[i] == -kInf) {
      if (!(lse[i] == -kInfF)) throw test::Failure(what + ": lse should be -Inf at row " + std::to_string(i));
      for (std::size_t c = 0; c < d; ++c)
        if (out[i * d + c] != 0.0f) throw test::Failure(what + ": output row of a keyless query is not 0");
      continue;
    }
    const double e = std::fabs(double(lse[i]) - r.lse[i]);
    if (!(e <= tol * std::max(1.0, std::fabs(r.lse[i]))))
      throw test::Failure(what + ": lse " + std::to_string(lse[i]) + " vs " + std::to_string(r.lse[i]) +
                          " at row " + std::to_string(i));
  }
}

struct Case {
  std::size_t Hq, Hkv, Nq, N, d;
  bool causal;
  std::size_t qoff;
};

std::string describe(const Case& c, Storage st, Isa isa) {
  return std::string(isa_name(isa)) + " " + storage_name(st) + " Hq=" + std::to_string(c.Hq) + " Hkv=" +
         std::to_string(c.Hkv) + " Nq=" + std::to_string(c.Nq) + " N=" + std::to_string(c.N) +
         " d=" + std::to_string(c.d) + (c.causal ? " causal off=" + std::to_string(c.qoff) : "");
}

struct Run {
  std::vector<float> out, lse;
};

Run run_dense(const std::vector<float>& q, const Case& c, const Kv& K, const Kv& V, float scale = 0,
              const OpContext& ctx = {}) {
  Run r;
  r.out.assign(c.Hq * c.Nq * c.d, std::numeric_limits<float>::quiet_NaN());
  r.lse.assign(c.Hq * c.Nq, std::numeric_limits<float>::quiet_NaN());
  Queries qq{q.data(), c.Hq, c.Nq, c.d};
  DenseOptions o;
  o.scale = scale;
  o.causal = c.causal;
  o.query_offset = c.qoff;
  dense_attention(qq, K.view(), V.view(), o, Output{r.out.data(), r.lse.data()}, ctx);
  return r;
}

// CSR selection from per-group lists.
struct Sel {
  std::vector<std::int32_t> idx;
  std::vector<std::size_t> off;
  bool per_qh = false;
  Selection view() const { return Selection{idx.data(), off.data(), per_qh}; }
};
Sel make_sel(const std::vector<std::vector<int>>& lists, bool per_qh) {
  Sel s;
  s.per_qh = per_qh;
  s.off.push_back(0);
  for (const auto& l : lists) {
    for (int j : l) s.idx.push_back(j);
    s.off.push_back(s.idx.size());
  }
  return s;
}

Run run_sparse(const std::vector<float>& q, const Case& c, const Kv& K, const Kv& V, const Sel& sel,
               float scale = 0) {
  Run r;
  r.out.assign(c.Hq * c.Nq * c.d, std::numeric_limits<float>::quiet_NaN());
  r.lse.assign(c.Hq * c.Nq, std::numeric_limits<float>::quiet_NaN());
  Queries qq{q.data(), c.Hq, c.Nq, c.d};
  sparse_attention(qq, K.view(), V.view(), sel.view(), scale, Output{r.out.data(), r.lse.data()}, OpContext{});
  return r;
}

// A random ascending subset of [0, N) keeping each key with probability p.
std::vector<int> random_subset(std::size_t N, double p, uint64_t seed) {
  std::vector<int> l;
  Rng rng(seed);
  for (std::size_t j = 0; j < N; ++j)
    if (rng.uniform_at(j) < p) l.push_back(int(j));
  return l;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

// ---------------------------------------------------------------- conversions

NNSCOPE_TEST(half_conversion_exhaustive) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const std::uint16_t x = static_cast<std::uint16_t>(h);
    const float f = half_to_float(x);
    const std::uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0x1f) {
      if (m == 0) EXPECT(std::isinf(f) && std::signbit(f) == bool(h & 0x8000));
      else EXPECT(std::isnan(f));
      const std::uint16_t back = float_to_half(f);
      EXPECT_EQ(back & 0x7c00u, 0x7c00u);
      EXPECT_EQ(back & 0x8000u, h & 0x8000u);
      EXPECT_EQ((back & 0x3ffu) != 0, m != 0);
      continue;
    }
    const double want = e == 0 ? sign * std::ldexp(double(m), -24) : sign * std::ldexp(double(1024 + m), int(e) - 25);
    EXPECT_EQ(double(f), want);
    EXPECT_EQ(std::signbit(f), bool(h & 0x8000));
    EXPECT_EQ(float_to_half(f), x);
  }
  // Rounding: the midpoint between consecutive finite halves goes to the even one,
  // anything off the midpoint to the nearer one; beyond 65520 to Inf.
  for (std::uint32_t h = 0; h < 0x7bff; ++h) {
    const double a = half_to_float(std::uint16_t(h)), b = half_to_float(std::uint16_t(h + 1));
    const float mid = float((a + b) / 2);  // exact in float
    EXPECT_EQ(double(mid), (a + b) / 2);
    EXPECT_EQ(float_to_half(mid), std::uint16_t((h & 1) ? h + 1 : h));
    EXPECT_EQ(float_to_half(std::nextafter(mid, 0.0f)), std::uint16_t(h));
    EXPECT_EQ(float_to_half(std::nextafter(mid, 1e9f)), std::uint16_t(h + 1));
    EXPECT_EQ(float_to_half(-mid), std::uint16_t(0x8000 | ((h & 1) ? h + 1 : h)));
  }
  EXPECT_EQ(float_to_half(65519.99f), std::uint16_t(0x7bff));
  EXPECT_EQ(float_to_half(65520.0f), std::uint16_t(0x7c00));
  EXPECT_EQ(float_to_half(1e30f), std::uint16_t(0x7c00));
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), std::uint16_t(0));               // tie → even (0)
  EXPECT_EQ(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), std::uint16_t(1));
}

NNSCOPE_TEST(bf16_conversion_exhaustive) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const std::uint16_t x = static_cast<std::uint16_t>(b);
    const float f = bf16_to_float(x);
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    EXPECT_EQ(bits, b << 16);
    if (std::isnan(f)) {
      const std::uint16_t back = float_to_bf16(f);
      EXPECT(std::isnan(bf16_to_float(back)));
      EXPECT_EQ(back & 0x8000u, b & 0x8000u);
    } else {
      EXPECT_EQ(float_to_bf16(f), x);
      // Midpoint to the next pattern (same sign, finite): ties to even.
      if ((b & 0x7fff) < 0x7f7f) {
        const std::uint32_t mid = (b << 16) | 0x8000u;
        float fm;
        std::memcpy(&fm, &mid, 4);
        EXPECT_EQ(float_to_bf16(fm), std::uint16_t((b & 1) ? b + 1 : b));
        const std::uint32_t above = mid + 1, below = mid - 1;
        std::memcpy(&fm, &above, 4);
        EXPECT_EQ(float_to_bf16(fm), std::uint16_t(b + 1));
        std::memcpy(&fm, &below, 4);
        EXPECT_EQ(float_to_bf16(fm), x);
      }
    }
  }
}

// The kernels' vector conversions (vcvtph2ps, bf16 shift, tails) give the bits of
// the scalar ones for every pattern, on every tier.
NNSCOPE_TEST(kernel_conversion_exhaustive) {
  std::vector<std::uint16_t> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = std::uint16_t(i);
  for_each_isa([&](Isa isa) {
    const auto& K = attention::detail::attn_kernel();
    for (int st : {attention::detail::kStoreF16, attention::detail::kStoreBF16}) {
      for (std::size_t d : {std::size_t(100), std::size_t(7), std::size_t(65536)}) {
        const std::size_t rows = 65536 / d, rem = 65536 - rows * d;
        std::vector<const void*> ptr;
        for (std::size_t r = 0; r < rows; ++r) ptr.push_back(all.data() + r * d);
        std::vector<float> out(65536, 12345.0f);
        K.load_rows(st, ptr.data(), rows, d, out.data(), d);
        if (rem) {
          const void* p = all.data() + rows * d;
          K.load_rows(st, &p, 1, rem, out.data() + rows * d, rem);
        }
        for (std::uint32_t i = 0; i < 65536; ++i) {
          const float want = st == attention::detail::kStoreF16 ? half_to_float(std::uint16_t(i))
                                                                 : bf16_to_float(std::uint16_t(i));
          if (std::isnan(want)) {
            EXPECT(std::isnan(out[i]));
          } else if (std::memcmp(&want, &out[i], 4) != 0) {
            throw test::Failure(std::string(isa_name(isa)) + ": pattern " + std::to_string(i) + " converts to " +
                                std::to_string(out[i]) + ", want " + std::to_string(want));
          }
        }
      }
    }
  });
}

// kv.h load_rows (vectorised) == KvView::row (scalar), bit for bit, on every tier.
NNSCOPE_TEST(load_rows_matches_row) {
  for_each_isa([&](Isa isa) {
    for (Storage st : {Storage::F32, Storage::F16, Storage::BF16}) {
      const Kv kv = make_kv(st, 3, 150, 37, 7, 100.0f, 170);
      const KvView v = kv.view();
      std::vector<float> a(140 * 37), b(37);
      load_rows(v, 2, 9, 140, a.data());
      for (std::size_t t = 0; t < 140; ++t) {
        v.row(2, 9 + t, b.data());
        if (std::memcmp(a.data() + t * 37, b.data(), 37 * sizeof(float)) != 0)
          throw test::Failure(std::string(isa_name(isa)) + " " + storage_name(st) + ": row " + std::to_string(t));
      }
      EXPECT_THROWS_CODE(load_rows(v, 3, 0, 1, a.data()), ErrorCode::Shape);
      EXPECT_THROWS_CODE(load_rows(v, 0, 100, 51, a.data()), ErrorCode::Shape);
      EXPECT_THROWS_CODE(load_rows(v, 0, 0, 1, nullptr), ErrorCode::InvalidArgument);
    }
  });
}

// ---------------------------------------------------------------- dense

NNSCOPE_TEST(dense_matches_float64_reference) {
  std::vector<Case> cases;
  for (std::size_t d : {1, 3, 64, 128, 256}) {
    cases.push_back({1, 1, 1, 37, d, false, 0});       // decode, MHA
    cases.push_back({4, 2, 1, 300, d, false, 0});      // decode, GQA (rows path)
    cases.push_back({8, 1, 1, 201, d, false, 0});      // decode, G = 8
    cases.push_back({6, 1, 1, 100, d, false, 0});      // decode, G = 6 (joint rows 4 + 2)
    cases.push_back({5, 1, 1, 333, d, true, 200});     // decode, G = 5, causal: part of the keys
    cases.push_back({2, 2, 5, 130, d, false, 0});      // few queries
    cases.push_back({2, 1, 37, 203, d, true, 166});    // GQA prefill tail, causal
    cases.push_back({3, 3, 70, 150, d, true, 80});     // block path, partial lane group
    cases.push_back({6, 2, 45, 97, d, true, 52});      // G = 3 mixed into lane groups
    cases.push_back({2, 2, 3, 150, d, true, 70});      // causal rows path (a tile seen in part)
  }
  cases.push_back({1, 1, 1, 1100, 64, false, 0});      // split keys (chunks + merge)
  cases.push_back({1, 1, 1, 4100, 32, false, 0});      // 8 key chunks merged in order
  cases.push_back({1, 1, 2, 2600, 20, true, 2500});    // 5 chunks, causal rows path
  cases.push_back({2, 1, 150, 1300, 64, true, 1150});  // split keys, causal, 2 units
  cases.push_back({1, 1, 20, 20, 17, true, 0});        // causal self-attention
  cases.push_back({1, 1, 10, 5, 16, true, 0});         // queries past the last key
  for_each_isa([&](Isa isa) {
    for (Storage st : {Storage::F32, Storage::F16, Storage::BF16}) {
      uint64_t seed = 1;
      for (const Case& c : cases) {
        if (st != Storage::F32 && (c.d == 1 || c.d == 256)) continue;  // keep the run short
        const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 100 + seed);
        const Kv K = make_kv(st, c.Hkv, c.N, c.d, 200 + seed), V = make_kv(st, c.Hkv, c.N, c.d, 300 + seed);
        ++seed;
        const Run r = run_dense(q, c, K, V);
        const Ref ref = reference(q, c.Hq, c.Nq, c.d, K, V, 1.0 / std::sqrt(double(c.d)), c.causal, c.qoff);
        expect_close(r.out, r.lse, ref, 1e-5, describe(c, st, isa));
      }
    }
  });
}

NNSCOPE_TEST(dense_explicit_scale_and_null_lse) {
  const Case c{2, 1, 9, 77, 24, false, 0};
  const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 5);
  const Kv K = make_kv(Storage::F32, 1, c.N, c.d, 6), V = make_kv(Storage::F32, 1, c.N, c.d, 7);
  const Run r = run_dense(q, c, K, V, 0.37f);
  const Ref ref = reference(q, c.Hq, c.Nq, c.d, K, V, double(0.37f), false, 0);
  expect_close(r.out, r.lse, ref, 1e-5, "scale 0.37");
  // lse may be null: same outputs.
  std::vector<float> out(r.out.size());
  DenseOptions o;
  o.scale = 0.37f;
  dense_attention(Queries{q.data(), c.Hq, c.Nq, c.d}, K.view(), V.view(), o, Output{out.data(), nullptr}, {});
  EXPECT(same_bits(out, r.out));
}

NNSCOPE_TEST(dense_causal_edges) {
  for_each_isa([&](Isa) {
    // No keys at all: every output row 0, lse −Inf (causal or not).
    for (bool causal : {false, true}) {
      const Case c{2, 1, 3, 0, 8, causal, 0};
      const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 1);
      const Kv K = make_kv(Storage::F32, 1, 0, 8, 2), V = make_kv(Storage::F32, 1, 0, 8, 3);
      const Run r = run_dense(q, c, K, V);
      for (float x : r.out) EXPECT_EQ(x, 0.0f);
      for (float x : r.lse) EXPECT_EQ(x, -kInfF);
    }
    // Offset past the last key (also near SIZE_MAX: no wrap-around): identical to
    // non-causal, bit for bit.
    for (std::size_t nq : {1, 40})
      for (std::size_t off : {std::size_t(300), std::numeric_limits<std::size_t>::max() - 5}) {
      const Case c{2, 2, nq, 300, 32, true, off};
      Case nc = c;
      nc.causal = false;
      const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 11);
      const Kv K = make_kv(Storage::F16, 2, 300, 32, 12), V = make_kv(Storage::F16, 2, 300, 32, 13);
      const Run a = run_dense(q, c, K, V), b = run_dense(q, nc, K, V);
      EXPECT(same_bits(a.out, b.out));
      EXPECT(same_bits(a.lse, b.lse));
    }
    // Query 0 with offset 0 sees exactly key 0: output = v_0, lse = logit_0.
    {
      const Case c{1, 1, 4, 9, 5, true, 0};
      const std::vector<float> q = gaussian(c.Nq * c.d, 21);
      const Kv K = make_kv(Storage::F32, 1, 9, 5, 22), V = make_kv(Storage::F32, 1, 9, 5, 23);
      const Run r = run_dense(q, c, K, V);
      for (std::size_t x = 0; x < 5; ++x) EXPECT_NEAR(r.out[x], V.f[x], 1e-6);
      double s = 0;
      for (std::size_t x = 0; x < 5; ++x) s += double(q[x]) * K.f[x];
      EXPECT_NEAR(r.lse[0], s / std::sqrt(5.0), 1e-5);
    }
  });
}

// Views with spare capacity per head (head_stride > tokens) read only their rows.
NNSCOPE_TEST(dense_head_stride_view) {
  const Case c{4, 2, 33, 150, 40, true, 117};
  const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 31);
  for (Storage st : {Storage::F32, Storage::BF16}) {
    const Kv Kc = make_kv(st, 2, 150, 40, 32), Vc = make_kv(st, 2, 150, 40, 33);
    const Kv Ks = make_kv(st, 2, 150, 40, 32, 1.0f, 211), Vs = make_kv(st, 2, 150, 40, 33, 1.0f, 199);
    const Run a = run_dense(q, c, Kc, Vc), b = run_dense(q, c, Ks, Vs);
    EXPECT(same_bits(a.out, b.out));
    EXPECT(same_bits(a.lse, b.lse));
    for (float x : b.out) EXPECT(std::isfinite(x));
  }
}

// Dense over N keys equals the LSE merge of dense over [0, s) and [s, N), for
// several split points, merged in both orders.
NNSCOPE_TEST(lse_merge_of_key_splits) {
  for_each_isa([&](Isa isa) {
    for (Storage st : {Storage::F32, Storage::F16}) {
      const std::size_t Hq = 4, Hkv = 2, Nq = 3, N = 1500, d = 64;
      const std::vector<float> q = gaussian(Hq * Nq * d, 41);
      const Kv K = make_kv(st, Hkv, N, d, 42), V = make_kv(st, Hkv, N, d, 43);
      const Case full{Hq, Hkv, Nq, N, d, false, 0};
      const Run whole = run_dense(q, full, K, V);
      for (std::size_t s : {1, 63, 64, 513, 750, 1499}) {
        // Views of keys [0, s) and [s, N) of the same buffers.
        KvView k1 = K.view(), v1 = V.view(), k2 = K.view(), v2 = V.view();
        k1.tokens = v1.tokens = s;
        k1.head_stride = v1.head_stride = N;
        k2.tokens = v2.tokens = N - s;
        k2.head_stride = v2.head_stride = N;
        const std::size_t off = s * d * storage_bytes(st);
        k2.data = static_cast<const char*>(k2.data) + off;
        v2.data = static_cast<const char*>(v2.data) + off;
        Run a, b;
        a.out.resize(Hq * Nq * d);
        a.lse.resize(Hq * Nq);
        b = a;
        const Queries qq{q.data(), Hq, Nq, d};
        dense_attention(qq, k1, v1, {}, Output{a.out.data(), a.lse.data()}, {});
        dense_attention(qq, k2, v2, {}, Output{b.out.data(), b.lse.data()}, {});
        Run ab = a, ba = b;
        merge_partials(Hq * Nq, d, ab.out.data(), ab.lse.data(), b.out.data(), b.lse.data());
        merge_partials(Hq * Nq, d, ba.out.data(), ba.lse.data(), a.out.data(), a.lse.data());
        for (const Run* m : {&ab, &ba}) {
          for (std::size_t i = 0; i < whole.out.size(); ++i)
            if (!(std::fabs(m->out[i] - whole.out[i]) <= 2e-6 * (1 + std::fabs(whole.out[i]))))
              throw test::Failure(std::string(isa_name(isa)) + " split " + std::to_string(s) + ": out " +
                                  std::to_string(m->out[i]) + " vs " + std::to_string(whole.out[i]));
          for (std::size_t i = 0; i < whole.lse.size(); ++i) EXPECT_NEAR(m->lse[i], whole.lse[i], 2e-6);
        }
      }
    }
  });
}

NNSCOPE_TEST(merge_partials_edges) {
  const std::size_t d = 3;
  // Row 0: both −Inf → (0, −Inf) whatever out_a held. Row 1: a = −Inf → b. Row 2:
  // b = −Inf → a unchanged. Row 3: equal lse → the average, lse + ln 2. Row 4:
  // lse 1e4 apart → the larger, exactly.
  std::vector<float> oa = {7, 8, 9, 1, 1, 1, 2, 3, 4, 1, 2, 3, 5, 5, 5};
  std::vector<float> la = {-kInfF, -kInfF, 0.5f, 10.0f, -3.0f};
  const std::vector<float> ob = {1, 1, 1, 6, 7, 8, 9, 9, 9, 3, 4, 5, 1, 1, 1};
  const std::vector<float> lb = {-kInfF, 2.0f, -kInfF, 10.0f, 1e4f};
  merge_partials(5, d, oa.data(), la.data(), ob.data(), lb.data());
  for (int c = 0; c < 3; ++c) EXPECT_EQ(oa[c], 0.0f);
  EXPECT_EQ(la[0], -kInfF);
  EXPECT(oa[3] == 6 && oa[4] == 7 && oa[5] == 8 && la[1] == 2.0f);
  EXPECT(oa[6] == 2 && oa[7] == 3 && oa[8] == 4 && la[2] == 0.5f);
  EXPECT(oa[9] == 2 && oa[10] == 3 && oa[11] == 4);
  EXPECT_NEAR(la[3], 10.0 + std::log(2.0), 1e-6);
  EXPECT(oa[12] == 1 && oa[13] == 1 && oa[14] == 1 && la[4] == 1e4f);
  // General rows against float64.
  const std::vector<float> xa = gaussian(40 * 5, 51), xb = gaussian(40 * 5, 52), ya = gaussian(40, 53, 3.0f),
                           yb = gaussian(40, 54, 3.0f);
  std::vector<float> o = xa, l = ya;
  merge_partials(40, 5, o.data(), l.data(), xb.data(), yb.data());
  for (std::size_t r = 0; r < 40; ++r) {
    const double m = std::max(ya[r], yb[r]);
    const double wa = std::exp(ya[r] - m), wb = std::exp(yb[r] - m);
    EXPECT_NEAR(l[r], m + std::log(wa + wb), 1e-6);
    for (std::size_t c = 0; c < 5; ++c)
      EXPECT_NEAR(o[r * 5 + c], (wa * xa[r * 5 + c] + wb * xb[r * 5 + c]) / (wa + wb), 1e-6);
  }
  merge_partials(0, 5, nullptr, nullptr, nullptr, nullptr);  // nothing to do
  EXPECT_THROWS_CODE(merge_partials(1, 5, o.data(), nullptr, xb.data(), yb.data()), ErrorCode::InvalidArgument);
  EXPECT_THROWS_CODE(merge_partials(1, 5, o.data(), l.data(), nullptr, yb.data()), ErrorCode::InvalidArgument);
}

// Logits far beyond the float exp range: finite outputs, exact-enough lse.
NNSCOPE_TEST(large_logits_stay_finite) {
  for_each_isa([&](Isa isa) {
    for (float mult : {30.0f, 3000.0f}) {  // logits ~ 1e2 and ~ 1e4
      for (Storage st : {Storage::F32, Storage::F16}) {
        for (std::size_t nq : {1, 40}) {
          const Case c{2, 1, nq, 700, 32, false, 0};
          const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 61, mult / 10);
          const Kv K = make_kv(st, 1, c.N, c.d, 62, 10.0f), V = make_kv(st, 1, c.N, c.d, 63);
          const Run r = run_dense(q, c, K, V);
          double maxlse = 0;
          for (float x : r.out) EXPECT(std::isfinite(x));
          for (float x : r.lse) {
            EXPECT(std::isfinite(x));
            maxlse = std::max(maxlse, double(std::fabs(x)));
          }
          EXPECT(maxlse > (mult > 100 ? 5e3 : 50));
          const Ref ref = reference(q, c.Hq, c.Nq, c.d, K, V, 1.0 / std::sqrt(32.0), false, 0);
          // Float32 logits of size L carry an absolute error ~L·1e-7, so the weights
          // a relative one of that size: compare at 1e-2 · L / 1e2.
          expect_close(r.out, r.lse, ref, mult > 100 ? 5e-2 : 1e-3,
                       std::string(isa_name(isa)) + " large logits x" + std::to_string(mult));
        }
      }
    }
  });
}

// ---------------------------------------------------------------- sparse

NNSCOPE_TEST(sparse_matches_float64_reference) {
  for_each_isa([&](Isa isa) {
    for (Storage st : {Storage::F32, Storage::F16, Storage::BF16}) {
      for (const Case& c : {Case{4, 2, 1, 500, 128, false, 0}, Case{4, 2, 1, 300, 3, false, 0},
                            Case{8, 8, 1, 2000, 64, false, 0}, Case{3, 1, 50, 400, 64, false, 0},
                            Case{6, 2, 21, 333, 17, false, 0}}) {
        const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 71);
        const Kv K = make_kv(st, c.Hkv, c.N, c.d, 72), V = make_kv(st, c.Hkv, c.N, c.d, 73);
        const std::size_t G = c.Hq / c.Hkv;
        for (bool per_qh : {true, false}) {
          std::vector<std::vector<int>> lists(per_qh ? c.Hq : c.Hkv);
          for (std::size_t g = 0; g < lists.size(); ++g)
            lists[g] = g == 1 ? std::vector<int>{} : random_subset(c.N, 0.1 + 0.2 * double(g % 3), 80 + g);
          const Sel sel = make_sel(lists, per_qh);
          std::vector<std::vector<int>> per_head(c.Hq);
          for (std::size_t h = 0; h < c.Hq; ++h) per_head[h] = lists[per_qh ? h : h / G];
          const Run r = run_sparse(q, c, K, V, sel);
          const Ref ref = reference(q, c.Hq, c.Nq, c.d, K, V, 1.0 / std::sqrt(double(c.d)), false, 0, &per_head);
          expect_close(r.out, r.lse, ref, 1e-5, describe(c, st, isa) + (per_qh ? " per-head" : " shared"));
        }
      }
    }
  });
}

// All keys selected == dense attention; shared selection == the same list given
// to every query head of the group.
NNSCOPE_TEST(sparse_all_keys_equals_dense) {
  for_each_isa([&](Isa isa) {
    for (Storage st : {Storage::F32, Storage::BF16}) {
      for (const Case& c : {Case{4, 2, 1, 1200, 64, false, 0}, Case{4, 1, 30, 257, 48, false, 0}}) {
        const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 91);
        const Kv K = make_kv(st, c.Hkv, c.N, c.d, 92), V = make_kv(st, c.Hkv, c.N, c.d, 93);
        const Run dense = run_dense(q, c, K, V);
        std::vector<int> all(c.N);
        for (std::size_t j = 0; j < c.N; ++j) all[j] = int(j);
        const Run shared = run_sparse(q, c, K, V, make_sel(std::vector<std::vector<int>>(c.Hkv, all), false));
        const Run perh = run_sparse(q, c, K, V, make_sel(std::vector<std::vector<int>>(c.Hq, all), true));
        for (const Run* r : {&shared, &perh}) {
          for (std::size_t i = 0; i < dense.out.size(); ++i)
            if (!(std::fabs(r->out[i] - dense.out[i]) <= 1e-6 * (1 + std::fabs(dense.out[i]))))
              throw test::Failure(describe(c, st, isa) + ": sparse(all) differs from dense");
          for (std::size_t i = 0; i < dense.lse.size(); ++i) EXPECT_NEAR(r->lse[i], dense.lse[i], 1e-6);
        }
        // Shared lists vs the same lists per query head (subset this time).
        const std::size_t G = c.Hq / c.Hkv;
        std::vector<std::vector<int>> grp(c.Hkv), per(c.Hq);
        for (std::size_t g = 0; g < c.Hkv; ++g) grp[g] = random_subset(c.N, 0.3, 95 + g);
        for (std::size_t h = 0; h < c.Hq; ++h) per[h] = grp[h / G];
        const Run a = run_sparse(q, c, K, V, make_sel(grp, false)), b = run_sparse(q, c, K, V, make_sel(per, true));
        for (std::size_t i = 0; i < a.out.size(); ++i)
          if (!(std::fabs(a.out[i] - b.out[i]) <= 1e-6 * (1 + std::fabs(a.out[i]))))
            throw test::Failure(describe(c, st, isa) + ": shared selection differs from per-head");
        // And a per-head selection that really differs between heads changes the result.
        std::vector<std::vector<int>> per2 = per;
        per2[0] = random_subset(c.N, 0.3, 999);
        const Run b2 = run_sparse(q, c, K, V, make_sel(per2, true));
        EXPECT(!same_bits(b.out, b2.out));
      }
    }
  });
}

// ---------------------------------------------------------------- determinism

NNSCOPE_TEST(bit_identical_across_thread_counts) {
  Restore restore;
  struct Item {
    Case c;
    Storage st;
    bool sparse;
  };
  const std::vector<Item> items = {
      {{1, 1, 1, 5000, 128, false, 0}, Storage::F32, false},   // decode, one head: key chunks
      {{8, 8, 1, 3000, 64, false, 0}, Storage::F16, false},    // decode, MHA
      {{8, 2, 1, 3000, 64, false, 0}, Storage::BF16, false},   // decode, GQA
      {{2, 1, 130, 2100, 64, true, 1970}, Storage::F32, false},  // prefill, causal
      {{4, 4, 64, 1000, 96, false, 0}, Storage::F16, false},   // prefill
      {{2, 2, 1, 4000, 128, false, 0}, Storage::F32, true},    // sparse decode, chunked
      {{4, 2, 40, 900, 64, false, 0}, Storage::F16, true},     // sparse prefill
  };
  for_each_isa([&](Isa isa) {
    for (const Item& it : items) {
      const Case& c = it.c;
      const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 101);
      const Kv K = make_kv(it.st, c.Hkv, c.N, c.d, 102), V = make_kv(it.st, c.Hkv, c.N, c.d, 103);
      std::vector<std::vector<int>> lists(c.Hkv);
      for (std::size_t g = 0; g < c.Hkv; ++g) lists[g] = random_subset(c.N, 0.5, 104 + g);
      const Sel sel = make_sel(lists, false);
      auto once = [&] { return it.sparse ? run_sparse(q, c, K, V, sel) : run_dense(q, c, K, V); };
      set_num_threads(1);
      const Run a = once();
      set_num_threads(2);
      const Run b = once();
      set_num_threads(3);
      const Run e = once();
      const Run f = once();
      const std::string what = describe(c, it.st, isa);
      if (!same_bits(a.out, b.out) || !same_bits(a.lse, b.lse) || !same_bits(a.out, e.out) ||
          !same_bits(e.out, f.out) || !same_bits(e.lse, f.lse))
        throw test::Failure(what + ": results depend on the thread count");
      for (float x : a.out) EXPECT(std::isfinite(x));
    }
  });
}

NNSCOPE_TEST(cancellation) {
  const Case c{4, 4, 1, 4000, 64, false, 0};
  const std::vector<float> q = gaussian(c.Hq * c.Nq * c.d, 111);
  const Kv K = make_kv(Storage::F32, 4, 4000, 64, 112), V = make_kv(Storage::F32, 4, 4000, 64, 113);
  OpContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->cancel();
  EXPECT_THROWS_CODE(run_dense(q, c, K, V, 0, ctx), ErrorCode::Cancelled);
}

// ---------------------------------------------------------------- validation

NNSCOPE_TEST(validation_errors) {
  const std::size_t d = 8;
  const std::vector<float> q = gaussian(4 * 2 * d, 121);
  const Kv K = make_kv(Storage::F32, 2, 10, d, 122), V = make_kv(Storage::F32, 2, 10, d, 123);
  std::vector<float> out(4 * 2 * 1100), lse(8);
  const Output o{out.data(), lse.data()};
  const Queries qq{q.data(), 4, 2, d};
  const OpContext ctx;
  auto dense = [&](Queries qv, KvView kv, KvView vv, DenseOptions opt = {}, Output ov = {}) {
    if (!ov.out) ov = o;
    dense_attention(qv, kv, vv, opt, ov, ctx);
  };
  dense(qq, K.view(), V.view());  // the valid call works

  KvView k = K.view(), v = V.view();
  Queries bad = qq;
  bad.d = 0;
  KvView k0 = k, v0 = v;
  k0.d = v0.d = 0;
  EXPECT_THROWS_CODE(dense(bad, k0, v0), ErrorCode::InvalidArgument);  // d = 0
  std::vector<float> big(4 * 2 * 1025);
  Queries qb{big.data(), 4, 2, 1025};
  KvView kb = k, vb = v;
  kb.d = vb.d = 1025;
  EXPECT_THROWS_CODE(dense(qb, kb, vb), ErrorCode::InvalidArgument);  // d > 1024
  bad = qq;
  bad.heads = 3;
  EXPECT_THROWS_CODE(dense(bad, k, v), ErrorCode::Shape);  // Hq % Hkv != 0
  bad = qq;
  bad.d = 7;
  EXPECT_THROWS_CODE(dense(bad, k, v), ErrorCode::Shape);  // d mismatch q / k
  KvView vx = v;
  vx.d = 7;
  EXPECT_THROWS_CODE(dense(qq, k, vx), ErrorCode::Shape);  // d mismatch k / v
  vx = v;
  vx.tokens = 9;
  EXPECT_THROWS_CODE(dense(qq, k, vx), ErrorCode::Shape);  // token mismatch
  vx = v;
  vx.heads = 1;
  EXPECT_THROWS_CODE(dense(qq, k, vx), ErrorCode::Shape);  // head mismatch
  KvView kx = k;
  kx.heads = 0;
  vx = v;
  vx.heads = 0;
  EXPECT_THROWS_CODE(dense(qq, kx, vx), ErrorCode::Shape);  // no KV heads
  kx = k;
  kx.head_stride = 5;
  EXPECT_THROWS_CODE(dense(qq, kx, v), ErrorCode::Shape);  // stride < tokens
  kx = k;
  kx.storage = static_cast<Storage>(7);
  EXPECT_THROWS_CODE(dense(qq, kx, v), ErrorCode::InvalidArgument);
  bad = qq;
  bad.data = nullptr;
  EXPECT_THROWS_CODE(dense(bad, k, v), ErrorCode::InvalidArgument);  // null queries
  kx = k;
  kx.data = nullptr;
  EXPECT_THROWS_CODE(dense(qq, kx, v), ErrorCode::InvalidArgument);  // null keys
  vx = v;
  vx.data = nullptr;
  EXPECT_THROWS_CODE(dense(qq, k, vx), ErrorCode::InvalidArgument);  // null values
  EXPECT_THROWS_CODE(dense_attention(qq, k, v, {}, Output{nullptr, lse.data()}, ctx), ErrorCode::InvalidArgument);
  DenseOptions nan_scale;
  nan_scale.scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROWS_CODE(dense(qq, k, v, nan_scale), ErrorCode::InvalidArgument);
  kx = k;
  kx.tokens = vx.tokens = std::size_t(1) << 62;
  vx = v;
  vx.tokens = kx.tokens;
  EXPECT_THROWS_CODE(dense(qq, kx, vx), ErrorCode::TooLarge);  // size overflows
  // Empty problems are fine (nothing written) and need no data.
  dense_attention(Queries{nullptr, 0, 0, d}, KvView{nullptr, Storage::F32, 0, 0, d, 0}, KvView{nullptr, Storage::F32, 0, 0, d, 0},
                  {}, Output{}, ctx);

  // Sparse: CSR validation.
  auto sparse = [&](const std::vector<std::int32_t>& idx, const std::vector<std::size_t>& off, bool per_qh) {
    sparse_attention(qq, k, v, Selection{idx.data(), off.data(), per_qh}, 0, o, ctx);
  };
  sparse({0, 3, 9, 1, 2}, {0, 3, 5}, false);  // valid
  sparse({0, 3, 9, 1, 2, 5, 6, 7}, {0, 3, 5, 6, 8}, true);
  EXPECT_THROWS_CODE(sparse({0, 3, 9, 1, 2}, {0, 3, 2}, false), ErrorCode::InvalidArgument);   // offsets decrease
  EXPECT_THROWS_CODE(sparse({0, 9, 3, 1, 2}, {0, 3, 5}, false), ErrorCode::InvalidArgument);   // not ascending
  EXPECT_THROWS_CODE(sparse({0, 3, 3, 1, 2}, {0, 3, 5}, false), ErrorCode::InvalidArgument);   // duplicate
  EXPECT_THROWS_CODE(sparse({0, 3, 10, 1, 2}, {0, 3, 5}, false), ErrorCode::InvalidArgument);  // == N
  EXPECT_THROWS_CODE(sparse({-1, 3, 9, 1, 2}, {0, 3, 5}, false), ErrorCode::InvalidArgument);  // negative
  EXPECT_THROWS_CODE(sparse_attention(qq, k, v, Selection{nullptr, nullptr, false}, 0, o, ctx),
                     ErrorCode::InvalidArgument);
  const std::vector<std::size_t> off = {0, 2, 4};
  EXPECT_THROWS_CODE(sparse_attention(qq, k, v, Selection{nullptr, off.data(), false}, 0, o, ctx),
                     ErrorCode::InvalidArgument);
  bad = qq;
  bad.heads = 3;
  const std::vector<std::int32_t> ix = {0, 1, 2, 3};
  EXPECT_THROWS_CODE(sparse_attention(bad, k, v, Selection{ix.data(), off.data(), false}, 0, o, ctx),
                     ErrorCode::Shape);
}
