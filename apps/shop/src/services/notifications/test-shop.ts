/**
 * Test wiring shared by the notifications tests: users, orders and notifications services on one
 * database and one queue backend, with the outbox relay, as in the one-process shop, plus a driver
 * that moves a TestClock one timer at a time and waits for the real I/O (PGlite, HTTP to the
 * users service) in between. Not a test file itself (so the build compiles it too: it imports
 * nothing test-only) and not exported from the package.
 */
import { exponentialBackoff, type Clock } from '@bulwark/core';
import type { QueueBackend } from '@bulwark/messaging';
import { postgresQueueBackend, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { createOrdersService } from '../orders/app.js';
import { orderEventsRelay, type OrderEventsRelay } from '../orders/events.js';
import { createUsersService } from '../users/app.js';
import { createNotificationsService, type NotificationsApp } from './app.js';
import { FakeMailProvider } from './mail-provider.js';

// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
export const quiet = { shedding: { maxEventLoopDelayMs: false as const } };
export const SEED = { users: 30, products: 50, orders: 20, picksPerUser: 1, popular: 1 };
/** The consumer's backoff in these tests: 1 s, 2 s, 4 s ... without jitter, so times are exact. */
export const BACKOFF = { baseMs: 1_000, maxMs: 60_000 };
export const MAX_ATTEMPTS = 4;

/** What `run` needs of a TestClock (from @bulwark/testing). */
export interface SteppedClock extends Clock {
  nextTimerAt(): number | undefined;
  advanceTo(target: number): Promise<void>;
}

export interface TestShop {
  clock: Clock;
  backend: QueueBackend;
  relay: OrderEventsRelay;
  users: FastifyInstance;
  orders: FastifyInstance;
  notifications: NotificationsApp;
  mail: FakeMailProvider;
  close(): Promise<void>;
}

export async function startTestShop(db: SqlDatabase, clock: Clock): Promise<TestShop> {
  const backend = await postgresQueueBackend({ db });
  const users = await createUsersService({ db, seed: SEED, bulwark: quiet });
  await users.listen({ port: 0, host: '127.0.0.1' });
  const address = users.server.address();
  const usersUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const relay = orderEventsRelay({ db, backend, clock, claimMs: 5_000 });
  const orders = await createOrdersService({
    db,
    seed: SEED,
    bulwark: quiet,
    clock,
    events: { relay },
  });
  const mail = new FakeMailProvider({ clock });
  const notifications = await createNotificationsService({
    db,
    backend,
    mail,
    usersUrl,
    clock,
    bulwark: quiet,
    consumer: {
      maxAttempts: MAX_ATTEMPTS,
      backoff: exponentialBackoff({ ...BACKOFF, jitter: 'none' }),
      concurrency: 2,
      handlerTimeoutMs: 10_000,
    },
  });
  await notifications.ready();
  await orders.ready();
  return {
    clock,
    backend,
    relay,
    users,
    orders,
    notifications,
    mail,
    async close() {
      await relay.stop();
      await notifications.close();
      await orders.close();
      await users.close();
      await backend.close?.();
    },
  };
}

/**
 * Waits until nothing moves without the clock: no relay publish in flight, no consumer backend
 * call, and every running handler is parked on the mail provider's (virtual) delay. Handlers do
 * real I/O (PGlite, HTTP), so this polls, bounded by `timeoutMs` of real time.
 */
export async function settle(shop: TestShop, timeoutMs = 10_000): Promise<void> {
  const { consumer } = shop.notifications.notifications;
  const giveUpAt = Date.now() + timeoutMs;
  for (let calm = 0; calm < 3;) {
    if (Date.now() > giveUpAt) throw new Error('settle: the shop did not go quiet');
    await shop.relay.whenIdle();
    await consumer.whenIdle();
    await new Promise(resolve => setImmediate(resolve));
    calm = consumer.running === shop.mail.pending ? calm + 1 : 0;
  }
}

/** Moves the TestClock forward `ms`, one due timer at a time, settling in between. */
export async function run(shop: TestShop, clock: SteppedClock, ms: number): Promise<void> {
  const target = clock.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    await settle(shop);
    const next = clock.nextTimerAt();
    if (next === undefined || next > target) break;
    await clock.advanceTo(next);
  }
  await clock.advanceTo(target);
  await settle(shop);
}
