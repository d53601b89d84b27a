/**
 * The port every queue backend implements (in-memory, PGlite/PostgreSQL, later Redis, RabbitMQ,
 * NATS). The policy — attempt limits, backoff, what an error means — lives in the consumer, so it
 * is the same everywhere; a backend only stores messages, leases and dead letters and applies the
 * settlement it is given atomically.
 *
 * Time is a parameter: every call that depends on it takes `now` (epoch ms from the consumer's
 * `Clock.wallNow()`), and SQL compares against that parameter, never against the server's clock.
 * That is what lets one contract suite drive every backend on a TestClock.
 */
import type { Disposable } from '@bulwark/core';
import type { EnqueueRecord, Message } from './message.js';
import type { AttemptError } from './outcome.js';

/** Proof that a consumer holds a message. Stale tokens are refused (fencing). */
export interface Lease {
  readonly id: string;
  readonly token: string;
}

export interface Delivery {
  readonly message: Message;
  readonly lease: Lease;
  /** When this lease runs out unless extended, epoch ms. */
  readonly leaseExpiresAt: number;
}

export interface FetchRequest {
  readonly queue: string;
  /** At most this many messages. >= 1. */
  readonly limit: number;
  /** Lease length, ms. */
  readonly leaseMs: number;
  readonly now: number;
}

export interface FetchResult {
  readonly deliveries: readonly Delivery[];
  /**
   * When the earliest message not delivered now becomes available (epoch ms), if the backend
   * knows cheaply; the consumer wakes then instead of waiting for its next poll. Undefined when
   * nothing is scheduled or the backend did not look (it looks only when it found fewer than
   * `limit` messages).
   */
  readonly nextAvailableAt?: number;
}

/** One attempt in a message's history. */
export interface AttemptRecord extends AttemptError {
  readonly attempt: number;
  /** When the attempt's delivery was leased, epoch ms. */
  readonly startedAt: number;
  /** When its outcome (or the lease expiry) was recorded, epoch ms. */
  readonly endedAt: number;
}

/** Why a message was dead-lettered. */
export type DeadReason =
  /** The handler said `fail`, or threw a non-retryable error. */
  | 'failed'
  /** The last allowed attempt ended in a retry, an error or an expired lease. */
  | 'max-attempts';

/** A settlement the backend applies atomically, if `lease` is still current. */
export type Settlement =
  | { readonly kind: 'ack' }
  /** The attempt is spent; deliver again after `delayMs`. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: AttemptError }
  /** Give the attempt back; deliver again after `delayMs`. */
  | { readonly kind: 'defer'; readonly delayMs: number }
  | { readonly kind: 'dead'; readonly reason: DeadReason; readonly error: AttemptError };

/** A leased message whose lease ran out: its consumer crashed, stalled or lost its connection. */
export interface ExpiredLease {
  /** `attempt` is the attempt that was in flight (already counted). */
  readonly message: Message;
  readonly leasedAt: number;
  readonly leaseExpiresAt: number;
}

export type RecoveryDecision = Extract<Settlement, { kind: 'retry' } | { kind: 'dead' }>;

export interface RecoverRequest {
  readonly queue: string;
  readonly now: number;
  /** At most this many per call. */
  readonly limit: number;
  /** The consumer's policy: retry later or dead-letter. Called synchronously, once per message. */
  readonly decide: (expired: ExpiredLease) => RecoveryDecision;
}

export interface QueueStats {
  /** Deliverable now. */
  readonly ready: number;
  /** Waiting for a retry delay, a defer or a send delay. */
  readonly scheduled: number;
  /** Leased to a consumer (including leases that have expired but not been recovered yet). */
  readonly leased: number;
  /** In the dead letter queue with this queue as their source. */
  readonly dead: number;
}

export interface DeadLetter {
  /** The dead message's id. */
  readonly id: string;
  /** The original message as last delivered: payload, headers, idempotency key, attempt count. */
  readonly message: Message;
  readonly sourceQueue: string;
  readonly reason: DeadReason;
  /** Every attempt that ended in an error, oldest first. */
  readonly attempts: readonly AttemptRecord[];
  /** The error that sent it here. */
  readonly lastError: AttemptError;
  readonly deadAt: number;
}

/**
 * Which dead letters an operation applies to. Every field narrows; an empty filter matches all.
 */
export interface DeadLetterFilter {
  readonly queue?: string;
  readonly type?: string;
  /** The code of the error that sent the message here (`lastError.code`). */
  readonly errorCode?: string;
  /** `deadAt >= from`, epoch ms. */
  readonly from?: number;
  /** `deadAt < to`, epoch ms. */
  readonly to?: number;
  /**
   * Case-insensitive substring of the message type, the payload's JSON, or any attempt's error
   * message.
   */
  readonly text?: string;
  readonly ids?: readonly string[];
}

/** Keyset position in the dead letter order (`deadAt`, then `id`, ascending). */
export interface DeadLetterCursor {
  readonly deadAt: number;
  readonly id: string;
}

export interface DeadLetterPage {
  readonly limit: number;
  /** Return only dead letters after this position. */
  readonly after?: DeadLetterCursor;
}

export interface DeadLetterSummary {
  readonly total: number;
  readonly byQueue: Readonly<Record<string, number>>;
}

export type AuditAction = 'replay' | 'purge';

export interface AuditEntry {
  readonly id: string;
  readonly at: number;
  readonly action: AuditAction;
  /** Who asked (an operator name, a token's subject); undefined when the caller did not say. */
  readonly actor?: string;
  readonly dryRun: boolean;
  readonly filter: DeadLetterFilter;
  /** How many dead letters were (or, in a dry run, would be) affected. */
  readonly count: number;
  /** The affected dead letter ids (at most 1,000; `count` is exact). */
  readonly ids: readonly string[];
  /** Free text, e.g. "payload edited". */
  readonly note?: string;
}

export interface AuditQuery {
  readonly from?: number;
  readonly to?: number;
  readonly action?: AuditAction;
  /** Default 100. Newest first. */
  readonly limit?: number;
}

export interface QueueBackend {
  /** For errors and events, e.g. `"memory"`, `"postgres"`. */
  readonly name: string;

  /**
   * Stores messages; all or none. A record whose id is still queued (ready, scheduled or leased)
   * is skipped, so a publisher that retries after a lost confirmation (an outbox relay) does not
   * queue the message twice.
   */
  enqueue(records: readonly EnqueueRecord[]): Promise<void>;
  /**
   * Leases up to `limit` deliverable messages (oldest `availableAt` first), spending one attempt on
   * each: `attempt` in the returned message is the new count. Messages whose lease has expired
   * are not returned here; `recoverExpiredLeases` puts them back first.
   */
  fetch(request: FetchRequest): Promise<FetchResult>;
  /** Pushes the given leases to `now + leaseMs`. Returns the ids whose lease is still held. */
  extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<readonly string[]>;
  /**
   * Applies a settlement if `lease` is still current. Returns false, changing nothing, when the
   * token is stale (the lease expired and was recovered, or another consumer holds it).
   */
  settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean>;
  /**
   * Optional: acks several leases in one round trip, each only if its lease is still current.
   * Returns the ids that were acked. Consumers batch the acks of handlers that finish together
   * through it; without it they call `settle` once per message.
   */
  ackMany?(leases: readonly Lease[], now: number): Promise<readonly string[]>;
  /** Applies `decide` to leases that expired before `now`. Returns how many were recovered. */
  recoverExpiredLeases(request: RecoverRequest): Promise<number>;
  stats(queue: string, now: number): Promise<QueueStats>;

  listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<readonly DeadLetter[]>;
  getDeadLetter(id: string): Promise<DeadLetter | undefined>;
  summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary>;
  /**
   * Atomically removes dead letter `id` and enqueues `record`. Returns false when the dead letter
   * is gone (replayed or purged meanwhile), enqueuing nothing.
   */
  replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean>;
  /** Deletes the matching dead letters; returns their ids. */
  purgeDeadLetters(filter: DeadLetterFilter): Promise<readonly string[]>;

  appendAudit(entry: AuditEntry): Promise<void>;
  listAudit(query: AuditQuery): Promise<readonly AuditEntry[]>;

  /**
   * Optional wake-ups: `listener` is called (soon) after messages are enqueued to `queue`, so
   * consumers need not poll quickly. Backends without push notifications leave it out.
   */
  subscribe?(queue: string, listener: () => void): Promise<Disposable>;
  /** Releases what the backend itself opened (not a database handle it was given). */
  close?(): Promise<void>;
}
