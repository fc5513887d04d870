/**
 * Headless SVG rendering of a Vega-Lite spec: vega-lite compiles it to Vega, Vega renders
 * it with no canvas (`renderer: 'none'` + `toSVG()`). Both packages load lazily, on the first
 * render, so `import 'nnscope'` does not pay for them.
 */
import { createHash } from 'node:crypto';
import type { TopLevelSpec } from 'vega-lite';
import { NnscopeError } from '../errors.js';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

let modules: Promise<[Vega, VegaLite]> | undefined;

function load(): Promise<[Vega, VegaLite]> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]).catch((e: unknown) => {
    modules = undefined;
    throw new NnscopeError('ERR_INTERNAL', `cannot load vega / vega-lite: ${(e as Error)?.message ?? e}`, { cause: e });
  });
  return modules;
}

/** Compiles and renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await load();
  const compiled = vl.compile(spec, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return stableIds(await view.toSVG());
  } finally {
    view.finalize();
  }
}

const DEF_REF = /(id="|url\(#|href="#)(gradient_\d+|clip\d+)(?=[")])/g;

/**
 * Vega numbers gradient and clip ids from process-wide counters, so the same plot would differ
 * from call to call. Renames them by first appearance, prefixed with a hash of the normalised
 * document: identical plots give identical strings, different plots inlined in one page do not clash.
 */
function stableIds(svg: string): string {
  const index = new Map<string, number>();
  const normal = svg.replace(DEF_REF, (_, pre: string, id: string) => {
    if (!index.has(id)) index.set(id, index.size);
    return `${pre}nnscope-#-${index.get(id)}`;
  });
  if (index.size === 0) return svg;
  const hash = createHash('sha256').update(normal).digest('hex').slice(0, 10);
  return normal.replaceAll('nnscope-#-', `nnscope-${hash}-`);
}
