/**
 * The message model shared by producers, consumers and every backend. Times are wall-clock epoch
 * milliseconds (`clock.wallNow()`): they are stored, compared across processes and shown to people,
 * which a monotonic reading cannot be.
 */

/** Header values are strings so every backend (SQL, Redis, AMQP, NATS) can carry them as is. */
export type Headers = Readonly<Record<string, string>>;

export interface Message<P = unknown> {
  /** Unique per message. A replayed dead letter gets a new id (its old id is in a header). */
  readonly id: string;
  readonly queue: string;
  /** What the payload is, for routing and search (for example `"order.placed"`). */
  readonly type: string;
  readonly payload: P;
  readonly headers: Headers;
  /**
   * The key an idempotent consumer (the inbox) deduplicates on. Kept across retries and replays;
   * a replayed message that had none gets its original id here, so its effect still happens once.
   */
  readonly idempotencyKey?: string;
  /**
   * Which attempt this delivery is: 1 on first delivery. A retry, a lease that expired and a
   * consumer crash each spend one; `defer` does not.
   */
  readonly attempt: number;
  /** When the message was first sent, epoch ms. Kept across retries and replays. */
  readonly firstSeenAt: number;
}

/** What a producer sends. */
export interface SendInput<P = unknown> {
  readonly queue: string;
  readonly type: string;
  readonly payload: P;
  readonly headers?: Headers;
  readonly idempotencyKey?: string;
  /** Deliver no earlier than this many ms from now. Default 0. */
  readonly delayMs?: number;
  /** Use this id instead of a generated UUID (for example an outbox row's id). */
  readonly id?: string;
}

/** A message as a backend stores it on enqueue. */
export interface EnqueueRecord {
  readonly id: string;
  readonly queue: string;
  readonly type: string;
  readonly payload: unknown;
  readonly headers: Headers;
  readonly idempotencyKey?: string;
  /** Not deliverable before this time, epoch ms. */
  readonly availableAt: number;
  readonly firstSeenAt: number;
}

/** Header set on a replayed message: the id of the dead letter it came from. */
export const REPLAYED_FROM_HEADER = 'x-bulwark-replayed-from';
/** Header set on a replayed message: how many times its lineage has been replayed. */
export const REPLAY_COUNT_HEADER = 'x-bulwark-replay-count';

export { newMessageId } from './message-id.js';
