/** Shared test helpers: seeded random data and float64 references. */
import type { ExecutionContext } from 'ava';
import { type ErrorCode, NnscopeError, Tensor } from '../lib/index.js';

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

/** Asserts that a promise rejects (or a function throws) with an NnscopeError of `code`. */
export async function expectCode(t: ExecutionContext, p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  const e = typeof p === 'function' ? t.throws(p as () => unknown, { instanceOf: NnscopeError }) : await t.throwsAsync(p, { instanceOf: NnscopeError });
  t.is(e?.code, code, e?.message);
}

/** A standard normal sample from a uniform generator (Box–Muller). */
export function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Q·diag(λ)·Qᵀ (row-major float64) with Q a random orthogonal matrix (modified Gram–Schmidt of a Gaussian matrix). */
export function spectrumMatrix(lambda: readonly number[], seed: number): Float64Array {
  const n = lambda.length;
  const r = rng(seed);
  const q = Array.from({ length: n }, () => Float64Array.from({ length: n }, () => gaussian(r)));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let d = 0;
      for (let p = 0; p < n; p++) d += q[i]![p]! * q[j]![p]!;
      for (let p = 0; p < n; p++) q[i]![p]! -= d * q[j]![p]!;
    }
    let s = 0;
    for (let p = 0; p < n; p++) s += q[i]![p]! ** 2;
    s = Math.sqrt(s);
    for (let p = 0; p < n; p++) q[i]![p]! /= s;
  }
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += q[p]![i]! * lambda[p]! * q[p]![j]!;
      a[i * n + j] = s;
      a[j * n + i] = s;
    }
  }
  return a;
}

/** Eigenvalues (descending) of a small symmetric matrix by cyclic Jacobi rotations, float64. */
export function jacobiEigenvalues(a: Float64Array, n: number): number[] {
  const m = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += m[i * n + j]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (apq === 0) continue;
        const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
        const tt = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(tt * tt + 1);
        const s = tt * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p]!;
          const akq = m[k * n + q]!;
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k]!;
          const aqk = m[q * n + k]!;
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => m[i * n + i]!).sort((x, y) => y - x);
}
