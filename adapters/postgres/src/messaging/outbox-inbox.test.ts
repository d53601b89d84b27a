import type { QueueBackend } from '@bulwark/messaging';
import { ContractHarness } from '@bulwark/messaging/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type SqlDatabase } from '../db/index.js';
import { postgresQueueBackend, type PostgresQueueBackend } from './backend.js';
import { inbox } from './inbox.js';
import { outbox, outboxRelay } from './outbox.js';

let db: SqlDatabase;
let backend: PostgresQueueBackend;

beforeAll(async () => {
  db = await openDatabase();
  backend = await postgresQueueBackend({ db });
  await db.exec(`create table orders (id text primary key);
    create table effects (key text not null, order_id text not null)`);
}, 60_000);

afterAll(async () => {
  await db?.close();
});

/** Publishes for real, then fails as if the relay died before marking the rows sent. */
function crashAfterPublish(inner: QueueBackend, times: number): QueueBackend {
  let left = times;
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key !== 'enqueue') return Reflect.get(target, key, receiver) as unknown;
      return async (records: Parameters<QueueBackend['enqueue']>[0]) => {
        await target.enqueue(records);
        if (left-- > 0) throw new Error('relay crashed after publishing');
      };
    },
  });
}

describe('outbox and inbox (PGlite)', () => {
  it('enqueues only when the caller transaction commits', async () => {
    const h = new ContractHarness(backend);
    const box = outbox({ clock: h.clock });
    await expect(
      db.transaction(async tx => {
        await tx.query('insert into orders values ($1)', ['rolled-back']);
        await box.enqueue(tx, { queue: 'orders-rb', type: 'order.placed', payload: {} });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    const relay = outboxRelay({ db, backend, clock: h.clock });
    expect(await relay.runOnce()).toBe(0);
  });

  it('a crash between publish and mark redelivers, and the inbox applies the effect once', async () => {
    const h = new ContractHarness(backend);
    const queue = `orders-${Date.now().toString(36)}`;
    const box = outbox({ clock: h.clock });
    const orderIds = ['o1', 'o2', 'o3'];
    await db.transaction(async tx => {
      for (const id of orderIds) {
        await tx.query('insert into orders values ($1)', [id]);
        await box.enqueue(tx, { queue, type: 'order.placed', payload: { orderId: id } });
      }
    });
    const relay = outboxRelay({
      db,
      backend: crashAfterPublish(backend, 1),
      clock: h.clock,
      claimMs: 1_000,
    });
    await expect(relay.runOnce()).rejects.toThrow('relay crashed');

    const effects = inbox({ db, name: 'test.send-confirmation', clock: h.clock });
    let deliveries = 0;
    let duplicates = 0;
    h.consume<{ orderId: string }>({
      queue,
      maxAttempts: 3,
      handler: async message => {
        deliveries++;
        const result = await effects.handle(message, tx =>
          tx.query('insert into effects values ($1, $2)', [message.id, message.payload.orderId]),
        );
        if (result.duplicate) duplicates++;
      },
    });
    await h.run(100);
    expect(deliveries).toBe(3);

    // The claim has not expired: nothing is published twice yet.
    expect(await relay.runOnce()).toBe(0);
    await h.run(1_000);
    // Claim expired: the same rows (same message ids) are published again, and marked this time.
    expect(await relay.runOnce()).toBe(3);
    expect(await relay.runOnce()).toBe(0);
    await h.run(200);
    expect(deliveries).toBe(6);
    expect(duplicates).toBe(3);
    const { rows } = await db.query<{ order_id: string; n: number }>(
      'select order_id, count(*)::int as n from effects group by order_id order by order_id',
    );
    expect(rows).toEqual(orderIds.map(id => ({ order_id: id, n: 1 })));
    await h.stopAll();
  });

  it('forgets inbox keys after the retention', async () => {
    const h = new ContractHarness(backend);
    const box = inbox({ db, name: 'test.retention', retentionMs: 1_000, clock: h.clock });
    const message = { id: 'm-retention', idempotencyKey: 'k-retention' };
    const effect = () => Promise.resolve('done');
    expect(await box.handle(message, effect)).toEqual({ duplicate: false, value: 'done' });
    expect(await box.handle({ id: 'other-id', idempotencyKey: 'k-retention' }, effect)).toEqual({
      duplicate: true,
    });
    await h.clock.advance(1_001);
    // Other tests in this file share the table: at least our key went.
    expect(await box.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect((await box.handle(message, effect)).duplicate).toBe(false);
  });

  it('the relay vacuums its outbox table on PGlite (no autovacuum there) once enough rows changed', async () => {
    // A schema of its own, so only this test's rows count.
    const schema = 'vacuumed_outbox';
    const own = await postgresQueueBackend({ db, schema });
    const h = new ContractHarness(own);
    const box = outbox({ schema, clock: h.clock });
    const relay = outboxRelay({ db, backend: own, schema, batchSize: 500, clock: h.clock });
    const reltuples = async () =>
      (
        await db.query<{ n: number }>(
          `select reltuples::float8 as n from pg_class where oid = '${schema}.outbox'::regclass`,
        )
      ).rows[0]!.n;
    // -1: never vacuumed (nor analysed).
    expect(await reltuples()).toBe(-1);
    await db.transaction(async tx => {
      await box.enqueue(
        tx,
        Array.from({ length: 2_500 }, (_, i) => ({ queue: 'vac', type: 't', payload: i })),
      );
    });
    let relayed = 0;
    for (let n = await relay.runOnce(); n > 0; n = await relay.runOnce()) relayed += n;
    expect(relayed).toBe(2_500);
    // A claim and a mark per row: 5,000 changed rows, the floor; the last runOnce vacuumed first,
    // and VACUUM records the table's live rows (the sent rows, kept for keepSentMs).
    expect(await reltuples()).toBe(2_500);
  }, 60_000);

  it('purgeExpired vacuums the inbox table on PGlite once a purge deleted 5,000 keys', async () => {
    const schema = 'vacuumed_inbox';
    await postgresQueueBackend({ db, schema }); // creates the schema's tables
    const h = new ContractHarness(backend);
    const box = inbox({ db, schema, name: 'test.vacuum', retentionMs: 1_000, clock: h.clock });
    const reltuples = async () =>
      (
        await db.query<{ n: number }>(
          `select reltuples::float8 as n from pg_class where oid = '${schema}.inbox'::regclass`,
        )
      ).rows[0]!.n;
    for (let i = 0; i < 5_000; i++) await box.handle({ id: `m-${i}` }, () => Promise.resolve());
    await h.clock.advance(1_001);
    expect(await box.purgeExpired()).toBe(5_000);
    expect(await reltuples()).toBe(-1); // never vacuumed yet
    await box.handle({ id: 'kept' }, () => Promise.resolve());
    // The next purge vacuums first: VACUUM records the one live key.
    expect(await box.purgeExpired()).toBe(0);
    expect(await reltuples()).toBe(1);
  }, 60_000);
});
