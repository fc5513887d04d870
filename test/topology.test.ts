import test from 'ava';
import { Tensor, plot, topology } from '../lib/index.js';
import { expectCode, rng } from './helpers.js';

type Nb = 'axis' | 'freudenthal' | 'full';

/** Neighbours of vertex v on a grid (row-major, last axis fastest), by brute force over {−1,0,1}^k. */
function gridNeighbors(dims: number[], nb: Nb): number[][] {
  const n = dims.reduce((a, b) => a * b, 1);
  const k = dims.length;
  const out: number[][] = [];
  for (let v = 0; v < n; v++) {
    const c: number[] = [];
    let r = v;
    for (let i = k - 1; i >= 0; i--) {
      c[i] = r % dims[i]!;
      r = Math.floor(r / dims[i]!);
    }
    const list: number[] = [];
    for (let code = 0; code < 3 ** k; code++) {
      const e: number[] = [];
      let x = code;
      for (let i = 0; i < k; i++) {
        e.push((x % 3) - 1);
        x = Math.floor(x / 3);
      }
      const nz = e.filter((z) => z !== 0).length;
      if (nz === 0) continue;
      if (nb === 'axis' && nz !== 1) continue;
      if (nb === 'freudenthal' && e.some((z) => z > 0) && e.some((z) => z < 0)) continue;
      let u = 0;
      let ok = true;
      for (let i = 0; i < k; i++) {
        const ci = c[i]! + e[i]!;
        if (ci < 0 || ci >= dims[i]!) ok = false;
        u = u * dims[i]! + ci;
      }
      if (ok) list.push(u);
    }
    out.push(list);
  }
  return out;
}

/**
 * Brute-force 0-dim sublevel persistence: after each vertex (in (value, index)
 * order) recompute the components of the sublevel set by BFS; a component is
 * named by its earliest vertex; when components merge the earliest survives.
 * Returns non-zero pairs as "birth:death" strings, sorted, and the essential births.
 */
function bruteForce(values: ArrayLike<number>, adj: number[][]): { pairs: string[]; essential: number[] } {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]! || a - b);
  const rank = new Int32Array(n);
  order.forEach((v, i) => (rank[v] = i));
  const added = new Uint8Array(n);
  let prev = new Map<number, number>(); // vertex → name of its component
  const pairs: string[] = [];
  for (const v of order) {
    added[v] = 1;
    const name = new Map<number, number>();
    for (const s of order) {
      if (!added[s] || name.has(s)) continue;
      const stack = [s];
      name.set(s, s); // s is the earliest unvisited vertex in order: the component's earliest
      while (stack.length) {
        const x = stack.pop()!;
        for (const y of adj[x]!) if (added[y] && !name.has(y)) { name.set(y, s); stack.push(y); }
      }
    }
    const before = new Set<number>();
    for (const u of adj[v]!) if (added[u] && prev.has(u)) before.add(prev.get(u)!);
    const survivor = name.get(v)!;
    for (const b of before) {
      if (b !== survivor && values[b]! !== values[v]!) pairs.push(`${b}:${v}`);
    }
    prev = name;
  }
  const essential = [...new Set(prev.values())].sort((a, b) => a - b);
  return { pairs: pairs.sort(), essential };
}

function pairStrings(p: topology.Pairs, dropZero = true): string[] {
  const out: string[] = [];
  for (let i = 0; i < p.birth.length; i++) {
    if (dropZero && p.birthValue[i] === p.deathValue[i]) continue;
    out.push(`${p.birth[i]}:${p.death[i]}`);
  }
  return out.sort();
}

test('merge-tree pairs equal brute-force sublevel components on random grids with ties (all neighbourhoods)', async (t) => {
  const shapes = [[12], [5, 6], [4, 3, 4], [3, 3, 2, 3]];
  let cases = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const r = rng(seed);
    const dims = shapes[seed % shapes.length]!;
    const n = dims.reduce((a, b) => a * b, 1);
    // integer values from a tiny range: plateaus and ties everywhere
    const values = Float64Array.from({ length: n }, () => Math.floor(r() * 4));
    for (const nb of ['axis', 'freudenthal', 'full'] as const) {
      const adj = gridNeighbors(dims, nb);
      const ref = bruteForce(values, adj);
      const tree = await topology.mergeTree(values, { grid: dims, neighborhood: nb });
      t.deepEqual(pairStrings(tree.pairs), ref.pairs, `dims ${dims} ${nb} seed ${seed}`);
      t.deepEqual(tree.essential.map((e) => e.birth).sort((a, b) => a - b), ref.essential);
      // basin path: the same non-zero pairs
      const basins = await topology.persistence(values, { grid: dims, neighborhood: nb });
      t.deepEqual(pairStrings(basins), ref.pairs, `basins ${dims} ${nb} seed ${seed}`);
      // with zero-persistence pairs kept, the two paths agree pair for pair
      const withZero = await topology.mergeTree(values, { grid: dims, neighborhood: nb }, { keepZeroPersistence: true });
      t.deepEqual(pairStrings(withZero.pairs, false), pairStrings(basins, false));
      cases++;
    }
  }
  t.is(cases, 90);
});

test('merge tree on a CSR graph equals brute force; split tree is the join tree of −f', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(100 + seed);
    const n = 25;
    const adj: number[][] = Array.from({ length: n }, () => []);
    for (let e = 0; e < 40; e++) {
      const a = Math.floor(r() * n);
      const b = Math.floor(r() * n);
      if (a !== b && !adj[a]!.includes(b)) { adj[a]!.push(b); adj[b]!.push(a); }
    }
    const offsets = new Int32Array(n + 1);
    adj.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l.length));
    const adjacency = Int32Array.from(adj.flat());
    const values = Float64Array.from({ length: n }, () => Math.floor(r() * 5));
    const tree = await topology.mergeTree(values, { offsets, adjacency });
    const ref = bruteForce(values, adj);
    t.deepEqual(pairStrings(tree.pairs), ref.pairs);
    t.is(tree.essential.length, ref.essential.length);
    // split tree: persistence values mirror the join tree of −f (distinct values, so orders agree)
    const distinct = Float64Array.from({ length: n }, () => r());
    const split = await topology.mergeTree(distinct, { offsets, adjacency }, { kind: 'split' });
    const join = await topology.mergeTree(distinct.map((v) => -v), { offsets, adjacency });
    t.deepEqual(pairStrings(split.pairs), pairStrings(join.pairs));
    t.deepEqual(split.diagram().birth, join.diagram().birth);
  }
});

test('quadratic bowl: one minimum, no saddle, essential persistence max − min; plateau adds no minimum', async (t) => {
  const s = 21;
  const bowl = new Float64Array(s * s);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) bowl[i * s + j] = (i - 10) ** 2 + 0.5 * (j - 10) ** 2;
  const tree = await topology.mergeTree(bowl, { grid: [s, s] });
  const m = tree.metrics();
  t.is(m.minima, 1);
  t.is(m.saddles, 0);
  t.is(tree.essential[0]!.birth, 10 * s + 10);
  t.is(m.essentialPersistence, tree.maxValue - tree.minValue);
  t.is(m.persistence.count, 0);
  // a flat-bottomed bowl (plateau of equal minima) still has exactly one minimum
  const flat = bowl.map((v) => Math.max(v, 9));
  const ft = await topology.mergeTree(flat, { grid: [s, s], neighborhood: 'axis' });
  t.is(ft.metrics().minima, 1);
  // a constant field: one minimum
  t.is((await topology.mergeTree(new Float64Array(50).fill(3), { grid: [5, 10] })).metrics().minima, 1);
});

test('m separated Gaussian wells: exactly m minima and m − 1 saddles; simplification and metrics', async (t) => {
  const s = 64;
  const centres = [[10, 12, 1.0], [50, 14, 0.8], [30, 40, 0.6], [12, 52, 0.9], [52, 52, 0.3]] as const;
  const f = new Float64Array(s * s);
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < s; j++) {
      let v = 1;
      for (const [ci, cj, depth] of centres) v -= depth * Math.exp(-((i - ci) ** 2 + (j - cj) ** 2) / 30);
      f[i * s + j] = v;
    }
  }
  const tree = await topology.mergeTree(f, { grid: [s, s] });
  const m = tree.metrics();
  t.is(m.minima, 5);
  t.is(m.saddles, 4);
  t.is(m.persistence.count, 4);
  t.is(m.basinVolumes.reduce((a, b) => a + b, 0), s * s);
  // the deepest well is the essential class
  t.is(tree.essential[0]!.birth, 10 * s + 12);
  // entropy of the finite lifetimes
  const p = [...tree.pairs.persistence];
  const P = p.reduce((a, b) => a + b, 0);
  t.true(Math.abs(m.entropy - -p.reduce((a, x) => a + (x / P) * Math.log(x / P), 0)) < 1e-12);
  t.true(Math.abs(m.persistence.maximum - Math.max(...p)) < 1e-15);
  // simplification by the median persistence removes exactly the pairs below it
  const sorted = [...p].sort((a, b) => a - b);
  const eps = (sorted[1]! + sorted[2]!) / 2;
  const simple = await tree.simplify({ epsilon: eps });
  t.is(simple.pairs.birth.length, p.filter((x) => x >= eps).length);
  t.is(simple.metrics().minima, 1 + p.filter((x) => x >= eps).length);
  const rel = await tree.simplify({ epsilon: eps / (tree.maxValue - tree.minValue), relative: true });
  t.deepEqual(rel.pairs.birth, simple.pairs.birth);
  // every vertex of the simplified segmentation belongs to a surviving branch
  t.true(simple.segmentation.every((b) => b >= 0 && b < simple.branches.extremum.length));
});

test('profile: root width equals the sample count, widths never decrease, children never overlap', async (t) => {
  const r = rng(7);
  const s = 30;
  const f = Float64Array.from({ length: s * s }, (_, i) => Math.sin((i % s) / 3) + Math.cos(Math.floor(i / s) / 4) + 0.3 * r());
  const tree = await topology.mergeTree(f, { grid: [s, s] });
  const prof = await tree.profile({ levels: 32, halfWidth: 0.5 });
  t.is(prof.basins.length, tree.branches.extremum.length);
  const roots = prof.basins.filter((b) => b.parent === -1);
  t.is(roots.length, 1);
  t.is(roots[0]!.samples, s * s);
  t.is(prof.width, s * s);
  t.is(roots[0]!.halfWidth.at(-1)! * 2, s * s);
  for (const b of prof.basins) {
    for (let i = 1; i < b.halfWidth.length; i++) t.true(b.halfWidth[i]! >= b.halfWidth[i - 1]!);
    for (let i = 1; i < b.levels.length; i++) t.true(b.levels[i]! >= b.levels[i - 1]!);
    // brute-force count at the top level
    t.is(b.polygon.x.length, b.polygon.y.length);
  }
  // siblings' slots are disjoint and inside their parent's slot
  const byParent = new Map<number, topology.ProfileBasin[]>();
  for (const b of prof.basins) if (b.parent >= 0) byParent.set(b.parent, [...(byParent.get(b.parent) ?? []), b]);
  for (const [pid, kids] of byParent) {
    const parent = prof.basins[pid]!;
    const slots = kids.map((k) => [k.center - k.width / 2, k.center + k.width / 2] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < slots.length; i++) {
      t.true(slots[i]![0] >= parent.center - parent.width / 2 - 1e-9);
      t.true(slots[i]![1] <= parent.center + parent.width / 2 + 1e-9);
      if (i > 0) t.true(slots[i]![0] >= slots[i - 1]![1] - 1e-9);
    }
  }
  // the profile renders
  const svg = await plot.profileSvg(prof.basins, {});
  t.true(svg.startsWith('<svg'));
});

/** Brute-force L∞ matching between diagrams with diagonal copies (tiny sizes only). */
function bruteDistances(a: topology.Diagram, b: topology.Diagram): { bottleneck: number; w1: number } {
  const A = [...a.birth].map((x, i) => [x, a.death[i]!] as const);
  const B = [...b.birth].map((x, i) => [x, b.death[i]!] as const);
  const n = A.length + B.length;
  // left: A then diagonal copies of B; right: B then diagonal copies of A
  const cost = (i: number, j: number): number => {
    const li = i < A.length ? A[i]! : null;
    const rj = j < B.length ? B[j]! : null;
    if (li && rj) return Math.max(Math.abs(li[0] - rj[0]), Math.abs(li[1] - rj[1]));
    if (li) return (li[1] - li[0]) / 2;
    if (rj) return (rj[1] - rj[0]) / 2;
    return 0;
  };
  let best = { bottleneck: Infinity, w1: Infinity };
  const perm = Array.from({ length: n }, (_, i) => i);
  const rec = (k: number): void => {
    if (k === n) {
      let mx = 0;
      let sum = 0;
      for (let i = 0; i < n; i++) { const c = cost(i, perm[i]!); mx = Math.max(mx, c); sum += c; }
      best = { bottleneck: Math.min(best.bottleneck, mx), w1: Math.min(best.w1, sum) };
      return;
    }
    for (let i = k; i < n; i++) {
      [perm[k], perm[i]] = [perm[i]!, perm[k]!];
      rec(k + 1);
      [perm[k], perm[i]] = [perm[i]!, perm[k]!];
    }
  };
  rec(0);
  return best;
}

test('bottleneck and 1-Wasserstein: zero on itself, symmetric, equal to brute-force matching', async (t) => {
  for (let seed = 1; seed <= 12; seed++) {
    const r = rng(seed * 31);
    const mk = (m: number): topology.Diagram => {
      const birth = Float64Array.from({ length: m }, () => r());
      return { birth, death: birth.map((x) => x + r()), essential: new Float64Array([0]) };
    };
    const a = mk(1 + (seed % 3));
    const b = mk(1 + ((seed * 7) % 4));
    t.is(await topology.bottleneck(a, a), 0);
    t.is(await topology.wasserstein(a, a), 0);
    const ab = await topology.bottleneck(a, b);
    t.is(ab, await topology.bottleneck(b, a));
    const ref = bruteDistances(a, b);
    t.true(Math.abs(ab - ref.bottleneck) < 1e-12, `bottleneck ${ab} vs ${ref.bottleneck}`);
    const w = await topology.wasserstein(a, b);
    t.true(Math.abs(w - ref.w1) < 1e-12, `w1 ${w} vs ${ref.w1}`);
  }
  // essential classes: differing counts are infinitely far apart
  const one = { birth: new Float64Array(0), death: new Float64Array(0), essential: new Float64Array([0]) };
  const two = { birth: new Float64Array(0), death: new Float64Array(0), essential: new Float64Array([0, 1]) };
  t.is(await topology.bottleneck(one, two), Infinity);
});

test('kNN graph equals brute force; landscape-style scattered persistence runs on it', async (t) => {
  const r = rng(5);
  const n = 60;
  const dim = 3;
  const pts = Float64Array.from({ length: n * dim }, () => r());
  const k = 4;
  const g = await topology.knnGraph(new Tensor(pts, [n, dim]), { k });
  const d2 = (i: number, j: number): number => {
    let s = 0;
    for (let c = 0; c < dim; c++) s += (pts[i * dim + c]! - pts[j * dim + c]!) ** 2;
    return s;
  };
  const near: Set<number>[] = [];
  for (let i = 0; i < n; i++) {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i).sort((a, b) => d2(i, a) - d2(i, b) || a - b);
    near.push(new Set(others.slice(0, k)));
  }
  for (let i = 0; i < n; i++) {
    const got = new Set(g.adjacency.subarray(g.offsets[i]!, g.offsets[i + 1]!));
    const want = new Set<number>();
    for (let j = 0; j < n; j++) if (near[i]!.has(j) || near[j]!.has(i)) want.add(j);
    t.deepEqual([...got].sort((a, b) => a - b), [...want].sort((a, b) => a - b));
  }
  const values = Float64Array.from({ length: n }, (_, i) => d2(i, 0));
  const tree = await topology.mergeTree(values, g);
  t.is(tree.essential[0]!.birth, 0);
});

test('bad input: stable codes', async (t) => {
  await expectCode(t, topology.mergeTree(new Float64Array([1, NaN, 2]), { grid: [3] }), 'ERR_NON_FINITE');
  await expectCode(t, topology.mergeTree(new Float64Array(0), { grid: [1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, topology.mergeTree(new Int32Array(4) as unknown as Float64Array, { grid: [4] }), 'ERR_DTYPE');
  await expectCode(t, topology.mergeTree(new Float64Array(6), { grid: [2, 4] }), 'ERR_SHAPE');
  await expectCode(t, topology.mergeTree(new Float64Array(6), { grid: [6], neighborhood: 'moore' as 'full' }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, topology.mergeTree(new Float64Array(3), { offsets: new Int32Array([0, 1, 2, 3]), adjacency: new Int32Array([1, 7, 0]) }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, topology.persistence(new Float64Array(4), { grid: [4] }, { device: 'gpu' as 'cuda' }), 'ERR_UNKNOWN_DEVICE');
  const tree = await topology.mergeTree(new Float64Array([0, 1, 0]), { grid: [3] });
  await expectCode(t, tree.simplify({ epsilon: -1 }), 'ERR_INVALID_ARGUMENT');
  const split = await topology.mergeTree(new Float64Array([0, 1, 0]), { grid: [3] }, { kind: 'split' });
  await expectCode(t, split.profile(), 'ERR_INVALID_ARGUMENT');
  const bad = { birth: new Float64Array([1]), death: new Float64Array([0]), essential: new Float64Array(0) };
  await expectCode(t, topology.bottleneck(bad, bad), 'ERR_INVALID_ARGUMENT');
  const big = { birth: new Float64Array(6000), death: new Float64Array(6000), essential: new Float64Array(0) };
  await expectCode(t, topology.wasserstein(big, big), 'ERR_TOO_LARGE');
});

test('device: auto equals cpu; cuda without a GPU says why', async (t) => {
  const r = rng(9);
  const values = Float64Array.from({ length: 40 * 40 }, () => r());
  const cpu = await topology.persistence(values, { grid: [40, 40] }, { device: 'cpu' });
  const auto = await topology.persistence(values, { grid: [40, 40] }, { device: 'auto' });
  t.deepEqual(auto.birth, cpu.birth);
  t.deepEqual(auto.deathValue, cpu.deathValue);
  t.deepEqual(auto.basin, cpu.basin);
  const { devices } = await import('../lib/index.js');
  if (!devices().cuda.available) {
    await expectCode(t, topology.persistence(values, { grid: [40, 40] }, { device: 'cuda' }), 'ERR_DEVICE_UNAVAILABLE');
  }
  // cancellation
  const ac = new AbortController();
  ac.abort();
  await expectCode(t, topology.mergeTree(values, { grid: [40, 40] }, { signal: ac.signal }), 'ERR_CANCELLED');
});

test('landscapeTree: grid landscapes use the grid, scattered ones a kNN graph; the CLI runs the PINN study', async (t) => {
  const { landscape, models } = await import('../lib/index.js');
  const mlp = models.mlp({ widths: [1, 4, 1], activation: 'tanh', loss: 'mse' }, models.datasets.sine({ n: 16, noise: 0, seed: 1 }));
  const theta = mlp.init(0);
  const dirs = await landscape.directions(mlp, theta, { kind: 'random', k: 2, seed: 3 });
  const grid = await landscape.sample(mlp, theta, dirs, { steps: 9 });
  const tree = await topology.landscapeTree(grid);
  const direct = await topology.mergeTree(grid.losses, { grid: [9, 9], neighborhood: 'freudenthal' });
  t.deepEqual(tree.pairs.birth, direct.pairs.birth);
  t.is(tree.vertices, 81);
  const scattered = await landscape.sample(mlp, theta, dirs, { sampling: 'uniform', samples: 200, seed: 2 });
  const st = await topology.landscapeTree(scattered);
  t.is(st.vertices, 200);
  t.is(st.metrics().basinVolumes.reduce((a, b) => a + b, 0), 200);

  const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'nnscope-cli-'));
  try {
    const out = execFileSync(process.execPath, ['dist/lib/cli.js', 'landscape', '--steps', '7', '--betas', '1,40', '--out', dir], { encoding: 'utf8' });
    t.regex(out, /β = 1 .*minima \d+/);
    t.regex(out, /β = 40 .*minima \d+/);
    t.is(readdirSync(dir).filter((f) => f.endsWith('.svg')).length, 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
