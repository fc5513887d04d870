/**
 * Runs an async native op with the options every op shares: an AbortSignal wired
 * to the native cancellation token, and a progress callback.
 */
import { NnscopeError, isNnscopeError } from './errors.js';
import { type NativeOpBase, type ProgressEvent, native } from './native.js';
import { callbackArg, signalArg } from './validate.js';

export type { ProgressEvent };

/** Options shared by every long-running op. */
export interface AsyncOptions {
  /** Aborting rejects the call with an ERR_CANCELLED NnscopeError (its `cause` is the signal's reason). */
  signal?: AbortSignal;
  /** Called with {done, total, fraction} at most every 50 ms, and once at the end. */
  onProgress?: (p: ProgressEvent) => void;
}

function cancelledError(signal: AbortSignal): NnscopeError {
  return new NnscopeError('ERR_CANCELLED', 'the operation was cancelled', { cause: signal.reason });
}

/** Calls `start(base)` with cancel/onProgress filled in from `opts`; maps errors. */
export async function runOp<T>(opts: AsyncOptions, start: (base: NativeOpBase) => Promise<T>): Promise<T> {
  const signal = signalArg(opts.signal);
  const onProgress = callbackArg<(p: ProgressEvent) => void>(opts.onProgress, 'onProgress');
  if (signal?.aborted) throw cancelledError(signal);
  const base: NativeOpBase = {};
  let onAbort: (() => void) | undefined;
  if (signal) {
    const handle = new (native().CancelHandle)();
    base.cancel = handle;
    onAbort = () => handle.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
  }
  if (onProgress) base.onProgress = onProgress;
  // Capture the caller's stack: native rejections carry none.
  const callSite = new Error();
  try {
    return await start(base);
  } catch (e) {
    if (isNnscopeError(e, 'ERR_CANCELLED') && signal?.aborted) throw cancelledError(signal);
    if (e instanceof NnscopeError && callSite.stack) {
      e.stack = `${e.name} [${e.code}]: ${e.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
    }
    throw e;
  } finally {
    if (signal && onAbort) signal.removeEventListener('abort', onAbort);
  }
}
