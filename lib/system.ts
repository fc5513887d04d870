import { type NativeGpuReport, native, nativePath } from './native.js';
import { type AsyncOptions, runOp } from './async.js';
import { integer, optionsArg } from './validate.js';

export type CudaReport = NativeGpuReport;

export interface DevicesReport {
  cpu: { threads: number; isa: string };
  cuda: CudaReport;
}

/** What was compiled in and what answered: the CPU pool and ISA, and CUDA's state with the reason when unavailable. */
export function devices(): DevicesReport {
  return native().devices();
}

/** The native build: version, CUDA compiled in, compiler, CPU ISA, and where the addon was loaded from. */
export function buildInfo(): ReturnType<ReturnType<typeof native>['buildInfo']> & { path: string } {
  const info = native().buildInfo();
  return { ...info, path: nativePath() ?? '' };
}

/** Threads of the process-wide native pool. */
export function numThreads(): number {
  return native().numThreads();
}

/** Sets the process-wide native pool size (1–1024). Defaults to the number of cores, or $NNSCOPE_NUM_THREADS. */
export function setNumThreads(n: number): void {
  native().setNumThreads(integer(n, 'threads', 1, 1024));
}

/**
 * Measures the machine's memory read bandwidth (GB/s, median of `samples` passes
 * over a `bytes` buffer with every pool thread): the roofline for bandwidth-bound
 * ops such as decode attention. For benchmarks; allocates `bytes`.
 */
export async function measureBandwidth(options?: AsyncOptions & { bytes?: number; samples?: number }): Promise<{ gbs: number; sampleMs: Float64Array; bytes: number; threads: number }> {
  const o = optionsArg<AsyncOptions & { bytes?: number; samples?: number }>(options);
  const bytes = integer(o.bytes, 'bytes', 1 << 20, Number.MAX_SAFE_INTEGER, 1 << 30);
  const samples = integer(o.samples, 'samples', 1, 1000, 5);
  return runOp(o, (base) => native().measureBandwidth({ ...base, bytes, samples }));
}
