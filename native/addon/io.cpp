// nnscope addon: safetensors files — open (async) into a handle listing the
// tensors and metadata, read tensors (async) into caller-allocated typed arrays,
// write files (async). Translation only: the format lives in core/io.
#include <map>
#include <memory>

#include "common.h"
#include "io/safetensors.h"
#include "base/buffer.h"

namespace nnscope::addon {

namespace {

io::Dtype dtype_arg(const Napi::Object& o, const char* key) {
  io::Dtype d;
  const std::string s = get_string(o, key);
  if (!io::parse_dtype(s, &d)) fail(ErrorCode::Dtype, "unknown safetensors dtype '" + s + "'");
  return d;
}

// The element type of a typed array as a safetensors dtype (Uint16Array → U16 etc.).
io::Dtype typed_array_dtype(const Napi::Value& v, const char* key) {
  if (!v.IsTypedArray()) fail(ErrorCode::Dtype, std::string("'") + key + "' must be a typed array");
  switch (v.As<Napi::TypedArray>().TypedArrayType()) {
    case napi_float32_array: return io::Dtype::F32;
    case napi_float64_array: return io::Dtype::F64;
    case napi_int32_array: return io::Dtype::I32;
    case napi_uint32_array: return io::Dtype::U32;
    case napi_int16_array: return io::Dtype::I16;
    case napi_uint16_array: return io::Dtype::U16;
    case napi_int8_array: return io::Dtype::I8;
    case napi_uint8_array: return io::Dtype::U8;
    case napi_bigint64_array: return io::Dtype::I64;
    case napi_biguint64_array: return io::Dtype::U64;
    default: fail(ErrorCode::Dtype, std::string("'") + key + "' has an unsupported element type");
  }
}

struct RawArray {
  void* data = nullptr;
  std::size_t bytes = 0;
};

RawArray raw_array(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  typed_array_dtype(v, key);
  auto arr = v.As<Napi::TypedArray>();
  bool detached = false;
  if (napi_is_detached_arraybuffer(v.Env(), arr.ArrayBuffer(), &detached) == napi_ok && detached)
    fail(ErrorCode::Detached, std::string("'") + key + "' is backed by a detached ArrayBuffer");
  RawArray r;
  r.bytes = arr.ByteLength();
  r.data = r.bytes ? static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset() : nullptr;
  return r;
}

class SafetensorsHandle : public Napi::ObjectWrap<SafetensorsHandle> {
 public:
  static Napi::FunctionReference& ctor() {
    static thread_local Napi::FunctionReference ref;
    return ref;
  }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SafetensorsFile",
                       {InstanceMethod("tensors", &SafetensorsHandle::Tensors),
                        InstanceMethod("metadata", &SafetensorsHandle::Metadata),
                        InstanceMethod("info", &SafetensorsHandle::Info),
                        InstanceMethod("read", &SafetensorsHandle::Read)});
  }
  explicit SafetensorsHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SafetensorsHandle>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw make_error(info.Env(), ErrorCode::InvalidArgument, "use io.openSafetensors()");
    file_ = *info[0].As<Napi::External<std::shared_ptr<io::SafetensorsFile>>>().Data();
  }

 private:
  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& ts = file_->tensors();
    Napi::Array out = Napi::Array::New(env, ts.size());
    for (uint32_t i = 0; i < ts.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", ts[i].name);
      o.Set("dtype", io::dtype_name(ts[i].dtype));
      Napi::Array shape = Napi::Array::New(env, ts[i].shape.size());
      for (uint32_t j = 0; j < ts[i].shape.size(); ++j) shape.Set(j, double(ts[i].shape[j]));
      o.Set("shape", shape);
      o.Set("byteLength", double(ts[i].nbytes()));
      out.Set(i, o);
    }
    return out;
  }
  Napi::Value Metadata(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    for (const auto& [k, v] : file_->metadata()) o.Set(k, v);
    return o;
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("path", file_->path());
    o.Set("mapped", file_->mapped());
    o.Set("unmappedReason", file_->unmapped_reason());
    o.Set("fileSize", double(file_->file_size()));
    o.Set("headerSize", double(file_->header_size()));
    return o;
  }
  // read({name, out: TypedArray, dtype: 'F32' | 'F64' | <the file's own>, allowRounding})
  Napi::Value Read(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object o = options_of(info);
      const std::string name = get_string(o, "name");
      const io::Dtype dst = dtype_arg(o, "dtype");
      const RawArray out = raw_array(o, "out");
      io::ConvertOptions conv;
      conv.allow_rounding = get_bool(o, "allowRounding", false);
      file_->info(name);  // unknown name → InvalidArgument now, not later
      auto file = file_;
      return start_op(info.Env(), o, [file, name, dst, out, conv](const OpContext& ctx) {
        file->read(name, out.data, out.bytes, dst, conv, ctx);
      });
    });
  }
  std::shared_ptr<io::SafetensorsFile> file_;
};

// openSafetensors({path, mmap}) → Promise<SafetensorsFile>
Napi::Value OpenSafetensors(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::string path = get_string(o, "path");
    io::SafetensorsOpenOptions opts;
    opts.mmap = get_bool(o, "mmap", true);
    auto file = std::make_shared<std::shared_ptr<io::SafetensorsFile>>();
    return start_op(
        info.Env(), o,
        [path, opts, file](const OpContext&) {
          *file = std::make_shared<io::SafetensorsFile>(io::SafetensorsFile::open(path, opts));
        },
        [file](Napi::Env env) -> Napi::Value {
          return SafetensorsHandle::ctor().New({Napi::External<std::shared_ptr<io::SafetensorsFile>>::New(env, file.get())});
        });
  });
}

// writeSafetensors({path, tensors: [{name, dtype, shape, data, source?}], metadata: {k: v}})
Napi::Value WriteSafetensors(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options_of(info);
    const std::string path = get_string(o, "path");
    Napi::Value tv = o.Get("tensors");
    if (!tv.IsArray()) fail(ErrorCode::InvalidArgument, "'tensors' must be an array");
    Napi::Array arr = tv.As<Napi::Array>();
    std::vector<io::TensorWrite> tensors(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value e = arr.Get(i);
      if (!e.IsObject()) fail(ErrorCode::InvalidArgument, "each tensor must be an object");
      Napi::Object t = e.As<Napi::Object>();
      io::TensorWrite& w = tensors[i];
      w.name = get_string(t, "name");
      w.dtype = dtype_arg(t, "dtype");
      for (std::size_t d : get_sizes(t, "shape")) w.shape.push_back(d);
      const io::Dtype src = typed_array_dtype(t.Get("data"), "data");
      const RawArray raw = raw_array(t, "data");
      // The typed array's element type is the source dtype; U16 data may carry F16/BF16 bits.
      io::Dtype source = src;
      if (src == io::Dtype::U16 && (w.dtype == io::Dtype::F16 || w.dtype == io::Dtype::BF16)) source = w.dtype;
      if (src == io::Dtype::U8 && w.dtype == io::Dtype::BOOL) source = w.dtype;
      std::uint64_t numel = 1;
      for (auto d : w.shape) numel = checked_mul(numel, d);
      if (checked_mul(numel, io::dtype_size(source)) != raw.bytes)
        fail(ErrorCode::Shape, "tensor '" + w.name + "': data has " + std::to_string(raw.bytes) +
                                   " bytes, its shape needs " + std::to_string(numel * io::dtype_size(source)));
      w.data = raw.data;
      if (source != w.dtype) w.source = source;
    }
    std::map<std::string, std::string> metadata;
    if (has(o, "metadata")) {
      Napi::Value mv = o.Get("metadata");
      if (!mv.IsObject()) fail(ErrorCode::InvalidArgument, "'metadata' must be an object of strings");
      Napi::Object m = mv.As<Napi::Object>();
      Napi::Array keys = m.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
        Napi::Value v = m.Get(k);
        if (!v.IsString()) fail(ErrorCode::InvalidArgument, "metadata value '" + k + "' must be a string");
        metadata[k] = v.As<Napi::String>().Utf8Value();
      }
    }
    return start_op(info.Env(), o, [path, tensors, metadata](const OpContext& ctx) {
      io::write_safetensors(path, tensors, metadata, ctx);
    });
  });
}

}  // namespace

void init_io(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  Napi::Function ctor = SafetensorsHandle::Define(env);
  SafetensorsHandle::ctor() = Napi::Persistent(ctor);
  SafetensorsHandle::ctor().SuppressDestruct();
  m.Set("openSafetensors", Napi::Function::New(env, OpenSafetensors, "openSafetensors"));
  m.Set("writeSafetensors", Napi::Function::New(env, WriteSafetensors, "writeSafetensors"));
  exports.Set("io", m);
}

}  // namespace nnscope::addon
