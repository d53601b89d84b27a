/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on PGlite or PostgreSQL:
 * the queue backend, and an effect table written in the same transaction as the inbox mark. The
 * harness imports the built copy of this module in each worker process, so everything is opened
 * from string params: `url` (PostgreSQL) or `dataDir` (PGlite), and `schema`.
 *
 * The effect table has no unique index on purpose: if the inbox let a redelivery through, the
 * second row would show up in the check instead of being hidden by a constraint error.
 */
import { InvalidOptionsError } from '@bulwark/core';
import type { Message } from '@bulwark/messaging';
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { openDatabase } from '../db/index.js';
import { postgresQueueBackend } from './backend.js';
import { inbox } from './inbox.js';
import { isSchemaName } from './schema.js';

export async function openCrashSubject(config: CrashSubjectConfig): Promise<CrashSubject> {
  const { url, dataDir } = config.params;
  const schema = config.params.schema ?? 'bulwark_messaging';
  if (!isSchemaName(schema)) {
    throw new InvalidOptionsError(
      `openCrashSubject: params.schema must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`,
    );
  }
  const db = await openDatabase(
    url !== undefined ? { url } : dataDir !== undefined ? { dataDir } : {},
  );
  try {
    const backend = await postgresQueueBackend({ db, schema });
    await db.exec(`create table if not exists ${schema}.crash_effects (
      run text not null, idx int not null, message_id text not null, attempt int not null)`);
    const box = inbox({ db, schema, name: `crash.${config.runId}` });
    const table = `${schema}.crash_effects`;
    return {
      backend,
      async applyEffect(message: Message, index: number) {
        const result = await box.handle(message, tx =>
          tx.query(`insert into ${table} values ($1, $2, $3, $4)`, [
            config.runId,
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
          [config.runId],
        );
        return rows[0]?.n ?? 0;
      },
      async effectCounts() {
        const { rows } = await db.query<{ idx: number; n: number }>(
          `select idx, count(*)::int as n from ${table} where run = $1 group by idx`,
          [config.runId],
        );
        return new Map(rows.map(r => [r.idx, r.n]));
      },
      async close() {
        await backend.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
