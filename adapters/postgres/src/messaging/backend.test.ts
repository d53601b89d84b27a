import { describeQueueBackendContract } from '@bulwark/messaging/contract';
import type { EnqueueRecord } from '@bulwark/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** `count` messages for `queue`, available at `now`. */
function records(queue: string, count: number, now: number): EnqueueRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${queue}-${i}`,
    queue,
    type: 't',
    payload: { i },
    headers: {},
    availableAt: now,
    firstSeenAt: now,
  }));
}

/** One fetch of up to 100 and the ack of all of them; resolves how many. */
async function fetchAndAck(on: PostgresQueueBackend, queue: string, now: number): Promise<number> {
  const { deliveries } = await on.fetch({ queue, limit: 100, leaseMs: 30_000, now });
  const acked = await on.ackMany(
    deliveries.map(d => d.lease),
    now,
  );
  expect(acked).toHaveLength(deliveries.length);
  return deliveries.length;
}

describe('on PGlite, which runs no autovacuum', () => {
  it('vacuums its messages table as it goes: the table stops growing under a steady churn', async () => {
    // A schema of its own: the sizes must not depend on the other tests' messages.
    const own = await postgresQueueBackend({ db, schema: 'vacuumed_queue' });
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const queue = `churn-${round}`;
      const now = Date.now();
      await own.enqueue(records(queue, 2_500, now));
      while ((await fetchAndAck(own, queue, now)) > 0) {
        // until the queue is empty
      }
      const { rows } = await db.query<{ n: number }>(
        `select pg_total_relation_size('vacuumed_queue.messages')::float8 as n`,
      );
      sizes.push(rows[0]!.n);
    }
    // Each round leaves 5,000 dead row versions (a fetch and an ack per message). Unvacuumed the
    // table grew ~1 MB every round (1.17 MB after the first, 6.5 MB after the sixth); vacuumed,
    // the dead versions' space takes the next round's rows.
    expect(sizes[5]).toBe(sizes[3]);
    expect(sizes[5]).toBeLessThan(3 * sizes[0]!);
  }, 60_000);

  it('vacuums before a fetch, so a failing vacuum fails the fetch before it leased anything', async () => {
    let failVacuum = true;
    // The real PGlite, with only its VACUUM made to fail (as a full disk would).
    const failing = new Proxy(db, {
      get(target, key) {
        if (key === 'exec') {
          return (script: string) =>
            failVacuum && script.startsWith('vacuum')
              ? Promise.reject(new Error('vacuum failed: disk full'))
              : target.exec(script);
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const own = await postgresQueueBackend({ db: failing, schema: 'vacuum_fails' });
    const now = Date.now();
    await own.enqueue(records('warm', 2_500, now));
    // 25 fetches and acks of 100: 5,000 changed rows, so the next fetch vacuums first.
    for (let i = 0; i < 25; i++) expect(await fetchAndAck(own, 'warm', now)).toBe(100);
    await own.enqueue(records('q', 1, now));
    await expect(own.fetch({ queue: 'q', limit: 10, leaseMs: 30_000, now })).rejects.toThrow(
      'disk full',
    );
    expect(await own.stats('q', now)).toMatchObject({ ready: 1, leased: 0 });
    failVacuum = false;
    const { deliveries } = await own.fetch({ queue: 'q', limit: 10, leaseMs: 30_000, now });
    // No attempt was spent by the failed fetch.
    expect(deliveries.map(d => d.message.attempt)).toEqual([1]);
  }, 60_000);
});
