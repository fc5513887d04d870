import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NnscopeError, Tensor, io, models } from '../lib/index.js';
import { expectCode } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nnscope-io-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));


test('safetensors round-trips every array type, with metadata', async (t) => {
  const path = join(dir, 'all.safetensors');
  await io.writeSafetensors(
    path,
    {
      f32: new Tensor(new Float32Array([1.5, -2, 3e-40, 65504]), [2, 2]),
      f64: new Tensor(new Float64Array([Math.PI, -1e300]), [2]),
      i32: new Tensor(new Int32Array([-7, 2 ** 31 - 1]), [2]),
      u8: new Tensor(new Uint8Array([0, 255, 7]), [3]),
      half: { data: new Float32Array([1, -2.5, 65504, 2 ** -24]), shape: [4], storeAs: 'F16' },
      bf: { data: new Float32Array([1, 3.140625]), shape: [2], storeAs: 'BF16' },
      i64: { data: new BigInt64Array([-5n, 2n ** 53n - 1n]), shape: [2] },
      empty: new Tensor(new Float32Array(0), [0, 3]),
    },
    { metadata: { who: 'nnscope test', 'λ': 'ünïcode' } },
  );
  const file = await io.openSafetensors(path);
  t.true(file.mapped);
  t.deepEqual(file.metadata, { who: 'nnscope test', 'λ': 'ünïcode' });
  t.deepEqual(file.entry('half'), { name: 'half', dtype: 'F16', shape: [4], byteLength: 8 });
  t.deepEqual(Array.from((await file.read('f32')).data), [1.5, -2, Math.fround(3e-40), 65504]);
  const f64 = await file.read('f64');
  t.true(f64.data instanceof Float64Array);
  t.deepEqual(Array.from(f64.data), [Math.PI, -1e300]);
  t.deepEqual(Array.from((await file.read('i32', { dtype: 'float64' })).data), [-7, 2 ** 31 - 1]);
  t.deepEqual(Array.from((await file.read('u8')).data), [0, 255, 7]);
  t.deepEqual(Array.from((await file.read('half')).data), [1, -2.5, 65504, 2 ** -24]);
  t.deepEqual(Array.from((await file.read('bf')).data), [1, 3.140625]);
  t.deepEqual(Array.from((await file.read('i64', { dtype: 'float64' })).data), [-5, 2 ** 53 - 1]);
  await expectCode(t, file.read('i64', { dtype: 'float32' }), 'ERR_DTYPE'); // 2^53 − 1 is exact in float64 only
  t.true((await file.read('i32')).data instanceof Float64Array);
  t.deepEqual((await file.read('empty')).shape, [0, 3]);
  const all = await io.readSafetensors(path, { mmap: false });
  t.is(Object.keys(all.tensors).length, 8);
  // the file on disk starts with the header length and a JSON header
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  t.true((8 + n) % 8 === 0);
  t.truthy(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'))['__metadata__']);
});

test('a foreign header layout reads back exactly', async (t) => {
  const header = '{ "b": {"shape":[2],"dtype":"F32","data_offsets":[8,16]},\n "__metadata__": {"k":"v"}, "a": {"data_offsets":[0,8], "dtype":"I32", "shape":[2]} }';
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const data = Buffer.alloc(16);
  data.writeInt32LE(-3, 0);
  data.writeInt32LE(9, 4);
  data.writeFloatLE(0.25, 8);
  data.writeFloatLE(-8, 12);
  const path = join(dir, 'foreign.safetensors');
  writeFileSync(path, Buffer.concat([len, h, data]));
  const { tensors, metadata } = await io.readSafetensors(path);
  t.deepEqual(metadata, { k: 'v' });
  t.deepEqual(Array.from(tensors['a']!.data), [-3, 9]);
  t.deepEqual(Array.from(tensors['b']!.data), [0.25, -8]);
});

test('malformed files fail with ERR_FORMAT and missing files with ERR_IO', async (t) => {
  const write = (name: string, header: string, dataBytes = 0, lenOverride?: bigint) => {
    const h = Buffer.from(header, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
    const path = join(dir, name);
    writeFileSync(path, Buffer.concat([len, h, Buffer.alloc(dataBytes)]));
    return path;
  };
  const cases: [string, string, number, bigint?][] = [
    ['not-json', '{"a": ', 0],
    ['bad-dtype', '{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', 4],
    ['negative-shape', '{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4],
    ['span-mismatch', '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', 4],
    ['past-eof', '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 4],
    ['overlap', '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12],
    ['header-past-eof', '{}', 0, 1000n],
    ['huge-header-length', '{}', 0, 2n ** 62n],
    ['duplicate', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4],
    ['trailing-garbage', '{} x', 0],
    ['not-object', '[1,2]', 0],
    ['metadata-number', '{"__metadata__":{"k":1}}', 0],
  ];
  for (const [name, header, n, len] of cases) await expectCode(t, io.openSafetensors(write(name, header, n, len)), 'ERR_FORMAT');
  writeFileSync(join(dir, 'short'), Buffer.from([1, 2, 3]));
  await expectCode(t, io.openSafetensors(join(dir, 'short')), 'ERR_FORMAT');
  await expectCode(t, io.openSafetensors(join(dir, 'does-not-exist.safetensors')), 'ERR_IO');
});

test('models save and load their parameters by name', async (t) => {
  const obj = models.pinn({ widths: [2, 8, 8, 1] });
  const theta = obj.init(7);
  const path = join(dir, 'pinn.safetensors');
  await obj.save(path, theta, { metadata: { beta: '1' } });
  const file = await io.openSafetensors(path);
  t.deepEqual(file.entries.map((e) => e.name).sort(), ['layer0.bias', 'layer0.weight', 'layer1.bias', 'layer1.weight', 'layer2.bias', 'layer2.weight']);
  t.is(file.metadata['widths'], '2,8,8,1');
  t.is(file.metadata['beta'], '1');
  t.deepEqual(await obj.load(path), theta);
  const other = models.pinn({ widths: [2, 9, 8, 1] });
  await expectCode(t, other.load(path), 'ERR_SHAPE');
});
