/**
 * Queues on Redis: `@bulwark/redis`'s queue backend (with `@bulwark/messaging`'s producer and
 * consumer) against BullMQ 6 (Queue + Worker) on the same Redis (REDIS_URL). One run of one
 * variant, on fresh queues with a unique key prefix:
 *
 *   enqueue   N messages in batches of 1,000 (bulwark sendBatch, BullMQ addBulk); for context
 *   process   handle and complete those N at concurrency 100 (bulwark consume() with
 *             concurrency = prefetch = 100; BullMQ Worker with concurrency 100), from the start
 *             of the consumer/worker until the last one is settled
 *
 * after a warm-up of both on a separate queue. Completed jobs are removed on both sides (bulwark's
 * ack deletes; BullMQ jobs get removeOnComplete: true), and both allow 3 attempts. Every handled
 * id is counted once and the queue must be empty at the end. The bulwark variant is `n/a` until
 * `@bulwark/redis` exports `redisQueueBackend`.
 *
 *   node --expose-gc src/queue-redis.mjs --variant bullmq [--quick]
 */
import process from 'node:process';
import { runScenario } from './lib.mjs';
import {
  bulwarkQueueSubject,
  completionTracker,
  CONCURRENCY,
  measureEnqueueAndProcess,
  optionalImport,
  payload,
  requireEnv,
  requiresBulwarkAdapter,
  uniqueName,
} from './queue-lib.mjs';

const messaging = await optionalImport('@bulwark/messaging');
const redisAdapter = await optionalImport('@bulwark/redis');
const bullmq = await optionalImport('bullmq');
const ioredis = await optionalImport('ioredis');

const REDIS_URL = process.env.REDIS_URL;
const requiresUrl = requireEnv('REDIS_URL', 'redis://127.0.0.1:6379');

const variants = {
  bulwark: {
    label: '@bulwark/redis queue backend, producer + consume()',
    lib: '@bulwark/redis',
    role: 'subject',
    requires: requiresBulwarkAdapter(
      requiresUrl,
      messaging,
      redisAdapter,
      'redisQueueBackend',
      '@bulwark/redis',
    ),
    open: openBulwark,
  },
  bullmq: {
    label: 'BullMQ 6 Queue.addBulk + Worker({ concurrency: 100 }), removeOnComplete',
    lib: 'bullmq',
    role: 'baseline',
    requires: () =>
      requiresUrl() ??
      (typeof bullmq?.Worker === 'function' ? undefined : 'bullmq is not installed'),
    open: openBullmq,
  },
};

function client() {
  // BullMQ needs maxRetriesPerRequest: null on the connections its Worker blocks on.
  return new ioredis.Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

/** Deletes every key whose name contains `prefix` (SCAN, not KEYS: the server is shared). */
async function deleteKeys(prefix) {
  const redis = client();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch (error) {
    process.stderr.write(`bench: could not delete keys ${prefix}*: ${String(error)}\n`);
  } finally {
    redis.disconnect();
  }
}

async function openBulwark() {
  const prefix = uniqueName('bench-bulwark');
  const backend = await redisAdapter.redisQueueBackend({ url: REDIS_URL, prefix });
  return bulwarkQueueSubject(messaging, backend, () => deleteKeys(prefix));
}

async function openBullmq() {
  const prefix = uniqueName('bench-bullmq');
  const connection = client();
  const queues = new Map();
  const queueOf = name => {
    let queue = queues.get(name);
    if (queue === undefined) {
      queue = new bullmq.Queue(name, {
        connection,
        prefix,
        defaultJobOptions: { removeOnComplete: true, attempts: 3 },
      });
      queues.set(name, queue);
    }
    return queue;
  };
  return {
    async enqueue(name, count, batch) {
      const queue = queueOf(name);
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i);
        await queue.addBulk(
          Array.from({ length: n }, (_, j) => ({ name: 'bench', data: payload(i + j) })),
        );
      }
    },
    async process(name, count) {
      const tracker = completionTracker(count);
      const worker = new bullmq.Worker(
        name,
        async job => {
          tracker.handled(job.id);
        },
        { connection, prefix, concurrency: CONCURRENCY, autorun: false },
      );
      let failure;
      worker.on('error', error => {
        failure = error;
      });
      const running = worker.run().catch(error => {
        failure = error;
      });
      try {
        await tracker.done;
      } finally {
        await worker.close(); // waits for the active jobs to be completed
        await running;
      }
      if (failure !== undefined) {
        throw failure instanceof Error ? failure : new Error(String(failure));
      }
    },
    async remaining(name) {
      const counts = await queueOf(name).getJobCounts(
        'waiting',
        'active',
        'delayed',
        'prioritized',
        'waiting-children',
      );
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    async close() {
      for (const queue of queues.values()) {
        await queue.obliterate({ force: true }).catch(() => {});
        await queue.close();
      }
      connection.disconnect();
      await deleteKeys(prefix);
    },
  };
}

await runScenario(import.meta, 'queue-redis', variants, async (variant, { quick }) =>
  measureEnqueueAndProcess(await variant.open(), quick),
);
