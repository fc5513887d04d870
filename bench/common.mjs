// Shared benchmark helpers: timing statistics, the machine description, peers in
// Python (run in a subprocess, skipped when missing), JSON results.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function stats(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
  return { median: q(0.5), min: s[0], max: s.at(-1), p90: q(0.9), n: s.length };
}

/** Times an async fn: `warmup` untimed runs, then runs until `minRuns` and `minMs` are both reached. */
export async function time(fn, { warmup = 1, minRuns = 5, minMs = 300, maxRuns = 50 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = [];
  const start = performance.now();
  while (samples.length < minRuns || (performance.now() - start < minMs && samples.length < maxRuns)) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

/** CPU model, cores, clock, ISA and the single-precision FMA peak with how it was derived. */
export function machine(isa) {
  const cpus = os.cpus();
  const model = cpus[0]?.model ?? 'unknown';
  // Clock: the nominal one in the CPU's name, else what the OS reports (os.cpus(), then
  // /proc/cpuinfo's "cpu MHz": some VMs report speed 0 to libuv).
  const ghzFromName = model.match(/@\s*([\d.]+)\s*GHz/i);
  let ghz = ghzFromName ? Number(ghzFromName[1]) : (cpus[0]?.speed ?? 0) / 1000;
  let clockSource = ghzFromName ? 'nominal clock from the CPU name' : 'clock reported by the OS';
  if (!(ghz > 0)) {
    try {
      const mhz = readFileSync('/proc/cpuinfo', 'utf8').match(/^cpu MHz\s*:\s*([\d.]+)/m);
      ghz = mhz ? Math.round(Number(mhz[1])) / 1000 : 0;
      clockSource = "clock from /proc/cpuinfo's cpu MHz";
    } catch {
      ghz = 0;
    }
  }
  const lanes = isa === 'avx512' ? 16 : isa === 'avx2' ? 8 : 4;
  const fmaUnits = 2;
  const cores = cpus.length;
  const perCore = fmaUnits * lanes * 2 * ghz;
  return {
    cpu: model,
    cores,
    ghz,
    isa,
    peakGflopsPerCore: perCore,
    peakGflops: perCore * cores,
    peakDerivation: `${cores} cores × ${fmaUnits} FMA units × ${lanes} fp32 lanes (${isa}) × 2 flop × ${ghz} GHz (${clockSource}; 2 FMA units assumed, as on server Skylake/Cascade/Ice Lake and AMD Zen cores)`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function gitSha() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Runs a Python peer script; returns its parsed JSON stdout (plus `python`, the
 * interpreter used), or { skipped: reason }. The script gets `args` as JSON on
 * argv[1]. Interpreters tried: $NNSCOPE_PYTHON, python3 on the PATH, then
 * /usr/bin/python3 (where Debian's python3-* packages live); the first whose
 * imports succeed runs it.
 */
export function pythonPeer(script, args, env = {}) {
  const interpreters = [...new Set([process.env.NNSCOPE_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean))];
  let reason = 'no python3 found';
  for (const python of interpreters) {
    const r = spawnSync(python, ['-c', script, JSON.stringify(args)], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 30 * 60 * 1000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) continue;
    if (r.status !== 0) {
      const last = (r.stderr || '').trim().split('\n').at(-1) ?? '';
      reason = last.includes('ModuleNotFoundError') ? last : `peer failed: ${last}`;
      if (last.includes('ModuleNotFoundError')) continue;
      return { skipped: reason };
    }
    try {
      return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)), python };
    } catch {
      return { skipped: 'peer printed no JSON' };
    }
  }
  return { skipped: reason };
}

export function writeResults(family, payload) {
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${family}-${stamp}.json`);
  writeFileSync(file, JSON.stringify(payload, null, 2));
  return file;
}

export function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => cells.map((c, i) => String(c ?? '').padStart(widths[i])).join('  ');
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => r[c])));
}

export function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * Python preamble for PyTorch peers: the convection PINN of models.pinn({beta,
 * nCollocation, collocationSampling: 'random'}) (2→50→50→50→50→1, tanh; 256
 * initial points, 100 boundary pairs) as `net`, `params`, `P` and
 * `loss_fn()`, with all cores; reads args (beta, nCollocation) from argv[1].
 */
export const TORCH_PINN = `import json, math, os, sys, time
import torch
torch.set_num_threads(os.cpu_count())
args = json.loads(sys.argv[1])
torch.manual_seed(0)
beta, nf = args["beta"], args["nCollocation"]
widths = [2, 50, 50, 50, 50, 1]
layers = []
for i in range(len(widths) - 1):
    layers += [torch.nn.Linear(widths[i], widths[i + 1])]
    if i < len(widths) - 2: layers += [torch.nn.Tanh()]
net = torch.nn.Sequential(*layers)
params = list(net.parameters())
P = sum(p.numel() for p in params)
xg = torch.arange(256, dtype=torch.float32) * (2 * math.pi / 256)
tg = torch.linspace(0, 1, 100)
g = torch.Generator().manual_seed(0)
xf = torch.rand(nf, generator=g) * 2 * math.pi
tf = torch.rand(nf, generator=g)
def loss_fn():
    u0 = net(torch.stack([xg, torch.zeros_like(xg)], 1)).squeeze(1)
    ic = ((u0 - torch.sin(xg)) ** 2).mean()
    ul = net(torch.stack([torch.zeros_like(tg), tg], 1)); ur = net(torch.stack([torch.full_like(tg, 2 * math.pi), tg], 1))
    bc = ((ul - ur) ** 2).mean()
    x = xf.clone().requires_grad_(True); t = tf.clone().requires_grad_(True)
    u = net(torch.stack([x, t], 1))
    ux, ut = torch.autograd.grad(u.sum(), (x, t), create_graph=True)
    return ic + bc + ((ut + beta * ux) ** 2).mean()
`;
