/**
 * The gateway against the real services (one in-memory PGlite, small seed), each behind an http
 * fault proxy so a test can take one down or make it fail.
 */
import { gunzipSync } from 'node:zlib';
import { memoryCacheStore } from '@bulwark/compose/cache';
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import { TestClock, startFaultProxy, type FaultProxy } from '@bulwark/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCatalogService } from '../services/catalog/app.js';
import { createOrdersService } from '../services/orders/app.js';
import { createRecommendationsService } from '../services/recommendations/app.js';
import type { ServiceOptions } from '../services/common/service-app.js';
import { createUsersService } from '../services/users/app.js';
import { createGateway } from './app.js';
import type { GatewayOptions } from './options.js';
import { UPSTREAM_NAMES, type UpstreamName } from './upstreams.js';

const BOOT_TIMEOUT_MS = 60_000;
const seed = { users: 20, products: 50, orders: 300, picksPerUser: 10, popular: 12 };
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

interface Envelope {
  data: {
    user: { id: number; name: string } | null;
    orders: { id: number; lines: { productId: number; product: { id: number } | null }[] }[] | null;
    recommendations: { productId: number; score: number }[] | null;
  };
  errors?: { path: string[]; extensions: { code: string } }[];
  meta: {
    status: string;
    parts: Record<string, { status: string; source?: string; reason?: string; ageMs?: number }>;
  };
}

describe('gateway', () => {
  let db: SqlDatabase;
  const services = {} as Record<UpstreamName, FastifyInstance>;
  const proxies = {} as Record<UpstreamName, FaultProxy>;
  const cacheClock = new TestClock();
  let gateway: FastifyInstance;

  /** The gateway on the fault proxies, with the given caches. */
  const gatewayOptions = (cache: NonNullable<GatewayOptions['cache']>): GatewayOptions => ({
    upstreams: Object.fromEntries(UPSTREAM_NAMES.map(n => [n, proxies[n].url])),
    cache,
    // Everything here shares one thread with PGlite: generous limits keep the outcomes about
    // faults, not about how busy the test machine is.
    overviewBudgetMs: 20_000,
    attemptTimeoutMs: { users: 5_000, orders: 5_000, catalog: 5_000, recommendations: 5_000 },
    bulwark: quiet,
    env: {},
  });

  beforeAll(async () => {
    db = await openDatabase();
    const factories: Record<UpstreamName, (o: ServiceOptions) => Promise<FastifyInstance>> = {
      users: createUsersService,
      orders: createOrdersService,
      catalog: createCatalogService,
      recommendations: createRecommendationsService,
    };
    for (const name of UPSTREAM_NAMES) {
      const app = await factories[name]({ db, seed, bulwark: quiet });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      if (address === null || typeof address !== 'object') throw new Error('no address');
      services[name] = app;
      proxies[name] = await startFaultProxy({
        mode: 'http',
        target: { host: '127.0.0.1', port: address.port },
      });
    }
    gateway = await createGateway(gatewayOptions({ l2: false, clock: cacheClock }));
    await gateway.ready();
  }, BOOT_TIMEOUT_MS);

  afterEach(async () => {
    await Promise.all(UPSTREAM_NAMES.map(n => proxies[n].clearFaults()));
  });

  afterAll(async () => {
    await gateway?.close();
    for (const name of UPSTREAM_NAMES) {
      await proxies[name]?.close();
      await services[name]?.close();
    }
    await db?.close();
  });

  const overview = async (id: number | string, headers: Record<string, string> = {}) =>
    gateway.inject({ url: `/api/users/${id}/overview`, headers });

  it('a healthy overview is complete: profile, orders with products, recommendations', async () => {
    const res = await overview(3);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Envelope>();
    expect(body.meta.status).toBe('complete');
    expect(body.errors).toBeUndefined();
    expect(body.data.user).toMatchObject({ id: 3 });
    expect(body.data.orders?.length).toBe(5);
    for (const order of body.data.orders ?? []) {
      for (const line of order.lines) expect(line.product?.id).toBe(line.productId);
    }
    expect(body.data.recommendations).toHaveLength(8);
    expect(Object.keys(body.meta.parts)).toEqual(['user', 'orders', 'recommendations']);
    expect(res.headers['cache-control']).toBeUndefined();
  });

  it('looks up the products of all order lines in one catalog call', async () => {
    await cacheClock.advance(60_000); // past the orders cache's freshness: load again
    const before = proxies.catalog.stats().requests;
    const res = await overview(4);
    const body = res.json<Envelope>();
    const lines = (body.data.orders ?? []).flatMap(o => o.lines);
    expect(new Set(lines.map(l => l.productId)).size).toBeGreaterThan(3);
    expect(proxies.catalog.stats().requests - before).toBe(1);
  });

  it('compresses responses for clients that accept it', async () => {
    const res = await overview(3, { 'accept-encoding': 'gzip' });
    expect(res.headers['content-encoding']).toBe('gzip');
    const body = JSON.parse(gunzipSync(res.rawPayload).toString()) as Envelope;
    expect(body.data.user).toMatchObject({ id: 3 });
  });

  it('recommendations down: 200 degraded with popular items', async () => {
    await proxies.recommendations.setFaults([{ kind: 'down' }]);
    const res = await overview(5);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json<Envelope>();
    expect(body.meta.status).toBe('degraded');
    expect(body.meta.parts.user?.status).toBe('ok');
    expect(body.meta.parts.recommendations).toMatchObject({
      status: 'fallback',
      source: 'alternate:popular-items',
    });
    const popular = await services.recommendations.inject({ url: '/popular?limit=8' });
    expect(body.data.recommendations).toEqual(popular.json<{ items: unknown[] }>().items);
    expect(body.errors?.map(e => e.path)).toEqual([['recommendations']]);
  });

  it('orders failing: the last orders are served stale', async () => {
    const fresh = (await overview(6)).json<Envelope>();
    await cacheClock.advance(30_000);
    await proxies.orders.setFaults([{ kind: 'http-error', status: 500 }]);
    const res = await overview(6);
    expect(res.statusCode).toBe(200);
    const body = res.json<Envelope>();
    expect(body.meta.status).toBe('degraded');
    expect(body.meta.parts.orders).toMatchObject({ status: 'stale' });
    expect(body.meta.parts.orders?.ageMs).toBeGreaterThanOrEqual(30_000);
    expect(body.data.orders).toEqual(fresh.data.orders);
  });

  it('orders failing: an entry an earlier version left in L2 (the array, not its text) is served', async () => {
    const l2 = memoryCacheStore({ clock: cacheClock });
    const legacy = [
      { id: 1, placedAt: '2024-01-01T00:00:00.000Z', status: 'paid', totalCents: 5, lines: [] },
    ];
    await l2.set(
      'orders:user:8',
      { value: legacy, storedAtMs: cacheClock.wallNow() - 30_000 },
      60_000,
    );
    const withL2 = await createGateway(gatewayOptions({ l2, clock: cacheClock }));
    try {
      await proxies.orders.setFaults([{ kind: 'http-error', status: 500 }]);
      const res = await withL2.inject({ url: '/api/users/8/overview' });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<Envelope>();
      expect(body.meta.parts.orders).toMatchObject({ status: 'stale', source: 'cache:l2' });
      expect(body.data.orders).toEqual(legacy);
    } finally {
      await withL2.close();
    }
  });

  it('users down: 503 problem+json with Retry-After', async () => {
    await proxies.users.setFaults([{ kind: 'down' }]);
    const res = await overview(7);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.json()).toMatchObject({ status: 503, failedParts: ['user'] });
    expect(res.body).not.toContain('127.0.0.1');
  });

  it('an unknown user is a 404; a bad id a 400', async () => {
    const missing = await overview(999);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'USER_NOT_FOUND' });
    for (const id of ['abc', '0', '1.5']) {
      const bad = await overview(id);
      expect(bad.statusCode).toBe(400);
      expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(bad.json()).toMatchObject({ errors: [{ field: '/id', in: 'params' }] });
    }
  });

  it('passes order pages through with their cursor', async () => {
    const first = await gateway.inject({ url: '/api/users/3/orders?limit=2' });
    expect(first.statusCode).toBe(200);
    const page = first.json<{ items: { id: number }[]; nextCursor: string }>();
    expect(page.items).toHaveLength(2);
    const second = await gateway.inject({
      url: `/api/users/3/orders?limit=2&cursor=${encodeURIComponent(page.nextCursor)}`,
    });
    const next = second.json<{ items: { id: number }[] }>();
    expect(next.items).toHaveLength(2);
    expect(next.items[0]?.id).not.toBe(page.items[1]?.id);
  });

  it('answers 400 for a tampered cursor and a limit over the maximum', async () => {
    const tampered = await gateway.inject({ url: '/api/users/3/orders?cursor=abc.def' });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json()).toMatchObject({
      code: 'INVALID_CURSOR',
      errors: [{ field: '/cursor', in: 'querystring' }],
    });
    const big = await gateway.inject({ url: '/api/users/3/orders?limit=51' });
    expect(big.statusCode).toBe(400);
    expect(big.json()).toMatchObject({ errors: [{ field: '/limit', in: 'querystring' }] });
  });
});
