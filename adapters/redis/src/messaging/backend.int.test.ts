/**
 * The queue backend contract against a real Redis (REDIS_URL), plus what is specific to Redis:
 * wake-ups across processes through PUBLISH, concurrent fetches, the stream's consumer group,
 * and driver errors. Every run uses its own key prefix and deletes its keys afterwards.
 */
import { createProducer } from '@bulwark/messaging';
import { describeQueueBackendContract, wakeOnlyConsumer } from '@bulwark/messaging/contract';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisQueueBackend, type RedisQueueBackend } from './backend.js';
import { queueKeys } from './keys.js';

const url = process.env.REDIS_URL;
if (url === undefined) {
  console.warn('backend.int.test.ts skipped: set REDIS_URL=redis://127.0.0.1:6379');
}
const prefix = `bw-test-${process.pid}-${Date.now().toString(36)}`;

async function deleteKeys(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

describe.skipIf(url === undefined)('redis queue backend', () => {
  let admin: Redis;
  let backend: RedisQueueBackend;

  beforeAll(() => {
    admin = new Redis(url!);
    backend = redisQueueBackend({ redis: admin, prefix });
  });

  afterAll(async () => {
    await backend?.close();
    await deleteKeys(admin, `{${prefix}*`);
    await admin?.quit();
  });

  describeQueueBackendContract('redis', () => ({ backend }));

  it('wakes a consumer in another process through PUBLISH, not its poll', async () => {
    // A second backend on its own connection stands in for another process.
    const other = redisQueueBackend({ url: url!, prefix });
    try {
      const queue = `wake-${Date.now().toString(36)}`;
      const { consumer, delivered } = wakeOnlyConsumer(backend, queue);
      await consumer.whenIdle();
      await createProducer({ backend: other }).send({ queue, type: 't', payload: 1 });
      await delivered;
      await consumer.stop();
      expect((await backend.stats(queue, Date.now())).ready).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('concurrent fetches from several connections never lease the same message', async () => {
    const queue = `race-${Date.now().toString(36)}`;
    const others = [1, 2, 3].map(() => redisQueueBackend({ url: url!, prefix, wakeUps: 'local' }));
    try {
      await createProducer({ backend }).sendBatch(
        Array.from({ length: 60 }, (_, i) => ({ queue, type: 't', payload: i })),
      );
      const now = Date.now();
      const results = await Promise.all(
        [backend, ...others].map(b => b.fetch({ queue, limit: 20, leaseMs: 10_000, now })),
      );
      const ids = results.flatMap(r => r.deliveries.map(d => d.message.id));
      expect(ids).toHaveLength(60);
      expect(new Set(ids).size).toBe(60);
      expect(await backend.stats(queue, now)).toEqual({
        ready: 0,
        scheduled: 0,
        leased: 60,
        dead: 0,
      });
    } finally {
      await Promise.all(others.map(b => b.close()));
    }
  });

  it('delivers through the consumer group: leased entries are pending, settled ones are gone', async () => {
    const queue = `group-${Date.now().toString(36)}`;
    const { stream } = queueKeys(prefix, queue);
    await createProducer({ backend }).sendBatch([
      { queue, type: 't', payload: 1 },
      { queue, type: 't', payload: 2 },
    ]);
    const now = Date.now();
    const { deliveries } = await backend.fetch({ queue, limit: 5, leaseMs: 1_000, now });
    expect(deliveries).toHaveLength(2);
    const pending = (await admin.xpending(stream, 'bulwark')) as [number, ...unknown[]];
    expect(pending[0]).toBe(2);
    for (const d of deliveries) {
      expect(await backend.settle(d.lease, { kind: 'ack' }, now + 1)).toBe(true);
    }
    expect(((await admin.xpending(stream, 'bulwark')) as [number])[0]).toBe(0);
    expect(await admin.xlen(stream)).toBe(0);
  });

  it('keeps payload JSON exactly (empty arrays and objects, long decimals, unicode)', async () => {
    const queue = `json-${Date.now().toString(36)}`;
    const payload = { a: [], o: {}, n: 0.1 + 0.2, big: 2 ** 53 - 1, s: 'żółw 🐢 "q" \\ /' };
    await createProducer({ backend }).send({ queue, type: 't', payload, headers: {} });
    const { deliveries } = await backend.fetch({
      queue,
      limit: 1,
      leaseMs: 1_000,
      now: Date.now(),
    });
    expect(deliveries[0]?.message.payload).toEqual(payload);
    expect(deliveries[0]?.message.headers).toEqual({});
  });

  it('keeps queues whose names contain hash tag braces apart', async () => {
    const base = `braces-${Date.now().toString(36)}`;
    const producer = createProducer({ backend });
    await producer.send({ queue: `${base}}x`, type: 't', payload: 'one' });
    await producer.send({ queue: `${base}`, type: 't', payload: 'two' });
    const now = Date.now();
    const a = await backend.fetch({ queue: `${base}}x`, limit: 5, leaseMs: 1_000, now });
    const b = await backend.fetch({ queue: base, limit: 5, leaseMs: 1_000, now });
    expect(a.deliveries.map(d => d.message.payload)).toEqual(['one']);
    expect(b.deliveries.map(d => d.message.payload)).toEqual(['two']);
  });

  it('refuses a token of another queue or a malformed one', async () => {
    const queue = `fence-${Date.now().toString(36)}`;
    await createProducer({ backend }).send({ queue, type: 't', payload: 1 });
    const now = Date.now();
    const [d] = (await backend.fetch({ queue, limit: 1, leaseMs: 1_000, now })).deliveries;
    const lease = d!.lease;
    expect(await backend.settle({ id: lease.id, token: 'nonsense' }, { kind: 'ack' }, now)).toBe(
      false,
    );
    const forged = { id: lease.id, token: `${lease.token.split(':')[0]!}:other-queue` };
    expect(await backend.settle(forged, { kind: 'ack' }, now)).toBe(false);
    expect(await backend.settle(lease, { kind: 'ack' }, now)).toBe(true);
  });

  it('recovery leaves alone a lease that was extended after it was found expired', async () => {
    const queue = `extend-race-${Date.now().toString(36)}`;
    await createProducer({ backend }).send({ queue, type: 't', payload: 1 });
    const t0 = Date.now();
    const [d] = (await backend.fetch({ queue, limit: 1, leaseMs: 100, now: t0 })).deliveries;
    let extended: Promise<readonly string[]> | undefined;
    const recovered = await backend.recoverExpiredLeases({
      queue,
      now: t0 + 200,
      limit: 10,
      decide: () => {
        // The heartbeat lands between the look-up and the settlement (same connection, so it
        // reaches Redis first): the recovery must see the new expiry and back off.
        extended = backend.extendLeases([d!.lease], 10_000, t0 + 200);
        return { kind: 'retry', delayMs: 0, error: { code: 'LEASE_EXPIRED', message: 'x' } };
      },
    });
    expect(await extended).toEqual([d!.message.id]);
    expect(recovered).toBe(0);
    expect(await backend.settle(d!.lease, { kind: 'ack' }, t0 + 300)).toBe(true);
  });

  it('close() removes its consumer from the groups it used when it holds nothing', async () => {
    const queue = `forget-${Date.now().toString(36)}`;
    const { stream } = queueKeys(prefix, queue);
    const own = redisQueueBackend({ url: url!, prefix, consumerName: 'short-lived' });
    await createProducer({ backend: own }).send({ queue, type: 't', payload: 1 });
    const [d] = (await own.fetch({ queue, limit: 1, leaseMs: 1_000, now: Date.now() })).deliveries;
    const names = async () =>
      ((await admin.xinfo('CONSUMERS', stream, 'bulwark')) as unknown[][]).map(c => c[1]);
    expect(await names()).toEqual(['short-lived']);
    await own.settle(d!.lease, { kind: 'ack' }, Date.now());
    await own.close();
    expect(await names()).toEqual([]);
  });

  it('translates driver errors into BACKEND_ERROR with the cause', async () => {
    const broken = new Redis(url!, { lazyConnect: true });
    const b = redisQueueBackend({ redis: broken, prefix });
    broken.disconnect(); // closed by hand: every command now fails
    await expect(b.stats('q', Date.now())).rejects.toMatchObject({
      code: 'BACKEND_ERROR',
      retryable: true,
      cause: expect.any(Error),
    });
    await b.close();
  });
});
