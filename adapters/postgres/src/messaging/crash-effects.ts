/**
 * The effect store of the crash harness (`@bulwark/messaging/contract`, crash/) in PostgreSQL or
 * PGlite: an effect row written in the same transaction as the message's inbox mark, as a
 * consumer with a database does it. Shared by the crash subjects of this package and of queue
 * backends with nothing to compare-and-set an inbox mark with (RabbitMQ).
 *
 * The effect table has no unique index on purpose: if the inbox let a redelivery through, the
 * second row would show up in the check instead of being hidden by a constraint error.
 */
import type { Message } from '@bulwark/messaging';
import type { CrashSubject } from '@bulwark/messaging/contract';
import { migrate, type SqlDatabase } from '../db/index.js';
import { inbox } from './inbox.js';
import { messagingMigrations } from './schema.js';

export type CrashEffectStore = Pick<CrashSubject, 'applyEffect' | 'countEffects' | 'effectCounts'>;

/**
 * Migrates `schema` (the inbox table comes with the messaging schema), creates the effect table
 * and returns the store for the run `runId`. `schema` must already be a checked SQL identifier.
 */
export async function crashEffectStore(
  db: SqlDatabase,
  schema: string,
  runId: string,
): Promise<CrashEffectStore> {
  await migrate(db, { migrations: messagingMigrations(schema), table: `${schema}.migrations` });
  const table = `${schema}.crash_effects`;
  await db.exec(`create table if not exists ${table} (
    run text not null, idx int not null, message_id text not null, attempt int not null)`);
  const box = inbox({ db, schema, name: `crash.${runId}` });
  return {
    async applyEffect(message: Message, index: number) {
      const result = await box.handle(message, tx =>
        tx.query(`insert into ${table} values ($1, $2, $3, $4)`, [
          runId,
          index,
          message.id,
          message.attempt,
        ]),
      );
      return !result.duplicate;
    },
    async countEffects() {
      const { rows } = await db.query<{ n: number }>(
        `select count(*)::int as n from ${table} where run = $1`,
        [runId],
      );
      return rows[0]?.n ?? 0;
    },
    async effectCounts() {
      const { rows } = await db.query<{ idx: number; n: number }>(
        `select idx, count(*)::int as n from ${table} where run = $1 group by idx`,
        [runId],
      );
      return new Map(rows.map(r => [r.idx, r.n]));
    },
  };
}
