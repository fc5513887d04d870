/**
 * Isolines of a regular 2-D grid by marching squares, joined into polylines.
 * Grid convention (as `heatmapSvg`): `values[i·ny + j]` is the value at
 * x = x0 + i·(x1 − x0)/(nx − 1), y = y0 + j·(y1 − y0)/(ny − 1) (last axis fastest).
 */

/** One polyline of a level set; `closed` loops repeat their first point at the end. */
export interface Isoline {
  level: number;
  x: Float64Array;
  y: Float64Array;
  closed: boolean;
}

/** A validated grid (see `LandscapeGrid` in index.ts). */
export interface GridData {
  values: ArrayLike<number>;
  nx: number;
  ny: number;
  xRange: readonly [number, number];
  yRange: readonly [number, number];
}

/**
 * The polylines where the grid's bilinear-edge interpolant equals each level. A vertex counts as
 * above a level when value ≥ level; saddle cells are split by the cell-centre mean. Lines end on the
 * grid boundary or close on themselves. Inputs are assumed validated (finite, nx, ny ≥ 2).
 */
export function traceIsolines(grid: GridData, levels: readonly number[]): Isoline[] {
  const { values: v, nx, ny } = grid;
  const [x0, x1] = grid.xRange;
  const [y0, y1] = grid.yRange;
  const hx = (x1 - x0) / (nx - 1);
  const hy = (y1 - y0) / (ny - 1);
  const out: Isoline[] = [];
  for (const level of levels) {
    // Edge keys: 2·(i·ny + j) is the x-edge (i,j)–(i+1,j); 2·(i·ny + j) + 1 the y-edge (i,j)–(i,j+1).
    const point = new Map<number, [number, number]>();
    const segA: number[] = [];
    const segB: number[] = [];
    const cross = (key: number): number => {
      if (!point.has(key)) {
        const p = key >> 1;
        const i = Math.floor(p / ny);
        const j = p - i * ny;
        const a = v[p]!;
        const b = key & 1 ? v[p + 1]! : v[p + ny]!;
        const t = (level - a) / (b - a);
        point.set(key, key & 1 ? [x0 + i * hx, y0 + (j + t) * hy] : [x0 + (i + t) * hx, y0 + j * hy]);
      }
      return key;
    };
    for (let i = 0; i + 1 < nx; i++) {
      for (let j = 0; j + 1 < ny; j++) {
        const p = i * ny + j;
        const a00 = v[p]!, a10 = v[p + ny]!, a11 = v[p + ny + 1]!, a01 = v[p + 1]!;
        const c = (a00 >= level ? 1 : 0) | (a10 >= level ? 2 : 0) | (a11 >= level ? 4 : 0) | (a01 >= level ? 8 : 0);
        if (c === 0 || c === 15) continue;
        const bottom = 2 * p, right = 2 * (p + ny) + 1, top = 2 * (p + 1), left = 2 * p + 1;
        const seg = (e: number, f: number): void => {
          segA.push(cross(e));
          segB.push(cross(f));
        };
        if (c === 5 || c === 10) {
          // Saddle: cut off the two corners that the centre value does not join.
          const centreAbove = (a00 + a10 + a11 + a01) / 4 >= level;
          if ((c === 5) === centreAbove) {
            seg(bottom, right); // corner (i+1, j)
            seg(top, left); // corner (i, j+1)
          } else {
            seg(bottom, left); // corner (i, j)
            seg(right, top); // corner (i+1, j+1)
          }
          continue;
        }
        const edges: number[] = [];
        if ((c & 1) !== (c >> 1 & 1)) edges.push(bottom);
        if ((c >> 1 & 1) !== (c >> 2 & 1)) edges.push(right);
        if ((c >> 2 & 1) !== (c >> 3 & 1)) edges.push(top);
        if ((c >> 3 & 1) !== (c & 1)) edges.push(left);
        seg(edges[0]!, edges[1]!);
      }
    }
    out.push(...joinSegments(level, segA, segB, point));
  }
  return out;
}

/** Chains segments sharing an edge crossing into polylines: open chains first (from a free end), then loops. */
function joinSegments(level: number, segA: number[], segB: number[], point: Map<number, [number, number]>): Isoline[] {
  const at = new Map<number, number[]>();
  for (let s = 0; s < segA.length; s++) {
    for (const k of [segA[s]!, segB[s]!]) {
      const l = at.get(k);
      if (l) l.push(s);
      else at.set(k, [s]);
    }
  }
  const used = new Uint8Array(segA.length);
  const lines: Isoline[] = [];
  const walk = (start: number, first: number): void => {
    const keys = [start];
    let key = start;
    let s = first;
    while (s >= 0 && !used[s]) {
      used[s] = 1;
      key = segA[s] === key ? segB[s]! : segA[s]!;
      keys.push(key);
      s = at.get(key)!.find((t) => !used[t]) ?? -1;
    }
    const closed = keys.length > 2 && keys[0] === keys[keys.length - 1];
    const x = new Float64Array(keys.length);
    const y = new Float64Array(keys.length);
    keys.forEach((k, n) => {
      const [px, py] = point.get(k)!;
      x[n] = px;
      y[n] = py;
    });
    lines.push({ level, x, y, closed });
  };
  for (const [key, segs] of at) if (segs.length === 1 && !used[segs[0]!]) walk(key, segs[0]!);
  for (let s = 0; s < segA.length; s++) if (!used[s]) walk(segA[s]!, s);
  return lines;
}
