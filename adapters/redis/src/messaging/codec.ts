/**
 * What is stored as JSON and how it comes back. A record's immutable part (`rec`) is written once
 * as JSON by JavaScript and only ever copied by the scripts, so payloads round-trip exactly as
 * `JSON.stringify` / `JSON.parse` make them (Lua's cjson would lose `[]` vs `{}` and digits).
 */
import type {
  AttemptRecord,
  DeadLetter,
  DeadReason,
  EnqueueRecord,
  Headers,
  Message,
} from '@bulwark/messaging';

interface StoredRecord {
  readonly type: string;
  readonly payload: unknown;
  readonly headers: Headers;
  readonly idempotencyKey?: string;
  readonly firstSeenAt: number;
}

export function encodeRecord(record: EnqueueRecord): string {
  const stored: StoredRecord = {
    type: record.type,
    payload: record.payload,
    headers: record.headers,
    firstSeenAt: record.firstSeenAt,
    ...(record.idempotencyKey === undefined ? {} : { idempotencyKey: record.idempotencyKey }),
  };
  return JSON.stringify(stored);
}

export function toMessage(id: string, queue: string, attempts: number, rec: string): Message {
  const stored = JSON.parse(rec) as StoredRecord;
  const base = {
    id,
    queue,
    type: stored.type,
    payload: stored.payload,
    headers: stored.headers,
    attempt: attempts,
    firstSeenAt: stored.firstSeenAt,
  };
  // Object.assign, not `{ ...base, idempotencyKey }`: on Node 20 a spread followed by a new
  // property takes V8's slow path, once per message here.
  return stored.idempotencyKey === undefined
    ? base
    : Object.assign(base, { idempotencyKey: stored.idempotencyKey });
}

/** The fields of a dead letter hash, in the order `DEAD_FIELDS` lists them. */
export const DEAD_FIELDS = [
  'rec',
  'attempts',
  'history',
  'reason',
  'code',
  'message',
  'deadAt',
] as const;

export function toDeadLetter(
  id: string,
  queue: string,
  fields: readonly (string | null)[],
): DeadLetter | undefined {
  const [rec, attempts, history, reason, code, message, deadAt] = fields;
  if (
    rec == null ||
    attempts == null ||
    history == null ||
    reason == null ||
    code == null ||
    message == null ||
    deadAt == null
  ) {
    return undefined; // gone (replayed or purged) between listing and loading
  }
  return {
    id,
    message: toMessage(id, queue, Number(attempts), rec),
    sourceQueue: queue,
    reason: reason as DeadReason,
    attempts: JSON.parse(history) as AttemptRecord[],
    lastError: { code, message },
    deadAt: Number(deadAt),
  };
}
