/**
 * Native models with exact loss, gradient and Hessian-vector product: MLPs bound
 * to a dataset, and the 1-D convection PINN (Krishnapriyan et al. 2021). An
 * `Objective` is a model with its data; every op on it is async and cancellable.
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { openSafetensors, writeSafetensors } from '../io/index.js';
import { type NativeObjectiveHandle as NativeObjective, native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, deviceArg, finiteNumber, integer, optionsArg, tensorArg } from '../validate.js';

export type Activation = 'identity' | 'tanh' | 'relu' | 'gelu' | 'softplus' | 'sigmoid';
export type LossKind = 'mse' | 'softmax_cross_entropy' | 'binary_cross_entropy';
export type InitKind = 'auto' | 'xavier_normal' | 'xavier_uniform' | 'he_normal' | 'he_uniform';

export interface MlpSpec {
  /** Layer widths: input, hidden…, output. */
  widths: readonly number[];
  /** Hidden-layer activation (default 'tanh'). */
  activation?: Activation;
  /** Output activation (default 'identity'; the classification losses take logits). */
  outputActivation?: Activation;
  /** 'mse' (float targets), 'softmax_cross_entropy' (int32 labels), 'binary_cross_entropy' (on logits, float targets). */
  loss: LossKind;
  /** L2 weight decay: adds wd/2·‖θ‖² to the loss (default 0). */
  weightDecay?: number;
}

/** A named slice of the flat parameter vector: `layer{l}.weight` [out, in] and `layer{l}.bias` [out]. */
export interface ParamEntry {
  name: string;
  offset: number;
  shape: number[];
}

/** Samples for an MLP: inputs n×d_in, and targets n×d_out (float) or labels [n] (int32). */
export interface Dataset {
  inputs: TensorLike<Float32Array>;
  targets?: TensorLike<Float32Array>;
  labels?: TensorLike<Int32Array>;
}

export interface OpOptions extends AsyncOptions {
  /** 'auto' | 'cpu' | 'cuda'. */
  device?: DeviceName;
}

export interface TrainOptions extends AsyncOptions {
  /** 'lbfgs' (default; the PINN papers' recipe) or 'adam'. */
  optimizer?: 'adam' | 'lbfgs';
  /** Step limit (default 1000). */
  maxSteps?: number;
  /** Stop when ‖∇L‖∞ ≤ this (default 1e-7; negative disables). */
  toleranceGrad?: number;
  /** Stop when the step (or, for L-BFGS, the loss change) is below this (default 1e-9). */
  toleranceChange?: number;
  /** Learning rate: Adam's step size (default 1e-3) or L-BFGS's initial step scale (default 1). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adam only: decoupled (AdamW) weight decay (default 0). */
  weightDecay?: number;
  /** L-BFGS history size (default 10). */
  history?: number;
  /** L-BFGS line search (default 'strong_wolfe'). */
  lineSearch?: 'strong_wolfe' | 'none';
  c1?: number;
  c2?: number;
  /** L-BFGS: evaluations per line search (default 25). */
  maxEvals?: number;
  /** MLP only: mini-batch size (default: full batch). */
  batchSize?: number;
  /** Seed of the mini-batch order (default 0). */
  seed?: number;
  device?: DeviceName;
}

export interface TrainResult {
  /** The trained parameters (a new array; the input is not modified). */
  theta: Float32Array;
  /** The loss each step started from. */
  lossHistory: Float64Array;
  steps: number;
  functionEvals: number;
  gradientEvals: number;
  stopReason: 'converged_grad' | 'converged_change' | 'max_steps' | 'line_search_failed' | 'non_finite';
  message: string;
  finalLoss: number;
  finalGradNorm: number;
}

function paramsArg(theta: unknown, dim: number, name = 'theta'): Float32Array {
  if (!(theta instanceof Float32Array)) {
    throw new NnscopeError('ERR_DTYPE', `${name} must be a Float32Array of ${dim} parameters`);
  }
  if (theta.length !== dim) throw new NnscopeError('ERR_SHAPE', `${name} has ${theta.length} entries, the model has ${dim} parameters`);
  return theta;
}

function params64Arg(theta: unknown, dim: number, name: string): Float64Array {
  if (!(theta instanceof Float64Array)) throw new NnscopeError('ERR_DTYPE', `${name} must be a Float64Array of ${dim} parameters`);
  if (theta.length !== dim) throw new NnscopeError('ERR_SHAPE', `${name} has ${theta.length} entries, the model has ${dim} parameters`);
  return theta;
}


/** A model bound to its data: the loss L(θ) and its exact derivatives. */
export class Objective {
  /** @internal */
  protected readonly handle: NativeObjective;
  /** Number of parameters P. */
  readonly dim: number;
  /** The named slices of θ. */
  readonly layout: readonly ParamEntry[];
  /** @internal */
  protected readonly net: { widths: readonly number[]; activation: Activation };

  /** @internal */
  constructor(handle: NativeObjective, net: { widths: readonly number[]; activation: Activation }) {
    this.handle = handle;
    this.dim = handle.dim;
    this.layout = Object.freeze(handle.layout());
    this.net = net;
  }

  /** Samples the loss averages over (MLP; 0 for the PINN, whose points are fixed by its spec). */
  get samples(): number {
    return this.handle.samples;
  }

  /**
   * The same MLP over a subset of its samples (indices into this objective's own
   * samples; subsets compose). A fixed mini-batch: its Hessian is PyHessian's
   * "mini-batch Hessian".
   */
  subset(indices: readonly number[]): Objective {
    if (!Array.isArray(indices)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'indices must be an array of sample indices');
    const n = this.samples;
    const list = indices.map((i, j) => integer(i, `indices[${j}]`, 0, Math.max(0, n - 1)));
    return new Objective(this.handle.subset({ indices: list }), this.net);
  }

  /** @internal The native handle, for the families that work on a model. */
  nativeHandle(): NativeObjective {
    return this.handle;
  }

  /** Seeded initial parameters (Xavier normal for tanh/sigmoid/identity, He normal otherwise; zero biases). */
  init(seed = 0, init: InitKind = 'auto'): Float32Array {
    return native().models.initParams({ widths: [...this.net.widths], activation: this.net.activation, seed: integer(seed, 'seed', 0, Number.MAX_SAFE_INTEGER), init });
  }

  /**
   * Saves θ as safetensors, one F32 tensor per layout entry (`layer0.weight`, …),
   * with the model description in the metadata.
   */
  async save(path: string, theta: Float32Array, options?: AsyncOptions & { metadata?: Record<string, string> }): Promise<void> {
    const t = paramsArg(theta, this.dim);
    const tensors: Record<string, { data: Float32Array; shape: readonly number[] }> = {};
    for (const e of this.layout) tensors[e.name] = { data: t.subarray(e.offset, e.offset + e.shape.reduce((a, b) => a * b, 1)), shape: e.shape };
    const metadata = { format: 'nnscope', widths: this.net.widths.join(','), activation: this.net.activation, ...(options?.metadata ?? {}) };
    await writeSafetensors(path, tensors, { ...options, metadata });
  }

  /** Loads θ from a safetensors file holding every layout entry with its shape (any float dtype; extra tensors are ignored). */
  async load(path: string, options?: AsyncOptions): Promise<Float32Array> {
    const file = await openSafetensors(path, options);
    const theta = new Float32Array(this.dim);
    for (const e of this.layout) {
      if (!file.has(e.name)) throw new NnscopeError('ERR_FORMAT', `${path} has no tensor '${e.name}'`);
      const got = file.entry(e.name).shape;
      if (got.length !== e.shape.length || got.some((d, i) => d !== e.shape[i])) {
        throw new NnscopeError('ERR_SHAPE', `${path}: '${e.name}' is [${got.join(', ')}], the model needs [${e.shape.join(', ')}]`);
      }
      await file.readInto(e.name, theta.subarray(e.offset, e.offset + e.shape.reduce((a, b) => a * b, 1)), options);
    }
    return theta;
  }

  /** L(θ). */
  async loss(theta: Float32Array, options?: OpOptions): Promise<number> {
    const o = optionsArg<OpOptions>(options);
    const t = paramsArg(theta, this.dim);
    const device = deviceArg(o.device);
    return runOp(o, (base) => this.handle.loss({ ...base, device, theta: t }));
  }

  /** L(θ) and ∇L(θ) (reverse mode). */
  async lossGrad(theta: Float32Array, options?: OpOptions): Promise<{ loss: number; grad: Float32Array }> {
    const o = optionsArg<OpOptions>(options);
    const t = paramsArg(theta, this.dim);
    const device = deviceArg(o.device);
    const grad = new Float32Array(this.dim);
    const loss = await runOp(o, (base) => this.handle.lossGrad({ ...base, device, theta: t, grad }));
    return { loss, grad };
  }

  /** H(θ)·v, exact (forward-over-reverse), not a finite difference. */
  async hvp(theta: Float32Array, v: Float32Array, options?: OpOptions): Promise<Float32Array> {
    const o = optionsArg<OpOptions>(options);
    const t = paramsArg(theta, this.dim);
    const vv = paramsArg(v, this.dim, 'v');
    const device = deviceArg(o.device);
    const hv = new Float32Array(this.dim);
    await runOp(o, (base) => this.handle.hvp({ ...base, device, theta: t, v: vv, hv }));
    return hv;
  }

  /** L(θ) and ∇L(θ) computed in float64 on the CPU (a reference for verification). */
  async lossGrad64(theta: Float64Array, options?: AsyncOptions): Promise<{ loss: number; grad: Float64Array }> {
    const o = optionsArg<AsyncOptions>(options);
    const t = params64Arg(theta, this.dim, 'theta');
    const grad = new Float64Array(this.dim);
    const loss = await runOp(o, (base) => this.handle.lossGrad64({ ...base, theta: t, grad }));
    return { loss, grad };
  }

  /** H(θ)·v in float64 on the CPU (a reference for verification). */
  async hvp64(theta: Float64Array, v: Float64Array, options?: AsyncOptions): Promise<Float64Array> {
    const o = optionsArg<AsyncOptions>(options);
    const t = params64Arg(theta, this.dim, 'theta');
    const vv = params64Arg(v, this.dim, 'v');
    const hv = new Float64Array(this.dim);
    await runOp(o, (base) => this.handle.hvp64({ ...base, theta: t, v: vv, hv }));
    return hv;
  }

  /**
   * L(θ₀ + Σ_j a_ij d_j) for every row a_i of `coords` (n×k) and directions d_j
   * (the rows of `directions`, k×P): the batched landscape evaluation.
   */
  async lossGrid(theta0: Float32Array, directions: TensorLike<Float32Array>, coords: TensorLike<Float32Array>, options?: OpOptions): Promise<Float64Array> {
    const o = optionsArg<OpOptions>(options);
    const t = paramsArg(theta0, this.dim, 'theta0');
    const D = tensorArg<Float32Array>(directions, 'directions', { dtype: 'float32', ndim: 2 });
    const C = tensorArg<Float32Array>(coords, 'coords', { dtype: 'float32', ndim: 2 });
    const [k, P] = D.shape as [number, number];
    if (P !== this.dim) throw new NnscopeError('ERR_SHAPE', `directions must be k×${this.dim} (got [${D.shape.join(', ')}])`);
    if (k < 1) throw new NnscopeError('ERR_SHAPE', 'lossGrid needs at least one direction');
    if (C.shape[1] !== k) throw new NnscopeError('ERR_SHAPE', `coords must be n×${k} (got [${C.shape.join(', ')}])`);
    const out = new Float64Array(C.shape[0]!);
    const device = deviceArg(o.device);
    await runOp(o, (base) => this.handle.lossGrid({ ...base, device, theta0: t, dirs: D.data, k, coords: C.data, out }));
    return out;
  }

  /**
   * Trains from θ (not modified) with L-BFGS (strong Wolfe) or Adam. onProgress
   * receives {done: step, total: maxSteps, value: that step's loss}.
   */
  async train(theta: Float32Array, options?: TrainOptions): Promise<TrainResult> {
    const o = optionsArg<TrainOptions>(options);
    const start = paramsArg(theta, this.dim);
    const optimizer = o.optimizer ?? 'lbfgs';
    if (optimizer !== 'adam' && optimizer !== 'lbfgs') throw new NnscopeError('ERR_INVALID_ARGUMENT', `optimizer must be 'adam' or 'lbfgs'`);
    const adam = optimizer === 'adam';
    const lineSearch = o.lineSearch ?? 'strong_wolfe';
    if (lineSearch !== 'strong_wolfe' && lineSearch !== 'none') throw new NnscopeError('ERR_INVALID_ARGUMENT', `lineSearch must be 'strong_wolfe' or 'none'`);
    const args = {
      optimizer,
      maxSteps: integer(o.maxSteps, 'maxSteps', 0, 2 ** 31 - 1, 1000),
      toleranceGrad: finiteNumber(o.toleranceGrad, 'toleranceGrad', 1e-7),
      toleranceChange: finiteNumber(o.toleranceChange, 'toleranceChange', 1e-9),
      lr: finiteNumber(o.lr, 'lr', adam ? 1e-3 : 1),
      beta1: finiteNumber(o.beta1, 'beta1', 0.9),
      beta2: finiteNumber(o.beta2, 'beta2', 0.999),
      eps: finiteNumber(o.eps, 'eps', 1e-8),
      weightDecay: finiteNumber(o.weightDecay, 'weightDecay', 0),
      history: integer(o.history, 'history', 1, 10000, 10),
      lineSearch,
      c1: finiteNumber(o.c1, 'c1', 1e-4),
      c2: finiteNumber(o.c2, 'c2', 0.9),
      maxEvals: integer(o.maxEvals, 'maxEvals', 1, 10000, 25),
      seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
      ...(o.batchSize !== undefined ? { batchSize: integer(o.batchSize, 'batchSize', 1, Number.MAX_SAFE_INTEGER) } : {}),
    };
    const device = deviceArg(o.device);
    const out = start.slice();
    const r = await runOp(o, (base) => this.handle.train({ ...base, device, theta: out, ...args }));
    return { theta: out, ...r };
  }
}

export interface PinnSpec {
  /** Convection speed β (default 1). */
  beta?: number;
  /** Weight λ of the residual term (default 1). */
  lambda?: number;
  /** Network widths, 2→…→1 (default [2, 50, 50, 50, 50, 1]). */
  widths?: readonly number[];
  /** Hidden activation (default 'tanh'). */
  activation?: Activation;
  /** The evaluation / reference grid (default 256 × 100). */
  xGrid?: number;
  tGrid?: number;
  /** Collocation points N_f (default 100). */
  nCollocation?: number;
  /** 'grid' (drawn from the reference grid, as the papers' code) or 'random' (uniform). */
  collocationSampling?: 'grid' | 'random';
  boundarySampling?: 'grid' | 'random';
  nInitial?: number;
  nBoundary?: number;
  /** Seed of the point sampling (default 0). */
  seed?: number;
  weightDecay?: number;
}

export interface PinnEvaluation {
  /** ‖u − u*‖₂/‖u*‖₂ on the xGrid × tGrid grid, u* = sin(x − βt). */
  relativeL2: number;
  /** The loss terms: initial condition, periodic boundary, λ·residual. */
  initial: number;
  boundary: number;
  residual: number;
}

/** The 1-D convection PINN u_t + βu_x = 0 on [0, 2π)×[0, 1], u(x, 0) = sin x, periodic. */
export class PinnObjective extends Objective {
  readonly spec: Readonly<PinnSpec>;

  /** @internal */
  constructor(handle: NativeObjective, spec: PinnSpec) {
    super(handle, { widths: spec.widths ?? [2, 50, 50, 50, 50, 1], activation: spec.activation ?? 'tanh' });
    this.spec = Object.freeze({ ...spec });
  }

  /** Relative L2 error against the exact solution, and the loss terms. */
  async evaluate(theta: Float32Array, options?: AsyncOptions): Promise<PinnEvaluation> {
    const o = optionsArg<AsyncOptions>(options);
    const t = paramsArg(theta, this.dim);
    return runOp(o, (base) => this.handle.pinnEval({ ...base, theta: t }));
  }
}

/** An MLP bound to a dataset (copied in: later changes to the arrays do not affect it). */
export function mlp(spec: MlpSpec, data: Dataset, options?: { indices?: readonly number[] }): Objective {
  const s = optionsArg<MlpSpec>(spec, 'spec');
  if (!Array.isArray(s.widths) || s.widths.length < 2) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'spec.widths must list at least an input and an output width');
  const widths = s.widths.map((w, i) => integer(w, `widths[${i}]`, 1, 2 ** 31 - 1));
  const d = optionsArg<Dataset>(data, 'data');
  const X = tensorArg<Float32Array>(d.inputs, 'data.inputs', { dtype: 'float32', ndim: 2 });
  const [n, dIn] = X.shape as [number, number];
  if (dIn !== widths[0]) throw new NnscopeError('ERR_SHAPE', `data.inputs has ${dIn} columns, the network takes ${widths[0]}`);
  const args: Record<string, unknown> = {
    widths,
    loss: s.loss,
    activation: s.activation ?? 'tanh',
    outputActivation: s.outputActivation ?? 'identity',
    weightDecay: finiteNumber(s.weightDecay, 'weightDecay', 0),
    inputs: X.data,
    n,
  };
  if (d.targets !== undefined) {
    const T = tensorArg<Float32Array>(d.targets, 'data.targets', { dtype: 'float32', ndim: 2 });
    if (T.shape[0] !== n) throw new NnscopeError('ERR_SHAPE', `data.targets has ${T.shape[0]} rows, inputs have ${n}`);
    args['targets'] = T.data;
  }
  if (d.labels !== undefined) {
    const L = tensorArg<Int32Array>(d.labels, 'data.labels', { dtype: 'int32', ndim: 1 });
    if (L.shape[0] !== n) throw new NnscopeError('ERR_SHAPE', `data.labels has ${L.shape[0]} entries, inputs have ${n}`);
    args['labels'] = L.data;
  }
  if (options?.indices !== undefined) args['indices'] = [...options.indices];
  const handle = native().models.createMlp(args as never);
  return new Objective(handle, { widths, activation: (s.activation ?? 'tanh') as Activation });
}

/** The convection PINN with its training points (defaults: the papers' set-up). */
export function pinn(spec: PinnSpec = {}): PinnObjective {
  const s = optionsArg<PinnSpec>(spec, 'spec');
  const handle = native().models.createPinn({ ...s, ...(s.widths ? { widths: [...s.widths] } : {}) } as never);
  return new PinnObjective(handle, s);
}

function datasetOf(r: { n: number; dIn: number; dOut: number; inputs: Float32Array; targets?: Float32Array; labels?: Int32Array }): Dataset {
  return {
    inputs: new Tensor(r.inputs, [r.n, r.dIn]),
    ...(r.targets ? { targets: new Tensor(r.targets, [r.n, r.dOut]) } : {}),
    ...(r.labels ? { labels: new Tensor(r.labels, [r.n]) } : {}),
  };
}

/** Built-in seeded datasets for examples and tests. */
export const datasets = {
  /** Two interleaved 2-D spirals, classes 0/1 (labels, and targets n×1 for binary cross-entropy). */
  twoSpirals(o: { n: number; noise?: number; seed?: number; turns?: number }): Dataset {
    return datasetOf(native().models.dataset({ kind: 'spirals', n: integer(o.n, 'n', 1, 2 ** 31 - 1), noise: finiteNumber(o.noise, 'noise', 0.1), seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0), turns: finiteNumber(o.turns, 'turns', 1.5) }));
  },
  /** `classes` Gaussian blobs in d dimensions (labels, and one-hot targets). */
  blobs(o: { n: number; d: number; classes: number; std?: number; seed?: number }): Dataset {
    return datasetOf(native().models.dataset({ kind: 'blobs', n: integer(o.n, 'n', 1, 2 ** 31 - 1), d: integer(o.d, 'd', 1, 1 << 20), classes: integer(o.classes, 'classes', 1, 1 << 20), std: finiteNumber(o.std, 'std', 1), seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0) }));
  },
  /** y = sin x + noise, x ~ U(−π, π). */
  sine(o: { n: number; noise?: number; seed?: number }): Dataset {
    return datasetOf(native().models.dataset({ kind: 'sine', n: integer(o.n, 'n', 1, 2 ** 31 - 1), noise: finiteNumber(o.noise, 'noise', 0.1), seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0) }));
  },
};
