/**
 * The orders service on a real PostgreSQL (DATABASE_URL), in a database of its own created here
 * and dropped afterwards: the same migrations, seed and SQL as on PGlite.
 */
import { randomBytes } from 'node:crypto';
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrdersService, type OrdersPage } from './app.js';

const url = process.env.DATABASE_URL;
if (!url) console.warn('orders.int.test.ts skipped: set DATABASE_URL to a PostgreSQL server');

const dbName = `bulwark_shop_orders_${randomBytes(4).toString('hex')}`;
const seed = { users: 20, products: 50, orders: 300, picksPerUser: 5, popular: 10 };

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

describe.skipIf(!url)('orders service on PostgreSQL', () => {
  let admin: SqlDatabase;
  let db: SqlDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    admin = await openDatabase({ url: url as string, maxConnections: 1 });
    await admin.exec(`create database ${dbName}`);
    const u = new URL(url as string);
    u.pathname = `/${dbName}`;
    db = await openDatabase({ url: u.toString() });
    app = await createOrdersService({ db, seed, bulwark: quiet });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app?.close();
    await db?.close();
    await admin.exec(`drop database if exists ${dbName} with (force)`);
    await admin.close();
  });

  it('serves every page of a user with no gaps or duplicates', async () => {
    const { rows } = await db.query<{ id: number }>(
      'select id from orders.orders where user_id = 5 order by placed_at desc, id desc',
    );
    expect(rows.length).toBeGreaterThan(3);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await app.inject({ url: `/users/5/orders?limit=3${query}` });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<OrdersPage>();
      seen.push(...body.items.map(o => o.id));
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(rows.map(r => r.id));
  });

  it(
    'seeds the same data as PGlite (deterministic arithmetic), once',
    async () => {
      const again = await createOrdersService({ db, seed, bulwark: quiet });
      await again.close();
      const { rows } = await db.query<{ orders: number; lines: number; total: string }>(
        `select (select count(*)::int from orders.orders) as orders,
              (select count(*)::int from orders.order_lines) as lines,
              (select sum(total_cents)::text from orders.orders) as total`,
      );
      const pglite = await openDatabase();
      try {
        const local = await createOrdersService({ db: pglite, seed, bulwark: quiet });
        await local.close();
        const { rows: expected } = await pglite.query(
          `select (select count(*)::int from orders.orders) as orders,
                (select count(*)::int from orders.order_lines) as lines,
                (select sum(total_cents)::text from orders.orders) as total`,
        );
        expect(rows).toEqual(expected);
      } finally {
        await pglite.close();
      }
    },
    BOOT_TIMEOUT_MS,
  );

  it('answers 400 for a tampered cursor and a limit over the maximum', async () => {
    const bad = await app.inject({ url: '/users/5/orders?cursor=abc.def' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_CURSOR' });
    const big = await app.inject({ url: '/users/5/orders?limit=51' });
    expect(big.statusCode).toBe(400);
  });
});
