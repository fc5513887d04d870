// 0-dim sublevel persistence of large grids: a 1000×1000 grid and a 41⁴ grid of
// random and smooth fields. nnscope's `persistence` (steepest-descent basins, then a
// union-find sweep over the vertices where two basins meet: the pairs only) and its
// merge tree (one radix sort + union-find sweep: pairs, tree and segmentation), beside
// GUDHI's cubical complex (python3-gudhi; top-dimensional cells = the field, so
// 3^k − 1 connectivity, pairs only) and scipy's minimum spanning tree of the grid
// graph with edge weights max(f(u), f(v)) (python3-scipy; Kruskal-equivalent, the
// spanning tree only: less than the pairs), in the same run when installed. scipy's
// graph is the axis graph, so `persistence` on the axis neighbourhood is the
// like-for-like figure (peer ÷ persistence). The time to sort the values once (numpy
// argsort, stable; and Float64Array.sort in Node) is the floor.
// Then the landscape sampling benchmark (PINN 41³ grid vs a PyTorch one-point loop)
// unless --no-sampling. Options: --quick (500² and 21⁴), --device=cpu|auto|cuda.
import { buildInfo, devices, numThreads, topology } from '../dist/lib/index.js';
import { gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

// Two peer scripts so that each runs under an interpreter that has its package
// (pythonPeer falls through to the next interpreter on a ModuleNotFoundError).
const PEER_HEAD = `import json, os, sys, time
import numpy as np
args = json.loads(sys.argv[1])
dims = tuple(args["dims"])
rng = np.random.default_rng(args["seed"])
def field(kind):
    if kind == "random":
        return rng.random(dims)
    axes = np.meshgrid(*[np.linspace(0, 6 * np.pi, n) for n in dims], indexing="ij")
    return sum(np.sin(a * (1 + 0.3 * i)) for i, a in enumerate(axes)) + 0.05 * rng.random(dims)
def med(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); out = fn(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[len(ts) // 2], out
f = field(args["kind"])
flat = f.ravel()
`;
const GUDHI = `import gudhi
${PEER_HEAD}
def run_gudhi():
    cc = gudhi.CubicalComplex(top_dimensional_cells=f)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0)
    return len(cc.persistence_intervals_in_dimension(0))
ms, pairs = med(run_gudhi, args["runs"])
print(json.dumps({"gudhi": gudhi.__version__, "gudhiMs": ms, "gudhiPairs": pairs}))
`;
const SCIPY = `import scipy
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
${PEER_HEAD}
out = {"scipy": scipy.__version__, "numpy": np.__version__}
out["argsortMs"], _ = med(lambda: np.argsort(flat, kind="stable"), args["runs"])
idx = np.arange(flat.size).reshape(dims)
rows, cols = [], []
for ax in range(len(dims)):
    rows.append(np.take(idx, range(0, dims[ax] - 1), axis=ax).ravel())
    cols.append(np.take(idx, range(1, dims[ax]), axis=ax).ravel())
rows = np.concatenate(rows); cols = np.concatenate(cols)
# +1 keeps zero weights (absent entries of scipy's sparse graphs) away
w = np.maximum(flat[rows], flat[cols]) + 1.0
g = coo_matrix((w, (rows, cols)), shape=(flat.size, flat.size)).tocsr()
out["scipyMs"], _ = med(lambda: minimum_spanning_tree(g), args["runs"])
print(json.dumps(out))
`;

// The same fields as the peer's (seeded numpy draws are not reproducible in JS,
// so the random field is drawn here with its own generator: timings, not values, are compared).
function field(dims, kind, seed) {
  const n = dims.reduce((a, b) => a * b, 1);
  const f = new Float64Array(n);
  if (kind === 'random') {
    let s = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    for (let i = 0; i < n; i++) {
      s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
      f[i] = Number(s >> 11n) / 2 ** 53;
    }
    return f;
  }
  const k = dims.length;
  const c = new Array(k).fill(0);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let a = 0; a < k; a++) v += Math.sin(((c[a] / (dims[a] - 1)) * 6 * Math.PI) * (1 + 0.3 * a));
    f[i] = v + 0.05 * ((i * 2654435761) % 1000) / 1000;
    for (let a = k - 1; a >= 0; a--) {
      if (++c[a] < dims[a]) break;
      c[a] = 0;
    }
  }
  return f;
}

export async function main(argv) {
  const quick = argv.includes('--quick');
  const device = (argv.find((a) => a.startsWith('--device=')) ?? '--device=cpu').slice('--device='.length);
  const mach = machine(devices().cpu.isa);
  const info = buildInfo();
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${numThreads()} threads, device ${device}`);
  const cases = quick
    ? [{ dims: [500, 500] }, { dims: [21, 21, 21, 21] }]
    : [{ dims: [1000, 1000] }, { dims: [41, 41, 41, 41] }];
  const runs = quick ? 3 : 5;
  const rows = [];
  const results = [];
  for (const { dims } of cases) {
    for (const kind of ['random', 'smooth']) {
      const f = field(dims, kind, 1);
      const n = f.length;
      const sortT = await time(async () => f.slice().sort(), { warmup: 0, minRuns: runs, minMs: 0 });
      const entry = { dims, kind, n, jsSortMs: sortT.median, nnscope: {}, peer: null };
      for (const nb of ['axis', 'freudenthal']) {
        let tree;
        const tTree = await time(async () => {
          tree = await topology.mergeTree(f, { grid: dims, neighborhood: nb });
        }, { warmup: 1, minRuns: runs, minMs: 0 });
        const tBasin = await time(() => topology.persistence(f, { grid: dims, neighborhood: nb }, { device }), { warmup: 1, minRuns: runs, minMs: 0 });
        entry.nnscope[nb] = { treeMs: tTree.median, basinMs: tBasin.median, pairs: tree.pairs.birth.length, minima: tree.metrics().minima };
      }
      // GUDHI takes minutes on 41⁴: one run there.
      const g = pythonPeer(GUDHI, { dims, kind, seed: 1, runs: n > 1e6 ? 1 : runs });
      const sp = pythonPeer(SCIPY, { dims, kind, seed: 1, runs });
      const peer = { ...(g.skipped ? { gudhiSkipped: g.skipped } : g), ...(sp.skipped ? { scipySkipped: sp.skipped } : sp) };
      entry.peer = peer;
      results.push(entry);
      const best = Math.min(peer.gudhiMs ?? Infinity, peer.scipyMs ?? Infinity);
      const fr = entry.nnscope.freudenthal;
      const ax = entry.nnscope.axis;
      rows.push({
        grid: dims.join('×'),
        field: kind,
        'persistence axis ms': ax.basinMs.toFixed(0),
        'persistence freud. ms': fr.basinMs.toFixed(0),
        'tree axis ms': ax.treeMs.toFixed(0),
        'tree freud. ms': fr.treeMs.toFixed(0),
        'gudhi ms': peer.gudhiMs?.toFixed(0) ?? 'skip',
        'scipy MST ms': peer.scipyMs?.toFixed(0) ?? 'skip',
        'argsort ms': peer.argsortMs?.toFixed(0) ?? '—',
        'JS sort ms': entry.jsSortMs.toFixed(0),
        'peer ÷ persistence(axis)': Number.isFinite(best) ? (best / ax.basinMs).toFixed(1) + '×' : '—',
        'peer ÷ tree(axis)': Number.isFinite(best) ? (best / ax.treeMs).toFixed(1) + '×' : '—',
        'tree(axis) ÷ argsort': peer.argsortMs ? (ax.treeMs / peer.argsortMs).toFixed(1) + '×' : '—',
        minima: `${ax.minima} / ${fr.minima}`,
      });
    }
  }
  table(rows, Object.keys(rows[0]));
  console.log(`threads: nnscope ${numThreads()}; numpy argsort, GUDHI's cubical persistence and scipy's MST run single-threaded (they have no threaded path for these calls). peer = the faster of GUDHI and scipy; scipy's graph is the axis graph, GUDHI's 3^k−1 connectivity (top-dimensional cells); nnscope runs the axis and Freudenthal neighbourhoods.`);
  writeResults('topology', { machine: mach, build: info, sha: gitSha(), device, quick, results });
  if (!argv.includes('--no-sampling')) {
    const { main: sampling } = await import('./landscape.mjs');
    await sampling(argv);
  }
}
