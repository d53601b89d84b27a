/**
 * Idempotent consumer (inbox): `inbox.handle(message, effect)` runs `effect` in a transaction that
 * also records the message's key; a redelivered message finds its key and `effect` does not run
 * again. At-least-once delivery plus this table gives an exactly-once effect — for effects written
 * with `tx` in the same database. Effects elsewhere (an email, an HTTP call) still need their own
 * idempotency key: pass `message.idempotencyKey ?? message.id` on.
 *
 * Key: the message's idempotency key, else its id, scoped by the inbox `name` (so two consumers of
 * one message each get their effect). Keys are kept `retentionMs`; a duplicate arriving later than
 * that runs again.
 */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import type { Message } from '@bulwark/messaging';
import { tableVacuum, type SqlDatabase, type SqlTransaction } from '../db/index.js';
import { isSchemaName } from './schema.js';

export interface InboxOptions {
  db: SqlDatabase;
  /** Scopes the keys: one name per consuming service or handler. Required. */
  name: string;
  schema?: string;
  /** How long a key is remembered, ms. Default 604_800_000 (7 days). */
  retentionMs?: number;
  clock?: Clock;
}

export type InboxResult<T> =
  { readonly duplicate: false; readonly value: T } | { readonly duplicate: true };

export interface Inbox {
  /** Runs `effect` once per message key; a duplicate resolves `{ duplicate: true }`. */
  handle<T>(
    message: Pick<Message, 'id' | 'idempotencyKey'>,
    effect: (tx: SqlTransaction) => Promise<T>,
  ): Promise<InboxResult<T>>;
  /** Forgets keys older than the retention; returns how many. Run it now and then. */
  purgeExpired(): Promise<number>;
}

export function inbox(options: InboxOptions): Inbox {
  const where = 'inbox';
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${where}: expected an options object { db, name }`);
  }
  if (typeof options.name !== 'string' || options.name === '') {
    throw new InvalidOptionsError(
      `${where}: name is required (scopes the keys, e.g. "notifications.send-email")`,
    );
  }
  const schema = options.schema ?? 'bulwark_messaging';
  if (!isSchemaName(schema)) {
    throw new InvalidOptionsError(`${where}: schema must be a lower-case SQL identifier`);
  }
  const retentionMs = options.retentionMs ?? 604_800_000;
  if (!(retentionMs > 0) || !Number.isFinite(retentionMs)) {
    throw new InvalidOptionsError(`${where}: retentionMs must be a finite number > 0 (ms)`);
  }
  const { db, name } = options;
  const clock = options.clock ?? systemClock;
  // A key past retention counts as new: take it over in the same statement.
  const claim = `insert into ${schema}.inbox (key, processed_at) values ($1, $2::float8)
    on conflict (key) do update set processed_at = excluded.processed_at
    where ${schema}.inbox.processed_at < $2::float8 - $3::float8`;
  const purge = `delete from ${schema}.inbox where processed_at < $1::float8`;
  // PGlite runs no autovacuum: the rows a purge deletes are reclaimed before the next purge.
  const vacuum = tableVacuum(db, `${schema}.inbox`);

  return {
    handle(message, effect) {
      const key = `${name}:${message.idempotencyKey ?? message.id}`;
      return db.transaction(async tx => {
        const { rowCount } = await tx.query(claim, [key, clock.wallNow(), retentionMs]);
        if (rowCount === 0) return { duplicate: true } as const;
        return { duplicate: false, value: await effect(tx) } as const;
      });
    },
    async purgeExpired() {
      if (vacuum.due) await vacuum.run();
      const { rowCount } = await db.query(purge, [clock.wallNow() - retentionMs]);
      vacuum.note(rowCount);
      return rowCount;
    },
  };
}
