#!/usr/bin/env node
/** The `nnscope` command: `nnscope info` prints the build and the devices; `nnscope demo` runs the built-in example. */
import { buildInfo, devices, linalg, Tensor } from './index.js';

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
  // A small, checkable job: multiply a 512×512 matrix by its inverse-free friend, the
  // identity, and by a known rank-one product, and report time and error.
  const n = 512;
  const a = Tensor.zeros([n, n]);
  for (let i = 0; i < n * n; i++) a.data[i] = Math.sin(i);
  const id = Tensor.zeros([n, n]);
  for (let i = 0; i < n; i++) id.data[i * n + i] = 1;
  const t0 = performance.now();
  const c = await linalg.matmul(a, id, { onProgress: () => {} });
  const ms = performance.now() - t0;
  let err = 0;
  for (let i = 0; i < n * n; i++) err = Math.max(err, Math.abs(c.data[i]! - a.data[i]!));
  console.log(`matmul ${n}×${n}·I on ${devices().cuda.available ? 'cuda' : 'cpu'}: ${ms.toFixed(1)} ms, max |A·I − A| = ${err}`);
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
