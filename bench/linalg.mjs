// SGEMM throughput through the public API (end to end: a JS call, the libuv
// worker, the native kernel), 1 thread and all threads, beside the machine's
// FMA peak and numpy's OpenBLAS measured in the same run.
import { Tensor, buildInfo, devices, linalg, numThreads, setNumThreads } from '../dist/lib/index.js';
import { gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

const NUMPY = `
import json, os, sys, time
import numpy as np
args = json.loads(sys.argv[1])
out = {"numpy": np.__version__, "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count())), "results": []}
try:
    cfg = np.show_config(mode="dicts")
    out["blas"] = cfg["Build Dependencies"]["blas"].get("name", "?") + " " + str(cfg["Build Dependencies"]["blas"].get("version", ""))
except Exception:
    out["blas"] = "unknown"
rng = np.random.default_rng(0)
for m, k, n in args["shapes"]:
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    ts = []
    t_end = time.perf_counter() + args["minMs"] / 1000
    while len(ts) < args["minRuns"] or (time.perf_counter() < t_end and len(ts) < 50):
        t0 = time.perf_counter(); a @ b; ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    out["results"].append({"shape": [m, k, n], "medianMs": ts[len(ts) // 2]})
print(json.dumps(out))
`;

export async function main(argv) {
  const quick = argv.includes('--quick');
  const squares = quick ? [256, 512, 1024, 2048] : [256, 512, 1024, 2048, 4096];
  const skinny = [[4096, 64, 4096], [64, 4096, 4096], [4096, 4096, 64], [1, 4096, 4096]];
  const shapes = [...squares.map((s) => [s, s, s]), ...(quick ? [] : skinny)];
  const allThreads = numThreads();
  const threadCounts = [...new Set([1, allThreads])];
  const timing = { minRuns: quick ? 3 : 5, minMs: quick ? 200 : 1000 };
  const info = buildInfo();
  const mach = machine(devices().cpu.isa);
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${mach.cores} cores, kernels ${mach.isa}`);
  console.log(`peak fp32: ${mach.peakGflops.toFixed(0)} GFLOP/s (${mach.peakDerivation})`);

  const rows = [];
  for (const threads of threadCounts) {
    setNumThreads(threads);
    for (const [m, k, n] of shapes) {
      const a = Tensor.zeros([m, k]);
      const b = Tensor.zeros([k, n]);
      for (let i = 0; i < a.size; i++) a.data[i] = Math.sin(i);
      for (let i = 0; i < b.size; i++) b.data[i] = Math.cos(i);
      const s = await time(() => linalg.matmul(a, b, { device: 'cpu', checkFinite: false }), timing);
      const gflops = (2 * m * n * k) / (s.median * 1e6);
      rows.push({ shape: `${m}×${k}×${n}`, m, k, n, threads, medianMs: s.median, minMs: s.min, maxMs: s.max, gflops, peak: mach.peakGflopsPerCore * threads });
    }
  }
  setNumThreads(allThreads);

  const peers = {};
  for (const threads of threadCounts) {
    const r = pythonPeer(NUMPY, { shapes, ...timing }, { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) });
    peers[`numpy-${threads}t`] = r;
    if (r.skipped) continue;
    for (const res of r.results) {
      const row = rows.find((x) => x.threads === threads && x.m === res.shape[0] && x.k === res.shape[1] && x.n === res.shape[2]);
      if (row) {
        row.numpyMs = res.medianMs;
        row.numpyGflops = (2 * row.m * row.n * row.k) / (res.medianMs * 1e6);
        row.ratio = row.gflops / row.numpyGflops;
      }
    }
  }
  const fmt = rows.map((r) => ({
    shape: r.shape,
    threads: r.threads,
    'median ms': r.medianMs.toFixed(2),
    'GFLOP/s': r.gflops.toFixed(1),
    'peak': r.peak.toFixed(0),
    '% peak': ((100 * r.gflops) / r.peak).toFixed(0),
    'numpy GFLOP/s': r.numpyGflops?.toFixed(1) ?? '-',
    'vs numpy': r.ratio ? `${r.ratio.toFixed(2)}×` : '-',
  }));
  console.log();
  table(fmt, Object.keys(fmt[0]));
  for (const [name, r] of Object.entries(peers)) {
    console.log(r.skipped ? `${name}: skipped (${r.skipped})` : `${name}: numpy ${r.numpy}, ${r.blas}, ${r.threads} threads`);
  }
  const file = writeResults('linalg', { family: 'linalg', date: new Date().toISOString(), git: gitSha(), build: info, machine: mach, timing, rows, peers });
  console.log(`\nJSON: ${file}`);
}
