/**
 * Diagnostic, not a scenario of run.mjs: bytes allocated per call on the success path, the one
 * figure of that path that machine load does not blur. The young generation is made large
 * enough that no GC runs while it measures, so the heap's growth over the calls is what they
 * allocated (the caller's own `await` included: compare with `bare`).
 *
 *   node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 \
 *     src/success-alloc.mjs --variant bulwark
 *
 * Variants: those of success.mjs. Prints one JSON line.
 */
import process from 'node:process';
import { parseArgs } from 'node:util';
import { variants } from './success.mjs';

const { values } = parseArgs({ options: { variant: { type: 'string' } }, strict: true });
const variant = values.variant === undefined ? undefined : variants[values.variant];
if (variant === undefined || typeof globalThis.gc !== 'function') {
  process.stderr.write(
    `usage: node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 src/success-alloc.mjs --variant <${Object.keys(variants).join('|')}>\n`,
  );
  process.exit(2);
}
const call = variant.make();
async function loop(n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += await call();
  return sum;
}
// A long warm-up: allocation changes as V8 optimises (escape analysis removes some objects).
await loop(300_000);
globalThis.gc();
const calls = 100_000;
const before = process.memoryUsage().heapUsed;
await loop(calls);
const after = process.memoryUsage().heapUsed;
process.stdout.write(
  `${JSON.stringify({ variant: values.variant, calls, bytesPerCall: Math.round((after - before) / calls) })}\n`,
  () => process.exit(0),
);
