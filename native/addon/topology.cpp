// nnscope addon: topology — merge trees, simplification, metrics, profiles,
// basin persistence (CPU / CUDA), kNN graphs and diagram distances. Translation
// only: the mathematics is in core/topology. A merge tree stays native behind an
// External (with a float64 copy of its values) so that simplify / metrics /
// profile run on it without a round trip through JS arrays.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/device.h"
#include "common.h"
#include "topology/basins.h"
#include "topology/diagram.h"
#include "topology/dispatch.h"
#include "topology/knn.h"
#include "topology/mergetree.h"
#include "topology/metrics.h"
#include "topology/profile.h"

namespace nnscope::addon {

namespace {

using namespace nnscope::topology;

struct TreeState {
  MergeTree tree;
  std::vector<double> values;
};
using TreePtr = std::shared_ptr<TreeState>;

// The scalar field: a Float64Array or a Float32Array (widened to float64 in run()).
struct FieldArg {
  const double* f64 = nullptr;
  const float* f32 = nullptr;
  std::size_t n = 0;
  std::vector<double> widen() const {
    if (f64) return std::vector<double>(f64, f64 + n);
    return std::vector<double>(f32, f32 + n);
  }
};
FieldArg field_arg(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  FieldArg f;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    auto a = get_array<float>(o, key);
    f.f32 = a.data;
    f.n = a.length;
  } else {
    auto a = get_array<double>(o, key);
    f.f64 = a.data;
    f.n = a.length;
  }
  return f;
}

Neighborhood neighborhood_arg(const std::string& s) {
  if (s == "axis") return Neighborhood::Axis;
  if (s == "freudenthal") return Neighborhood::Freudenthal;
  if (s == "full") return Neighborhood::Full;
  fail(ErrorCode::InvalidArgument, "neighborhood must be 'axis', 'freudenthal' or 'full'");
}

// The graph of a call: {grid: number[], neighborhood} or {offsets: Int32Array, adjacency: Int32Array}.
struct GraphArg {
  bool grid = false;
  GridShape shape;
  Neighborhood nb = Neighborhood::Freudenthal;
  const std::int32_t* offsets = nullptr;
  const std::int32_t* adj = nullptr;
  std::size_t vertices = 0, edges = 0;
  CsrGraph csr() const {
    CsrGraph g;
    g.vertices = vertices;
    g.offsets.assign(offsets, offsets + vertices + 1);
    g.adj.assign(adj, adj + edges);
    return g;
  }
};
GraphArg graph_arg(const Napi::Object& o) {
  GraphArg g;
  if (has(o, "grid")) {
    g.grid = true;
    g.shape.dims = get_sizes(o, "grid");
    g.nb = neighborhood_arg(get_string(o, "neighborhood"));
    g.vertices = g.shape.vertices();
  } else {
    auto off = get_array<std::int32_t>(o, "offsets");
    auto adj = get_array<std::int32_t>(o, "adjacency");
    if (off.length == 0) fail(ErrorCode::Shape, "'offsets' must have vertices + 1 entries");
    g.offsets = off.data;
    g.adj = adj.data;
    g.vertices = off.length - 1;
    g.edges = adj.length;
  }
  return g;
}

Napi::Float64Array f64_of(Napi::Env env, const std::vector<double>& v) { return copy_to_js<Napi::Float64Array>(env, v); }
Napi::Int32Array i32_of(Napi::Env env, const std::vector<std::int32_t>& v) { return copy_to_js<Napi::Int32Array>(env, v); }
template <typename F>
Napi::Float64Array f64_map(Napi::Env env, std::size_t n, F f) {
  auto a = Napi::Float64Array::New(env, n);
  for (std::size_t i = 0; i < n; ++i) a[i] = f(i);
  return a;
}
template <typename F>
Napi::Int32Array i32_map(Napi::Env env, std::size_t n, F f) {
  auto a = Napi::Int32Array::New(env, n);
  for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<std::int32_t>(f(i));
  return a;
}

Napi::Object tree_to_js(Napi::Env env, const TreePtr& st) {
  const MergeTree& t = st->tree;
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", t.kind == TreeKind::Join ? "join" : "split");
  o.Set("vertices", double(t.vertices));
  o.Set("minValue", t.min_value);
  o.Set("maxValue", t.max_value);

  const auto& P = t.pairs;
  Napi::Object pairs = Napi::Object::New(env);
  pairs.Set("birth", i32_map(env, P.size(), [&](std::size_t i) { return P[i].birth; }));
  pairs.Set("death", i32_map(env, P.size(), [&](std::size_t i) { return P[i].death; }));
  pairs.Set("birthValue", f64_map(env, P.size(), [&](std::size_t i) { return P[i].birth_value; }));
  pairs.Set("deathValue", f64_map(env, P.size(), [&](std::size_t i) { return P[i].death_value; }));
  pairs.Set("persistence", f64_map(env, P.size(), [&](std::size_t i) { return P[i].persistence; }));
  pairs.Set("branch", i32_map(env, P.size(), [&](std::size_t i) { return P[i].branch; }));
  pairs.Set("into", i32_map(env, P.size(), [&](std::size_t i) { return P[i].into; }));
  o.Set("pairs", pairs);

  Napi::Array ess = Napi::Array::New(env, t.essential.size());
  for (std::size_t i = 0; i < t.essential.size(); ++i) {
    const auto& e = t.essential[i];
    Napi::Object eo = Napi::Object::New(env);
    eo.Set("birth", double(e.birth));
    eo.Set("birthValue", e.birth_value);
    eo.Set("last", double(e.last));
    eo.Set("lastValue", e.last_value);
    eo.Set("persistence", e.persistence);
    eo.Set("branch", double(e.branch));
    eo.Set("vertices", double(e.vertices));
    ess.Set(uint32_t(i), eo);
  }
  o.Set("essential", ess);

  const auto& B = t.branches;
  Napi::Object br = Napi::Object::New(env);
  br.Set("extremum", i32_map(env, B.size(), [&](std::size_t i) { return B[i].extremum; }));
  br.Set("saddle", i32_map(env, B.size(), [&](std::size_t i) { return B[i].saddle; }));
  br.Set("birthValue", f64_map(env, B.size(), [&](std::size_t i) { return B[i].birth_value; }));
  br.Set("deathValue", f64_map(env, B.size(), [&](std::size_t i) { return B[i].death_value; }));
  br.Set("parent", i32_map(env, B.size(), [&](std::size_t i) { return B[i].parent; }));
  br.Set("size", f64_map(env, B.size(), [&](std::size_t i) { return double(B[i].size); }));
  o.Set("branches", br);

  o.Set("saddles", i32_map(env, t.saddles.size(), [&](std::size_t i) { return t.saddles[i]; }));
  o.Set("saddleMultiplicity", i32_of(env, t.saddle_multiplicity));

  const auto& N = t.nodes;
  Napi::Object nodes = Napi::Object::New(env);
  nodes.Set("vertex", i32_map(env, N.size(), [&](std::size_t i) { return N[i].vertex; }));
  nodes.Set("value", f64_map(env, N.size(), [&](std::size_t i) { return N[i].value; }));
  nodes.Set("type", i32_map(env, N.size(), [&](std::size_t i) { return int(N[i].type); }));
  nodes.Set("multiplicity", i32_map(env, N.size(), [&](std::size_t i) { return N[i].multiplicity; }));
  o.Set("nodes", nodes);

  const auto& A = t.arcs;
  Napi::Object arcs = Napi::Object::New(env);
  arcs.Set("child", i32_map(env, A.size(), [&](std::size_t i) { return A[i].child; }));
  arcs.Set("parent", i32_map(env, A.size(), [&](std::size_t i) { return A[i].parent; }));
  arcs.Set("branch", i32_map(env, A.size(), [&](std::size_t i) { return A[i].branch; }));
  o.Set("arcs", arcs);
  o.Set("roots", i32_of(env, t.roots));
  o.Set("segmentation", i32_of(env, t.segmentation));

  auto* holder = new TreePtr(st);
  o.Set("handle", Napi::External<TreePtr>::New(env, holder, [](Napi::Env, TreePtr* p) { delete p; }));
  return o;
}

TreePtr tree_arg(const Napi::Object& o) {
  Napi::Value v = o.Get("handle");
  if (!v.IsExternal()) fail(ErrorCode::InvalidArgument, "'handle' must be a merge tree handle");
  return *v.As<Napi::External<TreePtr>>().Data();
}

// mergeTree({values, grid + neighborhood | offsets + adjacency, kind, keepZero})
Napi::Value MergeTreeOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    FieldArg f = field_arg(o, "values");
    GraphArg g = graph_arg(o);
    MergeTreeOptions opts;
    opts.kind = get_string(o, "kind") == "split" ? TreeKind::Split : TreeKind::Join;
    opts.keep_zero_persistence = get_bool(o, "keepZero", false);
    auto st = std::make_shared<TreeState>();
    return start_op(
        info.Env(), o,
        [=](const OpContext& ctx) {
          st->values = f.widen();
          if (g.grid) st->tree = merge_tree(g.shape, g.nb, st->values.data(), st->values.size(), opts, ctx);
          else st->tree = merge_tree(g.csr(), st->values.data(), st->values.size(), opts, ctx);
        },
        [st](Napi::Env env) -> Napi::Value { return tree_to_js(env, st); });
  });
}

// simplify({handle, epsilon, relative})
Napi::Value SimplifyOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    TreePtr src = tree_arg(o);
    SimplifyOptions opts;
    opts.epsilon = get_number(o, "epsilon");
    opts.relative = get_bool(o, "relative", false);
    auto st = std::make_shared<TreeState>();
    return start_op(
        info.Env(), o,
        [=](const OpContext&) {
          st->tree = simplify(src->tree, opts);
          st->values = src->values;
        },
        [st](Napi::Env env) -> Napi::Value { return tree_to_js(env, st); });
  });
}

Napi::Object stats_to_js(Napi::Env env, const PersistenceStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", double(s.count));
  o.Set("total", s.total);
  o.Set("average", s.average);
  o.Set("maximum", s.maximum);
  return o;
}

// metrics({handle}) — synchronous: O(branches + vertices).
Napi::Value MetricsOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    TreePtr st = tree_arg(options_of(info));
    const TopologyMetrics m = metrics(st->tree);
    Napi::Object o = Napi::Object::New(env);
    o.Set("minima", double(m.minima));
    o.Set("saddles", double(m.saddles));
    o.Set("saddlesWithMultiplicity", double(m.saddles_with_multiplicity));
    o.Set("components", double(m.components));
    o.Set("persistence", stats_to_js(env, m.persistence));
    o.Set("persistenceWithEssential", stats_to_js(env, m.persistence_with_essential));
    o.Set("essentialPersistence", m.essential_persistence);
    o.Set("entropy", m.entropy);
    o.Set("range", m.range);
    Napi::Object sm = Napi::Object::New(env);
    sm.Set("plain", smad(st->tree, {false, false}));
    sm.Set("normalized", smad(st->tree, {true, false}));
    sm.Set("weighted", smad(st->tree, {false, true}));
    sm.Set("normalizedWeighted", smad(st->tree, {true, true}));
    o.Set("smad", sm);
    const auto vol = basin_volumes(st->tree);
    o.Set("basinVolumes", f64_map(env, vol.size(), [&](std::size_t i) { return double(vol[i]); }));
    return o;
  });
}

// profile({handle, levels, halfWidth})
Napi::Value ProfileOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    TreePtr st = tree_arg(o);
    ProfileOptions opts;
    if (has(o, "levels")) opts.levels = get_size(o, "levels");
    if (has(o, "halfWidth")) opts.half_width_per_sample = get_number(o, "halfWidth");
    auto out = std::make_shared<LandscapeProfile>();
    return start_op(
        info.Env(), o,
        [=](const OpContext& ctx) {
          *out = landscape_profile(st->tree, st->values.data(), st->values.size(), opts, ctx);
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("width", out->width);
          r.Set("yMin", out->y_min);
          r.Set("yMax", out->y_max);
          Napi::Array basins = Napi::Array::New(env, out->basins.size());
          for (std::size_t i = 0; i < out->basins.size(); ++i) {
            const ProfileBasin& b = out->basins[i];
            Napi::Object bo = Napi::Object::New(env);
            bo.Set("id", double(b.branch));
            bo.Set("parent", double(b.parent));
            bo.Set("samples", double(b.samples));
            bo.Set("center", b.center);
            bo.Set("width", b.width);
            bo.Set("yMin", b.y_min);
            bo.Set("yMax", b.y_max);
            bo.Set("meanLoss", b.mean_loss);
            bo.Set("levels", f64_of(env, b.y));
            bo.Set("halfWidth", f64_of(env, b.half_width));
            Napi::Object poly = Napi::Object::New(env);
            poly.Set("x", f64_of(env, b.x));
            poly.Set("y", f64_of(env, b.py));
            bo.Set("polygon", poly);
            basins.Set(uint32_t(i), bo);
          }
          r.Set("basins", basins);
          return r;
        });
  });
}

// persistence({values, grid + neighborhood | offsets + adjacency, device}): basin path.
Napi::Value PersistenceOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    FieldArg f = field_arg(o, "values");
    GraphArg g = graph_arg(o);
    const Device device = parse_device(get_string(o, "device"));
    auto out = std::make_shared<BasinResult>();
    auto used = std::make_shared<Device>(Device::Cpu);
    return start_op(
        info.Env(), o,
        [=](const OpContext& ctx) {
          if (f.n != g.vertices)
            fail(ErrorCode::Shape, "values has " + std::to_string(f.n) + " entries for a graph of " +
                                       std::to_string(g.vertices) + " vertices");
          // a Float64Array is read where it lies (no copy); a Float32Array is widened
          const std::vector<double> widened = f.f64 ? std::vector<double>() : f.widen();
          const double* values = f.f64 ? f.f64 : widened.data();
          if (g.grid) *out = basin_persistence(values, g.shape, g.nb, device, ctx, used.get());
          else {
            if (device == Device::Cuda) fail(ErrorCode::InvalidArgument, "basin persistence on CUDA takes grids only");
            *out = basins_graph(values, g.csr(), ctx);
          }
        },
        [out, used](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          const auto& P = out->pairs;
          r.Set("birth", i32_map(env, P.size(), [&](std::size_t i) { return P[i].birth; }));
          r.Set("death", i32_map(env, P.size(), [&](std::size_t i) { return P[i].death; }));
          r.Set("birthValue", f64_map(env, P.size(), [&](std::size_t i) { return P[i].birth_value; }));
          r.Set("deathValue", f64_map(env, P.size(), [&](std::size_t i) { return P[i].death_value; }));
          const auto& E = out->essential;
          r.Set("essentialBirth", i32_map(env, E.size(), [&](std::size_t i) { return E[i].birth; }));
          r.Set("essentialValue", f64_map(env, E.size(), [&](std::size_t i) { return E[i].birth_value; }));
          r.Set("basin", i32_map(env, out->basin.size(), [&](std::size_t i) { return out->basin[i]; }));
          r.Set("device", device_name(*used));
          return r;
        });
  });
}

// knnGraph({points (Float32Array | Float64Array, n×dim), dim, k, mutual, device})
Napi::Value KnnOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    FieldArg pts = field_arg(o, "points");
    const std::size_t dim = get_size(o, "dim");
    const std::size_t k = get_size(o, "k");
    if (dim == 0 || pts.n % dim != 0) fail(ErrorCode::Shape, "points must be n×dim");
    const KnnSymmetry mode = get_bool(o, "mutual", false) ? KnnSymmetry::Mutual : KnnSymmetry::Union;
    const Device device = parse_device(get_string(o, "device"));
    auto out = std::make_shared<CsrGraph>();
    auto used = std::make_shared<Device>(Device::Cpu);
    return start_op(
        info.Env(), o,
        [=](const OpContext& ctx) {
          *out = knn_graph_on(pts.f32, pts.f64, pts.n / dim, dim, k, mode, device, ctx, used.get());
        },
        [out, used](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("offsets", i32_map(env, out->offsets.size(), [&](std::size_t i) { return out->offsets[i]; }));
          r.Set("adjacency", i32_of(env, out->adj));
          r.Set("device", device_name(*used));
          return r;
        });
  });
}

Diagram diagram_arg(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) fail(ErrorCode::InvalidArgument, std::string("'") + key + "' must be a diagram");
  Napi::Object d = v.As<Napi::Object>();
  auto b = get_array<double>(d, "birth");
  auto e = get_array<double>(d, "death", b.length);
  auto ess = get_array<double>(d, "essential");
  Diagram out;
  out.birth.assign(b.data, b.data + b.length);
  out.death.assign(e.data, e.data + e.length);
  out.essential.assign(ess.data, ess.data + ess.length);
  return out;
}

// distance({a, b, metric: 'bottleneck' | 'wasserstein'})
Napi::Value DistanceOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    auto a = std::make_shared<Diagram>(diagram_arg(o, "a"));
    auto b = std::make_shared<Diagram>(diagram_arg(o, "b"));
    const bool bottleneck = get_string(o, "metric") == "bottleneck";
    auto out = std::make_shared<double>(0.0);
    return start_op(
        info.Env(), o,
        [=](const OpContext&) { *out = bottleneck ? bottleneck_distance(*a, *b) : wasserstein1_distance(*a, *b); },
        [out](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *out); });
  });
}

}  // namespace

void init_topology(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("mergeTree", Napi::Function::New(env, MergeTreeOp, "mergeTree"));
  t.Set("simplify", Napi::Function::New(env, SimplifyOp, "simplify"));
  t.Set("metrics", Napi::Function::New(env, MetricsOp, "metrics"));
  t.Set("profile", Napi::Function::New(env, ProfileOp, "profile"));
  t.Set("persistence", Napi::Function::New(env, PersistenceOp, "persistence"));
  t.Set("knnGraph", Napi::Function::New(env, KnnOp, "knnGraph"));
  t.Set("distance", Napi::Function::New(env, DistanceOp, "distance"));
  exports.Set("topology", t);
}

}  // namespace nnscope::addon
