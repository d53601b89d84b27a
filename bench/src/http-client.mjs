/**
 * HTTP client: `@bulwark/http` `httpDependency` (default pipeline) against raw undici
 * `Pool.request` on a keep-alive Pool with the same options, to a loopback `node:http` server in another
 * process returning a small JSON body. Closed loop at fixed concurrency; this process is the
 * client, so its CPU time per request is the client's cost.
 *
 *   node --expose-gc src/http-client.mjs --variant bulwark [--quick]
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

let http;
try {
  http = await import('@bulwark/http');
} catch {
  http = undefined;
}

const requiresHttp = () =>
  typeof http?.httpDependency === 'function'
    ? undefined
    : '@bulwark/http is not built (npx tsc -b packages/http)';

/** True when the decoded body is the document the target sends. */
const expected = body => body !== null && typeof body === 'object' && body.id === BODY.id;

/**
 * The Pool options `httpDependency` gives its own Pool by default, read from its exported
 * defaults: the issue compares the client with raw undici "on the same keep-alive pool". Its body
 * idle timer is min(firstByteTimeoutMs, bodyTimeoutMs), as the client sets it: a first-byte
 * timeout that differs from the body timeout would make each connection's parser replace its
 * timer twice per request instead of refreshing it (undici keeps a cleared timer until its next
 * timer tick), a cost the client no longer pays and the peer should not either.
 */
function samePool() {
  const d = http.HTTP_DEPENDENCY_DEFAULTS;
  return {
    connections: d.connections,
    connect: { timeout: d.connectTimeoutMs },
    headersTimeout: d.firstByteTimeoutMs,
    bodyTimeout: Math.min(d.firstByteTimeoutMs, d.bodyTimeoutMs),
    keepAliveTimeout: d.keepAliveTimeoutMs,
  };
}

/** Raw undici: `Pool.request` and `body.json()`. */
function rawUndici(url, options) {
  const pool = new Pool(url, options);
  return {
    async send() {
      const res = await pool.request({ path: '/', method: 'GET' });
      const body = await res.body.json();
      return res.statusCode === 200 && expected(body);
    },
    close: () => pool.close(),
  };
}

const variants = {
  undici: {
    label: `raw undici Pool.request + body.json(), the Pool options of httpDependency's own Pool`,
    lib: 'undici',
    role: 'baseline',
    requires: requiresHttp,
    make: url => rawUndici(url, samePool()),
  },
  'undici-default-pool': {
    label: `raw undici Pool({ connections: ${CONNECTIONS} }) with undici's own timeouts (300 s)`,
    lib: 'undici',
    make: url => rawUndici(url, { connections: CONNECTIONS }),
  },
  bulwark: {
    label: 'httpDependency defaults (retry + breaker), getJson',
    lib: '@bulwark/http',
    role: 'subject',
    requires: requiresHttp,
    make(url) {
      const dep = http.httpDependency({ name: 'target', baseUrl: url });
      return { send: async () => expected(await dep.getJson('/')), close: () => dep.close() };
    },
  },
  'bulwark-no-policies': {
    label: 'httpDependency policies: [] (the client without retry and breaker)',
    lib: '@bulwark/http',
    requires: requiresHttp,
    make(url) {
      const dep = http.httpDependency({ name: 'target', baseUrl: url, policies: [] });
      return { send: async () => expected(await dep.getJson('/')), close: () => dep.close() };
    },
  },
};

await runScenario(import.meta, 'http-client', variants, async (variant, { quick }) => {
  const { warmup, timed } = phases(quick);
  const target = await startTarget('node');
  const client = variant.make(target.url);
  try {
    const warmed = await warmUp(client.send, warmup);
    const serverCpu0 = await target.cpuUs();
    const run = await drive(client.send, { concurrency: CONCURRENCY, count: timed });
    const serverCpuUs = (await target.cpuUs()) - serverCpu0;
    const result = summarise(run, { warmup: warmed, serverCpuUsPerRequest: serverCpuUs / timed });
    if (run.failures > 0) {
      return {
        error: `${run.failures} of ${timed} requests failed (${run.firstFailure ?? 'wrong answer'})`,
      };
    }
    return result;
  } finally {
    await client.close();
    await target.close();
  }
});
