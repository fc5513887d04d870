import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Tensor, landscape, models } from '../lib/index.js';
import { expectCode, rng } from './helpers.js';

function randomVector(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function norm(x: ArrayLike<number>, lo = 0, hi = x.length): number {
  let s = 0;
  for (let i = lo; i < hi; i++) s += x[i]! ** 2;
  return Math.sqrt(s);
}

function dot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

const tinyMlp = () => models.mlp({ widths: [1, 6, 1], activation: 'tanh', loss: 'mse' }, models.datasets.sine({ n: 32, noise: 0.05, seed: 3 }));

const tmp = mkdtempSync(join(tmpdir(), 'nnscope-landscape-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

test('layer and filter normalisation: hand-computed example (norms per tensor / per row equal θ₀’s)', async (t) => {
  // 2→2→1: W0 [2,2] @0, b0 [2] @4, W1 [1,2] @6, b1 [1] @8
  const obj = models.mlp({ widths: [2, 2, 1], loss: 'mse' }, { inputs: new Tensor(new Float32Array(4), [2, 2]), targets: new Tensor(new Float32Array(2), [2, 1]) });
  t.deepEqual(obj.layout.map((e) => [e.offset, e.shape]), [[0, [2, 2]], [4, [2]], [6, [1, 2]], [8, [1]]]);
  const theta = Float32Array.from([3, 4, 0, 2, 1, -1, 6, 8, 5]);
  const d = new Tensor(Float32Array.from([1, 0, 1, 1, 2, 2, -3, 4, 7]), [1, 9]);
  const layer = (await landscape.normalize(theta, d, obj.layout, { normalization: 'layer' })).data;
  t.true(Math.abs(norm(layer, 0, 4) - Math.sqrt(29)) < 1e-5);
  t.true(Math.abs(layer[0]! - Math.sqrt(29 / 3)) < 1e-5 && layer[1] === 0);
  t.true(Math.abs(norm(layer, 4, 6) - Math.SQRT2) < 1e-6); // biases normalised by default in layer mode
  t.true(Math.abs(layer[6]! + 6) < 1e-5 && Math.abs(layer[7]! - 8) < 1e-5);
  t.true(Math.abs(layer[8]! - 5) < 1e-5);
  t.deepEqual(Array.from(d.data), [1, 0, 1, 1, 2, 2, -3, 4, 7], 'the input is not modified');

  const filter = (await landscape.normalize(theta, d, obj.layout, { normalization: 'filter' })).data;
  t.true(Math.abs(norm(filter, 0, 2) - 5) < 1e-5); // row (3, 4)
  t.true(Math.abs(norm(filter, 2, 4) - 2) < 1e-5); // row (0, 2)
  t.true(Math.abs(norm(filter, 6, 8) - 10) < 1e-5);
  t.true(Math.abs(filter[0]! - 5) < 1e-5 && filter[1] === 0);
  t.deepEqual([filter[4], filter[5], filter[8]], [0, 0, 0], 'biases zeroed by default in filter mode');
  const fb = (await landscape.normalize(theta, d, obj.layout, { normalization: 'filter', biases: 'normalize' })).data;
  t.true(Math.abs(norm(fb, 4, 6) - Math.SQRT2) < 1e-6 && Math.abs(fb[8]! - 5) < 1e-5);

  // the same through directions() on a given direction, with a second random row
  const two = new Tensor(Float32Array.from([...d.data, ...randomVector(9, 4)]), [2, 9]);
  const r = await landscape.directions(obj, theta, { kind: 'given', directions: two }, { normalization: 'filter' });
  for (let j = 0; j < 2; j++) {
    const o = 9 * j;
    t.true(Math.abs(norm(r.directions.data, o, o + 2) - 5) < 1e-5);
    t.true(Math.abs(norm(r.directions.data, o + 2, o + 4) - 2) < 1e-5);
    t.is(r.directions.data[o + 4], 0);
  }
});

test('orthonormalisation: Gram = I to 1e-12 (float64), and scaled to ‖θ₀‖ after normalisation', async (t) => {
  const k = 3;
  const P = 400;
  const base = randomVector(P, 9);
  const d64 = new Float64Array(k * P);
  for (let j = 0; j < k; j++) {
    const noise = randomVector(P, 20 + j);
    for (let p = 0; p < P; p++) d64[j * P + p] = base[p]! + 1e-3 * noise[p]!; // nearly parallel rows
  }
  const q = await landscape.orthonormalize(new Tensor(d64, [k, P]));
  t.true(q.data instanceof Float64Array);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) t.true(Math.abs(dot(q.data, i * P, q.data, j * P, P) - (i === j ? 1 : 0)) <= 1e-12);
  await expectCode(t, landscape.orthonormalize(new Tensor(Float64Array.from([1, 2, 3, 2, 4, 6]), [2, 3])), 'ERR_INVALID_ARGUMENT');

  const obj = tinyMlp();
  const theta = obj.init(1);
  const r = await landscape.directions(obj, theta, { kind: 'random', k: 2, seed: 5 }, { normalization: 'layer', orthonormalize: true });
  const s2 = norm(theta) ** 2;
  const D = r.directions.data;
  t.true(Math.abs(dot(D, 0, D, 0, obj.dim) / s2 - 1) < 1e-5);
  t.true(Math.abs(dot(D, obj.dim, D, obj.dim, obj.dim) / s2 - 1) < 1e-5);
  t.true(Math.abs(dot(D, 0, D, obj.dim, obj.dim) / s2) < 1e-6);
  t.true(r.orthonormalized);
});

test('random directions are deterministic per seed', async (t) => {
  const a = await landscape.randomDirections(3, 1000, 42);
  const b = await landscape.randomDirections(3, 1000, 42);
  const c = await landscape.randomDirections(3, 1000, 43);
  t.deepEqual(a.data, b.data);
  t.notDeepEqual(a.data, c.data);
  const one = await landscape.randomDirections(1, 1000, 42);
  t.deepEqual(one.data, a.data.subarray(0, 1000), 'row i depends only on (seed, i)');
  const obj = tinyMlp();
  const theta = obj.init(0);
  const r1 = await landscape.directions(obj, theta, { kind: 'random', k: 2, seed: 7 }, { normalization: 'none' });
  const r2 = await landscape.directions(obj, theta, { kind: 'random', k: 2, seed: 7 }, { normalization: 'none' });
  t.deepEqual(r1.directions.data, r2.directions.data);
  t.deepEqual(r1.directions.data, (await landscape.randomDirections(2, obj.dim, 7)).data);
});

test('a grid equals the pointwise loss at θ₀ + Σ a_i d_i, in row-major order, and its centre is L(θ₀)', async (t) => {
  const obj = tinyMlp();
  const theta = obj.init(2);
  const dirs = await landscape.directions(obj, theta, { kind: 'random', k: 2, seed: 3 }, { normalization: 'layer' });
  const steps = 5;
  const ls = await landscape.sample(obj, theta, dirs, { steps, distance: 0.5 });
  t.deepEqual(ls.dims, [5, 5]);
  t.is(ls.points, 25);
  t.deepEqual(Array.from(ls.axis!), [-0.5, -0.25, 0, 0.25, 0.5]);
  const D = ls.directions.data;
  const P = obj.dim;
  for (let i0 = 0; i0 < steps; i0++) {
    for (let i1 = 0; i1 < steps; i1++) {
      const n = i0 * steps + i1;
      const a = [ls.coordinates.data[2 * n]!, ls.coordinates.data[2 * n + 1]!];
      t.is(a[0], Math.fround(ls.axis![i0]!));
      t.is(a[1], Math.fround(ls.axis![i1]!));
      const point = new Float32Array(P);
      for (let p = 0; p < P; p++) point[p] = Math.fround(Math.fround(theta[p]! + Math.fround(a[0]! * D[p]!)) + Math.fround(a[1]! * D[P + p]!));
      const one = await obj.loss(point);
      t.true(Math.abs(ls.losses[n]! - one) <= 1e-5 * Math.abs(one) + 1e-7, `(${i0}, ${i1}): ${ls.losses[n]} vs ${one}`);
    }
  }
  const l0 = await obj.loss(theta);
  t.true(Math.abs(ls.losses[12]! - l0) <= 1e-6 * Math.abs(l0), `centre ${ls.losses[12]} vs ${l0}`);
  t.is(ls.provenance.method, 'random');
  t.is(ls.provenance.seed, 3);
  t.is(ls.provenance.steps, 5);
  t.is(ls.provenance.distance, 0.5);
  t.is(ls.normalization, 'layer');
  t.true(ls.provenance.model.startsWith('mlp widths=1-6-1'));

  // progress runs across chunks to the total; chunking does not change the values
  const seen: number[] = [];
  const chunked = await landscape.sample(obj, theta, dirs, { steps, distance: 0.5, chunkSize: 4, onProgress: (p) => seen.push(p.done) });
  t.deepEqual(chunked.losses, ls.losses);
  t.is(seen[seen.length - 1], 25);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]! >= seen[i - 1]!);
});

test('Landscaper spacing and scattered samples', async (t) => {
  const obj = tinyMlp();
  const theta = obj.init(4);
  const dirs = await landscape.directions(obj, theta, { kind: 'random', k: 3, seed: 1 });
  const g = await landscape.sample(obj, theta, dirs, { steps: 41, distance: 0.01, spacing: 'landscaper', sampling: 'grid' });
  t.is(g.points, 41 ** 3);
  t.true(Math.abs(g.axis![0]! + (20 * 0.02) / 41) < 1e-17 && g.axis![20] === 0);
  for (const method of ['uniform', 'lhs'] as const) {
    const a = await landscape.sample(obj, theta, dirs, { sampling: method, samples: 50, seed: 8, distance: 0.1 });
    const b = await landscape.sample(obj, theta, dirs, { sampling: method, samples: 50, seed: 8, distance: 0.1 });
    t.is(a.dims, null);
    t.deepEqual(a.coordinates.data, b.coordinates.data);
    t.deepEqual(a.losses, b.losses);
    t.true(a.coordinates.data.every((x) => Math.abs(x) <= Math.fround(0.1)));
    const point = theta.slice();
    const D = a.directions.data;
    for (let j = 0; j < 3; j++) for (let p = 0; p < obj.dim; p++) point[p] = Math.fround(point[p]! + Math.fround(a.coordinates.data[j]! * D[j * obj.dim + p]!));
    const one = await obj.loss(point);
    t.true(Math.abs(a.losses[0]! - one) <= 1e-5 * Math.abs(one));
  }
  const lhs = await landscape.sample(obj, theta, dirs, { sampling: 'lhs', samples: 20, seed: 2, distance: 1 });
  for (let j = 0; j < 3; j++) {
    const strata = Array.from({ length: 20 }, (_, i) => Math.min(19, Math.floor(((lhs.coordinates.data[i * 3 + j]! + 1) / 2) * 20))).sort((x, y) => x - y);
    t.deepEqual(strata, Array.from({ length: 20 }, (_, i) => i));
  }
});

test('Hessian directions are unit eigenvectors before normalisation', async (t) => {
  const obj = tinyMlp();
  const theta = (await obj.train(obj.init(0), { maxSteps: 200 })).theta;
  const r = await landscape.directions(obj, theta, { kind: 'hessian', k: 2, seed: 1 }, { normalization: 'none' });
  t.is(r.method, 'hessian');
  t.is(r.eigenvalues!.length, 2);
  t.true(Math.abs(r.eigenvalues![0]!) >= Math.abs(r.eigenvalues![1]!));
  for (let j = 0; j < 2; j++) {
    const v = r.directions.data.slice(j * obj.dim, (j + 1) * obj.dim);
    t.true(Math.abs(norm(v) - 1) < 1e-5);
    const hv = await obj.hvp(theta, v);
    let res = 0;
    for (let p = 0; p < obj.dim; p++) res += (hv[p]! - r.eigenvalues![j]! * v[p]!) ** 2;
    t.true(Math.sqrt(res) <= 1e-3 * Math.abs(r.eigenvalues![0]!), `residual ${Math.sqrt(res)} for λ=${r.eigenvalues![j]}`);
  }
  const normed = await landscape.directions(obj, theta, { kind: 'hessian', k: 2, seed: 1 }, { normalization: 'layer' });
  for (const e of obj.layout) {
    const len = e.shape.reduce((a, b) => a * b, 1);
    t.true(Math.abs(norm(normed.directions.data, e.offset, e.offset + len) - norm(theta, e.offset, e.offset + len)) < 1e-4 * (1 + norm(theta, e.offset, e.offset + len)));
  }
  const ls = await landscape.compute(obj, theta, { kind: 'hessian', k: 2, seed: 1 }, { steps: 3 });
  t.deepEqual(ls.eigenvalues, normed.eigenvalues);
  t.is(ls.provenance.method, 'hessian');
});

test('save / load round trip is exact; corrupt files are ERR_FORMAT', async (t) => {
  const obj = tinyMlp();
  const theta = obj.init(6);
  const ls = await landscape.compute(obj, theta, { kind: 'hessian', k: 2, seed: 2 }, { steps: 7, distance: 0.05, normalization: 'filter' });
  const path = join(tmp, 'a.safetensors');
  await ls.save(path);
  const back = await landscape.Landscape.load(path);
  t.deepEqual(back.dims, ls.dims);
  t.deepEqual(back.axis, ls.axis);
  t.deepEqual(back.losses, ls.losses);
  t.deepEqual(back.coordinates.data, ls.coordinates.data);
  t.deepEqual(back.coordinates.shape, ls.coordinates.shape);
  t.deepEqual(back.directions.data, ls.directions.data);
  t.deepEqual(back.theta0, ls.theta0);
  t.deepEqual(back.eigenvalues, ls.eigenvalues);
  t.deepEqual(back.provenance, ls.provenance);
  t.is(back.normalization, 'filter');
  t.is(back.biases, 'zero');
  t.is(back.orthonormalized, false);

  const scattered = await landscape.sample(obj, theta, ls.directions, { sampling: 'lhs', samples: 9, seed: 3 });
  const p2 = join(tmp, 'b.safetensors');
  await scattered.save(p2);
  const b2 = await landscape.Landscape.load(p2);
  t.is(b2.dims, null);
  t.is(b2.axis, null);
  t.deepEqual(b2.losses, scattered.losses);
  t.deepEqual(b2.provenance, scattered.provenance);

  const garbage = join(tmp, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.from('this is not a safetensors file at all'));
  await expectCode(t, landscape.Landscape.load(garbage), 'ERR_FORMAT');
  const truncated = join(tmp, 'truncated.safetensors');
  const bytes = readFileSync(path);
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
  await expectCode(t, landscape.Landscape.load(truncated), 'ERR_FORMAT');
  const params = join(tmp, 'params.safetensors');
  await obj.save(params, theta);
  await expectCode(t, landscape.Landscape.load(params), 'ERR_FORMAT');
});

test('bad inputs get stable codes', async (t) => {
  const obj = tinyMlp();
  const theta = obj.init(0);
  const P = obj.dim;
  const dirs = (k: number) => new Tensor(randomVector(k * P, k), [k, P]);
  await expectCode(t, landscape.sample(obj, theta, dirs(0), {}), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta, dirs(5), { steps: 3 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta, dirs(2), { steps: 1 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta, dirs(2), { distance: Number.NaN }), 'ERR_NON_FINITE');
  await expectCode(t, landscape.sample(obj, theta, dirs(2), { distance: -1 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta, new Tensor(new Float32Array(2 * (P + 1)), [2, P + 1])), 'ERR_SHAPE');
  await expectCode(t, landscape.sample(obj, theta, dirs(4), { steps: 101 }), 'ERR_TOO_LARGE');
  await expectCode(t, landscape.sample(obj, theta, dirs(2), { sampling: 'uniform' }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta.subarray(1), dirs(2)), 'ERR_SHAPE');
  await expectCode(t, landscape.directions(obj, theta, { kind: 'given', directions: new Tensor(new Float32Array(P - 1), [1, P - 1]) }), 'ERR_SHAPE');
  const nan = dirs(1);
  nan.data[3] = Number.NaN;
  await expectCode(t, landscape.directions(obj, theta, { kind: 'given', directions: nan }), 'ERR_NON_FINITE');
  await expectCode(t, landscape.directions(obj, theta, { kind: 'random', k: 2 }, { normalization: 'rows' as never }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, landscape.sample(obj, theta, dirs(2), { device: 'tpu' as never }), 'ERR_UNKNOWN_DEVICE');
});

test('cancellation via AbortSignal', async (t) => {
  const obj = models.pinn({ beta: 1, nCollocation: 100 });
  const theta = obj.init(0);
  const dirs = await landscape.directions(obj, theta, { kind: 'random', k: 3, seed: 0 });
  const pre = new AbortController();
  pre.abort();
  await expectCode(t, landscape.sample(obj, theta, dirs, { signal: pre.signal }), 'ERR_CANCELLED');
  const ac = new AbortController();
  let last = 0;
  const p = landscape.sample(obj, theta, dirs, { chunkSize: 1024, signal: ac.signal, onProgress: (e) => { last = e.done; ac.abort(); } });
  await expectCode(t, p, 'ERR_CANCELLED');
  t.true(last < 41 ** 3, 'stopped before the end');
});
