import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, NnscopeError, Tensor, buildInfo, devices, isNnscopeError, numThreads, setNumThreads } from '../lib/index.js';

test('devices() reports the CPU pool and the CUDA state with a reason', (t) => {
  const d = devices();
  t.true(d.cpu.threads >= 1);
  t.true(['generic', 'avx2', 'avx512'].includes(d.cpu.isa));
  t.is(typeof d.cuda.compiled, 'boolean');
  if (!d.cuda.available) t.true(d.cuda.reason.length > 0);
  if (!d.cuda.compiled) t.false(d.cuda.available);
  const b = buildInfo();
  t.is(b.cuda, d.cuda.compiled);
  t.regex(b.version, /^\d+\.\d+\.\d+/);
  t.true(b.path.endsWith('.node'));
});

test('setNumThreads resizes the pool and validates', (t) => {
  const before = numThreads();
  setNumThreads(3);
  t.is(numThreads(), 3);
  t.is(devices().cpu.threads, 3);
  for (const bad of [0, -1, 1.5, NaN, 2000, '2' as never]) {
    const e = t.throws(() => setNumThreads(bad), { instanceOf: NnscopeError });
    t.is(e?.code, 'ERR_INVALID_ARGUMENT');
  }
  setNumThreads(before);
  t.is(numThreads(), before);
});

test('Tensor validates shape and dtype and shares its data', (t) => {
  const x = Tensor.from([[1, 2, 3], [4, 5, 6]]);
  t.deepEqual(x.shape, [2, 3]);
  t.is(x.dtype, 'float32');
  t.is(x.at(1, 2), 6);
  const y = x.reshape([3, -1]);
  t.deepEqual(y.shape, [3, 2]);
  t.is(y.data, x.data);
  t.deepEqual(y.toArray(), [[1, 2], [3, 4], [5, 6]]);
  t.is(t.throws(() => new Tensor(new Float32Array(5), [2, 3]))?.message.includes('needs 6'), true);
  t.is((t.throws(() => x.at(2, 0)) as NnscopeError).code, 'ERR_SHAPE');
  t.is((t.throws(() => new Tensor([1, 2] as never, [2])) as NnscopeError).code, 'ERR_DTYPE');
  t.is((t.throws(() => Tensor.zeros([2 ** 26, 2 ** 26])) as NnscopeError).code, 'ERR_TOO_LARGE');
  t.is((t.throws(() => Tensor.from([[1, 2], [3]])) as NnscopeError).code, 'ERR_SHAPE');
  t.deepEqual(Tensor.zeros([0, 4]).shape, [0, 4]);
});

test('error codes are stable strings and isNnscopeError narrows', (t) => {
  t.true(ErrorCodes.includes('ERR_CANCELLED'));
  const e = new NnscopeError('ERR_SHAPE', 'x');
  t.true(isNnscopeError(e));
  t.true(isNnscopeError(e, 'ERR_SHAPE'));
  t.false(isNnscopeError(e, 'ERR_DTYPE'));
  t.false(isNnscopeError(new Error('x')));
});

function loadWith(nativePath: string): { code?: string; message?: string } {
  const entry = fileURLToPath(new URL('../lib/index.js', import.meta.url));
  const script = `import(${JSON.stringify(entry)}).then(m => { try { m.devices(); console.log('{}'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); } })`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NNSCOPE_NATIVE: nativePath },
    encoding: 'utf8',
  });
  return JSON.parse(r.stdout.trim()) as { code?: string; message?: string };
}

test('a missing or corrupt addon gives ERR_NATIVE_LOAD listing the path tried and why', (t) => {
  const missing = loadWith('/nonexistent/nnscope.node');
  t.is(missing.code, 'ERR_NATIVE_LOAD');
  t.true(missing.message!.includes('/nonexistent/nnscope.node: not found'));
  const dir = mkdtempSync(join(tmpdir(), 'nnscope-'));
  const corrupt = join(dir, 'nnscope.node');
  writeFileSync(corrupt, 'not an ELF file');
  const bad = loadWith(corrupt);
  t.is(bad.code, 'ERR_NATIVE_LOAD');
  t.true(bad.message!.includes(corrupt));
  rmSync(dir, { recursive: true });
});

test('the CLI prints the build and devices', (t) => {
  const cli = fileURLToPath(new URL('../lib/cli.js', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'info'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /nnscope \d+\.\d+\.\d+/);
  t.regex(r.stdout, /cuda/);
  const bad = spawnSync(process.execPath, [cli, 'frobnicate'], { encoding: 'utf8' });
  t.is(bad.status, 2);
});
