/**
 * `npm start` in apps/shop: the whole shop in one process. The services share one database
 * handle (each uses only its own schema): PostgreSQL when DATABASE_URL is set, else PGlite in
 * DATA_DIR (default .data/shop/one-process), seeded on first start. Each service and the gateway
 * listen on their own port; Ctrl-C drains and stops them all (the notifications consumer and the
 * orders outbox relay included), then closes the queue backend and the database.
 *
 * Ports: GATEWAY_PORT 3000, USERS_PORT 3001, ORDERS_PORT 3002, CATALOG_PORT 3003,
 * RECOMMENDATIONS_PORT 3004, NOTIFICATIONS_PORT 3005 (0 = any free port). HOST (default
 * 127.0.0.1), LOG_LEVEL (default warn).
 */
import { openDatabase, postgresQueueBackend } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { createGateway } from './gateway/app.js';
import { DEFAULT_PORTS, UPSTREAM_NAMES, type UpstreamName } from './gateway/upstreams.js';
import { defaultDataDir, optional, portFrom } from './services/common/env.js';
import { createCatalogService } from './services/catalog/app.js';
import { createNotificationsService, NOTIFICATIONS_PORT } from './services/notifications/app.js';
import { createOrdersService } from './services/orders/app.js';
import { orderEventsRelay } from './services/orders/events.js';
import { createRecommendationsService } from './services/recommendations/app.js';
import { createUsersService } from './services/users/app.js';
import type { ServiceOptions } from './services/common/service-app.js';

const env = process.env;
const host = optional(env, 'HOST') ?? '127.0.0.1';
const logger = { level: optional(env, 'LOG_LEVEL') ?? 'warn' };
const url = optional(env, 'DATABASE_URL');
const dataDir = optional(env, 'DATA_DIR') ?? defaultDataDir('one-process');

const started = Date.now();
console.log(
  `Starting the Bulwark shop on ${url === undefined ? `PGlite in ${dataDir}` : 'PostgreSQL (DATABASE_URL)'}` +
    ' (the first start seeds the demo data: 1,000 users, 10,000 products, 50,000 orders)...',
);
const db = await openDatabase(url === undefined ? { dataDir } : { url });
// One queue backend for the shop: orders publish `order.placed` into it through the outbox
// relay, notifications consume it. On PostgreSQL it also LISTENs, so consumers in other
// processes on the same database wake at once.
const backend = await postgresQueueBackend({
  db,
  ...(url === undefined ? {} : { listenUrl: url }),
});
const relay = orderEventsRelay({
  db,
  backend,
  onError: error => console.error('outbox relay: publish failed, will retry:', error),
});

const factories: Record<UpstreamName, (o: ServiceOptions) => Promise<FastifyInstance>> = {
  users: createUsersService,
  orders: async o => {
    const app = await createOrdersService({ ...o, events: { relay } });
    // Stop publishing when the orders service shuts down (a kick after this leaves its event in
    // the outbox for the next start).
    app.addHook('preClose', async () => relay.stop());
    return app;
  },
  catalog: createCatalogService,
  recommendations: createRecommendationsService,
};

// Services one after the other: on PGlite their migrations and seeds share one connection anyway.
const services = {} as Record<UpstreamName, FastifyInstance>;
const closed: Promise<void>[] = [];
const serviceUrls = {} as Record<UpstreamName, string>;
for (const name of UPSTREAM_NAMES) {
  const app = await factories[name]({ db, logger });
  closed.push(
    new Promise(resolve =>
      app.addHook('onClose', (_instance, done) => {
        resolve();
        done();
      }),
    ),
  );
  const port = portFrom(env, `${name.toUpperCase()}_PORT`, DEFAULT_PORTS[name]);
  await app.listen({ port, host });
  const address = app.server.address();
  serviceUrls[name] =
    `http://${host}:${typeof address === 'object' && address ? address.port : port}`;
  services[name] = app;
}

const notifications = await createNotificationsService({
  db,
  logger,
  backend,
  usersUrl: serviceUrls.users,
});
closed.push(
  new Promise(resolve =>
    notifications.addHook('onClose', (_instance, done) => {
      resolve();
      done();
    }),
  ),
);
const notificationsPort = portFrom(env, 'NOTIFICATIONS_PORT', NOTIFICATIONS_PORT);
await notifications.listen({ port: notificationsPort, host });
const notificationsAddress = notifications.server.address();
const notificationsUrl = `http://${host}:${typeof notificationsAddress === 'object' && notificationsAddress ? notificationsAddress.port : notificationsPort}`;
relay.start();

const gateway = await createGateway({ upstreams: serviceUrls, logger });
closed.push(
  new Promise(resolve =>
    gateway.addHook('onClose', (_instance, done) => {
      resolve();
      done();
    }),
  ),
);
const gatewayPort = portFrom(env, 'GATEWAY_PORT', DEFAULT_PORTS.gateway);
await gateway.listen({ port: gatewayPort, host });
const address = gateway.server.address();
const gatewayUrl = `http://${host}:${typeof address === 'object' && address ? address.port : gatewayPort}`;

console.log(`\nReady in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
console.log(`  gateway          ${gatewayUrl}`);
for (const name of UPSTREAM_NAMES) console.log(`  ${name.padEnd(16)} ${serviceUrls[name]}`);
console.log(`  ${'notifications'.padEnd(16)} ${notificationsUrl}`);
console.log(
  `\nTry:\n  curl -s ${gatewayUrl}/api/users/42/overview\n  curl -s '${gatewayUrl}/api/users/42/orders?limit=3'\n` +
    `  curl -s -X POST ${serviceUrls.orders}/orders -H 'content-type: application/json' -H 'idempotency-key: demo-1' \\\n` +
    `    -d '{"userId":42,"lines":[{"productId":7,"quantity":2}]}'\n` +
    `  curl -s ${notificationsUrl}/sent\n`,
);
console.log('Ctrl-C stops everything.');

// Each app drains on SIGINT/SIGTERM by itself (the bulwark plugin); the database goes last.
await Promise.all(closed);
await relay.stop();
await backend.close();
await db.close();
console.log('Stopped.');
