import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NnscopeError, Tensor, attention } from '../lib/index.js';
import { expectCode, gaussian, rng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nnscope-attn-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function randn(shape: number[], seed: number, scale = 1): Tensor<Float32Array> {
  const r = rng(seed);
  const t = Tensor.zeros(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = gaussian(r) * scale;
  return t;
}

/** IEEE half → number. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float64 reference: out [Hq, Nq, d] and lse [Hq, Nq]; keys visible to query i: j ≤ offset + i when causal. */
function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, hq: number, hkv: number, nq: number, n: number, d: number, o: { causal?: boolean; offset?: number; keys?: (h: number) => number[] } = {}) {
  const out = new Float64Array(hq * nq * d);
  const lse = new Float64Array(hq * nq);
  const scale = 1 / Math.sqrt(d);
  for (let h = 0; h < hq; h++) {
    const g = Math.floor(h / (hq / hkv));
    const allowed = o.keys ? o.keys(h) : Array.from({ length: n }, (_, j) => j);
    for (let i = 0; i < nq; i++) {
      const js = o.causal ? allowed.filter((j) => j <= (o.offset ?? 0) + i) : allowed;
      if (js.length === 0) {
        lse[h * nq + i] = -Infinity;
        continue;
      }
      const logits = js.map((j) => {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(h * nq + i) * d + c]! * k[(g * n + j) * d + c]!;
        return s * scale;
      });
      const m = Math.max(...logits);
      const w = logits.map((x) => Math.exp(x - m));
      const z = w.reduce((a, b) => a + b, 0);
      lse[h * nq + i] = m + Math.log(z);
      js.forEach((j, t) => {
        for (let c = 0; c < d; c++) out[(h * nq + i) * d + c]! += (w[t]! / z) * v[(g * n + j) * d + c]!;
      });
    }
  }
  return { out, lse };
}

function relErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

test('dense attention matches a float64 reference: MHA, GQA, causal with offsets, d = 1..96', async (t) => {
  for (const [hq, hkv, nq, n, d, causal, offset] of [
    [2, 2, 5, 37, 16, false, 0], [4, 2, 3, 70, 1, true, 60], [6, 2, 9, 9, 96, true, 0], [3, 1, 1, 129, 8, false, 0], [2, 1, 4, 3, 5, true, 0],
  ] as const) {
    const q = randn([hq, nq, d], 1);
    const k = randn([hkv, n, d], 2);
    const v = randn([hkv, n, d], 3);
    const r = await attention.dense(q, k, v, { causal, queryOffset: offset });
    const ref = refAttention(q.data, k.data, v.data, hq, hkv, nq, n, d, { causal, offset });
    t.true(relErr(r.out.data, ref.out) < 1e-5, `out ${hq}/${hkv} ${nq}×${n}×${d}`);
    for (let i = 0; i < ref.lse.length; i++) {
      if (ref.lse[i] === -Infinity) t.is(r.lse.data[i], -Infinity);
      else t.true(Math.abs(r.lse.data[i]! - ref.lse[i]!) < 1e-5 * Math.max(1, Math.abs(ref.lse[i]!)));
    }
  }
});

test('16-bit keys and values: float16 and bfloat16 patterns give the reference on their decoded values', async (t) => {
  const hq = 2, hkv = 1, nq = 3, n = 50, d = 24;
  const r = rng(9);
  const bits = (len: number, half: boolean) => Uint16Array.from({ length: len }, () => {
    const sign = r() < 0.5 ? 0x8000 : 0;
    return half ? sign | ((13 + Math.floor(r() * 4)) << 10) | Math.floor(r() * 1024) : sign | ((125 + Math.floor(r() * 4)) << 7) | Math.floor(r() * 128);
  });
  const q = randn([hq, nq, d], 4);
  for (const storage of ['float16', 'bfloat16'] as const) {
    const half = storage === 'float16';
    const k = bits(hkv * n * d, half);
    const v = bits(hkv * n * d, half);
    const dec = (x: Uint16Array) => Float64Array.from(x, (b) => (half ? halfToFloat(b) : new Float32Array(new Uint32Array([b << 16]).buffer)[0]!));
    const res = await attention.dense(q, { data: k, shape: [hkv, n, d] }, { data: v, shape: [hkv, n, d] }, { storage });
    const ref = refAttention(q.data, dec(k), dec(v), hq, hkv, nq, n, d);
    t.true(relErr(res.out.data, ref.out) < 1e-5, storage);
  }
  await expectCode(t, attention.dense(q, { data: new Uint16Array(n * d), shape: [1, n, d] }, { data: new Uint16Array(n * d), shape: [1, n, d] }), 'ERR_DTYPE');
});

test('the LSE merge is exact: dense over all keys = merge of dense over any split, in either order; sparse over all = dense', async (t) => {
  const hq = 4, hkv = 2, nq = 6, n = 90, d = 32;
  const q = randn([hq, nq, d], 5);
  const k = randn([hkv, n, d], 6, 2);
  const v = randn([hkv, n, d], 7);
  const full = await attention.dense(q, k, v);
  const slice = (x: Tensor<Float32Array>, a: number, b: number) => {
    const out = Tensor.zeros([hkv, b - a, d]);
    for (let h = 0; h < hkv; h++) out.data.set(x.data.subarray((h * n + a) * d, (h * n + b) * d), h * (b - a) * d);
    return out;
  };
  for (const split of [1, 33, 89]) {
    const a = await attention.dense(q, slice(k, 0, split), slice(v, 0, split));
    const b = await attention.dense(q, slice(k, split, n), slice(v, split, n));
    for (const m of [attention.merge(a, b), attention.merge(b, a)]) {
      t.true(relErr(m.out.data, full.out.data) < 1e-6, `split ${split}`);
      t.true(relErr(m.lse.data, full.lse.data) < 1e-6);
    }
  }
  const all = Int32Array.from({ length: hkv * n }, (_, i) => i % n);
  const sp = await attention.sparse(q, k, v, { indices: all, offsets: [0, n, 2 * n] });
  t.true(relErr(sp.out.data, full.out.data) < 1e-6);
  const perHead = Int32Array.from({ length: hq * 3 }, (_, i) => [2, 40, 77][i % 3]!);
  const sh = await attention.sparse(q, k, v, { indices: perHead, offsets: [0, 3, 6, 9, 12], perQueryHead: true });
  const ref = refAttention(q.data, k.data, v.data, hq, hkv, nq, n, d, { keys: () => [2, 40, 77] });
  t.true(relErr(sh.out.data, ref.out) < 1e-5);
  await expectCode(t, attention.sparse(q, k, v, { indices: Int32Array.of(5, 3), offsets: [0, 2, 2] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, attention.sparse(q, k, v, { indices: Int32Array.of(n), offsets: [0, 1, 1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, attention.sparse(q, k, v, { indices: Int32Array.of(1), offsets: [0, 1] }), 'ERR_SHAPE');
});

test('large logits stay finite; bad shapes, NaN and dtypes fail with their codes', async (t) => {
  const q = randn([1, 2, 8], 1, 100);
  const k = randn([1, 20, 8], 2, 100);
  const v = randn([1, 20, 8], 3);
  const r = await attention.dense(q, k, v);
  t.true(r.out.data.every(Number.isFinite) && r.lse.data.every(Number.isFinite));
  await expectCode(t, attention.dense(randn([3, 2, 8], 1), randn([2, 5, 8], 2), randn([2, 5, 8], 3)), 'ERR_SHAPE');
  await expectCode(t, attention.dense(randn([2, 2, 8], 1), randn([2, 5, 4], 2), randn([2, 5, 4], 3)), 'ERR_SHAPE');
  const bad = randn([1, 20, 8], 2);
  bad.data[17] = NaN;
  await expectCode(t, attention.dense(q, bad, v), 'ERR_NON_FINITE');
  await expectCode(t, attention.dense(q, k, { data: new Float64Array(160), shape: [1, 20, 8] } as never), 'ERR_DTYPE');
  const empty = await attention.dense(randn([1, 2, 8], 1), randn([1, 0, 8], 2), randn([1, 0, 8], 3));
  t.deepEqual([...empty.lse.data], [-Infinity, -Infinity]);
  t.true(empty.out.data.every((x) => x === 0));
});

/** Keys with planted topics: anchors plus noise; queries near a few topics. */
function topics(h: number, n: number, d: number, nTopics: number, seed: number) {
  const r = rng(seed);
  const anchors = Array.from({ length: h * nTopics }, () => {
    const a = Float64Array.from({ length: d }, () => gaussian(r));
    const s = Math.hypot(...a);
    return a.map((x) => (x / s) * 8);
  });
  const keys = Tensor.zeros([h, n, d]);
  const topicOf: number[] = [];
  for (let hh = 0; hh < h; hh++) {
    for (let i = 0; i < n; i++) {
      const tp = Math.floor(r() * nTopics);
      topicOf.push(tp);
      for (let c = 0; c < d; c++) keys.data[(hh * n + i) * d + c] = anchors[hh * nTopics + tp]![c]! + 0.3 * gaussian(r);
    }
  }
  const values = randn([h, n, d], seed + 1);
  return { keys, values, anchors };
}

test('squeezed attention with every key kept equals dense attention over context + user tokens (prefill and decode, MHA and GQA)', async (t) => {
  const hkv = 2, n = 400, d = 16, nu = 5;
  const { keys, values } = topics(hkv, n, d, 8, 11);
  const ctx = await attention.squeeze(keys, values, { window: 20, seed: 1 });
  t.is(ctx.window, 20);
  t.is(ctx.clusters, Math.floor(0.05 * 380));
  for (const [hq, policy] of [[2, 'perQueryHead'], [4, 'shared'], [4, 'perQueryHead']] as const) {
    const q = randn([hq, nu, d], 12);
    const uk = randn([hkv, nu, d], 13);
    const uv = randn([hkv, nu, d], 14);
    const r = await ctx.prefill(q, uk, uv, { select: { keepFraction: 1 }, policy });
    // Reference: dense over [fixed ; user], causal with the user block at offset n.
    const cat = (a: Tensor<Float32Array>, b: Tensor<Float32Array>) => {
      const out = Tensor.zeros([hkv, n + nu, d]);
      for (let h = 0; h < hkv; h++) {
        out.data.set(a.data.subarray(h * n * d, (h + 1) * n * d), h * (n + nu) * d);
        out.data.set(b.data.subarray(h * nu * d, (h + 1) * nu * d), (h * (n + nu) + n) * d);
      }
      return out;
    };
    const ref = await attention.dense(q, cat(keys, uk), cat(values, uv), { causal: true, queryOffset: n });
    t.true(relErr(r.out.data, ref.out.data) < 1e-5, `prefill ${hq} ${policy}`);
    t.true(r.report.keptFraction.every((f) => f === 1));

    const dec = ctx.decoder({ capacity: 2 });
    t.is(await dec.append(uk, uv), nu);
    const q1 = randn([hq, 1, d], 15);
    const k1 = randn([hkv, 1, d], 16);
    const v1 = randn([hkv, 1, d], 17);
    const s = await dec.step(q1, k1, v1, { select: { keepFraction: 1 }, policy });
    t.is(dec.tokens, nu + 1);
    const cat2 = (a: Tensor<Float32Array>, b: Tensor<Float32Array>, c: Tensor<Float32Array>) => {
      const out = Tensor.zeros([hkv, n + nu + 1, d]);
      for (let h = 0; h < hkv; h++) {
        out.data.set(a.data.subarray(h * n * d, (h + 1) * n * d), h * (n + nu + 1) * d);
        out.data.set(b.data.subarray(h * nu * d, (h + 1) * nu * d), (h * (n + nu + 1) + n) * d);
        out.data.set(c.data.subarray(h * d, (h + 1) * d), (h * (n + nu + 1) + n + nu) * d);
      }
      return out;
    };
    const ref1 = await attention.dense(q1, cat2(keys, uk, k1), cat2(values, uv, v1));
    t.true(relErr(s.out.data, ref1.out.data) < 1e-5, `decode ${hq} ${policy}`);
  }
});

test('planted topics at keep fraction 10%: ≥ 95% of the attention mass recovered and ≤ 5% output error, per head', async (t) => {
  const h = 2, n = 4096, d = 32;
  const { keys, values, anchors } = topics(h, n, d, 32, 21);
  const ctx = await attention.squeeze(keys, values, { seed: 2 });
  // Decode queries near 2 topics of each head.
  const q = Tensor.zeros([h, 1, d]);
  for (let hh = 0; hh < h; hh++) for (let c = 0; c < d; c++) q.data[hh * d + c] = 0.9 * (anchors[hh * 32 + 3]![c]! + anchors[hh * 32 + 17]![c]!);
  const dec = ctx.decoder();
  const r = await dec.step(q, undefined, undefined, { select: { keepFraction: 0.1 }, returnSelection: true });
  const dense = await attention.dense(q, keys, values);
  for (let hh = 0; hh < h; hh++) {
    const kept = new Set(r.report.indices!.subarray(r.report.offsets![hh]!, r.report.offsets![hh + 1]!));
    // attention mass on the kept keys
    const logits = Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += q.data[hh * d + c]! * keys.data[(hh * n + j) * d + c]!;
      return s / Math.sqrt(d);
    });
    const m = Math.max(...logits);
    let total = 0;
    let got = 0;
    logits.forEach((x, j) => {
      const w = Math.exp(x - m);
      total += w;
      if (kept.has(j)) got += w;
    });
    const o = r.out.data.subarray(hh * d, (hh + 1) * d);
    const ref = dense.out.data.subarray(hh * d, (hh + 1) * d);
    t.true(got / total >= 0.95, `head ${hh}: mass ${got / total}`);
    t.true(relErr(o, ref) <= 0.05, `head ${hh}: error ${relErr(o, ref)}`);
    t.true(r.report.keptFraction[hh]! < 0.15 && r.report.keptFraction[hh]! > 0.1);
    t.true(r.report.kvBudget[hh]! > r.report.keptFraction[hh]!);
  }
});

test('calibration with logits above 100 gives finite thresholds that select; save/load round-trips; corrupt files fail', async (t) => {
  const h = 2, n = 600, d = 16;
  const { keys, values } = topics(h, n, d, 6, 31);
  for (let i = 0; i < keys.data.length; i++) keys.data[i]! *= 30; // logits ≫ 100
  const ctx = await attention.squeeze(keys, values, { window: 50, hierarchical: true, seed: 3 });
  t.true(ctx.hierarchical && ctx.coarseClusters >= 1);
  const calib = randn([h, 50, d], 32, 3);
  const cal = await ctx.calibrate(calib, { quantiles: [0.3, 0.9] });
  t.true(cal.thresholds.every(Number.isFinite));
  t.deepEqual([...cal.quantiles], [0.3, 0.9]);
  const q = randn([h, 1, d], 33, 3);
  const sel = await ctx.select(q, { select: { quantile: 0.3 } });
  t.true(sel.keptKeys.every((k) => k >= 50));
  await expectCode(t, ctx.select(q, { select: { quantile: 0.5 } }), 'ERR_INVALID_ARGUMENT');

  const path = join(dir, 'ctx.safetensors');
  await ctx.save(path);
  const back = await attention.loadContext(path);
  t.deepEqual([back.heads, back.tokens, back.d, back.window, back.clusters, back.coarseClusters], [ctx.heads, ctx.tokens, ctx.d, ctx.window, ctx.clusters, ctx.coarseClusters]);
  t.deepEqual([...back.calibration.thresholds], [...cal.thresholds]);
  const a = await ctx.select(q, { select: { keepFraction: 0.2 } });
  const b = await back.select(q, { select: { keepFraction: 0.2 } });
  t.deepEqual([...a.indices], [...b.indices]);

  const bytes = readFileSync(path);
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
  await expectCode(t, attention.loadContext(cut), 'ERR_FORMAT');
  // Flip a label out of range: the context no longer validates.
  const hdrLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + hdrLen).toString()) as Record<string, { data_offsets: [number, number] }>;
  const bad = Buffer.from(bytes);
  bad.writeInt32LE(1 << 30, 8 + hdrLen + header['labels']!.data_offsets[0]);
  const badPath = join(dir, 'bad.safetensors');
  writeFileSync(badPath, bad);
  const e = await t.throwsAsync(attention.loadContext(badPath), { instanceOf: NnscopeError });
  t.true(['ERR_FORMAT', 'ERR_SHAPE', 'ERR_INVALID_ARGUMENT'].includes(e!.code), e?.code);
});

test('degenerate contexts: identical keys, fewer keys than centroids, d = 1; bad input codes', async (t) => {
  const same = Tensor.zeros([1, 64, 4]);
  same.data.fill(0.5);
  const c1 = await attention.squeeze(same, randn([1, 64, 4], 1), { window: 4, clusters: 10 });
  const r1 = await c1.decoder().step(randn([1, 1, 4], 2), undefined, undefined, { select: { keepFraction: 0.5 } });
  t.true(r1.out.data.every(Number.isFinite));
  const tiny = await attention.squeeze(randn([1, 3, 1], 3), randn([1, 3, 1], 4), { clusters: 50, window: 1 });
  t.true(tiny.clusters <= 2);
  await expectCode(t, attention.squeeze(randn([1, 3, 2], 3), randn([1, 4, 2], 4)), 'ERR_SHAPE');
  const nan = randn([1, 30, 2], 5);
  nan.data[7] = NaN;
  await expectCode(t, attention.squeeze(nan, randn([1, 30, 2], 6)), 'ERR_NON_FINITE');
  await expectCode(t, attention.squeeze(randn([1, 30, 2], 5), randn([1, 30, 2], 6), { centroidFraction: 0 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, tiny.prefill(randn([1, 2, 1], 1), randn([1, 3, 1], 1), randn([1, 3, 1], 1)), 'ERR_SHAPE');
});

test('kmeans: same seed, same result; raw-mean centroids; inertia non-increasing', async (t) => {
  const x = randn([300, 8], 41);
  const a = await attention.kmeans(x, { clusters: 12, seed: 5 });
  const b = await attention.kmeans(x, { clusters: 12, seed: 5 });
  t.deepEqual([...a.labels], [...b.labels]);
  t.deepEqual([...a.centroids.data], [...b.centroids.data]);
  t.is(a.sizes.reduce((s, v) => s + v, 0), 300);
  t.true(a.sizes.every((s) => s > 0));
  for (let i = 1; i < a.history.length; i++) t.true(a.history[i]! <= a.history[i - 1]! + 1e-9);
  // Centroid 0 is the mean of the raw rows labelled 0.
  const mean = new Float64Array(8);
  a.labels.forEach((l, i) => {
    if (l === 0) for (let c = 0; c < 8; c++) mean[c]! += x.data[i * 8 + c]! / a.sizes[0]!;
  });
  t.true(relErr(a.centroids.data.subarray(0, 8), mean) < 1e-5);
  await expectCode(t, attention.kmeans(x, { clusters: 0 }), 'ERR_INVALID_ARGUMENT');
});

test("devices: 'cuda' without a GPU fails with ERR_DEVICE_UNAVAILABLE and the reason; 'auto' equals 'cpu' bit for bit", async (t) => {
  const { devices } = await import('../lib/index.js');
  if (devices().cuda.available) {
    t.pass('a GPU answered: the CUDA routing is covered by native/tests/test_cuda_attention (gpu_public_api_matches_cpu)');
    return;
  }
  const hkv = 2, n = 300, d = 16;
  const { keys, values } = topics(hkv, n, d, 6, 31);
  const q = randn([hkv, 1, d], 32);
  const unavailable = async (p: Promise<unknown> | (() => unknown)) => {
    const e = typeof p === 'function' ? t.throws(p as () => unknown) : await t.throwsAsync(p);
    t.true(e instanceof NnscopeError);
    t.is((e as NnscopeError).code, 'ERR_DEVICE_UNAVAILABLE', e?.message);
    t.regex(e?.message ?? '', /not available: ./);
  };
  await unavailable(attention.dense(q, keys, values, { device: 'cuda' }));
  await unavailable(attention.sparse(q, keys, values, { indices: new Int32Array([0, 1, 2, 3]), offsets: [0, 2, 4] }, { device: 'cuda' }));
  await unavailable(attention.kmeans(randn([50, d], 33), { clusters: 3, device: 'cuda' }));
  await unavailable(attention.squeeze(keys, values, { window: 10, device: 'cuda' }));
  const ctx = await attention.squeeze(keys, values, { window: 10, seed: 2 });
  await unavailable(ctx.calibrate(randn([hkv, 4, d], 34), { device: 'cuda' }));
  await unavailable(ctx.select(q, { device: 'cuda' }));
  await unavailable(ctx.prefill(q, randn([hkv, 1, d], 35), randn([hkv, 1, d], 36), { device: 'cuda' }));
  await unavailable(() => ctx.decoder({ device: 'cuda' }));
  await t.throwsAsync(attention.dense(q, keys, values, { device: 'gpu' as never }), { message: /unknown device/ });

  const a = await attention.dense(q, keys, values, { device: 'auto' });
  const c = await attention.dense(q, keys, values, { device: 'cpu' });
  t.deepEqual(a.out.data, c.out.data);
  t.deepEqual(a.lse.data, c.lse.data);
  const ka = await attention.kmeans(randn([50, d], 33), { clusters: 3 });
  const kc = await attention.kmeans(randn([50, d], 33), { clusters: 3, device: 'cpu' });
  t.deepEqual(ka.centroids.data, kc.centroids.data);
  const da = ctx.decoder();
  const dc = ctx.decoder({ device: 'cpu' });
  t.is(da.device, 'cpu');
  const k1 = randn([hkv, 1, d], 37);
  const v1 = randn([hkv, 1, d], 38);
  const sa = await da.step(q, k1, v1, { select: { keepFraction: 0.2 }, returnSelection: true });
  const sc = await dc.step(q, k1, v1, { select: { keepFraction: 0.2 }, returnSelection: true, device: 'cpu' });
  t.deepEqual(sa.out.data, sc.out.data);
  t.deepEqual(sa.report.indices, sc.report.indices);
  // The decoder (cluster-sorted copy) attends exactly the keys select() picks, in original indices.
  const sel = await ctx.select(q, { select: { keepFraction: 0.2 } });
  t.deepEqual(sa.report.indices, sel.indices);
  t.deepEqual([...sa.report.offsets!], [...sel.offsets]);
});
