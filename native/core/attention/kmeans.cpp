// nnscope core, attention: K-means (Lloyd) on the CPU. Contract in kmeans.h.
//
// Work layout (all boundaries depend on the sizes only, never on the thread
// count, so every result is bit-identical for any pool size):
//  * assignment: points in blocks of BM rows; per block one SGEMM
//    G = −2·Y_blk·Cᵀ (linalg::sgemm_cpu, itself deterministic) into a BM×k tile,
//    then a vectorised argmin of G + ‖c‖² per row (kmeans_kernels.h), rows of a
//    block spread over the pool. The N×k matrix never exists.
//  * update: counting sort of the labels (members of each cluster in point
//    order), per-cluster float64 sums in that order, clusters spread over the pool.
//  * k-means++: one SGEMV per chosen centre for the distances, a serial float64
//    prefix walk for the draw.
#include "attention/kmeans.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "attention/gpu.h"
#include "attention/kmeans_kernels.h"
#include "base/buffer.h"
#include "base/cpu.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "linalg/blas.h"

namespace nnscope::attention {
namespace detail {
namespace {

void argmin_rows_generic(std::size_t rows, std::size_t k, const float* g, std::size_t ldg, const float* cn,
                         std::int32_t* label, float* best, float* second) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* gr = g + r * ldg;
    float m1 = gr[0] + cn[0], m2 = __builtin_inff();
    std::int32_t mi = 0;
    for (std::size_t j = 1; j < k; ++j) {
      const float v = gr[j] + cn[j];
      if (v < m1) {
        m2 = m1;
        m1 = v;
        mi = static_cast<std::int32_t>(j);
      } else if (v < m2) {
        m2 = v;
      }
    }
    label[r] = mi;
    best[r] = m1;
    second[r] = m2;
  }
}

double exp_shift_sum_generic(std::size_t n, float* l, const double* w) {
  float mx = l[0];
  for (std::size_t j = 1; j < n; ++j) mx = l[j] > mx ? l[j] : mx;
  double z = 0;
  for (std::size_t j = 0; j < n; ++j) {
    float x = l[j] - mx;
    x = x < -87.3f ? -87.3f : x;
    const float e = std::exp(x);
    l[j] = e;
    z += double(e) * w[j];
  }
  return z;
}

const KmeansKernel kGeneric = {"generic", argmin_rows_generic, exp_shift_sum_generic};

}  // namespace

const KmeansKernel& kmeans_kernel_generic() { return kGeneric; }
const KmeansKernel& kmeans_kernel() { return select_kernel(kmeans_kernel_avx512, kmeans_kernel_avx2, kGeneric); }

}  // namespace detail

namespace {

// Squared norm of a float row, accumulated in double, rounded to float.
double sqnorm(const float* x, std::size_t d) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += double(x[i]) * x[i];
    s1 += double(x[i + 1]) * x[i + 1];
    s2 += double(x[i + 2]) * x[i + 2];
    s3 += double(x[i + 3]) * x[i + 3];
  }
  for (; i < d; ++i) s0 += double(x[i]) * x[i];
  return (s0 + s1) + (s2 + s3);
}

// Rows per assignment block: the BM×k tile stays near 4 MiB (L3), few enough
// blocks that SGEMM's packing of the centres (once per call) stays cheap.
std::size_t block_rows(std::size_t n, std::size_t k) {
  std::size_t bm = (std::size_t(1) << 20) / std::max<std::size_t>(k, 1);
  bm = std::max<std::size_t>(64, std::min<std::size_t>(bm, 4096));
  bm = bm / 16 * 16;
  return std::min(bm, n);
}

// Centre norms ‖c_j‖² as float.
void centre_norms(const float* c, std::size_t k, std::size_t d, float* cn) {
  for (std::size_t j = 0; j < k; ++j) cn[j] = static_cast<float>(sqnorm(c + j * d, d));
}

// The assignment step over the rows listed in `rows` (ascending; null = all n),
// with precomputed point norms yn (float). Writes labels, dist2 and, when
// non-null, second2 (second-smallest squared distance) at the rows' own indices.
// Listed rows are gathered into contiguous blocks first; SGEMM gives every
// element the same bits whatever block it sits in, so the result of a row does
// not depend on which other rows are listed. Returns Σ dist2 over the rows.
struct AssignScratch {
  AlignedBuffer<float> tile, gathered, cn;
};

double assign(const float* y, const float* yn, std::size_t m, const std::int32_t* rows, std::size_t d,
              const float* c, std::size_t k, std::int32_t* labels, float* dist2, float* second2,
              AssignScratch& sc, const OpContext& ctx) {
  if (m == 0) return 0;
  sc.cn.resize(k);
  centre_norms(c, k, d, sc.cn.data());
  const float* cn = sc.cn.data();
  const detail::KmeansKernel& K = detail::kmeans_kernel();
  const std::size_t bm = block_rows(m, k);
  sc.tile.resize(checked_mul(bm, k));
  if (rows) sc.gathered.resize(checked_mul(bm, d));
  const std::size_t nblocks = (m + bm - 1) / bm;
  std::vector<double> partial(nblocks, 0.0);
  for (std::size_t b = 0; b < nblocks; ++b) {
    ctx.check();
    const std::size_t r0 = b * bm, cnt = std::min(bm, m - r0);
    const float* a = y + r0 * d;
    if (rows) {
      float* gdst = sc.gathered.data();
      const std::int32_t* ix = rows + r0;
      parallel_for(0, cnt, 256, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t r = lo; r < hi; ++r)
          std::memcpy(gdst + r * d, y + std::size_t(ix[r]) * d, d * sizeof(float));
      });
      a = gdst;
    }
    linalg::GemmArgs g;
    g.trans_b = true;
    g.m = cnt;
    g.n = k;
    g.k = d;
    g.alpha = -2.0f;
    g.a = a;
    g.lda = d;
    g.b = c;
    g.ldb = d;
    g.beta = 0.0f;
    g.c = sc.tile.data();
    g.ldc = k;
    linalg::sgemm_cpu(g);
    // Rows of the tile in chunks of 32 (boundaries fixed).
    const std::size_t grain = 32;
    const std::size_t nchunks = (cnt + grain - 1) / grain;
    std::vector<double> chunk_sum(nchunks, 0.0);
    parallel_for(0, cnt, grain, [&](std::size_t lo, std::size_t hi) {
      float best[32], sec[32];
      std::int32_t lab[32];
      K.argmin_rows(hi - lo, k, sc.tile.data() + lo * k, k, cn, lab, best, sec);
      double s = 0;
      for (std::size_t r = lo; r < hi; ++r) {
        const std::size_t i = rows ? std::size_t(rows[r0 + r]) : r0 + r;
        std::int32_t l = lab[r - lo];
        if (l < 0 || std::size_t(l) >= k) l = 0;  // all-Inf row (overflowing norms): take 0
        labels[i] = l;
        float v = yn[i] + best[r - lo];
        if (!(v > 0.0f)) v = 0.0f;
        if (dist2) dist2[i] = v;
        if (second2) {
          float w = yn[i] + sec[r - lo];
          second2[i] = w > 0.0f ? w : 0.0f;
        }
        s += v;
      }
      chunk_sum[lo / grain] = s;
    });
    double s = 0;
    for (double v : chunk_sum) s += v;
    partial[b] = s;
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

// out[j] = mean of the rows x[i] with labels[i] = j (float64 sums in point
// order, so the result does not depend on the split). Streams x once per chunk
// of 32 dimensions (a k×32 float64 accumulator stays in L2); chunks run in
// parallel. Empty clusters keep their current out row (callers reseed first).
void cluster_means(const float* x, std::size_t n, std::size_t d, const std::int32_t* labels,
                   const std::vector<std::int32_t>& sizes, std::size_t k, float* out) {
  const std::size_t w = 32;
  parallel_for(0, d, w, [&](std::size_t d0, std::size_t d1) {
    const std::size_t cw = d1 - d0;
    std::vector<double> acc(k * cw, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double* a = acc.data() + std::size_t(labels[i]) * cw;
      const float* r = x + i * d + d0;
      for (std::size_t q = 0; q < cw; ++q) a[q] += r[q];
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (sizes[j] == 0) continue;
      const double inv = 1.0 / double(sizes[j]);
      const double* a = acc.data() + j * cw;
      float* o = out + j * d + d0;
      for (std::size_t q = 0; q < cw; ++q) o[q] = static_cast<float>(a[q] * inv);
    }
  });
}

// Moves the farthest points into the empty clusters (see kmeans.h). Returns the
// number of clusters reseeded.
std::size_t reseed_empty(std::size_t n, std::size_t k, std::int32_t* labels, float* dist2,
                         std::vector<std::int32_t>& sizes) {
  std::size_t empty = 0;
  for (std::size_t j = 0; j < k; ++j) empty += sizes[j] == 0;
  if (empty == 0) return 0;
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    if (dist2[a] != dist2[b]) return dist2[a] > dist2[b];
    return a < b;
  });
  std::size_t next = 0, done = 0;
  for (std::size_t j = 0; j < k; ++j) {
    if (sizes[j] != 0) continue;
    while (next < n && sizes[std::size_t(labels[order[next]])] < 2) ++next;
    if (next == n) break;  // cannot happen when n ≥ k
    const std::int32_t p = order[next++];
    --sizes[std::size_t(labels[p])];
    labels[p] = static_cast<std::int32_t>(j);
    sizes[j] = 1;
    dist2[p] = 0.0f;
    ++done;
  }
  return done;
}

// Classic k-means++ (D² sampling) in y space. Centres into c [k, d].
void init_plusplus(const float* y, const float* yn, std::size_t n, std::size_t d, std::size_t k, const Rng& rng,
                   float* c, const OpContext& ctx) {
  std::vector<float> dist(n), dot(n);
  std::uint64_t draw = 0;
  std::size_t first = static_cast<std::size_t>(rng.below_at(draw++, n));
  std::memcpy(c, y + first * d, d * sizeof(float));
  const float inf = std::numeric_limits<float>::infinity();
  std::fill(dist.begin(), dist.end(), inf);
  std::size_t chosen = first;
  for (std::size_t j = 0;; ++j) {
    // Update the distances with centre j (= point `chosen`).
    const float* cj = c + j * d;
    const float cn = static_cast<float>(sqnorm(cj, d));
    linalg::GemvArgs g;
    g.m = n;
    g.n = d;
    g.a = y;
    g.lda = d;
    g.x = cj;
    g.y = dot.data();
    linalg::sgemv_cpu(g);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      float v = yn[i] + cn - 2.0f * dot[i];
      if (!(v > 0.0f)) v = 0.0f;
      if (v < dist[i]) dist[i] = v;
      total += dist[i];
    }
    dist[chosen] = 0.0f;
    if (j + 1 == k) break;
    if (((j + 1) & 63) == 0) ctx.check();
    std::size_t pick;
    if (total > 0) {
      const double target = rng.uniform_at(draw++) * total;
      double cum = 0;
      pick = n;
      std::size_t last_pos = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (dist[i] <= 0.0f) continue;
        last_pos = i;
        cum += dist[i];
        if (cum > target) {
          pick = i;
          break;
        }
      }
      if (pick == n) pick = last_pos;  // rounding at the very end of the walk
    } else {
      pick = static_cast<std::size_t>(rng.below_at(draw++, n));  // every point coincides with a centre
    }
    chosen = pick;
    std::memcpy(c + (j + 1) * d, y + pick * d, d * sizeof(float));
  }
}

// k distinct points, uniform (partial Fisher–Yates).
void init_random(const float* y, std::size_t n, std::size_t d, std::size_t k, const Rng& rng, float* c) {
  std::vector<std::int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  for (std::size_t j = 0; j < k; ++j) {
    const std::size_t r = j + static_cast<std::size_t>(rng.below_at(j, n - j));
    std::swap(idx[j], idx[r]);
    std::memcpy(c + j * d, y + std::size_t(idx[j]) * d, d * sizeof(float));
  }
}

}  // namespace

double kmeans_assign(const float* y, std::size_t n, std::size_t d, const float* centres, std::size_t k,
                     std::int32_t* labels, float* dist2, const OpContext& ctx) {
  NNSCOPE_CHECK(d > 0 && k > 0, ErrorCode::InvalidArgument, "kmeans_assign: d and k must be positive");
  if (n == 0) return 0;
  NNSCOPE_CHECK(y && centres && labels, ErrorCode::InvalidArgument, "kmeans_assign: null pointer");
  checked_mul(n, d);
  checked_mul(k, d);
  AlignedBuffer<float> yn(n);
  parallel_for(0, n, 1024, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) yn[i] = static_cast<float>(sqnorm(y + i * d, d));
  });
  AssignScratch sc;
  return assign(y, yn.data(), n, nullptr, d, centres, k, labels, dist2, nullptr, sc, ctx);
}

KmeansResult kmeans(const float* x, std::size_t n, std::size_t d, const KmeansOptions& opts, const OpContext& ctx) {
  NNSCOPE_CHECK(n > 0, ErrorCode::InvalidArgument, "kmeans: no points (n = 0)");
  NNSCOPE_CHECK(d > 0, ErrorCode::InvalidArgument, "kmeans: dimension d must be positive");
  NNSCOPE_CHECK(opts.clusters > 0, ErrorCode::InvalidArgument, "kmeans: clusters must be positive");
  NNSCOPE_CHECK(x != nullptr, ErrorCode::InvalidArgument, "kmeans: null data");
  NNSCOPE_CHECK(n <= std::size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                "kmeans: too many points for int32 labels");
  const std::size_t nd = checked_mul(n, d);
  require_finite(x, nd, "kmeans input");
  const std::size_t k = std::min(opts.clusters, n);
  if (opts.initial_centroids) require_finite(opts.initial_centroids, checked_mul(k, d), "kmeans initial centroids");
  const bool gpu = resolve_device(opts.device) == Device::Cuda;

  KmeansResult res;
  res.clusters = k;
  res.d = d;

  // 1. The clustered space.
  AlignedBuffer<float> ybuf;
  const float* y = x;
  if (opts.cosine) {
    ybuf.resize(nd);
    parallel_for(0, n, 512, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) {
        const float* xi = x + i * d;
        float* yi = ybuf.data() + i * d;
        const double nrm = std::sqrt(sqnorm(xi, d));
        if (nrm > 0 && std::isfinite(nrm)) {
          const double inv = 1.0 / nrm;
          for (std::size_t t = 0; t < d; ++t) yi[t] = static_cast<float>(xi[t] * inv);
        } else {
          std::memset(yi, 0, d * sizeof(float));
        }
      }
    });
    y = ybuf.data();
  }
  AlignedBuffer<float> yn(n);
  parallel_for(0, n, 1024, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) yn[i] = static_cast<float>(sqnorm(y + i * d, d));
  });

  // 2. Init.
  std::vector<float> c(checked_mul(k, d));
  const Rng rng(opts.seed, opts.stream);
  if (opts.initial_centroids) {
    std::memcpy(c.data(), opts.initial_centroids, k * d * sizeof(float));
  } else if (opts.init == KmeansInit::Random) {
    init_random(y, n, d, k, rng, c.data());
  } else {
    init_plusplus(y, yn.data(), n, d, k, rng, c.data(), ctx);
  }
  if (gpu) return gpu_attention().kmeans(x, n, d, opts, c.data(), ctx);

  // 3. Lloyd, with Hamerly's bounds (exact: a point is skipped only when no
  // other centre can have come closer). upper[i] ≥ distance to its centre,
  // lower[i] ≤ distance to every other centre; both move by the centre shifts.
  // A skipped point keeps its label and gets its exact distance to its centre;
  // the others are re-assigned with the full tiled SGEMM. `slack` covers the
  // float32 rounding of the expanded distances.
  std::vector<std::int32_t> labels(n), prev(n);
  std::vector<float> dist2(n), second2(n);
  std::vector<double> upper(n), lower(n), slack(n);
  std::vector<std::int32_t> sizes(k), todo;
  std::vector<std::uint8_t> redo(n);
  std::vector<float> c_old;
  std::vector<double> shift(k);
  AssignScratch scratch;
  double cn_max = 0;
  auto refresh_cn_max = [&] {
    cn_max = 0;
    for (std::size_t j = 0; j < k; ++j) cn_max = std::max(cn_max, sqnorm(c.data() + j * d, d));
  };
  // Worst-case relative error of an expanded float32 squared distance (d-term
  // dot product, two adds), as a fraction of ‖y‖² + max‖c‖².
  const double eps = 2.0 * double(d + 8) * 5.97e-8;
  const std::size_t iters = std::max<std::size_t>(opts.iterations, 1);
  for (std::size_t t = 0; t < iters; ++t) {
    ctx.check();
    refresh_cn_max();
    double jsum;
    if (t == 0) {
      jsum = assign(y, yn.data(), n, nullptr, d, c.data(), k, labels.data(), dist2.data(), second2.data(), scratch,
                    ctx);
    } else {
      // Shifts of the centres: own bound grows by the own shift, the lower bound
      // shrinks by the largest shift of any other centre.
      double s1 = 0, s2 = 0;
      std::size_t j1 = 0;
      for (std::size_t j = 0; j < k; ++j) {
        if (shift[j] > s1) {
          s2 = s1;
          s1 = shift[j];
          j1 = j;
        } else if (shift[j] > s2) {
          s2 = shift[j];
        }
      }
      parallel_for(0, n, 1024, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
          const std::size_t a = std::size_t(labels[i]);
          lower[i] -= a == j1 ? s2 : s1;
          // Distance to the own (moved) centre, directly (needed for dist2
          // anyway): float32 in 8 lanes, its rounding (≤ (d + 8)·u relative)
          // added to the bound.
          const float* yi = y + i * d;
          const float* ca = c.data() + a * d;
          float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          std::size_t q = 0;
          for (; q + 8 <= d; q += 8)
            for (int l = 0; l < 8; ++l) {
              const float f = yi[q + l] - ca[q + l];
              acc[l] += f * f;
            }
          for (int l = 0; q < d; ++q, ++l) {
            const float f = yi[q] - ca[q];
            acc[l] += f * f;
          }
          const float dd = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
          upper[i] = std::sqrt(double(dd) * (1.0 + 2.0 * double(d + 8) * 5.97e-8));
          const bool skip = upper[i] + slack[i] < lower[i];
          redo[i] = !skip;
          if (skip) dist2[i] = dd;
        }
      });
      todo.clear();
      for (std::size_t i = 0; i < n; ++i)
        if (redo[i]) todo.push_back(static_cast<std::int32_t>(i));
      if (todo.size() * 10 >= n * 9) {
        // Nearly everything moves: assign all rows without gathering (a row's
        // result does not depend on its block, and the bounds already proved the
        // skipped rows' labels, so this changes nothing but the work done).
        todo.resize(n);
        std::iota(todo.begin(), todo.end(), 0);
        assign(y, yn.data(), n, nullptr, d, c.data(), k, labels.data(), dist2.data(), second2.data(), scratch, ctx);
      } else {
        res.skipped += n - todo.size();
        assign(y, yn.data(), todo.size(), todo.data(), d, c.data(), k, labels.data(), dist2.data(),
               second2.data(), scratch, ctx);
      }
      // Σ dist2 in point order (independent of which points were skipped).
      jsum = 0;
      for (std::size_t i = 0; i < n; ++i) jsum += dist2[i];
    }
    // Bounds of the freshly assigned points.
    const bool all = t == 0;
    const std::size_t nfresh = all ? n : todo.size();
    parallel_for(0, nfresh, 2048, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t r = lo; r < hi; ++r) {
        const std::size_t i = all ? r : std::size_t(todo[r]);
        const double e = eps * (double(yn[i]) + cn_max);  // absolute error bound of a squared distance
        upper[i] = std::sqrt(double(dist2[i]) + e);
        const double l2 = double(second2[i]) - e;
        lower[i] = l2 > 0 ? std::sqrt(l2) : 0.0;
        slack[i] = 1e-6 * (std::sqrt(double(yn[i])) + std::sqrt(cn_max));
      }
    });
    res.history.push_back(jsum);
    ++res.iterations;
    std::fill(sizes.begin(), sizes.end(), 0);
    for (std::size_t i = 0; i < n; ++i) ++sizes[std::size_t(labels[i])];
    const std::size_t moved = reseed_empty(n, k, labels.data(), dist2.data(), sizes);
    if (moved) {
      res.reseeded += moved;
      for (std::size_t i = 0; i < n; ++i)
        if (dist2[i] == 0.0f) lower[i] = 0;  // reseeded points (and exact hits) are re-assigned next time
    }
    if (t > 0 && labels == prev) {
      res.converged = true;
      ctx.report(double(iters), double(iters));
      break;
    }
    ctx.report(double(t + 1), double(iters));
    if (opts.iterations == 0) break;
    c_old = c;
    cluster_means(y, n, d, labels.data(), sizes, k, c.data());
    for (std::size_t j = 0; j < k; ++j) {
      double s = 0;
      for (std::size_t q = 0; q < d; ++q) {
        const double f = double(c[j * d + q]) - double(c_old[j * d + q]);
        s += f * f;
      }
      shift[j] = std::sqrt(s) * (1 + 1e-12);
    }
    prev = labels;
  }

  // 4. Result: raw means, inertia in y space against the y means.
  std::vector<float> mu(c);  // y-space means of the final labels
  cluster_means(y, n, d, labels.data(), sizes, k, mu.data());
  res.centroids.resize(k * d);
  if (opts.cosine) {
    res.centroids = c;  // empty clusters cannot remain (n ≥ k); overwritten below
    cluster_means(x, n, d, labels.data(), sizes, k, res.centroids.data());
  } else {
    res.centroids = mu;
  }
  const std::size_t grain = 1024;
  std::vector<double> part((n + grain - 1) / grain, 0.0);
  parallel_for(0, n, grain, [&](std::size_t lo, std::size_t hi) {
    double s = 0;
    for (std::size_t i = lo; i < hi; ++i) {
      const float* yi = y + i * d;
      const float* m = mu.data() + std::size_t(labels[i]) * d;
      double e = 0;
      for (std::size_t q = 0; q < d; ++q) {
        const double df = double(yi[q]) - double(m[q]);
        e += df * df;
      }
      s += e;
    }
    part[lo / grain] = s;
  });
  res.inertia = 0;
  for (double v : part) res.inertia += v;
  res.labels = std::move(labels);
  res.sizes = std::move(sizes);
  return res;
}

}  // namespace nnscope::attention
