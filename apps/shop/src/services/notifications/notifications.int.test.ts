/**
 * Order -> outbox -> relay -> queue -> confirmation email on a real PostgreSQL (DATABASE_URL), in a
 * database of its own created here and dropped afterwards, on the system clock: the same services
 * and SQL as on PGlite. The broker (the database) owns time here, so the test polls for the email
 * with a bounded wait instead of driving a TestClock.
 */
import { randomBytes } from 'node:crypto';
import { systemClock } from '@bulwark/core';
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlacedOrder } from '../orders/place.js';
import { BACKOFF, startTestShop, type TestShop } from './test-shop.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.warn('notifications.int.test.ts skipped: set DATABASE_URL to a PostgreSQL server');
}

const dbName = `bulwark_shop_notify_${process.pid}_${randomBytes(3).toString('hex')}`;

async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe.skipIf(!url)('order -> confirmation email on PostgreSQL', () => {
  let admin: SqlDatabase;
  let db: SqlDatabase;
  let shop: TestShop;
  beforeAll(async () => {
    admin = await openDatabase({ url: url as string, maxConnections: 1 });
    await admin.exec(`create database ${dbName}`);
    const u = new URL(url as string);
    u.pathname = `/${dbName}`;
    db = await openDatabase({ url: u.toString() });
    shop = await startTestShop(db, systemClock);
  }, 60_000);
  afterAll(async () => {
    await shop?.close();
    await db?.close();
    await admin?.exec(`drop database if exists ${dbName} with (force)`);
    await admin?.close();
  });

  async function place(userId: number, key: string): Promise<PlacedOrder> {
    const res = await shop.orders.inject({
      method: 'POST',
      url: '/orders',
      headers: { 'idempotency-key': key },
      payload: { userId, lines: [{ productId: 5, quantity: 3 }] },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<PlacedOrder>();
  }

  it('places an order and sends its confirmation exactly once', async () => {
    const order = await place(2, 'int-once');
    // A client retry with the same key: the same order, no second event.
    expect((await place(2, 'int-once')).id).toBe(order.id);
    const sent = await eventually('the email', () =>
      shop.mail.sent.find(m => m.idempotencyKey === `order-${order.id}`),
    );
    const { rows } = await db.query<{ email: string }>(
      'select email from users.profiles where id = 2',
    );
    expect(sent.to).toBe(rows[0]?.email);
    // The send is recorded through the inbox right after the provider accepted it.
    const recorded = await eventually('the inbox record', async () => {
      const { rows: n } = await db.query<{ n: number }>(
        'select count(*)::int as n from notifications.emails where order_id = $1',
        [order.id],
      );
      return n[0]?.n === 0 ? undefined : n[0]?.n;
    });
    expect(recorded).toBe(1);
    const outbox = await db.query<{ n: number }>(
      `select count(*)::int as n from bulwark_messaging.outbox
       where (record->'payload'->>'orderId')::int = $1`,
      [order.id],
    );
    expect(outbox.rows[0]?.n).toBe(1);
    expect(shop.mail.sent.filter(m => m.idempotencyKey === `order-${order.id}`)).toHaveLength(1);
  });

  it('racing requests with one Idempotency-Key create one order and one email', async () => {
    const orders = await Promise.all(Array.from({ length: 5 }, () => place(4, 'int-race')));
    const id = orders[0]?.id as number;
    expect(orders.map(o => o.id)).toEqual(Array(5).fill(id));
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from bulwark_messaging.outbox
       where (record->'payload'->>'orderId')::int = $1`,
      [id],
    );
    expect(rows[0]?.n).toBe(1);
    await eventually('the email', () =>
      shop.mail.sent.find(m => m.idempotencyKey === `order-${id}`),
    );
    expect(shop.mail.sent.filter(m => m.idempotencyKey === `order-${id}`)).toHaveLength(1);
  });

  it('retries a 421 after the backoff and then sends once', async () => {
    const { rows } = await db.query<{ email: string }>(
      'select email from users.profiles where id = 3',
    );
    shop.mail.addFault({ address: rows[0]?.email as string, code: 421, times: 1 });
    const started = Date.now();
    const order = await place(3, 'int-421');
    const key = `order-${order.id}`;
    await eventually('the email', () => shop.mail.sent.find(m => m.idempotencyKey === key));
    expect(Date.now() - started).toBeGreaterThanOrEqual(BACKOFF.baseMs);
    expect(shop.mail.attempts.filter(a => a.idempotencyKey === key).map(a => a.code)).toEqual([
      421, 250,
    ]);
  });
});
