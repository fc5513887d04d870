/**
 * safetensors files: a validating reader (memory-mapped, so files larger than RAM
 * open at once and tensors load on demand) and an atomic writer. Malformed files
 * fail with ERR_FORMAT, OS errors with ERR_IO.
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { native } from '../native.js';
import { type AnyTypedArray, Tensor, dtypeOf, shapeSize } from '../tensor.js';
import { boolean, checkAttached, optionsArg } from '../validate.js';

export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E4M3' | 'F8_E5M2' | 'F8_E8M0' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'I64' | 'U64' | 'F64';

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  byteLength: number;
}

export interface ReadOptions extends AsyncOptions {
  /**
   * The array type returned: by default float64 for F64 and 32/64-bit integer
   * tensors, float32 for the rest. Decoding is exact or fails with ERR_DTYPE.
   */
  dtype?: 'float32' | 'float64';
  /** Round values that the target cannot hold exactly instead of failing (default false). */
  allowRounding?: boolean;
}

const WIDE = new Set<SafetensorsDtype>(['F64', 'I32', 'U32', 'I64', 'U64']);

type NativeFile = {
  tensors(): SafetensorsEntry[];
  metadata(): Record<string, string>;
  info(): { path: string; mapped: boolean; unmappedReason: string; fileSize: number; headerSize: number };
  read(o: Record<string, unknown>): Promise<void>;
};

const RAW: Partial<Record<SafetensorsDtype, (n: number) => Float32Array | Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array>> = {
  F32: (n) => new Float32Array(n),
  F64: (n) => new Float64Array(n),
  I32: (n) => new Int32Array(n),
  U32: (n) => new Uint32Array(n),
  F16: (n) => new Uint16Array(n),
  BF16: (n) => new Uint16Array(n),
  U16: (n) => new Uint16Array(n),
  U8: (n) => new Uint8Array(n),
  BOOL: (n) => new Uint8Array(n),
};

/** An open safetensors file: its tensor list and metadata; tensors are read on demand. */
export class SafetensorsFile {
  readonly path: string;
  /** Tensors in header order. */
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Whether the file is memory-mapped (else reads stream with pread). */
  readonly mapped: boolean;
  readonly #file: NativeFile;
  readonly #byName: Map<string, SafetensorsEntry>;

  /** @internal */
  constructor(file: NativeFile) {
    this.#file = file;
    const info = file.info();
    this.path = info.path;
    this.mapped = info.mapped;
    this.entries = Object.freeze(file.tensors());
    this.metadata = Object.freeze(file.metadata());
    this.#byName = new Map(this.entries.map((e) => [e.name, e]));
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  entry(name: string): SafetensorsEntry {
    const e = this.#byName.get(name);
    if (!e) throw new NnscopeError('ERR_INVALID_ARGUMENT', `no tensor named '${name}' in ${this.path}`);
    return e;
  }

  /** Reads one tensor, decoded to float32 or float64 (see ReadOptions.dtype). */
  async read(name: string, options?: ReadOptions): Promise<Tensor<Float32Array> | Tensor<Float64Array>> {
    const o = optionsArg<ReadOptions>(options);
    const e = this.entry(name);
    const wide = o.dtype === 'float64' || (o.dtype === undefined && WIDE.has(e.dtype));
    if (o.dtype !== undefined && o.dtype !== 'float32' && o.dtype !== 'float64') {
      throw new NnscopeError('ERR_INVALID_ARGUMENT', `dtype must be 'float32' or 'float64'`);
    }
    const n = shapeSize(e.shape);
    const out = wide ? new Float64Array(n) : new Float32Array(n);
    await this.readInto(name, out, o);
    return new Tensor(out, e.shape) as Tensor<Float32Array> | Tensor<Float64Array>;
  }

  /**
   * Reads one tensor's elements as they are stored, in the matching typed array:
   * F32 → Float32Array, F64 → Float64Array, I32 → Int32Array, U32 → Uint32Array,
   * F16 / BF16 / U16 → Uint16Array (16-bit patterns), U8 / BOOL → Uint8Array.
   * Other dtypes are refused with ERR_DTYPE (use read()).
   */
  async readRaw(name: string, options?: AsyncOptions): Promise<Tensor<Float32Array> | Tensor<Float64Array> | Tensor<Int32Array> | Tensor<Uint32Array> | Tensor<Uint16Array> | Tensor<Uint8Array>> {
    const o = optionsArg<AsyncOptions>(options);
    const e = this.entry(name);
    const make = RAW[e.dtype];
    if (!make) throw new NnscopeError('ERR_DTYPE', `tensor '${name}' is ${e.dtype}: readRaw supports F32, F64, I32, U32, F16, BF16, U16, U8 and BOOL`);
    const out = make(shapeSize(e.shape));
    await runOp(o, (base) => this.#file.read({ ...base, name, out, dtype: e.dtype, allowRounding: false }));
    return new Tensor(out, e.shape) as Tensor<Float32Array>;
  }

  /** Reads one tensor into `out` (a Float32Array or Float64Array of exactly its element count, e.g. a subarray). */
  async readInto(name: string, out: Float32Array | Float64Array, options?: Omit<ReadOptions, 'dtype'>): Promise<void> {
    const o = optionsArg<ReadOptions>(options);
    const e = this.entry(name);
    const kind = dtypeOf(out);
    if (kind !== 'float32' && kind !== 'float64') throw new NnscopeError('ERR_DTYPE', 'out must be a Float32Array or Float64Array');
    checkAttached(out, 'out');
    const n = shapeSize(e.shape);
    if (out.length !== n) throw new NnscopeError('ERR_SHAPE', `tensor '${name}' has ${n} elements, out has ${out.length}`);
    const allowRounding = boolean(o.allowRounding, 'allowRounding', false);
    await runOp(o, (base) => this.#file.read({ ...base, name, out, dtype: kind === 'float64' ? 'F64' : 'F32', allowRounding }));
  }
}

/** Opens and validates a safetensors file (reads its header only). */
export async function openSafetensors(path: string, options?: AsyncOptions & { mmap?: boolean }): Promise<SafetensorsFile> {
  const o = optionsArg<AsyncOptions & { mmap?: boolean }>(options);
  if (typeof path !== 'string' || path.length === 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'path must be a non-empty string');
  const mmap = boolean(o.mmap, 'mmap', true);
  const file = await runOp(o, (base) => native().io.openSafetensors({ ...base, path, mmap }) as Promise<NativeFile>);
  return new SafetensorsFile(file);
}

/** Reads every tensor of a file (see SafetensorsFile.read for the types). */
export async function readSafetensors(path: string, options?: ReadOptions & { mmap?: boolean }): Promise<{ tensors: Record<string, Tensor<Float32Array> | Tensor<Float64Array>>; metadata: Record<string, string> }> {
  const file = await openSafetensors(path, options);
  const tensors: Record<string, Tensor<Float32Array> | Tensor<Float64Array>> = {};
  for (const e of file.entries) tensors[e.name] = await file.read(e.name, options);
  return { tensors, metadata: { ...file.metadata } };
}

/** A tensor to write (a Tensor or {data, shape}), optionally stored in another dtype. */
export interface TensorToWrite {
  data: AnyTypedArray | BigInt64Array | BigUint64Array | Int8Array | Int16Array;
  shape: readonly number[];
  /** The dtype in the file (default: the array's own). F32 data → 'F16' / 'BF16' rounds to nearest even; Uint16Array data with 'F16'/'BF16' is taken as raw bits. */
  storeAs?: SafetensorsDtype;
}

const NATURAL: Record<string, SafetensorsDtype> = {
  Float32Array: 'F32', Float64Array: 'F64', Int32Array: 'I32', Uint32Array: 'U32', Int16Array: 'I16', Uint16Array: 'U16',
  Int8Array: 'I8', Uint8Array: 'U8', BigInt64Array: 'I64', BigUint64Array: 'U64',
};

/** Writes tensors (name → Tensor or {data, shape, storeAs}) and string metadata, atomically. */
export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, options?: AsyncOptions & { metadata?: Record<string, string> }): Promise<void> {
  const o = optionsArg<AsyncOptions & { metadata?: Record<string, string> }>(options);
  if (typeof path !== 'string' || path.length === 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'path must be a non-empty string');
  if (tensors === null || typeof tensors !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'tensors must be an object of name → tensor');
  const list = Object.entries(tensors).map(([name, t]) => {
    if (t === null || typeof t !== 'object' || !ArrayBuffer.isView(t.data)) {
      throw new NnscopeError('ERR_INVALID_ARGUMENT', `tensor '${name}' must have typed-array data and a shape`);
    }
    const natural = NATURAL[t.data.constructor.name];
    if (!natural) throw new NnscopeError('ERR_DTYPE', `tensor '${name}': unsupported array type ${t.data.constructor.name}`);
    checkAttached(t.data as AnyTypedArray, `tensor '${name}'`);
    const n = shapeSize(t.shape);
    if (n !== (t.data as AnyTypedArray).length) throw new NnscopeError('ERR_SHAPE', `tensor '${name}': shape [${t.shape.join(', ')}] needs ${n} elements, data has ${(t.data as AnyTypedArray).length}`);
    return { name, dtype: t.storeAs ?? natural, shape: [...t.shape], data: t.data };
  });
  const metadata = o.metadata ?? {};
  await runOp(o, (base) => native().io.writeSafetensors({ ...base, path, tensors: list, metadata }));
}
