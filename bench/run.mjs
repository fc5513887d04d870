#!/usr/bin/env node
// `npm run bench -- <family> [options]`: runs bench/<family>.mjs. Without a family, lists them.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const families = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && !['run.mjs', 'common.mjs'].includes(f))
  .map((f) => f.replace(/\.mjs$/, ''));
const [family, ...rest] = process.argv.slice(2);
if (!family || !families.includes(family)) {
  console.error(`usage: npm run bench -- <${families.join('|')}> [--quick]`);
  process.exit(family ? 2 : 0);
}
const mod = await import(`./${family}.mjs`);
await mod.main(rest);
