/**
 * Benchmark driver. For every scenario and variant it starts a FRESH `node --expose-gc` process
 * per run, interleaves the variants (rotating their order each run), takes the median over runs,
 * prints Markdown tables with PASS/FAIL against the targets, and writes the figures as JSON.
 *
 *   node src/run.mjs [--runs 5] [--quick] [--scenario success,failure,memory,http-client,http-server,
 *                    gateway,gateway-hang,gateway-batch,queue-pg,queue-latency,queue-redis,
 *                    queue-rabbitmq,queue-nats]
 *                    [--variant a,b]
 *
 * `--quick` is a smoke run: 1 run (unless --runs is given), 10x fewer calls, and the JSON goes to
 * results/quick-latest.json instead of a dated file and latest.json.
 */
import process from 'node:process';
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));
const resultsDir = join(benchDir, 'results');
const SCENARIOS = [
  'success',
  'failure',
  'memory',
  'http-client',
  'http-server',
  'gateway',
  'gateway-hang',
  'gateway-batch',
  'queue-pg',
  'queue-latency',
  'queue-redis',
  'queue-rabbitmq',
  'queue-nats',
];
const HTTP_SCENARIOS = ['http-client', 'http-server'];
const GATEWAY_SCENARIOS = ['gateway', 'gateway-hang', 'gateway-batch'];
const QUEUE_SCENARIOS = [
  'queue-pg',
  'queue-latency',
  'queue-redis',
  'queue-rabbitmq',
  'queue-nats',
];
/** Queues on PGlite/PostgreSQL: bulwark's messages/s at least this multiple of pg-boss's. */
const QUEUE_PG_FACTOR = 2;
/** Queues on Redis: bulwark's processed messages/s at least this multiple of BullMQ's. */
const QUEUE_REDIS_FACTOR = 1;
/** Queues on RabbitMQ and NATS: bulwark's processed messages/s at least this share of a bare loop's. */
const QUEUE_BROKER_SHARE = 0.7;
/** Enqueue-to-handler latency in process: p50 at most this, ms. */
const QUEUE_LATENCY_P50_MS = 10;
/** Gateway fan-out target: the gateway's requests/s at least this share of the naive handler's. */
const GATEWAY_RPS_SHARE = 0.9;
/** With recommendations hanging: at least this share of the healthy gateway's requests/s. */
const GATEWAY_HANG_RPS_SHARE = 0.8;
/** With recommendations hanging: p99 at most the overview budget plus this, in ms. */
const GATEWAY_HANG_P99_SLACK_MS = 10;
/** HTTP targets: the subject's requests/s at least this share of the baseline's. */
const HTTP_RPS_SHARE = 0.9;
/** HTTP client target: the subject's p99 at most this factor of the baseline's. */
const HTTP_P99_FACTOR = 1.1;
const CHILD_TIMEOUT_MS = 300_000;
/** Failure path: chunk 10 over chunk 1 above this counts as growing (VM noise is ±15–30%). */
const FLAT_LIMIT = 1.3;

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string' },
    variant: { type: 'string' },
  },
  strict: true,
});
const runs = args.runs === undefined ? (args.quick ? 1 : 5) : Number(args.runs);
if (!Number.isInteger(runs) || runs < 1) {
  fail(`--runs must be a positive integer, got ${String(args.runs)}`);
}
const scenarios = args.scenario === undefined ? SCENARIOS : args.scenario.split(',');
for (const s of scenarios) {
  if (!SCENARIOS.includes(s)) fail(`unknown --scenario ${s}; known: ${SCENARIOS.join(', ')}`);
}
const variantFilter = args.variant?.split(',');

const coreEntry = fileURLToPath(import.meta.resolve('@bulwark/core'));
if (!existsSync(coreEntry)) {
  fail(`${coreEntry} is missing: build first (\`npm run build\` or \`npx tsc -b\` at the root)`);
}

const started = Date.now();
const environment = describeEnvironment();
log(
  `node ${environment.node}, ${environment.cpu.model} x${environment.cpu.count}, ` +
    `runs ${runs}${args.quick ? ' (quick)' : ''}`,
);

const load = environment.loadAverageStart[0];
if (load > environment.cpu.count / 2) {
  log(
    `warning: the machine is busy (1-min load average ${load.toFixed(1)}): figures will be noisy`,
  );
}

const results = {};
for (const scenario of scenarios) results[scenario] = runScenario(scenario);

const summaries = {
  success: summariseSuccess,
  failure: summariseFailure,
  memory: summariseMemory,
  'http-client': variants =>
    summariseHttp(variants, {
      scenario: 'http-client',
      title:
        '4. HTTP client: closed loop, GET of a small JSON body from a loopback node:http server',
      baseline: 'undici',
      subject: 'bulwark',
      p99Target: true,
    }),
  'http-server': variants =>
    summariseHttp(variants, {
      scenario: 'http-server',
      title: '5. HTTP server: Fastify route with and without the plugin, load from another process',
      baseline: 'bare',
      subject: 'bulwark',
      p99Target: false,
    }),
  gateway: variants =>
    summariseGateway(variants, {
      scenario: 'gateway',
      title: '6. Gateway fan-out, all upstreams healthy: shop gateway vs naive Promise.all handler',
      baseline: 'naive',
    }),
  'gateway-hang': variants =>
    summariseGateway(variants, {
      scenario: 'gateway-hang',
      title: '7. Gateway with the recommendations service hanging',
      baseline: 'gateway-healthy',
    }),
  'gateway-batch': variants =>
    summariseGateway(variants, {
      scenario: 'gateway-batch',
      title: '8. Overview of an order with 20 lines: batched product look-up vs one call per line',
      baseline: 'naive-per-line',
    }),
  'queue-pg': summariseQueuePg,
  'queue-latency': summariseQueueLatency,
  'queue-redis': summariseQueueRedis,
  'queue-rabbitmq': variants =>
    summariseQueueBroker(variants, 'queue-rabbitmq', '12. Queues on RabbitMQ (quorum queues)'),
  'queue-nats': variants =>
    summariseQueueBroker(variants, 'queue-nats', '13. Queues on NATS JetStream'),
};
const output = [];
const targets = [];
for (const scenario of scenarios) {
  const { table, checks } = summaries[scenario](results[scenario]);
  output.push(table);
  targets.push(...checks);
}
output.push(targetTable(targets));

const elapsedS = Math.round((Date.now() - started) / 1000);
environment.loadAverageEnd = os.loadavg();
const report = {
  date: new Date(started).toISOString(),
  elapsedS,
  config: { runs, quick: args.quick, scenarios, variantFilter: variantFilter ?? null },
  environment,
  scenarios: results,
  targets,
};
const text = output.join('\n\n');
process.stdout.write(`\n${text}\n\n`);

mkdirSync(resultsDir, { recursive: true });
const json = `${JSON.stringify(report, null, 2)}\n`;
if (args.quick) {
  writeFileSync(join(resultsDir, 'quick-latest.json'), json);
  log(`wrote results/quick-latest.json (${elapsedS} s)`);
} else {
  const stamp = report.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  // An HTTP-only, gateway-only or queue-only run must not replace latest.json of a full run.
  const httpOnly = scenarios.every(s => HTTP_SCENARIOS.includes(s));
  const gatewayOnly = scenarios.every(s => GATEWAY_SCENARIOS.includes(s));
  const queueOnly = scenarios.every(s => QUEUE_SCENARIOS.includes(s));
  const prefix = httpOnly ? 'http' : gatewayOnly ? 'gateway' : queueOnly ? 'queue' : 'core';
  const file = `${prefix}-${stamp}.json`;
  const latest = prefix === 'core' ? 'latest.json' : `${prefix}-latest.json`;
  writeFileSync(join(resultsDir, file), json);
  writeFileSync(join(resultsDir, latest), json);
  log(`wrote results/${file} and results/${latest} (${elapsedS} s)`);
}

// ---------------------------------------------------------------------------------------------

function runScenario(scenario) {
  const file = join('src', `${scenario}.mjs`);
  const listed = child(file, ['--list']);
  if (!Array.isArray(listed)) fail(`${file} --list failed: ${JSON.stringify(listed)}`);
  const variants = listed.filter(
    v => variantFilter === undefined || variantFilter.includes(v.name),
  );
  const byName = Object.fromEntries(variants.map(v => [v.name, { ...v, runs: [] }]));
  for (let run = 0; run < runs; run++) {
    // Rotate the order each run so no variant always runs first (or right after a heavy one).
    const order = variants.map((_, i) => variants[(i + run) % variants.length]);
    for (const variant of order) {
      const result = child(file, ['--variant', variant.name, ...(args.quick ? ['--quick'] : [])]);
      byName[variant.name].runs.push(result);
      log(`[${scenario} ${run + 1}/${runs}] ${variant.name}: ${brief(result)}`);
    }
  }
  for (const entry of Object.values(byName)) {
    const skipped = entry.runs.find(r => r.skipped !== undefined);
    const errored = entry.runs.find(r => r.error !== undefined);
    if (skipped !== undefined) entry.skipped = skipped.skipped;
    if (errored !== undefined) entry.error = errored.error;
  }
  return byName;
}

/** Runs one scenario script in a fresh process and returns its JSON line (or `{ error }`). */
function child(file, extra) {
  const res = spawnSync(process.execPath, ['--expose-gc', file, ...extra], {
    cwd: benchDir,
    encoding: 'utf8',
    timeout: CHILD_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  const last = res.stdout
    ?.trim()
    .split('\n')
    .filter(line => line.startsWith('{') || line.startsWith('['))
    .at(-1);
  if (res.status === 0 && last !== undefined) {
    try {
      return JSON.parse(last);
    } catch {
      // fall through to the error below
    }
  }
  const why = res.error?.message ?? `exit ${String(res.status ?? res.signal)}`;
  const stderr = (res.stderr ?? '').trim().split('\n').slice(-6).join('\n');
  return { error: `${why}${stderr ? `: ${stderr}` : ''}` };
}

function brief(result) {
  if (result.skipped !== undefined) return `skipped (${result.skipped})`;
  if (result.error !== undefined) return `ERROR ${result.error}`;
  if (result.nsPerCall !== undefined) return `${fmt(result.nsPerCall)} ns/call`;
  if (result.chunkNs !== undefined) {
    return `${fmt(result.chunkNs[0])} → ${fmt(result.chunkNs.at(-1))} ns/call`;
  }
  if (result.bytesPerInstance !== undefined) return `${fmt(result.bytesPerInstance)} B/instance`;
  if (result.rps !== undefined) {
    return `${fmt(result.rps)} req/s, p99 ${(result.p99Us / 1000).toFixed(2)} ms`;
  }
  if (result.ops !== undefined) {
    return Object.entries(result.ops)
      .map(([op, perS]) => `${op} ${fmt(perS)}/s`)
      .join(', ');
  }
  if (result.p50Us !== undefined) {
    return `p50 ${(result.p50Us / 1000).toFixed(2)} ms, p99 ${(result.p99Us / 1000).toFixed(2)} ms`;
  }
  return JSON.stringify(result);
}

// ---------------------------------------------------------------------------------------------
// Summaries. Every figure is the median over the runs; ratios are ratios of medians, except the
// HTTP, gateway and queue ones, which are medians of per-run ratios (pairedRatio).

function ok(entry) {
  return entry !== undefined && entry.skipped === undefined && entry.error === undefined;
}

function unavailable(entry) {
  if (entry === undefined) return 'not run';
  return entry.skipped ?? `error: ${entry.error}`;
}

function summariseSuccess(variants) {
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    const ns = v.runs.map(r => r.nsPerCall);
    Object.assign(v, { medianNs: median(ns), minNs: Math.min(...ns), maxNs: Math.max(...ns) });
  }
  const bare = variants.bare;
  const empty = variants['bulwark-empty'];
  const rows = Object.entries(variants).map(([name, v]) => {
    if (!ok(v)) return [name, v.label, unavailable(v), '', '', '', ''];
    const overhead = ok(bare) ? v.medianNs - bare.medianNs : NaN;
    const times = ok(bare) ? v.medianNs / bare.medianNs : NaN;
    v.overheadNs = overhead;
    // What the policies cost on top of the execution protocol (one promise, one `.then`).
    const policies =
      v.lib === '@bulwark/core' && name !== 'bulwark-empty' && ok(empty)
        ? fmt(v.medianNs - empty.medianNs)
        : '–';
    return [
      name,
      v.label,
      fmt(v.medianNs),
      `${fmt(v.minNs)}–${fmt(v.maxNs)}`,
      name === 'bare' ? '–' : fmt(overhead),
      Number.isFinite(times) ? `${times.toFixed(1)}×` : 'n/a',
      policies,
    ];
  });
  const shape = Object.values(variants).find(ok)?.runs[0] ?? { warmup: 0, calls: 0 };
  const table = markdown(
    `1. Success path: median ns per sequential \`await\` (${fmt(shape.warmup)} warm-up, ` +
      `${fmt(shape.calls)} timed calls)`,
    [
      'variant',
      'configuration',
      'median ns/call',
      'range',
      'overhead vs bare',
      '× bare',
      'vs bulwark-empty',
    ],
    rows,
  );

  const subject = variants.bulwark;
  const checks = [
    ratioCheck('success', 'bulwark ≤ cockatiel / 20', variants.cockatiel, subject, 20),
    ratioCheck('success', 'bulwark ≤ opossum / 2.5', variants.opossum, subject, 2.5),
    overheadCheck('success', 'bulwark composite adds ≤ 250 ns (§10.1 goal)', subject, bare, 250),
  ];
  for (const name of ['bulwark-timeout', 'bulwark-retry', 'bulwark-breaker']) {
    checks.push(
      overheadCheck('success', `${name} adds ≤ 100 ns (§10.1 goal)`, variants[name], bare, 100),
    );
  }
  return { table, checks };
}

function ratioCheck(scenario, name, peer, subject, factor) {
  if (!ok(peer) || !ok(subject)) {
    return { scenario, name, result: 'n/a', why: unavailable(ok(peer) ? subject : peer) };
  }
  const ratio = peer.medianNs / subject.medianNs;
  return {
    scenario,
    name,
    measured: `${fmt(peer.medianNs)} / ${fmt(subject.medianNs)} = ${ratio.toFixed(1)}×`,
    limit: `≥ ${factor}×`,
    value: ratio,
    result: ratio >= factor ? 'PASS' : 'FAIL',
  };
}

function overheadCheck(scenario, name, subject, bare, limitNs) {
  if (!ok(subject) || !ok(bare)) {
    return { scenario, name, result: 'n/a', why: unavailable(ok(bare) ? subject : bare) };
  }
  const added = subject.medianNs - bare.medianNs;
  return {
    scenario,
    name,
    measured: `${fmt(added)} ns`,
    limit: `≤ ${limitNs} ns`,
    value: added,
    result: added <= limitNs ? 'PASS' : 'FAIL',
  };
}

function summariseFailure(variants) {
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    const chunks = v.runs[0].chunkNs.length;
    const c = (v.medianChunkNs = Array.from({ length: chunks }, (_, i) =>
      median(v.runs.map(r => r.chunkNs[i])),
    ));
    v.firstNs = c[0];
    v.lastNs = c[chunks - 1];
    // Chunk 1 of a fresh instance still pays for re-optimisation; the later chunks are steady.
    v.steadyNs = median(c.slice(1));
    v.growth = median(c.slice(-3)) / median(c.slice(1, 4));
  }
  const bare = variants.bare;
  const rows = Object.entries(variants).map(([name, v]) => {
    if (!ok(v)) return [name, v.label, unavailable(v), '', '', '', '', '', ''];
    v.addedNs = ok(bare)
      ? { first: v.firstNs - bare.firstNs, steady: v.steadyNs - bare.steadyNs }
      : { first: NaN, steady: NaN };
    return [
      name,
      v.label,
      fmt(v.firstNs),
      fmt(v.lastNs),
      (v.lastNs / v.firstNs).toFixed(2),
      fmt(v.steadyNs),
      v.growth.toFixed(2),
      fmt(Math.max(...v.medianChunkNs)),
      name === 'bare' ? '–' : `${fmt(v.addedNs.first)} / ${fmt(v.addedNs.steady)}`,
    ];
  });
  const first = Object.values(variants).find(ok);
  const size = first?.runs[0].chunkSize ?? 0;
  const table = markdown(
    `2. Failure path: median ns per failing call, 10 chunks of ${fmt(size)} calls`,
    [
      'variant',
      'configuration',
      'chunk 1',
      'chunk 10',
      'chunk 10 / chunk 1',
      'steady (chunks 2–10)',
      'growth (8–10 / 2–4)',
      'worst chunk',
      'added vs bare (chunk 1 / steady)',
    ],
    rows,
  );

  const checks = [];
  for (const name of ['bulwark', 'bulwark-time']) {
    const subject = variants[name];
    if (!ok(subject) || !ok(bare)) {
      const why = unavailable(ok(bare) ? subject : bare);
      checks.push({
        scenario: 'failure',
        name: `${name} adds ≤ 2 µs per failing call`,
        result: 'n/a',
        why,
      });
      checks.push({
        scenario: 'failure',
        name: `${name} failure cost is flat`,
        result: 'n/a',
        why,
      });
      continue;
    }
    const added = subject.addedNs.steady;
    checks.push({
      scenario: 'failure',
      name: `${name} adds ≤ 2 µs per failing call (steady, chunks 2–10)`,
      measured: `${fmt(added)} ns`,
      limit: '≤ 2,000 ns',
      value: added,
      result: added <= 2000 ? 'PASS' : 'FAIL',
    });
    checks.push({
      scenario: 'failure',
      name: `${name} failure cost is flat (chunks 8–10 / chunks 2–4)`,
      measured: subject.growth.toFixed(2),
      limit: `≤ ${FLAT_LIMIT}`,
      value: subject.growth,
      result: subject.growth <= FLAT_LIMIT ? 'PASS' : 'FAIL',
    });
  }
  return { table, checks };
}

function summariseMemory(variants) {
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    v.medianBytes = median(v.runs.map(r => r.bytesPerInstance));
    v.medianExternalBytes = median(v.runs.map(r => r.externalBytesPerInstance));
    v.medianCreateNs = median(v.runs.map(r => r.nsToCreate));
    v.timersPerInstance = median(v.runs.map(r => r.timersPerInstance));
  }
  const rows = Object.entries(variants).map(([name, v]) =>
    ok(v)
      ? [
          name,
          v.label,
          fmt(v.medianBytes),
          fmt(v.medianExternalBytes),
          (v.medianCreateNs / 1000).toFixed(1),
          String(v.timersPerInstance),
        ]
      : [name, v.label, unavailable(v), '', '', ''],
  );
  const first = Object.values(variants).find(ok);
  const count = first?.runs[0].count ?? 0;
  const table = markdown(
    `3. Memory: retained bytes per breaker (${fmt(count)} kept alive; V8 heap + off-heap)`,
    [
      'variant',
      'configuration',
      'bytes/breaker',
      'of which off-heap',
      'µs to create',
      'timers/breaker',
    ],
    rows,
  );
  const checks = [];
  for (const name of ['bulwark-time', 'bulwark-consecutive', 'bulwark-time-used']) {
    const v = variants[name];
    if (!ok(v)) {
      checks.push({
        scenario: 'memory',
        name: `${name} ≤ 1 KB`,
        result: 'n/a',
        why: unavailable(v),
      });
      continue;
    }
    checks.push({
      scenario: 'memory',
      name: `${name} ≤ 1 KB per breaker`,
      measured: `${fmt(v.medianBytes)} B`,
      limit: '≤ 1,024 B',
      value: v.medianBytes,
      result: v.medianBytes <= 1024 ? 'PASS' : 'FAIL',
    });
    checks.push({
      scenario: 'memory',
      name: `${name} arms no per-instance timer (§10.1 goal)`,
      measured: String(v.timersPerInstance),
      limit: '0',
      value: v.timersPerInstance,
      result: v.timersPerInstance === 0 ? 'PASS' : 'FAIL',
    });
  }
  return { table, checks };
}

function summariseHttp(variants, { scenario, title, baseline, subject, p99Target }) {
  const figures = ['rps', 'p50Us', 'p99Us', 'driverCpuUsPerRequest', 'serverCpuUsPerRequest'];
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    v.median = Object.fromEntries(figures.map(f => [f, median(v.runs.map(r => r[f]))]));
    const rps = v.runs.map(r => r.rps);
    v.rpsRange = [Math.min(...rps), Math.max(...rps)];
  }
  const base = variants[baseline];
  const ms = us => (us / 1000).toFixed(2);
  const rows = Object.entries(variants).map(([name, v]) => {
    if (!ok(v)) return [name, v.label, unavailable(v), '', '', '', '', '', '', ''];
    const m = v.median;
    const b = ok(base) ? base.median : undefined;
    return [
      name,
      v.label,
      fmt(m.rps),
      `${fmt(v.rpsRange[0])}–${fmt(v.rpsRange[1])}`,
      b === undefined ? 'n/a' : `${pairedRatio(v, base, 'rps').toFixed(2)}×`,
      ms(m.p50Us),
      ms(m.p99Us),
      b === undefined ? 'n/a' : `${pairedRatio(v, base, 'p99Us').toFixed(2)}×`,
      m.driverCpuUsPerRequest.toFixed(1),
      m.serverCpuUsPerRequest.toFixed(1),
    ];
  });
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = markdown(
    `${title} (${fmt(shape.concurrency)} in flight, ${fmt(shape.warmup)} warm-up + ` +
      `${fmt(shape.requests)} timed requests; medians over runs; × = median of the per-run ratios)`,
    [
      'variant',
      'configuration',
      'req/s',
      'range',
      `× ${baseline} req/s`,
      'p50 ms',
      'p99 ms',
      `× ${baseline} p99`,
      `${scenario === 'http-client' ? 'client' : 'load generator'} CPU µs/req`,
      'server CPU µs/req',
    ],
    rows,
  );

  const s = variants[subject];
  const checks = [];
  const name = `${subject} req/s ≥ ${HTTP_RPS_SHARE} × ${baseline}`;
  if (!ok(s) || !ok(base)) {
    checks.push({ scenario, name, result: 'n/a', why: unavailable(ok(base) ? s : base) });
    return { table, checks };
  }
  const share = pairedRatio(s, base, 'rps');
  checks.push({
    scenario,
    name,
    measured: `${share.toFixed(2)}× (${perRunRatios(s)}; medians ${fmt(s.median.rps)} / ${fmt(base.median.rps)} = ${(s.median.rps / base.median.rps).toFixed(2)}×)`,
    limit: `≥ ${HTTP_RPS_SHARE}×`,
    value: share,
    result: share >= HTTP_RPS_SHARE ? 'PASS' : 'FAIL',
  });
  if (p99Target) {
    const factor = pairedRatio(s, base, 'p99Us');
    checks.push({
      scenario,
      name: `${subject} p99 within ${Math.round((HTTP_P99_FACTOR - 1) * 100)}% of ${baseline}`,
      measured: `${factor.toFixed(2)}× (${perRunRatios(s)}; medians ${ms(s.median.p99Us)} / ${ms(base.median.p99Us)} ms = ${(s.median.p99Us / base.median.p99Us).toFixed(2)}×)`,
      limit: `≤ ${HTTP_P99_FACTOR}×`,
      value: factor,
      result: factor <= HTTP_P99_FACTOR ? 'PASS' : 'FAIL',
    });
  }
  return { table, checks };
}

function summariseGateway(variants, { scenario, title, baseline }) {
  const figures = [
    'rps',
    'p50Us',
    'p99Us',
    'serverCpuUsPerRequest',
    'upstreamCallsPerRequest',
    'catalogCallsPerRequest',
  ];
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    v.median = Object.fromEntries(figures.map(f => [f, median(v.runs.map(r => r[f]))]));
    // The worst run, not the median: one run that was shed (503s answer fast) would otherwise
    // lift the req/s median while the median share of unexpected answers still read 0%.
    v.median.unexpectedShare = Math.max(...v.runs.map(r => r.failures / r.requests));
    const rps = v.runs.map(r => r.rps);
    v.rpsRange = [Math.min(...rps), Math.max(...rps)];
  }
  const base = variants[baseline];
  const ms = us => (us / 1000).toFixed(2);
  const rows = Object.entries(variants).map(([name, v]) => {
    if (!ok(v)) return [name, v.label, unavailable(v), '', '', '', '', '', '', '', '', ''];
    const m = v.median;
    const statuses = Object.entries(v.runs.at(-1).statuses ?? {})
      .map(([status, n]) => `${status}×${fmt(n)}`)
      .join(' ');
    return [
      name,
      v.label,
      fmt(m.rps),
      `${fmt(v.rpsRange[0])}–${fmt(v.rpsRange[1])}`,
      ok(base) ? `${pairedRatio(v, base, 'rps').toFixed(2)}×` : 'n/a',
      ms(m.p50Us),
      ms(m.p99Us),
      m.serverCpuUsPerRequest.toFixed(0),
      m.upstreamCallsPerRequest.toFixed(2),
      m.catalogCallsPerRequest.toFixed(2),
      `${(m.unexpectedShare * 100).toFixed(1)}%`,
      statuses,
    ];
  });
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = markdown(
    `${title} (${fmt(shape.concurrency)} in flight, budget ${fmt(shape.budgetMs)} ms, ` +
      `${fmt(shape.warmup)} warm-up + ${fmt(shape.requests)} timed requests; medians over runs; × = median of the per-run ratios)`,
    [
      'variant',
      'configuration',
      'req/s',
      'range',
      `× ${baseline} req/s`,
      'p50 ms',
      'p99 ms',
      'server CPU µs/req',
      'upstream calls/req',
      'catalog calls/req',
      'unexpected answers (worst run)',
      'statuses (last run)',
    ],
    rows,
  );

  const checks = [];
  const share = (subjectName, baseName, limit) => {
    const s = variants[subjectName];
    const b = variants[baseName];
    const name = `${subjectName} req/s ≥ ${limit} × ${baseName}`;
    if (!ok(s) || !ok(b)) {
      return { scenario, name, result: 'n/a', why: unavailable(ok(b) ? s : b) };
    }
    const value = pairedRatio(s, b, 'rps');
    return {
      scenario,
      name,
      measured: `${value.toFixed(2)}× (${perRunRatios(s)}; medians ${fmt(s.median.rps)} / ${fmt(b.median.rps)} = ${(s.median.rps / b.median.rps).toFixed(2)}×)`,
      limit: `≥ ${limit}×`,
      value,
      result: value >= limit ? 'PASS' : 'FAIL',
    };
  };
  // Figures of a variant whose answers were not what it should answer compare unlike work.
  const expected = subjectName => {
    const s = variants[subjectName];
    const name = `${subjectName} answers as expected (complete; degraded recommendations when hanging)`;
    if (!ok(s)) return { scenario, name, result: 'n/a', why: unavailable(s) };
    const share = s.median.unexpectedShare;
    return {
      scenario,
      name,
      measured: `${(share * 100).toFixed(1)}% unexpected (worst run)`,
      limit: '0%',
      value: share,
      result: share === 0 ? 'PASS' : 'FAIL',
    };
  };
  if (scenario === 'gateway') {
    checks.push(share('gateway', 'naive', GATEWAY_RPS_SHARE), expected('gateway'));
  }
  if (scenario === 'gateway-hang') {
    checks.push(
      share('gateway-hang', 'gateway-healthy', GATEWAY_HANG_RPS_SHARE),
      expected('gateway-healthy'),
      expected('gateway-hang'),
    );
    const s = variants['gateway-hang'];
    const name = `gateway-hang p99 ≤ budget + ${GATEWAY_HANG_P99_SLACK_MS} ms`;
    if (!ok(s)) checks.push({ scenario, name, result: 'n/a', why: unavailable(s) });
    else {
      const limitMs = s.runs[0].budgetMs + GATEWAY_HANG_P99_SLACK_MS;
      const p99Ms = s.median.p99Us / 1000;
      checks.push({
        scenario,
        name,
        measured: `${p99Ms.toFixed(1)} ms`,
        limit: `≤ ${limitMs} ms`,
        value: p99Ms,
        result: p99Ms <= limitMs ? 'PASS' : 'FAIL',
      });
    }
  }
  if (scenario === 'gateway-batch') {
    checks.push(expected('gateway'));
    const s = variants.gateway;
    const name = 'gateway: one catalog call per overview of 20 lines';
    if (!ok(s)) checks.push({ scenario, name, result: 'n/a', why: unavailable(s) });
    else {
      const calls = s.median.catalogCallsPerRequest;
      const perLine = variants['naive-per-line'];
      checks.push({
        scenario,
        name,
        measured:
          `${calls.toFixed(2)} calls` +
          (ok(perLine) ? ` (per line: ${perLine.median.catalogCallsPerRequest.toFixed(2)})` : ''),
        limit: '≤ 1',
        value: calls,
        result: calls <= 1 ? 'PASS' : 'FAIL',
      });
    }
  }
  return { table, checks };
}

/** Queue throughput: per operation, the median messages/s over runs of each variant. */
function queueMedians(variants) {
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    const ops = Object.keys(v.runs[0].ops);
    v.median = Object.fromEntries(ops.map(op => [op, median(v.runs.map(r => r.ops[op]))]));
    v.range = Object.fromEntries(
      ops.map(op => {
        const all = v.runs.map(r => r.ops[op]);
        return [op, [Math.min(...all), Math.max(...all)]];
      }),
    );
  }
}

/** A throughput table: one row per variant, one "median (range)" column per operation. */
function queueTable(title, variants, ops) {
  const rows = Object.entries(variants).map(([name, v]) => {
    if (!ok(v)) return [name, v.label, unavailable(v), ...ops.slice(1).map(() => '')];
    return [
      name,
      v.label,
      ...ops.map(op =>
        v.runs.length > 1
          ? `${fmt(v.median[op])} (${fmt(v.range[op][0])}–${fmt(v.range[op][1])})`
          : fmt(v.median[op]),
      ),
    ];
  });
  return markdown(title, ['variant', 'configuration', ...ops.map(op => `${op} msg/s`)], rows);
}

function queueRatioCheck(scenario, op, subjectName, baseName, subject, base, factor) {
  const name = `${subjectName} ${op} msg/s ≥ ${factor} × ${baseName}`;
  if (!ok(subject) || !ok(base)) {
    return { scenario, name, result: 'n/a', why: unavailable(ok(base) ? subject : base) };
  }
  const value = pairedRatio(subject, base, run => run.ops[op]);
  return {
    scenario,
    name,
    measured: `${value.toFixed(2)}× (${perRunRatios(subject)}; medians ${fmt(subject.median[op])} / ${fmt(base.median[op])} = ${(subject.median[op] / base.median[op]).toFixed(2)}×)`,
    limit: `≥ ${factor}×`,
    value,
    result: value >= factor ? 'PASS' : 'FAIL',
  };
}

function summariseQueuePg(variants) {
  queueMedians(variants);
  const ops = ['bulk', 'single', 'process', 'fetch-complete'];
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = queueTable(
    `9. Queues on PGlite and PostgreSQL: bulwark vs pg-boss 12 (bulk ${fmt(shape.messages)} in ` +
      `batches of ${fmt(shape.bulkBatch)}; single ${fmt(shape.single)} sequential; process and ` +
      `fetch-complete ${fmt(shape.messages)} at concurrency / fetch ${fmt(shape.concurrency)}; ` +
      'medians over runs)',
    variants,
    ops,
  );
  const checks = [];
  for (const engine of ['pglite', 'postgres']) {
    const subjectName = `bulwark-${engine}`;
    const baseName = `pgboss-${engine}`;
    for (const op of ops) {
      checks.push(
        queueRatioCheck(
          'queue-pg',
          op,
          subjectName,
          baseName,
          variants[subjectName],
          variants[baseName],
          QUEUE_PG_FACTOR,
        ),
      );
    }
  }
  return { table, checks };
}

function summariseQueueRedis(variants) {
  queueMedians(variants);
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = queueTable(
    `11. Queues on Redis: bulwark vs BullMQ 6 (${fmt(shape.messages)} messages, enqueued in ` +
      `batches of ${fmt(shape.bulkBatch)}, processed at concurrency ${fmt(shape.concurrency)}; ` +
      'medians over runs)',
    variants,
    ['enqueue', 'process'],
  );
  const checks = [
    queueRatioCheck(
      'queue-redis',
      'process',
      'bulwark',
      'bullmq',
      variants.bulwark,
      variants.bullmq,
      QUEUE_REDIS_FACTOR,
    ),
  ];
  return { table, checks };
}

/** RabbitMQ / NATS: bulwark's consumer against the bare client's consume-and-ack loop. */
function summariseQueueBroker(variants, scenario, title) {
  queueMedians(variants);
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = queueTable(
    `${title}: bulwark vs a bare consume-and-ack loop (${fmt(shape.messages)} messages, ` +
      `enqueued in batches of ${fmt(shape.bulkBatch)}, processed at concurrency / prefetch ` +
      `${fmt(shape.concurrency)}; medians over runs)`,
    variants,
    ['enqueue', 'process'],
  );
  const checks = [
    queueRatioCheck(
      scenario,
      'process',
      'bulwark',
      'bare',
      variants.bulwark,
      variants.bare,
      QUEUE_BROKER_SHARE,
    ),
  ];
  return { table, checks };
}

function summariseQueueLatency(variants) {
  const figures = ['p50Us', 'p99Us', 'meanUs', 'maxUs'];
  for (const v of Object.values(variants)) {
    if (!ok(v)) continue;
    v.median = Object.fromEntries(figures.map(f => [f, median(v.runs.map(r => r[f]))]));
  }
  const ms = us => (us / 1000).toFixed(2);
  const rows = Object.entries(variants).map(([name, v]) =>
    ok(v)
      ? [
          name,
          v.label,
          ms(v.median.p50Us),
          ms(v.median.p99Us),
          ms(v.median.meanUs),
          ms(v.median.maxUs),
        ]
      : [name, v.label, unavailable(v), '', '', ''],
  );
  const shape = Object.values(variants).find(ok)?.runs[0] ?? {};
  const table = markdown(
    `10. Enqueue-to-handler latency in one process, one message at a time (${fmt(shape.warmup)} ` +
      `warm-up + ${fmt(shape.messages)} timed messages; medians over runs)`,
    ['variant', 'configuration', 'p50 ms', 'p99 ms', 'mean ms', 'max ms'],
    rows,
  );
  const checks = Object.entries(variants).map(([name, v]) => {
    const target = `${name} p50 ≤ ${QUEUE_LATENCY_P50_MS} ms`;
    if (!ok(v))
      return { scenario: 'queue-latency', name: target, result: 'n/a', why: unavailable(v) };
    const p50Ms = v.median.p50Us / 1000;
    return {
      scenario: 'queue-latency',
      name: target,
      measured: `${p50Ms.toFixed(2)} ms (p99 ${ms(v.median.p99Us)} ms)`,
      limit: `≤ ${QUEUE_LATENCY_P50_MS} ms`,
      value: p50Ms,
      result: p50Ms <= QUEUE_LATENCY_P50_MS ? 'PASS' : 'FAIL',
    };
  });
  return { table, checks };
}

function targetTable(checks) {
  return markdown(
    'Targets',
    ['scenario', 'target', 'measured', 'limit', 'result'],
    checks.map(c => [c.scenario, c.name, c.measured ?? c.why ?? '', c.limit ?? '', c.result]),
  );
}

// ---------------------------------------------------------------------------------------------

function describeEnvironment() {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${os.release()} ${process.arch}`,
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', count: cpus.length },
    totalMemGB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageStart: os.loadavg(),
    packages: {
      '@bulwark/core': packageVersion('@bulwark/core'),
      cockatiel: packageVersion('cockatiel'),
      opossum: packageVersion('opossum'),
      '@bulwark/http': packageVersion('@bulwark/http'),
      '@bulwark/shop': packageVersion('@bulwark/shop'),
      undici: packageVersion('undici'),
      fastify: packageVersion('fastify'),
      '@bulwark/messaging': packageVersion('@bulwark/messaging'),
      '@bulwark/postgres': packageVersion('@bulwark/postgres'),
      '@bulwark/redis': packageVersion('@bulwark/redis'),
      '@electric-sql/pglite': packageVersion('@electric-sql/pglite'),
      'pg-boss': packageVersion('pg-boss'),
      bullmq: packageVersion('bullmq'),
    },
    git: git(),
  };
}

function packageVersion(name) {
  try {
    const file = fileURLToPath(import.meta.resolve(`${name}/package.json`));
    return JSON.parse(readFileSync(file, 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

function git() {
  try {
    const opts = { cwd: benchDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] };
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty = pkg =>
      execFileSync('git', ['status', '--porcelain', '--', `../packages/${pkg}`], opts).trim() !==
      '';
    return { commit, coreDirty: dirty('core'), httpDirty: dirty('http') };
  } catch {
    return null;
  }
}

/** How a paired ratio was taken, for the checks' `measured` text. */
function perRunRatios(subject) {
  const n = subject.runs.length;
  return n === 1 ? 'one run' : `median of ${n} per-run ratios`;
}

/**
 * The subject's figure over the baseline's run by run, then the median of those ratios. Each run
 * of `run.mjs` runs every variant once, back to back, so a run's two figures were measured within
 * a minute or so of each other: a paired comparison. A ratio of the two medians can instead put
 * one variant's median in a slow stretch of a shared VM and the other's in a fast one (runs of the
 * same variant here differ by up to 50 % within minutes). NaN unless both have every run.
 */
function pairedRatio(subject, base, field) {
  if (subject.runs.length !== base.runs.length) return NaN;
  const get = typeof field === 'function' ? field : run => run[field];
  return median(subject.runs.map((run, i) => get(run) / get(base.runs[i])));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmt(n) {
  if (!Number.isFinite(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

function markdown(title, header, rows) {
  const line = cells => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i < 2 ? '---' : '---:'));
  return [`### ${title}`, '', line(header), line(rule), ...rows.map(line)].join('\n');
}

function log(message) {
  process.stderr.write(`${message}\n`);
}

function fail(message) {
  log(`bench: ${message}`);
  process.exit(1);
}
