/**
 * The server process of the gateway benchmarks, started by `gateway-lib.mjs` with an IPC channel:
 * the shop's gateway, or a naive handler on the same Fastify set-up, against the upstream URLs
 * given as JSON in argv[3]. It listens on 127.0.0.1:0, sends `{ port }`, answers `'cpu'` with its
 * `process.cpuUsage()`, and exits on `'exit'` or when the parent goes away.
 *
 *   node src/gateway-target.mjs gateway | naive | naive-per-line | naive-client '<urls json>'
 *
 * - `gateway`: `createGateway()` of `@bulwark/shop` (its policies, composition, caches, batching),
 *   the bulwark plugin with its defaults and response compression.
 * - `naive`: the same Fastify set-up (bulwark plugin, compression) and ONE route that does the same
 *   upstream calls with a plain `Promise.all` over undici Pools: no deadline slices, no retry, no
 *   breaker, no cache, no fallback, no timeout. Products in one `/products?ids=` call.
 * - `naive-per-line`: the naive handler with one `/products/:id` call per order line.
 * - `naive-client`: the naive handler with the calls made by `@bulwark/http` dependencies with no
 *   policies instead of bare undici Pools: what the client alone costs, apart from composition.
 */
import process from 'node:process';

const kind = process.argv[2];
const urls = JSON.parse(process.argv[3] ?? '{}');
/** Orders and recommendations shown: the gateway's defaults (5 and 8). */
const RECENT_ORDERS = 5;
const RECOMMENDATIONS = 8;

async function naiveApp(perLine, ourClient) {
  const { default: Fastify } = await import('fastify');
  const { default: compress } = await import('@fastify/compress');
  const { bulwark } = await import('@bulwark/http/fastify');
  const { Pool } = await import('undici');
  const pools = Object.fromEntries(
    Object.entries(urls).map(([name, url]) => [name, new Pool(url, { connections: 64 })]),
  );
  let getJson = async (name, path) => {
    const res = await pools[name].request({ path, method: 'GET' });
    const body = await res.body.json();
    if (res.statusCode !== 200) throw new Error(`${name} answered ${res.statusCode}`);
    return body;
  };
  if (ourClient) {
    const { httpDependency } = await import('@bulwark/http');
    const clients = Object.fromEntries(
      Object.entries(urls).map(([name, url]) => [
        name,
        httpDependency({ name, baseUrl: url, policies: [], dispatcher: pools[name] }),
      ]),
    );
    getJson = (name, path) => clients[name].getJson(path);
  }
  const app = Fastify({ logger: false });
  app.addHook('onClose', async () => {
    await Promise.all(Object.values(pools).map(pool => pool.close()));
  });
  await app.register(bulwark);
  await app.register(compress, { threshold: 1_024 });
  app.get('/api/users/:id/overview', async request => {
    const id = Number(request.params.id);
    const orders = async () => {
      const page = await getJson('orders', `/users/${id}/orders?limit=${RECENT_ORDERS}`);
      const ids = [...new Set(page.items.flatMap(o => o.lines.map(l => l.productId)))];
      let products;
      if (perLine) {
        products = await Promise.all(ids.map(pid => getJson('catalog', `/products/${pid}`)));
      } else {
        products =
          ids.length === 0
            ? []
            : (await getJson('catalog', `/products?ids=${ids.join(',')}`)).items;
      }
      const byId = new Map(products.map(p => [p.id, p]));
      return page.items.map(o => ({
        ...o,
        lines: o.lines.map(l => ({ ...l, product: byId.get(l.productId) ?? null })),
      }));
    };
    const [user, recentOrders, recommendations] = await Promise.all([
      getJson('users', `/users/${id}`),
      orders(),
      getJson('recommendations', `/users/${id}/recommendations?limit=${RECOMMENDATIONS}`).then(
        r => r.items,
      ),
    ]);
    return { data: { user, orders: recentOrders, recommendations } };
  });
  return app;
}

async function start() {
  let app;
  if (kind === 'gateway') {
    const { createGateway } = await import('@bulwark/shop');
    // Redis L2 off: both variants keep everything in process.
    app = await createGateway({ upstreams: urls, env: {}, cache: { l2: false } });
  } else if (kind === 'naive' || kind === 'naive-per-line' || kind === 'naive-client') {
    app = await naiveApp(kind === 'naive-per-line', kind === 'naive-client');
  } else {
    throw new Error(
      `unknown target kind ${String(kind)}; known: gateway, naive, naive-per-line, naive-client`,
    );
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  return app.server.address().port;
}

if (typeof process.send !== 'function') {
  process.stderr.write('gateway-target.mjs is started by gateway-lib.mjs (needs IPC)\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
process.on('message', message => {
  if (message === 'cpu') process.send({ cpu: process.cpuUsage() });
  else if (message === 'exit') process.exit(0);
});
start().then(
  port => process.send({ port }),
  error => {
    process.stderr.write(`${error.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
