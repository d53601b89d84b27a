// The "nothing lost" crash run on RabbitMQ: 10,000 messages, a worker process SIGKILLed three
// times, every effect once (inbox and effect rows in PostgreSQL, one transaction) or in the DLQ
// with its history, then a replay that drains the DLQ. Workers import the built copy of
// crash-worker.ts: run `npx tsc -b` first.
import { fileURLToPath } from 'node:url';
import { builtCopyOf, describeCrashScenario } from '@bulwark/messaging/contract';
import { openDatabase } from '@bulwark/postgres';
import { describe } from 'vitest';
import { openCrashSubject } from './crash-worker.js';
import { deleteQueues } from './test-queues.js';
import { delayBucketMs, topology } from './topology.js';

const url = process.env.AMQP_URL;
const databaseUrl = process.env.DATABASE_URL;
const missing = [
  url === undefined ? 'AMQP_URL=amqp://guest:guest@127.0.0.1:5672' : [],
  databaseUrl === undefined ? 'DATABASE_URL=postgres://postgres@127.0.0.1:5432/test' : [],
].flat();
if (missing.length > 0) {
  console.warn(`crash.int.test.ts skipped: set ${missing.join(' and ')}`);
}
// Queues, stream and schema of our own per run, deleted afterwards.
const run = `${process.pid}_${Date.now().toString(36)}`;
const prefix = `bw-crash-${run}`;
const schema = `bw_rmq_crash_${run}`;
const runId = `crash_${run}`;

/**
 * Every delay bucket the workers may have declared: retries back off 20–200 ms (jittered), and
 * delays are rounded up to two significant digits. Deleting a queue that does not exist is a
 * no-op on RabbitMQ.
 */
function delayBuckets(queue: string): string[] {
  const names = topology(prefix);
  const ms = new Set<number>();
  for (let delay = 1; delay <= 10_000; delay++) ms.add(delayBucketMs(delay));
  return [...ms].map(bucket => names.delayQueue(queue, bucket));
}

async function cleanup(): Promise<void> {
  const names = topology(prefix);
  const queue = `${runId}.q`;
  await deleteQueues(url!, [
    names.workQueue(queue),
    names.deadLetterStream,
    ...delayBuckets(queue),
  ]);
  const db = await openDatabase({ url: databaseUrl! });
  try {
    await db.exec(`drop schema if exists ${schema} cascade`);
  } finally {
    await db.close();
  }
}

describe.skipIf(missing.length > 0)('rabbitmq', () => {
  describeCrashScenario('RabbitMQ', () => ({
    open: openCrashSubject,
    subjectModule: builtCopyOf(fileURLToPath(new URL('./crash-worker.ts', import.meta.url))),
    params: { url: url!, prefix, databaseUrl: databaseUrl!, schema },
    runId,
    total: 10_000,
    cleanup,
  }));
});
