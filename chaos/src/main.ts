/**
 * `npm run chaos -w @bulwark/chaos`: starts the shop with a fault proxy in front of every service,
 * runs the chaos matrix, prints a table per scenario and writes the report under chaos/results/.
 * Exits 1 when a scenario fails.
 *
 *   node dist/main.js [--only users/down,recommendations] [--requests 200] [--concurrency 16]
 *                     [--margin-ms 250] [--time-scale 3] [--breaker-open-ms 500] [--out dir]
 *
 * `--time-scale` stretches the gateway's timings (1 s overview budget, 200-300 ms per attempt)
 * by a factor, keeping their proportions. The default 3 is for small machines: in-process PGlite
 * carries a few dozen overviews a second there, and with the production timings (`--time-scale 1`)
 * healthy calls queued behind it time out and would be counted against the fault under test.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runMatrix, selectMatrix } from './matrix.js';
import { scenarioTable, toMarkdown, writeReport, type ChaosReport } from './report.js';
import { DEFAULT_SEED, scaledTimings, startShopStack } from './stack.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    requests: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    'margin-ms': { type: 'string', default: '250' },
    'time-scale': { type: 'string', default: '3' },
    'breaker-open-ms': { type: 'string', default: '500' },
    out: { type: 'string' },
  },
  strict: true,
});

function int(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`chaos: --${name} must be a positive integer, got ${raw}\n`);
    process.exit(2);
  }
  return value;
}

const requests = int('requests', args.requests);
const concurrency = int('concurrency', args.concurrency);
const marginMs = int('margin-ms', args['margin-ms']);
const timeScale = Number(args['time-scale']);
if (!(timeScale > 0 && timeScale <= 20)) {
  process.stderr.write(
    `chaos: --time-scale must be a number in (0, 20], got ${args['time-scale']}\n`,
  );
  process.exit(2);
}
const { overviewBudgetMs, attemptTimeoutMs } = scaledTimings(timeScale);
const breakerOpenMs = int('breaker-open-ms', args['breaker-open-ms']);
const outDir = args.out ?? fileURLToPath(new URL('../results/', import.meta.url));
let entries;
try {
  entries = selectMatrix(args.only?.split(',').filter(Boolean));
} catch (error) {
  process.stderr.write(`chaos: ${(error as Error).message}\n`);
  process.exit(2);
}

const started = Date.now();
process.stderr.write(
  `chaos: starting the shop (in-memory PGlite, seed ${JSON.stringify(DEFAULT_SEED)})\n`,
);
const stack = await startShopStack({
  overviewBudgetMs,
  breakerOpenMs,
  attemptTimeoutMs,
});
let stopping = false;
process.once('SIGINT', () => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('chaos: interrupted, stopping\n');
  void stack.close().finally(() => process.exit(130));
});

try {
  process.stderr.write(`chaos: gateway at ${stack.gatewayUrl}; ${entries.length + 1} scenarios\n`);
  const scenarios = await runMatrix(stack, entries, { requests, concurrency, marginMs }, result =>
    process.stdout.write(`\n${scenarioTable(result)}\n`),
  );
  const report: ChaosReport = {
    date: new Date(started).toISOString(),
    elapsedMs: Date.now() - started,
    environment: {
      node: process.version,
      platform: `${process.platform} ${os.release()} ${process.arch}`,
    },
    config: {
      requests,
      concurrency,
      overviewBudgetMs,
      timeScale,
      breakerOpenMs,
      attemptTimeoutMs: { ...stack.attemptTimeoutMs },
      marginMs,
      seed: { ...stack.seed },
    },
    scenarios,
    pass: scenarios.every(s => s.pass),
  };
  const files = await writeReport(outDir, report);
  const summary = toMarkdown(report).split('## Scenarios')[0] ?? '';
  process.stdout.write(`\n${summary.trim()}\n\n`);
  process.stderr.write(`chaos: wrote ${files.join(', ')}\n`);
  process.exitCode = report.pass ? 0 : 1;
} finally {
  await stack.close();
}
