import { NnscopeError } from './errors.js';

/** Element types a Tensor may hold. */
export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint16' | 'uint8';

export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'uint32'
        ? Uint32Array
        : D extends 'uint16'
          ? Uint16Array
          : Uint8Array;

export type AnyTypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

const CTORS = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint16: Uint16Array,
  uint8: Uint8Array,
} as const;

/** The dtype of a typed array, or undefined for any other value. */
export function dtypeOf(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Uint8Array && !(data instanceof Uint8ClampedArray)) return 'uint8';
  return undefined;
}

/** Largest element count nnscope accepts in one tensor (2^32 - 1 bytes' worth is V8's own cap). */
export const MAX_ELEMENTS = 2 ** 32 - 1;

/** Product of the dimensions; throws ERR_SHAPE for a bad dimension, ERR_TOO_LARGE past MAX_ELEMENTS. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new NnscopeError('ERR_SHAPE', `shape [${shape.join(', ')}] has an invalid dimension ${String(d)}`);
    }
    n *= d;
  }
  if (n > MAX_ELEMENTS || !Number.isSafeInteger(n)) {
    throw new NnscopeError('ERR_TOO_LARGE', `shape [${shape.join(', ')}] has ${n} elements, more than ${MAX_ELEMENTS}`);
  }
  return n;
}

/** A float32 tensor, the compute type of most ops. */
export type Float32Tensor = Tensor<Float32Array>;

/**
 * A row-major typed array with a shape. No operator library: it exists to carry
 * data and shape together, in and out of nnscope ops. The data is shared, never
 * copied: `reshape` returns a view on the same array.
 */
export class Tensor<A extends AnyTypedArray = AnyTypedArray> {
  readonly data: A;
  readonly shape: readonly number[];

  constructor(data: A, shape: readonly number[]) {
    if (dtypeOf(data) === undefined) {
      throw new NnscopeError('ERR_DTYPE', 'Tensor data must be a Float32Array, Float64Array, Int32Array, Uint32Array, Uint16Array or Uint8Array');
    }
    const n = shapeSize(shape);
    if (n !== data.length) {
      throw new NnscopeError('ERR_SHAPE', `shape [${shape.join(', ')}] needs ${n} elements, data has ${data.length}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  /** A zero-filled tensor. */
  static zeros<D extends DType = 'float32'>(shape: readonly number[], dtype: D = 'float32' as D): Tensor<TypedArrayOf<D>> {
    const n = shapeSize(shape);
    let data: TypedArrayOf<D>;
    try {
      data = new CTORS[dtype](n) as TypedArrayOf<D>;
    } catch (e) {
      throw new NnscopeError('ERR_OUT_OF_MEMORY', `cannot allocate ${n} ${dtype} elements`, { cause: e });
    }
    return new Tensor(data, shape);
  }

  /** A tensor from nested arrays of numbers (small data, tests, examples). */
  static from<D extends DType = 'float32'>(values: number | readonly unknown[], dtype: D = 'float32' as D): Tensor<TypedArrayOf<D>> {
    const shape: number[] = [];
    let probe: unknown = values;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    const flat = (Array.isArray(values) ? values.flat(Infinity) : [values]) as unknown[];
    const n = shapeSize(shape);
    if (flat.length !== n || flat.some((v) => typeof v !== 'number')) {
      throw new NnscopeError('ERR_SHAPE', 'Tensor.from needs a rectangular nested array of numbers');
    }
    return new Tensor(CTORS[dtype].from(flat as number[]) as TypedArrayOf<D>, shape);
  }

  get dtype(): DType {
    return dtypeOf(this.data) as DType;
  }
  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }

  /** A view with another shape of the same size (one dimension may be -1). */
  reshape(shape: readonly number[]): Tensor<A> {
    const free = shape.indexOf(-1);
    if (free >= 0) {
      const rest = shapeSize(shape.filter((_, i) => i !== free));
      const fixed = [...shape];
      fixed[free] = rest === 0 ? 0 : this.size / rest;
      return new Tensor(this.data, fixed);
    }
    return new Tensor(this.data, shape);
  }

  /** The element at a multi-index (bounds-checked). */
  at(...index: number[]): number {
    if (index.length !== this.ndim) {
      throw new NnscopeError('ERR_SHAPE', `index has ${index.length} components, tensor has ${this.ndim} dimensions`);
    }
    let off = 0;
    for (let i = 0; i < index.length; i++) {
      const k = index[i]!;
      const d = this.shape[i]!;
      if (!Number.isInteger(k) || k < 0 || k >= d) {
        throw new NnscopeError('ERR_SHAPE', `index ${k} is out of range for dimension ${i} of size ${d}`);
      }
      off = off * d + k;
    }
    return this.data[off] as number;
  }

  /** Nested JavaScript arrays (small tensors: printing, tests). */
  toArray(): unknown {
    const build = (dim: number, off: number): unknown => {
      const d = this.shape[dim]!;
      if (dim === this.ndim - 1) return Array.from(this.data.subarray(off, off + d) as ArrayLike<number>);
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: d }, (_, i) => build(dim + 1, off + i * stride));
    };
    return this.ndim === 0 ? this.data[0] : build(0, 0);
  }
}
