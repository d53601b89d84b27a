import { describeQueueBackendContract } from '@bulwark/messaging/contract';
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

describe('on PGlite, which runs no autovacuum', () => {
  it('vacuums its messages table as it goes: the table stops growing under a steady churn', async () => {
    // A schema of its own: the sizes must not depend on the other tests' messages.
    const own = await postgresQueueBackend({ db, schema: 'vacuumed_queue' });
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const queue = `churn-${round}`;
      const now = Date.now();
      await own.enqueue(
        Array.from({ length: 2_500 }, (_, i) => ({
          id: `${queue}-${i}`,
          queue,
          type: 't',
          payload: { i },
          headers: {},
          availableAt: now,
          firstSeenAt: now,
        })),
      );
      for (;;) {
        const { deliveries } = await own.fetch({ queue, limit: 100, leaseMs: 30_000, now });
        if (deliveries.length === 0) break;
        const acked = await own.ackMany(
          deliveries.map(d => d.lease),
          now,
        );
        expect(acked).toHaveLength(deliveries.length);
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
});
