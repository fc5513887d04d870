import test from 'ava';
import { NnscopeError, Tensor, hessian, models } from '../lib/index.js';
import { expectCode, jacobiEigenvalues, rng, spectrumMatrix } from './helpers.js';

const sorted = (xs: readonly number[], dir: 1 | -1) => [...xs].sort((a, b) => dir * (a - b));

/** max_i ‖A v_i − λ_i v_i‖ for row vectors of a row-major n×n matrix. */
function maxResidual(a: ArrayLike<number>, n: number, values: ArrayLike<number>, vectors: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < values.length; i++) {
    let s = 0;
    for (let r = 0; r < n; r++) {
      let av = 0;
      for (let c = 0; c < n; c++) av += a[r * n + c]! * vectors[i * n + c]!;
      s += (av - values[i]! * vectors[i * n + r]!) ** 2;
    }
    worst = Math.max(worst, Math.sqrt(s));
  }
  return worst;
}

// A spectrum with a cluster, a repeated value and a negative part.
function testSpectrum(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 50 : i === 1 ? 49.5 : i === 2 ? 20 : i === 3 ? 20 : i === n - 1 ? -30 : Math.sin(i) * 5));
}

test('top-k of a float64 matrix with a known spectrum: values to 1e-8, vectors with small residuals', async (t) => {
  const n = 120;
  const lambda = testSpectrum(n);
  const a = spectrumMatrix(lambda, 1);
  const op = hessian.matrixOperator(new Tensor(a, [n, n]));
  t.is(op.precision, 'float64');
  const r = await hessian.eigenpairs(op, { k: 4 });
  t.true(r.converged);
  const want = sorted(lambda, -1).slice(0, 4);
  for (let i = 0; i < 4; i++) t.true(Math.abs(r.values[i]! - want[i]!) <= 1e-8 * Math.abs(want[i]!), `${r.values[i]} vs ${want[i]}`);
  t.true(r.vectors instanceof Tensor && r.vectors.data instanceof Float64Array);
  t.deepEqual(r.vectors!.shape, [4, n]);
  t.true(maxResidual(a, n, r.values, r.vectors!.data) < 1e-7 * 50);
  t.is(op.products, r.products);

  const s = await hessian.eigenpairs(op, { k: 2, which: 'smallest' });
  const wantS = sorted(lambda, 1).slice(0, 2);
  for (let i = 0; i < 2; i++) t.true(Math.abs(s.values[i]! - wantS[i]!) <= 1e-8 * Math.max(1, Math.abs(wantS[i]!)));
  const m = await hessian.eigenpairs(op, { k: 1, which: 'magnitude', vectors: false });
  t.true(Math.abs(m.values[0]! - 50) < 5e-7);
  t.is(m.vectors, undefined);
  t.is(op.products, r.products + s.products + m.products);
});

test('float32 matrix: top-k to 1e-5, and PyHessian power iteration finds the largest |λ| (negative here)', async (t) => {
  const n = 80;
  const lambda = Array.from({ length: n }, (_, i) => (i === 0 ? -40 : i === 1 ? 25 : (i % 7) - 3));
  const a64 = spectrumMatrix(lambda, 2);
  const op = hessian.matrixOperator(new Tensor(Float32Array.from(a64), [n, n]));
  t.is(op.precision, 'float32');
  const r = await hessian.eigenpairs(op, { k: 2, which: 'magnitude' });
  t.true(Math.abs(r.values[0]! + 40) < 1e-5 * 40, String(r.values[0]));
  t.true(Math.abs(r.values[1]! - 25) < 1e-5 * 25, String(r.values[1]));
  t.true(r.vectors!.data instanceof Float32Array);
  const p = await hessian.eigenpairs(op, { k: 2, method: 'power', tol: 1e-6, maxIter: 1000 });
  t.true(Math.abs(p.values[0]! + 40) < 1e-3 * 40, String(p.values[0]));
  t.true(Math.abs(p.values[1]! - 25) < 1e-3 * 25, String(p.values[1]));
  await expectCode(t, hessian.eigenpairs(op, { method: 'power', which: 'largest' }), 'ERR_INVALID_ARGUMENT');
});

test('diagonal, rank-one and 1×1 operators', async (t) => {
  const n = 30;
  const diag = new Float64Array(n * n);
  for (let i = 0; i < n; i++) diag[i * n + i] = i + 1;
  const d = await hessian.eigenpairs(hessian.matrixOperator(new Tensor(diag, [n, n])), { k: 3 });
  t.deepEqual([...d.values].map((x) => Math.round(x * 1e9) / 1e9), [30, 29, 28]);

  const u = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
  const nu = Math.hypot(...u);
  const r1 = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r1[i * n + j] = u[i]! * u[j]!;
  const r = await hessian.eigenpairs(hessian.matrixOperator(new Tensor(r1, [n, n])), { k: 2 });
  t.true(Math.abs(r.values[0]! - nu * nu) < 1e-10 * nu * nu);
  t.true(Math.abs(r.values[1]!) < 1e-10 * nu * nu);

  const one = await hessian.eigenpairs(hessian.matrixOperator(new Tensor(Float64Array.of(-3), [1, 1])), { k: 5 });
  t.deepEqual([...one.values], [-3]);
  const tr = await hessian.trace(hessian.matrixOperator(new Tensor(diag, [n, n])), { method: 'hutch++', maxProducts: 3 * n });
  t.true(Math.abs(tr.estimate - (n * (n + 1)) / 2) < 1e-8 * n * n);
});

test('Hutchinson is within 3 standard errors of the trace in ≥ 95% of seeds; Hutch++ beats it at equal products', async (t) => {
  const n = 60;
  const lambda = Array.from({ length: n }, (_, i) => 100 * 0.8 ** i - 1);
  const a = spectrumMatrix(lambda, 3);
  const op = hessian.matrixOperator(new Tensor(a, [n, n]));
  const truth = lambda.reduce((x, y) => x + y, 0);
  let inside = 0;
  let errH = 0;
  let errPP = 0;
  const seeds = 40;
  for (let seed = 0; seed < seeds; seed++) {
    const h = await hessian.trace(op, { seed, maxProducts: 30, minSamples: 30 });
    t.is(h.samples.length, 30);
    t.is(h.products, 30);
    if (Math.abs(h.estimate - truth) <= 3 * h.stdError) inside++;
    errH += Math.abs(h.estimate - truth);
    const pp = await hessian.trace(op, { seed, method: 'hutch++', maxProducts: 30 });
    t.true(pp.products <= 30);
    errPP += Math.abs(pp.estimate - truth);
  }
  t.true(inside >= 0.95 * seeds - 1, `${inside}/${seeds}`); // 3σ covers 99.7%; the slack absorbs the σ estimate
  t.true(errPP < errH, `hutch++ ${errPP / seeds} vs hutchinson ${errH / seeds}`);
  const stop = await hessian.trace(op, { relTol: 0.05, maxProducts: 10000 });
  t.true(stop.converged && stop.stdError <= 0.05 * Math.abs(stop.estimate));
});

test('SLQ density: weights sum to 1, moments match the spectrum, unit area, PyHessian grid', async (t) => {
  const n = 200;
  const lambda = Array.from({ length: n }, (_, i) => -2 + (6 * i) / (n - 1));
  const a = spectrumMatrix(lambda, 4);
  const op = hessian.matrixOperator(new Tensor(a, [n, n]));
  const r = await hessian.density(op, { steps: 40, runs: 8, seed: 1 });
  t.deepEqual(r.nodes.shape, [8, 40]);
  t.is(r.products, 8 * 40);
  let m1 = 0;
  let m2 = 0;
  for (let run = 0; run < 8; run++) {
    let s = 0;
    for (let j = 0; j < 40; j++) {
      const w = r.weights.data[run * 40 + j]!;
      const x = r.nodes.data[run * 40 + j]!;
      s += w;
      m1 += (w * x) / 8;
      m2 += (w * x * x) / 8;
    }
    t.true(Math.abs(s - 1) < 1e-12);
  }
  const mean = lambda.reduce((x, y) => x + y, 0) / n;
  const second = lambda.reduce((x, y) => x + y * y, 0) / n;
  t.true(Math.abs(m1 - mean) < 0.15, `${m1} vs ${mean}`);
  t.true(Math.abs(m2 - second) < 0.6, `${m2} vs ${second}`);
  t.is(r.grid.length, 10000);
  const dt = r.grid[1]! - r.grid[0]!;
  t.true(Math.abs(r.density.reduce((x, y) => x + y, 0) * dt - 1) < 1e-9);
  t.true(r.grid[0]! < -2 && r.grid[9999]! > 4);
  const range = r.grid[9999]! - r.grid[0]!;
  t.true(Math.abs(r.variance - 1e-5 * Math.max(1, range)) < 1e-15);
  const raw = await hessian.density(op, { steps: 10, gridPoints: 0 });
  t.is(raw.grid.length, 0);
});

test('tridiagonal eigenvalues: the 1-2-1 matrix has 2 − 2cos(kπ/(n+1))', (t) => {
  const n = 50;
  const r = hessian.tridiagonalEigen(new Float64Array(n).fill(2), new Float64Array(n - 1).fill(-1), { vectors: true });
  for (let k = 1; k <= n; k++) t.true(Math.abs(r.values[k - 1]! - (2 - 2 * Math.cos((k * Math.PI) / (n + 1)))) < 1e-13);
  t.deepEqual(r.vectors!.shape, [n, n]);
  t.throws(() => hessian.tridiagonalEigen(new Float64Array(3), new Float64Array(3)), { instanceOf: NnscopeError });
  t.deepEqual([...hessian.tridiagonalEigen(new Float64Array(0), new Float64Array(0)).values], []);
});

test('Lanczos on a diagonal matrix returns its diagonal as Ritz values', async (t) => {
  const n = 6;
  const a = new Float64Array(n * n);
  const diag = [5, -1, 3, 3, 0.5, 2];
  diag.forEach((x, i) => (a[i * n + i] = x));
  const l = await hessian.lanczos(hessian.matrixOperator(new Tensor(a, [n, n])), { steps: 6 });
  t.is(l.alpha.length, 6);
  const ritz = hessian.tridiagonalEigen(l.alpha, l.beta).values;
  // The repeated 3 appears once per invariant subspace; every Ritz value is an eigenvalue.
  for (const x of ritz) t.true(diag.some((d) => Math.abs(d - x) < 1e-10), String(x));
  t.true(l.restarts >= 1);
});

test('a small MLP: Lanczos and Hutch++ agree with the dense Hessian (float64 and float32)', async (t) => {
  const data = models.datasets.sine({ n: 24, noise: 0.1, seed: 3 });
  const f = models.mlp({ widths: [1, 5, 4, 1], activation: 'tanh', loss: 'mse' }, data);
  const P = f.dim;
  const theta = f.init(1);
  const theta64 = Float64Array.from(theta);
  const H = new Float64Array(P * P);
  for (let j = 0; j < P; j++) {
    const e = new Float64Array(P);
    e[j] = 1;
    const col = await f.hvp64(theta64, e);
    for (let i = 0; i < P; i++) H[i * P + j] = col[i]!;
  }
  for (let i = 0; i < P; i++) for (let j = 0; j < i; j++) H[i * P + j] = H[j * P + i] = (H[i * P + j]! + H[j * P + i]!) / 2;
  const eig = jacobiEigenvalues(H, P);
  const tr = eig.reduce((x, y) => x + y, 0);
  const r64 = await hessian.eigenpairs(hessian.modelOperator(f, theta64), { k: 3 });
  for (let i = 0; i < 3; i++) t.true(Math.abs(r64.values[i]! - eig[i]!) <= 1e-8 * Math.abs(eig[0]!), `${r64.values[i]} vs ${eig[i]}`);
  const r32 = await hessian.eigenpairs(hessian.modelOperator(f, theta), { k: 3 });
  for (let i = 0; i < 3; i++) t.true(Math.abs(r32.values[i]! - eig[i]!) <= 1e-4 * Math.abs(eig[0]!), `${r32.values[i]} vs ${eig[i]}`);
  // Hutch++ with a sketch as large as the dimension is exact.
  const t64 = await hessian.trace(hessian.modelOperator(f, theta64), { method: 'hutch++', maxProducts: 3 * P + 3 });
  t.true(Math.abs(t64.estimate - tr) < 1e-8 * Math.abs(eig[0]!) * P, `${t64.estimate} vs ${tr}`);

  // The mini-batch Hessian is the Hessian of the subset objective.
  const batch = [0, 3, 5, 7, 11];
  const sub = await hessian.eigenpairs(hessian.modelOperator(f, theta64, { batch }), { k: 1 });
  const direct = await hessian.eigenpairs(hessian.modelOperator(f.subset(batch), theta64), { k: 1 });
  t.true(Math.abs(sub.values[0]! - direct.values[0]!) < 1e-12 * Math.abs(direct.values[0]!));
  const seeded = hessian.modelOperator(f, theta, { batch: { size: 8, seed: 2 } });
  t.is(seeded.dim, P);
  await expectCode(t, (async () => hessian.modelOperator(f, theta, { batch: [99] }))(), 'ERR_INVALID_ARGUMENT');
});

test('callback operators: sync and async products, errors with their codes, abort while waiting', async (t) => {
  const n = 40;
  const lambda = Array.from({ length: n }, (_, i) => i - 10);
  const apply = (v: Float32Array) => Float32Array.from(v, (x, i) => x * lambda[i]!);
  let calls = 0;
  const op = hessian.callbackOperator(n, (v) => {
    calls++;
    return apply(v);
  });
  const r = await hessian.eigenpairs(op, { k: 2 });
  t.true(Math.abs(r.values[0]! - 29) < 1e-4 && Math.abs(r.values[1]! - 28) < 1e-4);
  t.is(calls, r.products);
  t.is(op.products, r.products);
  const async = hessian.callbackOperator(n, async (v) => {
    await new Promise((res) => setImmediate(res));
    return Float64Array.from(apply(v));
  });
  const tr = await hessian.trace(async, { method: 'hutch++', maxProducts: 3 * n + 3 });
  t.true(Math.abs(tr.estimate - lambda.reduce((x, y) => x + y, 0)) < 1e-3);

  const boom = new Error('boom');
  const e = await t.throwsAsync(hessian.eigenpairs(hessian.callbackOperator(n, () => { throw boom; })), { instanceOf: NnscopeError });
  t.is(e?.code, 'ERR_CALLBACK');
  t.is(e?.cause, boom);
  await expectCode(t, hessian.trace(hessian.callbackOperator(n, async () => { throw new Error('late'); })), 'ERR_CALLBACK');
  await expectCode(t, hessian.trace(hessian.callbackOperator(n, () => new Float32Array(n - 1))), 'ERR_CALLBACK');
  await expectCode(t, hessian.trace(hessian.callbackOperator(n, () => [1, 2] as unknown as Float32Array)), 'ERR_CALLBACK');
  await expectCode(t, hessian.trace(hessian.callbackOperator(n, () => new Float32Array(n).fill(NaN))), 'ERR_NON_FINITE');

  const ac = new AbortController();
  const never = hessian.callbackOperator(n, () => new Promise<Float32Array>(() => {}));
  const pending = hessian.trace(never, { signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stop')), 50);
  await expectCode(t, pending, 'ERR_CANCELLED');
  await expectCode(t, hessian.eigenpairs(op, { device: 'cuda' }), 'ERR_INVALID_ARGUMENT');
});

test('bad operators and options fail with their codes', async (t) => {
  const bad = new Float64Array([1, 2, 3, 4]);
  await expectCode(t, hessian.eigenpairs(hessian.matrixOperator(new Tensor(bad, [2, 2]))), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, hessian.eigenpairs(hessian.matrixOperator(new Tensor(Float64Array.of(1, NaN, NaN, 1), [2, 2]))), 'ERR_NON_FINITE');
  t.throws(() => hessian.matrixOperator(new Tensor(new Float64Array(6), [2, 3])), { instanceOf: NnscopeError, message: /square/ });
  t.throws(() => hessian.matrixOperator({ data: new Int32Array(4), shape: [2, 2] } as never), { instanceOf: NnscopeError });
  const op = hessian.matrixOperator(new Tensor(Float64Array.of(2, 1, 1, 2), [2, 2]));
  await expectCode(t, hessian.eigenpairs(op, { device: 'cuda' }), 'ERR_DTYPE');
  await expectCode(t, hessian.eigenpairs(op, { k: 0 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, hessian.eigenpairs({} as never), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, hessian.density(op, { sigmaSquared: 0 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, hessian.trace(op, { method: 'exact' as never }), 'ERR_INVALID_ARGUMENT');
  const f32 = hessian.matrixOperator(new Tensor(Float32Array.of(2, 1, 1, 2), [2, 2]));
  const gpu = await hessian.eigenpairs(f32, { device: 'cuda' }).catch((e: NnscopeError) => e);
  if (gpu instanceof NnscopeError) t.is(gpu.code, 'ERR_DEVICE_UNAVAILABLE');
  else t.true(Math.abs(gpu.values[0]! - 3) < 1e-5);
  const k = await hessian.eigenpairs(op, { k: 7 });
  t.deepEqual([...k.values].map((x) => Math.round(x * 1e10) / 1e10), [3, 1]);
});

test('cancellation and progress on a long run', async (t) => {
  const n = 1500;
  const r = rng(5);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = r() - 0.5;
  const op = hessian.matrixOperator(new Tensor(a, [n, n]));
  const ac = new AbortController();
  let events = 0;
  const p = hessian.density(op, { steps: 1000, runs: 50, signal: ac.signal, onProgress: () => { events++; ac.abort(); } });
  await expectCode(t, p, 'ERR_CANCELLED');
  t.true(events >= 1);
  const seen: number[] = [];
  const d = await hessian.density(op, { steps: 30, onProgress: (e) => seen.push(e.done) });
  t.is(d.products, 30);
  t.true(seen.length >= 1 && seen.every((x, i) => i === 0 || x >= seen[i - 1]!));
});
