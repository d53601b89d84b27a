import { systemClock } from '@bulwark/core';
import { describe, expect, it } from 'vitest';
import { consume } from './consumer.js';
import { memoryQueueBackend } from './memory-backend.js';
import { createProducer } from './producer.js';

/** Spins for `ms` of real time: a handler that computes and never awaits I/O. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // computing
  }
}

describe('the fetch loop gives the event loop a turn', () => {
  it('timers still fire while a backend and handlers that resolve in microtasks have work', async () => {
    // The memory backend answers in microtasks, like PGlite: without a turn of the event loop
    // now and then, the timer below would fire only once all 400 messages are done.
    const backend = memoryQueueBackend();
    const producer = createProducer({ backend, clock: systemClock });
    const total = 400;
    await producer.sendBatch(
      Array.from({ length: total }, (_, i) => ({ queue: 'q', type: 't', payload: i })),
    );
    let handled = 0;
    let handledWhenTimerFired: number | undefined;
    const consumer = consume<number>({
      backend,
      clock: systemClock,
      queue: 'q',
      maxAttempts: 1,
      handler: () => {
        busy(0.25); // 400 × 0.25 ms = at least 100 ms of work in one microtask chain
        handled++;
      },
    });
    setTimeout(() => (handledWhenTimerFired = handled), 0);
    await consumer.whenIdle();
    await consumer.stop();
    expect(handled).toBe(total);
    // At most ~10 ms of work (40 messages) before the first turn; well short of all of it.
    expect(handledWhenTimerFired).toBeLessThan(total / 2);
  });
});
