// Hessian spectra: (1) top-5 eigenvalues of a dense 4096×4096 symmetric matrix
// (semicircle bulk plus six planted outliers) by nnscope's thick-restart Lanczos
// beside scipy's eigsh (ARPACK) at the same tolerance, float32 and float64;
// (2) the per-step cost of Lanczos over the bare HVP for an MLP with ~10⁵
// parameters; (3) the convection PINN's PyHessian suite (top-3, trace, a 100-step
// density): time and HVP count, beside a PyTorch implementation of PyHessian's
// algorithms (power iteration, Hutchinson, SLQ; double-backward HVPs) when
// python3-torch is installed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, buildInfo, devices, hessian, models, numThreads } from '../dist/lib/index.js';
import { TORCH_PINN, gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

const SCIPY = `
import json, os, sys, time
import numpy as np
import scipy
from scipy.sparse.linalg import eigsh, LinearOperator
args = json.loads(sys.argv[1])
n = args["n"]
out = {"scipy": scipy.__version__, "numpy": np.__version__, "threads": os.cpu_count()}
for name, dtype, tol in (("f32", np.float32, args["tol32"]), ("f64", np.float64, args["tol64"])):
    A = np.fromfile(args["path"], dtype=np.float64).reshape(n, n).astype(dtype)
    calls = [0]
    def mv(x):
        calls[0] += 1
        return A @ x
    op = LinearOperator((n, n), matvec=mv, dtype=dtype)
    v0 = np.ones(n, dtype=dtype)
    ts = []
    for r in range(args["runs"] + 1):
        calls[0] = 0
        t0 = time.perf_counter()
        vals = eigsh(op, k=5, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
        if r: ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    out[name] = {"ms": ts[len(ts) // 2], "products": calls[0], "values": sorted(vals.tolist(), reverse=True)}
print(json.dumps(out))
`;

const TORCH_PYHESSIAN = `
${TORCH_PINN}# PyHessian keeps one gradient graph and differentiates it again per product.
grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
count = [0]
def hvp(v):
    count[0] += 1
    return [h.detach() for h in torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)]
dot = lambda a, b: sum((x * y).sum() for x, y in zip(a, b)).item()
def normalize(v):
    s = math.sqrt(dot(v, v)) + 1e-6
    return [x / s for x in v]
def orth(w, vs):
    for v in vs:
        c = dot(w, v)
        w = [a - c * b for a, b in zip(w, v)]
    return normalize(w)
def eigenvalues(top_n, max_iter=100, tol=1e-3):
    vals, vecs = [], []
    for _ in range(top_n):
        v = normalize([torch.randn_like(p) for p in params])
        lam = None
        for _ in range(max_iter):
            v = orth(v, vecs)
            hv = hvp(v)
            tmp = dot(hv, v)
            v = normalize(hv)
            if lam is not None and abs(lam - tmp) / (abs(lam) + 1e-6) < tol:
                lam = tmp; break
            lam = tmp
        vals.append(lam); vecs.append(v)
    return vals
def trace(max_iter=100, tol=1e-3):
    samples, prev = [], 0.0
    for _ in range(max_iter):
        v = [torch.randint_like(p, high=2) * 2 - 1 for p in params]
        samples.append(dot(hvp(v), v))
        mean = sum(samples) / len(samples)
        if abs(mean - prev) / (abs(prev) + 1e-6) < tol: break
        prev = mean
    return sum(samples) / len(samples)
def density(m=100):
    v = normalize([torch.randint_like(p, high=2) * 2 - 1 for p in params])
    basis, alphas, betas = [v], [], []
    w = hvp(v); a = dot(w, v); w = [x - a * y for x, y in zip(w, v)]; alphas.append(a)
    for i in range(1, m):
        b = math.sqrt(dot(w, w)); betas.append(b)
        v = [x / b for x in w]
        for u in basis:
            c = dot(v, u); v = [x - c * y for x, y in zip(v, u)]
        v = normalize(v)
        basis.append(v)
        w = hvp(v); a = dot(w, v); alphas.append(a)
        w = [x - a * y - b * z for x, y, z in zip(w, v, basis[-2])]
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64)) + torch.diag(torch.tensor(betas, dtype=torch.float64), 1) + torch.diag(torch.tensor(betas, dtype=torch.float64), -1)
    return torch.linalg.eigvalsh(T).tolist()
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
for name, fn in (("top3", lambda: eigenvalues(3)), ("trace", trace), ("density", density)):
    count[0] = 0
    t0 = time.perf_counter(); r = fn(); ms = (time.perf_counter() - t0) * 1000
    out[name] = {"ms": ms, "hvps": count[0], "result": r if name != "density" else [min(r), max(r)]}
print(json.dumps(out))
`;

/** GOE bulk (semicircle on [−2, 2]) plus rank-6 spikes s = 3..8 (outliers at s + 1/s), float64 row-major. */
function spikedMatrix(n, seed) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const g = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const a = new Float64Array(n * n);
  const scale = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) {
    a[i * n + i] = g() * scale * Math.SQRT2;
    for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = g() * scale;
  }
  for (let sp = 3; sp <= 8; sp++) {
    const v = Float64Array.from({ length: n }, g);
    const norm2 = v.reduce((x, y) => x + y * y, 0);
    for (let i = 0; i < n; i++) {
      const vi = (sp * v[i]) / norm2;
      for (let j = 0; j < n; j++) a[i * n + j] += vi * v[j];
    }
  }
  return a;
}

export async function main(argv) {
  const quick = argv.includes('--quick');
  const mach = machine(devices().cpu.isa);
  const info = buildInfo();
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${numThreads()} threads`);
  const results = { family: 'hessian', date: new Date().toISOString(), git: gitSha(), build: info, machine: mach, threads: numThreads() };

  // ---- (1) dense top-5 vs scipy eigsh
  const n = 4096;
  const a64 = spikedMatrix(n, 7);
  const a32 = Float32Array.from(a64);
  const runs = quick ? 2 : 5;
  const dense = {};
  for (const [name, data, tol] of [['f32', a32, 1e-5], ['f64', a64, 1e-8]]) {
    const op = hessian.matrixOperator(new Tensor(data, [n, n]), { symmetryTol: -1 });
    let last;
    const t = await time(async () => (last = await hessian.eigenpairs(op, { k: 5, tol, vectors: false, device: 'cpu' })), { warmup: 1, minRuns: runs, minMs: 0 });
    dense[name] = { ms: t, products: last.products, values: [...last.values], converged: last.converged };
  }
  const dir = mkdtempSync(join(tmpdir(), 'nnscope-bench-'));
  const path = join(dir, 'a.f64');
  writeFileSync(path, a64);
  const scipy = pythonPeer(SCIPY, { n, path, runs, tol32: 1e-5, tol64: 1e-8 });
  rmSync(dir, { recursive: true, force: true });
  const bytes = { f32: n * n * 4, f64: n * n * 8 };
  const rows = ['f32', 'f64'].map((k) => {
    const r = { dtype: k, 'nnscope ms': dense[k].ms.median.toFixed(1), 'nnscope products': dense[k].products, 'GB/s': ((dense[k].products * bytes[k]) / (dense[k].ms.median / 1000) / 1e9).toFixed(1) };
    if (!scipy.skipped) {
      r['eigsh ms'] = scipy[k].ms.toFixed(1);
      r['eigsh products'] = scipy[k].products;
      r['speed-up'] = `${(scipy[k].ms / dense[k].ms.median).toFixed(2)}×`;
      r['max |Δλ|'] = Math.max(...dense[k].values.map((x, i) => Math.abs(x - scipy[k].values[i]))).toExponential(1);
    }
    return r;
  });
  console.log(`\nTop-5 eigenvalues of a dense ${n}×${n} symmetric matrix (tol 1e-5 float32, 1e-8 float64), CPU; each product streams the matrix once:`);
  table(rows, scipy.skipped ? ['dtype', 'nnscope ms', 'nnscope products', 'GB/s'] : ['dtype', 'nnscope ms', 'nnscope products', 'GB/s', 'eigsh ms', 'eigsh products', 'speed-up', 'max |Δλ|']);
  console.log(scipy.skipped ? `scipy: skipped (${scipy.skipped})` : `scipy ${scipy.scipy} (numpy ${scipy.numpy}, ${scipy.python}, OpenBLAS with ${scipy.threads} threads)`);
  results.dense = { n, nnscope: dense, scipy };

  // ---- (2) Lanczos per-step overhead over the HVP, MLP with ~10⁵ parameters, at several batch sizes
  // (the HVP costs ∝ samples; the full reorthogonalisation ∝ steps × parameters, independent of the data).
  const steps = quick ? 30 : 100;
  const lrows = [];
  results.lanczos = [];
  for (const samples of quick ? [256, 2048] : [256, 1024, 4096]) {
    const data = models.datasets.blobs({ n: samples, d: 32, classes: 10, std: 1, seed: 1 });
    const mlp = models.mlp({ widths: [32, 256, 256, 128, 10], activation: 'tanh', loss: 'softmax_cross_entropy' }, data);
    const theta = mlp.init(0);
    const v = mlp.init(1);
    const hvp = await time(() => mlp.hvp(theta, v, { device: 'cpu' }), { minRuns: quick ? 5 : 10, minMs: 0 });
    const op = hessian.modelOperator(mlp, theta);
    const lz = await time(() => hessian.lanczos(op, { steps, device: 'cpu' }), { warmup: 0, minRuns: quick ? 1 : 3, minMs: 0 });
    const perStep = lz.median / steps;
    const overhead = perStep / hvp.median - 1;
    lrows.push({ samples, params: mlp.dim, 'HVP ms': hvp.median.toFixed(2), 'Lanczos ms/step': perStep.toFixed(2), overhead: `${(100 * overhead).toFixed(1)}%` });
    results.lanczos.push({ params: mlp.dim, samples, steps, hvpMs: hvp, lanczosMs: lz, perStepMs: perStep, overhead });
  }
  console.log(`\nLanczos, ${steps} steps with full reorthogonalisation, MLP 32-256-256-128-10 (tanh, softmax CE), CPU:`);
  table(lrows, ['samples', 'params', 'HVP ms', 'Lanczos ms/step', 'overhead']);
  console.log('(overhead = Lanczos time per step over one HVP called from JS; the reorthogonalisation streams the basis, on average ~steps/2 × P floats, twice per step)');

  // ---- (3) the PINN's PyHessian suite
  const nCollocation = 1000;
  const pinn = models.pinn({ beta: 1, nCollocation, collocationSampling: 'random' });
  const pt = pinn.init(0);
  const pop = hessian.modelOperator(pinn, pt);
  const suite = {};
  const run = async (name, fn) => {
    const t0 = performance.now();
    const r = await fn();
    suite[name] = { ms: performance.now() - t0, hvps: r.products, result: r };
  };
  await run('top3 (Lanczos)', () => hessian.eigenpairs(pop, { k: 3, vectors: false, device: 'cpu' }));
  await run('top3 (power)', () => hessian.eigenpairs(pop, { k: 3, method: 'power', vectors: false, device: 'cpu' }));
  await run('trace (Hutchinson)', () => hessian.trace(pop, { relTol: 1e-2, maxProducts: 1000, device: 'cpu' }));
  await run('trace (Hutch++)', () => hessian.trace(pop, { method: 'hutch++', maxProducts: 300, device: 'cpu' }));
  await run('density (100 steps)', () => hessian.density(pop, { steps: 100, device: 'cpu' }));
  const torch = quick ? { skipped: '--quick' } : pythonPeer(TORCH_PYHESSIAN, { beta: 1, nCollocation });
  const peerOf = { 'top3 (power)': 'top3', 'trace (Hutchinson)': 'trace', 'density (100 steps)': 'density' };
  const prow = Object.entries(suite).map(([name, s]) => {
    const r = { op: name, ms: s.ms.toFixed(0), HVPs: s.hvps };
    const peer = !torch.skipped && peerOf[name] ? torch[peerOf[name]] : undefined;
    if (peer) Object.assign(r, { 'torch ms': peer.ms.toFixed(0), 'torch HVPs': peer.hvps, 'speed-up': `${(peer.ms / s.ms).toFixed(1)}×` });
    return r;
  });
  const describe = (s) => {
    const r = s.result;
    if (r.values) return [...r.values].map((x) => x.toPrecision(5)).join(', ');
    if (r.estimate !== undefined) return `${r.estimate.toPrecision(5)} ± ${r.stdError.toPrecision(2)}`;
    return `nodes in [${Math.min(...r.nodes.data).toPrecision(4)}, ${Math.max(...r.nodes.data).toPrecision(4)}]`;
  };
  console.log(`\nPINN (${pinn.dim} parameters, ${nCollocation} collocation points), PyHessian's suite, CPU:`);
  table(prow, torch.skipped ? ['op', 'ms', 'HVPs'] : ['op', 'ms', 'HVPs', 'torch ms', 'torch HVPs', 'speed-up']);
  for (const [name, s] of Object.entries(suite)) console.log(`  ${name}: ${describe(s)}`);
  console.log(torch.skipped ? `torch: skipped (${torch.skipped})` : `torch ${torch.torch} (${torch.threads} threads, ${torch.python}): PyHessian's algorithms (power iteration tol 1e-3, Hutchinson tol 1e-3, SLQ 100 steps) with double-backward HVPs`);
  results.pinn = { params: pinn.dim, nCollocation, suite: Object.fromEntries(Object.entries(suite).map(([k, s]) => [k, { ms: s.ms, hvps: s.hvps, summary: describe(s) }])), torch };

  console.log(`\nJSON: ${writeResults('hessian', results)}`);
}
