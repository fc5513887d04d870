/**
 * Dense single-precision linear algebra on the CPU (packed, multi-threaded
 * AVX2/AVX-512 kernels) or CUDA. Every op is async and cancellable.
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { type DeviceName, type TensorLike, allocate, boolean, deviceArg, finiteNumber, optionsArg, tensorArg } from '../validate.js';

export interface DeviceOptions {
  /** 'auto' (default: CUDA when available, else CPU), 'cpu' or 'cuda' (ERR_DEVICE_UNAVAILABLE without a GPU). */
  device?: DeviceName;
}

export interface MatmulOptions extends AsyncOptions, DeviceOptions {
  /** Use Aᵀ: `a` is then k×m. */
  transA?: boolean;
  /** Use Bᵀ: `b` is then n×k. */
  transB?: boolean;
  /** Scale of A·B (default 1). */
  alpha?: number;
  /** Scale of `c` added to the product (default 0; needs `c` when non-zero). */
  beta?: number;
  /** The m×n matrix added with weight beta. It is read, not modified: the result is a new tensor. */
  c?: TensorLike<Float32Array>;
  /** Refuse NaN/±Infinity in `a` and `b` with ERR_NON_FINITE (default true; false lets them propagate). */
  checkFinite?: boolean;
}

/**
 * C = alpha · op(A) · op(B) + beta · C for float32 matrices (row-major).
 * Resolves to a new m×n float32 Tensor.
 */
export async function matmul(a: TensorLike<Float32Array>, b: TensorLike<Float32Array>, options?: MatmulOptions): Promise<Tensor<Float32Array>> {
  const o = optionsArg<MatmulOptions>(options);
  const A = tensorArg<Float32Array>(a, 'a', { dtype: 'float32', ndim: 2 });
  const B = tensorArg<Float32Array>(b, 'b', { dtype: 'float32', ndim: 2 });
  const transA = boolean(o.transA, 'transA', false);
  const transB = boolean(o.transB, 'transB', false);
  const alpha = finiteNumber(o.alpha, 'alpha', 1);
  const beta = finiteNumber(o.beta, 'beta', 0);
  const checkFinite = boolean(o.checkFinite, 'checkFinite', true);
  const device = deviceArg(o.device);
  const [ar, ac] = A.shape as [number, number];
  const [br, bc] = B.shape as [number, number];
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    throw new NnscopeError(
      'ERR_SHAPE',
      `matmul: inner dimensions differ: op(a) is ${m}×${k}, op(b) is ${kb}×${n} (a [${A.shape.join(', ')}]${transA ? 'ᵀ' : ''}, b [${B.shape.join(', ')}]${transB ? 'ᵀ' : ''})`,
    );
  }
  if (m * n * Math.max(k, 1) > Number.MAX_SAFE_INTEGER) {
    throw new NnscopeError('ERR_TOO_LARGE', `matmul: ${m}×${k} by ${k}×${n} is too large`);
  }
  let out: Float32Array;
  if (beta !== 0) {
    if (o.c === undefined) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'matmul: beta ≠ 0 needs options.c');
    const C = tensorArg<Float32Array>(o.c, 'c', { dtype: 'float32', ndim: 2 });
    if (C.shape[0] !== m || C.shape[1] !== n) {
      throw new NnscopeError('ERR_SHAPE', `matmul: c must be ${m}×${n} (got [${C.shape.join(', ')}])`);
    }
    out = C.data.slice();
  } else {
    out = allocate(m * n, 'the matmul result');
  }
  await runOp(o, (base) =>
    native().linalg.matmul({ ...base, device, a: A.data, b: B.data, c: out, m, n, k, transA, transB, alpha, beta, checkFinite }),
  );
  return new Tensor(out, [m, n]);
}

export interface MatvecOptions extends AsyncOptions, DeviceOptions {
  /** Use Aᵀ (x then has m entries, the result n). */
  trans?: boolean;
  alpha?: number;
  checkFinite?: boolean;
}

/** y = alpha · op(A) · x for a float32 matrix A (m×n) and vector x. Resolves to a new vector. */
export async function matvec(a: TensorLike<Float32Array>, x: TensorLike<Float32Array>, options?: MatvecOptions): Promise<Tensor<Float32Array>> {
  const o = optionsArg<MatvecOptions>(options);
  const A = tensorArg<Float32Array>(a, 'a', { dtype: 'float32', ndim: 2 });
  const X = tensorArg<Float32Array>(x, 'x', { dtype: 'float32', ndim: 1 });
  const trans = boolean(o.trans, 'trans', false);
  const alpha = finiteNumber(o.alpha, 'alpha', 1);
  const checkFinite = boolean(o.checkFinite, 'checkFinite', true);
  const device = deviceArg(o.device);
  const [m, n] = A.shape as [number, number];
  const xl = trans ? m : n;
  if (X.shape[0] !== xl) {
    throw new NnscopeError('ERR_SHAPE', `matvec: x must have ${xl} entries for a [${m}, ${n}]${trans ? 'ᵀ' : ''} matrix (got ${X.shape[0]})`);
  }
  const y = allocate(trans ? n : m, 'the matvec result');
  await runOp(o, (base) => native().linalg.matvec({ ...base, device, a: A.data, x: X.data, y, m, n, trans, alpha, beta: 0, checkFinite }));
  return new Tensor(y, [y.length]);
}

function vectorPair(x: TensorLike<Float32Array>, y: TensorLike<Float32Array>, what: string): [Float32Array, Float32Array] {
  const X = tensorArg<Float32Array>(x, 'x', { dtype: 'float32' });
  const Y = tensorArg<Float32Array>(y, 'y', { dtype: 'float32' });
  if (X.data.length !== Y.data.length) {
    throw new NnscopeError('ERR_SHAPE', `${what}: x and y have ${X.data.length} and ${Y.data.length} elements`);
  }
  return [X.data, Y.data];
}

/** Σ xᵢyᵢ over all elements (accumulated in float64). */
export async function dot(x: TensorLike<Float32Array>, y: TensorLike<Float32Array>, options?: AsyncOptions & DeviceOptions): Promise<number> {
  const o = optionsArg<AsyncOptions & DeviceOptions>(options);
  const [X, Y] = vectorPair(x, y, 'dot');
  const device = deviceArg(o.device);
  return (await runOp(o, (base) => native().linalg.vector({ ...base, device, op: 'dot', x: X, y: Y }))) as number;
}

/** Euclidean norm of all elements (accumulated in float64: no overflow for float32 data). */
export async function norm(x: TensorLike<Float32Array>, options?: AsyncOptions & DeviceOptions): Promise<number> {
  const o = optionsArg<AsyncOptions & DeviceOptions>(options);
  const X = tensorArg<Float32Array>(x, 'x', { dtype: 'float32' });
  const device = deviceArg(o.device);
  return (await runOp(o, (base) => native().linalg.vector({ ...base, device, op: 'nrm2', x: X.data }))) as number;
}

/** alpha·x + y as a new tensor with y's shape. */
export async function axpy(alpha: number, x: TensorLike<Float32Array>, y: TensorLike<Float32Array>, options?: AsyncOptions & DeviceOptions): Promise<Tensor<Float32Array>> {
  const o = optionsArg<AsyncOptions & DeviceOptions>(options);
  const a = finiteNumber(alpha, 'alpha');
  const [X, Y] = vectorPair(x, y, 'axpy');
  const device = deviceArg(o.device);
  const out = Y.slice();
  await runOp(o, (base) => native().linalg.vector({ ...base, device, op: 'axpy', x: X, y: out, alpha: a }));
  return new Tensor(out, y.shape);
}
