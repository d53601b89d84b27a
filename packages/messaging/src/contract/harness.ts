/**
 * Drives consumers on a TestClock for the contract suite: advance virtual time one timer at a
 * time and let every consumer finish its backend calls in between, so a backend with real I/O
 * (PGlite, PostgreSQL) sees the same sequence of `now` values as the in-memory one.
 */
import { TestClock } from '@bulwark/testing';
import { consume, type Consumer, type ConsumerOptions } from '../consumer.js';
import type { QueueBackend } from '../backend.js';
import { createProducer, type Producer } from '../producer.js';
import { deadLetters, type DeadLetterOps } from '../dead-letters.js';

export class ContractHarness {
  readonly clock = new TestClock();
  readonly producer: Producer;
  readonly dlq: DeadLetterOps;
  private readonly consumers: Consumer[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  /** Wall time at which this harness started: tests assert times relative to it. */
  readonly t0: number;

  readonly backend: QueueBackend;
  /** Backend calls in flight, from consumers, producers and DLQ operations alike. */
  private inFlight = 0;

  constructor(backend: QueueBackend) {
    this.backend = this.counted(backend);
    this.producer = createProducer({ backend: this.backend, clock: this.clock });
    this.dlq = deadLetters({ backend: this.backend, clock: this.clock });
    this.t0 = this.clock.wallNow();
  }

  /** Wall-clock ms since the harness started. */
  elapsed(): number {
    return this.clock.wallNow() - this.t0;
  }

  consume<P>(options: Omit<ConsumerOptions<P>, 'backend' | 'clock'>): Consumer {
    const consumer = consume<P>({
      pollIntervalMs: 100,
      ...options,
      backend: this.backend,
      clock: this.clock,
    });
    this.consumers.push(consumer);
    return consumer;
  }

  /** Runs a promise that needs the clock to move (a rate-limited replay) alongside `run`. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  /** Resolves once no backend call is in flight and none starts in the following macrotask. */
  async idle(): Promise<void> {
    for (let quiet = 0; quiet < 2;) {
      for (const consumer of this.consumers) await consumer.whenIdle();
      await new Promise(resolve => setImmediate(resolve));
      quiet = this.inFlight === 0 ? quiet + 1 : 0;
    }
  }

  /** Wraps each backend method to count calls in flight. */
  private counted(backend: QueueBackend): QueueBackend {
    return new Proxy(backend, {
      get: (target, key, receiver) => {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!(result instanceof Promise)) return result;
          this.inFlight++;
          return result.finally(() => this.inFlight--);
        };
      },
    });
  }

  /** Moves virtual time forward `ms`, one due timer at a time, idling consumers in between. */
  async run(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (let i = 0; i < 100_000; i++) {
      await this.idle();
      const next = this.clock.nextTimerAt();
      if (next === undefined || next > target) break;
      await this.clock.advanceTo(next);
    }
    await this.clock.advanceTo(target);
    await this.idle();
  }

  async stopAll(): Promise<void> {
    const stopping = this.consumers.map(c => c.stop({ abort: true }));
    // Stopping may wait on handlers that wait on the clock: keep time moving until done.
    let done = false;
    const all = Promise.all(stopping).then(() => {
      done = true;
    });
    for (let i = 0; i < 1_000 && !done; i++) {
      await this.idle();
      if (done) break;
      const next = this.clock.nextTimerAt();
      if (next === undefined) break;
      await this.clock.advanceTo(next);
    }
    await all;
    await Promise.allSettled([...this.pending]);
  }
}
