/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on RabbitMQ: the queue
 * backend, and an effect store in PostgreSQL. RabbitMQ has nothing to compare-and-set an inbox
 * mark with, so the effect row and the inbox mark (`inbox` of @bulwark/postgres) commit in one
 * PostgreSQL transaction, as a RabbitMQ consumer with a database would do it. The harness imports
 * the built copy of this module in each worker process, so everything is opened from string
 * params: `url` (AMQP), `prefix`, `databaseUrl` and `schema`.
 *
 * The effect table has no unique index on purpose: if the inbox let a redelivery through, the
 * second row would show up in the check instead of being hidden by a constraint error.
 */
import type { Message } from '@bulwark/messaging';
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { inbox, messagingMigrations, migrate, openDatabase } from '@bulwark/postgres';
import { rabbitmqQueueBackend } from './backend.js';

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openCrashSubject(config: CrashSubjectConfig): Promise<CrashSubject> {
  const { url, prefix, databaseUrl, schema } = config.params;
  if (url === undefined || prefix === undefined || databaseUrl === undefined) {
    throw new Error('crash subject: params.url, params.prefix and params.databaseUrl are required');
  }
  if (schema === undefined || !SCHEMA.test(schema)) {
    throw new Error(
      `crash subject: params.schema must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`,
    );
  }
  const db = await openDatabase({ url: databaseUrl });
  let backend: Awaited<ReturnType<typeof rabbitmqQueueBackend>> | undefined;
  try {
    // The inbox table comes with the messaging schema; its queue tables stay unused here.
    await migrate(db, { migrations: messagingMigrations(schema), table: `${schema}.migrations` });
    const table = `${schema}.crash_effects`;
    await db.exec(`create table if not exists ${table} (
      run text not null, idx int not null, message_id text not null, attempt int not null)`);
    backend = await rabbitmqQueueBackend({ url, prefix, connectionName: `crash ${config.runId}` });
    const box = inbox({ db, schema, name: `crash.${config.runId}` });
    const opened = backend;
    return {
      backend: opened,
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
        try {
          await opened.close();
        } finally {
          await db.close();
        }
      },
    };
  } catch (error) {
    await backend?.close().catch(() => undefined);
    await db.close();
    throw error;
  }
}
