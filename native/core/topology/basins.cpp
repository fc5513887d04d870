// nnscope core, topology: steepest-descent basins and 0-dim persistence on the CPU.
// Contract in basins.h.
//
// Grids (basins_grid) are walked in chunks of whole rows (a row = the last, fastest
// axis) on the pool: the offsets whose leading coordinates stay inside are fixed
// for a row, so only the last coordinate is checked, and only at the row's ends.
// Chunk boundaries depend on the grid alone and every parallel result is combined
// in chunk order, so the output is the same for any thread count.
//  (a) pointers, branch-free inside rows; basin ids are given in vertex order;
//  (b) basin ids by descent with concurrent path compression;
//  (c) candidates: the vertices with a lower neighbour in another basin, each with
//      the distinct basins of its lower neighbours, bucketed by value as they are
//      found (KeyBuckets, keysort.h);
//  (d) the candidates in (value, vertex) order: a scatter to the buckets, then an
//      in-cache radix sort per bucket;
//  (e) a serial union-find sweep over the candidates (union by age, path halving).
// Explicit graphs (basins_graph) collect the inter-basin edges, keep the earliest
// per basin pair (a counting sort by the lower basin id) and run a union-find over
// the survivors in weight order (pairs_from_basin_edges, shared with the GPU path).
#include "topology/basins.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "base/buffer.h"
#include "base/compiler.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"
#include "topology/keysort.h"

namespace nnscope::topology {

namespace {

constexpr std::size_t kChunkVertices = 1 << 14;
// Sweep prefetch distances (candidates ahead): the list, then the nodes of its basins.
constexpr std::size_t kListAhead = 16, kNodeAhead = 8;

struct RowStencil {
  std::vector<std::vector<int>> off;  // the offsets e
  std::vector<std::int64_t> delta;    // their linear offsets
};

// Row r's prefix coordinates; keeps the offsets whose leading coordinates stay inside.
void row_offsets(const GridShape& grid, const RowStencil& st, std::size_t row, std::vector<std::int64_t>& delta,
                 std::vector<int>& last) {
  const std::size_t k = grid.dims.size();
  std::size_t coord[kMaxGridDims] = {};
  std::size_t r = row;
  for (std::size_t a = k - 1; a-- > 0;) {
    coord[a] = r % grid.dims[a];
    r /= grid.dims[a];
  }
  delta.clear();
  last.clear();
  for (std::size_t o = 0; o < st.off.size(); ++o) {
    bool inside = true;
    for (std::size_t a = 0; a + 1 < k && inside; ++a) {
      const std::int64_t c = std::int64_t(coord[a]) + st.off[o][a];
      inside = c >= 0 && c < std::int64_t(grid.dims[a]);
    }
    if (inside) {
      delta.push_back(st.delta[o]);
      last.push_back(st.off[o][k - 1]);
    }
  }
}

RowStencil make_stencil(const GridShape& grid, Neighborhood nb) {
  RowStencil st;
  st.off = neighbor_offsets(grid.dims.size(), nb);
  st.delta = grid_linear_offsets(grid, st.off);
  return st;
}

// One grid row's stencil: the offsets whose leading coordinates stay inside, their
// last-axis steps, and the offsets padded with zeros to a multiple of 4.
struct Row {
  std::int64_t base, last_max;
  const std::int64_t* delta;
  const int* last;
  std::size_t count;
  const std::int64_t* padded;
  std::size_t padded_count;
};

// The smallest of v = row.base + i and its neighbours in (value, index) order, at a
// row end (the last axis checked).
std::int64_t lowest_checked(const double* values, const Row& row, std::int64_t i) {
  const std::int64_t v = row.base + i;
  std::int64_t best = v;
  double bv = values[v];
  for (std::size_t o = 0; o < row.count; ++o) {
    const std::int64_t j = i + row.last[o];
    if (j < 0 || j > row.last_max) continue;
    const std::int64_t u = v + row.delta[o];
    if (vertex_less(values[u], u, bv, best)) {
      best = u;
      bv = values[u];
    }
  }
  return best;
}

// The same inside a row, without data-dependent branches: the least value over
// four independent chains, then the least offset holding it (ties: lowest index).
NNSCOPE_ALWAYS_INLINE inline std::int64_t lowest_inside(const double* values, std::int64_t v, const Row& row) {
  const double* fv = values + v;
  const std::int64_t* d = row.padded;
  double m0 = fv[0], m1 = fv[0], m2 = fv[0], m3 = fv[0];
  for (std::size_t o = 0; o < row.padded_count; o += 4) {
    m0 = std::min(m0, fv[d[o]]);
    m1 = std::min(m1, fv[d[o + 1]]);
    m2 = std::min(m2, fv[d[o + 2]]);
    m3 = std::min(m3, fv[d[o + 3]]);
  }
  const double mv = std::min(std::min(m0, m1), std::min(m2, m3));
  // offset if its value is the least, else kNone (as masks: no branch to mispredict)
  constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  auto at_min = [mv](double x, std::int64_t off) NNSCOPE_ALWAYS_INLINE {
    const std::int64_t eq = -std::int64_t(x == mv);
    return (off & eq) | (kNone & ~eq);
  };
  std::int64_t b0 = at_min(fv[0], 0), b1 = kNone;
  for (std::size_t o = 0; o < row.padded_count; o += 2) {
    b0 = std::min(b0, at_min(fv[d[o]], d[o]));
    b1 = std::min(b1, at_min(fv[d[o + 1]], d[o + 1]));
  }
  return v + std::min(b0, b1);
}

// A sweep candidate: its key, the vertex, and where its basin list starts.
struct Candidate {
  std::uint64_t key;
  std::int32_t w;
  std::uint32_t list;
};

// Grows b to `size` elements, keeping its first `keep`.
template <typename T>
void grow_keeping(AlignedBuffer<T>& b, std::size_t keep, std::size_t size) {
  AlignedBuffer<T> bigger(size);
  std::copy(b.data(), b.data() + keep, bigger.data());
  b = std::move(bigger);
}

// The chunk table of step (c): the earliest list entry seen for a basin pair.
struct PairSlot {
  std::uint64_t pair, key;
  std::uint32_t entry;
};
constexpr int kPairSlotBits = 14;  // 16384 slots, 384 KiB: within a core's L2
constexpr std::size_t kPairSlots = std::size_t(1) << kPairSlotBits;
constexpr std::uint64_t kNoPair = ~std::uint64_t(0);
constexpr std::int32_t kStruck = -1;  // a list entry struck out (a later edge of its pair)

// Basin pair {a, b} as one word, the smaller id first.
inline std::uint64_t pair_id(std::int32_t a, std::int32_t b) {
  const std::uint32_t lo = std::uint32_t(std::min(a, b)), hi = std::uint32_t(std::max(a, b));
  return std::uint64_t(lo) << 32 | hi;
}

// A union-find node per basin: its parent and its minimum (vertex and value).
struct BasinNode {
  std::int32_t parent, vertex;
  double value;
};

// Descent to the fixed points, in place: ptr[v] becomes the fixed point reached
// from v (every path is compressed on the way, so the total work is O(n)).
void follow_in_place(std::vector<std::int64_t>& ptr, const OpContext& ctx) {
  const std::size_t n = ptr.size();
  for (std::size_t v = 0; v < n; ++v) {
    if ((v & 0xfffff) == 0) ctx.check();
    std::int64_t r = ptr[v];
    while (ptr[r] != r) r = ptr[r];
    std::int64_t u = std::int64_t(v);
    while (ptr[u] != r) {
      const std::int64_t next = ptr[u];
      ptr[u] = r;
      u = next;
    }
  }
}

inline bool same_pair(const BasinEdge& e, std::int64_t a, std::int64_t b) {
  return (e.a == a && e.b == b) || (e.a == b && e.b == a);
}

// An edge keyed for sorting without touching `values` again.
struct KeyedEdge {
  double wv;
  std::int64_t w;
  std::int32_t lo, hi;
};

inline bool key_less(const KeyedEdge& x, const KeyedEdge& y) {
  if (x.wv != y.wv) return x.wv < y.wv;
  if (x.w != y.w) return x.w < y.w;
  return x.lo != y.lo ? x.lo < y.lo : x.hi < y.hi;
}

void check_values(const double* values, std::size_t n) {
  if (n == 0) return;
  NNSCOPE_CHECK(values != nullptr, ErrorCode::InvalidArgument, "topology: values is null");
  require_finite(values, n, "topology values");
}

}  // namespace

std::size_t checked_grid_vertices(const GridShape& grid) {
  const std::size_t k = grid.dims.size();
  NNSCOPE_CHECK(k >= 1 && k <= kMaxGridDims, ErrorCode::InvalidArgument,
                "topology: a grid needs 1 to " + std::to_string(kMaxGridDims) + " dims (got " + std::to_string(k) +
                    ")");
  std::size_t n = 1;
  for (std::size_t d : grid.dims) {
    NNSCOPE_CHECK(d >= 1, ErrorCode::InvalidArgument, "topology: every grid dim must be at least 1");
    n = checked_mul(n, d);
  }
  NNSCOPE_CHECK(n <= std::size_t(std::numeric_limits<std::int64_t>::max() / 4), ErrorCode::TooLarge,
                "topology: the grid has too many vertices");
  return n;
}

std::vector<std::int64_t> grid_linear_offsets(const GridShape& grid, const std::vector<std::vector<int>>& offsets) {
  const std::size_t k = grid.dims.size();
  std::vector<std::int64_t> stride(k, 1);
  for (std::size_t a = k; a-- > 1;) stride[a - 1] = stride[a] * std::int64_t(grid.dims[a]);
  std::vector<std::int64_t> out;
  out.reserve(offsets.size());
  for (const auto& e : offsets) {
    std::int64_t d = 0;
    for (std::size_t a = 0; a < k; ++a) d += e[a] * stride[a];
    out.push_back(d);
  }
  return out;
}

void pairs_from_basin_edges(const double* values, std::size_t n, const std::vector<std::int64_t>& basin,
                            std::vector<BasinEdge> edges, BasinResult& result) {
  NNSCOPE_CHECK(basin.size() == n, ErrorCode::InvalidArgument, "topology: one basin label per vertex expected");
  // Compact ids of the minima, in vertex order.
  std::vector<std::int32_t> id(n, -1);
  std::vector<std::int64_t> minima;
  for (std::size_t v = 0; v < n; ++v) {
    const std::int64_t b = basin[v];
    NNSCOPE_CHECK(b >= 0 && std::size_t(b) < n, ErrorCode::InvalidArgument, "topology: basin label out of range");
    if (b == std::int64_t(v)) {
      NNSCOPE_CHECK(minima.size() < std::size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                    "topology: too many minima");
      id[v] = std::int32_t(minima.size());
      minima.push_back(b);
    }
  }
  for (std::size_t v = 0; v < n; ++v)
    NNSCOPE_CHECK(id[basin[v]] >= 0, ErrorCode::InvalidArgument, "topology: a basin label is not a minimum");
  const std::size_t nb = minima.size();

  // Keyed edges (lower id, upper id), counting-sorted by the lower id; per bucket
  // the earliest edge per upper id survives.
  std::vector<std::size_t> start(nb + 1, 0);
  std::size_t kept = 0;
  for (BasinEdge& e : edges) {
    NNSCOPE_CHECK(e.a >= 0 && std::size_t(e.a) < n && e.b >= 0 && std::size_t(e.b) < n && e.w >= 0 &&
                      std::size_t(e.w) < n,
                  ErrorCode::InvalidArgument, "topology: edge vertex out of range");
    NNSCOPE_CHECK(id[e.a] >= 0 && id[e.b] >= 0, ErrorCode::InvalidArgument, "topology: edge end is not a basin");
    if (e.a == e.b) continue;
    std::int64_t lo = id[e.a], hi = id[e.b];
    if (lo > hi) std::swap(lo, hi);
    ++start[lo + 1];
    edges[kept++] = {lo, hi, e.w};
  }
  for (std::size_t i = 0; i < nb; ++i) start[i + 1] += start[i];
  std::vector<KeyedEdge> sorted(kept);
  {
    std::vector<std::size_t> pos(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < kept; ++i) {
      const BasinEdge& e = edges[i];
      sorted[pos[e.a]++] = {values[e.w], e.w, std::int32_t(e.a), std::int32_t(e.b)};
    }
  }
  std::vector<BasinEdge>().swap(edges);
  // Within a bucket (contiguous, usually a handful of edges) order by (upper id,
  // key) and keep the first edge of each upper id.
  auto bucket_less = [](const KeyedEdge& x, const KeyedEdge& y) { return x.hi != y.hi ? x.hi < y.hi : key_less(x, y); };
  std::vector<KeyedEdge> uniq;
  for (std::size_t lo = 0; lo < nb; ++lo) {
    KeyedEdge* b = sorted.data() + start[lo];
    KeyedEdge* e = sorted.data() + start[lo + 1];
    if (e - b > 24) {
      std::sort(b, e, bucket_less);
    } else {
      for (KeyedEdge* p = b + 1; p < e; ++p) {
        const KeyedEdge x = *p;
        KeyedEdge* q = p;
        for (; q > b && bucket_less(x, q[-1]); --q) *q = q[-1];
        *q = x;
      }
    }
    for (KeyedEdge* p = b; p < e; ++p)
      if (p == b || p->hi != p[-1].hi) uniq.push_back(*p);
  }
  std::vector<KeyedEdge>().swap(sorted);
  std::sort(uniq.begin(), uniq.end(), key_less);

  // Union-find over basin ids; eldest[root] = the oldest minimum of the component
  // (its value kept alongside, so the sweep reads no scattered values).
  std::vector<std::int32_t> parent(nb), size(nb, 1);
  std::vector<std::int64_t> eldest(minima);
  std::vector<double> eldest_v(nb);
  for (std::size_t i = 0; i < nb; ++i) {
    parent[i] = std::int32_t(i);
    eldest_v[i] = values[minima[i]];
  }
  auto find = [&](std::int32_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  result.pairs.clear();
  result.pairs.reserve(nb);
  for (const KeyedEdge& e : uniq) {
    std::int32_t ra = find(e.lo), rb = find(e.hi);
    if (ra == rb) continue;
    const std::int64_t ma = eldest[ra], mb = eldest[rb];
    const double va = eldest_v[ra], vb = eldest_v[rb];
    const bool a_older = vertex_less(va, ma, vb, mb);
    if (a_older) result.pairs.push_back({mb, e.w, vb, e.wv});
    else result.pairs.push_back({ma, e.w, va, e.wv});
    if (size[ra] < size[rb]) std::swap(ra, rb);
    parent[rb] = ra;
    size[ra] += size[rb];
    eldest[ra] = a_older ? ma : mb;
    eldest_v[ra] = a_older ? va : vb;
  }
  // The sweep emits pairs in (death value, death vertex) order already: only the
  // pairs sharing a saddle need ordering by (birth value, birth vertex).
  auto& pairs = result.pairs;
  for (std::size_t i = 0; i < pairs.size();) {
    std::size_t j = i + 1;
    while (j < pairs.size() && pairs[j].death == pairs[i].death) ++j;
    if (j - i > 1)
      std::sort(pairs.begin() + i, pairs.begin() + j, [](const PersistencePair& x, const PersistencePair& y) {
        return vertex_less(x.birth_value, x.birth, y.birth_value, y.birth);
      });
    i = j;
  }
  result.essential.clear();
  for (std::size_t i = 0; i < nb; ++i)
    if (parent[i] == std::int32_t(i)) result.essential.push_back({eldest[i], eldest_v[i]});
  std::sort(result.essential.begin(), result.essential.end(), [](const EssentialClass& x, const EssentialClass& y) {
    return vertex_less(x.birth_value, x.birth, y.birth_value, y.birth);
  });
}

BasinResult basins_grid(const double* values, const GridShape& grid, Neighborhood nb, const OpContext& ctx) {
  const std::size_t n = checked_grid_vertices(grid);
  NNSCOPE_CHECK(n <= std::size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                "topology: basins on the CPU take grids of at most 2^31 - 1 vertices (got " + std::to_string(n) + ")");
  check_values(values, n);
  ctx.check();
  const RowStencil st = make_stencil(grid, nb);
  const std::size_t len = grid.dims.back();
  const std::size_t rows = n / len;
  const std::size_t grain = std::max<std::size_t>(1, kChunkVertices / len);  // rows per chunk
  const std::size_t chunks = (rows + grain - 1) / grain;
  const std::int64_t last_max = std::int64_t(len) - 1;
  auto chunk_vertices = [&](std::size_t c) {
    return std::pair<std::size_t, std::size_t>(c * grain * len, std::min(rows, (c + 1) * grain) * len);
  };
  // Per row: the stencil offsets that stay inside on the leading axes; per vertex
  // only the last axis is checked, and only at the two ends of the row.
  auto for_each_vertex = [&](std::size_t c, auto&& visit) {
    std::vector<std::int64_t> delta, padded;
    std::vector<int> last;
    const std::size_t rend = std::min(rows, (c + 1) * grain);
    for (std::size_t r = c * grain; r < rend; ++r) {
      row_offsets(grid, st, r, delta, last);
      const std::int64_t base = std::int64_t(r * len);
      padded.assign(delta.begin(), delta.end());
      padded.resize((delta.size() + 3) & ~std::size_t(3), 0);  // pads: v itself
      const Row row{base, last_max, delta.data(), last.data(), delta.size(), padded.data(), padded.size()};
      if (last_max < 2) {
        for (std::int64_t i = 0; i <= last_max; ++i) visit(row, i, std::true_type{});
      } else {
        visit(row, 0, std::true_type{});
        for (std::int64_t i = 1; i < last_max; ++i) visit(row, i, std::false_type{});
        visit(row, last_max, std::true_type{});
      }
    }
  };

  // (a) steepest-descent pointers; per chunk its minima count
  std::unique_ptr<std::atomic<std::int32_t>[]> ptr(new std::atomic<std::int32_t>[n]);
  std::vector<std::uint32_t> first_min(chunks + 1, 0);
  parallel_for(0, chunks, 1, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      ctx.check();
      std::uint32_t minima = 0;
      for_each_vertex(c, [&](const Row& row, std::int64_t i, auto checked) NNSCOPE_ALWAYS_INLINE {
        const std::int64_t v = row.base + i;
        const std::int64_t best = checked ? lowest_checked(values, row, i) : lowest_inside(values, v, row);
        ptr[v].store(std::int32_t(best), std::memory_order_relaxed);
        minima += best == v;
      });
      first_min[c + 1] = minima;
    }
  });
  for (std::size_t c = 0; c < chunks; ++c) first_min[c + 1] += first_min[c];
  const std::size_t nmin = first_min[chunks];
  // Basin ids in vertex order; a minimum's pointer becomes ~id.
  std::vector<std::int32_t> minv(nmin);
  parallel_for(0, chunks, 1, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      std::uint32_t id = first_min[c];
      const auto [v0, v1] = chunk_vertices(c);
      for (std::size_t v = v0; v < v1; ++v)
        if (ptr[v].load(std::memory_order_relaxed) == std::int32_t(v)) {
          minv[id] = std::int32_t(v);
          ptr[v].store(~std::int32_t(id++), std::memory_order_relaxed);
        }
    }
  });
  ctx.report(1, 5);

  // (b) basin ids by descent: every vertex of a walked path gets the path's basin id
  // (as ~id, like the minima), so later walks stop early. Concurrent walks only
  // ever read a pointer further down the same path or the path's final id.
  parallel_for(0, n, kChunkVertices, [&](std::size_t lo, std::size_t hi) {
    ctx.check();
    for (std::size_t v = lo; v < hi; ++v) {
      std::int32_t x = ptr[v].load(std::memory_order_relaxed);
      if (x < 0) continue;
      while (x >= 0) x = ptr[x].load(std::memory_order_relaxed);
      for (std::int32_t u = std::int32_t(v); u >= 0;) {
        const std::int32_t next = ptr[u].load(std::memory_order_relaxed);
        ptr[u].store(x, std::memory_order_relaxed);
        u = next;
      }
    }
  });
  // basin id of v
  auto basin_of = [&ptr](std::int64_t v) NNSCOPE_ALWAYS_INLINE { return ~ptr[v].load(std::memory_order_relaxed); };
  ctx.report(2, 5);

  // (c) candidates: the vertices w with a lower neighbour in another basin (every
  // merge happens at one). Per candidate a list [count, basin(w), other basins…] of
  // the distinct basins of its lower neighbours, and a record (key, w, list).
  // Only the earliest edge between two basins can merge them, so a chunk keeps one
  // entry per basin pair where it can: a direct-mapped table (per thread, cleared
  // per chunk) holds the earliest entry seen for a pair, and the later of two
  // entries is struck out (collisions just keep fewer out). Then per chunk the
  // lists are compacted, emptied candidates dropped, and the records bucketed by
  // value (KeyBuckets from a sample of the values), counted per chunk and bucket.
  const KeyBuckets bucket_of(sample_keys(n, [values](std::size_t v) { return sort_key(values[v]); }));
  constexpr std::size_t B = KeyBuckets::kBuckets;
  struct Part {
    AlignedBuffer<Candidate> rec;
    AlignedBuffer<std::uint8_t> bucket;
    AlignedBuffer<std::int32_t> lists;
  };
  std::vector<Part> parts(chunks);
  std::vector<std::uint32_t> rec_at(chunks * B, 0);   // [chunk][bucket]: counts, then destinations
  std::vector<std::uint64_t> list_at(chunks * B, 0);  // the same for list entries
  BasinResult res;
  res.basin.resize(n);
  parallel_for(0, chunks, 1, [&](std::size_t c0, std::size_t c1) {
    static thread_local std::vector<PairSlot> table;
    table.resize(kPairSlots);
    for (std::size_t c = c0; c < c1; ++c) {
      ctx.check();
      std::fill(table.begin(), table.end(), PairSlot{kNoPair, 0, 0});
      Part& part = parts[c];
      const auto [v0, v1] = chunk_vertices(c);
      part.rec.resize(v1 - v0);
      part.lists.resize(3 * (v1 - v0) + 64);
      std::size_t nrec = 0, used = 0;
      for_each_vertex(c, [&](const Row& row, std::int64_t i, auto checked) NNSCOPE_ALWAYS_INLINE {
        const std::int64_t v = row.base + i;
        const std::int32_t lv = basin_of(v);
        res.basin[v] = minv[lv];
        const double fv = values[v];
        if (used + row.count + 2 > part.lists.size()) grow_keeping(part.lists, used, 2 * part.lists.size() + row.count + 2);
        std::int32_t* out = part.lists.data() + used;
        std::int32_t* other = out + 2;
        std::int32_t cnt = 0;
        for (std::size_t o = 0; o < row.count; ++o) {
          if (checked) {
            const std::int64_t j = i + row.last[o];
            if (j < 0 || j > row.last_max) continue;
          }
          const std::int64_t u = v + row.delta[o];
          const std::int32_t lu = basin_of(u);
          const double fu = values[u];
          const bool take = (lu != lv) & ((fu < fv) | ((fu == fv) & (u < v)));
          other[cnt] = lu;  // kept only when taken (branch-free)
          cnt += take;
        }
        if (cnt == 0) return;
        if (cnt > 1) {  // distinct basins only
          std::int32_t k = 1;
          for (std::int32_t q = 1; q < cnt; ++q) {
            const std::int32_t x = other[q];
            bool dup = false;
            for (std::int32_t s = 0; s < k; ++s) dup |= other[s] == x;
            other[k] = x;
            k += !dup;
          }
          cnt = k;
        }
        out[0] = cnt + 1;
        out[1] = lv;
        const std::uint64_t key = sort_key(fv);
        // within a chunk vertices come in index order, so the new entry is the
        // earlier one exactly when its key is smaller
        for (std::int32_t q = 0; q < cnt; ++q) {
          const std::uint64_t pair = pair_id(lv, other[q]);
          PairSlot& s = table[(pair * 0x9E3779B97F4A7C15ull) >> (64 - kPairSlotBits)];
          const std::uint32_t here = std::uint32_t(used + 2 + std::size_t(q));
          if (s.pair != pair) {
            s = {pair, key, here};
          } else if (key < s.key) {
            part.lists[s.entry] = kStruck;
            s.key = key;
            s.entry = here;
          } else {
            other[q] = kStruck;
          }
        }
        part.rec[nrec++] = {key, std::int32_t(v), std::uint32_t(used)};
        used += std::size_t(cnt) + 2;
      });
      // compact in place; bucket and count the candidates that keep an entry
      std::uint32_t* rc = rec_at.data() + c * B;
      std::uint64_t* lc = list_at.data() + c * B;
      part.bucket.resize(nrec);
      std::size_t kept = 0, at = 0;
      for (std::size_t r = 0; r < nrec; ++r) {
        const Candidate cand = part.rec[r];
        const std::int32_t* from = part.lists.data() + cand.list;
        std::int32_t* to = part.lists.data() + at;
        const std::int32_t cnt = from[0] - 1, lv = from[1];
        std::int32_t k = 0;
        for (std::int32_t q = 0; q < cnt; ++q) {
          const std::int32_t x = from[2 + q];
          to[2 + k] = x;  // never ahead of `from`: compaction only moves entries left
          k += x != kStruck;
        }
        if (k == 0) continue;
        to[0] = k + 1;
        to[1] = lv;
        const std::size_t b = bucket_of(cand.key);
        ++rc[b];
        lc[b] += std::uint64_t(k) + 2;
        part.bucket[kept] = std::uint8_t(b);
        part.rec[kept++] = {cand.key, cand.w, std::uint32_t(at)};
        at += std::size_t(k) + 2;
      }
      part.rec.resize(kept);
      part.bucket.resize(kept);
      part.lists.resize(at);
    }
  });
  ptr.reset();
  ctx.report(3, 5);

  // (d) the records and their lists in bucket order (stable: chunk order within a
  // bucket, so ties stay in vertex order), then each bucket sorted by key.
  const std::vector<std::size_t> bucket_start = bucket_destinations(rec_at, chunks);
  const std::size_t m = bucket_start[B], entries = bucket_destinations(list_at, chunks)[B];
  NNSCOPE_CHECK(entries <= std::numeric_limits<std::uint32_t>::max(), ErrorCode::TooLarge,
                "topology: too many basin adjacencies for one sweep (2^32 list entries)");
  AlignedBuffer<Candidate> rec(m);
  AlignedBuffer<std::int32_t> lists(entries);
  parallel_for(0, chunks, 1, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      ctx.check();
      Part& part = parts[c];
      std::uint32_t* rdst = rec_at.data() + c * B;
      std::uint64_t* ldst = list_at.data() + c * B;
      for (std::size_t i = 0; i < part.rec.size(); ++i) {
        const std::size_t b = part.bucket[i];
        const std::int32_t* from = part.lists.data() + part.rec[i].list;
        const std::uint32_t to = std::uint32_t(ldst[b]);
        std::copy(from, from + from[0] + 1, lists.data() + to);
        ldst[b] += std::uint64_t(from[0]) + 1;
        rec[rdst[b]++] = {part.rec[i].key, part.rec[i].w, to};
      }
      part = Part();
    }
  });
  std::vector<Part>().swap(parts);
  sort_buckets(rec.data(), bucket_start, ctx);
  ctx.report(4, 5);

  // (e) the sweep over the candidates in (value, vertex) order: a union-find over
  // basin ids, union by age (the younger root links under the elder, so a root's
  // own minimum is its component's eldest), path halving. Each basin merged away
  // dies at w (elder rule). Lists are prefetched ahead, and their basins' nodes.
  AlignedBuffer<BasinNode> node(nmin);
  for (std::size_t i = 0; i < nmin; ++i) node[i] = {std::int32_t(i), minv[i], values[minv[i]]};
  BasinNode* N = node.data();
  auto find = [N](std::int32_t x) {
    for (;;) {
      const std::int32_t p = N[x].parent;
      if (p == x) return x;
      const std::int32_t g = N[p].parent;
      N[x].parent = g;
      if (g == p) return p;
      x = g;
    }
  };
  res.pairs.reserve(nmin);
  const std::int32_t* L0 = lists.data();
  std::vector<std::int32_t> roots(st.off.size() + 1);  // a list holds at most 1 + degree basins
  auto older = [N](std::int32_t a, std::int32_t b) {
    return vertex_less(N[a].value, N[a].vertex, N[b].value, N[b].vertex);
  };
  for (std::size_t t = 0; t < m; ++t) {
    if ((t & 0xffff) == 0) ctx.check();
    if (t + kListAhead < m) NNSCOPE_PREFETCH(L0 + rec[t + kListAhead].list);
    if (t + kNodeAhead < m) {
      const std::int32_t* ahead = L0 + rec[t + kNodeAhead].list;
      for (std::int32_t q = 1; q <= ahead[0]; ++q) NNSCOPE_PREFETCH(N + ahead[q]);
    }
    const Candidate& r = rec[t];
    const std::int32_t* list = L0 + r.list;
    std::int32_t* R = roots.data();
    std::size_t nr = 0;
    for (std::int32_t q = 1; q <= list[0]; ++q) {
      const std::int32_t x = find(list[q]);
      bool dup = false;
      for (std::size_t s = 0; s < nr; ++s) dup |= R[s] == x;
      R[nr] = x;
      nr += !dup;
    }
    if (nr < 2) continue;
    // the eldest root survives; the others die at w, their pairs ordered by
    // (birth value, birth vertex)
    if (nr == 2) {
      if (older(R[1], R[0])) std::swap(R[0], R[1]);
    } else {
      std::sort(R, R + nr, older);
    }
    const double wv = r.key == kZeroKey ? values[r.w] : key_value(r.key);
    for (std::size_t s = 1; s < nr; ++s) {
      BasinNode& y = N[R[s]];
      res.pairs.push_back({y.vertex, r.w, y.value, wv});
      y.parent = R[0];
    }
  }
  for (std::size_t i = 0; i < nmin; ++i)
    if (N[i].parent == std::int32_t(i)) res.essential.push_back({N[i].vertex, N[i].value});
  std::sort(res.essential.begin(), res.essential.end(), [](const EssentialClass& x, const EssentialClass& y) {
    return vertex_less(x.birth_value, x.birth, y.birth_value, y.birth);
  });
  ctx.report(5, 5);
  return res;
}

BasinResult basins_graph(const double* values, const CsrGraph& g, const OpContext& ctx) {
  const std::size_t n = g.vertices;
  NNSCOPE_CHECK(g.offsets.size() == n + 1, ErrorCode::InvalidArgument,
                "topology: CSR offsets must have vertices + 1 entries");
  NNSCOPE_CHECK(g.offsets[0] == 0 && g.offsets[n] == std::int64_t(g.adj.size()), ErrorCode::InvalidArgument,
                "topology: CSR offsets must run from 0 to adj.size()");
  NNSCOPE_CHECK(n <= std::size_t(std::numeric_limits<std::int32_t>::max()), ErrorCode::TooLarge,
                "topology: a CSR graph holds at most 2^31 - 1 vertices");
  for (std::size_t v = 0; v < n; ++v)
    NNSCOPE_CHECK(g.offsets[v] <= g.offsets[v + 1], ErrorCode::InvalidArgument,
                  "topology: CSR offsets must be non-decreasing");
  for (std::int32_t u : g.adj)
    NNSCOPE_CHECK(u >= 0 && std::size_t(u) < n, ErrorCode::InvalidArgument, "topology: CSR neighbour out of range");
  check_values(values, n);
  ctx.check();

  // (a) pointers over the symmetrised neighbourhoods (every entry relaxes both ends)
  std::vector<std::int64_t> ptr(n);
  for (std::size_t v = 0; v < n; ++v) ptr[v] = std::int64_t(v);
  for (std::size_t v = 0; v < n; ++v) {
    if ((v & 0xffff) == 0) ctx.check();
    for (std::int64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
      const std::int64_t u = g.adj[e];
      if (vertex_less(values[u], u, values[ptr[v]], ptr[v])) ptr[v] = u;
      if (vertex_less(values[v], std::int64_t(v), values[ptr[u]], ptr[u])) ptr[u] = std::int64_t(v);
    }
  }
  ctx.report(1, 4);
  BasinResult res;
  follow_in_place(ptr, ctx);
  res.basin = std::move(ptr);
  ctx.report(2, 4);
  std::vector<BasinEdge> edges;
  for (std::size_t v = 0; v < n; ++v) {
    if ((v & 0xffff) == 0) ctx.check();
    const std::int64_t bv = res.basin[v];
    for (std::int64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
      const std::int64_t u = g.adj[e];
      if (res.basin[u] == bv) continue;
      const std::int64_t w = vertex_less(values[u], u, values[v], std::int64_t(v)) ? std::int64_t(v) : u;
      if (!edges.empty() && same_pair(edges.back(), bv, res.basin[u])) {
        if (vertex_less(values[w], w, values[edges.back().w], edges.back().w)) edges.back().w = w;
        continue;
      }
      edges.push_back({bv, res.basin[u], w});
    }
  }
  ctx.report(3, 4);
  pairs_from_basin_edges(values, n, res.basin, std::move(edges), res);
  ctx.report(4, 4);
  return res;
}

}  // namespace nnscope::topology
