/**
 * Helpers of the gateway benchmarks (`gateway.mjs`, `gateway-hang.mjs`, `gateway-batch.mjs`).
 * Three processes per measurement, as the HTTP benchmarks do for two: the fake upstreams
 * (`gateway-upstreams.mjs`), the server under test (`gateway-target.mjs`: the shop's gateway or a
 * naive handler), and this one, the load generator. Each side's CPU time is its own.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { collect, CONNECTIONS, drive, summarise } from './http-lib.mjs';

/** The gateway's overview budget (its default), sent as `x-bulwark-budget-ms` to every variant. */
export const BUDGET_MS = 1_000;

/** The gateway breakers' open time (its default), in ms. */
const BREAKER_OPEN_MS = 5_000;

/** Requests in flight. */
export const GATEWAY_CONCURRENCY = 32;

/** Warm-up and timed requests; `--quick` is 10x fewer. */
export function gatewayPhases(quick) {
  return quick ? { warmup: 300, timed: 2_000 } : { warmup: 3_000, timed: 20_000 };
}

let gatewayEntry;
try {
  gatewayEntry = await import('@bulwark/shop');
} catch {
  gatewayEntry = undefined;
}

/** Why the gateway variants cannot run, or undefined. */
export function gatewayMissing() {
  return typeof gatewayEntry?.createGateway === 'function'
    ? undefined
    : '@bulwark/shop is not built or has no createGateway (npx tsc -b apps/shop)';
}

function startChild(file, args, what) {
  const execArgv = process.env.BENCH_TARGET_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, {
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
    throw new Error(`${what} exited with ${String(code)}`);
  });
  exited.catch(() => {});
  const ask = async message => {
    if (message !== undefined) child.send(message);
    const [reply] = await Promise.race([once(child, 'message'), exited]);
    return reply;
  };
  return {
    ask,
    async close() {
      if (child.exitCode !== null) return;
      child.send('exit');
      await once(child, 'exit').catch(() => {});
    },
  };
}

/** Fake upstreams in their own process; `profile` is `overview` or `batch20`. */
export async function startUpstreams(profile) {
  const child = startChild('./gateway-upstreams.mjs', [profile], 'upstreams');
  const { ports } = await child.ask();
  const urls = Object.fromEntries(
    Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`]),
  );
  return {
    urls,
    async stats() {
      return child.ask('stats');
    },
    async hang() {
      await child.ask('hang');
    },
    close: () => child.close(),
  };
}

/** The server under test in its own process: `gateway`, `naive`, `naive-per-line` or `naive-client`. */
export async function startServer(kind, urls) {
  const child = startChild('./gateway-target.mjs', [kind, JSON.stringify(urls)], kind);
  const { port } = await child.ask();
  return {
    url: `http://127.0.0.1:${port}`,
    async cpuUs() {
      const { cpu } = await child.ask('cpu');
      return cpu.user + cpu.system;
    },
    close: () => child.close(),
  };
}

const callsTotal = calls => Object.values(calls).reduce((a, b) => a + b, 0);

/** GET one user's overview with the benchmark's budget: `{ statusCode, body }` (parsed, if JSON). */
export async function requestOverview(pool, userId) {
  const res = await pool.request({
    path: `/api/users/${userId}/overview`,
    method: 'GET',
    headers: { 'x-bulwark-budget-ms': String(BUDGET_MS) },
  });
  const body = await res.body.json().catch(() => undefined);
  return { statusCode: res.statusCode, body };
}

/**
 * One measurement: upstreams, server, warm-up, optional fault (`hang` of recommendations), timed
 * closed loop. Every request asks for a NEW user id, so the gateway's orders cache never answers
 * (both variants make the same upstream calls). Each answer is checked: `expect(status, body)`
 * returns true when it is what the variant should answer.
 */
export async function measureGateway({
  server: kind,
  profile = 'overview',
  quick,
  hang = false,
  phases,
  expect,
}) {
  const { warmup, timed } = phases ?? gatewayPhases(quick);
  const upstreams = await startUpstreams(profile);
  const server = await startServer(kind, upstreams.urls);
  const pool = new Pool(server.url, { connections: CONNECTIONS });
  let nextUser = 1;
  const statuses = {};
  const metaStatuses = {};
  const send = async () => {
    const { statusCode, body } = await requestOverview(pool, nextUser++);
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    const meta = body?.meta?.status;
    if (meta !== undefined) metaStatuses[meta] = (metaStatuses[meta] ?? 0) + 1;
    return expect(statusCode, body);
  };
  try {
    if (hang) await upstreams.hang();
    if (warmup > 0) {
      // Ramp up: a cold process at full concurrency times its first calls out and opens the
      // gateway's breakers (5 s), which would measure a cold start instead of the steady state.
      await drive(send, { concurrency: 4, count: Math.min(200, warmup) });
      const warm = await drive(send, { concurrency: GATEWAY_CONCURRENCY, count: warmup });
      if (warm.failures > 0 && !hang) {
        await new Promise(resolve => setTimeout(resolve, BREAKER_OPEN_MS + 500));
        await drive(send, { concurrency: 4, count: Math.min(200, warmup) });
      }
    }
    collect();
    for (const key of Object.keys(statuses)) delete statuses[key];
    for (const key of Object.keys(metaStatuses)) delete metaStatuses[key];
    const before = await upstreams.stats();
    const serverCpu0 = await server.cpuUs();
    const run = await drive(send, { concurrency: GATEWAY_CONCURRENCY, count: timed });
    const serverCpuUs = (await server.cpuUs()) - serverCpu0;
    const after = await upstreams.stats();
    const calls = Object.fromEntries(
      Object.entries(after.calls).map(([k, v]) => [k, v - before.calls[k]]),
    );
    const upstreamCpuUs = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system);
    return summarise(run, {
      concurrency: GATEWAY_CONCURRENCY,
      warmup,
      budgetMs: BUDGET_MS,
      serverCpuUsPerRequest: serverCpuUs / timed,
      upstreamCpuUsPerRequest: upstreamCpuUs / timed,
      upstreamCallsPerRequest: callsTotal(calls) / timed,
      catalogCallsPerRequest: (calls.catalogBatch + calls.catalogOne) / timed,
      calls,
      statuses,
      metaStatuses,
    });
  } finally {
    await pool.close();
    await server.close();
    await upstreams.close();
  }
}

/** A complete overview with the profile (gateway envelope or naive `{ data }`). */
export function completeOverview(status, body) {
  return status === 200 && body?.data?.user?.id !== undefined && body?.meta?.status !== 'degraded';
}
