import { describeQueueBackendContract } from '@bulwark/messaging/contract';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type SqlDatabase } from '../db/index.js';
import { postgresQueueBackend, type PostgresQueueBackend } from './backend.js';

// One PGlite for the file; every contract test uses its own queue names.
let db: SqlDatabase;
let backend: PostgresQueueBackend;

beforeAll(async () => {
  db = await openDatabase();
  backend = await postgresQueueBackend({ db });
  // PGlite starts in a second or two alone, much slower beside other test files.
}, 60_000);

afterAll(async () => {
  await backend?.close();
  await db?.close();
});

describeQueueBackendContract('pglite', () => ({ backend }));
