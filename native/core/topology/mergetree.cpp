// Merge trees and 0-dim persistence: the sort by value, union-find sweep, assembly of
// the branch decomposition and the tree, simplification. See mergetree.h.
#include "topology/mergetree.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>

#include "base/buffer.h"
#include "base/compiler.h"
#include "base/error.h"
#include "base/finite.h"
#include "base/threadpool.h"
#include "topology/keysort.h"

namespace nnscope::topology {

namespace {

constexpr std::size_t kMaxVertices = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
constexpr std::size_t kCheckEvery = 1 << 16;

void check_size(std::size_t n) {
  if (n == 0) fail(ErrorCode::InvalidArgument, "topology: empty input (no vertices)");
  if (n > kMaxVertices)
    fail(ErrorCode::TooLarge, "topology: " + std::to_string(n) + " vertices exceed the limit of 2^31 - 1");
}

// What the sweep produces, before assembly.
struct Raw {
  std::vector<std::int32_t> label;                 // branch per vertex
  std::vector<std::int32_t> ext, death, parent, last;  // per branch
  std::vector<std::int32_t> dying;                 // branch ids in order of death (ties: ascending id)
};

// Union-find cell, 8 bytes: `link`, the rank, and the grid boundary code (so a
// vertex's own lookups touch one line). link ≥ 0: the parent of a non-root;
// link = ~b < 0: a root whose component's elder branch is b (branch ids are
// < 2^31 − 1, so ~b ≠ kUnswept); link = kUnswept: the vertex is not swept yet.
// Keeping the branch in the root's cell saves the sweep one random access per find.
constexpr std::int32_t kUnswept = std::numeric_limits<std::int32_t>::min();
struct Cell {
  std::int32_t link;
  std::uint16_t code;
  std::uint8_t rank;
  std::uint8_t pad;
};

constexpr std::size_t kPrefetchAhead = 16;

// The union-find sweep over `order`. nbrs(v, visit) calls visit(u) for every
// neighbour u of v (duplicates and v itself are harmless); prefetch(v, cells)
// hints the memory that nbrs(v) will touch (the order is random in memory, so the
// sweep is latency-bound without it).
// cells: n cells with link = kUnswept (and the codes, on grids).
template <typename Nbrs, typename Prefetch>
void sweep(const std::vector<std::int32_t>& order, std::vector<Cell>& cells, Nbrs&& nbrs, Prefetch&& prefetch,
           Raw& raw, const OpContext& ctx) {
  const std::size_t n = order.size();
  raw.label.assign(n, -1);
  Cell* uf = cells.data();
  std::int32_t* label = raw.label.data();
  std::vector<std::int32_t> roots, dy;
  roots.reserve(64);
  auto find = [uf](std::int32_t x) {  // path halving; x is swept
    for (;;) {
      const std::int32_t p = uf[x].link;
      if (p < 0) return x;
      const std::int32_t g = uf[p].link;
      if (g < 0) return p;
      uf[x].link = g;
      x = g;
    }
  };
  auto comp = [uf](std::int32_t root) { return ~uf[root].link; };
  for (std::size_t t = 0; t < n; ++t) {
    if ((t & (kCheckEvery - 1)) == 0) {
      ctx.check();
      ctx.report(double(t), double(n));
    }
    if (t + kPrefetchAhead < n) {
      const std::int32_t w = order[t + kPrefetchAhead];
      prefetch(w, uf);
      NNSCOPE_PREFETCH(label + w);
    }
    const std::int32_t v = order[t];
    roots.clear();
    nbrs(v, [&](std::int32_t u) {
      if (uf[u].link == kUnswept) return;
      const std::int32_t r = find(u);
      for (std::int32_t s : roots)
        if (s == r) return;
      roots.push_back(r);
    });
    if (roots.empty()) {
      const auto b = static_cast<std::int32_t>(raw.ext.size());
      raw.ext.push_back(v);
      raw.death.push_back(-1);
      raw.parent.push_back(-1);
      raw.last.push_back(v);
      uf[v].link = ~b;
      label[v] = b;
    } else if (roots.size() == 1) {
      const std::int32_t r = roots[0];
      uf[v].link = r;
      const std::int32_t b = comp(r);
      label[v] = b;
      raw.last[b] = v;
    } else {
      std::int32_t elder = comp(roots[0]);
      for (std::int32_t r : roots) elder = std::min(elder, comp(r));
      dy.clear();
      for (std::int32_t r : roots)
        if (comp(r) != elder) dy.push_back(comp(r));
      std::sort(dy.begin(), dy.end());
      for (std::int32_t b : dy) {
        raw.death[b] = v;
        raw.parent[b] = elder;
        raw.dying.push_back(b);
      }
      std::int32_t root = roots[0];
      for (std::size_t i = 1; i < roots.size(); ++i) {
        std::int32_t a = root, c = roots[i];
        if (uf[a].rank < uf[c].rank) std::swap(a, c);
        uf[c].link = a;
        if (uf[a].rank == uf[c].rank) ++uf[a].rank;
        root = a;
      }
      uf[root].link = ~elder;
      uf[v].link = root;
      label[v] = elder;
      raw.last[elder] = v;
    }
  }
  ctx.report(double(n), double(n));
}

// Builds extrema, saddles, nodes, arcs and roots from branches, pairs and essential.
void finish(MergeTree& t) {
  const std::size_t B = t.branches.size();
  t.extrema.resize(B);
  t.nodes.clear();
  t.nodes.reserve(B + t.pairs.size() + t.essential.size());
  for (std::size_t b = 0; b < B; ++b) {
    t.extrema[b] = t.branches[b].extremum;
    t.nodes.push_back({t.branches[b].extremum, t.branches[b].birth_value, NodeType::Extremum, 0});
  }
  // Saddle nodes, in sweep order; the pairs of one saddle are adjacent and share `into`.
  t.saddles.clear();
  t.saddle_multiplicity.clear();
  std::vector<std::int32_t> death_node(B, -1);
  std::vector<std::int32_t> chain_count(B + 1, 0), saddle_into;
  for (const MergePair& p : t.pairs) {
    if (t.saddles.empty() || t.saddles.back() != p.death) {
      t.saddles.push_back(p.death);
      t.saddle_multiplicity.push_back(0);
      t.nodes.push_back({p.death, p.death_value, NodeType::Saddle, 0});
      saddle_into.push_back(p.into);
      ++chain_count[p.into + 1];
    }
    ++t.saddle_multiplicity.back();
    ++t.nodes.back().multiplicity;
    death_node[p.branch] = static_cast<std::int32_t>(t.nodes.size() - 1);
  }
  // chain[b]: the saddle nodes on branch b's chain, in sweep order (CSR).
  for (std::size_t b = 0; b < B; ++b) chain_count[b + 1] += chain_count[b];
  std::vector<std::int32_t> chain(t.saddles.size()), fill(chain_count.begin(), chain_count.end() - 1);
  for (std::size_t s = 0; s < t.saddles.size(); ++s)
    chain[fill[saddle_into[s]]++] = static_cast<std::int32_t>(B + s);
  // Roots.
  t.roots.clear();
  std::vector<std::int32_t> root_of(B, -1);
  for (const EssentialComponent& e : t.essential) {
    const std::int32_t b = e.branch;
    std::int32_t node = -1;
    if (e.last == t.branches[b].extremum) {
      node = b;
    } else if (chain_count[b + 1] > chain_count[b] && t.nodes[chain[chain_count[b + 1] - 1]].vertex == e.last) {
      node = chain[chain_count[b + 1] - 1];
    } else {
      node = static_cast<std::int32_t>(t.nodes.size());
      t.nodes.push_back({e.last, e.last_value, NodeType::Root, 0});
    }
    root_of[b] = node;
    t.roots.push_back(node);
  }
  // Arcs along each branch's chain.
  t.arcs.clear();
  t.arcs.reserve(t.nodes.size());
  auto arc = [&](std::int32_t c, std::int32_t p, std::int32_t b) {
    const TreeNode &nc = t.nodes[c], &np = t.nodes[p];
    t.arcs.push_back({c, p, nc.vertex, np.vertex, nc.value, np.value, b});
  };
  for (std::size_t b = 0; b < B; ++b) {
    const auto bi = static_cast<std::int32_t>(b);
    std::int32_t prev = bi;
    for (std::int32_t k = chain_count[b]; k < chain_count[b + 1]; ++k) {
      arc(prev, chain[k], bi);
      prev = chain[k];
    }
    const std::int32_t end = t.branches[b].saddle >= 0 ? death_node[b] : root_of[b];
    if (end >= 0 && end != prev) arc(prev, end, bi);
  }
}

// A new tree holding the kept branches (essential ones always kept); each removed
// branch merges into its nearest kept ancestor.
MergeTree compact(const MergeTree& in, const std::vector<char>& keep) {
  const std::size_t B = in.branches.size();
  std::vector<std::int32_t> map(B);
  MergeTree out;
  out.kind = in.kind;
  out.vertices = in.vertices;
  out.min_value = in.min_value;
  out.max_value = in.max_value;
  for (std::size_t b = 0; b < B; ++b) {
    const Branch& br = in.branches[b];
    if (keep[b] || br.parent < 0) {
      map[b] = static_cast<std::int32_t>(out.branches.size());
      Branch nb = br;
      nb.parent = br.parent >= 0 ? map[br.parent] : -1;
      nb.size = 0;
      out.branches.push_back(nb);
    } else {
      map[b] = map[br.parent];  // parent id < b: already mapped
    }
  }
  for (std::size_t b = 0; b < B; ++b) out.branches[map[b]].size += in.branches[b].size;
  out.segmentation.resize(in.segmentation.size());
  parallel_for(0, in.segmentation.size(), 1 << 16, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t v = lo; v < hi; ++v) out.segmentation[v] = map[in.segmentation[v]];
  });
  for (const MergePair& p : in.pairs) {
    if (!(keep[p.branch])) continue;
    MergePair q = p;
    q.branch = map[p.branch];
    q.into = map[p.into];
    out.pairs.push_back(q);
  }
  out.essential = in.essential;
  for (EssentialComponent& e : out.essential) e.branch = map[e.branch];
  finish(out);
  return out;
}

MergeTree assemble(Raw&& raw, const double* f, std::size_t n, const std::vector<std::int32_t>& order,
                   const MergeTreeOptions& opts) {
  const bool join = opts.kind == TreeKind::Join;
  const double inf = join ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  MergeTree t;
  t.kind = opts.kind;
  t.vertices = n;
  t.min_value = join ? f[order.front()] : f[order.back()];
  t.max_value = join ? f[order.back()] : f[order.front()];
  const std::size_t B = raw.ext.size();
  t.branches.resize(B);
  for (std::size_t b = 0; b < B; ++b) {
    Branch& br = t.branches[b];
    br.extremum = raw.ext[b];
    br.saddle = raw.death[b];
    br.birth_value = f[raw.ext[b]];
    br.death_value = raw.death[b] >= 0 ? f[raw.death[b]] : inf;
    br.parent = raw.parent[b];
  }
  for (std::int32_t l : raw.label) ++t.branches[l].size;
  t.pairs.reserve(raw.dying.size());
  for (std::int32_t b : raw.dying) {
    const Branch& br = t.branches[b];
    t.pairs.push_back({br.extremum, br.saddle, br.birth_value, br.death_value,
                       std::fabs(br.death_value - br.birth_value), b, br.parent});
  }
  std::vector<std::int64_t> sub(B);
  for (std::size_t b = 0; b < B; ++b) sub[b] = t.branches[b].size;
  for (std::size_t b = B; b-- > 0;)
    if (t.branches[b].parent >= 0) sub[t.branches[b].parent] += sub[b];
  for (std::size_t b = 0; b < B; ++b)
    if (raw.death[b] < 0) {
      EssentialComponent e;
      e.birth = raw.ext[b];
      e.birth_value = f[raw.ext[b]];
      e.last = raw.last[b];
      e.last_value = f[raw.last[b]];
      e.persistence = std::fabs(e.last_value - e.birth_value);
      e.branch = static_cast<std::int32_t>(b);
      e.vertices = sub[b];
      t.essential.push_back(e);
    }
  t.segmentation = std::move(raw.label);
  bool drop = false;
  if (!opts.keep_zero_persistence)
    for (const MergePair& p : t.pairs) drop |= !(p.persistence > 0.0);
  if (!drop) {
    finish(t);
    return t;
  }
  std::vector<char> keep(B, 1);
  for (const MergePair& p : t.pairs) keep[p.branch] = p.persistence > 0.0;
  return compact(t, keep);
}

void check_values(const double* values, std::size_t n, std::size_t expected) {
  check_size(expected);
  if (n != expected)
    fail(ErrorCode::Shape, "topology: " + std::to_string(n) + " values for " + std::to_string(expected) + " vertices");
  if (!values) fail(ErrorCode::InvalidArgument, "topology: values is null");
}

}  // namespace

std::vector<std::int32_t> sweep_order(const double* f, std::size_t n, bool descending, const OpContext& ctx) {
  check_size(n);
  require_finite(f, n, "topology values");
  // A sample sort (keysort.h): position p holds vertex p (or n−1−p, with the keys
  // complemented, for the exact reverse); chunks count their keys per value bucket,
  // scatter them behind the earlier chunks' within each bucket (stable, so ties stay
  // in position order), and each bucket is sorted in cache. The permutation is a
  // function of the keys alone: the same for any thread count.
  struct Rec {
    std::uint64_t key;
    std::int32_t v;
  };
  auto vertex_at = [&](std::size_t p) { return descending ? n - 1 - p : p; };
  auto key_at = [&](std::size_t p) {
    const std::uint64_t k = sort_key(f[vertex_at(p)]);
    return descending ? ~k : k;
  };
  constexpr std::size_t B = KeyBuckets::kBuckets, kChunk = std::size_t(1) << 16;
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  const KeyBuckets bucket_of(sample_keys(n, key_at));
  std::vector<std::uint32_t> at(chunks * B, 0);  // [chunk][bucket]: counts, then destinations
  parallel_for(0, n, kChunk, [&](std::size_t lo, std::size_t hi) {
    ctx.check();
    std::uint32_t* h = at.data() + (lo / kChunk) * B;
    for (std::size_t p = lo; p < hi; ++p) ++h[bucket_of(key_at(p))];
  });
  const std::vector<std::size_t> start = bucket_destinations(at, chunks);
  AlignedBuffer<Rec> rec(n);
  parallel_for(0, n, kChunk, [&](std::size_t lo, std::size_t hi) {
    ctx.check();
    std::uint32_t* dst = at.data() + (lo / kChunk) * B;
    for (std::size_t p = lo; p < hi; ++p) {
      const std::uint64_t key = key_at(p);
      rec[dst[bucket_of(key)]++] = {key, static_cast<std::int32_t>(vertex_at(p))};
    }
  });
  sort_buckets(rec.data(), start, ctx);
  std::vector<std::int32_t> order(n);
  parallel_for(0, n, kChunk, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) order[i] = rec[i].v;
  });
  return order;
}

MergeTree merge_tree(const GridShape& shape, Neighborhood nb, const double* values, std::size_t n,
                     const MergeTreeOptions& opts, const OpContext& ctx) {
  const std::size_t k = shape.dims.size();
  if (k == 0 || k > kMaxGridDims)
    fail(ErrorCode::InvalidArgument, "topology: a grid needs 1 to 8 axes, got " + std::to_string(k));
  std::size_t total = 1;
  for (std::size_t d : shape.dims) {
    if (d == 0) fail(ErrorCode::InvalidArgument, "topology: empty grid (an axis of length 0)");
    if (total > kMaxVertices / d) fail(ErrorCode::TooLarge, "topology: grid has more than 2^31 - 1 vertices");
    total *= d;
  }
  check_values(values, n, total);
  const std::vector<std::int32_t> order = sweep_order(values, n, opts.kind == TreeKind::Split, ctx);

  // Boundary code per vertex: bit 2i = (i_i == 0), bit 2i+1 = (i_i == n_i − 1).
  std::vector<Cell> cells(n);
  const auto& dims = shape.dims;
  parallel_for(0, n, 1 << 16, [&](std::size_t lo, std::size_t hi) {
    std::size_t c[kMaxGridDims];
    std::size_t rem = lo;
    for (std::size_t i = k; i-- > 0;) {
      c[i] = rem % dims[i];
      rem /= dims[i];
    }
    for (std::size_t v = lo; v < hi; ++v) {
      unsigned code = 0;
      for (std::size_t i = 0; i < k; ++i)
        code |= (unsigned(c[i] == 0) << (2 * i)) | (unsigned(c[i] + 1 == dims[i]) << (2 * i + 1));
      cells[v] = Cell{kUnswept, static_cast<std::uint16_t>(code), 0, 0};
      for (std::size_t i = k; i-- > 0;) {
        if (++c[i] < dims[i]) break;
        c[i] = 0;
      }
    }
  });
  const auto offsets = neighbor_offsets(k, nb);
  std::vector<std::int32_t> delta;
  std::vector<std::uint16_t> forbid;
  std::vector<std::int64_t> stride(k, 1);
  for (std::size_t i = k - 1; i-- > 0;) stride[i] = stride[i + 1] * std::int64_t(dims[i + 1]);
  for (const auto& e : offsets) {
    std::int64_t dl = 0;
    unsigned fb = 0;
    for (std::size_t i = 0; i < k; ++i) {
      dl += e[i] * stride[i];
      if (e[i] < 0) fb |= 1u << (2 * i);
      if (e[i] > 0) fb |= 1u << (2 * i + 1);
    }
    delta.push_back(static_cast<std::int32_t>(dl));
    forbid.push_back(static_cast<std::uint16_t>(fb));
  }
  // One prefetch per cache-line group: offsets that differ only on the last axis.
  std::vector<std::int32_t> pdelta;
  for (const auto& e : offsets) {
    std::int64_t dl = 0;
    for (std::size_t i = 0; i + 1 < k; ++i) dl += e[i] * stride[i];
    if (std::find(pdelta.begin(), pdelta.end(), std::int32_t(dl)) == pdelta.end()) pdelta.push_back(std::int32_t(dl));
  }
  const std::size_t ne = delta.size(), np = pdelta.size();
  const std::int32_t* dp = delta.data();
  const std::int32_t* pp = pdelta.data();
  const std::uint16_t* fp = forbid.data();
  const Cell* cp = cells.data();
  Raw raw;
  sweep(
      order, cells,
      [&](std::int32_t v, auto&& visit) {
        const unsigned code = cp[v].code;
        if (code == 0) {
          for (std::size_t e = 0; e < ne; ++e) visit(v + dp[e]);
        } else {
          for (std::size_t e = 0; e < ne; ++e)
            if (!(code & fp[e])) visit(v + dp[e]);
        }
      },
      [&](std::int32_t w, const Cell* c) NNSCOPE_ALWAYS_INLINE {
        NNSCOPE_PREFETCH(c + w);
        for (std::size_t e = 0; e < np; ++e) {
          const std::int64_t u = std::int64_t(w) + pp[e];  // may leave the grid: clamp (a hint only)
          NNSCOPE_PREFETCH(c + (u < 0 ? 0 : u >= std::int64_t(n) ? std::int64_t(n) - 1 : u));
        }
      },
      raw, ctx);
  return assemble(std::move(raw), values, n, order, opts);
}

MergeTree merge_tree(const CsrGraph& g, const double* values, std::size_t n, const MergeTreeOptions& opts,
                     const OpContext& ctx) {
  const std::size_t nv = g.vertices;
  check_values(values, n, nv);
  if (g.offsets.size() != nv + 1)
    fail(ErrorCode::InvalidArgument, "topology: CSR offsets must have vertices + 1 entries");
  if (g.offsets[0] != 0 || g.offsets[nv] != static_cast<std::int64_t>(g.adj.size()))
    fail(ErrorCode::InvalidArgument, "topology: CSR offsets must start at 0 and end at adj.size()");
  for (std::size_t v = 0; v < nv; ++v)
    if (g.offsets[v + 1] < g.offsets[v]) fail(ErrorCode::InvalidArgument, "topology: CSR offsets decrease");
  for (std::int32_t u : g.adj)
    if (u < 0 || static_cast<std::size_t>(u) >= nv)
      fail(ErrorCode::InvalidArgument, "topology: CSR neighbour index out of range");
  CsrGraph sym;  // the union of both directions, built only for an asymmetric list
  const CsrGraph* gp = &g;
  if (!opts.assume_symmetric) {
    // Sorted, de-duplicated rows versus the transpose of those rows.
    std::vector<std::int32_t> s(g.adj.size());
    std::vector<std::int64_t> so(nv + 1, 0);
    std::size_t m = 0;
    for (std::size_t v = 0; v < nv; ++v) {
      const std::size_t b = m, len = static_cast<std::size_t>(g.offsets[v + 1] - g.offsets[v]);
      std::copy(g.adj.begin() + g.offsets[v], g.adj.begin() + g.offsets[v + 1], s.begin() + b);
      std::sort(s.begin() + b, s.begin() + b + len);
      m = std::unique(s.begin() + b, s.begin() + b + len) - s.begin();
      so[v + 1] = static_cast<std::int64_t>(m);
    }
    std::vector<std::int64_t> to(nv + 1, 0);
    for (std::size_t i = 0; i < m; ++i) ++to[s[i] + 1];
    for (std::size_t v = 0; v < nv; ++v) to[v + 1] += to[v];
    std::vector<std::int64_t> fill(to.begin(), to.end() - 1);
    std::vector<std::int32_t> tr(m);
    for (std::size_t v = 0; v < nv; ++v)
      for (std::int64_t i = so[v]; i < so[v + 1]; ++i) tr[fill[s[i]]++] = static_cast<std::int32_t>(v);
    if (to != so || !std::equal(tr.begin(), tr.end(), s.begin())) {
      sym.vertices = nv;
      sym.offsets.assign(nv + 1, 0);
      sym.adj.reserve(2 * m);
      for (std::size_t v = 0; v < nv; ++v) {
        std::set_union(s.begin() + so[v], s.begin() + so[v + 1], tr.begin() + to[v], tr.begin() + to[v + 1],
                       std::back_inserter(sym.adj));
        sym.offsets[v + 1] = static_cast<std::int64_t>(sym.adj.size());
      }
      gp = &sym;
    }
  }
  const std::vector<std::int32_t> order = sweep_order(values, n, opts.kind == TreeKind::Split, ctx);
  const std::int64_t* off = gp->offsets.data();
  const std::int32_t* adj = gp->adj.data();
  std::vector<Cell> cells(n, Cell{kUnswept, 0, 0, 0});
  Raw raw;
  sweep(
      order, cells,
      [&](std::int32_t v, auto&& visit) {
        for (std::int64_t i = off[v], e = off[v + 1]; i < e; ++i) visit(adj[i]);
      },
      [&](std::int32_t w, const Cell* c) NNSCOPE_ALWAYS_INLINE {
        for (std::int64_t i = off[w], e = off[w + 1]; i < e; ++i) NNSCOPE_PREFETCH(c + adj[i]);
      },
      raw, ctx);
  return assemble(std::move(raw), values, n, order, opts);
}

MergeTree simplify(const MergeTree& tree, const SimplifyOptions& opts) {
  if (!(opts.epsilon >= 0.0) || !std::isfinite(opts.epsilon))
    fail(ErrorCode::InvalidArgument, "topology: simplification epsilon must be finite and >= 0");
  const double thr = opts.relative ? opts.epsilon * (tree.max_value - tree.min_value) : opts.epsilon;
  std::vector<char> keep(tree.branches.size(), 1);
  for (const MergePair& p : tree.pairs) keep[p.branch] = !(p.persistence < thr);
  return compact(tree, keep);
}

}  // namespace nnscope::topology
