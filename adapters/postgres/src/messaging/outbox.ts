/**
 * Transactional outbox: `outbox.enqueue(tx, message)` writes the message in the caller's own
 * transaction, so it exists if and only if the business change commits. A relay then publishes
 * unsent rows to any `QueueBackend` and marks them sent after the backend confirmed (its
 * `enqueue` resolved).
 *
 * Guarantee: at least once. A relay that crashes between publishing and marking publishes the
 * row again after its claim expires; the message keeps its id, so a backend that still holds it
 * skips the copy, and the consumer's inbox drops one that was already handled.
 */
import { InvalidOptionsError, systemClock, type Clock, type TimerHandle } from '@bulwark/core';
import {
  toRecord,
  type EnqueueRecord,
  type QueueBackend,
  type SendInput,
} from '@bulwark/messaging';
import { tableVacuum, type SqlDatabase, type SqlExecutor } from '../db/index.js';
import { isSchemaName } from './schema.js';

export interface OutboxOptions {
  /** Schema holding the outbox table (migrated by `postgresQueueBackend`). Default `bulwark_messaging`. */
  schema?: string;
  /** Message times. Default: the system clock. */
  clock?: Clock;
}

export interface Outbox {
  /** Inserts the messages with `tx` (the caller's transaction); returns their ids. */
  enqueue(tx: SqlExecutor, messages: SendInput | readonly SendInput[]): Promise<string[]>;
}

export function outbox(options: OutboxOptions = {}): Outbox {
  const schema = checkSchema('outbox', options.schema);
  const clock = options.clock ?? systemClock;
  const insert = `insert into ${schema}.outbox (id, record, created_at)
    select x.id, x.record, $2::float8 from jsonb_to_recordset($1::jsonb) as x(id text, record jsonb)`;
  return {
    async enqueue(tx, messages) {
      const list: readonly SendInput[] = isList(messages) ? messages : [messages];
      if (list.length === 0) return [];
      const now = clock.wallNow();
      const records = list.map(m => toRecord(m, now));
      await tx.query(insert, [JSON.stringify(records.map(r => ({ id: r.id, record: r }))), now]);
      return records.map(r => r.id);
    },
  };
}

export interface OutboxRelayOptions {
  db: SqlDatabase;
  /** Where messages are published. */
  backend: QueueBackend;
  schema?: string;
  /** Rows per publish. Default 100. */
  batchSize?: number;
  /**
   * How long a relay owns the rows it took, ms. If it dies before marking them sent, another
   * relay (or the next run) publishes them after this. Default 30_000.
   */
  claimMs?: number;
  /** Pause between runs when the outbox is empty, ms. Default 1_000. */
  pollIntervalMs?: number;
  /** Sent rows older than this are deleted, ms. Default 86_400_000 (one day). */
  keepSentMs?: number;
  clock?: Clock;
  /** Called when a run fails (the backend is down); the relay keeps going. Default: ignored. */
  onError?: (error: unknown) => void;
}

export interface OutboxRelay {
  /** Publishes one batch; resolves with how many rows were published. */
  runOnce(): Promise<number>;
  /** Runs batches until the outbox is empty, then every `pollIntervalMs`. */
  start(): void;
  stop(): Promise<void>;
}

interface OutboxRow {
  seq: number;
  record: EnqueueRecord;
}

export function outboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const where = 'outboxRelay';
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${where}: expected an options object { db, backend }`);
  }
  const schema = checkSchema(where, options.schema);
  const { db, backend } = options;
  const clock = options.clock ?? systemClock;
  const batchSize = positiveInt(where, 'batchSize', options.batchSize ?? 100);
  const claimMs = positive(where, 'claimMs', options.claimMs ?? 30_000);
  const pollIntervalMs = positive(where, 'pollIntervalMs', options.pollIntervalMs ?? 1_000);
  const keepSentMs = positive(where, 'keepSentMs', options.keepSentMs ?? 86_400_000);
  const onError = options.onError ?? (() => {});

  // Claim with an expiry instead of holding row locks while publishing: on PGlite the publish may
  // go to the same database, which a held transaction would block.
  const claim = `update ${schema}.outbox o set claimed_until = $1::float8 + $2::float8
    where o.seq in (
      select seq from ${schema}.outbox
      where sent_at is null and (claimed_until is null or claimed_until <= $1::float8)
      order by seq limit $3::int
      for update skip locked)
    returning o.seq, o.record`;
  const markSent = `update ${schema}.outbox set sent_at = $2::float8 where seq = any($1::bigint[])`;
  const cleanup = `delete from ${schema}.outbox where sent_at < $1::float8`;
  // PGlite runs no autovacuum; a claim, a mark and the clean-up each leave dead row versions.
  const vacuum = tableVacuum(db, `${schema}.outbox`);

  let timer: TimerHandle | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;

  async function runOnce(): Promise<number> {
    if (vacuum.due) await vacuum.run();
    const now = clock.wallNow();
    const { rows } = await db.query<OutboxRow>(claim, [now, claimMs, batchSize]);
    if (rows.length === 0) return 0;
    vacuum.note(rows.length);
    rows.sort((a, b) => a.seq - b.seq);
    await backend.enqueue(rows.map(r => r.record));
    await db.query(markSent, [rows.map(r => r.seq), clock.wallNow()]);
    vacuum.note(rows.length);
    return rows.length;
  }

  async function loop(): Promise<void> {
    try {
      while (!stopped && (await runOnce()) === batchSize) {
        // A full batch: more may be waiting.
      }
      vacuum.note((await db.query(cleanup, [clock.wallNow() - keepSentMs])).rowCount);
    } catch (error) {
      onError(error);
    }
    if (!stopped) {
      timer = clock.setTimer(() => {
        running = loop();
      }, pollIntervalMs);
    }
  }

  return {
    runOnce,
    start() {
      if (!stopped) return;
      stopped = false;
      running = loop();
    },
    async stop() {
      stopped = true;
      timer?.clear();
      await running;
    },
  };
}

function isList(value: SendInput | readonly SendInput[]): value is readonly SendInput[] {
  return Array.isArray(value);
}

function checkSchema(where: string, schema: unknown): string {
  const s = schema ?? 'bulwark_messaging';
  if (!isSchemaName(s)) {
    throw new InvalidOptionsError(
      `${where}: schema must be a lower-case SQL identifier, got ${JSON.stringify(s)}`,
    );
  }
  return s;
}

function positive(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidOptionsError(`${where}: ${name} must be a finite number > 0 (ms)`);
  }
  return value;
}

function positiveInt(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidOptionsError(`${where}: ${name} must be an integer >= 1`);
  }
  return value;
}
