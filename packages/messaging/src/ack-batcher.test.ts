import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import type { Lease, QueueBackend } from './backend.js';
import { consume, type ConsumerEvent } from './consumer.js';
import { memoryQueueBackend } from './memory-backend.js';
import { createProducer } from './producer.js';

/** The memory backend with its settle and ackMany calls counted. */
function countingBackend() {
  const inner = memoryQueueBackend();
  const calls = { settleAck: 0, ackMany: [] as number[] };
  const backend: QueueBackend = new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'settle') {
        return (lease: Lease, settlement: { kind: string }, now: number) => {
          if (settlement.kind === 'ack') calls.settleAck++;
          return target.settle(lease, settlement as never, now);
        };
      }
      if (key === 'ackMany') {
        return (leases: readonly Lease[], now: number) => {
          calls.ackMany.push(leases.length);
          return target.ackMany(leases, now);
        };
      }
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  return { backend, inner, calls };
}

describe('acks are batched through ackMany when the backend has it', () => {
  it('50 fast handlers fetched together are acked in one call, not 50', async () => {
    const clock = new TestClock();
    const { backend, calls } = countingBackend();
    const producer = createProducer({ backend, clock });
    await producer.sendBatch(
      Array.from({ length: 50 }, (_, i) => ({ queue: 'q', type: 't', payload: i })),
    );
    const seen: number[] = [];
    const consumer = consume<number>({
      backend,
      clock,
      queue: 'q',
      maxAttempts: 3,
      concurrency: 50,
      handler: message => {
        seen.push(message.payload);
      },
    });
    await consumer.whenIdle();
    await consumer.stop();
    expect(seen).toHaveLength(50);
    expect(calls.settleAck).toBe(0);
    expect(calls.ackMany.reduce((a, b) => a + b, 0)).toBe(50);
    expect(calls.ackMany.length).toBeLessThanOrEqual(2);
    expect((await backend.stats('q', clock.wallNow())).ready).toBe(0);
  });

  it('an ack whose lease was lost meanwhile is reported as lease.lost, the others settle', async () => {
    const clock = new TestClock();
    const { backend, inner } = countingBackend();
    const producer = createProducer({ backend, clock });
    await producer.sendBatch([
      { queue: 'q', type: 't', payload: 1 },
      { queue: 'q', type: 't', payload: 2 },
    ]);
    const events: ConsumerEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    const consumer = consume<number>({
      backend,
      clock,
      queue: 'q',
      maxAttempts: 3,
      concurrency: 2,
      leaseMs: 1_000,
      heartbeatMs: 500,
      handler: () => gate,
    });
    consumer.onEvent(e => events.push(e));
    // Let both handlers start, then steal one lease (another consumer recovered it).
    while ((await inner.stats('q', clock.wallNow())).leased < 2) await Promise.resolve();
    await inner.recoverExpiredLeases({
      queue: 'q',
      now: clock.wallNow() + 60_000,
      limit: 1,
      decide: () => ({ kind: 'retry', delayMs: 0, error: { code: 'X', message: 'x' } }),
    });
    release();
    await consumer.stop();
    const types = events.map(e => e.type);
    expect(types.filter(t => t === 'lease.lost')).toHaveLength(1);
    expect(types.filter(t => t === 'message.acked')).toHaveLength(1);
  });
});
