/** The JSON documents the backend keeps in its streams. */
import type {
  AttemptError,
  AttemptRecord,
  DeadReason,
  EnqueueRecord,
  Message,
} from '@bulwark/messaging';

/** A message in the queue stream: the enqueue record as sent, never changed afterwards. */
export type StoredMessage = EnqueueRecord;

/** The current lease on a message: which delivery holds it and until when (consumer's clock). */
export interface LeaseState {
  readonly token: string;
  /** The delivery's ack subject: acks, naks, progress and term go there. */
  readonly reply: string;
  /** The message's sequence in the queue stream. */
  readonly seq: number;
  readonly leasedAt: number;
  readonly expiresAt: number;
}

/**
 * What JetStream does not keep about a message, one document per message in the state stream:
 * attempts spent (JetStream's delivery count also counts defers and hand-backs), the history of
 * failed attempts, and the lease. Removed when the message is acked or dead-lettered.
 */
export interface MessageState {
  readonly attempt: number;
  readonly history: readonly AttemptRecord[];
  readonly lease?: LeaseState;
  /**
   * Set when a message was dead-lettered but the broker had not confirmed the term yet: whoever
   * sees the message again finishes the job (crash safety).
   */
  readonly dead?: {
    readonly reason: DeadReason;
    readonly error: AttemptError;
    readonly deadAt: number;
  };
}

export function toMessage(stored: StoredMessage, attempt: number): Message {
  const base = {
    id: stored.id,
    queue: stored.queue,
    type: stored.type,
    payload: stored.payload,
    headers: stored.headers,
    attempt,
    firstSeenAt: stored.firstSeenAt,
  };
  // Object.assign, not `{ ...base, idempotencyKey }`: on Node 20 a spread followed by a new
  // property takes V8's slow path, once per message here.
  return stored.idempotencyKey === undefined
    ? base
    : Object.assign(base, { idempotencyKey: stored.idempotencyKey });
}

export function isStoredMessage(value: unknown): value is StoredMessage {
  const v = value as Partial<StoredMessage> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.id === 'string' &&
    typeof v.queue === 'string' &&
    typeof v.type === 'string' &&
    typeof v.headers === 'object' &&
    typeof v.availableAt === 'number' &&
    typeof v.firstSeenAt === 'number'
  );
}
