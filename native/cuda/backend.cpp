// nnscope CUDA backend: the GpuBackend (base/device.h) over the device-pointer API.
// Host code only (cuda_runtime_api.h); the kernels live in linalg.cu.
//
// Probe: once per process, lazily (std::call_once), never throws; the reason a GPU is
// not used is kept for info() and for the DeviceUnavailable error. Device 0 of what
// the runtime shows (so CUDA_VISIBLE_DEVICES applies).
//
// Calls: each call makes the device current for its thread, creates its own
// non-blocking stream, stages the host data through cudaMalloc'd buffers (packed,
// leading dimension = row length), runs, copies back, and frees everything on every
// path: the Session's destructor waits for the stream before the buffers go. The
// backend object holds no mutable state after the probe, so host threads may call
// it concurrently.
#include "cuda/backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "cuda/arch.h"
#include "cuda/attention.h"
#include "cuda/check.h"
#include "cuda/hessian.h"
#include "cuda/linalg.h"
#include "cuda/memory.h"
#include "cuda/models.h"
#include "cuda/topology.h"
#include "hessian/space.h"
#include "linalg/blas.h"

namespace nnscope::cuda {

namespace {

// GEMM work per launch between cancellation checks and progress reports: ~2.5e11
// flops (~10 ms on an H100 at the kernel's rate), but never fewer rows than give 8
// blocks of 128×128 per multiprocessor, so each launch still fills the GPU.
constexpr double kChunkFlops = 2.5e11;

struct Probe {
  bool available = false;
  std::string reason;
  int device_count = 0;
  int device = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  std::size_t total_memory = 0;
  int multiprocessors = 0;
  int driver_version = 0, runtime_version = 0;
  std::string architectures;
};

std::string visible_devices_note() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!v) return "";
  return std::string(" (CUDA_VISIBLE_DEVICES='") + v + "')";
}

std::string version_string(int v) {
  if (v <= 0) return "unknown";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string probe_failure(cudaError_t e, int runtime_version) {
  switch (e) {
    case cudaErrorInsufficientDriver:
      return "CUDA driver not found or older than CUDA runtime " + version_string(runtime_version) +
             " needs (cudaErrorInsufficientDriver): " + cudaGetErrorString(e);
    case cudaErrorNoDevice:
      return std::string("no CUDA device (cudaErrorNoDevice): ") + cudaGetErrorString(e) + visible_devices_note();
    default:
      return "CUDA initialisation failed (" + describe(e) + ")" + visible_devices_note();
  }
}

void run_probe(Probe& p) {
  p.architectures = describe_architectures(compiled_architectures());
  if (cudaRuntimeGetVersion(&p.runtime_version) != cudaSuccess) (void)cudaGetLastError();
  if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess) (void)cudaGetLastError();

  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    p.reason = probe_failure(e, p.runtime_version);
    return;
  }
  p.device_count = count;
  if (count <= 0) {
    p.reason = "no CUDA device (cudaGetDeviceCount found none)" + visible_devices_note();
    return;
  }
  p.device = 0;
  cudaDeviceProp prop{};
  e = cudaGetDeviceProperties(&prop, p.device);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    p.reason = "cannot query CUDA device 0 (" + describe(e) + ")";
    return;
  }
  p.name = prop.name;
  p.cc_major = prop.major;
  p.cc_minor = prop.minor;
  p.total_memory = prop.totalGlobalMem;
  p.multiprocessors = prop.multiProcessorCount;

  const std::string sm = "sm_" + std::to_string(p.cc_major * 10 + p.cc_minor);
  if (!architectures_support(compiled_architectures(), p.cc_major, p.cc_minor)) {
    p.reason = "GPU '" + p.name + "' (" + sm + ") is not supported by this build: it holds code for " +
               p.architectures + " only (rebuild with CMAKE_CUDA_ARCHITECTURES including " +
               std::to_string(p.cc_major * 10 + p.cc_minor) + ")";
    return;
  }
  e = cudaSetDevice(p.device);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    p.reason = "cannot use CUDA device 0 '" + p.name + "' (" + describe(e) + ")";
    return;
  }
  // The authoritative check: the kernels load on this device (creates the context;
  // fails e.g. with cudaErrorNoKernelImageForDevice or an unsupported PTX version).
  std::string why;
  const int status = kernel_image_status(&why);
  if (status != 0) {
    p.reason = "the nnscope kernels cannot run on '" + p.name + "' (" + sm + ", driver " +
               version_string(p.driver_version) + ", built for " + p.architectures + "): " + why;
    return;
  }
  p.available = true;
  p.reason.clear();
}

// Per-call resources: current device, a private stream, device buffers. The
// destructor body waits for the stream first; then the buffers are freed (members
// are destroyed in reverse order: buffers_, then stream_).
class Session {
 public:
  explicit Session(int device) : stream_(make_stream(device)) {}
  ~Session() { stream_.synchronize_noexcept(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void* stream() const noexcept { return stream_.handle(); }
  void sync() const { stream_.synchronize(); }

  template <typename T>
  T* alloc(std::size_t count) {
    if (count == 0) return nullptr;
    buffers_.emplace_back(checked_bytes(count, sizeof(T)));
    return buffers_.back().as<T>();
  }

 private:
  static Stream make_stream(int device) {
    set_device(device);
    return Stream();
  }
  static std::size_t checked_bytes(std::size_t count, std::size_t size) {
    NNSCOPE_CHECK(count <= std::size_t(-1) / size, ErrorCode::TooLarge, "buffer size overflows");
    return count * size;
  }
  Stream stream_;
  std::vector<DeviceBuffer> buffers_;
};

class CudaBackend final : public GpuBackend {
 public:
  GpuInfo info() override {
    const Probe& p = probe();
    GpuInfo i;
    i.compiled = true;
    i.available = p.available;
    i.reason = p.reason;
    i.device_count = p.device_count;
    i.device = p.device;
    i.name = p.name;
    i.cc_major = p.cc_major;
    i.cc_minor = p.cc_minor;
    i.total_memory = p.total_memory;
    i.multiprocessors = p.multiprocessors;
    i.driver_version = p.driver_version;
    i.runtime_version = p.runtime_version;
    i.architectures = p.architectures;
    if (p.available) {
      std::size_t free_b = 0, total_b = 0;
      if (cudaSetDevice(p.device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        i.free_memory = free_b;
        i.total_memory = total_b;
      } else {
        (void)cudaGetLastError();
      }
    }
    return i;
  }

  bool available() override { return probe().available; }
  std::string unavailable_reason() override { return probe().reason; }

  void sgemm(const linalg::GemmArgs& g, const OpContext& ctx) override {
    linalg::validate(g);
    const int dev = require();
    ctx.check();
    if (g.m == 0 || g.n == 0) return;
    const std::size_t m = g.m, n = g.n, k = g.k;
    const bool product = k > 0 && g.alpha != 0.0f;
    const bool read_c = g.beta != 0.0f;

    Session s(dev);
    // Device copies, packed: op(A) storage is ar×ac, op(B) br×bc, C m×n.
    const std::size_t ar = g.trans_a ? k : m, ac = g.trans_a ? m : k;
    const std::size_t br = g.trans_b ? n : k, bc = g.trans_b ? k : n;
    float* da = product ? s.alloc<float>(checked_mul(ar, ac)) : nullptr;
    float* db = product ? s.alloc<float>(checked_mul(br, bc)) : nullptr;
    float* dc = s.alloc<float>(checked_mul(m, n));
    if (product) {
      copy_rows_to_device(da, ac * sizeof(float), g.a, g.lda * sizeof(float), ac * sizeof(float), ar, s.stream());
      copy_rows_to_device(db, bc * sizeof(float), g.b, g.ldb * sizeof(float), bc * sizeof(float), br, s.stream());
    }
    if (read_c)
      copy_rows_to_device(dc, n * sizeof(float), g.c, g.ldc * sizeof(float), n * sizeof(float), m, s.stream());

    linalg::GemmArgs d = g;
    d.a = da;
    d.lda = ac;
    d.b = db;
    d.ldb = bc;
    d.c = dc;
    d.ldc = n;

    if (!product) {
      ctx.check();
      sgemm_async(d, s.stream());
    } else {
      // Launches of `rows` rows each, at most two in flight; between them the
      // cancellation token is checked and progress reported (rows done of m).
      const std::size_t rows = chunk_rows(m, n, k);
      Event done[2];
      std::size_t prev_end = 0;
      int i = 0;
      for (std::size_t r0 = 0; r0 < m; r0 += rows, ++i) {
        ctx.check();
        const std::size_t r1 = std::min(m, r0 + rows);
        linalg::GemmArgs c = d;
        c.m = r1 - r0;
        c.a = g.trans_a ? da + r0 : da + r0 * ac;
        c.c = dc + r0 * n;
        sgemm_async(c, s.stream());
        done[i & 1].record(s.stream());
        if (i >= 1) {
          done[(i - 1) & 1].synchronize();
          ctx.report(double(prev_end), double(m));
        }
        prev_end = r1;
      }
      done[(i - 1) & 1].synchronize();
      ctx.report(double(m), double(m));
      ctx.check();
    }
    copy_rows_to_host(g.c, g.ldc * sizeof(float), dc, n * sizeof(float), n * sizeof(float), m, s.stream());
    s.sync();
  }

  void sgemv(const linalg::GemvArgs& g, const OpContext& ctx) override {
    linalg::validate(g);
    const int dev = require();
    ctx.check();
    const std::size_t xl = g.trans ? g.m : g.n, yl = g.trans ? g.n : g.m;
    if (yl == 0) return;
    Session s(dev);
    const bool read_a = g.m > 0 && g.n > 0;
    float* da = read_a ? s.alloc<float>(checked_mul(g.m, g.n)) : nullptr;
    float* dx = read_a ? s.alloc<float>(xl) : nullptr;
    float* dy = s.alloc<float>(yl);
    float* dw = s.alloc<float>(sgemv_workspace_floats(g));
    if (read_a) {
      copy_rows_to_device(da, g.n * sizeof(float), g.a, g.lda * sizeof(float), g.n * sizeof(float), g.m, s.stream());
      copy_to_device(dx, g.x, xl * sizeof(float), s.stream());
    }
    if (g.beta != 0.0f) copy_to_device(dy, g.y, yl * sizeof(float), s.stream());
    linalg::GemvArgs d = g;
    d.a = da;
    d.lda = g.n;
    d.x = dx;
    d.y = dy;
    ctx.check();
    sgemv_async(d, dw, s.stream());
    copy_to_host(g.y, dy, yl * sizeof(float), s.stream());
    s.sync();
    ctx.report(1.0, 1.0);
  }

  double sdot(std::size_t n, const float* x, const float* y) override { return reduce(n, x, y, false); }
  double snrm2(std::size_t n, const float* x) override { return reduce(n, x, nullptr, true); }

  void saxpy(std::size_t n, float alpha, const float* x, float* y) override {
    const int dev = require();
    if (n == 0) return;
    NNSCOPE_CHECK(x && y, ErrorCode::InvalidArgument, "saxpy: null vector");
    Session s(dev);
    float* dx = s.alloc<float>(n);
    float* dy = s.alloc<float>(n);
    copy_to_device(dx, x, n * sizeof(float), s.stream());
    copy_to_device(dy, y, n * sizeof(float), s.stream());
    saxpy_async(n, alpha, dx, dy, s.stream());
    copy_to_host(y, dy, n * sizeof(float), s.stream());
    s.sync();
  }

  std::unique_ptr<models::Objective> make_mlp_objective(const models::MlpSpec& spec, const models::Dataset& data,
                                                        const std::vector<std::size_t>& indices) override {
    return make_gpu_mlp_objective(require(), spec, data, indices);
  }
  std::unique_ptr<models::Objective> make_pinn_objective(const models::PinnSpec& spec,
                                                         const models::PinnPoints& points) override {
    return make_gpu_pinn_objective(require(), spec, points);
  }

  std::unique_ptr<hessian::Space> make_dense_space(const float* a, std::size_t n) override {
    return cuda::make_dense_space(require(), a, n);
  }
  std::unique_ptr<hessian::Space> make_objective_space(models::Objective& objective, const float* theta) override {
    return cuda::make_objective_space(require(), objective, theta);
  }

  topology::BasinResult topology_basins_grid(const double* values, const topology::GridShape& grid,
                                             topology::Neighborhood nb, const OpContext& ctx) override {
    return cuda::basins_grid(require(), values, grid, nb, ctx);
  }
  topology::KnnLists topology_knn(const double* points, std::size_t n, std::size_t dim, std::size_t k,
                                  const OpContext& ctx) override {
    return cuda::knn_lists(require(), points, n, dim, k, ctx);
  }

  attention::GpuAttention& attention_ops() override {
    return cuda::attention_ops(require());
  }

 private:
  const Probe& probe() {
    std::call_once(once_, [this] {
      try {
        run_probe(probe_);
      } catch (...) {
        probe_.available = false;
        if (probe_.reason.empty()) probe_.reason = "CUDA probe failed unexpectedly";
      }
    });
    return probe_;
  }

  // The device to use, or DeviceUnavailable with the probe's reason.
  int require() {
    const Probe& p = probe();
    if (!p.available) fail(ErrorCode::DeviceUnavailable, "device 'cuda' is not available: " + p.reason);
    return p.device;
  }

  std::size_t chunk_rows(std::size_t m, std::size_t n, std::size_t k) const {
    const double per_row = 2.0 * double(n) * double(k);
    double rows = std::floor(kChunkFlops / per_row);
    // at least 8 blocks of 128×128 per multiprocessor
    const double fill = 8.0 * std::max(1, probe_.multiprocessors) * 128.0 / std::ceil(double(n) / 128.0);
    rows = std::max(rows, fill);
    rows = std::max(rows, 128.0);
    if (rows >= double(m)) return m;
    // balance the launches, in whole 128-row tiles
    const std::size_t chunks = static_cast<std::size_t>(std::ceil(double(m) / rows));
    std::size_t r = (m + chunks - 1) / chunks;
    r = (r + 127) / 128 * 128;
    return std::max<std::size_t>(r, 128);
  }

  double reduce(std::size_t n, const float* x, const float* y, bool norm) {
    const int dev = require();
    if (n == 0) return 0.0;
    NNSCOPE_CHECK(x && (norm || y), ErrorCode::InvalidArgument, "dot/nrm2: null vector");
    Session s(dev);
    float* dx = s.alloc<float>(n);
    float* dy = norm ? nullptr : s.alloc<float>(n);
    double* dr = s.alloc<double>(1 + reduce_workspace_doubles());
    copy_to_device(dx, x, n * sizeof(float), s.stream());
    if (!norm) copy_to_device(dy, y, n * sizeof(float), s.stream());
    if (norm) snrm2_async(n, dx, dr, dr + 1, s.stream());
    else sdot_async(n, dx, dy, dr, dr + 1, s.stream());
    double result = 0.0;
    copy_to_host(&result, dr, sizeof(double), s.stream());
    s.sync();
    return result;
  }

  std::once_flag once_;
  Probe probe_;
};

}  // namespace

GpuBackend* backend() {
  // Never destroyed: other threads may still use it while the process exits.
  static CudaBackend* const instance = new CudaBackend();
  return instance;
}

}  // namespace nnscope::cuda
