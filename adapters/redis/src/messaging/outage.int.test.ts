/**
 * A consumer whose Redis goes away (a fault proxy in `down` mode: connections dropped, connects
 * refused) reports BACKEND_ERROR events instead of crashing, and when Redis comes back it resumes
 * on its own and every message is handled, none dead-lettered. Real sockets and the system
 * clock: the test polls for conditions with a bounded wait and asserts outcomes, not timings.
 */
import { consume, createProducer, type ConsumerEvent } from '@bulwark/messaging';
import { startFaultProxy, type FaultProxy } from '@bulwark/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisQueueBackend, type RedisQueueBackend } from './backend.js';

const url = process.env.REDIS_URL;
if (url === undefined) {
  console.warn('messaging/outage.int.test.ts skipped: set REDIS_URL=redis://127.0.0.1:6379');
}
const prefix = `bw-test-outage-${process.pid}-${Date.now().toString(36)}`;

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe.skipIf(url === undefined)('redis queue backend through an outage', () => {
  let admin: Redis;
  let direct: RedisQueueBackend;
  let proxy: FaultProxy;

  beforeAll(async () => {
    admin = new Redis(url!);
    direct = redisQueueBackend({ redis: admin, prefix, wakeUps: 'local' });
    const target = new URL(url!);
    proxy = await startFaultProxy({
      target: { host: target.hostname, port: Number(target.port || 6379) },
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await direct?.close();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `{${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
    await admin?.quit();
  });

  it('reports BACKEND_ERROR while Redis is down, then resumes and handles every message', async () => {
    const queue = `outage-${Date.now().toString(36)}`;
    const producer = createProducer({ backend: direct });
    const viaProxy = redisQueueBackend({
      url: `redis://${proxy.host}:${proxy.port}`,
      prefix,
      wakeUps: 'local',
    });
    const handled = new Set<string>();
    const errors: unknown[] = [];
    const consumer = consume({
      backend: viaProxy,
      queue,
      maxAttempts: 5,
      leaseMs: 1_000,
      pollIntervalMs: 50,
      concurrency: 4,
      handler: m => void handled.add(m.id),
    });
    consumer.onEvent((e: ConsumerEvent) => {
      if (e.type === 'backend.error') errors.push(e.error);
    });
    try {
      const before = await producer.sendBatch(
        Array.from({ length: 10 }, (_, i) => ({ queue, type: 't', payload: i })),
      );
      await until('the first messages', () => before.every(id => handled.has(id)));

      await proxy.setFaults([{ kind: 'down' }]);
      const during = await producer.sendBatch(
        Array.from({ length: 10 }, (_, i) => ({ queue, type: 't', payload: 10 + i })),
      );
      await until('a backend error', () => errors.length > 0);
      expect(during.some(id => handled.has(id))).toBe(false);
      expect(errors[0]).toMatchObject({ code: 'BACKEND_ERROR', retryable: true });

      await proxy.clearFaults();
      await until('every message', () => during.every(id => handled.has(id)));
      // An ack lost in the outage costs a redelivery after the lease (at-least-once), never a
      // message: wait until nothing is left, then check nothing was dead-lettered.
      await until('an empty queue', async () => {
        const s = await direct.stats(queue, Date.now());
        return s.ready + s.scheduled + s.leased === 0;
      });
      expect((await direct.stats(queue, Date.now())).dead).toBe(0);
    } finally {
      await consumer.stop();
      await viaProxy.close();
    }
  }, 40_000);
});
