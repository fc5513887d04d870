/**
 * Loss landscapes L(θ₀ + Σ_i a_i d_i) over k directions d_i: top-k Hessian
 * eigenvectors, seeded Gaussian or the caller's own; normalised per layer
 * (Landscaper) or per filter (Li et al. 2018); sampled on regular steps^k grids
 * (the topology family's index layout) or scattered in the box; saved to and
 * loaded from safetensors.
 *
 * Coordinates. A point's coordinates a are the exact multipliers of the stored
 * directions: θ = θ₀ + Σ_i a_i·directions[i], evaluated by Objective.lossGrid
 * (float32 θ). With `layer` normalisation every tensor of d_i has the norm of
 * θ₀'s tensor, so a = 0.01 moves each layer by 1 % of its norm.
 *
 * Grids (`steps` s per axis, `distance` r): spacing 'linspace' (default) puts
 * coordinate i at a(i) = r·(2i − (s−1))/(s−1), i.e. s points from −r to +r with
 * a(i) = −a(s−1−i) exactly and an exact 0 at the centre of an odd grid (the axis
 * labels the reference tools report); spacing 'landscaper' puts it at
 * a(i) = r·2·(i − ⌊s/2⌋)/s, the displacement Landscaper actually evaluates (its
 * step 2r/s, ±20 steps for s = 41, so the edge is at ±0.976·r). Point n of the
 * grid is row-major with the last axis fastest: n = ((i_0·s + i_1)·s + …), the
 * layout of native/core/topology/graph.h, and coordinates[n] = (a(i_0), …).
 */
import { type AsyncOptions, type ProgressEvent, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { eigenpairs, modelOperator } from '../hessian/index.js';
import { openSafetensors, writeSafetensors } from '../io/index.js';
import type { Objective, ParamEntry } from '../models/index.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, boolean, callbackArg, deviceArg, finiteNumber, integer, optionsArg, signalArg, tensorArg } from '../validate.js';

export type Normalization = 'none' | 'layer' | 'filter';
/** What happens to rank-1 tensors (biases): left alone, zeroed, or scaled as one tensor to θ₀'s bias norm. */
export type BiasHandling = 'keep' | 'zero' | 'normalize';
export type Spacing = 'linspace' | 'landscaper';
export type Sampling = 'grid' | 'uniform' | 'lhs';
export type DirectionMethod = 'hessian' | 'random' | 'given';

/** Grids are refused above this many points unless `maxPoints` says otherwise (ERR_TOO_LARGE). */
export const DEFAULT_MAX_POINTS = 1 << 24;
const MAX_INT = 2 ** 31 - 1;
const FORMAT = 'nnscope.landscape';

interface NativeLandscape {
  normalize(o: AsyncOptions & { theta0: Float32Array; dirs: Float32Array; k: number; layout: { offset: number; shape: number[] }[]; normalization: Normalization; biases: BiasHandling }): Promise<void>;
  orthonormalize(o: AsyncOptions & { dirs: Float32Array | Float64Array; k: number; scaleTo?: Float32Array }): Promise<void>;
  random(o: AsyncOptions & { out: Float32Array; k: number; seed: number }): Promise<void>;
  gridPoints(o: { k: number; steps: number; maxPoints: number }): number;
  gridAxis(o: { steps: number; distance: number; spacing: Spacing }): Float64Array;
  gridCoords(o: AsyncOptions & { out: Float32Array; k: number; steps: number; distance: number; spacing: Spacing; begin: number }): Promise<void>;
  scatterCoords(o: AsyncOptions & { out: Float32Array; k: number; distance: number; method: 'uniform' | 'lhs'; seed: number }): Promise<void>;
}

function binding(): NativeLandscape {
  return (native() as unknown as { landscape: NativeLandscape }).landscape;
}

function objectiveArg(objective: unknown): Objective {
  if (objective === null || typeof objective !== 'object' || typeof (objective as { nativeHandle?: unknown }).nativeHandle !== 'function') {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', 'objective must be an nnscope models Objective');
  }
  return objective as Objective;
}

function thetaArg(theta: unknown, dim: number): Float32Array {
  if (!(theta instanceof Float32Array)) throw new NnscopeError('ERR_DTYPE', `theta0 must be a Float32Array of ${dim} parameters`);
  if (theta.length !== dim) throw new NnscopeError('ERR_SHAPE', `theta0 has ${theta.length} entries, the model has ${dim} parameters`);
  return theta;
}

function directionsArg(d: unknown, dim: number): Tensor<Float32Array> {
  const D = tensorArg<Float32Array>(d, 'directions', { dtype: 'float32', ndim: 2 });
  if (D.shape[1] !== dim) throw new NnscopeError('ERR_SHAPE', `directions must be k×${dim} (got [${D.shape.join(', ')}])`);
  return new Tensor(D.data, [D.shape[0]!, dim]);
}

function normalizationArg(v: unknown): Normalization {
  if (v === undefined) return 'layer';
  if (v === 'none' || v === 'layer' || v === 'filter') return v;
  throw new NnscopeError('ERR_INVALID_ARGUMENT', `normalization must be 'none', 'layer' or 'filter'`);
}

function biasesArg(v: unknown, n: Normalization): BiasHandling {
  if (v === undefined) return n === 'layer' ? 'normalize' : n === 'filter' ? 'zero' : 'keep';
  if (v === 'keep' || v === 'zero' || v === 'normalize') return v;
  throw new NnscopeError('ERR_INVALID_ARGUMENT', `biases must be 'keep', 'zero' or 'normalize'`);
}

function seedArg(v: unknown, name = 'seed'): number {
  return integer(v, name, 0, Number.MAX_SAFE_INTEGER, 0);
}

// ---------------------------------------------------------------- directions

export interface NormalizeOptions extends AsyncOptions {
  /**
   * 'layer' (default): every tensor of d scaled to the norm of θ₀'s tensor,
   * d_t·‖θ_t‖/(‖d_t‖ + 1e-10) — Landscaper's and Li et al.'s "layer".
   * 'filter': every filter (row of a [out, in] weight, slice along the first axis
   * in general) scaled to the norm of θ₀'s row (Li et al. 2018). 'none': unchanged.
   */
  normalization?: Normalization;
  /**
   * Rank-1 tensors (biases): 'keep', 'zero' (Li et al.'s default for filter
   * plots), or 'normalize' (the whole bias vector as one unit, scaled to ‖θ₀_b‖).
   * Default 'normalize' for 'layer' (Landscaper normalises every tensor), 'zero'
   * for 'filter', 'keep' for 'none'.
   */
  biases?: BiasHandling;
}

/**
 * Normalises k directions (k×P float32) against θ₀ per the model layout; returns
 * a new tensor. The norms are computed in float64, natively.
 */
export async function normalize(
  theta0: Float32Array, directions: TensorLike<Float32Array>, layout: readonly ParamEntry[], options?: NormalizeOptions,
): Promise<Tensor<Float32Array>> {
  const o = optionsArg<NormalizeOptions>(options);
  if (!(theta0 instanceof Float32Array)) throw new NnscopeError('ERR_DTYPE', 'theta0 must be a Float32Array');
  const D = directionsArg(directions, theta0.length);
  if (!Array.isArray(layout)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'layout must be an array of {offset, shape}');
  const normalization = normalizationArg(o.normalization);
  const biases = biasesArg(o.biases, normalization);
  const out = D.data.slice();
  const k = D.shape[0]!;
  const lay = layout.map((e) => ({ offset: e.offset, shape: [...e.shape] }));
  await runOp(o, (base) => binding().normalize({ ...base, theta0, dirs: out, k, layout: lay, normalization, biases }));
  return new Tensor(out, [k, theta0.length]);
}

/**
 * Rows made orthonormal by modified Gram–Schmidt (two passes, float64); returns a
 * new tensor of the input's dtype. A Float64Array result has Gram = I to
 * rounding (~1e-15); a Float32Array one to float32 rounding. Linearly dependent
 * or zero rows → ERR_INVALID_ARGUMENT.
 */
export async function orthonormalize<A extends Float32Array | Float64Array>(directions: TensorLike<A>, options?: AsyncOptions): Promise<Tensor<A>> {
  const o = optionsArg<AsyncOptions>(options);
  const D = tensorArg<A>(directions, 'directions', { dtype: ['float32', 'float64'], ndim: 2 });
  const [k, P] = D.shape as [number, number];
  if (k < 1 || P < 1) throw new NnscopeError('ERR_SHAPE', `directions must be k×P with k, P ≥ 1 (got [${k}, ${P}])`);
  if (k > P) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${k} directions in ${P} dimensions cannot be orthonormal`);
  const out = D.data.slice() as A;
  await runOp(o, (base) => binding().orthonormalize({ ...base, dirs: out, k }));
  return new Tensor(out, [k, P]);
}

/** k seeded standard-normal directions of P entries (row i: Philox stream i of the seed). */
export async function randomDirections(k: number, P: number, seed = 0, options?: AsyncOptions): Promise<Tensor<Float32Array>> {
  const o = optionsArg<AsyncOptions>(options);
  const kk = integer(k, 'k', 1, 1024);
  const pp = integer(P, 'P', 1, Number.MAX_SAFE_INTEGER);
  if (kk * pp > 2 ** 32) throw new NnscopeError('ERR_TOO_LARGE', `${kk}×${pp} directions are too large`);
  const out = new Float32Array(kk * pp);
  await runOp(o, (base) => binding().random({ ...base, out, k: kk, seed: seedArg(seed) }));
  return new Tensor(out, [kk, pp]);
}

export type DirectionSpec =
  | {
      /** Top-k Hessian eigenvectors at θ₀ (hessian.eigenpairs on hessian.modelOperator). */
      kind: 'hessian';
      k: number;
      seed?: number;
      /** Passed to eigenpairs (its defaults: 1e-5 Lanczos, 1e-3 power). */
      tol?: number;
      /** 'lanczos' (default) or 'power' (PyHessian's power iteration). */
      method?: 'lanczos' | 'power';
      /** Default 'magnitude' (largest |λ|, PyHessian's target). */
      which?: 'largest' | 'smallest' | 'magnitude';
      maxIter?: number;
      maxProducts?: number;
      /** A fixed mini-batch for the Hessian (MLP objectives), as in hessian.modelOperator. */
      batch?: readonly number[] | { size: number; seed?: number };
    }
  | { kind: 'random'; k: number; seed?: number }
  | { kind: 'given'; directions: TensorLike<Float32Array> };

export interface DirectionOptions extends NormalizeOptions {
  /**
   * Re-orthonormalise after normalising (modified Gram–Schmidt twice, float64).
   * The rows are then scaled to ‖θ₀‖ (unit length for normalization 'none'), so
   * coordinates keep their meaning relative to θ₀. Default false. Normalised
   * (or re-orthonormalised) Hessian eigenvectors are no longer eigenvectors.
   */
  orthonormalize?: boolean;
  device?: DeviceName;
}

/** Directions ready for sampling, with how they were made. */
export interface Directions {
  /** k×P float32. */
  directions: Tensor<Float32Array>;
  method: DirectionMethod;
  /** The seed of the random / Lanczos start vectors (null for 'given'). */
  seed: number | null;
  normalization: Normalization;
  biases: BiasHandling;
  orthonormalized: boolean;
  /** Hessian only: the eigenvalues and residuals ‖Hv − λv‖ of the unnormalised eigenvectors. */
  eigenvalues: Float64Array | null;
  residuals: Float64Array | null;
}

/** Makes k directions at θ₀: Hessian eigenvectors, seeded random, or the caller's own; then normalises. */
export async function directions(objective: Objective, theta0: Float32Array, spec: DirectionSpec, options?: DirectionOptions): Promise<Directions> {
  const f = objectiveArg(objective);
  const theta = thetaArg(theta0, f.dim);
  const s = optionsArg<DirectionSpec>(spec, 'spec') as DirectionSpec;
  const o = optionsArg<DirectionOptions>(options);
  const normalization = normalizationArg(o.normalization);
  const biases = biasesArg(o.biases, normalization);
  const ortho = boolean(o.orthonormalize, 'orthonormalize', false);
  const device = deviceArg(o.device);
  const async: AsyncOptions = { ...(o.signal ? { signal: o.signal } : {}) };
  let D: Tensor<Float32Array>;
  let seed: number | null = null;
  let eigenvalues: Float64Array | null = null;
  let residuals: Float64Array | null = null;
  if (s.kind === 'hessian') {
    const k = integer(s.k, 'k', 1, Math.min(f.dim, 1024));
    seed = seedArg(s.seed);
    const op = modelOperator(f, theta, s.batch !== undefined ? { batch: s.batch } : {});
    const r = await eigenpairs(op, {
      ...async, ...(o.onProgress ? { onProgress: o.onProgress } : {}), device, k, seed,
      method: s.method ?? 'lanczos', which: s.which ?? 'magnitude',
      ...(s.tol !== undefined ? { tol: s.tol } : {}),
      ...(s.maxIter !== undefined ? { maxIter: s.maxIter } : {}),
      ...(s.maxProducts !== undefined ? { maxProducts: s.maxProducts } : {}),
    });
    if (!r.vectors || r.values.length < k) throw new NnscopeError('ERR_INTERNAL', `the eigensolver returned ${r.values.length} of ${k} eigenvectors`);
    D = new Tensor((r.vectors.data as Float32Array).slice(), [k, f.dim]);
    eigenvalues = r.values;
    residuals = r.residuals;
  } else if (s.kind === 'random') {
    seed = seedArg(s.seed);
    D = await randomDirections(integer(s.k, 'k', 1, 1024), f.dim, seed, async);
  } else if (s.kind === 'given') {
    const G = directionsArg(s.directions, f.dim);
    if (G.shape[0]! < 1) throw new NnscopeError('ERR_SHAPE', 'directions must have at least one row');
    D = new Tensor(G.data.slice(), G.shape);
  } else {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', `spec.kind must be 'hessian', 'random' or 'given'`);
  }
  const k = D.shape[0]!;
  if (normalization !== 'none' || biases !== 'keep') {
    const lay = f.layout.map((e) => ({ offset: e.offset, shape: [...e.shape] }));
    await runOp(async, (base) => binding().normalize({ ...base, theta0: theta, dirs: D.data, k, layout: lay, normalization, biases }));
  }
  if (ortho) {
    if (k > f.dim) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${k} directions in ${f.dim} dimensions cannot be orthonormal`);
    await runOp(async, (base) => binding().orthonormalize({ ...base, dirs: D.data, k, ...(normalization !== 'none' ? { scaleTo: theta } : {}) }));
  }
  return { directions: D, method: s.kind, seed, normalization, biases, orthonormalized: ortho, eigenvalues, residuals };
}

// ---------------------------------------------------------------- sampling

export interface SampleOptions extends AsyncOptions {
  /** 'grid' (default): steps^k points; 'uniform' or 'lhs' (Latin hypercube): `samples` seeded points in the box. */
  sampling?: Sampling;
  /** Half-width r of the box [−r, r]^k (default 0.01). */
  distance?: number;
  /** Grid points per axis (default 41, ≥ 2). Grids take k = 1…4 directions. */
  steps?: number;
  /** Grid coordinate rule (default 'linspace'; see the module doc). */
  spacing?: Spacing;
  /** Scattered samples: how many (required for 'uniform' / 'lhs'). */
  samples?: number;
  /** Scattered samples: seed (default 0). */
  seed?: number;
  /** Points per lossGrid call (default 8192): progress and cancellation granularity. */
  chunkSize?: number;
  /** Refuse more points than this with ERR_TOO_LARGE (default 2^24). */
  maxPoints?: number;
  device?: DeviceName;
  /** Model description stored in the provenance (default: derived from the objective). */
  model?: string;
}

export interface Provenance {
  /** How the directions were made. */
  method: DirectionMethod;
  /** Direction seed (hessian / random), else null. */
  seed: number | null;
  sampling: Sampling;
  spacing: Spacing | null;
  distance: number;
  steps: number | null;
  /** Scattered samples: their seed, else null. */
  sampleSeed: number | null;
  model: string;
  /** ISO 8601 time the landscape was computed. */
  date: string;
  /** The format version of saved files. */
  version: 1;
}

/** A sampled loss landscape. */
export class Landscape {
  /** Grid shape [steps, …] (k entries), or null for scattered samples. */
  readonly dims: number[] | null;
  /** Grid: the axis coordinates in float64 (before the float32 rounding of `coordinates`); null when scattered. */
  readonly axis: Float64Array | null;
  /**
   * n×k float32: the exact multipliers used, θ = θ₀ + Σ_i a_i·directions[i]
   * (grid rows in the grid's row-major order).
   */
  readonly coordinates: Tensor<Float32Array>;
  /** n losses (float64 accumulations of float32 losses). */
  readonly losses: Float64Array;
  /** k×P float32, as used (after normalisation). */
  readonly directions: Tensor<Float32Array>;
  readonly theta0: Float32Array;
  readonly normalization: Normalization;
  readonly biases: BiasHandling;
  readonly orthonormalized: boolean;
  /** Hessian directions: the eigenvalues of the (unnormalised) eigenvectors; else null. */
  readonly eigenvalues: Float64Array | null;
  readonly provenance: Readonly<Provenance>;

  constructor(init: {
    dims: number[] | null; axis: Float64Array | null; coordinates: Tensor<Float32Array>; losses: Float64Array;
    directions: Tensor<Float32Array>; theta0: Float32Array; normalization: Normalization; biases: BiasHandling;
    orthonormalized: boolean; eigenvalues: Float64Array | null; provenance: Provenance;
  }) {
    this.dims = init.dims;
    this.axis = init.axis;
    this.coordinates = init.coordinates;
    this.losses = init.losses;
    this.directions = init.directions;
    this.theta0 = init.theta0;
    this.normalization = init.normalization;
    this.biases = init.biases;
    this.orthonormalized = init.orthonormalized;
    this.eigenvalues = init.eigenvalues;
    this.provenance = Object.freeze({ ...init.provenance });
  }

  /** Number of directions. */
  get k(): number {
    return this.directions.shape[0]!;
  }

  /** Number of points. */
  get points(): number {
    return this.losses.length;
  }

  /**
   * Writes safetensors: losses F64 [n], coordinates F32 [n, k], directions F32
   * [k, P], theta0 F32 [P], axis F64 [steps] (grids), eigenvalues F64 [k]
   * (Hessian directions); metadata format 'nnscope.landscape', dims, normalization,
   * biases, orthonormalized and the provenance as JSON. Exact round trip.
   */
  async save(path: string, options?: AsyncOptions): Promise<void> {
    const [n, k] = this.coordinates.shape as [number, number];
    const tensors: Record<string, { data: Float32Array | Float64Array; shape: number[] }> = {
      losses: { data: this.losses, shape: [n] },
      coordinates: { data: this.coordinates.data, shape: [n, k] },
      directions: { data: this.directions.data, shape: [k, this.theta0.length] },
      theta0: { data: this.theta0, shape: [this.theta0.length] },
    };
    if (this.axis) tensors['axis'] = { data: this.axis, shape: [this.axis.length] };
    if (this.eigenvalues) tensors['eigenvalues'] = { data: this.eigenvalues, shape: [this.eigenvalues.length] };
    const metadata = {
      format: FORMAT,
      version: '1',
      dims: JSON.stringify(this.dims),
      normalization: this.normalization,
      biases: this.biases,
      orthonormalized: String(this.orthonormalized),
      provenance: JSON.stringify(this.provenance),
    };
    await writeSafetensors(path, tensors, { ...optionsArg<AsyncOptions>(options), metadata });
  }

  /** Reads a file written by save(). Anything missing or inconsistent → ERR_FORMAT. */
  static async load(path: string, options?: AsyncOptions): Promise<Landscape> {
    const o = optionsArg<AsyncOptions>(options);
    const file = await openSafetensors(path, o);
    const bad = (why: string): never => {
      throw new NnscopeError('ERR_FORMAT', `${path} is not an nnscope landscape: ${why}`);
    };
    const m = file.metadata;
    if (m['format'] !== FORMAT) bad(`metadata format is ${JSON.stringify(m['format'])}`);
    if (m['version'] !== '1') bad(`unsupported version ${JSON.stringify(m['version'])}`);
    const json = (key: string): unknown => {
      try {
        return JSON.parse(m[key] ?? '');
      } catch {
        return bad(`metadata '${key}' is not valid JSON`);
      }
    };
    const want = async (name: string, dtype: 'F32' | 'F64', rank: number, optional = false): Promise<Float32Array | Float64Array | null> => {
      if (!file.has(name)) return optional ? null : bad(`no tensor '${name}'`);
      const e = file.entry(name);
      if (e.dtype !== dtype || e.shape.length !== rank) bad(`'${name}' is ${e.dtype} [${e.shape.join(', ')}], expected ${dtype} of rank ${rank}`);
      return (await file.read(name, { ...o, dtype: dtype === 'F64' ? 'float64' : 'float32' })).data;
    };
    const losses = (await want('losses', 'F64', 1)) as Float64Array;
    const coordinates = (await want('coordinates', 'F32', 2)) as Float32Array;
    const dirs = (await want('directions', 'F32', 2)) as Float32Array;
    const theta0 = (await want('theta0', 'F32', 1)) as Float32Array;
    const axis = (await want('axis', 'F64', 1, true)) as Float64Array | null;
    const eigenvalues = (await want('eigenvalues', 'F64', 1, true)) as Float64Array | null;
    const n = losses.length;
    const P = theta0.length;
    const [cn, k] = file.entry('coordinates').shape as [number, number];
    const [dk, dP] = file.entry('directions').shape as [number, number];
    if (cn !== n || dk !== k || dP !== P || k < 1) bad(`inconsistent shapes (losses ${n}, coordinates [${cn}, ${k}], directions [${dk}, ${dP}], theta0 ${P})`);
    const dims = json('dims');
    if (dims !== null) {
      if (!Array.isArray(dims) || dims.length !== k || !dims.every((d) => Number.isInteger(d) && d >= 2) || dims.reduce((a: number, b: number) => a * b, 1) !== n) {
        bad(`dims ${JSON.stringify(dims)} do not match ${n} points in ${k} directions`);
      }
      if (!axis || axis.length !== (dims as number[])[0]) bad('a grid needs its axis');
    }
    if (eigenvalues && eigenvalues.length !== k) bad(`${eigenvalues.length} eigenvalues for ${k} directions`);
    const normalization = m['normalization'];
    const biases = m['biases'];
    if (normalization !== 'none' && normalization !== 'layer' && normalization !== 'filter') bad(`unknown normalization ${JSON.stringify(normalization)}`);
    if (biases !== 'keep' && biases !== 'zero' && biases !== 'normalize') bad(`unknown biases ${JSON.stringify(biases)}`);
    if (m['orthonormalized'] !== 'true' && m['orthonormalized'] !== 'false') bad('orthonormalized must be true or false');
    const provenance = json('provenance') as Provenance;
    if (provenance === null || typeof provenance !== 'object' || typeof provenance.distance !== 'number' || typeof provenance.method !== 'string') bad('incomplete provenance');
    return new Landscape({
      dims: dims as number[] | null, axis, coordinates: new Tensor(coordinates, [n, k]), losses,
      directions: new Tensor(dirs, [k, P]), theta0, normalization: normalization as Normalization, biases: biases as BiasHandling,
      orthonormalized: m['orthonormalized'] === 'true', eigenvalues, provenance,
    });
  }
}

/** A short description of an objective for the provenance: kind, widths, the PINN's β. */
export function describeModel(objective: Objective): string {
  const f = objectiveArg(objective);
  const kind = f.nativeHandle().kind;
  const weights = f.layout.filter((e) => e.shape.length === 2);
  const widths = weights.length ? [weights[0]!.shape[1]!, ...weights.map((e) => e.shape[0]!)] : [];
  const spec = (f as { spec?: { beta?: number } }).spec;
  const extra = kind === 'pinn' ? ` beta=${spec?.beta ?? 1}` : ` samples=${f.samples}`;
  return `${kind} widths=${widths.join('-')}${extra} P=${f.dim}`;
}

/**
 * Samples L(θ₀ + Σ a_i d_i) on a grid or at scattered points, through
 * Objective.lossGrid in chunks (progress in points across chunks; the signal
 * cancels between and inside chunks).
 */
export async function sample(objective: Objective, theta0: Float32Array, dirs: Directions | TensorLike<Float32Array>, options?: SampleOptions): Promise<Landscape> {
  const f = objectiveArg(objective);
  const theta = thetaArg(theta0, f.dim);
  const o = optionsArg<SampleOptions>(options);
  const made = dirs !== null && typeof dirs === 'object' && 'method' in dirs && 'normalization' in dirs ? (dirs as Directions) : null;
  const D = directionsArg(made ? made.directions : dirs, f.dim);
  const k = D.shape[0]!;
  const sampling = o.sampling ?? 'grid';
  if (sampling !== 'grid' && sampling !== 'uniform' && sampling !== 'lhs') throw new NnscopeError('ERR_INVALID_ARGUMENT', `sampling must be 'grid', 'uniform' or 'lhs'`);
  const distance = finiteNumber(o.distance, 'distance', 0.01);
  if (!(distance > 0)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `distance must be > 0 (got ${distance})`);
  const maxPoints = integer(o.maxPoints, 'maxPoints', 1, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_POINTS);
  const chunkSize = integer(o.chunkSize, 'chunkSize', 1, MAX_INT, 8192);
  const device = deviceArg(o.device);
  const signal = signalArg(o.signal);
  const onProgress = callbackArg<(p: ProgressEvent) => void>(o.onProgress, 'onProgress');
  const model = o.model === undefined ? describeModel(f) : String(o.model);
  let n: number;
  let dims: number[] | null = null;
  let axis: Float64Array | null = null;
  let steps: number | null = null;
  let spacing: Spacing | null = null;
  let sampleSeed: number | null = null;
  let coords: Float32Array;
  const async: AsyncOptions = signal ? { signal } : {};
  if (sampling === 'grid') {
    if (k < 1 || k > 4) throw new NnscopeError('ERR_INVALID_ARGUMENT', `a grid takes 1 to 4 directions (got ${k})`);
    steps = integer(o.steps, 'steps', 2, MAX_INT, 41);
    spacing = o.spacing ?? 'linspace';
    if (spacing !== 'linspace' && spacing !== 'landscaper') throw new NnscopeError('ERR_INVALID_ARGUMENT', `spacing must be 'linspace' or 'landscaper'`);
    n = binding().gridPoints({ k, steps, maxPoints });
    dims = Array.from({ length: k }, () => steps!);
    axis = binding().gridAxis({ steps, distance, spacing });
    coords = new Float32Array(n * k);
    const sp = spacing;
    await runOp(async, (base) => binding().gridCoords({ ...base, out: coords, k, steps: steps!, distance, spacing: sp, begin: 0 }));
  } else {
    if (k < 1) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'sampling needs at least one direction');
    if (o.samples === undefined) throw new NnscopeError('ERR_INVALID_ARGUMENT', `sampling '${sampling}' needs options.samples`);
    n = integer(o.samples, 'samples', 1, Number.MAX_SAFE_INTEGER);
    if (n > maxPoints || n * k > 2 ** 32) throw new NnscopeError('ERR_TOO_LARGE', `${n} samples exceed the limit of ${maxPoints}`);
    sampleSeed = seedArg(o.seed);
    coords = new Float32Array(n * k);
    const method = sampling === 'lhs' ? 'lhs' : 'uniform';
    const s = sampleSeed;
    await runOp(async, (base) => binding().scatterCoords({ ...base, out: coords, k, distance, method, seed: s }));
  }
  const losses = new Float64Array(n);
  for (let lo = 0; lo < n; lo += chunkSize) {
    const hi = Math.min(n, lo + chunkSize);
    const chunk = new Tensor(coords.subarray(lo * k, hi * k), [hi - lo, k]);
    const part = await f.lossGrid(theta, D, chunk, {
      device, ...async,
      ...(onProgress ? { onProgress: (p: ProgressEvent) => onProgress({ done: lo + p.done, total: n, fraction: (lo + p.done) / n }) } : {}),
    });
    losses.set(part, lo);
  }
  return new Landscape({
    dims, axis, coordinates: new Tensor(coords, [n, k]), losses, directions: new Tensor(D.data.slice(), D.shape),
    theta0: theta.slice(), normalization: made?.normalization ?? 'none', biases: made?.biases ?? 'keep',
    orthonormalized: made?.orthonormalized ?? false, eigenvalues: made?.eigenvalues ?? null,
    provenance: {
      method: made?.method ?? 'given', seed: made?.seed ?? null, sampling, spacing, distance, steps, sampleSeed, model,
      date: new Date().toISOString(), version: 1,
    },
  });
}

export interface ComputeOptions extends DirectionOptions, SampleOptions {}

/** directions() then sample(): the whole landscape in one call (options of both; `seed` is the scattered-sample seed). */
export async function compute(objective: Objective, theta0: Float32Array, spec: DirectionSpec, options?: ComputeOptions): Promise<Landscape> {
  const o = optionsArg<ComputeOptions>(options);
  const { onProgress, ...rest } = o;
  const d = await directions(objective, theta0, spec, rest);
  return sample(objective, theta0, d, { ...rest, ...(onProgress ? { onProgress } : {}) });
}
