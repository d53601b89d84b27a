/**
 * Order placement through the outbox to the confirmation email, on in-memory PGlite with a
 * TestClock: the users, orders and notifications services share one database and one queue
 * backend, as in the one-process shop. Each test places orders for its own user.
 */
import { deadLetters, type DeadLetter, type QueueBackend } from '@bulwark/messaging';
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import { TestClock } from '@bulwark/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrdersService } from '../orders/app.js';
import { orderEventsRelay, type OrderPlaced } from '../orders/events.js';
import type { PlacedOrder } from '../orders/place.js';
import { createNotificationsService, type NotificationsServiceOptions } from './app.js';
import {
  BACKOFF,
  MAX_ATTEMPTS,
  quiet,
  run,
  settle,
  startTestShop,
  type TestShop,
} from './test-shop.js';

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;

let db: SqlDatabase;
let clock: TestClock;
let shop: TestShop;

beforeAll(async () => {
  db = await openDatabase();
  clock = new TestClock();
  shop = await startTestShop(db, clock);
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await shop?.close();
  await db?.close();
});

afterEach(() => {
  shop.mail.clearFaults();
});

async function emailOf(userId: number): Promise<string> {
  const { rows } = await db.query<{ email: string }>(
    'select email from users.profiles where id = $1',
    [userId],
  );
  return rows[0]?.email as string;
}

async function place(
  userId: number,
  key?: string,
  lines = [{ productId: 7, quantity: 2 }],
): Promise<{ status: number; order: PlacedOrder; replayed: boolean; body: string }> {
  const res = await shop.orders.inject({
    method: 'POST',
    url: '/orders',
    headers: key === undefined ? {} : { 'idempotency-key': key },
    payload: { userId, lines },
  });
  return {
    status: res.statusCode,
    order: res.json<PlacedOrder>(),
    replayed: res.headers['idempotent-replayed'] === 'true',
    body: res.body,
  };
}

const keyOf = (orderId: number) => `order-${orderId}`;
const sentFor = (orderId: number) =>
  shop.mail.sent.filter(m => m.idempotencyKey === keyOf(orderId));
const attemptsFor = (orderId: number) =>
  shop.mail.attempts.filter(a => a.idempotencyKey === keyOf(orderId)).map(a => a.code);

async function emailRows(orderId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'select count(*)::int as n from notifications.emails where order_id = $1',
    [orderId],
  );
  return rows[0]?.n ?? -1;
}

async function deadLetterOf(orderId: number): Promise<DeadLetter | undefined> {
  const page = await deadLetters({ backend: shop.backend, clock }).list({ queue: 'notifications' });
  return page.items.find(d => d.message.idempotencyKey === keyOf(orderId));
}

describe('order placed -> confirmation email', () => {
  it('sends exactly one email, to the user, for a placed order', async () => {
    const { status, order } = await place(3);
    expect(status).toBe(201);
    expect(order).toMatchObject({
      userId: 3,
      status: 'placed',
      lines: [{ productId: 7, quantity: 2 }],
    });
    expect(order.totalCents).toBe(2 * (order.lines[0]?.unitPriceCents ?? 0));
    await run(shop, clock, 0);

    const sent = sentFor(order.id);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.to).toBe(await emailOf(3));
    expect(sent[0]?.subject).toBe(`Your order #${order.id} is confirmed`);
    expect(await emailRows(order.id)).toBe(1);
    // Nothing more happens later: no retry, no second send.
    await run(shop, clock, 60_000);
    expect(attemptsFor(order.id)).toEqual([250]);

    const listed = await shop.notifications.inject({ url: '/sent?limit=1000' });
    expect(
      listed.json<{ items: { idempotencyKey: string }[] }>().items.map(i => i.idempotencyKey),
    ).toContain(keyOf(order.id));
  });

  it('answers POST /orders before the email is sent, and a slow send blocks no other order', async () => {
    shop.mail.addFault({ address: await emailOf(4), delayMs: 5_000 });
    const first = await place(4);
    expect(first.status).toBe(201);
    await settle(shop);
    // The handler is parked in the provider's 5 s delay: the order was answered without it.
    expect(shop.mail.pending).toBe(1);
    expect(sentFor(first.order.id)).toHaveLength(0);
    // The consumer holds no transaction meanwhile: another order is recorded at once.
    const second = await place(5);
    expect(second.status).toBe(201);
    await run(shop, clock, 5_000);
    expect(sentFor(first.order.id)).toHaveLength(1);
    expect(sentFor(second.order.id)).toHaveLength(1);
  });

  it('retries a 421 with the backoff, then sends once', async () => {
    shop.mail.addFault({ address: await emailOf(6), code: 421, times: 1 });
    const { order } = await place(6);
    await run(shop, clock, 0);
    expect(attemptsFor(order.id)).toEqual([421]);
    // The first retry waits the backoff's base (no jitter here): not a millisecond sooner.
    await run(shop, clock, BACKOFF.baseMs - 1);
    expect(attemptsFor(order.id)).toEqual([421]);
    await run(shop, clock, 1);
    expect(attemptsFor(order.id)).toEqual([421, 250]);
    expect(sentFor(order.id)).toHaveLength(1);
    expect(await emailRows(order.id)).toBe(1);
    expect(await deadLetterOf(order.id)).toBeUndefined();
  });

  it('dead-letters after maxAttempts of 421, with every attempt in the history', async () => {
    shop.mail.addFault({ address: await emailOf(7), code: 421 });
    const { order } = await place(7);
    // 1 + 2 + 4 s of backoff between the four attempts.
    await run(shop, clock, 7_000);
    expect(attemptsFor(order.id)).toEqual(Array(MAX_ATTEMPTS).fill(421));
    const letter = await deadLetterOf(order.id);
    expect(letter?.reason).toBe('max-attempts');
    expect(letter?.attempts.map(a => a.code)).toEqual(Array(MAX_ATTEMPTS).fill('SMTP_421'));
  });

  it('sends a 550 straight to the dead letter queue with its reason, without retrying', async () => {
    const to = await emailOf(8);
    shop.mail.addFault({ address: to, code: 550 });
    const { order } = await place(8);
    await run(shop, clock, 0);
    const letter = await deadLetterOf(order.id);
    expect(letter?.reason).toBe('failed');
    expect(letter?.lastError.code).toBe('SMTP_550');
    expect(letter?.lastError.message).toBe(`550 5.1.1 Mailbox unavailable (to ${to})`);
    expect((letter?.message.payload as OrderPlaced).orderId).toBe(order.id);
    await run(shop, clock, 60_000);
    expect(attemptsFor(order.id)).toEqual([550]);
    expect(sentFor(order.id)).toHaveLength(0);
    expect(await emailRows(order.id)).toBe(0);

    // The operator's view of the same dead letter.
    const res = await shop.notifications.inject({ url: '/dead-letters?limit=1000' });
    const listed = res
      .json<{ items: { idempotencyKey: string; lastError: { code: string } }[] }>()
      .items.find(i => i.idempotencyKey === keyOf(order.id));
    expect(listed?.lastError.code).toBe('SMTP_550');
  });

  it('dead-letters a bad address (553) at once, and a replay after the fix sends once', async () => {
    await db.query('update users.profiles set email = $2 where id = $1', [9, 'not-an-address']);
    const { order } = await place(9);
    await run(shop, clock, 0);
    const letter = await deadLetterOf(order.id);
    expect(letter?.reason).toBe('failed');
    expect(letter?.lastError.code).toBe('SMTP_553');
    expect(attemptsFor(order.id)).toEqual([553]);

    // Fix the address, replay through the service's route: the idempotency key is kept.
    await db.query('update users.profiles set email = $2 where id = $1', [9, 'fixed@example.com']);
    const replay = await shop.notifications.inject({
      method: 'POST',
      url: '/dead-letters/replay',
      payload: { ids: [letter?.id] },
    });
    expect(replay.json<{ matched: number }>().matched).toBe(1);
    await run(shop, clock, 0);
    expect(sentFor(order.id).map(m => m.to)).toEqual(['fixed@example.com']);
    expect(await deadLetterOf(order.id)).toBeUndefined();
  });

  it('dead-letters an order of an unknown user without calling the provider', async () => {
    const { status, order } = await place(999_999);
    expect(status).toBe(201);
    await run(shop, clock, 0);
    expect((await deadLetterOf(order.id))?.lastError.code).toBe('USER_NOT_FOUND');
    expect(attemptsFor(order.id)).toEqual([]);
  });

  it('sends once when the same message is delivered again (the inbox remembers)', async () => {
    const { order } = await place(10);
    await run(shop, clock, 0);
    expect(attemptsFor(order.id)).toEqual([250]);
    // A relay that published and died before marking the row publishes the same record again.
    const { rows } = await db.query<{ record: Parameters<QueueBackend['enqueue']>[0][number] }>(
      `select record from bulwark_messaging.outbox where (record->'payload'->>'orderId')::int = $1`,
      [order.id],
    );
    expect(rows).toHaveLength(1);
    await shop.backend.enqueue([rows[0]!.record]);
    await run(shop, clock, 0);
    // Acked without asking the provider again.
    expect(attemptsFor(order.id)).toEqual([250]);
    expect(sentFor(order.id)).toHaveLength(1);
    expect(await emailRows(order.id)).toBe(1);
  });
});

describe('POST /orders', () => {
  async function outboxRows(orderId: number): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from bulwark_messaging.outbox
       where (record->'payload'->>'orderId')::int = $1`,
      [orderId],
    );
    return rows[0]?.n ?? -1;
  }

  it('the same Idempotency-Key gives one order, one event, one email', async () => {
    const key = `k-${process.pid}-${Date.now()}`;
    const first = await place(11, key);
    const again = await place(11, key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(first.replayed).toBe(false);
    expect(again.replayed).toBe(true);
    expect(again.order).toEqual(first.order);
    const { rows } = await db.query<{ n: number }>(
      'select count(*)::int as n from orders.orders where idempotency_key = $1',
      [key],
    );
    expect(rows[0]?.n).toBe(1);
    expect(await outboxRows(first.order.id)).toBe(1);
    await run(shop, clock, 0);
    expect(sentFor(first.order.id)).toHaveLength(1);

    // The key with another body is refused.
    const other = await place(11, key, [{ productId: 8, quantity: 1 }]);
    expect(other.status).toBe(422);
    expect(JSON.parse(other.body)).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('lists a placed order in the user history', async () => {
    const { order } = await place(12, undefined, [
      { productId: 3, quantity: 1 },
      { productId: 4, quantity: 5 },
    ]);
    const res = await shop.orders.inject({ url: '/users/12/orders?limit=1' });
    expect(res.json<{ items: unknown[] }>().items[0]).toEqual({
      id: order.id,
      placedAt: order.placedAt,
      status: 'placed',
      totalCents: order.totalCents,
      lines: order.lines,
    });
  });

  it.each([
    ['no lines', { userId: 1, lines: [] }, '/lines'],
    ['a zero quantity', { userId: 1, lines: [{ productId: 1, quantity: 0 }] }, '/lines/0/quantity'],
    ['no userId', { lines: [{ productId: 1, quantity: 1 }] }, '/userId'],
    [
      'a bad product id',
      { userId: 1, lines: [{ productId: -1, quantity: 1 }] },
      '/lines/0/productId',
    ],
  ])('answers 400 problem+json for %s', async (_name, payload, field) => {
    const res = await shop.orders.inject({ method: 'POST', url: '/orders', payload });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json<{ errors: { field: string; in: string }[] }>();
    expect(body.errors[0]).toMatchObject({ field, in: 'body' });
  });

  it('answers 400 for an Idempotency-Key that is too long', async () => {
    const res = await shop.orders.inject({
      method: 'POST',
      url: '/orders',
      headers: { 'idempotency-key': 'x'.repeat(256) },
      payload: { userId: 1, lines: [{ productId: 1, quantity: 1 }] },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ errors: [{ field: '/idempotency-key', in: 'headers' }] });
  });

  it('a relay that dies between commit and publish leaves the event; a new relay publishes it', async () => {
    // An orders service whose relay takes the rows and dies before the queue has them.
    const dying = orderEventsRelay({
      db,
      clock,
      claimMs: 5_000,
      backend: new Proxy(shop.backend, {
        get: (target, key, receiver) =>
          key === 'enqueue'
            ? () => Promise.reject(new Error('relay killed before publishing'))
            : (Reflect.get(target, key, receiver) as unknown),
      }),
    });
    const orders = await createOrdersService({
      db,
      seed: false,
      bulwark: quiet,
      clock,
      events: { relay: dying },
    });
    try {
      const res = await orders.inject({
        method: 'POST',
        url: '/orders',
        payload: { userId: 13, lines: [{ productId: 2, quantity: 1 }] },
      });
      expect(res.statusCode).toBe(201);
      const orderId = res.json<PlacedOrder>().id;
      await dying.whenIdle();
      await run(shop, clock, 0);
      const { rows } = await db.query<{ sent: boolean; claimed: boolean }>(
        `select sent_at is not null as sent, claimed_until is not null as claimed
         from bulwark_messaging.outbox where (record->'payload'->>'orderId')::int = $1`,
        [orderId],
      );
      expect(rows).toEqual([{ sent: false, claimed: true }]);
      expect(sentFor(orderId)).toHaveLength(0);

      // The dead relay's claim runs out; the shop's relay (a new process's) takes the row over.
      await run(shop, clock, 5_000);
      shop.relay.kick();
      await run(shop, clock, 0);
      expect(sentFor(orderId)).toHaveLength(1);
      expect(await outboxRows(orderId)).toBe(1);
    } finally {
      await dying.stop();
      await orders.close();
    }
  });
});

describe('mail provider over HTTP', () => {
  it('adds, lists and clears faults, and refuses a bad one with a 400 naming the fix', async () => {
    const added = await shop.notifications.inject({
      method: 'POST',
      url: '/faults',
      payload: { code: 421, rate: 0.5 },
    });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ code: 421, rate: 0.5, fired: 0 });
    const listed = await shop.notifications.inject({ url: '/faults' });
    expect(listed.json<{ items: unknown[] }>().items).toHaveLength(1);

    const bad = await shop.notifications.inject({
      method: 'POST',
      url: '/faults',
      payload: { code: 200 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ detail: string }>().detail).toContain('code must be one of 421');

    const cleared = await shop.notifications.inject({ method: 'DELETE', url: '/faults' });
    expect(cleared.json()).toEqual({ removed: 1 });
  });

  it('reports the queue depth', async () => {
    const res = await shop.notifications.inject({ url: '/queue' });
    expect(res.json()).toMatchObject({ queue: 'notifications', ready: 0, leased: 0 });
  });
});

describe('options', () => {
  it('are checked eagerly, naming the fix', async () => {
    await expect(createOrdersService({ db, seed: false, events: { queue: '' } })).rejects.toThrow(
      'events.queue must be a non-empty string',
    );
    await expect(
      createNotificationsService({ db } as unknown as NotificationsServiceOptions),
    ).rejects.toThrow('backend must be a QueueBackend, e.g. await postgresQueueBackend({ db })');
    await expect(
      createNotificationsService({
        db,
        backend: shop.backend,
        consumer: { maxAttemps: 3 } as never,
      }),
    ).rejects.toThrow('unknown consumer option "maxAttemps"');
  });
});
