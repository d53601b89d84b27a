/**
 * A message as it travels through RabbitMQ: one JSON body carrying the message and what the
 * broker cannot (attempts already spent, every failed attempt's record), so a retry is a
 * re-publish of the same envelope with one more history entry, and a dead letter is complete.
 */
import type { AttemptRecord, EnqueueRecord, Headers, Message } from '@bulwark/messaging';
import { MessagingError } from '@bulwark/messaging';

export interface Envelope {
  readonly v: 1;
  readonly id: string;
  readonly queue: string;
  readonly type: string;
  readonly payload: unknown;
  readonly headers: Headers;
  readonly idempotencyKey?: string;
  readonly firstSeenAt: number;
  /** Attempts spent before this copy was published (0 for a new message). */
  readonly spent: number;
  /** Every attempt that ended in an error, oldest first. */
  readonly history: readonly AttemptRecord[];
  /**
   * When this copy was published (epoch ms) and a per-process counter: orders the messages of one
   * fetch, whose parallel `basic.get`s may answer out of queue order. Set by `encodeEnvelope`.
   */
  readonly sent?: readonly [number, number];
}

let publishCounter = 0;

/** Publish order of two envelopes (by `sent`), for sorting a fetch oldest first. */
export function comparePublished(a: Envelope, b: Envelope): number {
  const [at = 0, an = 0] = a.sent ?? [];
  const [bt = 0, bn = 0] = b.sent ?? [];
  return at - bt || an - bn;
}

export function envelopeOf(record: EnqueueRecord): Envelope {
  return {
    v: 1,
    id: record.id,
    queue: record.queue,
    type: record.type,
    payload: record.payload,
    headers: record.headers,
    ...(record.idempotencyKey === undefined ? {} : { idempotencyKey: record.idempotencyKey }),
    firstSeenAt: record.firstSeenAt,
    spent: 0,
    history: [],
  };
}

export function encodeEnvelope(envelope: Envelope): Buffer {
  const sent: [number, number] = [Date.now(), ++publishCounter];
  // Object.assign, not `{ ...envelope, sent }`: on Node 20 a spread followed by a new property
  // takes V8's slow path, once per publish here.
  return Buffer.from(JSON.stringify(Object.assign({}, envelope, { sent })));
}

export function decodeEnvelope(body: Buffer): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new MessagingError('BACKEND_ERROR', 'rabbitmq: a queued message is not JSON', {
      cause: error,
    });
  }
  const e = value as Partial<Envelope> | null;
  if (
    e === null ||
    typeof e !== 'object' ||
    e.v !== 1 ||
    typeof e.id !== 'string' ||
    typeof e.queue !== 'string' ||
    typeof e.type !== 'string' ||
    typeof e.spent !== 'number' ||
    !Array.isArray(e.history)
  ) {
    throw new MessagingError(
      'BACKEND_ERROR',
      'rabbitmq: a queued message is not a Bulwark envelope (published by something else?)',
    );
  }
  return e as Envelope;
}

export function messageOf(envelope: Envelope, attempt: number): Message {
  return {
    id: envelope.id,
    queue: envelope.queue,
    type: envelope.type,
    payload: envelope.payload,
    headers: envelope.headers,
    ...(envelope.idempotencyKey === undefined ? {} : { idempotencyKey: envelope.idempotencyKey }),
    attempt,
    firstSeenAt: envelope.firstSeenAt,
  };
}
