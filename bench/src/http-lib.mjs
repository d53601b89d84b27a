/**
 * Helpers of the HTTP benchmarks (`http-client.mjs`, `http-server.mjs`): the target server in its
 * own process, a closed-loop load generator at fixed concurrency, and latency statistics.
 *
 * Two processes, always: the machine has 2 cores, and a server sharing the load generator's event
 * loop would charge each side's CPU time to the other. The process that measures is the one whose
 * code is compared (the client for `http-client`, the load generator for `http-server`, which then
 * charges the server's CPU time per request through IPC).
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/** ~70 bytes of JSON: a typical small API answer. */
export const BODY = { id: 42, name: 'alice', roles: ['reader'], active: true };

/** In-flight requests, for every HTTP variant. */
export const CONCURRENCY = 32;

/** Pool size for every client (bulwark's default is 64; undici's own Pool default is unlimited). */
export const CONNECTIONS = 64;

/**
 * Requests per phase: warm-up (JIT, connections, pools), then timed. `--quick` is 10x fewer.
 * 20,000 rather than 5,000: after 5,000 the deeper call stacks (policies, plugin hooks) were not
 * all optimised yet — the first 5,000 timed requests of the bulwark client had a p99 near 9 ms
 * against 4–5 ms for the rest of the run, which alone moved the client's p99 ratio by ~0.3.
 */
export function phases(quick) {
  return quick ? { warmup: 2_000, timed: 5_000 } : { warmup: 20_000, timed: 50_000 };
}

/** Requests run after the full GC that ends the warm-up, before timing starts. */
const SETTLE = 5_000;

/**
 * Warm-up: `warmup` requests, a full GC (so no variant carries the warm-up's garbage into the
 * timed phase), then a few thousand more untimed requests. The full GC shrinks the young
 * generation; timed right after it, every variant paid a burst of extra scavenges in its first
 * few thousand requests, which landed in the p99 (measured: p99 of that window 1.5–2× the rest).
 * Resolves with the number of warm-up requests sent in all.
 */
export async function warmUp(send, warmup) {
  await drive(send, { concurrency: CONCURRENCY, count: warmup });
  collect();
  const settle = Math.min(SETTLE, warmup);
  await drive(send, { concurrency: CONCURRENCY, count: settle });
  return warmup + settle;
}

const targetFile = fileURLToPath(new URL('./http-target.mjs', import.meta.url));

/**
 * Starts `http-target.mjs <kind>` in a child process (no `--expose-gc`, as a production server)
 * and resolves when it listens. `cpuUs()` reads the child's user+system CPU time in µs.
 * `BENCH_TARGET_NODE_ARGS` (space-separated) is passed to that node, e.g. to profile the server:
 * `BENCH_TARGET_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`.
 */
export async function startTarget(kind) {
  const execArgv = process.env.BENCH_TARGET_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = fork(targetFile, [kind], {
    execArgv,
    // BENCH_TARGET_STDOUT=1 shows what the server prints (e.g. V8's --trace-gc-nvp).
    stdio: [
      'ignore',
      process.env.BENCH_TARGET_STDOUT === '1' ? 'inherit' : 'ignore',
      'inherit',
      'ipc',
    ],
  });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`target ${kind} exited with ${String(code)}`);
  });
  exited.catch(() => {});
  const [first] = await Promise.race([once(child, 'message'), exited]);
  const port = first.port;
  return {
    url: `http://127.0.0.1:${port}`,
    async cpuUs() {
      child.send('cpu');
      const [reply] = await Promise.race([once(child, 'message'), exited]);
      return reply.cpu.user + reply.cpu.system;
    },
    async close() {
      child.send('exit');
      await once(child, 'exit').catch(() => {});
    },
  };
}

/**
 * Closed loop: `concurrency` workers each send one request, await it, and send the next, until
 * `count` requests completed. `send()` resolves with true when the response was the expected one.
 * Returns the wall time, each request's latency (µs), the failures, and this process's CPU time.
 */
export async function drive(send, { concurrency, count }) {
  const latenciesUs = new Float64Array(count);
  let next = 0;
  let failures = 0;
  let firstFailure;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const t0 = process.hrtime.bigint();
      try {
        if (!(await send())) failures++;
      } catch (error) {
        failures++;
        firstFailure ??= error;
      }
      latenciesUs[i] = Number(process.hrtime.bigint() - t0) / 1_000;
    }
  };
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedNs = Number(process.hrtime.bigint() - start);
  const cpu = process.cpuUsage(cpu0);
  return {
    elapsedNs,
    latenciesUs,
    failures,
    firstFailure: firstFailure === undefined ? undefined : String(firstFailure),
    cpuUs: cpu.user + cpu.system,
  };
}

/** The p-th percentile (0–100) of an already sorted array, nearest rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/** The figures one run reports. */
export function summarise(run, extra = {}) {
  const sorted = Float64Array.from(run.latenciesUs).sort();
  const count = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    requests: count,
    concurrency: CONCURRENCY,
    rps: count / (run.elapsedNs / 1e9),
    meanUs: sum / count,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    maxUs: sorted[count - 1],
    failures: run.failures,
    ...(run.firstFailure === undefined ? {} : { firstFailure: run.firstFailure }),
    driverCpuUsPerRequest: run.cpuUs / count,
    ...extra,
  };
}

/** Full GC between warm-up and the timed phase, when the process runs with --expose-gc. */
export function collect() {
  if (typeof globalThis.gc === 'function') globalThis.gc();
}
