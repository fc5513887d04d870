#!/usr/bin/env node
/**
 * The `nnscope` command: `nnscope info` prints the build and the devices;
 * `nnscope demo` runs the built-in examples (train the convection PINN, its
 * Hessian spectrum, Squeezed Attention on a synthetic long context);
 * `nnscope landscape [--steps 41] [--betas 1,40] [--out DIR] [--device cpu|cuda|auto]`
 * samples the PINN's loss landscape in its top-3 Hessian directions for each β and
 * summarises its topology (metrics, SVG profile, persistence diagram, heat map, density).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tensor, attention, buildInfo, devices, hessian, landscape, models, plot, topology } from './index.js';
import type { DeviceName } from './validate.js';

async function info(): Promise<void> {
  const b = buildInfo();
  const d = devices();
  console.log(`nnscope ${b.version}`);
  console.log(`  addon      ${b.path}`);
  console.log(`  compiler   ${b.compiler}, Node-API ${b.napiVersion}`);
  console.log(`  cpu        ${d.cpu.threads} threads, kernels ${d.cpu.isa} (cpu supports ${b.cpuIsa})`);
  const c = d.cuda;
  if (!c.compiled) {
    console.log(`  cuda       not compiled in: ${c.reason}`);
  } else if (!c.available) {
    console.log(`  cuda       compiled (${c.architectures}), not available: ${c.reason}`);
  } else {
    const gib = (x?: number) => ((x ?? 0) / 2 ** 30).toFixed(1);
    console.log(`  cuda       ${c.name} (cc ${c.computeCapability}, ${c.multiprocessors} SMs, ${gib(c.freeMemory)}/${gib(c.totalMemory)} GiB free), built for ${c.architectures}`);
  }
}

async function demo(): Promise<void> {
  // The built-in example: the 1-D convection PINN (β = 1, the papers' set-up) trained
  // with L-BFGS, its error against the exact solution, and one exact Hessian-vector product.
  const pinn = models.pinn({ beta: 1 });
  console.log(`convection PINN, β = 1: ${pinn.dim} parameters, L-BFGS (strong Wolfe)`);
  const t0 = performance.now();
  let last = -1;
  const r = await pinn.train(pinn.init(0), {
    maxSteps: 1000,
    onProgress: (p) => {
      const pct = Math.floor(p.fraction * 10);
      if (pct !== last) process.stdout.write(pct === 10 ? '\n' : '.');
      last = pct;
    },
  });
  if (last !== 10) process.stdout.write('\n');
  const e = await pinn.evaluate(r.theta);
  console.log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${r.steps} steps (${r.stopReason}), loss ${r.finalLoss.toExponential(3)}`);
  console.log(`relative L2 error vs sin(x − βt) on the 256×100 grid: ${e.relativeL2.toFixed(4)}`);

  // Its Hessian at the trained θ (PyHessian's suite by Lanczos).
  const op = hessian.modelOperator(pinn, r.theta);
  const top = await hessian.eigenpairs(op, { k: 3, vectors: false });
  const tr = await hessian.trace(op, { method: 'hutch++', maxProducts: 300 });
  const esd = await hessian.density(op, { steps: 100 });
  let negative = 0;
  esd.nodes.data.forEach((x, i) => (negative += x < 0 ? esd.weights.data[i]! : 0));
  console.log(`Hessian: top eigenvalues ${[...top.values].map((x) => x.toPrecision(4)).join(', ')}; trace ≈ ${tr.estimate.toPrecision(4)} ± ${tr.stdError.toPrecision(2)} (Hutch++);`);
  console.log(`  spectral density (100 Lanczos steps) on [${esd.grid[0]!.toPrecision(3)}, ${esd.grid.at(-1)!.toPrecision(3)}], ${(100 * negative).toFixed(1)}% of its mass below 0; ${op.products} HVPs in all`);

  // Squeezed Attention on a synthetic fixed context with planted topics.
  const H = 4, N = 8192, d = 64;
  const { keys, values, query } = syntheticContext(H, N, d);
  const t1 = performance.now();
  const ctx = await attention.squeeze(keys, values, { seed: 0 });
  const tBuild = performance.now() - t1;
  const dec = ctx.decoder();
  const sq = await dec.step(query, undefined, undefined, { select: { keepFraction: 0.1 } });
  const dense = await attention.dense(query, keys, values);
  let num = 0;
  let den = 0;
  dense.out.data.forEach((x, i) => {
    num += (sq.out.data[i]! - x) ** 2;
    den += x * x;
  });
  const kept = [...sq.report.keptFraction].map((x) => (100 * x).toFixed(1)).join(', ');
  console.log(`Squeezed Attention: ${H} heads × ${N} tokens × d ${d}, ${ctx.clusters} centroids per head (K-means ${tBuild.toFixed(0)} ms);`);
  console.log(`  a decode step attends ${kept}% of the keys per head; relative error vs dense ${Math.sqrt(num / den).toExponential(2)}`);
}

/** Keys around 32 topic directions per head, and a decode query near two of them. */
function syntheticContext(H: number, N: number, d: number) {
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const g = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  const keys = Tensor.zeros([H, N, d]);
  const values = Tensor.zeros([H, N, d]);
  const query = Tensor.zeros([H, 1, d]);
  for (let h = 0; h < H; h++) {
    const anchors = Array.from({ length: 32 }, () => {
      const a = Array.from({ length: d }, g);
      const n = Math.hypot(...a);
      return a.map((x) => (8 * x) / n);
    });
    for (let i = 0; i < N; i++) {
      const a = anchors[Math.floor(u() * 32)]!;
      for (let c = 0; c < d; c++) {
        keys.data[(h * N + i) * d + c] = a[c]! + 0.3 * g();
        values.data[(h * N + i) * d + c] = g();
      }
    }
    for (let c = 0; c < d; c++) query.data[h * d + c] = 0.9 * (anchors[3]![c]! + anchors[17]![c]!);
  }
  return { keys, values, query };
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

async function landscapeCommand(): Promise<void> {
  // The papers' experiment: the convection PINN at β = 1 (trains) and β = 40 (fails),
  // a 3-D landscape in the top-3 Hessian directions (layer-normalised, distance 0.01,
  // steps³ points), its join tree on the Freudenthal grid, metrics and pictures.
  const steps = Number(flag('steps', '41'));
  const betas = flag('betas', '1,40').split(',').map(Number);
  const out = resolve(flag('out', 'nnscope-landscape'));
  const device = flag('device', 'auto') as DeviceName;
  mkdirSync(out, { recursive: true });
  const rows: string[] = [];
  for (const beta of betas) {
    const pinn = models.pinn({ beta });
    const t0 = performance.now();
    const trained = await pinn.train(pinn.init(0), { maxSteps: 1000, device });
    const err = (await pinn.evaluate(trained.theta)).relativeL2;
    const op = hessian.modelOperator(pinn, trained.theta);
    const esd = await hessian.density(op, { steps: 100, seed: 0, device });
    let lastPct = -1;
    const land = await landscape.compute(pinn, trained.theta, { kind: 'hessian', k: 3, seed: 0 }, {
      steps, distance: 0.01, normalization: 'layer', device,
      onProgress: (p) => {
        const pct = Math.floor(p.fraction * 10);
        if (pct !== lastPct) process.stdout.write(pct === 10 ? '\n' : '.');
        lastPct = pct;
      },
    });
    if (lastPct !== 10) process.stdout.write('\n');
    const tree = await topology.landscapeTree(land);
    const m = tree.metrics();
    const prof = await tree.profile();
    const tag = `beta${beta}`;
    const logY = tree.minValue > 0;
    await plot.saveSvg(join(out, `profile-${tag}.svg`), await plot.profileSvg(prof.basins, { title: `PINN β = ${beta}: topological landscape profile`, logY }));
    const d = tree.diagram();
    await plot.saveSvg(join(out, `diagram-${tag}.svg`), await plot.persistenceDiagramSvg(
      { birth: [...d.birth, ...d.essential], death: [...d.death, ...d.essential.map(() => Infinity)] },
      { title: `PINN β = ${beta}: 0-dim persistence` }));
    const s = steps;
    const mid = (s - 1) >> 1;
    const slice = new Float64Array(s * s);
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) slice[i * s + j] = land.losses[(i * s + j) * s + mid]!;
    const ax = land.axis!;
    await plot.saveSvg(join(out, `heatmap-${tag}.svg`), await plot.heatmapSvg(
      { values: slice, nx: s, ny: s, xRange: [ax[0]!, ax[s - 1]!], yRange: [ax[0]!, ax[s - 1]!] },
      { title: `PINN β = ${beta}: loss in the top-2 Hessian directions`, logColor: logY, xTitle: 'direction 1', yTitle: 'direction 2' }));
    await plot.saveSvg(join(out, `density-${tag}.svg`), await plot.densitySvg(esd, { title: `PINN β = ${beta}: Hessian eigenvalue density` }));
    const sec = ((performance.now() - t0) / 1000).toFixed(1);
    rows.push(`β = ${String(beta).padEnd(3)} rel. L2 ${err.toFixed(3)}  λ_top ${[...(land.eigenvalues ?? [])].map((x) => x.toPrecision(3)).join(', ')}  ` +
      `minima ${m.minima}  saddles ${m.saddles}  avg pers. ${m.persistence.average.toExponential(2)}  max pers. ${m.persistence.maximum.toExponential(2)}  ` +
      `entropy ${m.entropy.toFixed(3)}  loss ${tree.minValue.toExponential(2)}…${tree.maxValue.toExponential(2)}  (${sec} s)`);
    console.log(rows.at(-1));
  }
  console.log(`${steps}³ grids, Freudenthal neighbourhood; SVGs in ${out}`);
}

const cmd = process.argv[2] ?? 'info';
const commands: Record<string, () => Promise<void>> = { info, demo, landscape: landscapeCommand };
const run = commands[cmd];
if (!run) {
  console.error(`usage: nnscope <${Object.keys(commands).join('|')}>`);
  process.exit(2);
}
run().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
