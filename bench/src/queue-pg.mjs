/**
 * Queues on PostgreSQL: `@bulwark/postgres`'s queue backend (with `@bulwark/messaging`'s producer
 * and consumer) against pg-boss 12, on the same engine: embedded PGlite (in memory, one instance
 * per process) and a PostgreSQL server (DATABASE_URL, a pool of 10 connections on both sides).
 * One run of one variant measures, in this order, on fresh queues:
 *
 *   bulk            enqueue N messages in batches of 1,000 (bulwark sendBatch, pg-boss insert)
 *   single          enqueue 1,000 messages one at a time, sequentially (send, send)
 *   process         handle and complete the N bulk messages at concurrency 100 (bulwark consume()
 *                   with concurrency = prefetch = 100; pg-boss work() with batchSize 100 and
 *                   burstWhenBatchFull, one worker)
 *   fetch-complete  the same N messages through a loop of fetch 100 + complete those 100 (bulwark
 *                   backend.fetch + ackMany of the 100; pg-boss fetch({ batchSize: 100 }) + complete(ids))
 *
 * after a warm-up of every operation on a separate queue. Every handled id is counted once and
 * the queue must be empty at the end.
 *
 *   node --expose-gc src/queue-pg.mjs --variant bulwark-pglite [--quick]
 */
import process from 'node:process';
import { runScenario } from './lib.mjs';
import {
  bulwarkQueueSubject,
  completionTracker,
  CONCURRENCY,
  dropSchema,
  optionalImport,
  payload,
  perSecond,
  requireEnv,
  sizes,
  timed,
  uniqueName,
} from './queue-lib.mjs';

const messaging = await optionalImport('@bulwark/messaging');
const postgres = await optionalImport('@bulwark/postgres');
const pgBoss = await optionalImport('pg-boss');
const pglite = await optionalImport('@electric-sql/pglite');

const DATABASE_URL = process.env.DATABASE_URL;
/** Pool size on PostgreSQL, both libraries (bulwark's openDatabase and pg-boss default to 10). */
const POOL = 10;

const requiresBulwark = () => {
  if (typeof postgres?.postgresQueueBackend !== 'function') {
    return '@bulwark/postgres is not built or has no postgresQueueBackend (npx tsc -b adapters/postgres)';
  }
  if (typeof messaging?.consume !== 'function') return '@bulwark/messaging is not built';
  return undefined;
};
const requiresPgBoss = () =>
  typeof pgBoss?.PgBoss === 'function' ? undefined : 'pg-boss is not installed';
const requiresUrl = requireEnv('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test');
const all =
  (...checks) =>
  () => {
    for (const check of checks) {
      const missing = check();
      if (missing) return missing;
    }
    return undefined;
  };

const variants = {
  'bulwark-pglite': {
    label: '@bulwark/postgres queue backend on PGlite (in memory), producer + consume()',
    lib: '@bulwark/postgres',
    role: 'subject',
    engine: 'pglite',
    requires: requiresBulwark,
    open: () => openBulwark('pglite'),
  },
  'pgboss-pglite': {
    label: 'pg-boss 12 on PGlite (in memory) via fromPglite, backend: pglite',
    lib: 'pg-boss',
    role: 'baseline',
    engine: 'pglite',
    requires: all(requiresPgBoss, () =>
      typeof pglite?.PGlite === 'function' ? undefined : '@electric-sql/pglite is not installed',
    ),
    open: () => openPgBoss('pglite'),
  },
  'bulwark-postgres': {
    label: `@bulwark/postgres queue backend on PostgreSQL (pool of ${POOL}), producer + consume()`,
    lib: '@bulwark/postgres',
    role: 'subject',
    engine: 'postgres',
    requires: all(requiresUrl, requiresBulwark),
    open: () => openBulwark('postgres'),
  },
  'pgboss-postgres': {
    label: `pg-boss 12 on PostgreSQL (pool of ${POOL})`,
    lib: 'pg-boss',
    role: 'baseline',
    engine: 'postgres',
    requires: all(requiresUrl, requiresPgBoss),
    open: () => openPgBoss('postgres'),
  },
};

// ---- bulwark --------------------------------------------------------------------------------

async function openBulwark(engine) {
  const schema = uniqueName('bench_bulwark');
  const db =
    engine === 'pglite'
      ? await postgres.openPglite()
      : await postgres.openDatabase({ url: DATABASE_URL, maxConnections: POOL });
  const backend = await postgres.postgresQueueBackend({ db, schema });
  const producer = messaging.createProducer({ backend });
  const record = (queue, i) => ({ queue, type: 'bench', payload: payload(i) });
  // bulk / process / remaining / close as on every backend (queue-lib.mjs).
  const common = bulwarkQueueSubject(messaging, backend, async () => {
    await db.close();
    if (engine === 'postgres') await dropSchema(DATABASE_URL, schema);
  });
  return {
    bulk: common.enqueue,
    async single(queue, count) {
      for (let i = 0; i < count; i++) await producer.send(record(queue, i));
    },
    process: common.process,
    async fetchComplete(queue, count) {
      let done = 0;
      while (done < count) {
        const { deliveries } = await backend.fetch({
          queue,
          limit: CONCURRENCY,
          leaseMs: 30_000,
          now: Date.now(),
        });
        if (deliveries.length === 0) throw new Error(`queue ran dry after ${done} of ${count}`);
        // The port's batch ack, as pg-boss's complete(ids): one statement for the 100.
        const acked = await backend.ackMany(
          deliveries.map(d => d.lease),
          Date.now(),
        );
        if (acked.length !== deliveries.length) {
          throw new Error('a settlement was refused (stale lease)');
        }
        done += deliveries.length;
      }
    },
    remaining: common.remaining,
    close: common.close,
  };
}

// ---- pg-boss --------------------------------------------------------------------------------

/**
 * A PGlite for pg-boss with the settings `@bulwark/postgres`'s `openPglite()` gives its in-memory
 * instances (`wal_init_zero = off`, see that package's README), so both libraries run on the same
 * engine configured the same way.
 */
async function pgliteForPgBoss() {
  const instance = await pglite.PGlite.create();
  await instance.exec('set wal_init_zero = off');
  return instance;
}

async function openPgBoss(engine) {
  const schema = uniqueName('bench_pgboss');
  let instance;
  const common = { schema, supervise: false, schedule: false };
  const boss =
    engine === 'pglite'
      ? new pgBoss.PgBoss({
          ...common,
          db: pgBoss.fromPglite((instance = await pgliteForPgBoss())),
          backend: 'pglite',
        })
      : new pgBoss.PgBoss({ ...common, connectionString: DATABASE_URL, max: POOL });
  // pg-boss emits 'error' for worker and maintenance failures; an unhandled one would crash.
  let lastError;
  boss.on('error', error => {
    lastError = error;
  });
  await boss.start();
  const created = new Set();
  const ensureQueue = async queue => {
    if (created.has(queue)) return;
    created.add(queue);
    await boss.createQueue(queue);
  };
  return {
    async bulk(queue, count, batch) {
      await ensureQueue(queue);
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i);
        await boss.insert(
          queue,
          Array.from({ length: n }, (_, j) => ({ data: payload(i + j) })),
        );
      }
    },
    async single(queue, count) {
      await ensureQueue(queue);
      for (let i = 0; i < count; i++) await boss.send(queue, payload(i));
    },
    async process(queue, count) {
      const tracker = completionTracker(count);
      // One worker fetching 100 at a time (the handler gets the 100 at once, as bulwark runs 100
      // handlers at once); burstWhenBatchFull fetches again at once after a full batch instead
      // of waiting out the polling interval, which is pg-boss's fastest setting for a backlog.
      await boss.work(
        queue,
        { batchSize: CONCURRENCY, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
        async jobs => {
          for (const job of jobs) tracker.handled(job.id);
        },
      );
      try {
        await tracker.done;
      } finally {
        // wait: true lets the batch in hand finish, completion included.
        await boss.offWork(queue, { wait: true });
      }
      if (lastError !== undefined) throw lastError;
    },
    async fetchComplete(queue, count) {
      let done = 0;
      while (done < count) {
        const jobs = await boss.fetch(queue, { batchSize: CONCURRENCY });
        if (jobs.length === 0) throw new Error(`queue ran dry after ${done} of ${count}`);
        await boss.complete(
          queue,
          jobs.map(j => j.id),
        );
        done += jobs.length;
      }
    },
    async remaining(queue) {
      // Completed jobs stay in the table until retention; everything else is unfinished.
      const jobs = await boss.findJobs(queue, { limit: 100_000 });
      return jobs.filter(job => job.state !== 'completed').length;
    },
    async close() {
      await boss.stop({ graceful: false, close: true });
      await instance?.close();
      if (engine === 'postgres') await dropSchema(DATABASE_URL, schema);
    },
  };
}

// ---- measurement ----------------------------------------------------------------------------

await runScenario(import.meta, 'queue-pg', variants, async (variant, { quick }) => {
  const n = sizes(quick);
  const q = uniqueName('q');
  const { value: subject, elapsedNs: openNs } = await timed(() => variant.open());
  try {
    // Warm-up: every operation once on its own queue (JIT, prepared plans, pool connections).
    await subject.bulk(`${q}_warm`, n.warmup, Math.min(n.warmup, n.bulkBatch));
    await subject.single(`${q}_warm1`, Math.ceil(n.single / 10));
    await subject.bulk(`${q}_warm2`, n.warmup, Math.min(n.warmup, n.bulkBatch));
    // Separate queues: a worker stopped at a count may have fetched one batch more.
    await subject.process(`${q}_warm`, n.warmup / 2);
    await subject.fetchComplete(`${q}_warm2`, n.warmup / 2);
    globalThis.gc?.();

    const bulk = await timed(() => subject.bulk(`${q}_a`, n.bulk, n.bulkBatch));
    const single = await timed(() => subject.single(`${q}_b`, n.single));
    const proc = await timed(() => subject.process(`${q}_a`, n.bulk));
    const leftA = await subject.remaining(`${q}_a`);
    await subject.bulk(`${q}_c`, n.bulk, n.bulkBatch);
    const loop = await timed(() => subject.fetchComplete(`${q}_c`, n.bulk));
    const leftC = await subject.remaining(`${q}_c`);
    if (leftA !== 0 || leftC !== 0) {
      return { error: `messages left after processing: ${leftA} (process), ${leftC} (loop)` };
    }
    return {
      engine: variant.engine,
      messages: n.bulk,
      bulkBatch: n.bulkBatch,
      single: n.single,
      concurrency: CONCURRENCY,
      openMs: openNs / 1e6,
      ops: {
        bulk: perSecond(n.bulk, bulk.elapsedNs),
        single: perSecond(n.single, single.elapsedNs),
        process: perSecond(n.bulk, proc.elapsedNs),
        'fetch-complete': perSecond(n.bulk, loop.elapsedNs),
      },
    };
  } finally {
    await subject.close();
  }
});
