import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalogService } from './app.js';

const seed = { users: 20, products: 50, orders: 100, picksPerUser: 5, popular: 10 };

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

describe('catalog service', () => {
  let db: SqlDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await openDatabase();
    app = await createCatalogService({ db, seed, bulwark: quiet });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  const problem = (res: { statusCode: number; headers: Record<string, unknown> }) => {
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  };

  it('GET /products/:id answers the product with its deterministic price', async () => {
    const res = await app.inject({ url: '/products/3' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: 3,
      name: expect.any(String),
      priceCents: 199 + ((3 * 7919) % 49801),
      category: expect.any(String),
    });
  });

  it('an unknown product is a 404 problem; a bad id a 400', async () => {
    const missing = await app.inject({ url: '/products/51' });
    expect(missing.statusCode).toBe(404);
    problem(missing);
    expect(missing.json()).toMatchObject({ code: 'PRODUCT_NOT_FOUND' });
    const bad = await app.inject({ url: '/products/x1' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ field: '/id', in: 'params' }] });
  });

  it('GET /products?ids= answers found items in the order asked, duplicates once, and the missing ids', async () => {
    const res = await app.inject({ url: '/products?ids=3,1,999,3,50' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ items: { id: number }[]; missing: number[] }>();
    expect(body.items.map(p => p.id)).toEqual([3, 1, 50]);
    expect(body.missing).toEqual([999]);
  });

  it('accepts 100 ids and refuses 101 with a 400 naming the field', async () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1).join(',');
    const ok = await app.inject({ url: `/products?ids=${ids(100)}` });
    expect(ok.statusCode).toBe(200);
    expect(ok.json<{ items: unknown[]; missing: unknown[] }>().missing).toHaveLength(50);
    const tooMany = await app.inject({ url: `/products?ids=${ids(101)}` });
    expect(tooMany.statusCode).toBe(400);
    problem(tooMany);
    expect(tooMany.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ field: '/ids', in: 'querystring', message: expect.stringMatching(/at most 100/) }],
    });
  });

  it.each([
    '/products',
    '/products?ids=',
    '/products?ids=1,,2',
    '/products?ids=a',
    '/products?ids=0',
    '/products?ids=1,99999999999',
  ])('%s is a 400 naming ids', async url => {
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(400);
    problem(res);
    expect(res.json()).toMatchObject({ errors: [{ field: '/ids', in: 'querystring' }] });
  });
});
