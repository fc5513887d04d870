/**
 * Squeezed Attention (Hooper, Kim, Mohammadzadeh, Maheswaran, Paik, Mahoney,
 * Keutzer, Gholami; ACL 2025): the keys of a long fixed context are clustered
 * offline per head (cosine K-means, centroids the mean of the raw keys); online,
 * the centroids are scored against the queries, and exact attention runs over
 * only the keys of the clusters that matter, merged exactly with dense attention
 * over the user (and generated) tokens. The last `window` tokens of the fixed
 * context are never clustered and always attended.
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { openSafetensors, writeSafetensors } from '../io/index.js';
import { type NativeSqueezedContext, type NativeSqueezedDecoder, native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, allocate, boolean, deviceArg, finiteNumber, integer, optionsArg, tensorArg } from '../validate.js';
import { type AttentionResult, type KvData, type KvOptions, type Storage, kvArg } from './index.js';

export type GroupPolicy = 'perQueryHead' | 'shared';

export interface SqueezeOptions extends AsyncOptions, KvOptions {
  /** Centroids per head as a fraction of the clustered tokens (default 0.05, the paper's). */
  centroidFraction?: number;
  /** Centroids per head, overriding centroidFraction. */
  clusters?: number;
  /** Observation window W: the last W tokens are not clustered and always attended (default 100; at most N − 1). */
  window?: number;
  /** Lloyd iterations per head (default 20). */
  iterations?: number;
  /** K-means initialisation (default 'kmeans++'). */
  init?: 'kmeans++' | 'random';
  seed?: number;
  /** Two-level lookup: a coarse level clustered over the fine centroids (default false). */
  hierarchical?: boolean;
  /** Coarse centroids as a fraction of the clustered tokens (default 0.01). */
  coarseFraction?: number;
  coarseClusters?: number;
  /** Where K-means runs: 'auto' (default; CUDA when a GPU answers), 'cpu' or 'cuda' (the seeding stays on the CPU). */
  device?: DeviceName;
}

/** How the fixed-context keys are chosen online. */
export type SelectBy =
  | { keepFraction: number }
  | { budget: number }
  | { threshold: number }
  /** A calibrated threshold: τ_p prunes about p of the keys on the calibration queries. */
  | { quantile: number };

export interface SqueezedOptions extends AsyncOptions {
  /** Default { keepFraction: 0.1 }. */
  select?: SelectBy;
  /** Grouped-query attention: each query head selects its own keys ('perQueryHead', default) or a KV head's query heads share one selection ('shared'). */
  policy?: GroupPolicy;
  /** Hierarchical contexts: use the two-level lookup (default true). */
  hierarchical?: boolean;
  /** Coarse-level threshold τ¹, or the calibrated coarse quantile to take it from (default: the first calibrated one). */
  coarseThreshold?: number;
  coarseQuantile?: number;
  /** Logit scale (default 1/√d). */
  scale?: number;
  /** Include the selected indices (CSR) in the report (default false). */
  returnSelection?: boolean;
  /**
   * Where scoring, selection and attention run: 'auto' (default; CUDA when a GPU answers),
   * 'cpu' or 'cuda' (ERR_DEVICE_UNAVAILABLE without a GPU). A decoder's steps run on the
   * decoder's device (decoder({ device })).
   */
  device?: DeviceName;
}

/** What a squeezed call attended in the fixed context, per selection group. */
export interface SqueezedReport {
  perQueryHead: boolean;
  /** Fixed-context keys attended (window included). */
  keptKeys: Float64Array;
  /** keptKeys / N: the measured kept fraction. */
  keptFraction: Float64Array;
  centroidsScored: Float64Array;
  /** The paper's KV budget: kept fraction + centroids read / (2N). */
  kvBudget: Float64Array;
  indices?: Int32Array;
  offsets?: Float64Array;
}

export interface Calibration {
  quantiles: Float64Array;
  thresholds: Float64Array;
  coarseQuantiles: Float64Array;
  coarseThresholds: Float64Array;
  policy: GroupPolicy;
}

export interface CalibrateOptions extends AsyncOptions {
  /** Quantiles p in (0, 1) (default [0.5, 0.7, 0.8, 0.9]). */
  quantiles?: readonly number[];
  /** Hierarchical contexts: coarse-level quantiles (default [0.5]). */
  coarseQuantiles?: readonly number[];
  policy?: GroupPolicy;
  scale?: number;
  /** Where the calibration scores are computed (default 'auto'). */
  device?: DeviceName;
}

function queriesArg(q: unknown, d: number, heads: number, name = 'queries'): { data: Float32Array; hq: number; nq: number } {
  const Q = tensorArg<Float32Array>(q, name, { dtype: 'float32', ndim: 3 });
  const [hq, nq, dq] = Q.shape as [number, number, number];
  if (dq !== d) throw new NnscopeError('ERR_SHAPE', `${name} have head dimension ${dq}, the context ${d}`);
  if (hq < 1 || hq % heads !== 0) throw new NnscopeError('ERR_SHAPE', `${name} have ${hq} heads: a multiple of the context's ${heads} KV heads is needed`);
  if (nq < 1) throw new NnscopeError('ERR_SHAPE', `${name} are empty`);
  return { data: Q.data, hq, nq };
}

function policyArg(p: unknown): GroupPolicy {
  if (p === undefined) return 'perQueryHead';
  if (p !== 'perQueryHead' && p !== 'shared') throw new NnscopeError('ERR_INVALID_ARGUMENT', `policy must be 'perQueryHead' or 'shared'`);
  return p;
}

function quantileList(v: unknown, name: string, fallback: number[]): Float64Array {
  if (v === undefined) return Float64Array.from(fallback);
  if (!Array.isArray(v)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be an array of numbers in (0, 1)`);
  return Float64Array.from(v, (x, i) => {
    const p = finiteNumber(x, `${name}[${i}]`);
    if (!(p > 0 && p < 1)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}[${i}] must be in (0, 1) (got ${p})`);
    return p;
  });
}

/** A fixed context clustered for Squeezed Attention (one layer). Keeps a reference to its keys and values. */
export class SqueezedContext {
  readonly heads: number;
  readonly tokens: number;
  readonly d: number;
  readonly window: number;
  readonly clusters: number;
  readonly hierarchical: boolean;
  readonly coarseClusters: number;
  readonly storage: Storage;
  readonly keys: Tensor<KvData>;
  readonly values: Tensor<KvData>;
  readonly #handle: NativeSqueezedContext;

  /** @internal */
  constructor(handle: NativeSqueezedContext, keys: KvData, values: KvData, storage: Storage) {
    this.#handle = handle;
    const i = handle.info();
    this.heads = i.heads;
    this.tokens = i.tokens;
    this.d = i.d;
    this.window = i.window;
    this.clusters = i.clusters;
    this.hierarchical = i.hierarchical;
    this.coarseClusters = i.coarseClusters;
    this.storage = storage;
    this.keys = new Tensor(keys, [i.heads, i.tokens, i.d]);
    this.values = new Tensor(values, [i.heads, i.tokens, i.d]);
  }

  /** The calibrated thresholds (empty arrays until calibrate() or setCalibration()). */
  get calibration(): Calibration {
    return this.#handle.info().calibration;
  }

  /** K-means diagnostics per head: iterations run, empty clusters reseeded, inertia. */
  get kmeans(): { iterations: Float64Array; reseeded: Float64Array; inertia: Float64Array } {
    const i = this.#handle.info();
    return { iterations: i.kmeansIterations, reseeded: i.kmeansReseeded, inertia: i.kmeansInertia };
  }

  /**
   * Calibrates global thresholds from calibration queries [Hq, W', d] (normally
   * the queries of the window tokens): the per-key scores pooled over heads,
   * quantiles as numpy's default rule.
   */
  async calibrate(queries: TensorLike<Float32Array>, options?: CalibrateOptions): Promise<Calibration> {
    const o = optionsArg<CalibrateOptions>(options);
    const q = queriesArg(queries, this.d, this.heads);
    const args = {
      q: q.data, hq: q.hq, nq: q.nq,
      quantiles: quantileList(o.quantiles, 'quantiles', [0.5, 0.7, 0.8, 0.9]),
      coarseQuantiles: quantileList(o.coarseQuantiles, 'coarseQuantiles', [0.5]),
      policy: policyArg(o.policy),
      ...(o.scale !== undefined ? { scale: finiteNumber(o.scale, 'scale') } : {}),
      device: deviceArg(o.device),
    };
    return runOp(o, (base) => this.#handle.calibrate({ ...base, ...args }));
  }

  /** Installs thresholds computed elsewhere (e.g. pooled across layers). */
  setCalibration(c: Calibration): void {
    const x = optionsArg<Calibration>(c, 'calibration');
    const f64 = (v: unknown, name: string) => {
      if (!(v instanceof Float64Array)) throw new NnscopeError('ERR_DTYPE', `calibration.${name} must be a Float64Array`);
      return v;
    };
    this.#handle.setCalibration({
      quantiles: f64(x.quantiles, 'quantiles'), thresholds: f64(x.thresholds, 'thresholds'),
      coarseQuantiles: f64(x.coarseQuantiles ?? new Float64Array(0), 'coarseQuantiles'),
      coarseThresholds: f64(x.coarseThresholds ?? new Float64Array(0), 'coarseThresholds'),
      policy: policyArg(x.policy),
    });
  }

  /** @internal The native selection options. */
  selectArgs(o: Partial<SqueezedOptions>): Record<string, unknown> {
    const sel = optionsArg<Record<string, number>>(o.select ?? { keepFraction: 0.1 }, 'select');
    const keys = Object.keys(sel).filter((k) => sel[k] !== undefined);
    if (keys.length !== 1) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'select must have exactly one of keepFraction, budget, threshold, quantile');
    const cal = this.calibration;
    const calibrated = (qs: Float64Array, ts: Float64Array, p: number, what: string) => {
      const i = qs.indexOf(p);
      if (i < 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', `no ${what} threshold was calibrated for quantile ${p} (calibrated: [${[...qs].join(', ')}])`);
      return ts[i]!;
    };
    const args: Record<string, unknown> = { policy: policyArg(o.policy), hierarchical: boolean(o.hierarchical, 'hierarchical', true), device: deviceArg(o.device) };
    if (sel['keepFraction'] !== undefined) {
      const f = finiteNumber(sel['keepFraction'], 'select.keepFraction');
      if (f < 0 || f > 1) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'select.keepFraction must be in [0, 1]');
      Object.assign(args, { mode: 'keepFraction', keepFraction: f });
    } else if (sel['budget'] !== undefined) {
      Object.assign(args, { mode: 'budget', budget: integer(sel['budget'], 'select.budget', 0, Number.MAX_SAFE_INTEGER) });
    } else if (sel['threshold'] !== undefined) {
      Object.assign(args, { mode: 'threshold', threshold: finiteNumber(sel['threshold'], 'select.threshold') });
    } else if (sel['quantile'] !== undefined) {
      Object.assign(args, { mode: 'threshold', threshold: calibrated(cal.quantiles, cal.thresholds, finiteNumber(sel['quantile'], 'select.quantile'), 'fine') });
    } else {
      throw new NnscopeError('ERR_INVALID_ARGUMENT', 'select must have one of keepFraction, budget, threshold, quantile');
    }
    if (this.hierarchical && args['hierarchical']) {
      if (o.coarseThreshold !== undefined) args['coarseThreshold'] = finiteNumber(o.coarseThreshold, 'coarseThreshold');
      else if (o.coarseQuantile !== undefined) args['coarseThreshold'] = calibrated(cal.coarseQuantiles, cal.coarseThresholds, finiteNumber(o.coarseQuantile, 'coarseQuantile'), 'coarse');
      else if (cal.coarseThresholds.length > 0) args['coarseThreshold'] = cal.coarseThresholds[0]!;
      else throw new NnscopeError('ERR_INVALID_ARGUMENT', 'the two-level lookup needs coarseThreshold, or a calibrated coarse quantile (or hierarchical: false)');
    }
    if (o.scale !== undefined) args['scale'] = finiteNumber(o.scale, 'scale');
    return args;
  }

  /** The fixed-context keys the queries would attend (scores averaged over all queries of a group), as CSR. */
  async select(queries: TensorLike<Float32Array>, options?: SqueezedOptions): Promise<Required<Pick<SqueezedReport, 'indices' | 'offsets'>> & SqueezedReport> {
    const o = optionsArg<SqueezedOptions>(options);
    const q = queriesArg(queries, this.d, this.heads);
    const args = this.selectArgs(o);
    return (await runOp(o, (base) => this.#handle.select({ ...base, ...args, q: q.data, hq: q.hq, nq: q.nq }))) as never;
  }

  /**
   * Prefill of N_u user tokens after the fixed context: queries [Hq, N_u, d],
   * user keys/values [H, N_u, d] (float32). One selection per group from the
   * scores averaged over all user queries; sparse attention over the selected
   * fixed keys, causal dense attention over the user tokens, merged exactly.
   */
  async prefill(queries: TensorLike<Float32Array>, userKeys: TensorLike<Float32Array>, userValues: TensorLike<Float32Array>, options?: SqueezedOptions): Promise<AttentionResult & { report: SqueezedReport }> {
    const o = optionsArg<SqueezedOptions>(options);
    const q = queriesArg(queries, this.d, this.heads);
    const uk = this.#userKv(userKeys, 'userKeys', q.nq);
    const uv = this.#userKv(userValues, 'userValues', q.nq);
    const args = this.selectArgs(o);
    const out = allocate(q.hq * q.nq * this.d, 'the attention output');
    const lse = allocate(q.hq * q.nq, 'the log-sum-exp');
    const report = await runOp(o, (base) =>
      this.#handle.prefill({
        ...base, ...args, q: q.data, hq: q.hq, nq: q.nq, fixedK: this.keys.data, fixedV: this.values.data,
        userK: uk, userV: uv, out, lse, returnSelection: boolean(o.returnSelection, 'returnSelection', false),
      }),
    );
    return { out: new Tensor(out, [q.hq, q.nq, this.d]), lse: new Tensor(lse, [q.hq, q.nq]), report };
  }

  #userKv(x: unknown, name: string, tokens: number): Float32Array {
    const t = tensorArg<Float32Array>(x, name, { dtype: 'float32', ndim: 3 });
    if (t.shape[0] !== this.heads || t.shape[1] !== tokens || t.shape[2] !== this.d) {
      throw new NnscopeError('ERR_SHAPE', `${name} must be [${this.heads}, ${tokens}, ${this.d}] (got [${t.shape.join(', ')}])`);
    }
    return t.data;
  }

  /**
   * A decoder: a dense tail of user and generated tokens after this context, one
   * step per new token. Its first call binds the fixed keys/values once: on the
   * CPU a cluster-sorted copy (one more copy of K and V in memory) so each
   * selected cluster is read as one stream; on CUDA they, the clustering and the
   * tail stay in GPU memory between steps. `device`: 'auto' (default), 'cpu' or
   * 'cuda' (ERR_DEVICE_UNAVAILABLE here, at once, without a GPU).
   */
  decoder(options?: { capacity?: number; device?: DeviceName }): SqueezedDecoder {
    const o = optionsArg<{ capacity?: number; device?: DeviceName }>(options);
    const capacity = integer(o.capacity, 'capacity', 1, 1e9, 256);
    const device = native().resolveDevice(deviceArg(o.device));
    return new SqueezedDecoder(this, this.#handle.decoder(capacity), device);
  }

  /** Saves the context — keys, values, clustering and calibration — as one safetensors file. */
  async save(path: string, options?: AsyncOptions): Promise<void> {
    const a = this.#handle.exportArrays();
    const cal = this.calibration;
    const h = this.heads;
    const kvDtype = this.storage === 'float16' ? 'F16' : this.storage === 'bfloat16' ? 'BF16' : 'F32';
    const shape3 = [h, this.tokens, this.d];
    const tensors: Record<string, { data: Float32Array | Float64Array | Int32Array | Uint16Array; shape: number[]; storeAs?: 'F16' | 'BF16' | 'F32' }> = {
      keys: { data: this.keys.data, shape: shape3, storeAs: kvDtype },
      values: { data: this.values.data, shape: shape3, storeAs: kvDtype },
      centroids: { data: a.centroids, shape: [h, this.clusters, this.d] },
      labels: { data: a.labels, shape: [h, this.tokens - this.window] },
      sizes: { data: a.sizes, shape: [h, this.clusters] },
      quantiles: { data: cal.quantiles, shape: [cal.quantiles.length] },
      thresholds: { data: cal.thresholds, shape: [cal.thresholds.length] },
      coarse_quantiles: { data: cal.coarseQuantiles, shape: [cal.coarseQuantiles.length] },
      coarse_thresholds: { data: cal.coarseThresholds, shape: [cal.coarseThresholds.length] },
    };
    if (this.hierarchical) {
      tensors['coarse_centroids'] = { data: a.coarseCentroids, shape: [h, this.coarseClusters, this.d] };
      tensors['parent'] = { data: a.parent, shape: [h, this.clusters] };
      tensors['coarse_sizes'] = { data: a.coarseSizes, shape: [h, this.coarseClusters] };
    }
    const metadata = {
      format: FORMAT, version: '1', storage: this.storage, window: String(this.window),
      hierarchical: String(this.hierarchical), policy: cal.policy,
    };
    await writeSafetensors(path, tensors, { ...optionsArg<AsyncOptions>(options), metadata });
  }
}

const FORMAT = 'nnscope.squeezed-context';

/** One query per step after a squeezed context; the tail holds user and generated tokens' keys and values (float32). */
export class SqueezedDecoder {
  readonly context: SqueezedContext;
  /** The device the steps run on (resolved when the decoder was made). */
  readonly device: 'cpu' | 'cuda';
  readonly #handle: NativeSqueezedDecoder;

  /** @internal */
  constructor(context: SqueezedContext, handle: NativeSqueezedDecoder, device: 'cpu' | 'cuda') {
    this.context = context;
    this.device = device;
    this.#handle = handle;
  }

  /** The fixed context and device every native call carries (the first one binds them). */
  #bind(): Record<string, unknown> {
    return { fixedK: this.context.keys.data, fixedV: this.context.values.data, device: this.device };
  }

  /** Tokens in the dense tail. */
  get tokens(): number {
    return this.#handle.tokens;
  }

  #kv(x: unknown, name: string): { data: Float32Array; tokens: number } {
    const c = this.context;
    const t = tensorArg<Float32Array>(x, name, { dtype: 'float32', ndim: 3 });
    if (t.shape[0] !== c.heads || t.shape[2] !== c.d) throw new NnscopeError('ERR_SHAPE', `${name} must be [${c.heads}, tokens, ${c.d}] (got [${t.shape.join(', ')}])`);
    return { data: t.data, tokens: t.shape[1]! };
  }

  /** Appends tokens' keys and values [H, T, d] to the tail (e.g. the user prompt after prefill). Resolves to the tail length. */
  async append(keys: TensorLike<Float32Array>, values: TensorLike<Float32Array>, options?: AsyncOptions): Promise<number> {
    const k = this.#kv(keys, 'keys');
    const v = this.#kv(values, 'values');
    if (k.tokens !== v.tokens) throw new NnscopeError('ERR_SHAPE', `keys have ${k.tokens} tokens, values ${v.tokens}`);
    const args = { ...this.#bind(), k: k.data, v: v.data, tokens: k.tokens };
    return runOp(optionsArg<AsyncOptions>(options), (base) => this.#handle.append({ ...base, ...args }));
  }

  /**
   * One decode step: the new token's key and value [H, 1, d] (if given) join the
   * tail first, then queries [Hq, 1, d] attend the selected fixed keys and the
   * whole tail.
   */
  async step(queries: TensorLike<Float32Array>, keys?: TensorLike<Float32Array>, values?: TensorLike<Float32Array>, options?: SqueezedOptions): Promise<AttentionResult & { report: SqueezedReport }> {
    const c = this.context;
    const o = optionsArg<SqueezedOptions>(options);
    const q = queriesArg(queries, c.d, c.heads);
    if ((keys === undefined) !== (values === undefined)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'pass both keys and values, or neither');
    const kv: Record<string, unknown> = {};
    if (keys !== undefined) {
      const k = this.#kv(keys, 'keys');
      const v = this.#kv(values, 'values');
      if (k.tokens !== v.tokens) throw new NnscopeError('ERR_SHAPE', `keys have ${k.tokens} tokens, values ${v.tokens}`);
      Object.assign(kv, { k: k.data, v: v.data, tokens: k.tokens });
    }
    const args = c.selectArgs(o);
    const out = allocate(q.hq * q.nq * c.d, 'the attention output');
    const lse = allocate(q.hq * q.nq, 'the log-sum-exp');
    const report = await runOp(o, (base) =>
      this.#handle.step({
        ...base, ...args, ...kv, ...this.#bind(), q: q.data, hq: q.hq, nq: q.nq, out, lse,
        returnSelection: boolean(o.returnSelection, 'returnSelection', false),
      }),
    );
    return { out: new Tensor(out, [q.hq, q.nq, c.d]), lse: new Tensor(lse, [q.hq, q.nq]), report };
  }

  /** Empties the tail. */
  clear(): void {
    this.#handle.clear();
  }
}

/** Clusters a fixed context's keys [H, N, d] (values [H, N, d] are kept with it) for Squeezed Attention. */
export async function squeeze(keys: TensorLike<KvData>, values: TensorLike<KvData>, options?: SqueezeOptions): Promise<SqueezedContext> {
  const o = optionsArg<SqueezeOptions>(options);
  const K = kvArg(keys, 'keys', o.storage);
  const V = kvArg(values, 'values', o.storage);
  if (K.storage !== V.storage) throw new NnscopeError('ERR_DTYPE', `keys are ${K.storage} but values are ${V.storage}`);
  if (K.shape.join() !== V.shape.join()) throw new NnscopeError('ERR_SHAPE', `values must have the keys' shape [${K.shape.join(', ')}]`);
  const [hkv, n, d] = K.shape;
  if (hkv < 1 || n < 1 || d < 1) throw new NnscopeError('ERR_SHAPE', `keys must be non-empty [H, N, d] (got [${K.shape.join(', ')}])`);
  const frac = (x: unknown, name: string, fb: number) => {
    const f = finiteNumber(x, name, fb);
    if (!(f > 0 && f <= 1)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be in (0, 1] (got ${f})`);
    return f;
  };
  const init = o.init ?? 'kmeans++';
  if (init !== 'kmeans++' && init !== 'random') throw new NnscopeError('ERR_INVALID_ARGUMENT', `init must be 'kmeans++' or 'random'`);
  const args = {
    k: K.data, v: V.data, storage: K.storage, hkv, n, d, init,
    centroidFraction: frac(o.centroidFraction, 'centroidFraction', 0.05),
    window: integer(o.window, 'window', 0, Number.MAX_SAFE_INTEGER, 100),
    iterations: integer(o.iterations, 'iterations', 0, 1e6, 20),
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
    hierarchical: boolean(o.hierarchical, 'hierarchical', false),
    coarseFraction: frac(o.coarseFraction, 'coarseFraction', 0.01),
    ...(o.clusters !== undefined ? { clusters: integer(o.clusters, 'clusters', 1, 2 ** 31 - 1) } : {}),
    ...(o.coarseClusters !== undefined ? { coarseClusters: integer(o.coarseClusters, 'coarseClusters', 1, 2 ** 31 - 1) } : {}),
    device: deviceArg(o.device),
  };
  const handle = await runOp(o, (base) => native().attention.squeeze({ ...base, ...args }));
  return new SqueezedContext(handle, K.data, V.data, K.storage);
}

/** Loads a context saved by SqueezedContext.save (validated: a corrupt or inconsistent file fails with ERR_FORMAT / ERR_SHAPE). */
export async function loadContext(path: string, options?: AsyncOptions): Promise<SqueezedContext> {
  const o = optionsArg<AsyncOptions>(options);
  const file = await openSafetensors(path, o);
  if (file.metadata['format'] !== FORMAT) throw new NnscopeError('ERR_FORMAT', `${path} is not an nnscope squeezed context (metadata.format is ${JSON.stringify(file.metadata['format'])})`);
  const storage = file.metadata['storage'] as Storage;
  if (storage !== 'float32' && storage !== 'float16' && storage !== 'bfloat16') throw new NnscopeError('ERR_FORMAT', `${path}: unknown storage ${JSON.stringify(storage)}`);
  const hierarchical = file.metadata['hierarchical'] === 'true';
  const want: Record<string, string> = { keys: storage === 'float32' ? 'F32' : storage === 'float16' ? 'F16' : 'BF16', centroids: 'F32', labels: 'I32', sizes: 'I32', quantiles: 'F64', thresholds: 'F64', coarse_quantiles: 'F64', coarse_thresholds: 'F64' };
  want['values'] = want['keys']!;
  if (hierarchical) Object.assign(want, { coarse_centroids: 'F32', parent: 'I32', coarse_sizes: 'I32' });
  const t: Record<string, Tensor<Float32Array | Float64Array | Int32Array | Uint16Array>> = {};
  for (const [name, dtype] of Object.entries(want)) {
    if (!file.has(name)) throw new NnscopeError('ERR_FORMAT', `${path} has no tensor '${name}'`);
    if (file.entry(name).dtype !== dtype) throw new NnscopeError('ERR_FORMAT', `${path}: '${name}' is ${file.entry(name).dtype}, expected ${dtype}`);
    t[name] = (await file.readRaw(name, o)) as Tensor<Float32Array>;
  }
  const ks = t['keys']!.shape;
  const cs = t['centroids']!.shape;
  if (ks.length !== 3 || cs.length !== 3 || t['values']!.shape.join() !== ks.join()) throw new NnscopeError('ERR_FORMAT', `${path}: keys/values/centroids have inconsistent ranks or shapes`);
  const window = Number(file.metadata['window']);
  if (!Number.isInteger(window) || window < 0) throw new NnscopeError('ERR_FORMAT', `${path}: bad window ${JSON.stringify(file.metadata['window'])}`);
  const policy = file.metadata['policy'] === 'shared' ? 'shared' : 'perQueryHead';
  const handle = native().attention.contextFromArrays({
    storage, heads: ks[0]!, tokens: ks[1]!, d: ks[2]!, window, clusters: cs[1]!,
    centroids: t['centroids']!.data, labels: t['labels']!.data, sizes: t['sizes']!.data,
    hierarchical, coarseClusters: hierarchical ? t['coarse_centroids']!.shape[1]! : 0,
    coarseCentroids: t['coarse_centroids']?.data ?? new Float32Array(0), parent: t['parent']?.data ?? new Int32Array(0), coarseSizes: t['coarse_sizes']?.data ?? new Int32Array(0),
    quantiles: t['quantiles']!.data, thresholds: t['thresholds']!.data, coarseQuantiles: t['coarse_quantiles']!.data, coarseThresholds: t['coarse_thresholds']!.data, policy,
  } as never);
  return new SqueezedContext(handle, t['keys']!.data as KvData, t['values']!.data as KvData, storage);
}

export interface KmeansOptions extends AsyncOptions {
  clusters: number;
  /** Lloyd iterations cap (default 20). */
  iterations?: number;
  /** 'kmeans++' (default), 'random', or initial centres [clusters, d] in the clustered space (unit rows for cosine). */
  init?: 'kmeans++' | 'random' | TensorLike<Float32Array>;
  seed?: number;
  /** Cluster the L2-normalised rows (default true); centroids are the means of the raw rows. */
  cosine?: boolean;
  /** Where Lloyd runs: 'auto' (default), 'cpu' or 'cuda' (the seeding stays on the CPU). */
  device?: DeviceName;
}

export interface KmeansResult {
  centroids: Tensor<Float32Array>;
  labels: Int32Array;
  sizes: Int32Array;
  /** In the space clustered (unit vectors when cosine). */
  inertia: number;
  iterations: number;
  reseeded: number;
  converged: boolean;
  /** The assignment inertia of each iteration (non-increasing). */
  history: Float64Array;
}

/** K-means (Lloyd; tiled distance GEMM with a fused argmin) of the rows of x [n, d]; seeded and deterministic. */
export async function kmeans(x: TensorLike<Float32Array>, options: KmeansOptions): Promise<KmeansResult> {
  const o = optionsArg<KmeansOptions>(options);
  const X = tensorArg<Float32Array>(x, 'x', { dtype: 'float32', ndim: 2 });
  const [n, d] = X.shape as [number, number];
  if (n < 1 || d < 1) throw new NnscopeError('ERR_SHAPE', `x must be a non-empty [n, d] matrix (got [${X.shape.join(', ')}])`);
  const clusters = integer(o.clusters, 'clusters', 1, 2 ** 31 - 1);
  let init: string = 'kmeans++';
  let initial: Float32Array | undefined;
  if (typeof o.init === 'object' && o.init !== null) {
    const I = tensorArg<Float32Array>(o.init, 'init', { dtype: 'float32', ndim: 2 });
    if (clusters > n) throw new NnscopeError('ERR_INVALID_ARGUMENT', `initial centres need clusters ≤ n (${clusters} > ${n})`);
    if (I.shape[0] !== clusters || I.shape[1] !== d) throw new NnscopeError('ERR_SHAPE', `init must be [${clusters}, ${d}] (got [${I.shape.join(', ')}])`);
    initial = I.data;
  } else if (o.init !== undefined) {
    if (o.init !== 'kmeans++' && o.init !== 'random') throw new NnscopeError('ERR_INVALID_ARGUMENT', `init must be 'kmeans++', 'random' or a [clusters, d] tensor`);
    init = o.init;
  }
  const args = {
    x: X.data, n, d, init, clusters, ...(initial ? { initial } : {}),
    iterations: integer(o.iterations, 'iterations', 0, 1e6, 20),
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
    cosine: boolean(o.cosine, 'cosine', true),
    device: deviceArg(o.device),
  };
  const r = await runOp(o, (base) => native().attention.kmeans({ ...base, ...args }));
  return { ...r, centroids: new Tensor(r.centroids, [r.clusters, d]) };
}

