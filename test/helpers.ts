/** Shared test helpers: seeded random data and float64 references. */
import { Tensor } from '../lib/index.js';

/** mulberry32: a tiny seeded generator for test inputs. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomMatrix(rows: number, cols: number, seed: number): Tensor<Float32Array> {
  const r = rng(seed);
  const t = Tensor.zeros([rows, cols]);
  for (let i = 0; i < t.data.length; i++) t.data[i] = r() * 2 - 1;
  return t;
}

/** float64 reference of alpha·op(A)·op(B) + beta·C. */
export function refGemm(
  a: Float32Array, b: Float32Array, m: number, n: number, k: number,
  o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number; c?: Float32Array } = {},
): Float64Array {
  const { transA = false, transB = false, alpha = 1, beta = 0, c } = o;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = transB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
      }
      out[i * n + j] = alpha * s + (beta !== 0 && c ? beta * c[i * n + j]! : 0);
    }
  }
  return out;
}

/** ‖x − ref‖_F / ‖ref‖_F (absolute error when ref is zero). */
export function relFrobenius(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
