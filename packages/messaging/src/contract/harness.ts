/**
 * Drives consumers on a TestClock for the contract suite: advance virtual time one timer at a
 * time and let every consumer finish its backend calls in between, so a backend with real I/O
 * (PGlite, PostgreSQL) sees the same sequence of `now` values as the in-memory one.
 *
 * `timing: 'broker'` is for backends whose broker owns the timers (RabbitMQ TTLs, NATS
 * redelivery): the harness then runs on real time, `run(ms)` really waits, and `run(ms, until)`
 * returns as soon as `until` holds (or after `ms + toleranceMs`).
 */
import { TestClock } from '@bulwark/testing';
import { RealTimeClock, realSleep } from './real-time-clock.js';
import { consume, type Consumer, type ConsumerOptions } from '../consumer.js';
import type { QueueBackend } from '../backend.js';
import { createProducer, type Producer } from '../producer.js';
import { deadLetters, type DeadLetterOps } from '../dead-letters.js';

/** Who owns time in a contract run: a TestClock the harness moves, or the broker (real time). */
export type ContractTiming = 'virtual' | 'broker';

export interface ContractHarnessOptions {
  /** Default 'virtual'. */
  readonly timing?: ContractTiming;
  /**
   * Broker timing only: how much later than expected a timed event may happen, ms (poll
   * intervals, broker timer resolution, round trips). Default 500.
   */
  readonly toleranceMs?: number;
}

/** How often a broker-timed `run` looks at its `until` condition, ms. */
const BROKER_CHECK_EVERY_MS = 5;

export class ContractHarness {
  /** A TestClock on virtual timing; on broker timing a subclass that reads and waits real time. */
  readonly clock: TestClock;
  readonly timing: ContractTiming;
  readonly toleranceMs: number;
  readonly producer: Producer;
  readonly dlq: DeadLetterOps;
  private readonly consumers: Consumer[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  /** Wall time at which this harness started: tests assert times relative to it. */
  readonly t0: number;

  readonly backend: QueueBackend;
  /** Broker timing: how far (ms since `t0`) the runs so far have taken the script. */
  private position = 0;
  /** Backend calls in flight, from consumers, producers and DLQ operations alike. */
  private inFlight = 0;

  constructor(backend: QueueBackend, options: ContractHarnessOptions = {}) {
    this.timing = options.timing ?? 'virtual';
    if (this.timing !== 'virtual' && this.timing !== 'broker') {
      throw new TypeError(
        `ContractHarness: timing must be 'virtual' or 'broker', got ${String(this.timing)}`,
      );
    }
    this.toleranceMs = options.toleranceMs ?? 500;
    if (!(this.toleranceMs >= 0)) {
      throw new TypeError(
        `ContractHarness: toleranceMs must be a number >= 0 (ms), got ${String(this.toleranceMs)}`,
      );
    }
    this.clock = this.timing === 'broker' ? new RealTimeClock() : new TestClock();
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

  /**
   * Moves virtual time forward `ms`, one due timer at a time, idling consumers in between.
   *
   * On broker timing it waits real time instead: without `until`, until `ms` after where the
   * previous run ended; with `until`, until it holds (checked every few ms, between idles) or
   * `ms + toleranceMs` has passed, whichever comes first. `until` is ignored on virtual timing,
   * where `ms` is always run in full.
   */
  async run(ms: number, until?: () => boolean): Promise<void> {
    if (this.timing === 'broker') {
      await this.runReal(until === undefined ? ms : ms + this.toleranceMs, until);
      return;
    }
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

  /**
   * Broker timing: a wait without `until` ends `ms` after where the previous `run` ended (ms since
   * `t0`, as on virtual time, so time spent in sends and declarations between runs counts), or at
   * once if that has passed. A wait with `until` also gets `ms` from now, plus `toleranceMs`.
   */
  private async runReal(ms: number, until: (() => boolean) | undefined): Promise<void> {
    const target = this.position + ms;
    const end =
      until === undefined ? target : Math.max(target, this.elapsed() + ms) + this.toleranceMs;
    let held = false;
    for (;;) {
      await this.idle();
      if (until?.() === true) {
        held = true;
        break;
      }
      const left = end - this.elapsed();
      if (left <= 0) break;
      await realSleep(Math.min(left, BROKER_CHECK_EVERY_MS));
    }
    await this.idle();
    // Where virtual time would be now: at the event when `until` ended the wait early.
    this.position = held ? Math.max(this.position, Math.min(this.elapsed(), target)) : target;
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
