import { createProducer } from '@bulwark/messaging';
import { describeQueueBackendContract, wakeOnlyConsumer } from '@bulwark/messaging/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type SqlDatabase } from '../db/index.js';
import { postgresQueueBackend, type PostgresQueueBackend } from './backend.js';

const url = process.env.DATABASE_URL;
if (url === undefined) {
  console.warn(
    'backend.int.test.ts skipped: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test',
  );
}
// A schema of our own per run, dropped afterwards, so parallel runs and files never collide.
const schema = `bw_msg_${process.pid}_${Date.now().toString(36)}`;

describe.skipIf(url === undefined)('postgres queue backend', () => {
  let db: SqlDatabase;
  let backend: PostgresQueueBackend;

  beforeAll(async () => {
    db = await openDatabase({ url: url! });
    backend = await postgresQueueBackend({ db, schema, listenUrl: url! });
  }, 30_000);

  afterAll(async () => {
    await backend?.close();
    await db?.exec(`drop schema if exists ${schema} cascade`);
    await db?.close();
  });

  describeQueueBackendContract('postgres', () => ({ backend }));

  it('wakes consumers in another process through LISTEN/NOTIFY: every queue of a batch, and a single send', async () => {
    // A second pool and backend stand in for another process: no in-process wake-up is shared.
    const otherDb = await openDatabase({ url: url! });
    try {
      const other = await postgresQueueBackend({ db: otherDb, schema, migrate: false });
      const stamp = Date.now().toString(36);
      const queues = [`wake-a-${stamp}`, `wake-b-${stamp}`, `wake-c-${stamp}`];
      const consumers = queues.map(queue => ({ queue, ...wakeOnlyConsumer(backend, queue) }));
      for (const { consumer } of consumers) await consumer.whenIdle();
      // One batch into both queues (the second queue's message last): each queue is notified.
      const producer = createProducer({ backend: other });
      await producer.sendBatch([
        { queue: queues[0]!, type: 't', payload: 1 },
        { queue: queues[1]!, type: 't', payload: 2 },
      ]);
      // One message: its own statement, with the wake-up in a CTE.
      await producer.send({ queue: queues[2]!, type: 't', payload: 3 });
      for (const { queue, consumer, delivered } of consumers) {
        await delivered;
        await consumer.stop();
        expect((await backend.stats(queue, Date.now())).ready).toBe(0);
      }
    } finally {
      await otherDb.close();
    }
  });

  it('loads a batch of 200 or more by COPY; a NOTIFY failing after it does not fail the send', async () => {
    let copies = 0;
    let failNotify = false;
    // The real pool, watched: copyFrom counted, and the wake-up made to fail on demand.
    const watched = new Proxy(db, {
      get(target, key) {
        if (key === 'copyFrom') {
          return (...args: Parameters<SqlDatabase['copyFrom']>) => {
            copies++;
            return target.copyFrom(...args);
          };
        }
        if (key === 'query') {
          return (text: string, params?: readonly unknown[]) =>
            failNotify && text.includes('pg_notify')
              ? Promise.reject(new Error('connection lost'))
              : target.query(text, params);
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const own = await postgresQueueBackend({ db: watched, schema, migrate: false });
    const producer = createProducer({ backend: own });
    const queue = `copy-${Date.now().toString(36)}`;
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ queue, type: 't', payload: i }));
    await producer.sendBatch(batch(199));
    expect(copies).toBe(0);
    await producer.sendBatch(batch(200));
    expect(copies).toBe(1);
    failNotify = true;
    // The rows are committed before the wake-up is sent: the send has succeeded.
    await producer.sendBatch(batch(250));
    expect(copies).toBe(2);
    expect((await own.stats(queue, Date.now())).ready).toBe(649);
    await own.close();
  });

  it('SKIP LOCKED: two concurrent fetches never lease the same message', async () => {
    const queue = `skip-${Date.now().toString(36)}`;
    const producer = createProducer({ backend });
    await producer.sendBatch(
      Array.from({ length: 50 }, (_, i) => ({ queue, type: 't', payload: i })),
    );
    const now = Date.now();
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => backend.fetch({ queue, limit: 20, leaseMs: 10_000, now })),
    );
    const ids = results.flatMap(r => r.deliveries.map(d => d.message.id));
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
  });
});
