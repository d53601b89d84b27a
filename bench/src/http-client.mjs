/**
 * HTTP client: `@bulwark/http` `httpDependency` (default pipeline) against raw undici
 * `Pool.request` on the same kind of keep-alive Pool, to a loopback `node:http` server in another
 * process returning a small JSON body. Closed loop at fixed concurrency; this process is the
 * client, so its CPU time per request is the client's cost.
 *
 *   node --expose-gc src/http-client.mjs --variant bulwark [--quick]
 */
import { Pool } from 'undici';
import { runScenario } from './lib.mjs';
import {
  BODY,
  collect,
  CONCURRENCY,
  CONNECTIONS,
  drive,
  phases,
  startTarget,
  summarise,
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

const variants = {
  undici: {
    label: `raw undici Pool({ connections: ${CONNECTIONS} }).request + body.json()`,
    lib: 'undici',
    role: 'baseline',
    make(url) {
      const pool = new Pool(url, { connections: CONNECTIONS });
      return {
        async send() {
          const res = await pool.request({ path: '/', method: 'GET' });
          const body = await res.body.json();
          return res.statusCode === 200 && expected(body);
        },
        close: () => pool.close(),
      };
    },
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
    await drive(client.send, { concurrency: CONCURRENCY, count: warmup });
    collect();
    const serverCpu0 = await target.cpuUs();
    const run = await drive(client.send, { concurrency: CONCURRENCY, count: timed });
    const serverCpuUs = (await target.cpuUs()) - serverCpu0;
    const result = summarise(run, { warmup, serverCpuUsPerRequest: serverCpuUs / timed });
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
