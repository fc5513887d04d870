// nnscope addon: build information, devices, threads.
#include "base/bandwidth.h"
#include "base/cpu.h"
#include "base/device.h"
#include "base/threadpool.h"
#include "common.h"

#ifndef NNSCOPE_VERSION
#define NNSCOPE_VERSION "0.0.0"
#endif

namespace nnscope::addon {

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", NNSCOPE_VERSION);
#ifdef NNSCOPE_HAVE_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
#if defined(__clang__)
  o.Set("compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  o.Set("compiler", std::string("gcc ") + __VERSION__);
#else
  o.Set("compiler", "unknown");
#endif
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("cpuIsa", isa_name(cpu_isa()));
  o.Set("activeIsa", isa_name(active_isa()));
  return o;
}

static Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const GpuInfo g = gpu_info();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("threads", num_threads());
    cpu.Set("isa", isa_name(active_isa()));
    Napi::Object cuda = Napi::Object::New(env);
    cuda.Set("compiled", g.compiled);
    cuda.Set("available", g.available);
    cuda.Set("reason", g.reason);
    cuda.Set("deviceCount", g.device_count);
    if (g.available) {
      cuda.Set("device", g.device);
      cuda.Set("name", g.name);
      cuda.Set("computeCapability", std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor));
      cuda.Set("totalMemory", static_cast<double>(g.total_memory));
      cuda.Set("freeMemory", static_cast<double>(g.free_memory));
      cuda.Set("multiprocessors", g.multiprocessors);
    }
    cuda.Set("driverVersion", g.driver_version);
    cuda.Set("runtimeVersion", g.runtime_version);
    cuda.Set("architectures", g.architectures);
    Napi::Object o = Napi::Object::New(env);
    o.Set("cpu", cpu);
    o.Set("cuda", cuda);
    return o;
  });
}

static Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) fail(ErrorCode::InvalidArgument, "setNumThreads expects a number");
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 1 && n <= 1024) || n != static_cast<int>(n))
      fail(ErrorCode::InvalidArgument, "thread count must be an integer between 1 and 1024");
    set_num_threads(static_cast<int>(n));
    return env.Undefined();
  });
}

// Lowers the CPU kernel tier (tests and benchmarks): "generic" | "avx2" | "avx512".
static Napi::Value SetIsaLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const std::string s = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (s == "generic") set_isa_limit(Isa::Generic);
    else if (s == "avx2") set_isa_limit(Isa::Avx2);
    else if (s == "avx512") set_isa_limit(Isa::Avx512);
    else fail(ErrorCode::InvalidArgument, "ISA must be 'generic', 'avx2' or 'avx512'");
    return Napi::String::New(env, isa_name(active_isa()));
  });
}

// Resolves 'auto' | 'cpu' | 'cuda' to the device an op would use.
static Napi::Value ResolveDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const std::string s = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    return Napi::String::New(env, device_name(resolve_device(parse_device(s))));
  });
}

// measureBandwidth({bytes, samples}) → Promise<{gbs, sampleMs, bytes, threads}>
static Napi::Value MeasureBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::size_t bytes = get_size(o, "bytes");
    const int samples = static_cast<int>(std::min<std::size_t>(get_size(o, "samples"), 1000));
    auto r = std::make_shared<BandwidthResult>();
    return start_op(
        env, o, [bytes, samples, r](const OpContext& ctx) { *r = measure_read_bandwidth(bytes, samples, ctx); },
        [r](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("gbs", r->gbs);
          auto ms = Napi::Float64Array::New(env, r->sample_ms.size());
          for (std::size_t i = 0; i < r->sample_ms.size(); ++i) ms[i] = r->sample_ms[i];
          out.Set("sampleMs", ms);
          out.Set("bytes", double(r->bytes));
          out.Set("threads", r->threads);
          return out;
        });
  });
}

void init_system(Napi::Env env, Napi::Object exports) {
  exports.Set("measureBandwidth", Napi::Function::New(env, MeasureBandwidth, "measureBandwidth"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads, "numThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("setIsaLimit", Napi::Function::New(env, SetIsaLimit, "setIsaLimit"));
  exports.Set("resolveDevice", Napi::Function::New(env, ResolveDevice, "resolveDevice"));
}

}  // namespace nnscope::addon
