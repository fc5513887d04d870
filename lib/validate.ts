/**
 * Argument validators shared by every family. They run before any native call,
 * are O(1) in the data size (finiteness is checked natively), and throw
 * NnscopeError with a stable code.
 */
import { NnscopeError } from './errors.js';
import { type AnyTypedArray, type DType, dtypeOf, shapeSize } from './tensor.js';

export type DeviceName = 'auto' | 'cpu' | 'cuda';

/** Anything with `data` and `shape`: a Tensor or a plain `{ data, shape }` object. */
export interface TensorLike<A extends AnyTypedArray = AnyTypedArray> {
  data: A;
  shape: readonly number[];
}

export function isDetached(data: AnyTypedArray): boolean {
  if (data.byteLength !== 0) return false;
  try {
    new Uint8Array(data.buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Rejects a typed array whose buffer was transferred or detached. */
export function checkAttached(data: AnyTypedArray, name: string): void {
  if (isDetached(data)) {
    throw new NnscopeError('ERR_DETACHED', `${name} is backed by a detached ArrayBuffer (was it transferred?)`);
  }
}

export interface TensorSpec {
  dtype?: DType | readonly DType[];
  ndim?: number;
}

/** Validates a tensor argument: typed data, a consistent shape, the wanted dtype and rank. */
export function tensorArg<A extends AnyTypedArray = AnyTypedArray>(value: unknown, name: string, spec: TensorSpec = {}): TensorLike<A> {
  if (value === null || typeof value !== 'object' || !('data' in value) || !('shape' in value)) {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be a Tensor or { data, shape }`);
  }
  const { data, shape } = value as { data: unknown; shape: unknown };
  const dtype = dtypeOf(data);
  if (dtype === undefined) {
    throw new NnscopeError('ERR_DTYPE', `${name}.data must be a typed array (got ${describe(data)})`);
  }
  checkAttached(data as AnyTypedArray, name);
  if (!Array.isArray(shape)) throw new NnscopeError('ERR_SHAPE', `${name}.shape must be an array of integers`);
  if (spec.dtype !== undefined) {
    const allowed = typeof spec.dtype === 'string' ? [spec.dtype] : spec.dtype;
    if (!allowed.includes(dtype)) {
      throw new NnscopeError('ERR_DTYPE', `${name} must be ${allowed.join(' or ')} (got ${dtype})`);
    }
  }
  if (spec.ndim !== undefined && shape.length !== spec.ndim) {
    throw new NnscopeError('ERR_SHAPE', `${name} must have ${spec.ndim} dimensions (got shape [${shape.join(', ')}])`);
  }
  const n = shapeSize(shape as number[]);
  if (n !== (data as AnyTypedArray).length) {
    throw new NnscopeError('ERR_SHAPE', `${name}.shape [${shape.join(', ')}] needs ${n} elements, data has ${(data as AnyTypedArray).length}`);
  }
  return value as TensorLike<A>;
}

export function deviceArg(value: unknown): DeviceName {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'cpu' || value === 'cuda') return value;
  throw new NnscopeError('ERR_UNKNOWN_DEVICE', `unknown device ${describe(value)} (expected 'auto', 'cpu' or 'cuda')`);
}

export function finiteNumber(value: unknown, name: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new NnscopeError(typeof value === 'number' ? 'ERR_NON_FINITE' : 'ERR_INVALID_ARGUMENT', `${name} must be a finite number (got ${describe(value)})`);
  }
  return value;
}

export function integer(value: unknown, name: string, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}] (got ${describe(value)})`);
  }
  return value;
}

export function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be a boolean (got ${describe(value)})`);
  return value;
}

export function signalArg(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'signal must be an AbortSignal');
  return value;
}

export function callbackArg<F extends (...args: never[]) => unknown>(value: unknown, name: string): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be a function`);
  return value as F;
}

export function optionsArg<T extends object>(value: unknown, name = 'options'): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be an object`);
  return value as Partial<T>;
}

/** Allocates a typed array, turning V8's RangeError into ERR_OUT_OF_MEMORY. */
export function allocate(n: number, what: string): Float32Array {
  try {
    return new Float32Array(n);
  } catch (e) {
    throw new NnscopeError('ERR_OUT_OF_MEMORY', `cannot allocate ${n} float32 elements for ${what}`, { cause: e });
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}
