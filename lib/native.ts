/**
 * Loads the native addon: $NNSCOPE_NATIVE (a .node file) when set, and then only
 * that; else build/Release, then build/Debug under the package root. On failure
 * the error lists every path tried and why it failed.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NnscopeError, fromNative } from './errors.js';

export interface ProgressEvent {
  done: number;
  total: number;
  fraction: number;
  /** The state reached, where an op has one (training: the loss of step `done`). */
  value?: number;
}

/** Options every async native op accepts (besides its own). */
export interface NativeOpBase {
  cancel?: NativeCancelHandle;
  onProgress?: (p: ProgressEvent) => void;
  device?: string;
}

export interface NativeCancelHandle {
  cancel(): void;
  readonly cancelled: boolean;
}

/** CUDA's state as devices() reports it. */
export interface NativeGpuReport {
  /** The addon was built with CUDA kernels. */
  compiled: boolean;
  /** A usable GPU answered. */
  available: boolean;
  /** Why CUDA is not available ('' when it is). */
  reason: string;
  deviceCount: number;
  device?: number;
  name?: string;
  computeCapability?: string;
  totalMemory?: number;
  freeMemory?: number;
  multiprocessors?: number;
  /** CUDA versions as 1000·major + 10·minor (0 when unknown). */
  driverVersion: number;
  runtimeVersion: number;
  /** Compiled GPU targets, e.g. 'sm_80 sm_90 compute_90'. */
  architectures: string;
}

type Cancellable = NativeOpBase;

export interface NativeObjectiveHandle {
  readonly dim: number;
  readonly samples: number;
  subset(o: { indices: number[] }): NativeObjectiveHandle;
  readonly kind: 'mlp' | 'pinn';
  layout(): { name: string; offset: number; shape: number[] }[];
  loss(o: Cancellable & { theta: Float32Array }): Promise<number>;
  lossGrad(o: Cancellable & { theta: Float32Array; grad: Float32Array }): Promise<number>;
  hvp(o: Cancellable & { theta: Float32Array; v: Float32Array; hv: Float32Array }): Promise<void>;
  lossGrad64(o: Cancellable & { theta: Float64Array; grad: Float64Array }): Promise<number>;
  hvp64(o: Cancellable & { theta: Float64Array; v: Float64Array; hv: Float64Array }): Promise<void>;
  lossGrid(o: Cancellable & { theta0: Float32Array; dirs: Float32Array; k: number; coords: Float32Array; out: Float64Array }): Promise<void>;
  train(o: Cancellable & Record<string, unknown> & { theta: Float32Array }): Promise<{
    lossHistory: Float64Array; steps: number; functionEvals: number; gradientEvals: number;
    stopReason: 'converged_grad' | 'converged_change' | 'max_steps' | 'line_search_failed' | 'non_finite';
    message: string; finalLoss: number; finalGradNorm: number;
  }>;
  pinnEval(o: Cancellable & { theta: Float32Array }): Promise<{ relativeL2: number; initial: number; boundary: number; residual: number }>;
}

/** Queries, keys and values as the attention ops take them. */
export interface NativeQkv {
  q: Float32Array; k: Float32Array | Uint16Array; v: Float32Array | Uint16Array;
  storage: 'float32' | 'float16' | 'bfloat16'; hq: number; hkv: number; nq: number; n: number; d: number;
}

export interface NativeSqueezedReport {
  perQueryHead: boolean; keptKeys: Float64Array; keptFraction: Float64Array; centroidsScored: Float64Array; kvBudget: Float64Array;
  indices?: Int32Array; offsets?: Float64Array;
}

export interface NativeCalibration {
  quantiles: Float64Array; thresholds: Float64Array; coarseQuantiles: Float64Array; coarseThresholds: Float64Array; policy: 'perQueryHead' | 'shared';
}

export interface NativeSqueezedContext {
  info(): {
    heads: number; tokens: number; d: number; window: number; clusters: number; hierarchical: boolean; coarseClusters: number;
    calibration: NativeCalibration; kmeansIterations: Float64Array; kmeansReseeded: Float64Array; kmeansInertia: Float64Array;
  };
  exportArrays(): { centroids: Float32Array; labels: Int32Array; sizes: Int32Array; coarseCentroids: Float32Array; parent: Int32Array; coarseSizes: Int32Array };
  calibrate(o: NativeOpBase & Record<string, unknown>): Promise<NativeCalibration>;
  setCalibration(o: NativeCalibration): void;
  select(o: NativeOpBase & Record<string, unknown>): Promise<NativeSqueezedReport>;
  prefill(o: NativeOpBase & Record<string, unknown>): Promise<NativeSqueezedReport>;
  decoder(capacity: number): NativeSqueezedDecoder;
}

export interface NativeSqueezedDecoder {
  readonly tokens: number;
  append(o: NativeOpBase & { k: Float32Array; v: Float32Array; tokens: number }): Promise<number>;
  step(o: NativeOpBase & Record<string, unknown>): Promise<NativeSqueezedReport>;
  clear(): void;
}

/** How a hessian op names its operator (see native/addon/hessian.cpp). */
export type NativeOperator =
  | { kind: 'matrix'; matrix: Float32Array | Float64Array; n: number; symmetryTol: number }
  | { kind: 'model'; objective: NativeObjectiveHandle; theta: Float32Array | Float64Array }
  | { kind: 'callback'; n: number; fn: (v: Float32Array) => Promise<Float32Array | Float64Array> };

export interface NativeEigResult {
  values: Float64Array; vectors?: Float32Array | Float64Array; residuals: Float64Array;
  converged: boolean; restarts: number; products: number;
}

export interface NativeDataset {
  n: number; dIn: number; dOut: number; inputs: Float32Array; targets?: Float32Array; labels?: Int32Array;
}

/** Everything the .node exports (kept in step with native/addon). */
export interface NativeBinding {
  setErrorFactory(f: (code: string, message: string) => Error): void;
  CancelHandle: new () => NativeCancelHandle;
  buildInfo(): { version: string; cuda: boolean; compiler: string; napiVersion: number; cpuIsa: string; activeIsa: string };
  devices(): { cpu: { threads: number; isa: string }; cuda: NativeGpuReport };
  numThreads(): number;
  setNumThreads(n: number): void;
  setIsaLimit(isa: string): string;
  resolveDevice(d: string): 'cpu' | 'cuda';
  measureBandwidth(o: NativeOpBase & { bytes: number; samples: number }): Promise<{ gbs: number; sampleMs: Float64Array; bytes: number; threads: number }>;
  linalg: {
    matmul(o: NativeOpBase & {
      a: Float32Array; b: Float32Array; c: Float32Array; m: number; n: number; k: number;
      transA: boolean; transB: boolean; alpha: number; beta: number; checkFinite: boolean;
    }): Promise<'cpu' | 'cuda'>;
    matvec(o: NativeOpBase & {
      a: Float32Array; x: Float32Array; y: Float32Array; m: number; n: number;
      trans: boolean; alpha: number; beta: number; checkFinite: boolean;
    }): Promise<'cpu' | 'cuda'>;
    vector(o: NativeOpBase & { op: 'dot' | 'nrm2' | 'axpy'; x: Float32Array; y?: Float32Array; alpha?: number }): Promise<number | undefined>;
  };
  io: {
    openSafetensors(o: NativeOpBase & { path: string; mmap: boolean }): Promise<unknown>;
    writeSafetensors(o: NativeOpBase & { path: string; tensors: unknown[]; metadata: Record<string, string> }): Promise<void>;
  };
  attention: {
    dense(o: NativeOpBase & NativeQkv & { out: Float32Array; lse: Float32Array; scale: number; causal: boolean; queryOffset: number; checkFinite: boolean }): Promise<void>;
    sparse(o: NativeOpBase & NativeQkv & { out: Float32Array; lse: Float32Array; scale: number; indices: Int32Array; offsets: Float64Array; perQueryHead: boolean }): Promise<void>;
    merge(o: { rows: number; d: number; outA: Float32Array; lseA: Float32Array; outB: Float32Array; lseB: Float32Array }): void;
    kmeans(o: NativeOpBase & Record<string, unknown>): Promise<{
      clusters: number; centroids: Float32Array; labels: Int32Array; sizes: Int32Array; inertia: number;
      iterations: number; reseeded: number; converged: boolean; history: Float64Array;
    }>;
    squeeze(o: NativeOpBase & Record<string, unknown>): Promise<NativeSqueezedContext>;
    contextFromArrays(o: Record<string, unknown>): NativeSqueezedContext;
  };
  hessian: {
    eigs(o: NativeOpBase & { operator: NativeOperator; k: number; which: string; tol: number; maxProducts: number; basis: number; seed: number; vectors: boolean }): Promise<NativeEigResult>;
    power(o: NativeOpBase & { operator: NativeOperator; k: number; maxIter: number; tol: number; seed: number; vectors: boolean }): Promise<NativeEigResult>;
    trace(o: NativeOpBase & { operator: NativeOperator; method: string; maxProducts: number; minSamples: number; relTol: number; absTol: number; seed: number }): Promise<{
      estimate: number; stdError: number; samples: Float64Array; converged: boolean; products: number;
    }>;
    density(o: NativeOpBase & { operator: NativeOperator; steps: number; runs: number; seed: number; gridPoints: number; sigmaSquared: number; overhead: number }): Promise<{
      runs: number; steps: number; nodes: Float64Array; weights: Float64Array; grid: Float64Array; density: Float64Array; variance: number; products: number;
    }>;
    lanczos(o: NativeOpBase & { operator: NativeOperator; steps: number; seed: number; reorthPasses: number }): Promise<{
      alpha: Float64Array; beta: Float64Array; restarts: number; products: number;
    }>;
    tridiagonalEigen(o: { alpha: Float64Array; beta: Float64Array; vectors: boolean }): { values: Float64Array; vectors?: Float64Array };
  };
  models: {
    createMlp(o: Record<string, unknown>): NativeObjectiveHandle;
    createPinn(o: Record<string, unknown>): NativeObjectiveHandle;
    initParams(o: { widths: number[]; activation: string; seed: number; init: string }): Float32Array;
    dataset(o: Record<string, unknown>): NativeDataset;
  };
}

const here = dirname(fileURLToPath(import.meta.url));
/** The package root (dist/lib/ → ../..). */
export const packageRoot = resolve(here, '..', '..');

function candidates(): string[] {
  const list: string[] = [];
  const env = process.env['NNSCOPE_NATIVE'];
  if (env) return [resolve(env)];
  list.push(join(packageRoot, 'build', 'Release', 'nnscope.node'));
  list.push(join(packageRoot, 'build', 'Debug', 'nnscope.node'));
  return list;
}

let cached: NativeBinding | undefined;
let loadedFrom: string | undefined;

/** The loaded addon (loaded on first use). Throws ERR_NATIVE_LOAD listing every path tried. */
export function native(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidates()) {
    if (!existsSync(path)) {
      tried.push(`  ${path}: not found`);
      continue;
    }
    try {
      const binding = require(path) as NativeBinding;
      binding.setErrorFactory(fromNative);
      cached = binding;
      loadedFrom = path;
      return binding;
    } catch (e) {
      tried.push(`  ${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new NnscopeError(
    'ERR_NATIVE_LOAD',
    `cannot load the nnscope native addon. Tried:\n${tried.join('\n')}\n` +
      'Build it with `npm run build:native` (needs cmake and a C++17 compiler), or set NNSCOPE_NATIVE to a built nnscope.node.',
  );
}

/** Path of the loaded addon (undefined before the first load). */
export function nativePath(): string | undefined {
  return loadedFrom;
}
