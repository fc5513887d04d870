// nnscope addon: linalg ops (translation only: options → core call → result).
#include "base/buffer.h"
#include "base/finite.h"
#include "common.h"
#include "linalg/blas.h"

namespace nnscope::addon {

namespace {

Device device_of(const Napi::Object& opts) {
  return has(opts, "device") ? parse_device(get_string(opts, "device")) : Device::Auto;
}

// matmul({a, b, c, m, n, k, transA, transB, alpha, beta, checkFinite, device, cancel, onProgress})
// c: the output (m×n, written in place; lib/ allocates it and fills it when beta ≠ 0).
class MatmulWorker : public OpWorker {
 public:
  MatmulWorker(Napi::Env env, const Napi::Object& opts) : OpWorker(env, opts) {
    g_.m = get_size(opts, "m");
    g_.n = get_size(opts, "n");
    g_.k = get_size(opts, "k");
    g_.trans_a = get_bool(opts, "transA", false);
    g_.trans_b = get_bool(opts, "transB", false);
    g_.alpha = static_cast<float>(get_number(opts, "alpha"));
    g_.beta = static_cast<float>(get_number(opts, "beta"));
    const std::size_t ak = checked_mul(g_.m, g_.k), kb = checked_mul(g_.k, g_.n), mn = checked_mul(g_.m, g_.n);
    auto a = get_array<float>(opts, "a", ak);
    auto b = get_array<float>(opts, "b", kb);
    auto c = get_array<float>(opts, "c", mn);
    g_.a = a.data;
    g_.b = b.data;
    g_.c = c.data;
    g_.lda = g_.trans_a ? g_.m : g_.k;
    g_.ldb = g_.trans_b ? g_.k : g_.n;
    g_.ldc = g_.n;
    check_finite_ = get_bool(opts, "checkFinite", true);
    device_ = resolve_device(device_of(opts));
    linalg::validate(g_);
  }

 protected:
  void Run(const OpContext& ctx) override {
    if (check_finite_) {
      require_finite(g_.a, g_.m * g_.k, "a");
      require_finite(g_.b, g_.k * g_.n, "b");
    }
    linalg::sgemm(device_, g_, ctx);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, device_name(device_)); }

 private:
  linalg::GemmArgs g_;
  bool check_finite_ = true;
  Device device_ = Device::Cpu;
};

// matvec({a, x, y, m, n, trans, alpha, beta, checkFinite, device, cancel})
class MatvecWorker : public OpWorker {
 public:
  MatvecWorker(Napi::Env env, const Napi::Object& opts) : OpWorker(env, opts) {
    g_.m = get_size(opts, "m");
    g_.n = get_size(opts, "n");
    g_.trans = get_bool(opts, "trans", false);
    g_.alpha = static_cast<float>(get_number(opts, "alpha"));
    g_.beta = static_cast<float>(get_number(opts, "beta"));
    g_.a = get_array<float>(opts, "a", checked_mul(g_.m, g_.n)).data;
    g_.lda = g_.n;
    g_.x = get_array<float>(opts, "x", g_.trans ? g_.m : g_.n).data;
    g_.y = get_array<float>(opts, "y", g_.trans ? g_.n : g_.m).data;
    check_finite_ = get_bool(opts, "checkFinite", true);
    device_ = resolve_device(device_of(opts));
    linalg::validate(g_);
  }

 protected:
  void Run(const OpContext& ctx) override {
    if (check_finite_) {
      require_finite(g_.a, g_.m * g_.n, "a");
      require_finite(g_.x, g_.trans ? g_.m : g_.n, "x");
    }
    linalg::sgemv(device_, g_, ctx);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, device_name(device_)); }

 private:
  linalg::GemvArgs g_;
  bool check_finite_ = true;
  Device device_ = Device::Cpu;
};

// vector({op: 'dot' | 'nrm2' | 'axpy', x, y?, alpha?, device, cancel}) → number (dot, nrm2) or undefined
class VectorWorker : public OpWorker {
 public:
  VectorWorker(Napi::Env env, const Napi::Object& opts) : OpWorker(env, opts) {
    const std::string op = get_string(opts, "op");
    auto x = get_array<float>(opts, "x");
    n_ = x.length;
    x_ = x.data;
    if (op == "nrm2") {
      op_ = Op::Nrm2;
    } else if (op == "dot" || op == "axpy") {
      op_ = op == "dot" ? Op::Dot : Op::Axpy;
      y_ = get_array<float>(opts, "y", n_).data;
      if (op_ == Op::Axpy) alpha_ = static_cast<float>(get_number(opts, "alpha"));
    } else {
      fail(ErrorCode::InvalidArgument, "unknown vector op '" + op + "'");
    }
    device_ = resolve_device(device_of(opts));
  }

 protected:
  void Run(const OpContext&) override {
    switch (op_) {
      case Op::Dot: value_ = linalg::sdot(device_, n_, x_, y_); break;
      case Op::Nrm2: value_ = linalg::snrm2(device_, n_, x_); break;
      case Op::Axpy: linalg::saxpy(device_, n_, alpha_, x_, y_); break;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    return op_ == Op::Axpy ? env.Undefined() : Napi::Number::New(env, value_);
  }

 private:
  enum class Op { Dot, Nrm2, Axpy } op_ = Op::Dot;
  std::size_t n_ = 0;
  const float* x_ = nullptr;
  float* y_ = nullptr;
  float alpha_ = 0;
  double value_ = 0;
  Device device_ = Device::Cpu;
};

template <typename W>
Napi::Value start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return (new W(env, options_of(info)))->Start(); });
}

}  // namespace

void init_linalg(Napi::Env env, Napi::Object exports) {
  Napi::Object linalg = Napi::Object::New(env);
  linalg.Set("matmul", Napi::Function::New(env, start<MatmulWorker>, "matmul"));
  linalg.Set("matvec", Napi::Function::New(env, start<MatvecWorker>, "matvec"));
  linalg.Set("vector", Napi::Function::New(env, start<VectorWorker>, "vector"));
  exports.Set("linalg", linalg);
}

}  // namespace nnscope::addon
