import { Deadline } from '@bulwark/core';
import { currentContext, currentDeadline, runWithContext } from '@bulwark/core/ambient';
import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { consume } from './consumer.js';
import { memoryQueueBackend } from './memory-backend.js';
import { createProducer } from './producer.js';

describe('a handler runs in its own ambient context, not the one of whoever enqueued', () => {
  it('an enqueue inside a request does not lend the handler that request deadline or id', async () => {
    const clock = new TestClock();
    const backend = memoryQueueBackend();
    const producer = createProducer({ backend, clock });
    const seen: { remainingMs: number | undefined; requestId: string | undefined }[] = [];
    const consumer = consume<number>({
      backend,
      clock,
      queue: 'q',
      maxAttempts: 3,
      handlerTimeoutMs: 5_000,
      handler: () => {
        seen.push({
          remainingMs: currentDeadline()?.remainingMs(),
          requestId: currentContext()?.requestId,
        });
      },
    });
    await consumer.whenIdle();

    // A request with 50 ms left enqueues; the memory backend wakes the consumer synchronously.
    const request = Deadline.after(50, { clock });
    await runWithContext({ deadline: request, requestId: 'req-1' }, () =>
      producer.send({ queue: 'q', type: 't', payload: 1 }),
    );
    await consumer.whenIdle();
    await consumer.stop();

    expect(seen).toEqual([{ remainingMs: 5_000, requestId: undefined }]);
  });
});
