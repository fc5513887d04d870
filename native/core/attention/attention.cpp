// nnscope core, attention family: dense and sparse attention on the CPU (the
// drivers and the portable generic-tier kernels) and the exact LSE merge. The
// AVX2 / AVX-512 kernels are in attn_avx2.cpp / attn_avx512.cpp, all tiers being
// instantiations of attn_impl.h (contracts in attn_kernels.h).
//
// Work decomposition. Query rows that share a KV head are processed together so
// each key/value row is read once per group: dense and sparse-shared attention
// group the G = Hq/Hkv query heads of a KV head, token-major (row r = token
// r / G, head r % G). A "unit" is such a row set, cut into superblocks of ≤ 128
// rows (fewer for d > 256), with the key list of its group. A unit with few rows
// (≤ rows_max of the tier: decode) takes the rows path, which streams keys and
// values once in their storage (tiles of 256 keys, software prefetch 2 KiB
// ahead), converting in registers, with the rows of a GQA group taken jointly
// so every K/V vector is loaded and converted once per group; larger units
// take the block path: lane groups of vec or 2·vec queries (transposed, pre-
// scaled), key tiles of 64 rows converted / gathered to float32 when needed, the
// logit tile and the value update computed by register-blocked GEMM micro-
// kernels with the online softmax in between.
//
// When there are fewer than 16 units (decode with few heads, a single long
// prefill head) each unit's keys are split into up to ⌈16/units⌉ chunks of ≥ 512
// keys, computed as independent tasks and merged with the exact LSE merge in
// chunk order. Every decision depends on the sizes and the ISA tier only, never
// on the thread count, so results are bit-identical for any pool size.
#include "attention/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention/attn_impl.h"
#include "attention/attn_kernels.h"
#include "attention/gpu.h"
#include "base/buffer.h"
#include "base/cpu.h"
#include "base/error.h"
#include "base/threadpool.h"

namespace nnscope::attention {
namespace detail {
namespace {

// ---------------------------------------------------------------- generic tier
// Eight float lanes in an array; the element loops vectorise at the baseline ISA.
struct GV {
  float v[8];
};

struct Generic {
  using V = GV;
  static constexpr std::size_t N = 8;
  static constexpr int MR1 = 4, MR2 = 4;
  static constexpr int RJ = 1, JCB = 1;  // no joint rows

  static V zero() {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = 0.0f;
    return r;
  }
  static V set1(float x) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = x;
    return r;
  }
  static V load(const float* p) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = p[i];
    return r;
  }
  static V loadn(const float* p, std::size_t n) {
    V r = zero();
    for (std::size_t i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  static void store(float* p, const V& x) {
    for (int i = 0; i < 8; ++i) p[i] = x.v[i];
  }
  static void storen(float* p, const V& x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = x.v[i];
  }
  static V add(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  static V sub(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] - b.v[i];
    return r;
  }
  static V mul(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] * b.v[i];
    return r;
  }
  static V max(const V& a, const V& b) {  // NaN in a → b, like maxps
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return r;
  }
  static V fma(const V& a, const V& b, const V& c) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
  static V load_h(const std::uint16_t* p) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = half_to_float(p[i]);
    return r;
  }
  static V loadn_h(const std::uint16_t* p, std::size_t n) {
    V r = zero();
    for (std::size_t i = 0; i < n; ++i) r.v[i] = half_to_float(p[i]);
    return r;
  }
  static V load_b(const std::uint16_t* p) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = bf16_to_float(p[i]);
    return r;
  }
  static V loadn_b(const std::uint16_t* p, std::size_t n) {
    V r = zero();
    for (std::size_t i = 0; i < n; ++i) r.v[i] = bf16_to_float(p[i]);
    return r;
  }
  static V exp2(const V& x) {
    V r;
    for (int i = 0; i < 8; ++i) {
      const float xc = x.v[i] > -127.0f ? x.v[i] : -127.0f;
      const float n = (xc + 12582912.0f) - 12582912.0f;  // round to nearest (|x| < 2^22)
      const float f = xc - n;
      float p = kExp2C[7];
      for (int k = 6; k >= 0; --k) p = p * f + kExp2C[k];
      const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<int>(n) + 127) << 23;
      float e;
      std::memcpy(&e, &bits, 4);
      r.v[i] = p * e;
    }
    return r;
  }
  static float hsum(const V& x) {
    return ((x.v[0] + x.v[4]) + (x.v[1] + x.v[5])) + ((x.v[2] + x.v[6]) + (x.v[3] + x.v[7]));
  }
  static void hsum8(const V* x, float* out) {
    for (int t = 0; t < 8; ++t) out[t] = hsum(x[t]);
  }
  static float hmax(const V& x) {
    float m = x.v[0];
    for (int i = 1; i < 8; ++i) m = x.v[i] > m ? x.v[i] : m;
    return m;
  }
  static float first(const V& x) { return x.v[0]; }
  static void prefetch(const char* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
  }
  static V mask_keys(const V& x, int j, const std::int32_t* vis) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = vis[i] > j ? x.v[i] : kNegInfF;
    return r;
  }
  static V ninf_to_zero(const V& x) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = x.v[i] == kNegInfF ? 0.0f : x.v[i];
    return r;
  }
};

const AttnKernel kGeneric = {"generic", 8, 4, load_rows<Generic>, block_step<Generic>, rows_step<Generic>};

}  // namespace

const AttnKernel& attn_kernel_generic() { return kGeneric; }
const AttnKernel& attn_kernel() { return select_kernel(attn_kernel_avx512, attn_kernel_avx2, kGeneric); }

}  // namespace detail

namespace {

using detail::AttnKernel;

constexpr std::size_t kMaxD = 1024;
constexpr std::size_t kTile = 64;        // keys per tile of the block path (chunks are multiples)
constexpr std::size_t kRowsTile = 256;   // keys per tile of the rows path (fewer bubbles in the streams)
// Rows path over contiguous keys: software prefetch this far ahead of the K / V
// rows being read. The hardware streamer stops at 4 KiB pages and alternates
// between the K and V streams; measured on a 2-core Cascade Lake, dense decode
// went from 0.78 to 1.03 of the summing bandwidth (f16) and GQA from 0.68 to 0.94
// (f32), with 1-4 KiB all alike.
constexpr std::size_t kPrefetchAhead = 2048;
constexpr std::size_t kBlockRows = 128;  // query rows per block-path unit (d ≤ 256)
constexpr std::size_t kMinTasks = 16;    // fewer units than this: split the keys
constexpr std::size_t kMinChunk = 512;   // keys per chunk at least
constexpr double kLog2e = 1.4426950408889634074;
constexpr double kLn2 = 0.69314718055994530942;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- validation
void check_storage(const KvView& x, const char* name) {
  NNSCOPE_CHECK(x.storage == Storage::F32 || x.storage == Storage::F16 || x.storage == Storage::BF16,
                ErrorCode::InvalidArgument, std::string(name) + ": unknown storage type");
}

// Size of a view's backing array in elements (overflow → TooLarge).
std::size_t view_elems(const KvView& x) {
  const std::size_t stride = x.head_stride ? x.head_stride : x.tokens;
  return checked_mul(checked_mul(checked_mul(x.heads, stride), x.d), storage_bytes(x.storage));
}

void check_problem(const char* op, const Queries& q, const KvView& k, const KvView& v, const Output& out,
                   float scale) {
  const std::string p = std::string(op) + ": ";
  check_storage(k, "keys");
  check_storage(v, "values");
  NNSCOPE_CHECK(q.d == k.d && q.d == v.d, ErrorCode::Shape,
                p + "head dimension mismatch (queries " + std::to_string(q.d) + ", keys " + std::to_string(k.d) +
                    ", values " + std::to_string(v.d) + ")");
  NNSCOPE_CHECK(q.d >= 1, ErrorCode::InvalidArgument, p + "head dimension d must be at least 1");
  NNSCOPE_CHECK(q.d <= kMaxD, ErrorCode::InvalidArgument,
                p + "head dimension d = " + std::to_string(q.d) + " exceeds the supported maximum 1024");
  NNSCOPE_CHECK(k.heads == v.heads && k.tokens == v.tokens, ErrorCode::Shape,
                p + "keys and values must have the same heads and tokens");
  NNSCOPE_CHECK(k.head_stride == 0 || k.head_stride >= k.tokens, ErrorCode::Shape,
                p + "keys: head_stride is smaller than the token count");
  NNSCOPE_CHECK(v.head_stride == 0 || v.head_stride >= v.tokens, ErrorCode::Shape,
                p + "values: head_stride is smaller than the token count");
  if (q.heads > 0) {
    NNSCOPE_CHECK(k.heads > 0, ErrorCode::Shape, p + "no key/value heads for " + std::to_string(q.heads) +
                                                     " query heads");
    NNSCOPE_CHECK(q.heads % k.heads == 0, ErrorCode::Shape,
                  p + "query heads (" + std::to_string(q.heads) + ") must be a multiple of key/value heads (" +
                      std::to_string(k.heads) + ")");
  }
  NNSCOPE_CHECK(std::isfinite(scale), ErrorCode::InvalidArgument, p + "scale must be finite");
  const std::size_t qn = checked_mul(checked_mul(q.heads, q.tokens), q.d);
  checked_mul(qn, sizeof(float));
  NNSCOPE_CHECK(qn == 0 || q.data, ErrorCode::InvalidArgument, p + "queries: null data");
  NNSCOPE_CHECK(qn == 0 || out.out, ErrorCode::InvalidArgument, p + "output: null data");
  const std::size_t kn = view_elems(k), vn = view_elems(v);
  NNSCOPE_CHECK(kn == 0 || k.data, ErrorCode::InvalidArgument, p + "keys: null data");
  NNSCOPE_CHECK(vn == 0 || v.data, ErrorCode::InvalidArgument, p + "values: null data");
}

// ---------------------------------------------------------------- plan
struct Problem {
  const float* q = nullptr;
  std::size_t Hq = 0, Nq = 0, d = 0, Hkv = 0, G = 1, N = 0;
  KvView k, v;
  float qs = 0;  // scale · log2(e)
  bool causal = false;
  std::size_t qoff = 0;
  bool sparse = false;
  Output out;
};

struct Unit {
  std::size_t kvh = 0, qh0 = 0, ge = 1;  // KV head; rows r → head qh0 + r % ge, token i0 + r / ge
  std::size_t i0 = 0, ntok = 0, rows = 0;
  const std::int32_t* list = nullptr;  // sparse: the key list; dense: keys are 0, 1, ...
  std::size_t klen = 0;                // keys considered: list / key positions [0, klen)
  std::size_t kfull = 0;               // positions [0, kfull) are seen by every row
  std::size_t chunks = 1, chunk_len = 0;
  std::size_t part = 0;  // first row of this unit's partials (chunks > 1)
  bool block = false;
  std::size_t lanes = 0;
};

// Keys seen by the query at absolute position qoff + i: min(N, qoff + i + 1), saturating.
std::size_t causal_count(std::size_t qoff, std::size_t i, std::size_t N) {
  return qoff >= N || i >= N - qoff ? N : qoff + i + 1;
}

std::size_t rows_per_block(std::size_t d, std::size_t lanes2) {
  std::size_t r = kBlockRows;
  if (d > 256) r = std::max(lanes2, kBlockRows * 256 / d / lanes2 * lanes2);
  return r;
}

// Cuts group (kvh, qh0, ge) into units over tokens and appends them.
void add_units(std::vector<Unit>& units, const Problem& P, const AttnKernel& K, std::size_t kvh, std::size_t qh0,
               std::size_t ge, const std::int32_t* list, std::size_t count) {
  if (P.Nq == 0) return;
  const std::size_t total_rows = ge * P.Nq;
  std::size_t tpu;
  if (total_rows <= K.rows_max) tpu = P.Nq;
  else tpu = std::max<std::size_t>(1, rows_per_block(P.d, 2 * K.vec) / ge);
  for (std::size_t i0 = 0; i0 < P.Nq; i0 += tpu) {
    Unit u;
    u.kvh = kvh;
    u.qh0 = qh0;
    u.ge = ge;
    u.i0 = i0;
    u.ntok = std::min(tpu, P.Nq - i0);
    u.rows = u.ntok * ge;
    u.list = list;
    if (P.sparse) {
      u.klen = u.kfull = count;
    } else if (P.causal) {
      u.klen = causal_count(P.qoff, i0 + u.ntok - 1, P.N);
      u.kfull = causal_count(P.qoff, i0, P.N);
    } else {
      u.klen = u.kfull = P.N;
    }
    u.block = u.rows > K.rows_max;
    u.lanes = u.rows <= K.vec ? K.vec : 2 * K.vec;
    units.push_back(u);
  }
}

// Splits keys into chunks when there are few units; assigns partial-buffer rows.
std::size_t plan_chunks(std::vector<Unit>& units) {
  const std::size_t nu = units.size();
  const std::size_t want = nu >= kMinTasks ? 1 : ceil_div(kMinTasks, std::max<std::size_t>(nu, 1));
  std::size_t part = 0;
  for (Unit& u : units) {
    std::size_t c = std::min(want, std::max<std::size_t>(1, u.klen / kMinChunk));
    if (c > 1) {
      u.chunk_len = ceil_div(ceil_div(u.klen, c), kTile) * kTile;
      c = ceil_div(u.klen, u.chunk_len);
    }
    if (c <= 1) {
      c = 1;
      u.chunk_len = u.klen;
    }
    u.chunks = c;
    if (c > 1) {
      u.part = part;
      part += c * u.rows;
    }
  }
  return part;
}

// ---------------------------------------------------------------- scratch
struct Scratch {
  AlignedBuffer<float> qt, ot, m, l, s, kt, vt;
  std::vector<const void*> kp, vp;
  std::vector<std::int32_t> vis;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

inline void prefetch_row(const void* p, std::size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = static_cast<const char*>(p);
  for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
#else
  (void)p;
  (void)bytes;
#endif
}

// Exact merge of (ob, lb) into (oa, la), in double.
void merge_row(std::size_t d, float* oa, float* la, const float* ob, const float* lb) {
  const float a = *la, b = *lb;
  if (b == kNegInf) {
    if (a == kNegInf)
      for (std::size_t c = 0; c < d; ++c) oa[c] = 0.0f;
    return;
  }
  if (a == kNegInf) {
    for (std::size_t c = 0; c < d; ++c) oa[c] = ob[c];
    *la = b;
    return;
  }
  const double m = a > b ? double(a) : double(b);
  const double wa = std::exp(double(a) - m), wb = std::exp(double(b) - m);
  const double s = wa + wb;
  const double ca = wa / s, cb = wb / s;
  for (std::size_t c = 0; c < d; ++c) oa[c] = static_cast<float>(ca * double(oa[c]) + cb * double(ob[c]));
  *la = static_cast<float>(m + std::log(s));
}

// Writes a finished row: out = acc / l, lse = (m + log2 l)·ln 2; (0, −Inf) when no key was seen.
template <typename Get>
void finish_row(std::size_t d, float m, float l, const Get& acc, float* o, float* lse) {
  if (l > 0.0f) {
    const float inv = 1.0f / l;
    for (std::size_t c = 0; c < d; ++c) o[c] = acc(c) * inv;
    if (lse) *lse = static_cast<float>((double(m) + std::log2(double(l))) * kLn2);
  } else {
    for (std::size_t c = 0; c < d; ++c) o[c] = 0.0f;
    if (lse) *lse = kNegInf;
  }
}

// One task: unit u, key chunk c.
void run_task(const Problem& P, const Unit& u, std::size_t chunk, const AttnKernel& K, const OpContext& ctx,
              float* pout, float* plse) {
  ctx.check();
  Scratch& S = scratch();
  const std::size_t d = P.d, R = u.rows;
  const std::size_t k0 = chunk * u.chunk_len, k1 = std::min(u.klen, k0 + u.chunk_len);
  const int ks = static_cast<int>(P.k.storage), vs = static_cast<int>(P.v.storage);
  const std::size_t kb = storage_bytes(P.k.storage), vb = storage_bytes(P.v.storage);
  const char* kbase = static_cast<const char*>(P.k.data);
  const char* vbase = static_cast<const char*>(P.v.data);
  const bool direct = !P.sparse && P.k.storage == Storage::F32 && P.v.storage == Storage::F32;

  auto head_of = [&](std::size_t r) { return u.qh0 + r % u.ge; };
  auto token_of = [&](std::size_t r) { return u.i0 + r / u.ge; };
  auto qrow = [&](std::size_t r) { return P.q + (head_of(r) * P.Nq + token_of(r)) * d; };
  // Keys (positions) row r sees: all of the list, or the causal count.
  auto seen = [&](std::size_t r) {
    return P.causal && !P.sparse ? causal_count(P.qoff, token_of(r), P.N) : u.klen;
  };

  const float qs = P.qs;
  std::size_t L = 0, ng = 0;
  if (u.block) {
    L = u.lanes;
    ng = ceil_div(R, L);
    S.qt.resize(ng * d * L);
    S.ot.resize(ng * d * L);
    S.m.resize(ng * L);
    S.l.resize(ng * L);
    S.s.resize(kTile * L);
    for (std::size_t g = 0; g < ng; ++g) {
      float* qt = S.qt.data() + g * d * L;
      for (std::size_t lane = 0; lane < L; ++lane) {
        const std::size_t r = g * L + lane;
        if (r < R) {
          const float* qr = qrow(r);
          for (std::size_t p = 0; p < d; ++p) qt[p * L + lane] = qr[p] * qs;
        } else {
          for (std::size_t p = 0; p < d; ++p) qt[p * L + lane] = 0.0f;
        }
      }
    }
    std::fill(S.ot.data(), S.ot.data() + ng * d * L, 0.0f);
    std::fill(S.m.data(), S.m.data() + ng * L, kNegInf);
    std::fill(S.l.data(), S.l.data() + ng * L, 0.0f);
    if (!direct) {
      S.kt.resize(kTile * d);
      S.vt.resize(kTile * d);
    }
    S.vis.resize(L);
  } else {
    S.qt.resize(R * d);
    S.ot.resize(R * d);
    S.m.resize(R);
    S.l.resize(R);
    S.s.resize(R * (kRowsTile + K.vec));
    for (std::size_t r = 0; r < R; ++r) {
      const float* qr = qrow(r);
      float* qd = S.qt.data() + r * d;
      for (std::size_t p = 0; p < d; ++p) qd[p] = qr[p] * qs;
    }
    std::fill(S.ot.data(), S.ot.data() + R * d, 0.0f);
    std::fill(S.m.data(), S.m.data() + R, kNegInf);
    std::fill(S.l.data(), S.l.data() + R, 0.0f);
    S.vis.resize(R);
  }
  const std::size_t tile = u.block ? kTile : kRowsTile;
  S.kp.resize(tile);
  S.vp.resize(tile);

  const std::size_t krow_bytes = d * kb, vrow_bytes = d * vb;
  auto key_at = [&](std::size_t pos) {
    return u.list ? static_cast<std::size_t>(u.list[pos]) : pos;
  };
  const char* khead = kbase + P.k.row_index(u.kvh, 0) * kb;  // row 0 of this KV head
  const char* vhead = vbase + P.v.row_index(u.kvh, 0) * vb;
  auto kptr = [&](std::size_t key) { return khead + key * krow_bytes; };
  auto vptr = [&](std::size_t key) { return vhead + key * vrow_bytes; };

  for (std::size_t t0 = k0; t0 < k1; t0 += tile) {
    ctx.check();
    const std::size_t nk = std::min(tile, k1 - t0);
    const bool partial = t0 + nk > u.kfull;
    const void** kp = S.kp.data();
    const void** vp = S.vp.data();
    if (u.list) {
      const std::int32_t* ix = u.list + t0;
      for (std::size_t j = 0; j < nk; ++j) {
        kp[j] = kptr(static_cast<std::size_t>(ix[j]));
        vp[j] = vptr(static_cast<std::size_t>(ix[j]));
      }
    } else if (!(u.block && direct)) {
      const char* kr = kptr(t0);
      const char* vr = vptr(t0);
      for (std::size_t j = 0; j < nk; ++j, kr += krow_bytes, vr += vrow_bytes) {
        kp[j] = kr;
        vp[j] = vr;
      }
    }
    // Block path over gathered rows: fetch the next tile's while this one
    // computes (the lane groups take long enough to hide it). The rows path
    // streams its tile once; there the loads already keep the line-fill buffers
    // busy and prefetching measured no gain.
    if (P.sparse && u.block) {
      const std::size_t n1 = std::min(k1, t0 + nk + kTile);
      for (std::size_t pos = t0 + nk; pos < n1; ++pos) {
        const std::size_t key = key_at(pos);
        prefetch_row(kptr(key), krow_bytes);
        prefetch_row(vptr(key), vrow_bytes);
      }
    }
    if (u.block) {
      const float *kt, *vt;
      if (direct) {
        kt = P.k.f32(u.kvh, t0);
        vt = P.v.f32(u.kvh, t0);
      } else {
        K.load_rows(ks, S.kp.data(), nk, d, S.kt.data(), d);
        K.load_rows(vs, S.vp.data(), nk, d, S.vt.data(), d);
        kt = S.kt.data();
        vt = S.vt.data();
      }
      for (std::size_t g = 0; g < ng; ++g) {
        const std::int32_t* vis = nullptr;
        if (partial) {
          std::int32_t most = 0;
          for (std::size_t lane = 0; lane < L; ++lane) {
            const std::size_t r = g * L + lane;
            std::size_t n = 0;
            if (r < R) {
              const std::size_t sr = seen(r);
              n = sr <= t0 ? 0 : std::min(nk, sr - t0);
            }
            S.vis[lane] = static_cast<std::int32_t>(n);
            most = std::max(most, S.vis[lane]);
          }
          if (most == 0) continue;
          vis = S.vis.data();
        }
        detail::BlockStep b;
        b.d = d;
        b.nk = nk;
        b.lanes = L;
        b.k = kt;
        b.ldk = d;
        b.v = vt;
        b.ldv = d;
        b.qt = S.qt.data() + g * d * L;
        b.vis = vis;
        b.m = S.m.data() + g * L;
        b.l = S.l.data() + g * L;
        b.ot = S.ot.data() + g * d * L;
        b.s = S.s.data();
        K.block_step(b);
      }
    } else {
      const std::int32_t* vis = nullptr;
      if (partial) {
        for (std::size_t r = 0; r < R; ++r) {
          const std::size_t sr = seen(r);
          S.vis[r] = static_cast<std::int32_t>(sr <= t0 ? 0 : std::min(nk, sr - t0));
        }
        vis = S.vis.data();
      }
      detail::RowsStep a;
      a.d = d;
      a.nk = nk;
      a.rows = R;
      a.sk = ks;
      a.sv = vs;
      a.krows = S.kp.data();
      a.vrows = S.vp.data();
      a.q = S.qt.data();
      a.vis = vis;
      a.m = S.m.data();
      a.l = S.l.data();
      a.o = S.ot.data();
      a.s = S.s.data();
      a.pf_dist = P.sparse ? 0 : kPrefetchAhead;
      K.rows_step(a);
    }
  }

  // Finish: normalised rows to the output (one chunk) or to the partial buffers.
  for (std::size_t r = 0; r < R; ++r) {
    float *o, *lse;
    if (u.chunks == 1) {
      const std::size_t row = head_of(r) * P.Nq + token_of(r);
      o = P.out.out + row * d;
      lse = P.out.lse ? P.out.lse + row : nullptr;
    } else {
      const std::size_t row = u.part + chunk * R + r;
      o = pout + row * d;
      lse = plse + row;
    }
    if (u.block) {
      const std::size_t g = r / L, lane = r % L;
      const float* ot = S.ot.data() + g * d * L;
      finish_row(d, S.m[g * L + lane], S.l[g * L + lane], [&](std::size_t c) { return ot[c * L + lane]; }, o,
                 lse);
    } else {
      const float* acc = S.ot.data() + r * d;
      finish_row(d, S.m[r], S.l[r], [&](std::size_t c) { return acc[c]; }, o, lse);
    }
  }
}

void run(const Problem& P, std::vector<Unit>& units, const OpContext& ctx) {
  const AttnKernel& K = detail::attn_kernel();
  const std::size_t prow = plan_chunks(units);
  AlignedBuffer<float> pout(checked_mul(prow, P.d)), plse(prow);
  std::vector<std::pair<std::size_t, std::size_t>> tasks;
  for (std::size_t i = 0; i < units.size(); ++i)
    for (std::size_t c = 0; c < units[i].chunks; ++c) tasks.emplace_back(i, c);
  if (tasks.empty()) return;
  // Largest tasks first (causal units differ in length) so the pool's dynamic
  // claiming balances; the order does not change any result.
  auto work = [&](const std::pair<std::size_t, std::size_t>& t) {
    const Unit& u = units[t.first];
    const std::size_t k0 = t.second * u.chunk_len;
    return (std::min(u.klen, k0 + u.chunk_len) - k0) * u.rows;
  };
  std::stable_sort(tasks.begin(), tasks.end(), [&](const auto& a, const auto& b) { return work(a) > work(b); });
  ctx.check();
  auto task = [&](std::size_t t) {
    run_task(P, units[tasks[t].first], tasks[t].second, K, ctx, pout.data(), plse.data());
  };
  if (tasks.size() == 1 || num_threads() == 1) {
    for (std::size_t t = 0; t < tasks.size(); ++t) task(t);
  } else {
    ThreadPool::global().run(tasks.size(), task);
  }
  if (prow == 0) return;
  // Merge the chunks of split units, in chunk order (rows are independent, so any
  // row partition gives the same bits).
  const std::size_t d = P.d;
  constexpr std::size_t kMergeRows = 16;
  std::vector<std::pair<std::size_t, std::size_t>> blocks;  // (unit, first row)
  for (std::size_t i = 0; i < units.size(); ++i)
    if (units[i].chunks > 1)
      for (std::size_t r = 0; r < units[i].rows; r += kMergeRows) blocks.emplace_back(i, r);
  // A small merge (decode: a few rows) runs inline: cheaper than waking the pool.
  const std::size_t mgrain = prow * d < (std::size_t(1) << 16) ? blocks.size() : 1;
  parallel_for(0, blocks.size(), mgrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t b = lo; b < hi; ++b) {
      const Unit& u = units[blocks[b].first];
      const std::size_t r1 = std::min(u.rows, blocks[b].second + kMergeRows);
      for (std::size_t r = blocks[b].second; r < r1; ++r) {
        const std::size_t row = (u.qh0 + r % u.ge) * P.Nq + (u.i0 + r / u.ge);
        float* o = P.out.out + row * d;
        float lse = plse[u.part + r];
        const float* src = pout.data() + (u.part + r) * d;
        for (std::size_t c = 0; c < d; ++c) o[c] = src[c];
        for (std::size_t c = 1; c < u.chunks; ++c) {
          const std::size_t pr = u.part + c * u.rows + r;
          merge_row(d, o, &lse, pout.data() + pr * d, plse.data() + pr);
        }
        if (P.out.lse) P.out.lse[row] = lse;
      }
    }
  });
}

Problem make_problem(const Queries& q, const KvView& k, const KvView& v, float scale, const Output& out) {
  Problem P;
  P.q = q.data;
  P.Hq = q.heads;
  P.Nq = q.tokens;
  P.d = q.d;
  P.Hkv = k.heads;
  P.G = k.heads ? q.heads / k.heads : 1;
  P.N = k.tokens;
  P.k = k;
  P.v = v;
  const double sc = scale == 0.0f ? 1.0 / std::sqrt(double(q.d)) : double(scale);
  P.qs = static_cast<float>(sc * kLog2e);
  P.out = out;
  return P;
}

}  // namespace

GpuAttention& gpu_attention() { return require_gpu().attention_ops(); }

void dense_attention(const Queries& q, const KvView& k, const KvView& v, const DenseOptions& opts,
                     const Output& out, const OpContext& ctx) {
  check_problem("dense_attention", q, k, v, out, opts.scale);
  const Device dev = resolve_device(opts.device);
  if (q.heads == 0 || q.tokens == 0) return;
  if (dev == Device::Cuda) return gpu_attention().dense(q, k, v, opts, out, ctx);
  Problem P = make_problem(q, k, v, opts.scale, out);
  P.causal = opts.causal;
  P.qoff = opts.query_offset;
  const AttnKernel& K = detail::attn_kernel();
  std::vector<Unit> units;
  for (std::size_t kvh = 0; kvh < P.Hkv; ++kvh) add_units(units, P, K, kvh, kvh * P.G, P.G, nullptr, 0);
  run(P, units, ctx);
}

void sparse_attention(const Queries& q, const KvView& k, const KvView& v, const Selection& sel, float scale,
                      const Output& out, const OpContext& ctx, Device device) {
  const Device dev = resolve_device(device);
  check_problem("sparse_attention", q, k, v, out, scale);
  const std::size_t groups = sel.per_query_head ? q.heads : k.heads;
  NNSCOPE_CHECK(groups == 0 || sel.offsets, ErrorCode::InvalidArgument, "sparse_attention: null selection offsets");
  // Index lists: offsets non-decreasing, each list strictly ascending and in range.
  const std::size_t N = k.tokens;
  for (std::size_t g = 0; g < groups; ++g) {
    const std::size_t a = sel.offsets[g], b = sel.offsets[g + 1];
    NNSCOPE_CHECK(b >= a, ErrorCode::InvalidArgument,
                  "sparse_attention: selection offsets decrease at group " + std::to_string(g));
    if (b == a) continue;
    NNSCOPE_CHECK(sel.indices, ErrorCode::InvalidArgument, "sparse_attention: null selection indices");
    const std::int32_t* ix = sel.indices + a;
    const std::size_t n = b - a;
    // Branch-free scan: count violations, report the first only on failure.
    std::size_t bad = ix[0] < 0 || std::size_t(ix[0]) >= N;
    for (std::size_t i = 1; i < n; ++i) bad += ix[i] <= ix[i - 1];
    bad += std::size_t(ix[n - 1]) >= N || ix[n - 1] < 0;
    if (bad) {
      for (std::size_t i = 0; i < n; ++i) {
        NNSCOPE_CHECK(ix[i] >= 0 && std::size_t(ix[i]) < N, ErrorCode::InvalidArgument,
                      "sparse_attention: index " + std::to_string(ix[i]) + " of group " + std::to_string(g) +
                          " is out of range [0, " + std::to_string(N) + ")");
        NNSCOPE_CHECK(i == 0 || ix[i] > ix[i - 1], ErrorCode::InvalidArgument,
                      "sparse_attention: indices of group " + std::to_string(g) +
                          " must be strictly ascending (unique), at position " + std::to_string(i));
      }
    }
  }
  if (q.heads == 0 || q.tokens == 0) return;
  if (dev == Device::Cuda) return gpu_attention().sparse(q, k, v, sel, scale, out, ctx);
  Problem P = make_problem(q, k, v, scale, out);
  P.sparse = true;
  const AttnKernel& K = detail::attn_kernel();
  std::vector<Unit> units;
  if (sel.per_query_head) {
    for (std::size_t h = 0; h < P.Hq; ++h) {
      const std::size_t a = sel.offsets[h];
      add_units(units, P, K, h / P.G, h, 1, sel.indices + a, sel.offsets[h + 1] - a);
    }
  } else {
    for (std::size_t g = 0; g < P.Hkv; ++g) {
      const std::size_t a = sel.offsets[g];
      add_units(units, P, K, g, g * P.G, P.G, sel.indices + a, sel.offsets[g + 1] - a);
    }
  }
  run(P, units, ctx);
}

void load_rows(const KvView& v, std::size_t h, std::size_t t0, std::size_t n, float* out) {
  if (n == 0 || v.d == 0) return;
  check_storage(v, "load_rows");
  NNSCOPE_CHECK(v.data && out, ErrorCode::InvalidArgument, "load_rows: null data");
  NNSCOPE_CHECK(h < v.heads && t0 <= v.tokens && n <= v.tokens - t0, ErrorCode::Shape,
                "load_rows: rows out of range");
  const AttnKernel& K = detail::attn_kernel();
  const std::size_t b = storage_bytes(v.storage);
  const char* base = static_cast<const char*>(v.data);
  const void* rows[kTile];
  for (std::size_t i = 0; i < n; i += kTile) {
    const std::size_t m = std::min(kTile, n - i);
    for (std::size_t j = 0; j < m; ++j) rows[j] = base + v.row_index(h, t0 + i + j) * b;
    K.load_rows(static_cast<int>(v.storage), rows, m, v.d, out + i * v.d, v.d);
  }
}

void merge_partials(std::size_t rows, std::size_t d, float* out_a, float* lse_a, const float* out_b,
                    const float* lse_b) {
  if (rows == 0) return;
  NNSCOPE_CHECK(lse_a && lse_b, ErrorCode::InvalidArgument, "merge_partials: null lse");
  NNSCOPE_CHECK(d == 0 || (out_a && out_b), ErrorCode::InvalidArgument, "merge_partials: null output");
  checked_mul(rows, d);
  const std::size_t grain = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(d, 1));
  parallel_for(0, rows, grain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; ++r) merge_row(d, out_a + r * d, lse_a + r, out_b + r * d, lse_b + r);
  });
}

}  // namespace nnscope::attention
