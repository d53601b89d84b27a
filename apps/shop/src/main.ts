/**
 * `npm start` in apps/shop: the whole shop in one process. The four services share one database
 * handle (each uses only its own schema): PostgreSQL when DATABASE_URL is set, else PGlite in
 * DATA_DIR (default .data/shop/one-process), seeded on first start. Each service and the gateway
 * listen on their own port; Ctrl-C drains and stops them all, then closes the database.
 *
 * Ports: GATEWAY_PORT 3000, USERS_PORT 3001, ORDERS_PORT 3002, CATALOG_PORT 3003,
 * RECOMMENDATIONS_PORT 3004 (0 = any free port). HOST (default 127.0.0.1), LOG_LEVEL (default warn).
 */
import { openDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { createGateway } from './gateway/app.js';
import { DEFAULT_PORTS, UPSTREAM_NAMES, type UpstreamName } from './gateway/upstreams.js';
import { defaultDataDir, optional, portFrom } from './services/common/env.js';
import { createCatalogService } from './services/catalog/app.js';
import { createOrdersService } from './services/orders/app.js';
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

const factories: Record<UpstreamName, (o: ServiceOptions) => Promise<FastifyInstance>> = {
  users: createUsersService,
  orders: createOrdersService,
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
console.log(
  `\nTry:\n  curl -s ${gatewayUrl}/api/users/42/overview\n  curl -s '${gatewayUrl}/api/users/42/orders?limit=3'\n`,
);
console.log('Ctrl-C stops everything.');

// Each app drains on SIGINT/SIGTERM by itself (the bulwark plugin); the database goes last.
await Promise.all(closed);
await db.close();
console.log('Stopped.');
