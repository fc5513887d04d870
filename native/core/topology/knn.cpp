// nnscope core, topology: brute-force kNN on the CPU. Contract in knn.h.
//
// The points are widened to float64 in two layouts: row-major (the queries) and
// dim-major, zero-padded to a multiple of 8 (the candidates, streamed by the
// distance kernel). Rows are taken in chunks of kRows on the pool; a chunk walks
// the candidates in blocks of kBlock (so a block stays in cache across its rows),
// and each row keeps its k best in an insertion-sorted array under the total order
// (dist2, index). Chunk boundaries depend on n only; the result is the k smallest
// of a total order, hence independent of the thread count and the tier.
#include "topology/knn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "base/cpu.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"

namespace nnscope::topology {

namespace detail {
namespace {

void distances_generic(const double* q, const double* soa, std::size_t ld, std::size_t dim, std::size_t j0,
                       std::size_t j1, double* out) {
  for (std::size_t j = j0; j < j1; ++j) {
    double s = 0.0;
    for (std::size_t d = 0; d < dim; ++d) {
      const double delta = q[d] - soa[d * ld + j];
      s = std::fma(delta, delta, s);
    }
    out[j - j0] = s;
  }
}

const KnnKernel kGeneric = {"generic", distances_generic};
const KnnKernel* no_avx512() { return nullptr; }

}  // namespace

const KnnKernel& knn_kernel_generic() { return kGeneric; }
const KnnKernel& knn_kernel() { return select_kernel(no_avx512, knn_kernel_avx2, kGeneric); }

}  // namespace detail

namespace {

constexpr std::size_t kRows = 32;
constexpr std::size_t kBlock = 2048;

void check_args(const void* points, std::size_t n, std::size_t dim, std::size_t k) {
  NNSCOPE_CHECK(points != nullptr, ErrorCode::InvalidArgument, "knn: points is null");
  NNSCOPE_CHECK(n >= 2, ErrorCode::InvalidArgument, "knn: at least 2 points are needed");
  NNSCOPE_CHECK(dim >= 1, ErrorCode::InvalidArgument, "knn: dim must be at least 1");
  NNSCOPE_CHECK(n <= std::size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                "knn: at most 2^31 - 1 points");
  NNSCOPE_CHECK(k >= 1 && k < n, ErrorCode::InvalidArgument,
                "knn: k must be in [1, n - 1] (got k = " + std::to_string(k) + ", n = " + std::to_string(n) + ")");
}

template <typename T>
KnnLists knn_impl(const T* points, std::size_t n, std::size_t dim, std::size_t k, const OpContext& ctx) {
  check_args(points, n, dim, k);
  NNSCOPE_CHECK(dim <= std::numeric_limits<std::size_t>::max() / 8 / n, ErrorCode::TooLarge, "knn: n·dim overflows");
  const std::size_t total = n * dim;
  require_finite(points, total, "knn points");
  ctx.check();
  const std::size_t ld = (n + 7) / 8 * 8;
  std::vector<double> rows(total), soa(dim * ld, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < dim; ++d) {
      const double v = double(points[i * dim + d]);
      rows[i * dim + d] = v;
      soa[d * ld + i] = v;
    }
  const detail::KnnKernel& kern = detail::knn_kernel();

  KnnLists out;
  out.n = n;
  out.k = k;
  out.index.assign(n * k, -1);
  out.dist2.assign(n * k, 0.0);
  parallel_for(0, n, kRows, [&](std::size_t r0, std::size_t r1) {
    ctx.check();
    std::vector<double> buf(kBlock + 8);
    std::vector<std::size_t> cnt(r1 - r0, 0);
    for (std::size_t j0 = 0; j0 < n; j0 += kBlock) {
      const std::size_t j1 = std::min(n, j0 + kBlock);
      for (std::size_t i = r0; i < r1; ++i) {
        kern.distances(rows.data() + i * dim, soa.data(), ld, dim, j0, j1, buf.data());
        double* bd = out.dist2.data() + i * k;
        std::int32_t* bi = out.index.data() + i * k;
        std::size_t& c = cnt[i - r0];
        for (std::size_t j = j0; j < j1; ++j) {
          if (j == i) continue;
          const double d = buf[j - j0];
          const std::int32_t jj = std::int32_t(j);
          std::size_t pos;
          if (c < k) {
            pos = c++;
          } else if (d < bd[k - 1] || (d == bd[k - 1] && jj < bi[k - 1])) {
            pos = k - 1;
          } else {
            continue;
          }
          while (pos > 0 && (d < bd[pos - 1] || (d == bd[pos - 1] && jj < bi[pos - 1]))) {
            bd[pos] = bd[pos - 1];
            bi[pos] = bi[pos - 1];
            --pos;
          }
          bd[pos] = d;
          bi[pos] = jj;
        }
      }
    }
  });
  ctx.check();
  ctx.report(1, 1);
  return out;
}

}  // namespace

KnnLists knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k, const OpContext& ctx) {
  return knn_impl(points, n, dim, k, ctx);
}
KnnLists knn_lists(const double* points, std::size_t n, std::size_t dim, std::size_t k, const OpContext& ctx) {
  return knn_impl(points, n, dim, k, ctx);
}

CsrGraph knn_symmetrize(const KnnLists& lists, KnnSymmetry mode) {
  const std::size_t n = lists.n, k = lists.k;
  NNSCOPE_CHECK(k >= 1 && k < n && lists.index.size() == n * k, ErrorCode::InvalidArgument,
                "knn: lists must hold n·k indices with 1 <= k < n");
  for (std::int32_t j : lists.index)
    NNSCOPE_CHECK(j >= 0 && std::size_t(j) < n, ErrorCode::InvalidArgument, "knn: neighbour index out of range");
  auto listed = [&](std::size_t i, std::int32_t j) {
    const std::int32_t* row = lists.index.data() + i * k;
    return std::find(row, row + k, j) != row + k;
  };
  // Directed entries (i → j) of the result, before sorting and deduplication.
  std::vector<std::int64_t> deg(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t q = 0; q < k; ++q) {
      const std::int32_t j = lists.index[i * k + q];
      if (std::size_t(j) == i) continue;
      if (mode == KnnSymmetry::Union) {
        ++deg[i + 1];
        ++deg[j + 1];
      } else if (listed(j, std::int32_t(i))) {
        ++deg[i + 1];
      }
    }
  for (std::size_t i = 0; i < n; ++i) deg[i + 1] += deg[i];
  std::vector<std::int32_t> adj(deg[n]);
  std::vector<std::int64_t> pos(deg.begin(), deg.end() - 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t q = 0; q < k; ++q) {
      const std::int32_t j = lists.index[i * k + q];
      if (std::size_t(j) == i) continue;
      if (mode == KnnSymmetry::Union) {
        adj[pos[i]++] = j;
        adj[pos[j]++] = std::int32_t(i);
      } else if (listed(j, std::int32_t(i))) {
        adj[pos[i]++] = j;
      }
    }
  CsrGraph g;
  g.vertices = n;
  g.offsets.assign(n + 1, 0);
  std::size_t w = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto b = adj.begin() + deg[i], e = adj.begin() + deg[i + 1];
    std::sort(b, e);
    e = std::unique(b, e);
    for (auto it = b; it != e; ++it) adj[w++] = *it;
    g.offsets[i + 1] = std::int64_t(w);
  }
  adj.resize(w);
  g.adj = std::move(adj);
  return g;
}

CsrGraph knn_graph(const float* points, std::size_t n, std::size_t dim, std::size_t k, KnnSymmetry mode,
                   const OpContext& ctx) {
  return knn_symmetrize(knn_lists(points, n, dim, k, ctx), mode);
}
CsrGraph knn_graph(const double* points, std::size_t n, std::size_t dim, std::size_t k, KnnSymmetry mode,
                   const OpContext& ctx) {
  return knn_symmetrize(knn_lists(points, n, dim, k, ctx), mode);
}

}  // namespace nnscope::topology
