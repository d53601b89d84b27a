// The "nothing lost" crash run on PostgreSQL: 10,000 messages, a worker process SIGKILLed three
// times, every effect once or in the DLQ with its history, then a replay that drains the DLQ.
import { fileURLToPath } from 'node:url';
import { builtCopyOf, describeCrashScenario } from '@bulwark/messaging/contract';
import { describe } from 'vitest';
import { openDatabase } from '../db/index.js';
import { openCrashSubject } from './crash-worker.js';

const url = process.env.DATABASE_URL;
if (url === undefined) {
  console.warn(
    'crash.int.test.ts skipped: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test',
  );
}
// A schema of our own per run, dropped afterwards.
const schema = `bw_crash_${process.pid}_${Date.now().toString(36)}`;

describe.skipIf(url === undefined)('postgres', () => {
  describeCrashScenario('PostgreSQL', () => ({
    open: openCrashSubject,
    subjectModule: builtCopyOf(fileURLToPath(new URL('./crash-worker.ts', import.meta.url))),
    params: { url: url!, schema },
    total: 10_000,
    cleanup: async () => {
      const db = await openDatabase({ url: url! });
      try {
        await db.exec(`drop schema if exists ${schema} cascade`);
      } finally {
        await db.close();
      }
    },
  }));
});
