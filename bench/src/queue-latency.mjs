/**
 * Enqueue-to-handler latency of `@bulwark/messaging` on `@bulwark/postgres`, in one process: the
 * time from just before `producer.send()` to the start of the handler, one message at a time
 * (the next is sent once the previous one reached its handler), so every message finds the
 * consumer idle and the figure is the wake-up path, not a backlog.
 *
 *   pglite           PGlite in memory; producer and consumer share the handle (in-process wake-up)
 *   postgres         PostgreSQL; producer and consumer share the handle (in-process wake-up)
 *   postgres-notify  PostgreSQL; the producer has its own handle (as another process would), so the
 *                    consumer is woken by NOTIFY through the backend's LISTEN connection (listenUrl)
 *
 * The consumer's pollIntervalMs stays at its default (1 s): a missing wake-up shows as ~0.5 s.
 *
 *   node --expose-gc src/queue-latency.mjs --variant pglite [--quick]
 */
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { runScenario } from './lib.mjs';
import {
  dropSchema,
  OPERATION_TIMEOUT_MS,
  optionalImport,
  payload,
  percentile,
  requireEnv,
  uniqueName,
} from './queue-lib.mjs';

const messaging = await optionalImport('@bulwark/messaging');
const postgres = await optionalImport('@bulwark/postgres');
const DATABASE_URL = process.env.DATABASE_URL;

const requiresBulwark = () =>
  typeof postgres?.postgresQueueBackend === 'function' && typeof messaging?.consume === 'function'
    ? undefined
    : '@bulwark/postgres or @bulwark/messaging is not built (npx tsc -b adapters/postgres)';
const requiresUrl = requireEnv('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test');
const both = () => requiresUrl() ?? requiresBulwark();

const variants = {
  pglite: {
    label: 'PGlite in memory, producer and consumer on one handle (in-process wake-up)',
    lib: '@bulwark/postgres',
    role: 'subject',
    requires: requiresBulwark,
    engine: 'pglite',
    notify: false,
  },
  postgres: {
    label: 'PostgreSQL, producer and consumer on one handle (in-process wake-up)',
    lib: '@bulwark/postgres',
    role: 'subject',
    requires: both,
    engine: 'postgres',
    notify: false,
  },
  'postgres-notify': {
    label: 'PostgreSQL, producer on its own handle, consumer woken by LISTEN/NOTIFY (listenUrl)',
    lib: '@bulwark/postgres',
    role: 'subject',
    requires: both,
    engine: 'postgres',
    notify: true,
  },
};

function phases(quick) {
  return quick ? { warmup: 20, timed: 100 } : { warmup: 100, timed: 1_000 };
}

await runScenario(import.meta, 'queue-latency', variants, async (variant, { quick }) => {
  const { warmup, timed } = phases(quick);
  const schema = uniqueName('bench_latency');
  const queue = uniqueName('q');
  const open = () =>
    variant.engine === 'pglite'
      ? postgres.openPglite()
      : postgres.openDatabase({ url: DATABASE_URL });
  const db = await open();
  const backend = await postgres.postgresQueueBackend({
    db,
    schema,
    ...(variant.notify ? { listenUrl: DATABASE_URL } : {}),
  });
  // The producer's own handle and backend when the wake-up must cross "processes".
  const producerDb = variant.notify ? await open() : db;
  const producerBackend = variant.notify
    ? await postgres.postgresQueueBackend({ db: producerDb, schema, migrate: false })
    : backend;
  const producer = messaging.createProducer({ backend: producerBackend });

  let waiting; // { i, resolve } of the message in flight
  const consumer = messaging.consume({
    backend,
    queue,
    maxAttempts: 3,
    handler: message => {
      const at = performance.now();
      if (waiting !== undefined && message.payload.n === waiting.i) waiting.resolve(at);
    },
  });
  const latenciesUs = new Float64Array(timed);
  try {
    // Let the subscription (and on postgres-notify the LISTEN connection) be in place first.
    await consumer.whenIdle();
    for (let i = 0; i < warmup + timed; i++) {
      const arrived = new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`message ${i} did not reach its handler in time`)),
          OPERATION_TIMEOUT_MS,
        );
        waiting = {
          i,
          resolve: at => {
            clearTimeout(timer);
            resolve(at);
          },
        };
      });
      const sentAt = performance.now();
      await producer.send({ queue, type: 'bench', payload: payload(i) });
      const at = await arrived;
      if (i >= warmup) latenciesUs[i - warmup] = (at - sentAt) * 1000;
    }
  } finally {
    await consumer.stop();
    await backend.close();
    await producerBackend.close();
    if (producerDb !== db) await producerDb.close();
    await db.close();
    if (variant.engine === 'postgres') await dropSchema(DATABASE_URL, schema);
  }
  const sorted = Float64Array.from(latenciesUs).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    engine: variant.engine,
    notify: variant.notify,
    warmup,
    messages: timed,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    meanUs: sum / sorted.length,
    maxUs: sorted[sorted.length - 1],
  };
});
