// The "nothing lost" crash run on Redis: 10,000 messages, a worker process SIGKILLed three
// times, every effect once or in the DLQ with its history, then a replay that drains the DLQ.
// Workers import the built copy of crash-worker.ts: run `npx tsc -b` first.
import { fileURLToPath } from 'node:url';
import { builtCopyOf, describeCrashScenario } from '@bulwark/messaging/contract';
import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { openCrashSubject } from './crash-worker.js';

const url = process.env.REDIS_URL;
if (url === undefined) {
  console.warn('crash.int.test.ts skipped: set REDIS_URL=redis://127.0.0.1:6379');
}
// A prefix of our own per run, deleted afterwards.
const prefix = `bw-crash-${process.pid}-${Date.now().toString(36)}`;

describe.skipIf(url === undefined)('redis', () => {
  describeCrashScenario('Redis', () => ({
    open: openCrashSubject,
    subjectModule: builtCopyOf(fileURLToPath(new URL('./crash-worker.ts', import.meta.url))),
    params: { url: url!, prefix },
    total: 10_000,
    cleanup: async () => {
      const client = new Redis(url!);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}*`, 'COUNT', 1_000);
          cursor = next;
          if (keys.length > 0) await client.del(...keys);
        } while (cursor !== '0');
      } finally {
        await client.quit();
      }
    },
  }));
});
