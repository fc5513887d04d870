#!/usr/bin/env node
// Sums test results for CI: `summarize.mjs tap FILE` reads ava's TAP output,
// `summarize.mjs junit FILE` reads ctest's JUnit XML; `summarize.mjs sum A B …`
// adds "passed failed skipped" triples. Each prints "P F S".
import { readFileSync } from 'node:fs';

const [mode, ...files] = process.argv.slice(2);
let p = 0, f = 0, s = 0;
if (mode === 'tap') {
  const text = readFileSync(files[0], 'utf8');
  const num = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [0, 0])[1]);
  p = num('pass');
  f = num('fail');
  s = num('skip') + num('todo');
  if (!/^1\.\.\d+$/m.test(text)) f += 1; // no plan: ava crashed
} else if (mode === 'junit') {
  const text = readFileSync(files[0], 'utf8');
  const attr = (k) => Number((text.match(new RegExp(`<testsuite[^>]*\\s${k}="(\\d+)"`)) ?? [0, 0])[1]);
  const total = attr('tests');
  f = attr('failures') + attr('errors');
  s = attr('skipped') + attr('disabled');
  p = total - f - s;
  if (total === 0) f += 1; // nothing ran
} else if (mode === 'sum') {
  for (const triple of files) {
    const [a, b, c] = triple.trim().split(/\s+/).map(Number);
    p += a; f += b; s += c;
  }
} else {
  console.error('usage: summarize.mjs tap|junit FILE | sum "P F S"...');
  process.exit(2);
}
console.log(`${p} ${f} ${s}`);
