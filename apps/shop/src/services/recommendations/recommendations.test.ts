import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecommendationsService } from './app.js';

const seed = { users: 20, products: 50, orders: 100, picksPerUser: 12, popular: 15 };

type List = { items: { productId: number; score: number }[] };

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

describe('recommendations service', () => {
  let db: SqlDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await openDatabase();
    app = await createRecommendationsService({ db, seed, bulwark: quiet });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  const descending = (list: List) =>
    list.items.every((item, i) => i === 0 || (list.items[i - 1]?.score ?? 0) >= item.score);

  it("GET /users/:id/recommendations answers the user's best picks, 10 by default", async () => {
    const res = await app.inject({ url: '/users/4/recommendations' });
    expect(res.statusCode).toBe(200);
    const list = res.json<List>();
    expect(list.items).toHaveLength(10);
    expect(descending(list)).toBe(true);
    for (const item of list.items) {
      expect(item.productId).toBeGreaterThanOrEqual(1);
      expect(item.productId).toBeLessThanOrEqual(50);
    }
    const three = await app.inject({ url: '/users/4/recommendations?limit=3' });
    expect(three.json<List>().items).toEqual(list.items.slice(0, 3));
  });

  it('a user without picks gets an empty list (this service does not own users)', async () => {
    const res = await app.inject({ url: '/users/999/recommendations' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [] });
  });

  it('GET /popular answers popular products by rank', async () => {
    const res = await app.inject({ url: '/popular?limit=50' });
    expect(res.statusCode).toBe(200);
    const list = res.json<List>();
    expect(list.items).toHaveLength(15);
    expect(descending(list)).toBe(true);
    expect(new Set(list.items.map(i => i.productId)).size).toBe(15);
    const two = await app.inject({ url: '/popular?limit=2' });
    expect(two.json<List>().items).toEqual(list.items.slice(0, 2));
  });

  it.each([
    ['/users/abc/recommendations', '/id', 'params'],
    ['/users/1/recommendations?limit=51', '/limit', 'querystring'],
    ['/users/1/recommendations?limit=0', '/limit', 'querystring'],
    ['/popular?limit=many', '/limit', 'querystring'],
  ])('%s is a 400 naming %s', async (url, field, where) => {
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ errors: [{ field, in: where }] });
  });
});
