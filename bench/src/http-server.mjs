/**
 * HTTP server: Fastify with the `@bulwark/http/fastify` plugin (defaults: deadlines, request ids,
 * problem+json, health routes, event-loop-delay shedding) against a bare Fastify route. The server
 * runs in its own process; this process is the load generator (undici Pool at fixed concurrency),
 * and charges the server's CPU time per request through IPC.
 *
 *   node --expose-gc src/http-server.mjs --variant bulwark [--quick]
 */
import { Pool } from 'undici';
import { runScenario } from './lib.mjs';
import {
  BODY,
  CONCURRENCY,
  CONNECTIONS,
  drive,
  phases,
  startTarget,
  summarise,
  warmUp,
} from './http-lib.mjs';

let fastifyEntry;
try {
  fastifyEntry = await import('@bulwark/http/fastify');
} catch {
  fastifyEntry = undefined;
}

const variants = {
  bare: {
    label: 'Fastify, one route returning a small JSON object',
    lib: 'fastify',
    role: 'baseline',
    target: 'fastify-bare',
  },
  bulwark: {
    label: 'the same + `app.register(bulwark)` with defaults',
    lib: '@bulwark/http',
    role: 'subject',
    target: 'fastify-bulwark',
    requires: () =>
      typeof fastifyEntry?.bulwark === 'function'
        ? undefined
        : '@bulwark/http is not built (npx tsc -b packages/http)',
  },
  'bulwark-minimal': {
    label: 'the same with requestIdHeader: false, no shedding, no health routes',
    lib: '@bulwark/http',
    target: 'fastify-bulwark-minimal',
    requires: () =>
      typeof fastifyEntry?.bulwark === 'function'
        ? undefined
        : '@bulwark/http is not built (npx tsc -b packages/http)',
  },
};

await runScenario(import.meta, 'http-server', variants, async (variant, { quick }) => {
  const { warmup, timed } = phases(quick);
  const target = await startTarget(variant.target);
  const pool = new Pool(target.url, { connections: CONNECTIONS });
  // Connections opened: a server that stops keeping connections alive shows up here.
  let connects = 0;
  pool.on('connect', () => connects++);
  const send = async () => {
    const res = await pool.request({ path: '/', method: 'GET' });
    const body = await res.body.json();
    return res.statusCode === 200 && body?.id === BODY.id;
  };
  try {
    const warmed = await warmUp(send, warmup);
    const serverCpu0 = await target.cpuUs();
    const run = await drive(send, { concurrency: CONCURRENCY, count: timed });
    const serverCpuUs = (await target.cpuUs()) - serverCpu0;
    if (run.failures > 0) {
      return {
        error: `${run.failures} of ${timed} requests failed (${run.firstFailure ?? 'status not 200 or wrong body: shed?'})`,
      };
    }
    return summarise(run, { warmup: warmed, serverCpuUsPerRequest: serverCpuUs / timed, connects });
  } finally {
    await pool.close();
    await target.close();
  }
});
