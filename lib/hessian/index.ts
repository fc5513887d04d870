/**
 * Hessian spectra — PyHessian's suite (top eigenvalues, trace, eigenvalue
 * spectral density) done with Krylov methods: thick-restart Lanczos with full
 * reorthogonalisation, Hutchinson and Hutch++, stochastic Lanczos quadrature.
 * Every op works on a `SymmetricOperator`: a dense symmetric matrix, a native
 * model's Hessian at θ, or a JavaScript callback (any other library's HVP).
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError, isNnscopeError } from '../errors.js';
import type { Objective } from '../models/index.js';
import { type NativeEigResult, type NativeOperator, native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, boolean, callbackArg, deviceArg, finiteNumber, integer, optionsArg, tensorArg } from '../validate.js';

export type Precision = 'float32' | 'float64';
export type OperatorVector = Float32Array | Float64Array;
export type OperatorCallback = (v: Float32Array) => OperatorVector | Promise<OperatorVector>;

const MAX_INT = 2 ** 31 - 1;

/**
 * A symmetric linear operator x ↦ A·x. Its precision is that of its data (a
 * Float64Array matrix or θ gives float64 Krylov vectors and results); `products`
 * counts the products every op on it has used.
 */
export class SymmetricOperator {
  readonly kind: 'matrix' | 'model' | 'callback';
  readonly dim: number;
  readonly precision: Precision;
  #products = 0;
  readonly #describe: (onError: (e: unknown) => void) => NativeOperator;

  /** @internal */
  constructor(kind: SymmetricOperator['kind'], dim: number, precision: Precision, describe: (onError: (e: unknown) => void) => NativeOperator) {
    this.kind = kind;
    this.dim = dim;
    this.precision = precision;
    this.#describe = describe;
  }

  /** Operator products used so far by the ops run on this operator. */
  get products(): number {
    return this.#products;
  }

  /** @internal */
  async run<T extends { products: number }>(start: (op: NativeOperator) => Promise<T>): Promise<T> {
    let thrown: unknown;
    let threw = false;
    const op = this.#describe((e) => {
      thrown = e;
      threw = true;
    });
    try {
      const r = await start(op);
      this.#products += r.products;
      return r;
    } catch (e) {
      if (isNnscopeError(e, 'ERR_CALLBACK') && threw) throw new NnscopeError('ERR_CALLBACK', e.message, { cause: thrown });
      throw e;
    }
  }
}

export interface MatrixOperatorOptions {
  /**
   * Refuse the matrix when max|A−Aᵀ| / max(1, max|A|) exceeds this (default 1e-5
   * for float32, 1e-12 for float64; a negative value skips the O(n²) check).
   */
  symmetryTol?: number;
}

/** A dense symmetric n×n matrix (Float32Array: CPU or CUDA; Float64Array: CPU, float64 throughout). Borrowed, not copied. */
export function matrixOperator(a: TensorLike<Float32Array | Float64Array>, options?: MatrixOperatorOptions): SymmetricOperator {
  const o = optionsArg<MatrixOperatorOptions>(options);
  const A = tensorArg<Float32Array | Float64Array>(a, 'a', { dtype: ['float32', 'float64'], ndim: 2 });
  const [n, m] = A.shape as [number, number];
  if (n !== m) throw new NnscopeError('ERR_SHAPE', `a must be square (got [${n}, ${m}])`);
  if (n === 0) throw new NnscopeError('ERR_SHAPE', 'a is empty');
  const f64 = A.data instanceof Float64Array;
  const symmetryTol = finiteNumber(o.symmetryTol, 'symmetryTol', f64 ? 1e-12 : 1e-5);
  return new SymmetricOperator('matrix', n, f64 ? 'float64' : 'float32', () => ({ kind: 'matrix', matrix: A.data, n, symmetryTol }));
}

export interface ModelOperatorOptions {
  /**
   * A fixed mini-batch instead of the full data (PyHessian's "mini-batch
   * Hessian"): sample indices, or {size, seed} for a seeded sample without
   * replacement. MLP objectives only.
   */
  batch?: readonly number[] | { size: number; seed?: number };
}

/**
 * The Hessian ∇²L(θ) of a native model objective, by its exact HVP. θ as a
 * Float32Array computes in float32 (CPU or CUDA); as a Float64Array in float64 on
 * the CPU (the reference path). θ is borrowed: do not change it while an op runs.
 */
export function modelOperator(objective: Objective, theta: Float32Array | Float64Array, options?: ModelOperatorOptions): SymmetricOperator {
  const o = optionsArg<ModelOperatorOptions>(options);
  if (objective === null || typeof objective !== 'object' || typeof (objective as { nativeHandle?: unknown }).nativeHandle !== 'function') {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', 'objective must be an nnscope models Objective');
  }
  let f = objective;
  if (o.batch !== undefined) f = f.subset(batchIndices(o.batch, f.samples));
  if (!(theta instanceof Float32Array) && !(theta instanceof Float64Array)) {
    throw new NnscopeError('ERR_DTYPE', `theta must be a Float32Array or Float64Array of ${f.dim} parameters`);
  }
  if (theta.length !== f.dim) throw new NnscopeError('ERR_SHAPE', `theta has ${theta.length} entries, the model has ${f.dim} parameters`);
  const handle = f.nativeHandle();
  return new SymmetricOperator('model', f.dim, theta instanceof Float64Array ? 'float64' : 'float32', () => ({ kind: 'model', objective: handle, theta }));
}

function batchIndices(batch: ModelOperatorOptions['batch'], samples: number): number[] {
  if (Array.isArray(batch)) return [...(batch as readonly number[])];
  const b = optionsArg<{ size: number; seed?: number }>(batch, 'batch');
  if (samples === 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'only MLP objectives have sample batches');
  const size = integer(b.size, 'batch.size', 1, samples);
  const seed = integer(b.seed, 'batch.seed', 0, Number.MAX_SAFE_INTEGER, 0);
  // Seeded partial Fisher–Yates over the sample indices (splitmix32 stream).
  let s = (seed ^ 0x9e3779b9) >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const idx = Array.from({ length: samples }, (_, i) => i);
  for (let i = 0; i < size; ++i) {
    const j = i + (next() % (samples - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, size).sort((x, y) => x - y);
}

/**
 * An operator computed by JavaScript: `fn(v)` returns A·v (a Float32Array or
 * Float64Array of `dim` entries, or a Promise of one) — e.g. an HVP from another
 * library. The engine awaits each product off the JS thread; a throw or a bad
 * value rejects the op with ERR_CALLBACK (the thrown error as `cause`), NaN in a
 * product with ERR_NON_FINITE. Float32 Krylov vectors, CPU only.
 */
export function callbackOperator(dim: number, fn: OperatorCallback): SymmetricOperator {
  const n = integer(dim, 'dim', 1, MAX_INT);
  const f = callbackArg<OperatorCallback>(fn, 'fn');
  if (!f) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'fn must be a function');
  return new SymmetricOperator('callback', n, 'float32', (onError) => ({
    kind: 'callback',
    n,
    fn: async (v: Float32Array) => {
      try {
        return await f(v);
      } catch (e) {
        onError(e);
        throw e;
      }
    },
  }));
}

function operatorArg(op: unknown): SymmetricOperator {
  if (!(op instanceof SymmetricOperator)) {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', 'op must be a SymmetricOperator (matrixOperator, modelOperator or callbackOperator)');
  }
  return op;
}

export interface HessianOptions extends AsyncOptions {
  /** 'auto' | 'cpu' | 'cuda': where the Krylov vectors live (float32 matrix and model operators). */
  device?: DeviceName;
  /** Seed of the random start / probe vectors (default 0). */
  seed?: number;
}

export interface EigenOptions extends HessianOptions {
  /** Number of eigenpairs (default 1; clamped to the dimension). */
  k?: number;
  /** 'largest' (algebraic, default), 'smallest' (algebraic) or 'magnitude' (largest |λ|, PyHessian's power iteration target). */
  which?: 'largest' | 'smallest' | 'magnitude';
  /** 'lanczos' (thick restart, default) or 'power' (PyHessian's power iteration with deflation, always 'magnitude'). */
  method?: 'lanczos' | 'power';
  /**
   * Lanczos: converged when ‖Av − λv‖ ≤ tol·|λ| for every pair (default 1e-10 for
   * float64, 1e-5 for float32). Power: PyHessian's relative-change rule (default 1e-3).
   */
  tol?: number;
  /** Lanczos: product budget (default max(1000, 20·basis)). */
  maxProducts?: number;
  /** Lanczos: Krylov basis size per restart cycle (default max(2k+8, 20), at most the dimension). */
  basis?: number;
  /** Power: iterations per eigenvalue (default 100). */
  maxIter?: number;
  /** Return the eigenvectors (default true). */
  vectors?: boolean;
}

export interface EigenResult {
  /** Ordered by `which`: largest first ('largest', 'magnitude'), smallest first ('smallest'). */
  values: Float64Array;
  /** k×n unit eigenvectors (rows), in the operator's precision. */
  vectors?: Tensor<Float32Array> | Tensor<Float64Array>;
  /** ‖Av − λv‖ of each pair. */
  residuals: Float64Array;
  /** Every pair met the tolerance within the budget. */
  converged: boolean;
  restarts: number;
  products: number;
}

/** The top-k eigenpairs of a symmetric operator. */
export async function eigenpairs(op: SymmetricOperator, options?: EigenOptions): Promise<EigenResult> {
  const A = operatorArg(op);
  const o = optionsArg<EigenOptions>(options);
  const k = integer(o.k, 'k', 1, MAX_INT, 1);
  const method = o.method ?? 'lanczos';
  if (method !== 'lanczos' && method !== 'power') throw new NnscopeError('ERR_INVALID_ARGUMENT', `method must be 'lanczos' or 'power'`);
  const which = o.which ?? (method === 'power' ? 'magnitude' : 'largest');
  if (which !== 'largest' && which !== 'smallest' && which !== 'magnitude') {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', `which must be 'largest', 'smallest' or 'magnitude'`);
  }
  if (method === 'power' && which !== 'magnitude') throw new NnscopeError('ERR_INVALID_ARGUMENT', `power iteration finds the largest |λ|: use which: 'magnitude'`);
  const seed = integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0);
  const vectors = boolean(o.vectors, 'vectors', true);
  const device = deviceArg(o.device);
  const tol = o.tol === undefined ? (method === 'power' ? 1e-3 : 0) : finiteNumber(o.tol, 'tol');
  if (tol < 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'tol must be ≥ 0');
  const r: NativeEigResult = await runOp(o, (base) =>
    A.run((operator) =>
      method === 'power'
        ? native().hessian.power({ ...base, device, operator, k, maxIter: integer(o.maxIter, 'maxIter', 1, MAX_INT, 100), tol, seed, vectors })
        : native().hessian.eigs({
            ...base, device, operator, k, which, tol, seed, vectors,
            maxProducts: integer(o.maxProducts, 'maxProducts', 0, Number.MAX_SAFE_INTEGER, 0),
            basis: integer(o.basis, 'basis', 0, MAX_INT, 0),
          }),
    ),
  );
  const kk = r.values.length;
  const out: EigenResult = { values: r.values, residuals: r.residuals, converged: r.converged, restarts: r.restarts, products: r.products };
  if (r.vectors) out.vectors = new Tensor(r.vectors as Float32Array, [kk, A.dim]) as Tensor<Float32Array> | Tensor<Float64Array>;
  return out;
}

export interface TraceOptions extends HessianOptions {
  /** 'hutchinson' (Rademacher probes, default) or 'hutch++' (fewer products for the same accuracy on decaying spectra). */
  method?: 'hutchinson' | 'hutch++';
  /** Product budget (default 1000; Hutch++ spends all of it). */
  maxProducts?: number;
  /** Hutchinson: samples before the stopping rule may stop (default 10). */
  minSamples?: number;
  /** Hutchinson: stop when the standard error ≤ max(absTol, relTol·|estimate|) (defaults 1e-3 and 0). */
  relTol?: number;
  absTol?: number;
}

export interface TraceResult {
  estimate: number;
  /** Standard error of the estimate (Hutch++: of its stochastic part). */
  stdError: number;
  /** The vᵀAv samples (Hutch++: of the deflated part). */
  samples: Float64Array;
  /** The standard-error rule was met within the budget (Hutch++: always true). */
  converged: boolean;
  products: number;
}

/** tr(A) by Hutchinson's estimator or Hutch++. */
export async function trace(op: SymmetricOperator, options?: TraceOptions): Promise<TraceResult> {
  const A = operatorArg(op);
  const o = optionsArg<TraceOptions>(options);
  const method = o.method ?? 'hutchinson';
  if (method !== 'hutchinson' && method !== 'hutch++') throw new NnscopeError('ERR_INVALID_ARGUMENT', `method must be 'hutchinson' or 'hutch++'`);
  const args = {
    method,
    maxProducts: integer(o.maxProducts, 'maxProducts', 1, Number.MAX_SAFE_INTEGER, 1000),
    minSamples: integer(o.minSamples, 'minSamples', 1, MAX_INT, 10),
    relTol: finiteNumber(o.relTol, 'relTol', 1e-3),
    absTol: finiteNumber(o.absTol, 'absTol', 0),
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
  };
  if (args.relTol < 0 || args.absTol < 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'relTol and absTol must be ≥ 0');
  const device = deviceArg(o.device);
  return runOp(o, (base) => A.run((operator) => native().hessian.trace({ ...base, device, operator, ...args })));
}

export interface DensityOptions extends HessianOptions {
  /** Lanczos steps per run (PyHessian's iter, default 100; clamped to the dimension). */
  steps?: number;
  /** Independent runs n_v (default 1). */
  runs?: number;
  /** Grid points of the smoothed density (default 10,000; 0 = nodes and weights only). */
  gridPoints?: number;
  /** Gaussian variance factor: variance = sigmaSquared·max(1, range) (default 1e-5, PyHessian's). */
  sigmaSquared?: number;
  /** Margin added on both sides of the node range (default 0.01). */
  overhead?: number;
}

export interface DensityResult {
  /** Ritz values, runs×steps (ascending per run). */
  nodes: Tensor<Float64Array>;
  /** Squared first components of T's eigenvectors, runs×steps (each run sums to 1). */
  weights: Tensor<Float64Array>;
  /** The grid and the smoothed density on it (unit area); empty when gridPoints is 0. */
  grid: Float64Array;
  density: Float64Array;
  /** The Gaussian variance used. */
  variance: number;
  products: number;
}

/** The eigenvalue spectral density by stochastic Lanczos quadrature, raw and on PyHessian's grid. */
export async function density(op: SymmetricOperator, options?: DensityOptions): Promise<DensityResult> {
  const A = operatorArg(op);
  const o = optionsArg<DensityOptions>(options);
  const args = {
    steps: integer(o.steps, 'steps', 1, MAX_INT, 100),
    runs: integer(o.runs, 'runs', 1, MAX_INT, 1),
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
    gridPoints: integer(o.gridPoints, 'gridPoints', 0, 1e8, 10000),
    sigmaSquared: finiteNumber(o.sigmaSquared, 'sigmaSquared', 1e-5),
    overhead: finiteNumber(o.overhead, 'overhead', 0.01),
  };
  if (args.sigmaSquared <= 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'sigmaSquared must be > 0');
  if (args.gridPoints === 1) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'gridPoints must be 0 or at least 2');
  const device = deviceArg(o.device);
  const r = await runOp(o, (base) => A.run((operator) => native().hessian.density({ ...base, device, operator, ...args })));
  return {
    nodes: new Tensor(r.nodes, [r.runs, r.steps]),
    weights: new Tensor(r.weights, [r.runs, r.steps]),
    grid: r.grid,
    density: r.density,
    variance: r.variance,
    products: r.products,
  };
}

export interface LanczosOptions extends HessianOptions {
  /** Steps m (default 100; clamped to the dimension). */
  steps?: number;
  /** Full reorthogonalisation passes per step (default 2; 0 = plain Lanczos). */
  reorthPasses?: number;
}

export interface LanczosResult {
  /** The tridiagonal T: diagonal (m) and off-diagonal (m−1). */
  alpha: Float64Array;
  beta: Float64Array;
  /** Invariant subspaces met (continued from a fresh orthogonal vector; the β there is 0). */
  restarts: number;
  products: number;
}

/** m Lanczos steps from a seeded Rademacher start vector: the tridiagonal T. */
export async function lanczos(op: SymmetricOperator, options?: LanczosOptions): Promise<LanczosResult> {
  const A = operatorArg(op);
  const o = optionsArg<LanczosOptions>(options);
  const args = {
    steps: integer(o.steps, 'steps', 1, MAX_INT, 100),
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
    reorthPasses: integer(o.reorthPasses, 'reorthPasses', 0, 4, 2),
  };
  const device = deviceArg(o.device);
  return runOp(o, (base) => A.run((operator) => native().hessian.lanczos({ ...base, device, operator, ...args })));
}

/**
 * Eigenvalues (ascending) and optionally eigenvectors (column j of the n×n
 * matrix belongs to value j) of the symmetric tridiagonal matrix with diagonal
 * `alpha` and off-diagonal `beta`, by implicit QL in float64. Synchronous (it is
 * meant for Lanczos-sized T): n ≤ 2048 with vectors, n ≤ 1,000,000 without.
 */
export function tridiagonalEigen(alpha: Float64Array, beta: Float64Array, options?: { vectors?: boolean }): { values: Float64Array; vectors?: Tensor<Float64Array> } {
  const o = optionsArg<{ vectors?: boolean }>(options);
  if (!(alpha instanceof Float64Array) || !(beta instanceof Float64Array)) throw new NnscopeError('ERR_DTYPE', 'alpha and beta must be Float64Arrays');
  const n = alpha.length;
  if (beta.length !== Math.max(0, n - 1)) throw new NnscopeError('ERR_SHAPE', `beta must have ${Math.max(0, n - 1)} entries (got ${beta.length})`);
  const vectors = boolean(o.vectors, 'vectors', false);
  if (n > (vectors ? 2048 : 1_000_000)) throw new NnscopeError('ERR_TOO_LARGE', `tridiagonalEigen is synchronous: n = ${n} is above ${vectors ? '2048 with vectors' : '1,000,000'}`);
  const r = native().hessian.tridiagonalEigen({ alpha, beta, vectors });
  return r.vectors ? { values: r.values, vectors: new Tensor(r.vectors, [n, n]) } : { values: r.values };
}
