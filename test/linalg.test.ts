import test from 'ava';
import { type ErrorCode, NnscopeError, Tensor, devices, linalg, setNumThreads, numThreads } from '../lib/index.js';
import { native } from '../lib/native.js';
import { randomMatrix, refGemm, relFrobenius, rng } from './helpers.js';

const cudaAvailable = devices().cuda.available;
const DEVICES: ('cpu' | 'cuda')[] = cudaAvailable ? ['cpu', 'cuda'] : ['cpu'];

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 37, 1], [17, 1, 33], [2, 3, 4], [31, 33, 35], [64, 64, 64],
  [127, 129, 131], [300, 7, 250], [5, 400, 3], [257, 1, 257], [1, 500, 1000], [96, 1000, 40],
];

for (const device of DEVICES) {
  test(`matmul matches a float64 reference on odd shapes and every transpose (${device})`, async (t) => {
    let seed = 1;
    for (const [m, k, n] of SHAPES) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = randomMatrix(transA ? k : m, transA ? m : k, seed++);
          const b = randomMatrix(transB ? n : k, transB ? k : n, seed++);
          const c = await linalg.matmul(a, b, { transA, transB, device });
          t.deepEqual(c.shape, [m, n]);
          const ref = refGemm(a.data, b.data, m, n, k, { transA, transB });
          const err = relFrobenius(c.data, ref);
          t.true(err <= 1e-5 * Math.sqrt(k), `${m}×${k}×${n} tA=${transA} tB=${transB}: ${err}`);
        }
      }
    }
  });

  test(`matmul alpha, beta and zero-size shapes (${device})`, async (t) => {
    const a = randomMatrix(13, 9, 3);
    const b = randomMatrix(9, 11, 4);
    const c0 = randomMatrix(13, 11, 5);
    const got = await linalg.matmul(a, b, { alpha: -0.5, beta: 2, c: c0, device });
    const ref = refGemm(a.data, b.data, 13, 11, 9, { alpha: -0.5, beta: 2, c: c0.data });
    t.true(relFrobenius(got.data, ref) < 1e-5 * 3);
    t.not(got.data, c0.data, 'c is not modified in place');
    // k = 0: the product is empty, C = beta·C
    const e = await linalg.matmul(Tensor.zeros([4, 0]), Tensor.zeros([0, 3]), { beta: 3, c: Tensor.from([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]]), device });
    t.deepEqual(e.toArray(), [[3, 6, 9], [12, 15, 18], [21, 24, 27], [3, 3, 3]]);
    // m = 0 or n = 0: an empty result
    t.deepEqual((await linalg.matmul(Tensor.zeros([0, 5]), Tensor.zeros([5, 4]), { device })).shape, [0, 4]);
    t.deepEqual((await linalg.matmul(Tensor.zeros([3, 5]), Tensor.zeros([5, 0]), { device })).shape, [3, 0]);
  });

  test(`matvec, dot, norm and axpy match float64 references (${device})`, async (t) => {
    const r = rng(9);
    const a = randomMatrix(77, 53, 10);
    const x = new Tensor(Float32Array.from({ length: 53 }, () => r() - 0.5), [53]);
    const xt = new Tensor(Float32Array.from({ length: 77 }, () => r() - 0.5), [77]);
    const y = await linalg.matvec(a, x, { alpha: 2, device });
    const yt = await linalg.matvec(a, xt, { trans: true, device });
    t.true(relFrobenius(y.data, refGemm(a.data, x.data, 77, 1, 53, { alpha: 2 })) < 1e-5 * 8);
    t.true(relFrobenius(yt.data, refGemm(a.data, xt.data, 53, 1, 77, { transA: true })) < 1e-5 * 9);
    const u = new Tensor(Float32Array.from({ length: 100001 }, () => r() - 0.5), [100001]);
    const v = new Tensor(Float32Array.from({ length: 100001 }, () => r() - 0.5), [100001]);
    let d = 0;
    let nn = 0;
    for (let i = 0; i < u.size; i++) {
      d += u.data[i]! * v.data[i]!;
      nn += u.data[i]! ** 2;
    }
    t.true(Math.abs((await linalg.dot(u, v, { device })) - d) <= 1e-9 * Math.sqrt(nn) * 300);
    t.true(Math.abs((await linalg.norm(u, { device })) - Math.sqrt(nn)) <= 1e-12 * Math.sqrt(nn) * 10);
    // float64 accumulation: no overflow where a float32 sum of squares would overflow
    t.true(Math.abs((await linalg.norm(new Tensor(new Float32Array([3e30, 4e30]), [2]), { device })) / 5e30 - 1) < 1e-7);
    const z = await linalg.axpy(-2, u, v, { device });
    for (const i of [0, 1, 5000, 100000]) t.is(z.data[i], Math.fround(v.data[i]! + Math.fround(-2 * u.data[i]!)));
    t.is(await linalg.dot(Tensor.zeros([0]), Tensor.zeros([0]), { device }), 0);
  });
}

test('matmul is bit-identical for every thread count', async (t) => {
  const before = numThreads();
  const a = randomMatrix(300, 517, 21);
  const b = randomMatrix(517, 259, 22);
  setNumThreads(1);
  const one = await linalg.matmul(a, b, { device: 'cpu' });
  setNumThreads(3);
  const three = await linalg.matmul(a, b, { device: 'cpu' });
  setNumThreads(before);
  const all = await linalg.matmul(a, b, { device: 'cpu' });
  t.deepEqual(one.data, three.data);
  t.deepEqual(one.data, all.data);
});

test('matmul rejects bad input with stable codes', async (t) => {
  const a = randomMatrix(3, 4, 1);
  const b = randomMatrix(4, 5, 2);
  const code = async (p: Promise<unknown>, c: ErrorCode) => {
    const e = await t.throwsAsync(p, { instanceOf: NnscopeError });
    t.is(e?.code, c, e?.message);
  };
  await code(linalg.matmul(a, randomMatrix(3, 5, 3)), 'ERR_SHAPE');
  await code(linalg.matmul(a, b, { transA: true }), 'ERR_SHAPE');
  await code(linalg.matmul({ data: new Float64Array(12), shape: [3, 4] } as never, b), 'ERR_DTYPE');
  await code(linalg.matmul({ data: [1, 2, 3] as never, shape: [1, 3] }, b), 'ERR_DTYPE');
  await code(linalg.matmul({ data: new Float32Array(11), shape: [3, 4] }, b), 'ERR_SHAPE');
  await code(linalg.matmul({ data: new Float32Array(12), shape: [12] }, b), 'ERR_SHAPE');
  await code(linalg.matmul({ data: new Float32Array(12), shape: [3, -4] }, b), 'ERR_SHAPE');
  await code(linalg.matmul({ data: new Float32Array(12), shape: [3, 4.5] }, b), 'ERR_SHAPE');
  await code(linalg.matmul({ data: new Float32Array(1), shape: [2 ** 31, 2 ** 31] }, b), 'ERR_TOO_LARGE');
  await code(linalg.matmul(null as never, b), 'ERR_INVALID_ARGUMENT');
  await code(linalg.matmul(a, b, { alpha: NaN }), 'ERR_NON_FINITE');
  await code(linalg.matmul(a, b, { beta: 1 }), 'ERR_INVALID_ARGUMENT');
  await code(linalg.matmul(a, b, { beta: 1, c: randomMatrix(3, 4, 9) }), 'ERR_SHAPE');
  await code(linalg.matmul(a, b, { device: 'tpu' as never }), 'ERR_UNKNOWN_DEVICE');
  await code(linalg.matmul(a, b, { transA: 'yes' as never }), 'ERR_INVALID_ARGUMENT');
  await code(linalg.matmul(a, b, { signal: {} as never }), 'ERR_INVALID_ARGUMENT');
  // NaN and Infinity are refused by default, and propagate when allowed
  const bad = randomMatrix(3, 4, 1);
  bad.data[7] = NaN;
  await code(linalg.matmul(bad, b), 'ERR_NON_FINITE');
  const inf = randomMatrix(4, 5, 1);
  inf.data[19] = -Infinity;
  await code(linalg.matmul(a, inf), 'ERR_NON_FINITE');
  const let_through = await linalg.matmul(bad, b, { checkFinite: false, device: 'cpu' });
  t.true(Number.isNaN(let_through.data[5]));
  // a detached buffer
  const d = randomMatrix(3, 4, 1);
  structuredClone(d.data.buffer, { transfer: [d.data.buffer as ArrayBuffer] });
  await code(linalg.matmul(d, b), 'ERR_DETACHED');
});

test('the native layer refuses what would corrupt memory even without lib/ validation', async (t) => {
  const nat = native().linalg;
  const base = { m: 4, n: 4, k: 4, transA: false, transB: false, alpha: 1, beta: 0, checkFinite: true };
  const codeOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as NnscopeError).code;
    }
    return 'none';
  };
  t.is(codeOf(() => nat.matmul({ ...base, a: new Float32Array(15), b: new Float32Array(16), c: new Float32Array(16) })), 'ERR_SHAPE');
  t.is(codeOf(() => nat.matmul({ ...base, a: new Float64Array(16) as never, b: new Float32Array(16), c: new Float32Array(16) })), 'ERR_DTYPE');
  t.is(codeOf(() => nat.matmul({ ...base, m: -1, a: new Float32Array(16), b: new Float32Array(16), c: new Float32Array(16) })), 'ERR_INVALID_ARGUMENT');
  t.is(codeOf(() => nat.matmul({ ...base, m: 2 ** 40, n: 2 ** 40, k: 2 ** 40, a: new Float32Array(16), b: new Float32Array(16), c: new Float32Array(16) })), 'ERR_TOO_LARGE');
  t.is(codeOf(() => nat.matmul({ ...base, a: new Float32Array(16), b: new Float32Array(16), c: new Float32Array(16), cancel: {} as never })), 'ERR_INVALID_ARGUMENT');
  t.is(codeOf(() => nat.vector({ op: 'nope' as never, x: new Float32Array(3) })), 'ERR_INVALID_ARGUMENT');
});

test('device cuda without a GPU fails with ERR_DEVICE_UNAVAILABLE and the reason', async (t) => {
  const report = devices().cuda;
  if (report.available) {
    t.true(report.compiled);
    t.truthy(report.name);
    return;
  }
  t.false(report.available);
  t.true(report.reason.length > 0);
  const e = await t.throwsAsync(linalg.matmul(randomMatrix(2, 2, 1), randomMatrix(2, 2, 2), { device: 'cuda' }), { instanceOf: NnscopeError });
  t.is(e?.code, 'ERR_DEVICE_UNAVAILABLE');
  t.true(e!.message.includes(report.reason));
  // auto falls back to the CPU
  const c = await linalg.matmul(Tensor.from([[2]]), Tensor.from([[3]]), { device: 'auto' });
  t.is(c.data[0], 6);
});

test('a pre-aborted signal rejects at once with ERR_CANCELLED and the reason as cause', async (t) => {
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  const e = await t.throwsAsync(linalg.matmul(randomMatrix(8, 8, 1), randomMatrix(8, 8, 2), { signal: ac.signal }), { instanceOf: NnscopeError });
  t.is(e?.code, 'ERR_CANCELLED');
  t.is((e?.cause as Error).message, 'stop');
});

test('aborting a running matmul rejects with ERR_CANCELLED, never blocks the loop, and leaves the process healthy', async (t) => {
  const n = 3000;
  const a = randomMatrix(n, n, 5);
  const b = randomMatrix(n, n, 6);
  const ac = new AbortController();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = linalg.matmul(a, b, { signal: ac.signal, device: 'cpu' });
  setTimeout(() => ac.abort(), 20);
  const e = await t.throwsAsync(started, { instanceOf: NnscopeError });
  clearInterval(timer);
  t.is(e?.code, 'ERR_CANCELLED');
  t.true(ticks > 0, 'timers ran while the native work was in flight');
  const c = await linalg.matmul(Tensor.from([[1, 2]]), Tensor.from([[3], [4]]));
  t.is(c.data[0], 11);
});

test('progress reaches the end and is monotone', async (t) => {
  const seen: number[] = [];
  await linalg.matmul(randomMatrix(1500, 1500, 7), randomMatrix(1500, 1500, 8), {
    device: 'cpu',
    onProgress: (p) => seen.push(p.fraction),
  });
  t.true(seen.length >= 1);
  t.is(seen.at(-1), 1);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]! >= seen[i - 1]!);
});

test('many concurrent calls all complete correctly', async (t) => {
  const jobs = Array.from({ length: 12 }, (_, i) => {
    const a = randomMatrix(64 + i, 50, 100 + i);
    const b = randomMatrix(50, 40, 200 + i);
    return linalg.matmul(a, b).then((c) => relFrobenius(c.data, refGemm(a.data, b.data, 64 + i, 40, 50)));
  });
  for (const err of await Promise.all(jobs)) t.true(err < 1e-5 * 8);
});
