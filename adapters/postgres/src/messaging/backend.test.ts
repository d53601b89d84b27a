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

describe('ackMany', () => {
  it('acks every current lease in one statement and leaves a stale one alone', async () => {
    const queue = `ack-many-${Date.now().toString(36)}`;
    const now = Date.now();
    await backend.enqueue(
      [1, 2, 3].map(i => ({
        id: `${queue}-${i}`,
        queue,
        type: 't',
        payload: i,
        headers: {},
        availableAt: now,
        firstSeenAt: now,
      })),
    );
    const { deliveries } = await backend.fetch({ queue, limit: 3, leaseMs: 30_000, now });
    expect(deliveries).toHaveLength(3);
    const leases = deliveries.map(d => d.lease);
    const stale = { id: leases[2]!.id, token: 'not-the-token' };
    const acked = await backend.ackMany([leases[0]!, leases[1]!, stale], now);
    expect([...acked].sort()).toEqual([leases[0]!.id, leases[1]!.id].sort());
    const stats = await backend.stats(queue, now);
    expect(stats).toMatchObject({ ready: 0, leased: 1 });
    expect(await backend.ackMany([], now)).toEqual([]);
  });
});
