/**
 * SVG pictures of landscapes, topology and Hessian spectra, rendered headless in Node with
 * vega-lite + vega (no browser, no canvas; loaded lazily on the first call). Every function
 * validates its plain-data input, is async, and resolves to a string starting with `<svg`.
 */
import { writeFile } from 'node:fs/promises';
import type { TopLevelSpec } from 'vega-lite';
import { NnscopeError } from '../errors.js';
import { boolean, finiteNumber, integer, optionsArg } from '../validate.js';
import { type Isoline, traceIsolines } from './contour.js';
import { renderSvg } from './render.js';

export type { Isoline } from './contour.js';

/** Options every plot takes. */
export interface PlotOptions {
  title?: string;
  /** Plot-area size in pixels (axes, legend and title add to it). */
  width?: number;
  height?: number;
}

// ---------------------------------------------------------------------------------------------
// Topological landscape profile

/**
 * One basin of a topological landscape profile (Landscaper's `generate_profile`): a polygon in
 * (x = sample count, y = loss). The polygon is implicitly closed (its last vertex joins the
 * first); repeating the first vertex at the end is allowed and changes nothing.
 */
export interface ProfileBasin {
  id: number;
  /** The id of the enclosing basin, or −1 for a root. */
  parent: number;
  polygon: { x: ArrayLike<number>; y: ArrayLike<number> };
  /** Mean loss of the basin's samples: sets the fill colour. */
  meanLoss: number;
}

export interface ProfileOptions extends PlotOptions {
  /** Log loss axis and log colour scale (needs every y and meanLoss > 0). Default false. */
  logY?: boolean;
  /** A Vega colour scheme name (default 'blues'). */
  colorScheme?: string;
  /** Reverse the scheme (default true: with 'blues', darker is lower loss). */
  reverseColors?: boolean;
  xTitle?: string;
  yTitle?: string;
}

/** Filled basin polygons coloured by mean loss (with a legend); parents are drawn under their children. */
export async function profileSvg(basins: readonly ProfileBasin[], options?: ProfileOptions): Promise<string> {
  const o = optionsArg<ProfileOptions>(options);
  const common = plotOptions(o, 480, 360);
  const logY = boolean(o.logY, 'logY', false);
  const scheme = stringOption(o.colorScheme, 'colorScheme', 'blues');
  const reverse = boolean(o.reverseColors, 'reverseColors', true);
  if (!Array.isArray(basins)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'basins must be an array of { id, parent, polygon: { x, y }, meanLoss }');
  if (basins.length === 0) throw new NnscopeError('ERR_SHAPE', 'basins is empty');
  const byId = new Map<number, ProfileBasin>();
  basins.forEach((b, n) => {
    if (b === null || typeof b !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', `basins[${n}] must be an object`);
    const id = integer(b.id, `basins[${n}].id`, 0, Number.MAX_SAFE_INTEGER);
    if (byId.has(id)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `basins[${n}].id ${id} is not unique`);
    byId.set(id, b);
  });
  basins.forEach((b, n) => {
    if (b.parent === -1) return;
    integer(b.parent, `basins[${n}].parent`, 0, Number.MAX_SAFE_INTEGER);
    if (!byId.has(b.parent)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `basins[${n}].parent ${b.parent} is not the id of any basin (use -1 for a root)`);
  });
  const depth = new Map<number, number>();
  const depthOf = (id: number, seen: number): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (seen > byId.size) throw new NnscopeError('ERR_INVALID_ARGUMENT', `basin ${id} lies on a parent cycle`);
    const parent = byId.get(id)!.parent;
    const d = parent === -1 ? 0 : depthOf(parent, seen + 1) + 1;
    depth.set(id, d);
    return d;
  };
  const rows: Record<string, number>[] = [];
  const order = basins.map((b, n) => {
    const name = `basins[${n}]`;
    const meanLoss = finiteNumber(b.meanLoss, `${name}.meanLoss`);
    if (logY && meanLoss <= 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}.meanLoss must be > 0 with logY`);
    if (b.polygon === null || typeof b.polygon !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}.polygon must be { x, y }`);
    const x = finiteArray(b.polygon.x, `${name}.polygon.x`);
    const y = finiteArray(b.polygon.y, `${name}.polygon.y`);
    if (x.length !== y.length) throw new NnscopeError('ERR_SHAPE', `${name}.polygon has ${x.length} x and ${y.length} y values`);
    if (x.length < 3) throw new NnscopeError('ERR_SHAPE', `${name}.polygon needs at least 3 vertices (has ${x.length})`);
    if (logY && y.some((v) => v <= 0)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}.polygon.y must be > 0 with logY`);
    return { b, x, y, meanLoss, depth: depthOf(b.id, 0), n };
  });
  order.sort((p, q) => p.depth - q.depth || p.n - q.n);
  order.forEach(({ b, x, y, meanLoss }, rank) => {
    for (let k = 0; k < x.length; k++) rows.push({ rank, basin: b.id, vertex: k, samples: x[k]!, loss: y[k]!, meanLoss });
  });
  const scaleType = logY ? 'log' : 'linear';
  return renderSvg({
    ...common,
    data: { values: rows },
    mark: { type: 'line', interpolate: 'linear-closed', stroke: '#08306b', strokeWidth: 0.6, strokeJoin: 'round' },
    encoding: {
      x: { field: 'samples', type: 'quantitative', scale: { zero: false, nice: false }, axis: { title: o.xTitle ?? 'samples (basin width)' } },
      y: { field: 'loss', type: 'quantitative', scale: logY ? { type: 'log' } : { zero: false }, axis: { title: o.yTitle ?? 'loss' } },
      detail: { field: 'rank', type: 'quantitative' },
      order: { field: 'vertex', type: 'quantitative' },
      fill: { field: 'meanLoss', type: 'quantitative', scale: { type: scaleType, scheme, reverse, ...(logY ? {} : { zero: false }) }, legend: { title: 'mean loss' } },
    },
  } as TopLevelSpec);
}

// ---------------------------------------------------------------------------------------------
// Persistence diagram

/**
 * Persistence pairs as two equal-length columns. `death` may be +Infinity for an essential pair
 * (a class that never dies); every other value must be finite, with death ≥ birth.
 */
export interface PersistencePairs {
  birth: ArrayLike<number>;
  death: ArrayLike<number>;
}

export interface PersistenceDiagramOptions extends PlotOptions {
  /** A second diagram overlaid in another colour. */
  compare?: PersistencePairs;
  /** Legend labels of the diagram and of `compare` (default ['diagram', 'compare']). */
  labels?: [string, string];
  xTitle?: string;
  yTitle?: string;
}

/** Birth–death scatter with the diagonal; essential pairs sit on a dashed "∞" line above the largest death. */
export async function persistenceDiagramSvg(pairs: PersistencePairs, options?: PersistenceDiagramOptions): Promise<string> {
  const o = optionsArg<PersistenceDiagramOptions>(options);
  const common = plotOptions(o, 360, 360);
  const labels = o.labels ?? ['diagram', 'compare'];
  if (!Array.isArray(labels) || labels.length !== 2 || labels.some((l) => typeof l !== 'string') || labels[0] === labels[1]) {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', 'labels must be two different strings');
  }
  const sets = [pairsArg(pairs, 'pairs')];
  if (o.compare !== undefined) sets.push(pairsArg(o.compare, 'options.compare'));
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of sets) {
    for (let i = 0; i < s.birth.length; i++) {
      lo = Math.min(lo, s.birth[i]!);
      hi = Math.max(hi, s.birth[i]!, Number.isFinite(s.death[i]!) ? s.death[i]! : -Infinity);
    }
  }
  if (lo > hi) [lo, hi] = [0, 1];
  const span = hi - lo || Math.abs(hi) || 1;
  const inf = hi + 0.1 * span;
  const domain = [lo - 0.05 * span, inf + 0.05 * span];
  const points: { birth: number; death: number; diagram: string; essential: boolean }[] = [];
  sets.forEach((s, n) => {
    for (let i = 0; i < s.birth.length; i++) {
      const essential = s.death[i] === Infinity;
      points.push({ birth: s.birth[i]!, death: essential ? inf : s.death[i]!, diagram: labels[n]!, essential });
    }
  });
  const axis = (title: string) => ({ title, grid: false });
  const scale = { domain, nice: false, zero: false };
  return renderSvg({
    ...common,
    layer: [
      {
        data: { values: [{ a: domain[0], b: domain[1] }] },
        mark: { type: 'rule', color: '#888', strokeWidth: 1 },
        encoding: {
          x: { field: 'a', type: 'quantitative', scale, axis: axis(o.xTitle ?? 'birth') },
          y: { field: 'a', type: 'quantitative', scale, axis: axis(o.yTitle ?? 'death') },
          x2: { field: 'b' },
          y2: { field: 'b' },
        },
      },
      {
        data: { values: [{ a: domain[0], b: domain[1], y: inf }] },
        mark: { type: 'rule', color: '#888', strokeDash: [4, 3], strokeWidth: 1 },
        encoding: { x: { field: 'a', type: 'quantitative' }, x2: { field: 'b' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: [{ x: domain[0], y: inf, t: '∞' }] },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, dy: -1, fontSize: 13 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 't' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 36, opacity: 0.75 },
        encoding: {
          x: { field: 'birth', type: 'quantitative' },
          y: { field: 'death', type: 'quantitative' },
          color: {
            field: 'diagram',
            type: 'nominal',
            scale: { domain: labels.slice(0, sets.length), range: ['#1f77b4', '#d62728'] },
            legend: sets.length > 1 ? { title: null } : null,
          },
          shape: { field: 'essential', type: 'nominal', scale: { domain: [false, true], range: ['circle', 'triangle-up'] }, legend: null },
        },
      },
    ],
  } as TopLevelSpec);
}

// ---------------------------------------------------------------------------------------------
// Heat map with contours

/**
 * A 2-D landscape on a regular grid: `values` has nx·ny entries, row-major with the last axis
 * fastest, so values[i·ny + j] is the loss at x = x0 + i·(x1 − x0)/(nx − 1),
 * y = y0 + j·(y1 − y0)/(ny − 1). The ranges are inclusive: the first and last samples sit on them.
 */
export interface LandscapeGrid {
  values: ArrayLike<number>;
  nx: number;
  ny: number;
  xRange: [number, number];
  yRange: [number, number];
}

export interface HeatmapOptions extends PlotOptions {
  /**
   * Contour levels: a count of levels spaced evenly strictly between the grid's min and max
   * (geometrically with logColor), or the explicit level values. Default 10; 0 draws none.
   */
  levels?: number | ArrayLike<number>;
  /** Log colour scale (needs every value > 0). Default false. */
  logColor?: boolean;
  /** Where to mark θ₀ (default the centre of the ranges); null draws no marker. */
  center?: [number, number] | null;
  /** A Vega colour scheme name (default 'viridis'). */
  colorScheme?: string;
  xTitle?: string;
  yTitle?: string;
  /** Colour legend title (default 'loss'). */
  valueTitle?: string;
}

/** Most grid cells a heat map draws (each cell is one SVG rect). */
export const MAX_HEATMAP_CELLS = 250_000;

/** Grid cells as rects coloured by value, white contour lines, and a marker at θ₀. */
export async function heatmapSvg(grid: LandscapeGrid, options?: HeatmapOptions): Promise<string> {
  const o = optionsArg<HeatmapOptions>(options);
  const common = plotOptions(o, 400, 400);
  const logColor = boolean(o.logColor, 'logColor', false);
  const scheme = stringOption(o.colorScheme, 'colorScheme', 'viridis');
  const g = gridArg(grid);
  const lines = gridIsolines(g, o.levels, logColor);
  let center: [number, number] | null = [(g.xRange[0] + g.xRange[1]) / 2, (g.yRange[0] + g.yRange[1]) / 2];
  if (o.center === null) center = null;
  else if (o.center !== undefined) {
    if (!Array.isArray(o.center) || o.center.length !== 2) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'center must be [x, y] or null');
    center = [finiteNumber(o.center[0], 'center[0]'), finiteNumber(o.center[1], 'center[1]')];
  }

  const [x0, x1] = g.xRange;
  const [y0, y1] = g.yRange;
  const hx = (x1 - x0) / (g.nx - 1);
  const hy = (y1 - y0) / (g.ny - 1);
  const cells: Record<string, number>[] = [];
  for (let i = 0; i < g.nx; i++) {
    for (let j = 0; j < g.ny; j++) {
      const x = x0 + i * hx;
      const y = y0 + j * hy;
      cells.push({ x: x - hx / 2, x2: x + hx / 2, y: y - hy / 2, y2: y + hy / 2, v: g.values[i * g.ny + j]! });
    }
  }
  const contour: Record<string, number>[] = [];
  lines.forEach((l, c) => {
    for (let k = 0; k < l.x.length; k++) contour.push({ c, k, x: l.x[k]!, y: l.y[k]!, level: l.level });
  });
  const xScale = { domain: [x0 - hx / 2, x1 + hx / 2], nice: false, zero: false };
  const yScale = { domain: [y0 - hy / 2, y1 + hy / 2], nice: false, zero: false };
  const colorScale = logColor ? { type: 'log', scheme } : { type: 'linear', scheme, zero: false };
  const layer: object[] = [
    {
      data: { values: cells },
      mark: { type: 'rect', aria: false, strokeWidth: 0.4 },
      encoding: {
        x: { field: 'x', type: 'quantitative', scale: xScale, axis: { title: o.xTitle ?? 'direction 1', grid: false } },
        x2: { field: 'x2' },
        y: { field: 'y', type: 'quantitative', scale: yScale, axis: { title: o.yTitle ?? 'direction 2', grid: false } },
        y2: { field: 'y2' },
        fill: { field: 'v', type: 'quantitative', scale: colorScale, legend: { title: o.valueTitle ?? 'loss' } },
        // The same colour as a thin stroke hides anti-aliasing seams between cells.
        stroke: { field: 'v', type: 'quantitative', scale: colorScale, legend: null },
      },
    },
  ];
  if (contour.length > 0) {
    layer.push({
      data: { values: contour },
      mark: { type: 'line', aria: false, stroke: 'white', strokeWidth: 0.9, strokeOpacity: 0.85, clip: true },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'y', type: 'quantitative' },
        detail: { field: 'c', type: 'quantitative' },
        order: { field: 'k', type: 'quantitative' },
      },
    });
  }
  if (center) {
    layer.push({
      data: { values: [{ x: center[0], y: center[1] }] },
      mark: { type: 'point', shape: 'cross', filled: true, size: 90, fill: '#e4572e', stroke: 'white', strokeWidth: 0.8, opacity: 1, clip: true },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
    });
  }
  return renderSvg({ ...common, resolve: { scale: { fill: 'shared', stroke: 'independent' } }, layer } as TopLevelSpec);
}

/** The contour lines heatmapSvg draws for `levels` (same defaults), as polylines in grid coordinates. */
export function isolines(grid: LandscapeGrid, levels?: number | ArrayLike<number>, options?: { logColor?: boolean }): Isoline[] {
  const g = gridArg(grid);
  const logColor = boolean(optionsArg<{ logColor?: boolean }>(options).logColor, 'logColor', false);
  return gridIsolines(g, levels, logColor);
}

// ---------------------------------------------------------------------------------------------
// Hessian eigenvalue density

/**
 * A spectral density on a grid — `hessian.density()`'s result fits as is. `density` ≥ 0, same
 * length as `grid` (increasing). `nodes` (optional Ritz values, any shape: a flat array or a
 * tensor such as runs×steps) are drawn as a rug.
 */
export interface DensityCurve {
  grid: ArrayLike<number>;
  density: ArrayLike<number>;
  nodes?: ArrayLike<number> | { data: ArrayLike<number> };
}

export interface DensityOptions extends PlotOptions {
  /** Added to the density before the log scale, as PyHessian's `semilogy(grid, φ + 1e-7)` (default 1e-7). */
  floor?: number;
  /** Draw the Ritz nodes as a rug (default true when nodes are given). */
  rug?: boolean;
  xTitle?: string;
  yTitle?: string;
}

/** The density (plus floor) as a line on a log y scale, with an optional rug of Ritz nodes. */
export async function densitySvg(density: DensityCurve, options?: DensityOptions): Promise<string> {
  const o = optionsArg<DensityOptions>(options);
  const common = plotOptions(o, 480, 300);
  const floor = finiteNumber(o.floor, 'floor', 1e-7);
  if (floor <= 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', `floor must be > 0 (got ${floor})`);
  if (density === null || typeof density !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'density must be { grid, density, nodes? }');
  const x = finiteArray(density.grid, 'density.grid');
  const y = finiteArray(density.density, 'density.density');
  if (x.length !== y.length) throw new NnscopeError('ERR_SHAPE', `density.grid has ${x.length} points, density.density ${y.length}`);
  if (x.length < 2) throw new NnscopeError('ERR_SHAPE', `density.grid needs at least 2 points (has ${x.length})`);
  for (let i = 1; i < x.length; i++) {
    if (!(x[i]! > x[i - 1]!)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `density.grid must be increasing (index ${i})`);
  }
  if (y.some((v) => v < 0)) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'density.density must be ≥ 0');
  let nodes: number[] = [];
  if (density.nodes !== undefined) {
    const n = density.nodes as { data?: ArrayLike<number> };
    nodes = finiteArray(n !== null && typeof n === 'object' && 'data' in n ? n.data : density.nodes, 'density.nodes');
  }
  const rug = boolean(o.rug, 'rug', nodes.length > 0);
  let lo = x[0]!;
  let hi = x[x.length - 1]!;
  if (rug) for (const v of nodes) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const pad = 0.02 * (hi - lo);
  const xScale = { domain: [lo - pad, hi + pad], nice: false, zero: false };
  const top = 10 ** Math.ceil(Math.log10(y.reduce((m, v) => Math.max(m, v), 0) + floor));
  const layer: object[] = [
    {
      data: { values: x.map((v, i) => ({ x: v, y: y[i]! + floor })) },
      mark: { type: 'line', aria: false, color: '#1f4e99', strokeWidth: 1.2 },
      encoding: {
        x: { field: 'x', type: 'quantitative', scale: xScale, axis: { title: o.xTitle ?? 'eigenvalue', grid: false } },
        // The domain reaches below the floor so that the rug does not hide under the floored line.
        y: { field: 'y', type: 'quantitative', scale: { type: 'log', domain: [floor / 10, top] }, axis: { title: o.yTitle ?? 'density (log scale)', format: '.0e', grid: false } },
      },
    },
  ];
  if (rug && nodes.length > 0) {
    layer.push({
      data: { values: nodes.map((v) => ({ x: v })) },
      mark: { type: 'rule', aria: false, color: '#d62728', strokeWidth: 1, opacity: 0.6 },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: common.height }, y2: { value: common.height - 10 } },
    });
  }
  return renderSvg({ ...common, layer } as TopLevelSpec);
}

// ---------------------------------------------------------------------------------------------

/** Writes an SVG string to `path` (UTF-8). */
export async function saveSvg(path: string, svg: string): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'path must be a non-empty string');
  if (typeof svg !== 'string' || !svg.startsWith('<svg')) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'svg must be a string starting with <svg');
  try {
    await writeFile(path, svg, 'utf8');
  } catch (e) {
    throw new NnscopeError('ERR_IO', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// validation

function plotOptions(o: Partial<PlotOptions>, width: number, height: number): { width: number; height: number; title?: string; config: object } {
  const out: { width: number; height: number; title?: string; config: object } = {
    width: integer(o.width, 'width', 50, 8000, width),
    height: integer(o.height, 'height', 50, 8000, height),
    config: { view: { stroke: '#bbb' }, axis: { labelFontSize: 10, titleFontSize: 11 } },
  };
  if (o.title !== undefined) out.title = stringOption(o.title, 'title', '');
  return out;
}

function stringOption(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be a string`);
  return value;
}

/** A numeric array-like of finite values (and +Infinity where allowed), copied to a plain array. */
function finiteArray(value: unknown, name: string, allowInfinity = false): number[] {
  if (value === null || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be an array or typed array of numbers`);
  }
  const a = Array.from(value as ArrayLike<unknown>);
  a.forEach((v, i) => {
    if (typeof v !== 'number') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}[${i}] is not a number`);
    if (!Number.isFinite(v) && !(allowInfinity && v === Infinity)) throw new NnscopeError('ERR_NON_FINITE', `${name}[${i}] is ${v}`);
  });
  return a as number[];
}

function pairsArg(value: unknown, name: string): { birth: number[]; death: number[] } {
  if (value === null || typeof value !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be { birth, death }`);
  const p = value as PersistencePairs;
  const birth = finiteArray(p.birth, `${name}.birth`);
  const death = finiteArray(p.death, `${name}.death`, true);
  if (birth.length !== death.length) throw new NnscopeError('ERR_SHAPE', `${name} has ${birth.length} births and ${death.length} deaths`);
  for (let i = 0; i < birth.length; i++) {
    if (death[i]! < birth[i]!) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name}: death ${death[i]} < birth ${birth[i]} at index ${i}`);
  }
  return { birth, death };
}

function gridArg(value: unknown): LandscapeGrid {
  if (value === null || typeof value !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'grid must be { values, nx, ny, xRange, yRange }');
  const g = value as LandscapeGrid;
  const nx = integer(g.nx, 'grid.nx', 2, MAX_HEATMAP_CELLS);
  const ny = integer(g.ny, 'grid.ny', 2, MAX_HEATMAP_CELLS);
  if (nx * ny > MAX_HEATMAP_CELLS) throw new NnscopeError('ERR_TOO_LARGE', `grid has ${nx}×${ny} cells, more than ${MAX_HEATMAP_CELLS}`);
  const values = finiteArray(g.values, 'grid.values');
  if (values.length !== nx * ny) throw new NnscopeError('ERR_SHAPE', `grid.values has ${values.length} entries, nx·ny = ${nx * ny}`);
  const range = (r: unknown, name: string): [number, number] => {
    if (!Array.isArray(r) || r.length !== 2) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be [min, max]`);
    const a = finiteNumber(r[0], `${name}[0]`);
    const b = finiteNumber(r[1], `${name}[1]`);
    if (!(b > a)) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must have min < max (got [${a}, ${b}])`);
    return [a, b];
  };
  return { values, nx, ny, xRange: range(g.xRange, 'grid.xRange'), yRange: range(g.yRange, 'grid.yRange') };
}

/** The contour lines of a validated grid at `levels` (levelsArg over its value range); logColor needs values > 0. */
function gridIsolines(g: LandscapeGrid, levels: unknown, logColor: boolean): Isoline[] {
  let min = Infinity;
  let max = -Infinity;
  for (let p = 0; p < g.values.length; p++) {
    min = Math.min(min, g.values[p]!);
    max = Math.max(max, g.values[p]!);
  }
  if (logColor && min <= 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'grid values must be > 0 with logColor');
  return traceIsolines(g, levelsArg(levels, min, max, logColor));
}

function levelsArg(value: unknown, min: number, max: number, log: boolean): number[] {
  if (value !== null && typeof value === 'object') return finiteArray(value, 'levels');
  const n = integer(value, 'levels', 0, 1000, 10);
  if (!(max > min)) return [];
  return Array.from({ length: n }, (_, k) => {
    const t = (k + 1) / (n + 1);
    return log ? min * (max / min) ** t : min + (max - min) * t;
  });
}
