/**
 * Topology of scalar fields on graphs: merge trees (join / split) and 0-dim
 * persistence of sublevel (superlevel) sets, persistence simplification, summary
 * metrics, the topological landscape profile, kNN graphs of scattered samples
 * and distances between persistence diagrams.
 *
 * Graphs. A regular grid `{ grid: [n_0, …], neighborhood }` (row-major, last axis
 * fastest — the layout of landscape grids) is never materialised. Neighbourhoods:
 * 'axis' (2k neighbours), 'freudenthal' (the edges of the Freudenthal
 * triangulation, 2·(2^k − 1); the default: it is the piecewise-linear
 * interpolation's own topology) and 'full' (3^k − 1, the cubic neighbourhood of the
 * reference tools). Any other graph is `{ offsets, adjacency }` in CSR form (taken
 * as undirected), e.g. from `knnGraph` for scattered samples.
 *
 * Ties. Vertices are ordered by (value, index) in float64: equal values never make
 * a strict comparison undecided, so plateaus create no spurious minima
 * (zero-persistence pairs are dropped unless `keepZeroPersistence`).
 */
import { type AsyncOptions, runOp } from '../async.js';
import { NnscopeError } from '../errors.js';
import type { Landscape } from '../landscape/index.js';
import { native } from '../native.js';
import { type DeviceName, type TensorLike, boolean, deviceArg, finiteNumber, integer, optionsArg, tensorArg } from '../validate.js';

export type Neighborhood = 'axis' | 'freudenthal' | 'full';
export type TreeKind = 'join' | 'split';

/** A regular grid (implicit edges) or an explicit undirected graph in CSR form. */
export type Graph =
  | { grid: readonly number[]; neighborhood?: Neighborhood }
  | { offsets: Int32Array; adjacency: Int32Array };

/** 0-dim persistence pairs, column-wise (pair i: birth[i], death[i], …). Vertex ids index the field. */
export interface Pairs {
  birth: Int32Array;
  death: Int32Array;
  birthValue: Float64Array;
  deathValue: Float64Array;
}

/** A persistence diagram for distances and plots: finite pairs plus essential births. */
export interface Diagram {
  birth: Float64Array;
  death: Float64Array;
  /** Births of the essential classes (death at +∞). */
  essential: Float64Array;
}

export interface EssentialClass {
  /** The component's first vertex in the sweep (the global minimum of a join tree). */
  birth: number;
  birthValue: number;
  /** The component's last vertex (its maximum for a join tree) and the finite stand-in |last − birth|. */
  last: number;
  lastValue: number;
  persistence: number;
  branch: number;
  vertices: number;
}

export interface PersistenceStats {
  count: number;
  total: number;
  average: number;
  maximum: number;
}

export interface TopologyMetrics {
  /** Extrema (minima of a join tree). */
  minima: number;
  /** Distinct merge vertices (the papers' number of saddles). */
  saddles: number;
  /** Saddles counted once per dying branch (= finite pairs). */
  saddlesWithMultiplicity: number;
  components: number;
  /** Default: finite pairs only — the essential pair measures the sampled range, not a feature. */
  persistence: PersistenceStats;
  /** TTK parity: finite pairs plus each component's essential pair (max − min). */
  persistenceWithEssential: PersistenceStats;
  essentialPersistence: number;
  /** Persistence entropy of the finite lifetimes (natural log). */
  entropy: number;
  range: number;
  /** SMAD (Landscaper's definition over leaf arcs): plain, divided by the range, volume-weighted, both. */
  smad: { plain: number; normalized: number; weighted: number; normalizedWeighted: number };
  /** Samples per branch of the segmentation. */
  basinVolumes: Float64Array;
}

/** One basin of the topological landscape profile. */
export interface ProfileBasin {
  /** Branch id (basins[i].id === i); parent −1 for a root. */
  id: number;
  parent: number;
  /** Samples in the basin's subtree: its width at the top. */
  samples: number;
  center: number;
  width: number;
  yMin: number;
  yMax: number;
  /** Mean loss over the basin's samples (for colouring). */
  meanLoss: number;
  /** The sampled losses and the half-width (half_width_per_sample · #samples ≤ y) at each. */
  levels: Float64Array;
  halfWidth: Float64Array;
  /** Closed polygon: right flank up, then left flank down. */
  polygon: { x: Float64Array; y: Float64Array };
}

export interface Profile {
  width: number;
  yMin: number;
  yMax: number;
  basins: ProfileBasin[];
}

interface NativeTree {
  kind: TreeKind; vertices: number; minValue: number; maxValue: number;
  pairs: Pairs & { persistence: Float64Array; branch: Int32Array; into: Int32Array };
  essential: EssentialClass[];
  branches: { extremum: Int32Array; saddle: Int32Array; birthValue: Float64Array; deathValue: Float64Array; parent: Int32Array; size: Float64Array };
  saddles: Int32Array; saddleMultiplicity: Int32Array;
  nodes: { vertex: Int32Array; value: Float64Array; type: Int32Array; multiplicity: Int32Array };
  arcs: { child: Int32Array; parent: Int32Array; branch: Int32Array };
  roots: Int32Array; segmentation: Int32Array;
  handle: unknown;
}
interface NativeTopology {
  mergeTree(o: object): Promise<NativeTree>;
  simplify(o: object): Promise<NativeTree>;
  metrics(o: object): TopologyMetrics;
  profile(o: object): Promise<Profile>;
  persistence(o: object): Promise<Pairs & { essentialBirth: Int32Array; essentialValue: Float64Array; basin: Int32Array; device: string }>;
  knnGraph(o: object): Promise<{ offsets: Int32Array; adjacency: Int32Array; device: string }>;
  distance(o: object): Promise<number>;
}
const addon = (): NativeTopology => (native() as unknown as { topology: NativeTopology }).topology;

const MAX_INT32 = 2 ** 31 - 1;

function valuesArg(values: unknown, name = 'values'): Float64Array | Float32Array {
  if (!(values instanceof Float64Array) && !(values instanceof Float32Array)) {
    throw new NnscopeError('ERR_DTYPE', `${name} must be a Float64Array or Float32Array`);
  }
  if (values.length === 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} is empty`);
  if (values.length > MAX_INT32) throw new NnscopeError('ERR_TOO_LARGE', `${name} has more than 2^31 − 1 entries`);
  return values;
}

function graphArg(graph: unknown, n: number): object {
  if (graph === null || typeof graph !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'graph must be { grid, neighborhood } or { offsets, adjacency }');
  const g = graph as Record<string, unknown>;
  if ('grid' in g) {
    const dims = g['grid'];
    if (!Array.isArray(dims) || dims.length < 1 || dims.length > 8) throw new NnscopeError('ERR_SHAPE', 'graph.grid must list 1 to 8 axis sizes');
    let count = 1;
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 1) throw new NnscopeError('ERR_SHAPE', `graph.grid sizes must be positive integers (got [${dims.join(', ')}])`);
      count *= d;
    }
    if (count !== n) throw new NnscopeError('ERR_SHAPE', `graph.grid [${dims.join(', ')}] has ${count} vertices, the field has ${n}`);
    const nb = g['neighborhood'] ?? 'freudenthal';
    if (nb !== 'axis' && nb !== 'freudenthal' && nb !== 'full') throw new NnscopeError('ERR_INVALID_ARGUMENT', "graph.neighborhood must be 'axis', 'freudenthal' or 'full'");
    return { grid: dims, neighborhood: nb };
  }
  const { offsets, adjacency } = g;
  if (!(offsets instanceof Int32Array) || !(adjacency instanceof Int32Array)) {
    throw new NnscopeError('ERR_DTYPE', 'graph.offsets and graph.adjacency must be Int32Arrays');
  }
  if (offsets.length !== n + 1) throw new NnscopeError('ERR_SHAPE', `graph.offsets must have ${n + 1} entries (vertices + 1), got ${offsets.length}`);
  return { offsets, adjacency };
}

/** Columns of a tree's pairs as a Diagram (finite pairs plus essential births). */
function diagramOf(birthValue: Float64Array, deathValue: Float64Array, essential: Float64Array, kind: TreeKind): Diagram {
  // A split tree's pairs are (max, saddle) with death < birth: as sublevel pairs of −f, negate both.
  if (kind === 'split') {
    return { birth: birthValue.map((v) => -v), death: deathValue.map((v) => -v), essential: essential.map((v) => -v) };
  }
  return { birth: birthValue.slice(), death: deathValue.slice(), essential: essential.slice() };
}

/** A merge tree with its persistence pairs and segmentation. Fields are fresh typed arrays. */
export class MergeTree {
  readonly kind: TreeKind;
  readonly vertices: number;
  readonly minValue: number;
  readonly maxValue: number;
  /** Finite pairs by the elder rule, sorted by (death, birth) in sweep order. */
  readonly pairs: Pairs & { persistence: Float64Array; branch: Int32Array; into: Int32Array };
  /** One essential class per connected component. */
  readonly essential: readonly EssentialClass[];
  /** Branch i: its extremum, death saddle (−1 if essential), values, parent branch (−1), size. */
  readonly branches: NativeTree['branches'];
  /** Extrema (minima of a join tree), by branch id. */
  readonly extrema: Int32Array;
  /** Distinct merge vertices in sweep order, and how many branches die at each. */
  readonly saddles: Int32Array;
  readonly saddleMultiplicity: Int32Array;
  /** Tree nodes (type 0 extremum, 1 saddle, 2 root) and arcs child → parent. */
  readonly nodes: NativeTree['nodes'];
  readonly arcs: NativeTree['arcs'];
  readonly roots: Int32Array;
  /** Branch id of every vertex (the elder-rule branch decomposition). */
  readonly segmentation: Int32Array;
  readonly #handle: unknown;

  /** @internal */
  constructor(t: NativeTree) {
    this.kind = t.kind;
    this.vertices = t.vertices;
    this.minValue = t.minValue;
    this.maxValue = t.maxValue;
    this.pairs = t.pairs;
    this.essential = t.essential;
    this.branches = t.branches;
    this.extrema = t.branches.extremum;
    this.saddles = t.saddles;
    this.saddleMultiplicity = t.saddleMultiplicity;
    this.nodes = t.nodes;
    this.arcs = t.arcs;
    this.roots = t.roots;
    this.segmentation = t.segmentation;
    this.#handle = t.handle;
  }

  /** The persistence diagram (split trees mirrored to the sublevel form of −f). */
  diagram(): Diagram {
    const ess = Float64Array.from(this.essential, (e) => e.birthValue);
    return diagramOf(this.pairs.birthValue, this.pairs.deathValue, ess, this.kind);
  }

  /**
   * Removes every pair with persistence strictly below ε (absolute, or ε·(max − min)
   * when `relative`); removed branches merge into the branch that killed them.
   */
  async simplify(options: { epsilon: number; relative?: boolean } & AsyncOptions): Promise<MergeTree> {
    const o = optionsArg<{ epsilon: number; relative?: boolean } & AsyncOptions>(options);
    const epsilon = finiteNumber(o.epsilon, 'epsilon');
    if (epsilon < 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'epsilon must be ≥ 0');
    const relative = boolean(o.relative, 'relative', false);
    return new MergeTree(await runOp(o, (base) => addon().simplify({ ...base, handle: this.#handle, epsilon, relative })));
  }

  /** Counts, persistence statistics, entropy, SMAD and basin volumes (O(vertices), synchronous). */
  metrics(): TopologyMetrics {
    return addon().metrics({ handle: this.#handle });
  }

  /**
   * The topological landscape profile of a join tree: each branch a basin whose
   * half-width at loss y is `halfWidth` × its samples with loss ≤ y, children widest
   * first, centred under their parent.
   */
  async profile(options: { levels?: number; halfWidth?: number } & AsyncOptions = {}): Promise<Profile> {
    const o = optionsArg<{ levels?: number; halfWidth?: number } & AsyncOptions>(options);
    if (this.kind !== 'join') throw new NnscopeError('ERR_INVALID_ARGUMENT', 'the profile is drawn from a join tree');
    const levels = integer(o.levels, 'levels', 1, 1 << 20, 64);
    const halfWidth = finiteNumber(o.halfWidth, 'halfWidth', 0.5);
    if (halfWidth <= 0) throw new NnscopeError('ERR_INVALID_ARGUMENT', 'halfWidth must be > 0');
    return runOp(o, (base) => addon().profile({ ...base, handle: this.#handle, levels, halfWidth }));
  }
}

export interface MergeTreeOptions extends AsyncOptions {
  /** 'join' (sublevel sets, minima; default) or 'split' (superlevel sets, maxima). */
  kind?: TreeKind;
  /** Keep zero-persistence pairs (plateau artefacts of the index tie rule). Default false. */
  keepZeroPersistence?: boolean;
}

/** The merge tree of `values` on `graph` by one sort and a union-find sweep (CPU). */
export async function mergeTree(values: Float64Array | Float32Array, graph: Graph, options?: MergeTreeOptions): Promise<MergeTree> {
  const o = optionsArg<MergeTreeOptions>(options);
  const v = valuesArg(values);
  const g = graphArg(graph, v.length);
  const kind = o.kind ?? 'join';
  if (kind !== 'join' && kind !== 'split') throw new NnscopeError('ERR_INVALID_ARGUMENT', "kind must be 'join' or 'split'");
  const keepZero = boolean(o.keepZeroPersistence, 'keepZeroPersistence', false);
  return new MergeTree(await runOp(o, (base) => addon().mergeTree({ ...base, ...g, values: v, kind, keepZero })));
}

export interface PersistenceResult extends Pairs {
  /** Births of the essential classes (one per component) and their values. */
  essentialBirth: Int32Array;
  essentialValue: Float64Array;
  /** The local minimum every vertex descends to by steepest descent. */
  basin: Int32Array;
  /** The device that ran. */
  device: 'cpu' | 'cuda';
}

/**
 * 0-dim sublevel persistence by steepest-descent basins and a union-find over where
 * basins meet — the pairs only, the fastest path (on CUDA for grids). Pairs equal the
 * merge tree's (with keepZeroPersistence), sorted by (death value, death vertex,
 * birth value, birth vertex). A Float64Array is read in place: leave it unchanged
 * until the promise settles. `device`: 'auto' | 'cpu' | 'cuda' (grids only).
 */
export async function persistence(values: Float64Array | Float32Array, graph: Graph, options?: AsyncOptions & { device?: DeviceName }): Promise<PersistenceResult> {
  const o = optionsArg<AsyncOptions & { device?: DeviceName }>(options);
  const v = valuesArg(values);
  const g = graphArg(graph, v.length);
  const device = deviceArg(o.device);
  const r = await runOp(o, (base) => addon().persistence({ ...base, ...g, values: v, device }));
  return r as PersistenceResult;
}

export interface KnnOptions extends AsyncOptions {
  /** Neighbours per point (default 4·dim, as the papers; clamped to n − 1). */
  k?: number;
  /** 'union' (default: i ~ j when either is among the other's k nearest) or 'mutual'. */
  symmetrize?: 'union' | 'mutual';
  device?: DeviceName;
}

/** The exact k-nearest-neighbour graph of n points (n×dim), symmetrised, in CSR form. */
export async function knnGraph(points: TensorLike<Float32Array | Float64Array>, options?: KnnOptions): Promise<{ offsets: Int32Array; adjacency: Int32Array }> {
  const o = optionsArg<KnnOptions>(options);
  const P = tensorArg<Float32Array | Float64Array>(points, 'points', { dtype: ['float32', 'float64'], ndim: 2 });
  const [n, dim] = P.shape as [number, number];
  if (n < 1 || dim < 1) throw new NnscopeError('ERR_SHAPE', `points must be n×dim with n, dim ≥ 1 (got [${P.shape.join(', ')}])`);
  if (n > MAX_INT32) throw new NnscopeError('ERR_TOO_LARGE', 'more than 2^31 − 1 points');
  const k = Math.min(integer(o.k, 'k', 1, MAX_INT32, 4 * dim), Math.max(0, n - 1));
  const sym = o.symmetrize ?? 'union';
  if (sym !== 'union' && sym !== 'mutual') throw new NnscopeError('ERR_INVALID_ARGUMENT', "symmetrize must be 'union' or 'mutual'");
  if (n * k > MAX_INT32) throw new NnscopeError('ERR_TOO_LARGE', `n·k = ${n * k} neighbour entries exceed 2^31 − 1`);
  const device = deviceArg(o.device);
  const r = await runOp(o, (base) => addon().knnGraph({ ...base, points: P.data, dim, k, mutual: sym === 'mutual', device }));
  return { offsets: r.offsets, adjacency: r.adjacency };
}

/** Size limits (finite pairs of both diagrams together): the exact methods are O(N^2.5 log N) and O(N^3). */
export const MAX_BOTTLENECK_POINTS = 10_000;
export const MAX_WASSERSTEIN_POINTS = 4_000;

function checkSize(A: Diagram, B: Diagram, max: number, what: string): void {
  const N = A.birth.length + B.birth.length;
  if (N > max) throw new NnscopeError('ERR_TOO_LARGE', `the exact ${what} distance takes at most ${max} finite pairs in all (got ${N}); simplify the trees first`);
}

function diagramArg(d: unknown, name: string): Diagram {
  if (d === null || typeof d !== 'object') throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} must be a Diagram`);
  const { birth, death, essential } = d as Partial<Diagram>;
  if (!(birth instanceof Float64Array) || !(death instanceof Float64Array)) throw new NnscopeError('ERR_DTYPE', `${name}.birth and ${name}.death must be Float64Arrays`);
  if (birth.length !== death.length) throw new NnscopeError('ERR_SHAPE', `${name}.birth and ${name}.death differ in length`);
  const ess = essential ?? new Float64Array(0);
  if (!(ess instanceof Float64Array)) throw new NnscopeError('ERR_DTYPE', `${name}.essential must be a Float64Array`);
  for (let i = 0; i < birth.length; i++) {
    if (!Number.isFinite(birth[i]) || !Number.isFinite(death[i])) throw new NnscopeError('ERR_NON_FINITE', `${name} has a non-finite pair at ${i}`);
    if (death[i]! < birth[i]!) throw new NnscopeError('ERR_INVALID_ARGUMENT', `${name} pair ${i} dies before it is born`);
  }
  for (let i = 0; i < ess.length; i++) {
    if (!Number.isFinite(ess[i])) throw new NnscopeError('ERR_NON_FINITE', `${name}.essential has a non-finite birth at ${i}`);
  }
  return { birth, death, essential: ess };
}

/**
 * The exact bottleneck distance between two diagrams (L∞ ground metric, points may
 * match the diagonal). Essential classes match each other by sorted birth; differing
 * counts give +∞.
 */
export async function bottleneck(a: Diagram, b: Diagram, options?: AsyncOptions): Promise<number> {
  const o = optionsArg<AsyncOptions>(options);
  const A = diagramArg(a, 'a');
  const B = diagramArg(b, 'b');
  checkSize(A, B, MAX_BOTTLENECK_POINTS, 'bottleneck');
  return runOp(o, (base) => addon().distance({ ...base, a: A, b: B, metric: 'bottleneck' }));
}

/** The exact 1-Wasserstein distance between two diagrams (L∞ ground metric, diagonal matching allowed). */
export async function wasserstein(a: Diagram, b: Diagram, options?: AsyncOptions): Promise<number> {
  const o = optionsArg<AsyncOptions>(options);
  const A = diagramArg(a, 'a');
  const B = diagramArg(b, 'b');
  checkSize(A, B, MAX_WASSERSTEIN_POINTS, 'Wasserstein');
  return runOp(o, (base) => addon().distance({ ...base, a: A, b: B, metric: 'wasserstein' }));
}

export interface LandscapeTopologyOptions extends AsyncOptions {
  /** Grids: the neighbourhood (default 'freudenthal'). */
  neighborhood?: Neighborhood;
  /** Scattered samples: neighbours per sample (default 4·k). */
  k?: number;
  device?: DeviceName;
}

/**
 * The join tree of a sampled landscape: on its grid, or on the kNN graph of its
 * coordinates when the samples are scattered.
 */
export async function landscapeTree(landscape: Landscape, options?: LandscapeTopologyOptions): Promise<MergeTree> {
  const o = optionsArg<LandscapeTopologyOptions>(options);
  if (landscape.dims) {
    return mergeTree(landscape.losses, { grid: landscape.dims, neighborhood: o.neighborhood ?? 'freudenthal' }, o);
  }
  const graph = await knnGraph(landscape.coordinates, { ...o, ...(o.k !== undefined ? { k: o.k } : {}) });
  return mergeTree(landscape.losses, graph, o);
}
