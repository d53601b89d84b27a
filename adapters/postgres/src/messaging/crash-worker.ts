/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on PGlite or PostgreSQL:
 * the queue backend, and the effect store of `crash-effects.ts` (an effect row written in the same
 * transaction as the inbox mark). The harness imports the built copy of this module in each
 * worker process, so everything is opened from string params: `url` (PostgreSQL) or `dataDir`
 * (PGlite), and `schema`.
 */
import { InvalidOptionsError } from '@bulwark/core';
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { openDatabase } from '../db/index.js';
import { postgresQueueBackend } from './backend.js';
import { crashEffectStore } from './crash-effects.js';
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
    const effects = await crashEffectStore(db, schema, config.runId);
    return {
      backend,
      ...effects,
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
