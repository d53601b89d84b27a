import { constantBackoff } from '@bulwark/core';
import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { consume } from './consumer.js';
import { deadLetters } from './dead-letters.js';
import { memoryQueueBackend } from './memory-backend.js';
import { defer, errorRecord, fail, retry } from './outcome.js';
import { createProducer } from './producer.js';

const backend = memoryQueueBackend();
const base = { backend, queue: 'q', handler: () => undefined, autoStart: false };

describe('consumer options', () => {
  it('requires maxAttempts and names the fix', () => {
    expect(() => consume({ ...base } as never)).toThrow(/maxAttempts is required/);
    expect(() => consume({ ...base, maxAttempts: 0 })).toThrow(/integer >= 1/);
  });

  it('rejects unknown options, bad bounds and a heartbeat as long as the lease', () => {
    expect(() => consume({ ...base, maxAttempts: 1, maxAttemps: 3 } as never)).toThrow(
      /unknown option "maxAttemps"/,
    );
    expect(() => consume({ ...base, maxAttempts: 1, concurrency: 4, prefetch: 2 })).toThrow(
      /prefetch \(2\) must be >= concurrency \(4\)/,
    );
    expect(() => consume({ ...base, maxAttempts: 1, leaseMs: 1_000, heartbeatMs: 1_000 })).toThrow(
      /heartbeatMs \(1000\) must be < leaseMs/,
    );
    expect(() => consume({ ...base, maxAttempts: 1, backoff: 5 as never })).toThrow(/Backoff/);
    expect(() => consume({ ...base, backend: {} as never, maxAttempts: 1 })).toThrow(
      /backend must implement QueueBackend/,
    );
  });

  it('accepts a full valid set', async () => {
    const c = consume({
      ...base,
      maxAttempts: 3,
      backoff: constantBackoff({ delayMs: 10 }),
      concurrency: 2,
      prefetch: 4,
      leaseMs: 900,
      heartbeatMs: 300,
      handlerTimeoutMs: 500,
      pollIntervalMs: 50,
      clock: new TestClock(),
    });
    await c.stop();
  });
});

describe('outcomes', () => {
  it('validates delays', () => {
    expect(() => defer({} as never)).toThrow(/delayMs is required/);
    expect(() => retry({ delayMs: -1 })).toThrow(/delayMs must be/);
    expect(retry()).toEqual({
      kind: 'retry',
      error: { code: 'RETRY_REQUESTED', message: 'the handler asked for a retry' },
    });
    expect(fail({ code: 'X', message: 'y' })).toEqual({
      kind: 'fail',
      error: { code: 'X', message: 'y' },
    });
  });

  it('records any thrown value as { code, message }', () => {
    expect(errorRecord(new TypeError('t'))).toEqual({ code: 'TypeError', message: 't' });
    expect(errorRecord({ code: 'E1', message: 'm' })).toEqual({ code: 'E1', message: 'm' });
    expect(errorRecord('plain')).toEqual({ code: 'ERROR', message: 'plain' });
    expect(errorRecord(42)).toEqual({ code: 'ERROR', message: '42' });
  });
});

describe('producer and dead letter options', () => {
  it('validates messages before storing any', async () => {
    const producer = createProducer({ backend });
    await expect(producer.send({ queue: '', type: 't', payload: 1 })).rejects.toThrow(
      /queue must be a non-empty string/,
    );
    await expect(producer.send({ queue: 'q', type: 't' } as never)).rejects.toThrow(
      /payload is required/,
    );
    await expect(
      producer.send({ queue: 'q', type: 't', payload: 1, headers: { n: 1 as never } }),
    ).rejects.toThrow(/header "n" must be a string/);
    await expect(
      producer.sendBatch([
        { queue: 'q', type: 't', payload: 1 },
        { queue: 'q', type: 't', payload: 1, delayMs: -5 },
      ]),
    ).rejects.toThrow(/delayMs/);
    expect((await backend.stats('q', Date.now())).ready).toBe(0);
  });

  it('refuses purge without a filter, unknown filter keys and payload with edit', async () => {
    const dlq = deadLetters({ backend });
    await expect(dlq.purge({} as never)).rejects.toThrow(/filter is required/);
    await expect(dlq.purge({ filter: {} })).rejects.toThrow(/all: true/);
    await expect(dlq.list({ queu: 'x' } as never)).rejects.toThrow(/unknown option "queu"/);
    await expect(dlq.replay({ payload: 1, edit: () => 2 })).rejects.toThrow(/not both/);
    expect(await dlq.purge({ filter: {}, all: true })).toMatchObject({ count: 0 });
  });
});
