import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCatalog } from '../catalog/data.js';
import { createOrdersService, type OrdersPage } from './app.js';
import { cursorCodec } from './cursor.js';

const seed = { users: 20, products: 50, orders: 300, picksPerUser: 5, popular: 10 };
const SECRET = 'test-secret-of-enough-length';

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

describe('orders service', () => {
  let db: SqlDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await openDatabase();
    app = await createOrdersService({ db, seed, cursorSecret: SECRET, bulwark: quiet });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  async function page(url: string): Promise<OrdersPage> {
    const res = await app.inject({ url });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<OrdersPage>();
  }

  /** Follows nextCursor to the end; returns every order id in the order served. */
  async function walk(userId: number, limit: number): Promise<number[]> {
    const ids: number[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 1_000; pages++) {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const body = await page(`/users/${userId}/orders?limit=${limit}${query}`);
      expect(body.items.length).toBeLessThanOrEqual(limit);
      ids.push(...body.items.map(o => o.id));
      cursor = body.nextCursor;
      if (cursor === null) return ids;
      expect(body.items).toHaveLength(limit);
    }
    throw new Error('pagination did not end');
  }

  async function expected(userId: number): Promise<number[]> {
    const { rows } = await db.query<{ id: number }>(
      'select id from orders.orders where user_id = $1 order by placed_at desc, id desc',
      [userId],
    );
    return rows.map(r => r.id);
  }

  it('answers the newest orders first with their lines, 10 by default', async () => {
    const body = await page('/users/3/orders');
    expect(body.items).toHaveLength(10);
    expect(body.nextCursor).toEqual(expect.any(String));
    const times = body.items.map(o => Date.parse(o.placedAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const order of body.items) {
      expect(order.lines.length).toBeGreaterThanOrEqual(1);
      expect(order.lines.length).toBeLessThanOrEqual(5);
      const sum = order.lines.reduce((s, l) => s + l.quantity * l.unitPriceCents, 0);
      expect(order.totalCents).toBe(sum);
      expect(order.status).toMatch(/^(placed|paid|shipped|delivered|cancelled)$/);
    }
  });

  it.each([1, 3, 7, 50])(
    'walks every page (limit %i) with no gaps and no duplicates',
    async limit => {
      for (const userId of [1, 3, 20]) {
        const want = await expected(userId);
        expect(want.length).toBeGreaterThan(0);
        expect(await walk(userId, limit)).toEqual(want);
      }
    },
  );

  it('breaks ties between orders placed at the same instant by id', async () => {
    // A user of its own, outside the seeded range: five orders in the same millisecond.
    await db.exec(`
      insert into orders.orders (id, user_id, placed_at, status, total_cents)
      select 100000 + i, 9001, timestamptz '2024-02-02T10:00:00.123Z', 'paid', 0
      from generate_series(1, 5) as i;
      insert into orders.orders values (100010, 9001, timestamptz '2024-02-02T10:00:00.124Z', 'paid', 0);
    `);
    expect(await walk(9001, 2)).toEqual([100010, 100005, 100004, 100003, 100002, 100001]);
  });

  it('a user without orders gets an empty page', async () => {
    expect(await page('/users/12345/orders')).toEqual({ items: [], nextCursor: null });
  });

  it('order lines carry the catalog price of their product', async () => {
    await prepareCatalog(db, seed);
    const { rows } = await db.query<{ c: number }>(
      `select count(*)::int as c from orders.order_lines l
       left join catalog.products p on p.id = l.product_id
       where p.id is null or p.price_cents <> l.unit_price_cents`,
    );
    expect(rows[0]?.c).toBe(0);
  });

  const problemOf = async (url: string, status = 400) => {
    const res = await app.inject({ url });
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    return res.json<{ code: string; errors?: { field: string; in: string }[] }>();
  };

  it.each(['0', '51', '-3', 'ten', '2.5'])('limit=%s is a 400 naming limit', async limit => {
    const body = await problemOf(`/users/1/orders?limit=${limit}`);
    expect(body).toMatchObject({ errors: [{ field: '/limit', in: 'querystring' }] });
  });

  it('a non-numeric user id is a 400 naming id', async () => {
    const body = await problemOf('/users/me/orders');
    expect(body).toMatchObject({ errors: [{ field: '/id', in: 'params' }] });
  });

  it('a tampered, foreign or forged cursor is a 400 INVALID_CURSOR', async () => {
    const first = await page('/users/1/orders?limit=2');
    const cursor = first.nextCursor as string;
    const [payload, signature] = cursor.split('.') as [string, string];
    const decoded = Buffer.from(payload, 'base64url').toString();
    const shifted = Buffer.from(
      decoded.replace(/,(\d+)\]$/, (_, id: string) => `,${Number(id) + 1}]`),
    ).toString('base64url');
    const forgedByOtherKey = cursorCodec('another-secret-entirely').encode({
      userId: 1,
      placedAtMs: 0,
      orderId: 1,
    });
    const otherUsers = cursorCodec(SECRET).encode({ userId: 2, placedAtMs: 0, orderId: 1 });
    for (const bad of [
      `${shifted}.${signature}`,
      `${payload}.${signature.slice(0, -2)}`,
      'garbage',
      '.',
      forgedByOtherKey,
      otherUsers,
    ]) {
      const body = await problemOf(`/users/1/orders?cursor=${encodeURIComponent(bad)}`);
      expect(body).toMatchObject({
        code: 'INVALID_CURSOR',
        errors: [{ field: '/cursor', in: 'querystring' }],
      });
    }
    // The untouched cursor still works.
    expect(
      (await page(`/users/1/orders?limit=2&cursor=${encodeURIComponent(cursor)}`)).items,
    ).toHaveLength(2);
  });

  it('validates its options', async () => {
    await expect(createOrdersService({ db, seed: false, maxLimit: 0 })).rejects.toThrow(/maxLimit/);
    await expect(createOrdersService({ db, seed: false, cursorSecret: 'short' })).rejects.toThrow(
      /at least 16 characters/,
    );
    await expect(createOrdersService({ db, seed: { orders: -1 } })).rejects.toThrow(/seed.orders/);
  });
});
