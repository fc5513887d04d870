// Attention: dense and squeezed decode / prefill on the CPU (d = 128, keep 10% with
// 5% centroids), bytes read and GB/s beside the memory bandwidth measured in the
// same run, PyTorch dense attention (Debian python3-torch) as the peer; and one
// Lloyd iteration of K-means beside scikit-learn's KMeans from the same start.
// Every op is pinned to device: 'cpu' (on a GPU machine 'auto' would pick CUDA);
// squeezed decode is SqueezedDecoder.step (the fixed K/V bound once, cluster-sorted).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, attention, buildInfo, devices, measureBandwidth, numThreads } from '../dist/lib/index.js';
import { gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

const TORCH = `
import json, os, sys, time
import torch
torch.set_num_threads(os.cpu_count())
a = json.loads(sys.argv[1])
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
def bench(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort(); return ts[len(ts) // 2]
def attend(q, k, v, mask=None):
    s = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    if mask is not None: s = s.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(s, -1), v)
g = torch.Generator().manual_seed(0)
res = []
with torch.no_grad():
    for c in a["cases"]:
        H, N, nq, d = c["H"], c["N"], c["nq"], 128
        k = torch.randn(H, N + (nq if c["prefill"] else 0), d, generator=g)
        v = torch.randn(H, N + (nq if c["prefill"] else 0), d, generator=g)
        q = torch.randn(H, nq, d, generator=g)
        mask = None
        if c["prefill"]:
            i = torch.arange(nq).unsqueeze(1); j = torch.arange(N + nq).unsqueeze(0)
            mask = j > N + i
        res.append({"ms": bench(lambda: attend(q, k, v, mask), a["runs"])})
out["cases"] = res
print(json.dumps(out))
`;

const SKLEARN = `
import json, os, sys, time, warnings
import numpy as np
import sklearn
from sklearn.cluster import KMeans
a = json.loads(sys.argv[1])
x = np.fromfile(a["x"], dtype=np.float32).reshape(a["n"], a["d"])
init = np.fromfile(a["init"], dtype=np.float32).reshape(a["k"], a["d"])
warnings.filterwarnings("ignore")
ts = []
for r in range(a["runs"] + 1):
    km = KMeans(n_clusters=a["k"], init=init, n_init=1, max_iter=a["iters"], tol=0.0, algorithm="lloyd")
    t0 = time.perf_counter(); km.fit(x); dt = (time.perf_counter() - t0) * 1000
    if r: ts.append(dt / km.n_iter_)
ts.sort()
# Inertia of the returned centres and labels, summed in float64 (KMeans' own is float32).
inertia64 = float(((x.astype(np.float64) - km.cluster_centers_.astype(np.float64)[km.labels_]) ** 2).sum())
print(json.dumps({"sklearn": sklearn.__version__, "threads": os.cpu_count(), "msPerIter": ts[len(ts) // 2], "iterations": int(km.n_iter_), "inertia": inertia64}))
`;

function generator(seed) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return { u, g: () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) };
}

/** Keys around 64 topic directions per head (norm 12, noise 0.3); values Gaussian; a decode/prefill query block near 2 topics. */
function context(H, N, nq, d, seed) {
  const { u, g } = generator(seed);
  const k = new Float32Array(H * N * d);
  const v = new Float32Array(H * N * d);
  const q = new Float32Array(H * nq * d);
  const anchors = [];
  for (let h = 0; h < H; h++) {
    const A = Array.from({ length: 64 }, () => {
      const a = Float64Array.from({ length: d }, g);
      const n = Math.hypot(...a);
      return a.map((x) => (12 * x) / n);
    });
    anchors.push(A);
    for (let i = 0; i < N; i++) {
      const a = A[Math.floor(u() * 64)];
      const o = (h * N + i) * d;
      for (let c = 0; c < d; c++) {
        k[o + c] = a[c] + 0.3 * g();
        v[o + c] = g();
      }
    }
    for (let i = 0; i < nq; i++) for (let c = 0; c < d; c++) q[(h * nq + i) * d + c] = 0.9 * (A[(3 + i) % 64][c] + A[(17 + 2 * i) % 64][c]) + 0.1 * g();
  }
  return { k, v, q };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 → IEEE half bits, round to nearest even (normal range; tiny values flush to ±0). */
function toHalf(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 112;
  if (e <= 0) return sign;
  if (e >= 31) return sign | 0x7c00;
  let m = b & 0x7fffff;
  let h = (e << 10) | (m >>> 13);
  m &= 0x1fff;
  if (m > 0x1000 || (m === 0x1000 && h & 1)) h++;
  return sign | h;
}
const half = (a) => Uint16Array.from(a, toHalf);

function relErr(x, ref) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
}

export async function main(argv) {
  const quick = argv.includes('--quick');
  const mach = machine(devices().cpu.isa);
  const info = buildInfo();
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${numThreads()} threads`);
  const bw = await measureBandwidth({ bytes: 2 ** 30, samples: quick ? 3 : 7 });
  console.log(`memory read bandwidth (threaded sum over 1 GiB, ${bw.threads} threads): ${bw.gbs.toFixed(2)} GB/s`);
  const results = { family: 'attention', date: new Date().toISOString(), git: gitSha(), build: info, machine: mach, threads: numThreads(), bandwidth: bw };
  const d = 128;
  const runs = quick ? 3 : 7;
  const decodeRuns = quick ? 15 : 31;  // decode steps are ms-level: more samples, steadier medians on a shared machine

  // ---- decode
  const decodeCases = quick ? [{ H: 8, N: 16384 }] : [{ H: 8, N: 16384 }, { H: 8, N: 32768 }, { H: 32, N: 16384 }];
  const prefillCases = quick ? [{ H: 8, N: 16384, nq: 128 }] : [{ H: 8, N: 16384, nq: 256 }, { H: 8, N: 32768, nq: 128 }];
  const torch = pythonPeer(TORCH, {
    runs: quick ? 3 : 5,
    cases: [...decodeCases.map((c) => ({ ...c, nq: 1, prefill: false })), ...prefillCases.map((c) => ({ ...c, prefill: true }))],
  });
  const drows = [];
  results.decode = [];
  for (const [ci, { H, N }] of decodeCases.entries()) {
    const { k, v, q } = context(H, N, 1, d, 100 + ci);
    const shape = [H, N, d];
    const K = new Tensor(k, shape);
    const V = new Tensor(v, shape);
    const Q = new Tensor(q, [H, 1, d]);
    const opts = { checkFinite: false, device: 'cpu' };
    const dense32 = await time(() => attention.dense(Q, K, V, opts), { minRuns: decodeRuns, minMs: 0 });
    const K16 = { data: half(k), shape };
    const V16 = { data: half(v), shape };
    const dense16 = await time(() => attention.dense(Q, K16, V16, { ...opts, storage: 'float16' }), { minRuns: decodeRuns, minMs: 0 });
    const t0 = performance.now();
    const ctx = await attention.squeeze(K, V, { iterations: 10, device: 'cpu' });
    const buildMs = performance.now() - t0;
    const dec = ctx.decoder({ device: 'cpu' });
    let last;
    const sq = await time(async () => (last = await dec.step(Q, undefined, undefined, { select: { keepFraction: 0.1 } })), { minRuns: decodeRuns, minMs: 0 });
    const ref = await attention.dense(Q, K, V, { device: 'cpu' });
    const err = relErr(last.out.data, ref.out.data);
    const kept = last.report.keptFraction.reduce((a, b) => a + b, 0) / H;
    const bytes32 = 2 * H * N * d * 4;
    const sqBytes = kept * bytes32 + H * ctx.clusters * d * 4 + H * (N - ctx.window) * 4; // kept K+V rows, centroids, labels
    const row = {
      'H×N': `${H}×${N / 1024}K`,
      'dense f32 ms': dense32.median.toFixed(2), 'f32 GB/s': (bytes32 / dense32.median / 1e6).toFixed(1),
      'dense f16 ms': dense16.median.toFixed(2), 'f16 GB/s': (bytes32 / 2 / dense16.median / 1e6).toFixed(1),
      'squeezed ms': sq.median.toFixed(2), kept: `${(100 * kept).toFixed(1)}%`, 'speed-up': `${(dense32.median / sq.median).toFixed(1)}×`, 'rel. err': err.toExponential(1),
    };
    const peer = torch.skipped ? undefined : torch.cases[ci];
    if (peer) row['torch f32 ms'] = peer.ms.toFixed(2);
    drows.push(row);
    results.decode.push({ H, N, d, dense32, dense16, bytes32, squeezed: sq, squeezedBytes: sqBytes, keptFraction: kept, relErr: err, kmeansBuildMs: buildMs, clusters: ctx.clusters, torchMs: peer?.ms });
    console.log(`  ${H}×${N}: K-means (10 Lloyd iterations, ${ctx.clusters} centroids per head) ${(buildMs / 1000).toFixed(1)} s; bandwidth-bound limit for f32 decode ${(bytes32 / bw.gbs / 1e6).toFixed(2)} ms`);
  }
  console.log(`\nDecode (one query per head, d = ${d}), CPU; dense reads K+V once (GB/s vs the ${bw.gbs.toFixed(1)} GB/s measured); squeezed keeps 10% of the clustered keys + the 100-token window:`);
  table(drows, ['H×N', 'dense f32 ms', 'f32 GB/s', 'dense f16 ms', 'f16 GB/s', 'squeezed ms', 'kept', 'speed-up', 'rel. err', ...(torch.skipped ? [] : ['torch f32 ms'])]);

  // ---- prefill
  const prows = [];
  results.prefill = [];
  for (const [pi, { H, N, nq }] of prefillCases.entries()) {
    const { k, v, q } = context(H, N, nq, d, 200 + pi);
    const K = new Tensor(k, [H, N, d]);
    const V = new Tensor(v, [H, N, d]);
    const Q = new Tensor(q, [H, nq, d]);
    const user = context(H, nq, 0, d, 300 + pi);
    const UK = new Tensor(user.k, [H, nq, d]);
    const UV = new Tensor(user.v, [H, nq, d]);
    // Dense baseline: the fixed context (non-causal) merged with the causal user block.
    const dense = await time(async () => {
      const a = await attention.dense(Q, K, V, { checkFinite: false, device: 'cpu' });
      const b = await attention.dense(Q, UK, UV, { causal: true, checkFinite: false, device: 'cpu' });
      return attention.merge(a, b);
    }, { minRuns: quick ? 2 : 3, minMs: 0 });
    const ctx = await attention.squeeze(K, V, { iterations: 10, device: 'cpu' });
    let last;
    const sq = await time(async () => (last = await ctx.prefill(Q, UK, UV, { select: { keepFraction: 0.1 }, device: 'cpu' })), { minRuns: quick ? 2 : 3, minMs: 0 });
    const flops = 4 * H * nq * (N + nq / 2) * d;
    const kept = last.report.keptFraction.reduce((a, b) => a + b, 0) / H;
    const row = {
      'H×N×Nq': `${H}×${N / 1024}K×${nq}`, 'dense ms': dense.median.toFixed(1), 'dense GFLOP/s': (flops / dense.median / 1e6).toFixed(1),
      'squeezed ms': sq.median.toFixed(1), kept: `${(100 * kept).toFixed(1)}%`, 'speed-up': `${(dense.median / sq.median).toFixed(1)}×`,
    };
    const peer = torch.skipped ? undefined : torch.cases[decodeCases.length + pi];
    if (peer) row['torch ms'] = peer.ms.toFixed(1);
    prows.push(row);
    results.prefill.push({ H, N, nq, d, dense, flops, squeezed: sq, keptFraction: kept, torchMs: peer?.ms });
  }
  console.log(`\nPrefill (N_q user tokens after the fixed context, causal among themselves), CPU; CPU fp32 peak ${mach.peakGflops.toFixed(0)} GFLOP/s:`);
  table(prows, ['H×N×Nq', 'dense ms', 'dense GFLOP/s', 'squeezed ms', 'kept', 'speed-up', ...(torch.skipped ? [] : ['torch ms'])]);
  console.log(torch.skipped ? `torch: skipped (${torch.skipped})` : `torch ${torch.torch} (${torch.threads} threads, ${torch.python}): softmax(q·kᵀ/√d)·v with matmul, fp32`);
  results.torch = torch;

  // ---- K-means per Lloyd iteration vs scikit-learn, same start
  const n = quick ? 8192 : 16384;
  const k = Math.floor(0.05 * n);
  const { k: keys } = context(1, n, 0, d, 400);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += keys[i * d + c] ** 2;
    s = Math.sqrt(s);
    for (let c = 0; c < d; c++) keys[i * d + c] /= s;
  }
  const init = new Float32Array(k * d);
  for (let j = 0; j < k; j++) init.set(keys.subarray(Math.floor((j * n) / k) * d, (Math.floor((j * n) / k) + 1) * d), j * d);
  const iters = 10;
  let km;
  const kt = await time(async () => (km = await attention.kmeans(new Tensor(keys, [n, d]), { clusters: k, init: new Tensor(init, [k, d]), iterations: iters, cosine: false, device: 'cpu' })), { minRuns: quick ? 2 : 3, minMs: 0 });
  const msPerIter = kt.median / km.iterations;
  // The same measure as the peer's: Σ‖x − c[label]‖² over the returned centres and labels, in float64.
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    const c = km.centroids.data.subarray(km.labels[i] * d, (km.labels[i] + 1) * d);
    for (let j = 0; j < d; j++) inertia += (keys[i * d + j] - c[j]) ** 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nnscope-bench-'));
  writeFileSync(join(dir, 'x.f32'), keys);
  writeFileSync(join(dir, 'init.f32'), init);
  const sk = pythonPeer(SKLEARN, { x: join(dir, 'x.f32'), init: join(dir, 'init.f32'), n, d, k, iters, runs: quick ? 1 : 3 });
  rmSync(dir, { recursive: true, force: true });
  const assignFlops = 2 * n * k * d;
  console.log(`\nK-means, ${n} unit vectors × d ${d}, ${k} centres, same start, up to ${iters} Lloyd iterations, CPU; inertia Σ‖x − c[label]‖² in float64 over each one's returned centres and labels:`);
  const krow = { 'nnscope ms/iter': msPerIter.toFixed(1), 'GFLOP/s (assign)': (assignFlops / msPerIter / 1e6).toFixed(1), iterations: km.iterations, inertia: inertia.toFixed(4) };
  if (!sk.skipped) Object.assign(krow, { 'sklearn ms/iter': sk.msPerIter.toFixed(1), 'sklearn iterations': sk.iterations, 'sklearn inertia': sk.inertia.toFixed(4), 'speed-up': `${(sk.msPerIter / msPerIter).toFixed(1)}×` });
  table([krow], Object.keys(krow));
  console.log(sk.skipped ? `scikit-learn: skipped (${sk.skipped})` : `scikit-learn ${sk.sklearn} (${sk.python}, ${sk.threads} cores; KMeans lloyd, n_init=1, tol=0)`);
  results.kmeans = { n, d, k, iters, nnscope: { ms: kt, msPerIter, iterations: km.iterations, inertia, reportedInertia: km.inertia }, sklearn: sk };
  console.log(`\nJSON: ${writeResults('attention', results)}`);
}
