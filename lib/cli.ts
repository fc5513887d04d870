#!/usr/bin/env node
/** The `nnscope` command: `nnscope info` prints the build and the devices; `nnscope demo` trains the built-in PINN example. */
import { buildInfo, devices, models } from './index.js';

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
  const v = pinn.init(1);
  const hv = await pinn.hvp(r.theta, v);
  let vhv = 0;
  let vv = 0;
  for (let i = 0; i < v.length; i++) {
    vhv += v[i]! * hv[i]!;
    vv += v[i]! * v[i]!;
  }
  console.log(`Rayleigh quotient vᵀHv/vᵀv for a random v: ${(vhv / vv).toExponential(3)} (exact HVP)`);
}

const cmd = process.argv[2] ?? 'info';
const commands: Record<string, () => Promise<void>> = { info, demo };
const run = commands[cmd];
if (!run) {
  console.error(`usage: nnscope <${Object.keys(commands).join('|')}>`);
  process.exit(2);
}
run().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
