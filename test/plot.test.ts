import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, plot } from '../lib/index.js';
import { expectCode } from './helpers.js';

// ---- a minimal XML reader: throws on malformed markup, returns the element tree ----

interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

function parseXml(src: string): El {
  const root: El = { name: '#root', attrs: {}, children: [], text: '' };
  const stack = [root];
  const decode = (s: string, where: string): string => {
    if (/[<>]/.test(s)) throw new Error(`raw < or > in ${where}`);
    return s.replace(/&([^;]*);|&/g, (m, e: string | undefined) => {
      if (e === undefined) throw new Error(`bare & in ${where}`);
      const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
      if (e in named) return named[e]!;
      const n = /^#x([0-9a-f]+)$/i.exec(e) ? parseInt(e.slice(2), 16) : /^#(\d+)$/.exec(e) ? Number(e.slice(1)) : NaN;
      if (!Number.isFinite(n)) throw new Error(`unknown entity ${m} in ${where}`);
      return String.fromCodePoint(n);
    });
  };
  let i = 0;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = lt < 0 ? src.slice(i) : src.slice(i, lt);
    if (text.length > 0) stack[stack.length - 1]!.text += decode(text, 'text');
    if (lt < 0) break;
    const gt = src.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('?') || tag.startsWith('!--')) continue;
    if (tag.startsWith('/')) {
      const open = stack.pop()!;
      if (open.name !== tag.slice(1).trim()) throw new Error(`</${tag.slice(1)}> closes <${open.name}>`);
      continue;
    }
    const m = /^([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)$/.exec(tag);
    if (!m) throw new Error(`malformed tag <${tag.slice(0, 60)}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]!] = decode(a[2]!, `attribute ${a[1]}`);
    }
    const el: El = { name: m[1]!, attrs, children: [], text: '' };
    stack[stack.length - 1]!.children.push(el);
    if (m[3] !== '/') stack.push(el);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1 || root.children[0]!.name !== 'svg') throw new Error('the document is not one <svg> element');
  return root.children[0]!;
}

function all(el: El, pred: (e: El) => boolean, out: El[] = []): El[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) all(c, pred, out);
  return out;
}

/** The items (paths, lines, texts) of every Vega mark group of this type (e.g. 'line', 'symbol'). */
function markItems(svg: El, type: string): El[] {
  return all(svg, (e) => e.name === 'g' && (e.attrs.class ?? '').startsWith(`mark-${type} role-mark`)).flatMap((g) => g.children);
}

const texts = (svg: El): string[] => all(svg, (e) => e.name === 'text').map((e) => e.text);
const translate = (e: El): [number, number] => {
  const m = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(e.attrs.transform ?? '');
  if (!m) throw new Error('no translate');
  return [Number(m[1]), Number(m[2])];
};

async function checked(p: Promise<string>): Promise<El> {
  const svg = await p;
  if (!svg.startsWith('<svg')) throw new Error('does not start with <svg');
  return parseXml(svg);
}

// ---- fixtures ----

/** A root basin holding two child basins (a valley profile); the root comes last on purpose. */
const profile: plot.ProfileBasin[] = [
  { id: 1, parent: 0, polygon: { x: [-4, -1, -2.5], y: [1, 1, 0.2] }, meanLoss: 0.6 },
  { id: 2, parent: 0, polygon: { x: Float64Array.of(1, 3, 2, 1), y: Float64Array.of(1, 1, 0.5, 1) }, meanLoss: 0.8 },
  { id: 0, parent: -1, polygon: { x: [-5, 5, 4, -4], y: [2, 2, 0.2, 0.2] }, meanLoss: 1.5 },
];

function bowl(n: number, f = (x: number, y: number) => x * x + y * y): plot.LandscapeGrid {
  const values = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) values[i * n + j] = f(-1 + (2 * i) / (n - 1), -1 + (2 * j) / (n - 1));
  return { values, nx: n, ny: n, xRange: [-1, 1], yRange: [-1, 1] };
}

// ---- isolines (closed forms) ----

test('isolines of a bowl are circles of radius √level, closed', (t) => {
  for (const level of [0.04, 0.25, 0.64]) {
    const lines = plot.isolines(bowl(41), [level]);
    t.is(lines.length, 1);
    const l = lines[0]!;
    t.true(l.closed);
    t.true(l.x.length > 20);
    t.is(l.x[0], l.x[l.x.length - 1]);
    t.is(l.y[0], l.y[l.y.length - 1]);
    for (let k = 0; k < l.x.length; k++) t.true(Math.abs(Math.hypot(l.x[k]!, l.y[k]!) - Math.sqrt(level)) < 2e-3);
  }
});

test('isolines of a saddle x² − y² are two open branches ending on the boundary', (t) => {
  const lines = plot.isolines(bowl(31, (x, y) => x * x - y * y), [0.25]);
  t.is(lines.length, 2);
  for (const l of lines) {
    t.false(l.closed);
    const n = l.x.length;
    for (const k of [0, n - 1]) t.true(Math.max(Math.abs(l.x[k]!), Math.abs(l.y[k]!)) > 1 - 1e-12);
    for (let k = 0; k < n; k++) t.true(Math.abs(l.x[k]! ** 2 - l.y[k]! ** 2 - 0.25) < 5e-3);
    // Each branch stays on one side (x > 0 or x < 0).
    t.true(Array.from(l.x).every((x) => Math.sign(x) === Math.sign(l.x[0]!)));
  }
  // Level 0 passes through the saddle vertex: the two diagonals, as four arms or fewer polylines, covering both.
  const zero = plot.isolines(bowl(31, (x, y) => x * x - y * y), [0]);
  t.true(zero.length >= 2);
  for (const l of zero) for (let k = 0; k < l.x.length; k++) t.true(Math.abs(Math.abs(l.x[k]!) - Math.abs(l.y[k]!)) < 1e-12);
});

test('isolines: an ambiguous (saddle) cell is split by its centre value', (t) => {
  // v(0,0) = v(1,1) = 1, v(1,0) = v(0,1) = 0, centre mean 0.5.
  const g: plot.LandscapeGrid = { values: [1, 0, 0, 1], nx: 2, ny: 2, xRange: [0, 1], yRange: [0, 1] };
  const corners = (level: number) => plot.isolines(g, [level]).map((l) => {
    t.is(l.x.length, 2);
    return `${Math.round((l.x[0]! + l.x[1]!) / 2)},${Math.round((l.y[0]! + l.y[1]!) / 2)}`;
  }).sort();
  // Below the centre value the high corners join, so the cuts go round the low corners; above it, round the high ones.
  t.deepEqual(corners(0.4), ['0,1', '1,0']);
  t.deepEqual(corners(0.6), ['0,0', '1,1']);
  const l = plot.isolines(g, [0.4]).find((p) => p.x[0]! + p.x[1]! > 1)!;
  t.deepEqual([...l.x].map((v) => +v.toFixed(12)).sort(), [0.6, 1]);
  t.deepEqual([...l.y].map((v) => +v.toFixed(12)).sort(), [0, 0.4]);
});

test('isolines: a count of levels is spaced evenly strictly inside [min, max] (geometrically with logColor)', (t) => {
  const g = bowl(41); // min 0 at the centre, max 2 at the corners
  t.deepEqual([...new Set(plot.isolines(g, 3).map((l) => l.level))], [0.5, 1, 1.5]);
  t.is(plot.isolines(g, 0).length, 0);
  const pos = bowl(41, (x, y) => 1 + 99 * ((x * x + y * y) / 2)); // 1 … 100
  const levels = [...new Set(plot.isolines(pos, 1, { logColor: true }).map((l) => l.level))];
  t.is(levels.length, 1);
  t.true(Math.abs(levels[0]! - 10) < 1e-9);
  // The level 1.5 circle (radius 1.22) crosses the square: four arcs near the corners.
  t.is(plot.isolines(g, [1.5]).length, 4);
  // A constant grid has no contours.
  t.is(plot.isolines(bowl(5, () => 3), 10).length, 0);
});

// ---- profile ----

test('profileSvg: one filled path per basin, parents drawn first, legend, title and axes', async (t) => {
  const svg = await checked(plot.profileSvg(profile, { title: 'Profile <&> "x"' }));
  const paths = markItems(svg, 'line');
  t.is(paths.length, 3);
  t.true(paths.every((p) => p.name === 'path' && /^M.*Z$/.test(p.attrs.d ?? '') && p.attrs.fill?.startsWith('rgb')));
  // The root (highest mean loss) is drawn first and, with reversed 'blues', is the lightest fill.
  const lum = (p: El) => (p.attrs.fill!.match(/\d+/g) ?? []).map(Number).reduce((a, b) => a + b, 0);
  t.true(lum(paths[0]!) > lum(paths[1]!) && lum(paths[0]!) > lum(paths[2]!));
  // Vertex counts: the root's 4 vertices give 4 points (M + 3 L), the children 3 and 4.
  t.deepEqual(paths.map((p) => (p.attrs.d!.match(/[ML]/g) ?? []).length), [4, 3, 4]);
  const tx = texts(svg);
  for (const s of ['Profile <&> "x"', 'mean loss', 'samples (basin width)', 'loss']) t.true(tx.includes(s), s);
  t.truthy(all(svg, (e) => (e.attrs.class ?? '').startsWith('mark-rect role-legend-gradient')).length);
});

test('profileSvg: logY gives a log loss axis; axis titles are options', async (t) => {
  const svg = await checked(plot.profileSvg(profile, { logY: true, xTitle: 'width', yTitle: 'train loss' }));
  t.is(markItems(svg, 'line').length, 3);
  const axes = all(svg, (e) => /^Y-axis .* log scale/.test(e.attrs['aria-label'] ?? ''));
  t.is(axes.length, 1);
  t.true(texts(svg).includes('train loss'));
  t.true(texts(svg).includes('width'));
});

test('profileSvg: bad input has stable codes', async (t) => {
  const b = (over: Partial<plot.ProfileBasin>): plot.ProfileBasin[] => [{ ...profile[2]!, ...over }];
  await expectCode(t, plot.profileSvg([]), 'ERR_SHAPE');
  await expectCode(t, plot.profileSvg(b({ polygon: { x: [0, 1, 2], y: [0, 1] } })), 'ERR_SHAPE');
  await expectCode(t, plot.profileSvg(b({ polygon: { x: [0, 1], y: [0, 1] } })), 'ERR_SHAPE');
  await expectCode(t, plot.profileSvg(b({ polygon: { x: [0, NaN, 2], y: [0, 1, 2] } })), 'ERR_NON_FINITE');
  await expectCode(t, plot.profileSvg(b({ meanLoss: Infinity })), 'ERR_NON_FINITE');
  await expectCode(t, plot.profileSvg(b({ parent: 7 })), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.profileSvg([{ ...profile[0]!, parent: 2 }, { ...profile[1]!, parent: 99 }]), 'ERR_INVALID_ARGUMENT'); // unknown grandparent
  await expectCode(t, plot.profileSvg([...profile, profile[0]!]), 'ERR_INVALID_ARGUMENT'); // duplicate id
  await expectCode(t, plot.profileSvg([{ ...profile[0]!, parent: 2 }, { ...profile[1]!, parent: 1 }]), 'ERR_INVALID_ARGUMENT'); // cycle
  await expectCode(t, plot.profileSvg(b({ polygon: { x: [0, 1, 2], y: [0, 1, 2] } }), { logY: true }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.profileSvg(profile, { width: 10 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.profileSvg(profile, { title: 3 as unknown as string }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.profileSvg('x' as unknown as plot.ProfileBasin[]), 'ERR_INVALID_ARGUMENT');
});

// ---- persistence diagram ----

test('persistenceDiagramSvg: points at their (birth, death); essential pairs on the ∞ line', async (t) => {
  // Finite values span [0, 1]: the ∞ line is at 1.1, the domain [−0.05, 1.15] on both axes (360 px).
  const svg = await checked(plot.persistenceDiagramSvg({ birth: [0, 1, 0.25], death: [1, Infinity, 0.5] }, { width: 360, height: 360 }));
  const px = (v: number) => ((v + 0.05) / 1.2) * 360;
  const pts = markItems(svg, 'symbol').map(translate);
  t.is(pts.length, 3);
  const want: [number, number][] = [[0, 1], [1, 1.1], [0.25, 0.5]];
  want.forEach(([b, d], k) => {
    t.true(Math.abs(pts[k]![0] - px(b)) < 1e-6, `x of ${k}`);
    t.true(Math.abs(pts[k]![1] - (360 - px(d))) < 1e-6, `y of ${k}`);
  });
  const rules = markItems(svg, 'rule');
  t.is(rules.length, 2); // the diagonal and the ∞ line
  t.true(Math.abs(translate(rules[1]!)[1] - (360 - px(1.1))) < 1e-6);
  t.true(texts(svg).includes('∞'));
  t.true(texts(svg).includes('birth') && texts(svg).includes('death'));
  t.false(texts(svg).includes('diagram')); // one diagram: no legend
});

test('persistenceDiagramSvg: a second diagram overlays in another colour with a legend', async (t) => {
  const svg = await checked(plot.persistenceDiagramSvg(
    { birth: [0, 0.2], death: [Infinity, 0.7] },
    { compare: { birth: Float64Array.of(0.1, 0.3, 0.4), death: Float64Array.of(Infinity, 0.9, 0.45) }, labels: ['epoch 1', 'epoch 9'], title: 'D0' },
  ));
  const pts = markItems(svg, 'symbol');
  t.is(pts.length, 5);
  t.is(new Set(pts.map((p) => p.attrs.fill)).size, 2);
  for (const s of ['epoch 1', 'epoch 9', 'D0', '∞']) t.true(texts(svg).includes(s), s);
  // An empty diagram still draws the frame.
  t.is(markItems(await checked(plot.persistenceDiagramSvg({ birth: [], death: [] })), 'symbol').length, 0);
});

test('persistenceDiagramSvg: bad input has stable codes', async (t) => {
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [0, 1], death: [1] }), 'ERR_SHAPE');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [NaN], death: [1] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [Infinity], death: [Infinity] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [0], death: [-Infinity] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [1], death: [0.5] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [0], death: [1] }, { compare: { birth: [0], death: [] } }), 'ERR_SHAPE');
  await expectCode(t, plot.persistenceDiagramSvg({ birth: [0], death: [1] }, { labels: ['a', 'a'] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.persistenceDiagramSvg(null as unknown as plot.PersistencePairs), 'ERR_INVALID_ARGUMENT');
});

// ---- heat map ----

test('heatmapSvg: one rect per cell, one path per contour line, a marker at θ₀', async (t) => {
  const g = bowl(21);
  const svg = await checked(plot.heatmapSvg(g, { levels: [0.1, 0.2, 0.3], title: 'Landscape' }));
  t.is(markItems(svg, 'rect').length, 21 * 21);
  t.is(markItems(svg, 'line').length, 3);
  const marker = markItems(svg, 'symbol');
  t.is(marker.length, 1);
  // The centre of [−1, 1]² is the centre of the 400×400 plot.
  const [mx, my] = translate(marker[0]!);
  t.true(Math.abs(mx - 200) < 1e-6 && Math.abs(my - 200) < 1e-6);
  for (const s of ['Landscape', 'loss', 'direction 1', 'direction 2']) t.true(texts(svg).includes(s), s);
  t.is(markItems(await checked(plot.heatmapSvg(g, { levels: Float64Array.of(0.1) })), 'line').length, 1);
  t.is(markItems(await checked(plot.heatmapSvg(g, { levels: 0, center: null })), 'line').length, 0);
  t.is(markItems(await checked(plot.heatmapSvg(g, { levels: 0, center: null })), 'symbol').length, 0);
});

test('heatmapSvg: the contour count follows the number of levels and matches isolines()', async (t) => {
  const g = bowl(31);
  const counts: number[] = [];
  for (const levels of [2, 5, 10]) {
    const n = markItems(await checked(plot.heatmapSvg(g, { levels })), 'line').length;
    t.is(n, plot.isolines(g, levels).length);
    counts.push(n);
  }
  t.true(counts[0]! < counts[1]! && counts[1]! < counts[2]!, counts.join(' '));
});

test('heatmapSvg: log colour scale, custom centre, non-square ranges', async (t) => {
  const nx = 7, ny = 5;
  const values = Float64Array.from({ length: nx * ny }, (_, p) => 1 + p);
  const svg = await checked(plot.heatmapSvg({ values, nx, ny, xRange: [0, 6], yRange: [10, 14] }, { logColor: true, center: [3, 12], valueTitle: 'test loss', xTitle: 'α', yTitle: 'β' }));
  const cells = markItems(svg, 'rect');
  t.is(cells.length, nx * ny);
  for (const s of ['test loss', 'α', 'β']) t.true(texts(svg).includes(s), s);
  t.is(markItems(svg, 'symbol').length, 1);
  // Log vs linear colour: the extremes (1 and 35) share their colours, a middle value (6) does not;
  // the log legend has ticks at 1, 2, 3, 10, 20, 30.
  const lin = markItems(await checked(plot.heatmapSvg({ values, nx, ny, xRange: [0, 6], yRange: [10, 14] })), 'rect');
  t.is(cells[0]!.attrs.fill, lin[0]!.attrs.fill);
  t.is(cells[nx * ny - 1]!.attrs.fill, lin[nx * ny - 1]!.attrs.fill);
  t.not(cells[5]!.attrs.fill, lin[5]!.attrs.fill);
  const legend = (e: El) => all(e, (g) => (g.attrs.class ?? '').startsWith('mark-text role-legend-label')).flatMap((g) => texts(g));
  t.deepEqual(legend(svg).filter((s) => s !== ''), ['1', '2', '3', '10', '20', '30']);
  // The marker sits at (3, 12): the middle of x, the middle of y.
  const [mx, my] = translate(markItems(svg, 'symbol')[0]!);
  t.true(Math.abs(mx - 200) < 1e-6 && Math.abs(my - 200) < 1e-6);
});

test('heatmapSvg: values are row-major with y fastest (values[i·ny + j] at x_i, y_j)', async (t) => {
  // The value depends on i only: cells in one pixel column share a fill, columns differ.
  const nx = 3, ny = 4;
  const values = Float64Array.from({ length: nx * ny }, (_, p) => Math.floor(p / ny));
  const cells = markItems(await checked(plot.heatmapSvg({ values, nx, ny, xRange: [0, 1], yRange: [0, 1] }, { levels: 0 })), 'rect');
  t.is(cells.length, nx * ny);
  const byColumn = new Map<string, Set<string>>();
  for (const c of cells) {
    const x = /^M([-\d.e]+),/.exec(c.attrs.d!)![1]!;
    byColumn.set(x, (byColumn.get(x) ?? new Set()).add(c.attrs.fill!));
  }
  t.is(byColumn.size, nx);
  t.true([...byColumn.values()].every((fills) => fills.size === 1));
  t.is(new Set([...byColumn.values()].map((f) => [...f][0])).size, nx);
});

test('heatmapSvg: bad input has stable codes', async (t) => {
  const g = bowl(5);
  await expectCode(t, plot.heatmapSvg({ ...g, nx: 4 }), 'ERR_SHAPE');
  await expectCode(t, plot.heatmapSvg({ ...g, nx: 1, ny: 25 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.heatmapSvg({ ...g, values: Float64Array.from(g.values, (v, p) => (p === 3 ? NaN : v)) }), 'ERR_NON_FINITE');
  await expectCode(t, plot.heatmapSvg({ ...g, xRange: [1, 1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.heatmapSvg({ ...g, yRange: [0, Infinity] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.heatmapSvg(g, { logColor: true }), 'ERR_INVALID_ARGUMENT'); // the bowl has a 0
  await expectCode(t, plot.heatmapSvg(g, { levels: -1 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.heatmapSvg(g, { levels: [0.5, NaN] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.heatmapSvg(g, { center: [0, NaN] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.heatmapSvg({ values: [], nx: 1000, ny: 1000, xRange: [0, 1], yRange: [0, 1] }), 'ERR_TOO_LARGE');
});

// ---- density ----

test('densitySvg: a log-scale line with a floor and a rug of Ritz nodes (tensor nodes accepted)', async (t) => {
  const grid = Float64Array.from({ length: 200 }, (_, k) => -1 + (k * 6) / 199);
  const density = grid.map((x) => 3 * Math.exp(-((x - 2) ** 2) * 20) + 0.5 * Math.exp(-(x ** 2) * 50));
  const nodes = new Tensor(Float64Array.of(0, 0.01, 2, 2.02, 4, 4.5), [2, 3]);
  const svg = await checked(plot.densitySvg({ grid, density, nodes }, { title: 'ESD' }));
  t.is(markItems(svg, 'line').length, 1);
  t.is(markItems(svg, 'rule').length, 6);
  t.true(all(svg, (e) => /^Y-axis .* log scale/.test(e.attrs['aria-label'] ?? '')).length === 1);
  // The domain starts a decade below the default floor 1e-7 and ends at the decade above the peak (≈ 3).
  for (const s of ['ESD', 'eigenvalue', 'density (log scale)', '1e-8', '1e-7', '1e+1']) t.true(texts(svg).includes(s), s);
  const noRug = await checked(plot.densitySvg({ grid, density, nodes: [1, 2] }, { rug: false, floor: 1e-3 }));
  t.is(markItems(noRug, 'rule').length, 0);
  t.true(texts(noRug).includes('1e-4'));
  t.is(markItems(await checked(plot.densitySvg({ grid: [0, 1], density: [0, 0] })), 'rule').length, 0);
});

test('densitySvg: bad input has stable codes', async (t) => {
  await expectCode(t, plot.densitySvg({ grid: [0, 1, 2], density: [1, 1] }), 'ERR_SHAPE');
  await expectCode(t, plot.densitySvg({ grid: [0], density: [1] }), 'ERR_SHAPE');
  await expectCode(t, plot.densitySvg({ grid: [0, 1], density: [1, NaN] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.densitySvg({ grid: [1, 0], density: [1, 1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.densitySvg({ grid: [0, 1], density: [1, -1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.densitySvg({ grid: [0, 1], density: [1, 1], nodes: [Infinity] }), 'ERR_NON_FINITE');
  await expectCode(t, plot.densitySvg({ grid: [0, 1], density: [1, 1] }, { floor: 0 }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, plot.densitySvg({ grid: 'ab' as unknown as number[], density: [1, 1] }), 'ERR_INVALID_ARGUMENT');
});

// ---- common ----

test('the same input renders the same SVG', async (t) => {
  t.is(await plot.profileSvg(profile), await plot.profileSvg(profile));
  t.is(await plot.heatmapSvg(bowl(9)), await plot.heatmapSvg(bowl(9)));
});

test('saveSvg writes the string; bad arguments and unwritable paths have codes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nnscope-plot-'));
  try {
    const svg = await plot.densitySvg({ grid: [0, 1], density: [1, 2] });
    await plot.saveSvg(join(dir, 'd.svg'), svg);
    t.is(await readFile(join(dir, 'd.svg'), 'utf8'), svg);
    await expectCode(t, plot.saveSvg(join(dir, 'x.svg'), '<html>'), 'ERR_INVALID_ARGUMENT');
    await expectCode(t, plot.saveSvg(join(dir, 'no', 'such', 'x.svg'), svg), 'ERR_IO');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('vega and vega-lite are imported lazily, not by the module itself', async (t) => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const f of ['index.js', 'render.js', 'contour.js']) {
    const js = await readFile(join(here, '..', 'lib', 'plot', f), 'utf8');
    t.false(/^\s*import\s[^(]*from\s+['"]vega/m.test(js), f);
  }
  const render = await readFile(join(here, '..', 'lib', 'plot', 'render.js'), 'utf8');
  t.true(render.includes("import('vega')") && render.includes("import('vega-lite')"));
});
