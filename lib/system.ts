import { type NativeGpuReport, native, nativePath } from './native.js';
import { integer } from './validate.js';

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
