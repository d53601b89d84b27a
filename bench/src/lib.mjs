/**
 * Helpers shared by the scenario scripts. Each scenario script runs ONE variant in a fresh
 * `node --expose-gc` process and prints one JSON line on stdout; `run.mjs` spawns them.
 */
import { setImmediate } from 'node:timers';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

/** Parses the arguments every scenario script accepts. */
export function scenarioArgs() {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string' },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return values;
}

/** True when `meta` (a module's `import.meta`) is the script node was started with. */
export function isMain(meta) {
  return process.argv[1] !== undefined && meta.url === pathToFileURL(process.argv[1]).href;
}

/** Full collections between measurements; several passes let weak references and finalizers go. */
export async function settleHeap() {
  const gc = globalThis.gc;
  if (typeof gc !== 'function') throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise(resolve => setImmediate(resolve));
  }
}

export function now() {
  return process.hrtime.bigint();
}

/** Nanoseconds per operation between two `now()` readings. */
export function nsPer(start, end, count) {
  return Number(end - start) / count;
}

/** Prints the result line and exits (some libraries keep timers alive). */
export function emit(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** Runs a scenario script: `--list` prints the variants, `--variant X` measures one. */
export async function runScenario(meta, scenario, variants, measure) {
  if (!isMain(meta)) return;
  const args = scenarioArgs();
  if (args.list) {
    emit(Object.entries(variants).map(([name, v]) => ({ name, ...describe(v) })));
    return;
  }
  const variant = args.variant === undefined ? undefined : variants[args.variant];
  if (variant === undefined) {
    process.stderr.write(
      `unknown --variant ${String(args.variant)}; known: ${Object.keys(variants).join(', ')}\n`,
    );
    process.exit(2);
  }
  const missing = variant.requires?.();
  if (missing) {
    emit({ scenario, variant: args.variant, skipped: missing });
    return;
  }
  const result = await measure(variant, { quick: args.quick });
  emit({ scenario, variant: args.variant, ...result });
}

function describe(variant) {
  return {
    label: variant.label,
    lib: variant.lib,
    role: variant.role ?? 'info',
  };
}

/** Returns a message naming the missing `@bulwark/core` exports, or undefined. */
export function missingExports(core, names) {
  const missing = names.filter(name => typeof core[name] !== 'function');
  return missing.length === 0
    ? undefined
    : `@bulwark/core does not export ${missing.join(', ')} yet`;
}
