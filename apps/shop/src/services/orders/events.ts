/**
 * What the orders service tells the rest of the shop: `order.placed`, written to the transactional
 * outbox in the order's own transaction and published by a relay. The relay polls, but the
 * service also kicks it right after each commit, so an order reaches its consumers in
 * milliseconds instead of at the next poll, and the 201 never waits for either.
 */
import { AsyncResource } from 'node:async_hooks';
import { InvalidOptionsError, type Clock } from '@bulwark/core';
import type { QueueBackend } from '@bulwark/messaging';
import { outboxRelay, type SqlDatabase } from '@bulwark/postgres';

export const ORDER_PLACED = 'order.placed';
/** The queue `order.placed` goes to by default: the notifications service consumes it. */
export const NOTIFICATIONS_QUEUE = 'notifications';

/** The payload of `order.placed`. Its idempotency key is `order-<orderId>`. */
export interface OrderPlaced {
  orderId: number;
  userId: number;
  /** ISO 8601, millisecond precision. */
  placedAt: string;
  totalCents: number;
  lines: { productId: number; quantity: number; unitPriceCents: number }[];
}

export function orderPlacedKey(orderId: number): string {
  return `order-${orderId}`;
}

export interface OrderEventsRelayOptions {
  /** The database holding the outbox (the orders service's). */
  db: SqlDatabase;
  /** Where events are published (e.g. `postgresQueueBackend({ db })`). */
  backend: QueueBackend;
  /** Poll for rows a kick missed (a crashed relay's, another process's), ms. Default 1_000. */
  pollIntervalMs?: number;
  /** How long a relay owns rows it took; a crash mid-publish republishes after this, ms. Default 30_000. */
  claimMs?: number;
  clock?: Clock;
  /** A publish failed (the backend is down); the rows stay in the outbox. Default: ignored. */
  onError?: (error: unknown) => void;
}

export interface OrderEventsRelay {
  /** Starts polling. */
  start(): void;
  /** Publishes now, without waiting for the next poll (called after each commit). */
  kick(): void;
  /** Resolves when no kicked publish is in flight (tests). */
  whenIdle(): Promise<void>;
  /** Stops polling and waits for publishes in flight. */
  stop(): Promise<void>;
}

const BATCH = 100;

export function orderEventsRelay(options: OrderEventsRelayOptions): OrderEventsRelay {
  if (typeof options?.backend?.enqueue !== 'function') {
    throw new InvalidOptionsError('orderEventsRelay: backend must be a QueueBackend');
  }
  const onError = options.onError ?? (() => {});
  const relay = outboxRelay({
    db: options.db,
    backend: options.backend,
    batchSize: BATCH,
    pollIntervalMs: options.pollIntervalMs ?? 1_000,
    claimMs: options.claimMs ?? 30_000,
    onError,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  let inFlight: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  // One kicked run at a time; kicks during a run ask for one more. Runs that overlap the poll
  // loop are safe: each claims different rows.
  async function drain(): Promise<void> {
    do {
      again = false;
      try {
        while (!stopped && (await relay.runOnce()) === BATCH) {
          // A full batch: more may be waiting.
        }
      } catch (error) {
        onError(error);
      }
    } while (again && !stopped);
  }

  // Bound to the context the relay was created in, not the kicking request's: the drain outlives
  // the request, and under its ambient deadline (which ends when the 201 is sent) the relay's own
  // reads and publishes would be cut short. Consumers the publish wakes detach by themselves.
  const run = AsyncResource.bind(() => {
    inFlight = drain().finally(() => {
      inFlight = undefined;
    });
  });

  return {
    start: () => relay.start(),
    kick() {
      if (stopped) return;
      if (inFlight !== undefined) {
        again = true;
        return;
      }
      run();
    },
    async whenIdle() {
      while (inFlight !== undefined) await inFlight;
    },
    async stop() {
      stopped = true;
      await inFlight;
      await relay.stop();
    },
  };
}
