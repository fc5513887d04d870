// nnscope addon: landscape — direction normalisation, orthonormalisation, random
// directions, grid and scattered coordinates, as async ops on caller-owned typed
// arrays. Translation only: the mathematics is in core/landscape.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/finite.h"
#include "common.h"
#include "landscape/landscape.h"

namespace nnscope::addon {

namespace {

using namespace nnscope::landscape;

std::uint64_t seed_arg(const Napi::Object& o) { return has(o, "seed") ? std::uint64_t(get_size(o, "seed")) : 0; }

// layout: [{offset, shape: number[]}, …]
std::vector<TensorSlice> layout_arg(const Napi::Object& o) {
  Napi::Value v = o.Get("layout");
  if (!v.IsArray()) fail(ErrorCode::InvalidArgument, "'layout' must be an array of {offset, shape}");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<TensorSlice> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) fail(ErrorCode::InvalidArgument, "'layout' entries must be {offset, shape}");
    Napi::Object eo = e.As<Napi::Object>();
    out[i].offset = get_size(eo, "offset");
    out[i].shape = get_sizes(eo, "shape");
  }
  return out;
}

Normalization normalization_arg(const std::string& s) {
  if (s == "none") return Normalization::None;
  if (s == "layer") return Normalization::Layer;
  if (s == "filter") return Normalization::Filter;
  fail(ErrorCode::InvalidArgument, "normalization must be 'none', 'layer' or 'filter'");
}

BiasMode bias_arg(const std::string& s) {
  if (s == "keep") return BiasMode::Keep;
  if (s == "zero") return BiasMode::Zero;
  if (s == "normalize") return BiasMode::Normalize;
  fail(ErrorCode::InvalidArgument, "biases must be 'keep', 'zero' or 'normalize'");
}

Spacing spacing_arg(const std::string& s) {
  if (s == "linspace") return Spacing::Linspace;
  if (s == "landscaper") return Spacing::Landscaper;
  fail(ErrorCode::InvalidArgument, "spacing must be 'linspace' or 'landscaper'");
}

// normalize({theta0 (P), dirs (k×P, in place), k, layout, normalization, biases})
Napi::Value Normalize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t k = get_size(o, "k");
    auto theta = get_array<float>(o, "theta0");
    const std::size_t P = theta.length;
    float* dirs = get_array<float>(o, "dirs", checked_mul(k, P)).data;
    auto layout = std::make_shared<std::vector<TensorSlice>>(layout_arg(o));
    const Normalization mode = normalization_arg(get_string(o, "normalization"));
    const BiasMode biases = bias_arg(get_string(o, "biases"));
    check_layout(*layout, P);
    const float* t0 = theta.data;
    return start_op(info.Env(), o, [=](const OpContext& ctx) {
      require_finite(t0, P, "theta0");
      require_finite(dirs, k * P, "directions");
      normalize_directions(t0, dirs, k, P, *layout, mode, biases, ctx);
    });
  });
}

// orthonormalize({dirs: Float32Array | Float64Array (k×P, in place), k, scaleTo?: Float32Array (P; float32 dirs only)})
Napi::Value Orthonormalize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t k = get_size(o, "k");
    Napi::Value v = o.Get("dirs");
    if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
      auto d = get_array<double>(o, "dirs");
      NNSCOPE_CHECK(k > 0 && d.length % k == 0, ErrorCode::Shape, "dirs must hold k rows");
      const std::size_t P = d.length / k;
      double* p = d.data;
      return start_op(info.Env(), o, [=](const OpContext& ctx) {
        require_finite(p, k * P, "directions");
        orthonormalize(p, k, P, ctx);
      });
    }
    auto d = get_array<float>(o, "dirs");
    NNSCOPE_CHECK(k > 0 && d.length % k == 0, ErrorCode::Shape, "dirs must hold k rows");
    const std::size_t P = d.length / k;
    float* p = d.data;
    const float* scale_to = has(o, "scaleTo") ? get_array<float>(o, "scaleTo", P).data : nullptr;
    return start_op(info.Env(), o, [=](const OpContext& ctx) {
      require_finite(p, k * P, "directions");
      if (scale_to) require_finite(scale_to, P, "theta0");
      orthonormalize(p, k, P, ctx, scale_to);
    });
  });
}

// random({out: Float32Array (k×P), k, seed})
Napi::Value Random(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t k = get_size(o, "k");
    auto out = get_array<float>(o, "out");
    NNSCOPE_CHECK(k > 0 && out.length % k == 0, ErrorCode::Shape, "out must hold k rows");
    const std::size_t P = out.length / k;
    const std::uint64_t seed = seed_arg(o);
    float* p = out.data;
    return start_op(info.Env(), o, [=](const OpContext& ctx) { random_directions(p, k, P, seed, ctx); });
  });
}

// gridPoints({k, steps, maxPoints}) → steps^k (sync; TooLarge over the limit)
Napi::Value GridPoints(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    return Napi::Number::New(info.Env(), double(grid_points(get_size(o, "k"), get_size(o, "steps"), get_size(o, "maxPoints"))));
  });
}

// gridAxis({steps, distance, spacing}) → Float64Array of the float64 axis values (sync)
Napi::Value GridAxis(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t steps = get_size(o, "steps");
    const double distance = get_number(o, "distance");
    const Spacing spacing = spacing_arg(get_string(o, "spacing"));
    std::vector<double> axis(steps);
    for (std::size_t i = 0; i < steps; ++i) axis[i] = grid_coordinate(i, steps, distance, spacing);
    return copy_to_js<Napi::Float64Array>(info.Env(), axis);
  });
}

// gridCoords({out: Float32Array (count×k), k, steps, distance, spacing, begin})
Napi::Value GridCoords(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t k = get_size(o, "k");
    const std::size_t steps = get_size(o, "steps");
    const double distance = get_number(o, "distance");
    const Spacing spacing = spacing_arg(get_string(o, "spacing"));
    const std::size_t begin = has(o, "begin") ? get_size(o, "begin") : 0;
    auto out = get_array<float>(o, "out");
    NNSCOPE_CHECK(k > 0 && out.length % k == 0, ErrorCode::Shape, "out must hold rows of k coordinates");
    const std::size_t count = out.length / k;
    float* p = out.data;
    return start_op(info.Env(), o, [=](const OpContext& ctx) {
      grid_coordinates(p, k, steps, distance, spacing, begin, count, ctx);
    });
  });
}

// scatterCoords({out: Float32Array (n×k), k, distance, method: 'uniform'|'lhs', seed})
Napi::Value ScatterCoords(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t k = get_size(o, "k");
    const double distance = get_number(o, "distance");
    const std::string m = get_string(o, "method");
    Scatter method;
    if (m == "uniform") method = Scatter::Uniform;
    else if (m == "lhs") method = Scatter::Latin;
    else fail(ErrorCode::InvalidArgument, "method must be 'uniform' or 'lhs'");
    const std::uint64_t seed = seed_arg(o);
    auto out = get_array<float>(o, "out");
    NNSCOPE_CHECK(k > 0 && out.length % k == 0, ErrorCode::Shape, "out must hold rows of k coordinates");
    const std::size_t n = out.length / k;
    float* p = out.data;
    return start_op(info.Env(), o, [=](const OpContext& ctx) {
      scattered_coordinates(p, n, k, distance, method, seed, ctx);
    });
  });
}

}  // namespace

void init_landscape(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("normalize", Napi::Function::New(env, Normalize, "normalize"));
  m.Set("orthonormalize", Napi::Function::New(env, Orthonormalize, "orthonormalize"));
  m.Set("random", Napi::Function::New(env, Random, "random"));
  m.Set("gridPoints", Napi::Function::New(env, GridPoints, "gridPoints"));
  m.Set("gridAxis", Napi::Function::New(env, GridAxis, "gridAxis"));
  m.Set("gridCoords", Napi::Function::New(env, GridCoords, "gridCoords"));
  m.Set("scatterCoords", Napi::Function::New(env, ScatterCoords, "scatterCoords"));
  exports.Set("landscape", m);
}

}  // namespace nnscope::addon
