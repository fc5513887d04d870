/**
 * Attention: exact dense flash-style attention, sparse attention over selected
 * keys, the exact log-sum-exp merge of partial results, and Squeezed Attention
 * (Hooper et al., ACL 2025) for long fixed contexts. Queries are float32
 * [Hq, Nq, d]; keys and values [Hkv, N, d] as float32, or as 16-bit patterns
 * (Uint16Array with `storage: 'float16' | 'bfloat16'`), always computed in
 * float32. Hq may be a multiple of Hkv (grouped-query attention).
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, allocate, boolean, deviceArg, finiteNumber, integer, optionsArg, tensorArg } from '../validate.js';

export type Storage = 'float32' | 'float16' | 'bfloat16';
export type KvData = Float32Array | Uint16Array;

/** Partial or final attention output: out [Hq, Nq, d] and the natural-log log-sum-exp of the scaled logits [Hq, Nq]. */
export interface AttentionResult {
  out: Tensor<Float32Array>;
  lse: Tensor<Float32Array>;
}

export interface KvOptions {
  /** How Uint16Array keys/values are stored: 'float16' (IEEE) or 'bfloat16'. Float32Array data is 'float32'. */
  storage?: Storage;
}

export interface AttentionOptions extends AsyncOptions, KvOptions {
  /** Logit scale (default 1/√d). */
  scale?: number;
  /**
   * 'auto' (default): CUDA when the addon was built with it and a GPU answers, else the CPU;
   * 'cuda' without a GPU fails with ERR_DEVICE_UNAVAILABLE and the reason. CUDA results agree
   * with the CPU's to float32 rounding.
   */
  device?: DeviceName;
}

/** @internal Shapes of a (q, k, v) triple, validated. */
export interface Shapes {
  hq: number;
  hkv: number;
  nq: number;
  n: number;
  d: number;
  storage: Storage;
  q: Float32Array;
  k: KvData;
  v: KvData;
}

/** @internal */
export function storageOf(data: KvData, storage: Storage | undefined, name: string): Storage {
  if (data instanceof Float32Array) {
    if (storage !== undefined && storage !== 'float32') throw new NnscopeError('ERR_DTYPE', `${name} is a Float32Array but storage is '${storage}'`);
    return 'float32';
  }
  if (storage !== 'float16' && storage !== 'bfloat16') {
    throw new NnscopeError('ERR_DTYPE', `${name} is a Uint16Array: say how it is stored with storage: 'float16' | 'bfloat16'`);
  }
  return storage;
}

/** @internal Validates a [heads, tokens, d] key/value tensor. */
export function kvArg(x: unknown, name: string, storage: Storage | undefined): { data: KvData; shape: [number, number, number]; storage: Storage } {
  const t = tensorArg<KvData>(x, name, { dtype: ['float32', 'uint16'], ndim: 3 });
  return { data: t.data, shape: t.shape as [number, number, number], storage: storageOf(t.data, storage, name) };
}

/** @internal */
export function qkvArgs(q: unknown, k: unknown, v: unknown, storage: Storage | undefined): Shapes {
  const Q = tensorArg<Float32Array>(q, 'q', { dtype: 'float32', ndim: 3 });
  const K = kvArg(k, 'k', storage);
  const V = kvArg(v, 'v', storage);
  if (K.storage !== V.storage) throw new NnscopeError('ERR_DTYPE', `k is ${K.storage} but v is ${V.storage}`);
  const [hq, nq, d] = Q.shape as [number, number, number];
  const [hkv, n, dk] = K.shape;
  if (V.shape[0] !== hkv || V.shape[1] !== n || V.shape[2] !== dk) {
    throw new NnscopeError('ERR_SHAPE', `v must have k's shape [${K.shape.join(', ')}] (got [${V.shape.join(', ')}])`);
  }
  if (dk !== d) throw new NnscopeError('ERR_SHAPE', `q has head dimension ${d}, k has ${dk}`);
  if (d < 1 || d > 1024) throw new NnscopeError('ERR_SHAPE', `head dimension must be in [1, 1024] (got ${d})`);
  if (hkv < 1 || hq % hkv !== 0) throw new NnscopeError('ERR_SHAPE', `query heads (${hq}) must be a multiple of key/value heads (${hkv})`);
  return { hq, hkv, nq, n, d, storage: K.storage, q: Q.data, k: K.data, v: V.data };
}

function outputs(hq: number, nq: number, d: number): { out: Float32Array; lse: Float32Array } {
  return { out: allocate(hq * nq * d, 'the attention output'), lse: allocate(hq * nq, 'the log-sum-exp') };
}

function result(o: { out: Float32Array; lse: Float32Array }, hq: number, nq: number, d: number): AttentionResult {
  return { out: new Tensor(o.out, [hq, nq, d]), lse: new Tensor(o.lse, [hq, nq]) };
}

export interface DenseOptions extends AttentionOptions {
  /** Causal masking: query i (at position queryOffset + i) sees keys 0..queryOffset + i. Default false. */
  causal?: boolean;
  /** Absolute position of the first query for causal masking (default 0). */
  queryOffset?: number;
  /** Refuse NaN/±Infinity in q with ERR_NON_FINITE (default true). Keys and values are not scanned. */
  checkFinite?: boolean;
}

/**
 * Dense attention softmax(q·kᵀ·scale)·v, flash-style (online softmax, no N×N
 * matrix), multi-threaded on the CPU or on CUDA (`device`). A query that sees no
 * key (causal) gets out = 0, lse = −Infinity.
 */
export async function dense(q: TensorLike<Float32Array>, k: TensorLike<KvData>, v: TensorLike<KvData>, options?: DenseOptions): Promise<AttentionResult> {
  const o = optionsArg<DenseOptions>(options);
  const s = qkvArgs(q, k, v, o.storage);
  const scale = finiteNumber(o.scale, 'scale', 1 / Math.sqrt(s.d));
  const causal = boolean(o.causal, 'causal', false);
  const queryOffset = integer(o.queryOffset, 'queryOffset', 0, Number.MAX_SAFE_INTEGER, 0);
  const checkFinite = boolean(o.checkFinite, 'checkFinite', true);
  const out = outputs(s.hq, s.nq, s.d);
  const device = deviceArg(o.device);
  await runOp(o, (base) => native().attention.dense({ ...base, ...s, ...out, scale, causal, queryOffset, checkFinite, device }));
  return result(out, s.hq, s.nq, s.d);
}

/** Selected key indices per group, CSR: group g attends indices[offsets[g] .. offsets[g+1]) (ascending, unique). */
export interface Selection {
  indices: Int32Array;
  offsets: ArrayLike<number>;
  /** Groups are query heads (true) or KV heads shared by their query heads (false, default). */
  perQueryHead?: boolean;
}

/** Attention of every query over its group's selected keys only (non-causal). */
export async function sparse(q: TensorLike<Float32Array>, k: TensorLike<KvData>, v: TensorLike<KvData>, selection: Selection, options?: AttentionOptions): Promise<AttentionResult> {
  const o = optionsArg<AttentionOptions>(options);
  const s = qkvArgs(q, k, v, o.storage);
  const sel = optionsArg<Selection>(selection, 'selection');
  if (!(sel.indices instanceof Int32Array)) throw new NnscopeError('ERR_DTYPE', 'selection.indices must be an Int32Array');
  const perQueryHead = boolean(sel.perQueryHead, 'selection.perQueryHead', false);
  const groups = perQueryHead ? s.hq : s.hkv;
  if (sel.offsets === undefined || sel.offsets.length !== groups + 1) {
    throw new NnscopeError('ERR_SHAPE', `selection.offsets must have ${groups + 1} entries (one per ${perQueryHead ? 'query' : 'key/value'} head, plus one)`);
  }
  const scale = finiteNumber(o.scale, 'scale', 1 / Math.sqrt(s.d));
  const out = outputs(s.hq, s.nq, s.d);
  const offsets = Float64Array.from(sel.offsets);
  const device = deviceArg(o.device);
  await runOp(o, (base) => native().attention.sparse({ ...base, ...s, ...out, scale, indices: sel.indices!, offsets, perQueryHead, device }));
  return result(out, s.hq, s.nq, s.d);
}

/**
 * The exact merge of two partial results over disjoint key sets (same queries):
 * lse = log(e^lse_a + e^lse_b), out = the lse-weighted mix. Returns a new result.
 * Always on the CPU (O(rows·d): cheaper than moving the data to a GPU).
 */
export function merge(a: AttentionResult, b: AttentionResult): AttentionResult {
  const A = tensorArg<Float32Array>(a?.out, 'a.out', { dtype: 'float32' });
  const B = tensorArg<Float32Array>(b?.out, 'b.out', { dtype: 'float32' });
  const LA = tensorArg<Float32Array>(a?.lse, 'a.lse', { dtype: 'float32' });
  const LB = tensorArg<Float32Array>(b?.lse, 'b.lse', { dtype: 'float32' });
  if (A.shape.join() !== B.shape.join() || LA.shape.join() !== LB.shape.join()) throw new NnscopeError('ERR_SHAPE', 'the two partial results have different shapes');
  const rows = LA.data.length;
  if (rows === 0 || A.data.length % rows !== 0) throw new NnscopeError('ERR_SHAPE', 'out must have rows × d entries for rows = lse.length');
  const d = A.data.length / rows;
  const out = A.data.slice();
  const lse = LA.data.slice();
  native().attention.merge({ rows, d, outA: out, lseA: lse, outB: B.data, lseB: LB.data });
  return { out: new Tensor(out, [...A.shape]), lse: new Tensor(lse, [...LA.shape]) };
}

export {
  type CalibrateOptions, type Calibration, type GroupPolicy, type KmeansOptions, type KmeansResult, type SelectBy, type SqueezeOptions,
  SqueezedContext, SqueezedDecoder, type SqueezedOptions, type SqueezedReport, kmeans, loadContext, squeeze,
} from './squeezed.js';
