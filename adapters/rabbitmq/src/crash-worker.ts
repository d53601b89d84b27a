/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on RabbitMQ: the queue
 * backend, and an effect store in PostgreSQL. RabbitMQ has nothing to compare-and-set an inbox
 * mark with, so the effect row and the inbox mark commit in one PostgreSQL transaction
 * (`crashEffectStore` of @bulwark/postgres/contract), as a RabbitMQ consumer with a database
 * would do it. The harness imports the built copy of this module in each worker process, so
 * everything is opened from string params: `url` (AMQP), `prefix`, `databaseUrl` and `schema`.
 */
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { openDatabase } from '@bulwark/postgres';
import { crashEffectStore } from '@bulwark/postgres/contract';
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
    const effects = await crashEffectStore(db, schema, config.runId);
    backend = await rabbitmqQueueBackend({ url, prefix, connectionName: `crash ${config.runId}` });
    const opened = backend;
    return {
      backend: opened,
      ...effects,
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
