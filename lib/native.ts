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
