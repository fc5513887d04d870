#include "models/engine.h"

#include <algorithm>
#include <cstring>

#include "base/buffer.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "linalg/blas.h"
#include "models/activation.h"

namespace nnscope::models::detail {

Net make_net(const std::vector<std::size_t>& widths, Activation hidden, Activation output) {
  Net net;
  net.widths = widths;
  const std::size_t L = widths.size() - 1;
  std::size_t off = 0;
  for (std::size_t l = 0; l < L; ++l) {
    net.acts.push_back(l + 1 == L ? output : hidden);
    net.w_off.push_back(off);
    off += checked_mul(widths[l + 1], widths[l]);
    net.b_off.push_back(off);
    off += widths[l + 1];
  }
  net.P = off;
  return net;
}

// ---------------------------------------------------------------- GEMM
template <>
void gemm<float>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  linalg::GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.beta = beta;
  g.c = c;
  g.ldc = ldc;
  linalg::sgemm_cpu(g);
}

template <>
void gemm<double>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
                  std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i) {
    double* cr = c + i * ldc;
    if (beta == 0.0)
      std::fill(cr, cr + n, 0.0);
    else if (beta != 1.0)
      for (std::size_t j = 0; j < n; ++j) cr[j] *= beta;
  }
  if (k == 0 || alpha == 0.0) return;
  if (!tb) {
    // C[i,:] += α·A(i,p)·B[p,:]  (B rows contiguous)
    for (std::size_t i = 0; i < m; ++i) {
      double* __restrict cr = c + i * ldc;
      for (std::size_t p = 0; p < k; ++p) {
        const double aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
        const double* __restrict br = b + p * ldb;
        for (std::size_t j = 0; j < n; ++j) cr[j] += aip * br[j];
      }
    }
  } else {
    // C[i,j] += α·Σ_p A(i,p)·B[j,p]
    std::vector<double> arow;
    if (ta) arow.resize(k);
    for (std::size_t i = 0; i < m; ++i) {
      const double* ar = a + i * lda;
      if (ta) {
        for (std::size_t p = 0; p < k; ++p) arow[p] = a[p * lda + i];
        ar = arow.data();
      }
      double* cr = c + i * ldc;
      for (std::size_t j = 0; j < n; ++j) {
        const double* br = b + j * ldb;
        double s = 0.0;
        for (std::size_t p = 0; p < k; ++p) s += ar[p] * br[p];
        cr[j] += alpha * s;
      }
    }
  }
}

// ---------------------------------------------------------------- tasks
template <typename T>
std::vector<Task<T>> make_tasks(const std::vector<const Group<T>*>& groups, std::size_t chunk_rows) {
  std::vector<Task<T>> tasks;
  for (const Group<T>* g : groups) {
    if (!g || g->units == 0) continue;
    const std::size_t per = std::max<std::size_t>(1, chunk_rows / std::max<std::size_t>(1, g->rows_per_unit));
    for (std::size_t lo = 0; lo < g->units; lo += per) tasks.push_back({g, lo, std::min(g->units, lo + per)});
  }
  return tasks;
}

namespace {

template <typename T>
struct Work {
  AlignedBuffer<T> x;
  std::vector<AlignedBuffer<T>> a, z, s1, s2, s3, ra, rz;
  AlignedBuffer<T> g, gn, rg, rgn, d, rd;
  std::vector<double> bsum;
  void ensure_layers(std::size_t L) {
    if (a.size() < L + 1) {
      a.resize(L + 1);
      ra.resize(L + 1);
      z.resize(L);
      s1.resize(L);
      s2.resize(L);
      s3.resize(L);
      rz.resize(L);
    }
  }
};

template <typename T>
Work<T>& thread_work() {
  static thread_local Work<T> w;
  return w;
}

// Grow-only sizing (AlignedBuffer::resize would shrink its recorded size and then
// reallocate on the next larger task).
template <typename T>
void grow(AlignedBuffer<T>& b, std::size_t n) {
  if (b.size() < n) b.resize(n);
}

// out[j] = Σ_i m[i·n + j] over `rows` rows, accumulated in double in row order.
template <typename T>
void column_sums_rows(std::size_t rows, std::size_t n, const T* __restrict m, double* __restrict acc) {
  for (std::size_t j = 0; j < n; ++j) acc[j] = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    const T* __restrict r = m + i * n;
    for (std::size_t j = 0; j < n; ++j) acc[j] += double(r[j]);
  }
}
template <typename T>
void column_sums(std::size_t rows, std::size_t n, const T* m, T* out, std::vector<double>& acc) {
  if (acc.size() < n) acc.resize(n);
  column_sums_rows(rows, n, m, acc.data());
  for (std::size_t j = 0; j < n; ++j) out[j] = T(acc[j]);
}

// Elementwise kernels (restrict parameters, so the loops vectorise).
template <typename T>
void ew_mul(std::size_t n, const T* __restrict a, const T* __restrict b, T* __restrict out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
// out += a·b·c
template <typename T>
void ew_add_mul3(std::size_t n, const T* __restrict a, const T* __restrict b, const T* __restrict c,
                 T* __restrict out) {
  for (std::size_t i = 0; i < n; ++i) out[i] += a[i] * b[i] * c[i];
}
// out = a·b·c + d·e
template <typename T>
void ew_mul3_add_mul(std::size_t n, const T* __restrict a, const T* __restrict b, const T* __restrict c,
                     const T* __restrict d, const T* __restrict e, T* __restrict out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i] * c[i] + d[i] * e[i];
}
// y += a·x
inline void ew_axpy(std::size_t n, float a, const float* __restrict x, float* __restrict y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}
// R{δ_0} channel terms: out += rg·s2·z + g·(s3·rz0·z + s2·rz)
template <typename T>
void ew_rdelta0(std::size_t n, const T* __restrict rg, const T* __restrict g, const T* __restrict s2,
                const T* __restrict s3, const T* __restrict z, const T* __restrict rz0, const T* __restrict rz,
                T* __restrict out) {
  for (std::size_t i = 0; i < n; ++i) out[i] += rg[i] * s2[i] * z[i] + g[i] * (s3[i] * rz0[i] * z[i] + s2[i] * rz[i]);
}

}  // namespace

template <typename T>
double run_task(const Net& net, const Task<T>& task, std::size_t task_index, Mode mode, const T* theta, const T* v,
                T* out, const Layer0Fn<T>* layer0) {
  const Group<T>& grp = *task.group;
  const std::size_t L = net.layers();
  const std::size_t B = (task.hi - task.lo) * grp.rows_per_unit;
  const std::size_t C = grp.channels.size();
  const std::size_t R = (1 + C) * B;
  const std::size_t d_in = net.widths[0];
  const bool grad = mode != Mode::Loss;
  const bool hvp = mode == Mode::Hvp;
  const bool want_s1 = C > 0 || grad;
  const bool want_s2 = (grad && C > 0) || hvp;
  const bool want_s3 = hvp && C > 0;
  std::size_t maxw = 0;
  for (std::size_t w : net.widths) maxw = std::max(maxw, w);

  Work<T>& w = thread_work<T>();
  w.ensure_layers(L);
  grow(w.x, checked_mul(R, d_in));
  T* x = w.x.data();
  grp.inputs(task.lo, task.hi, x);
  for (std::size_t c = 0; c < C; ++c) {
    T* xc = x + (1 + c) * B * d_in;
    std::fill(xc, xc + B * d_in, T(0));
    for (std::size_t i = 0; i < B; ++i) xc[i * d_in + grp.channels[c]] = T(1);
  }

  // ---- forward
  for (std::size_t l = 0; l < L; ++l) {
    const std::size_t ni = net.widths[l], no = net.widths[l + 1];
    const T* W = theta + net.w_off[l];
    const T* bias = theta + net.b_off[l];
    const T* Ain = l == 0 ? x : w.a[l].data();
    grow(w.z[l], R * no);
    grow(w.a[l + 1], R * no);
    T* Z = w.z[l].data();
    T* A = w.a[l + 1].data();
    T* S1 = nullptr;
    T* S2 = nullptr;
    T* S3 = nullptr;
    if (want_s1) S1 = (grow(w.s1[l], B * no), w.s1[l].data());
    if (want_s2) S2 = (grow(w.s2[l], B * no), w.s2[l].data());
    if (want_s3) S3 = (grow(w.s3[l], B * no), w.s3[l].data());
    if (l == 0 && layer0) {
      (*layer0)(task_index, Z);
      for (std::size_t c = 0; c < C; ++c) {
        T* zc = Z + (1 + c) * B * no;
        const std::size_t kc = grp.channels[c];
        for (std::size_t i = 0; i < B; ++i)
          for (std::size_t j = 0; j < no; ++j) zc[i * no + j] = W[j * ni + kc];
      }
    } else {
      gemm<T>(false, true, R, no, ni, T(1), Ain, ni, W, ni, T(0), Z, no);
    }
    act_forward<T>(net.acts[l], B, no, Z, bias, A, S1, S2, S3);
    for (std::size_t c = 1; c <= C; ++c) ew_mul(B * no, S1, Z + c * B * no, A + c * B * no);
  }
  grow(w.g, R * maxw);
  const double loss = grp.head(task.lo, task.hi, w.a[L].data(), grad ? w.g.data() : nullptr);
  if (!grad) return loss;

  // ---- R-forward
  if (hvp) {
    for (std::size_t l = 0; l < L; ++l) {
      const std::size_t ni = net.widths[l], no = net.widths[l + 1];
      const T* W = theta + net.w_off[l];
      const T* VW = v + net.w_off[l];
      const T* Vb = v + net.b_off[l];
      const T* Ain = l == 0 ? x : w.a[l].data();
      grow(w.rz[l], R * no);
      grow(w.ra[l + 1], R * no);
      T* RZ = w.rz[l].data();
      T* RA = w.ra[l + 1].data();
      gemm<T>(false, true, R, no, ni, T(1), Ain, ni, VW, ni, T(0), RZ, no);
      if (l > 0) gemm<T>(false, true, R, no, ni, T(1), w.ra[l].data(), ni, W, ni, T(1), RZ, no);
      for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < no; ++j) RZ[i * no + j] += Vb[j];
      const T* S1 = w.s1[l].data();
      const std::size_t bn = B * no;
      ew_mul(bn, S1, RZ, RA);
      for (std::size_t c = 1; c <= C; ++c)
        ew_mul3_add_mul(bn, w.s2[l].data(), RZ, w.z[l].data() + c * bn, S1, RZ + c * bn, RA + c * bn);
    }
    grow(w.rg, R * maxw);
    grp.rhead(task.lo, task.hi, w.a[L].data(), w.ra[L].data(), w.rg.data());
  }

  // ---- backward (and its R-operator)
  grow(w.gn, R * maxw);
  grow(w.d, R * maxw);
  if (hvp) {
    grow(w.rgn, R * maxw);
    grow(w.rd, R * maxw);
  }
  T* G = w.g.data();
  T* Gn = w.gn.data();
  T* RG = hvp ? w.rg.data() : nullptr;
  T* RGn = hvp ? w.rgn.data() : nullptr;
  for (std::size_t l = L; l-- > 0;) {
    const std::size_t ni = net.widths[l], no = net.widths[l + 1];
    const std::size_t bn = B * no;
    const T* W = theta + net.w_off[l];
    const T* S1 = w.s1[l].data();
    const T* S2 = want_s2 ? w.s2[l].data() : nullptr;
    const T* S3 = want_s3 ? w.s3[l].data() : nullptr;
    const T* Z = w.z[l].data();
    T* D = w.d.data();
    // δ
    ew_mul(bn, G, S1, D);
    for (std::size_t c = 1; c <= C; ++c) {
      ew_add_mul3(bn, G + c * bn, S2, Z + c * bn, D);
      ew_mul(bn, G + c * bn, S1, D + c * bn);
    }
    const T* Ain = l == 0 ? x : w.a[l].data();
    T* ow = out + net.w_off[l];
    T* ob = out + net.b_off[l];
    if (!hvp) {
      gemm<T>(true, false, no, ni, R, T(1), D, no, Ain, ni, T(0), ow, ni);
      column_sums(B, no, D, ob, w.bsum);
      if (l > 0) gemm<T>(false, false, R, ni, no, T(1), D, no, W, ni, T(0), Gn, ni);
    } else {
      const T* RZ = w.rz[l].data();
      T* RD = w.rd.data();
      ew_mul3_add_mul(bn, G, S2, RZ, RG, S1, RD);  // R{G_0}·σ' + G_0·σ''·R{Z_0}
      for (std::size_t c = 1; c <= C; ++c) {
        ew_rdelta0(bn, RG + c * bn, G + c * bn, S2, S3, Z + c * bn, RZ, RZ + c * bn, RD);
        ew_mul3_add_mul(bn, G + c * bn, S2, RZ, RG + c * bn, S1, RD + c * bn);  // R{G_c}·σ' + G_c·σ''·R{Z_0}
      }
      gemm<T>(true, false, no, ni, R, T(1), RD, no, Ain, ni, T(0), ow, ni);
      if (l > 0) gemm<T>(true, false, no, ni, R, T(1), D, no, w.ra[l].data(), ni, T(1), ow, ni);
      column_sums(B, no, RD, ob, w.bsum);
      if (l > 0) {
        const T* VW = v + net.w_off[l];
        gemm<T>(false, false, R, ni, no, T(1), D, no, W, ni, T(0), Gn, ni);
        gemm<T>(false, false, R, ni, no, T(1), RD, no, W, ni, T(0), RGn, ni);
        gemm<T>(false, false, R, ni, no, T(1), D, no, VW, ni, T(1), RGn, ni);
        std::swap(RG, RGn);
      }
    }
    std::swap(G, Gn);
  }
  return loss;
}

template <typename T>
double evaluate(const Net& net, const std::vector<Task<T>>& tasks, Mode mode, const T* theta, const T* v, T* out,
                double weight_decay, const OpContext& ctx) {
  ctx.check();
  const std::size_t nt = tasks.size(), P = net.P;
  const bool vec = mode != Mode::Loss;
  std::vector<double> parts_loss(nt, 0.0);
  // Waves of tasks bound the memory of the per-task partial vectors; the wave size
  // depends on P only, and partials are added in task order.
  std::size_t wave = nt;
  AlignedBuffer<T> parts;
  std::vector<double> acc;
  if (vec) {
    const std::size_t budget = std::size_t(64) << 20;
    wave = std::max<std::size_t>(
        1, std::min<std::size_t>({nt, std::size_t(64), budget / std::max<std::size_t>(1, P * sizeof(T))}));
    parts.resize(checked_mul(wave, P));
    acc.assign(P, 0.0);
  }
  for (std::size_t w0 = 0; w0 < nt; w0 += wave) {
    const std::size_t cnt = std::min(wave, nt - w0);
    ThreadPool::global().run(cnt, [&](std::size_t i) {
      ctx.check();
      parts_loss[w0 + i] =
          run_task<T>(net, tasks[w0 + i], w0 + i, mode, theta, v, vec ? parts.data() + i * P : nullptr);
    });
    if (vec)
      for (std::size_t i = 0; i < cnt; ++i) {
        const T* pp = parts.data() + i * P;
        for (std::size_t p = 0; p < P; ++p) acc[p] += double(pp[p]);
      }
  }
  double loss = 0.0;
  for (double l : parts_loss) loss += l;
  if (weight_decay != 0.0) {
    double sq = 0.0;
    for (std::size_t p = 0; p < P; ++p) sq += double(theta[p]) * double(theta[p]);
    loss += 0.5 * weight_decay * sq;
  }
  if (vec) {
    const T* add = mode == Mode::Grad ? theta : v;
    for (std::size_t p = 0; p < P; ++p) out[p] = T(acc[p] + weight_decay * double(add[p]));
  }
  return loss;
}

void evaluate_grid(const Net& net, const std::vector<Task<float>>& tasks, const float* theta0, const float* dirs,
                   std::size_t k, const float* coords, std::size_t n_points, double* out, double weight_decay,
                   const OpContext& ctx) {
  ctx.check();
  if (n_points == 0) return;
  const std::size_t P = net.P, d_in = net.widths[0], n1 = net.widths[1];
  const std::size_t nt = tasks.size();

  // Layer-0 split: X·W₀ᵀ and X·D_jᵀ once per task (primal rows only), when it
  // saves work (k < d_in) and its tables stay within 256 MiB.
  std::size_t primal_rows = 0;
  for (const auto& t : tasks) primal_rows += (t.hi - t.lo) * t.group->rows_per_unit;
  const double table_bytes = double(k + 1) * double(primal_rows) * double(n1) * sizeof(float);
  const bool split = k > 0 && k < d_in && table_bytes <= double(std::size_t(256) << 20);
  std::vector<AlignedBuffer<float>> pre(split ? nt : 0);
  std::vector<std::size_t> rows(nt);
  for (std::size_t t = 0; t < nt; ++t) rows[t] = (tasks[t].hi - tasks[t].lo) * tasks[t].group->rows_per_unit;
  if (split) {
    ThreadPool::global().run(nt, [&](std::size_t t) {
      ctx.check();
      const std::size_t B = rows[t];
      AlignedBuffer<float> x(checked_mul(B, d_in));
      tasks[t].group->inputs(tasks[t].lo, tasks[t].hi, x.data());
      pre[t].resize(checked_mul(k + 1, checked_mul(B, n1)));
      gemm<float>(false, true, B, n1, d_in, 1.0f, x.data(), d_in, theta0 + net.w_off[0], d_in, 0.0f, pre[t].data(),
                  n1);
      for (std::size_t j = 0; j < k; ++j)
        gemm<float>(false, true, B, n1, d_in, 1.0f, x.data(), d_in, dirs + j * P + net.w_off[0], d_in, 0.0f,
                    pre[t].data() + (j + 1) * B * n1, n1);
    });
  }

  constexpr std::size_t kPts = 4;      // points per parallel chunk (share the data sweep)
  constexpr std::size_t kBlock = 512;  // points between progress reports / cancellation checks
  for (std::size_t b0 = 0; b0 < n_points; b0 += kBlock) {
    ctx.check();
    const std::size_t nb = std::min(kBlock, n_points - b0);
    const std::size_t chunks = (nb + kPts - 1) / kPts;
    ThreadPool::global().run(chunks, [&](std::size_t c) {
      ctx.check();
      const std::size_t p0 = b0 + c * kPts;
      const std::size_t m = std::min(kPts, b0 + nb - p0);
      static thread_local AlignedBuffer<float> th;
      grow(th, checked_mul(kPts, P));
      for (std::size_t q = 0; q < m; ++q) {
        // θ_q = ((θ₀ + a_0·d_0) + a_1·d_1) + …, element by element in j order
        const float* a = coords + (p0 + q) * k;
        float* tq = th.data() + q * P;
        std::copy(theta0, theta0 + P, tq);
        for (std::size_t j = 0; j < k; ++j) ew_axpy(P, a[j], dirs + j * P, tq);
      }
      double acc[kPts] = {0.0};
      for (std::size_t t = 0; t < nt; ++t) {
        for (std::size_t q = 0; q < m; ++q) {
          const float* a = coords + (p0 + q) * k;
          if (split) {
            const Layer0Fn<float> fn = [&](std::size_t ti, float* z0) {
              const std::size_t len = rows[ti] * n1;
              const float* base = pre[ti].data();
              std::copy(base, base + len, z0);
              for (std::size_t j = 0; j < k; ++j) ew_axpy(len, a[j], base + (j + 1) * len, z0);
            };
            acc[q] += run_task<float>(net, tasks[t], t, Mode::Loss, th.data() + q * P, nullptr, nullptr, &fn);
          } else {
            acc[q] += run_task<float>(net, tasks[t], t, Mode::Loss, th.data() + q * P, nullptr, nullptr, nullptr);
          }
        }
      }
      for (std::size_t q = 0; q < m; ++q) {
        double l = acc[q];
        if (weight_decay != 0.0) {
          const float* tq = th.data() + q * P;
          double sq = 0.0;
          for (std::size_t p = 0; p < P; ++p) sq += double(tq[p]) * double(tq[p]);
          l += 0.5 * weight_decay * sq;
        }
        out[p0 + q] = l;
      }
    });
    ctx.report(double(b0 + nb), double(n_points));
  }
}

template std::vector<Task<float>> make_tasks<float>(const std::vector<const Group<float>*>&, std::size_t);
template std::vector<Task<double>> make_tasks<double>(const std::vector<const Group<double>*>&, std::size_t);
template double run_task<float>(const Net&, const Task<float>&, std::size_t, Mode, const float*, const float*, float*,
                                const Layer0Fn<float>*);
template double run_task<double>(const Net&, const Task<double>&, std::size_t, Mode, const double*, const double*,
                                 double*, const Layer0Fn<double>*);
template double evaluate<float>(const Net&, const std::vector<Task<float>>&, Mode, const float*, const float*, float*,
                                double, const OpContext&);
template double evaluate<double>(const Net&, const std::vector<Task<double>>&, Mode, const double*, const double*,
                                 double*, double, const OpContext&);

double Bound::loss(const float* theta, const OpContext& ctx) const {
  return evaluate<float>(net, tf, Mode::Loss, theta, nullptr, nullptr, weight_decay, ctx);
}
double Bound::loss_grad(const float* theta, float* grad, const OpContext& ctx) const {
  return evaluate<float>(net, tf, Mode::Grad, theta, nullptr, grad, weight_decay, ctx);
}
void Bound::hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) const {
  evaluate<float>(net, tf, Mode::Hvp, theta, v, hv, weight_decay, ctx);
}
double Bound::loss64(const double* theta, const OpContext& ctx) const {
  return evaluate<double>(net, td, Mode::Loss, theta, nullptr, nullptr, weight_decay, ctx);
}
double Bound::loss_grad64(const double* theta, double* grad, const OpContext& ctx) const {
  return evaluate<double>(net, td, Mode::Grad, theta, nullptr, grad, weight_decay, ctx);
}
void Bound::hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) const {
  evaluate<double>(net, td, Mode::Hvp, theta, v, hv, weight_decay, ctx);
}
void Bound::loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords,
                      std::size_t n_points, double* out, const OpContext& ctx) const {
  NNSCOPE_CHECK(theta0 != nullptr, ErrorCode::InvalidArgument, "loss_grid: theta0 missing");
  NNSCOPE_CHECK(n_points == 0 || out != nullptr, ErrorCode::InvalidArgument, "loss_grid: output missing");
  NNSCOPE_CHECK(k == 0 || dirs != nullptr, ErrorCode::InvalidArgument, "loss_grid: directions missing");
  NNSCOPE_CHECK(n_points == 0 || k == 0 || coords != nullptr, ErrorCode::InvalidArgument,
                "loss_grid: coordinates missing");
  evaluate_grid(net, tf, theta0, dirs, k, coords, n_points, out, weight_decay, ctx);
}

}  // namespace nnscope::models::detail
