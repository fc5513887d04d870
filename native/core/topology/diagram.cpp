// nnscope core, topology: exact bottleneck and 1-Wasserstein distances between
// persistence diagrams. Contract in diagram.h.
//
// The bipartite instance (n points of A, m of B): left = A ∪ ΔB, right = B ∪ ΔA,
// where ΔA are the diagonal copies of A's points. Edges (cost):
//   a_i – b_j      L∞ distance
//   a_i – Δa_i     half persistence of a_i
//   Δb_j – b_j     half persistence of b_j
//   Δb_j – Δa_i    0
// Bottleneck: the smallest candidate ε (sorted distinct costs) with a perfect
// matching over the edges of cost ≤ ε; adjacency is generated on the fly.
// Wasserstein: the same instance as a dense (n+m)² cost matrix, a_i to any diagonal
// copy costing its half persistence (equivalent optimum, no infinities), solved by
// the Hungarian method with potentials.
#include "topology/diagram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <string>

#include "base/error.h"

namespace nnscope::topology {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void check_diagram(const Diagram& d, const char* name) {
  NNSCOPE_CHECK(d.birth.size() == d.death.size(), ErrorCode::InvalidArgument,
                std::string("diagram ") + name + ": birth and death differ in length");
  for (std::size_t i = 0; i < d.birth.size(); ++i) {
    NNSCOPE_CHECK(std::isfinite(d.birth[i]) && std::isfinite(d.death[i]), ErrorCode::NonFinite,
                  std::string("diagram ") + name + ": pair " + std::to_string(i) +
                      " is not finite (essential classes go in `essential`)");
    NNSCOPE_CHECK(d.death[i] >= d.birth[i], ErrorCode::InvalidArgument,
                  std::string("diagram ") + name + ": pair " + std::to_string(i) + " dies before it is born");
  }
  for (double e : d.essential)
    NNSCOPE_CHECK(std::isfinite(e), ErrorCode::NonFinite,
                  std::string("diagram ") + name + ": an essential birth is not finite");
}

double linf(const Diagram& a, std::size_t i, const Diagram& b, std::size_t j) {
  return std::max(std::fabs(a.birth[i] - b.birth[j]), std::fabs(a.death[i] - b.death[j]));
}
double half_pers(const Diagram& d, std::size_t i) { return (d.death[i] - d.birth[i]) / 2; }

// Validates both diagrams, then matches their essential parts: births sorted and
// matched in order (max and sum of the costs; kInf when the counts differ).
void essential_costs(const Diagram& a, const Diagram& b, double& maxc, double& sumc) {
  check_diagram(a, "a");
  check_diagram(b, "b");
  maxc = sumc = 0;
  if (a.essential.size() != b.essential.size()) {
    maxc = sumc = kInf;
    return;
  }
  std::vector<double> x = a.essential, y = b.essential;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double c = std::fabs(x[i] - y[i]);
    maxc = std::max(maxc, c);
    sumc += c;
  }
}

// Hopcroft–Karp on the instance above restricted to costs ≤ eps.
class Matcher {
 public:
  Matcher(const Diagram& a, const Diagram& b) : a_(a), b_(b), n_(a.birth.size()), m_(b.birth.size()) {}

  bool perfect(double eps) {
    eps_ = eps;
    const std::size_t N = n_ + m_;
    mate_l_.assign(N, -1);
    mate_r_.assign(N, -1);
    std::size_t matched = 0;
    while (bfs()) {
      for (std::size_t u = 0; u < N; ++u)
        if (mate_l_[u] < 0 && dfs(long(u))) ++matched;
    }
    return matched == N;
  }

 private:
  // Right neighbours of left vertex u with cost ≤ eps, in a fixed order.
  template <typename F>
  void for_each_neighbor(long u, F&& f) const {
    if (std::size_t(u) < n_) {
      for (std::size_t j = 0; j < m_; ++j)
        if (linf(a_, u, b_, j) <= eps_)
          if (f(long(j))) return;
      if (half_pers(a_, u) <= eps_) f(long(m_ + u));
    } else {
      const std::size_t j = u - n_;
      if (half_pers(b_, j) <= eps_)
        if (f(long(j))) return;
      for (std::size_t i = 0; i < n_; ++i)
        if (f(long(m_ + i))) return;
    }
  }

  bool bfs() {
    const std::size_t N = n_ + m_;
    dist_.assign(N, -1);
    std::queue<long> q;
    for (std::size_t u = 0; u < N; ++u)
      if (mate_l_[u] < 0) {
        dist_[u] = 0;
        q.push(long(u));
      }
    bool found = false;
    while (!q.empty()) {
      const long u = q.front();
      q.pop();
      for_each_neighbor(u, [&](long r) {
        const long w = mate_r_[r];
        if (w < 0) found = true;
        else if (dist_[w] < 0) {
          dist_[w] = dist_[u] + 1;
          q.push(w);
        }
        return false;
      });
    }
    return found;
  }

  bool dfs(long u) {
    bool ok = false;
    for_each_neighbor(u, [&](long r) {
      const long w = mate_r_[r];
      if (w < 0 || (dist_[w] == dist_[u] + 1 && dfs(w))) {
        mate_l_[u] = r;
        mate_r_[r] = u;
        ok = true;
        return true;
      }
      return false;
    });
    if (!ok) dist_[u] = -1;
    return ok;
  }

  const Diagram& a_;
  const Diagram& b_;
  std::size_t n_, m_;
  double eps_ = 0;
  std::vector<long> mate_l_, mate_r_, dist_;
};

double bottleneck_finite(const Diagram& a, const Diagram& b) {
  const std::size_t n = a.birth.size(), m = b.birth.size();
  if (n + m == 0) return 0;
  std::vector<double> cand;
  cand.reserve(n * m + n + m + 1);
  cand.push_back(0.0);
  for (std::size_t i = 0; i < n; ++i) {
    cand.push_back(half_pers(a, i));
    for (std::size_t j = 0; j < m; ++j) cand.push_back(linf(a, i, b, j));
  }
  for (std::size_t j = 0; j < m; ++j) cand.push_back(half_pers(b, j));
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  // Matching everything to the diagonal is always possible at the largest half
  // persistence, itself a candidate: the search is over [0, cand.size()).
  Matcher mt(a, b);
  std::size_t lo = 0, hi = cand.size() - 1;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (mt.perfect(cand[mid])) hi = mid;
    else lo = mid + 1;
  }
  return cand[lo];
}

// Minimum-cost perfect assignment of an N×N cost matrix (row-major); returns the
// column of each row. Hungarian method with row/column potentials (O(N³)).
std::vector<std::size_t> assign(const std::vector<double>& c, std::size_t N) {
  std::vector<double> u(N + 1, 0), v(N + 1, 0), minv(N + 1);
  std::vector<std::size_t> p(N + 1, 0), way(N + 1, 0);
  std::vector<char> used(N + 1);
  for (std::size_t i = 1; i <= N; ++i) {
    p[0] = i;
    std::size_t j0 = 0;
    std::fill(minv.begin(), minv.end(), kInf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const std::size_t i0 = p[j0];
      double delta = kInf;
      std::size_t j1 = 0;
      for (std::size_t j = 1; j <= N; ++j)
        if (!used[j]) {
          const double cur = c[(i0 - 1) * N + (j - 1)] - u[i0] - v[j];
          if (cur < minv[j]) {
            minv[j] = cur;
            way[j] = j0;
          }
          if (minv[j] < delta) {
            delta = minv[j];
            j1 = j;
          }
        }
      for (std::size_t j = 0; j <= N; ++j)
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const std::size_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<std::size_t> col(N);
  for (std::size_t j = 1; j <= N; ++j) col[p[j] - 1] = j - 1;
  return col;
}

double wasserstein_finite(const Diagram& a, const Diagram& b) {
  const std::size_t n = a.birth.size(), m = b.birth.size(), N = n + m;
  if (N == 0) return 0;
  // rows: a_0..a_{n-1}, Δb_0..Δb_{m-1}; columns: b_0..b_{m-1}, Δa_0..Δa_{n-1}
  std::vector<double> c(N * N, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < m; ++j) c[i * N + j] = linf(a, i, b, j);
    for (std::size_t q = 0; q < n; ++q) c[i * N + m + q] = half_pers(a, i);
  }
  for (std::size_t j = 0; j < m; ++j) {
    for (std::size_t r = 0; r < m; ++r) c[(n + j) * N + r] = half_pers(b, r);
    // Δb_j – Δa_q: 0 (already)
  }
  const std::vector<std::size_t> col = assign(c, N);
  double s = 0;
  for (std::size_t r = 0; r < N; ++r) s += c[r * N + col[r]];
  return s;
}

}  // namespace

double bottleneck_distance(const Diagram& a, const Diagram& b) {
  double emax, esum;
  essential_costs(a, b, emax, esum);
  if (std::isinf(emax)) return kInf;
  return std::max(bottleneck_finite(a, b), emax);
}

double wasserstein1_distance(const Diagram& a, const Diagram& b) {
  double emax, esum;
  essential_costs(a, b, emax, esum);
  if (std::isinf(esum)) return kInf;
  return wasserstein_finite(a, b) + esum;
}

}  // namespace nnscope::topology
