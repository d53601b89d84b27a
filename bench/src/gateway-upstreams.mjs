/**
 * Light fake upstreams for the gateway benchmarks: users, orders, catalog and recommendations on
 * four loopback ports of ONE process (not the load generator's, not the gateway's), answering the
 * same JSON as the shop's services, built from the ids (no database).
 *
 *   node src/gateway-upstreams.mjs overview | batch20     (started by gateway-lib.mjs, needs IPC)
 *
 * `overview`: 5 orders of 1-4 lines (12 lines). `batch20`: 1 order of 20 lines.
 * IPC: sends `{ ports }` when listening; answers `'stats'` with `{ calls, cpu }`; `'hang'` makes
 * the recommendations service accept requests and never answer them; `'exit'` exits.
 */
import { createServer } from 'node:http';
import process from 'node:process';

const profile = process.argv[2] ?? 'overview';
const LINES = profile === 'batch20' ? [20] : [3, 1, 2, 4, 2];
const calls = {
  users: 0,
  orders: 0,
  catalogBatch: 0,
  catalogOne: 0,
  recommendations: 0,
  popular: 0,
};
let hangRecommendations = false;
const held = new Set();

const product = id => ({
  id,
  name: `Product ${id}`,
  priceCents: 199 + ((id * 7919) % 49801),
  category: 'garden',
});

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function ordersOf(userId) {
  let productId = (userId * 37) % 9_000;
  return LINES.map((lines, i) => ({
    id: userId * 10 + i,
    placedAt: new Date(Date.UTC(2024, 0, 1) - i * 86_400_000).toISOString(),
    status: 'delivered',
    totalCents: 1000 * lines,
    lines: Array.from({ length: lines }, () => {
      productId += 1;
      return { productId, quantity: 1, unitPriceCents: product(productId).priceCents };
    }),
  }));
}

const routes = {
  users(url, res) {
    const m = /^\/users\/(\d+)$/.exec(url.pathname);
    if (m === null) return send(res, 404, { status: 404 });
    calls.users++;
    const id = Number(m[1]);
    send(res, 200, {
      id,
      name: `User ${id}`,
      email: `user${id}@example.com`,
      tier: 'silver',
      memberSince: '2020-01-01T00:00:00.000Z',
    });
  },
  orders(url, res) {
    const m = /^\/users\/(\d+)\/orders$/.exec(url.pathname);
    if (m === null) return send(res, 404, { status: 404 });
    calls.orders++;
    send(res, 200, { items: ordersOf(Number(m[1])), nextCursor: null });
  },
  catalog(url, res) {
    if (url.pathname === '/products') {
      calls.catalogBatch++;
      const ids = [...new Set((url.searchParams.get('ids') ?? '').split(',').map(Number))];
      return send(res, 200, { items: ids.map(product), missing: [] });
    }
    const m = /^\/products\/(\d+)$/.exec(url.pathname);
    if (m === null) return send(res, 404, { status: 404 });
    calls.catalogOne++;
    send(res, 200, product(Number(m[1])));
  },
  recommendations(url, res, req) {
    if (hangRecommendations) {
      // Accepted, never answered: like the fault proxy's `hang`.
      held.add(req.socket);
      req.socket.once('close', () => held.delete(req.socket));
      return;
    }
    const limit = Number(url.searchParams.get('limit') ?? 10);
    const base = Number(/^\/users\/(\d+)/.exec(url.pathname)?.[1] ?? 1);
    if (url.pathname === '/popular') calls.popular++;
    else calls.recommendations++;
    send(res, 200, {
      items: Array.from({ length: limit }, (_, i) => ({
        productId: ((base * 13 + i) % 9_000) + 1,
        score: 1 - i / 100,
      })),
    });
  },
};

async function start() {
  const ports = {};
  for (const [name, handle] of Object.entries(routes)) {
    const server = createServer((req, res) => handle(new URL(req.url, 'http://x'), res, req));
    server.keepAliveTimeout = 60_000;
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    ports[name] = server.address().port;
  }
  return ports;
}

if (typeof process.send !== 'function') {
  process.stderr.write('gateway-upstreams.mjs is started by gateway-lib.mjs (needs IPC)\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
process.on('message', message => {
  if (message === 'stats') process.send({ calls: { ...calls }, cpu: process.cpuUsage() });
  else if (message === 'hang') {
    hangRecommendations = true;
    process.send({ hanging: true });
  } else if (message === 'exit') process.exit(0);
});
start().then(
  ports => process.send({ ports }),
  error => {
    process.stderr.write(`${error.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
