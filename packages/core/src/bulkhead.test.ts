import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  type ControllableWork,
  controllableWork,
  flushMicrotasks,
  observe,
  TestClock,
} from '@bulwark/testing';
import { bulkhead, type BulkheadEvent, type BulkheadOptions } from './bulkhead.js';
import { Deadline } from './deadline.js';
import {
  BulkheadFullError,
  InvalidOptionsError,
  isBulkheadFullError,
  isCancelledError,
  isDeadlineExceededError,
  isTimeoutError,
} from './errors.js';
import { pipeline } from './pipeline.js';
import { Context, invoke } from './policy.js';
import { Scope } from './scope.js';
import { timeout } from './timeout.js';

describe('bulkhead: options', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', undefined, /expected an options object/],
    ['maxConcurrent missing', {}, /maxConcurrent must be an integer >= 1, got undefined/],
    ['maxConcurrent 0', { maxConcurrent: 0 }, /maxConcurrent must be an integer >= 1, got 0/],
    ['maxConcurrent 1.5', { maxConcurrent: 1.5 }, /maxConcurrent must be an integer >= 1/],
    ['maxQueue -1', { maxConcurrent: 1, maxQueue: -1 }, /maxQueue must be an integer >= 0, got -1/],
    ['maxQueue NaN', { maxConcurrent: 1, maxQueue: NaN }, /maxQueue must be an integer >= 0/],
    [
      'queueTimeoutMs 0',
      { maxConcurrent: 1, queueTimeoutMs: 0 },
      /queueTimeoutMs \(milliseconds\) must be a finite number > 0, got 0/,
    ],
    ['queueTimeoutMs Infinity', { maxConcurrent: 1, queueTimeoutMs: Infinity }, /queueTimeoutMs/],
    ['name empty', { maxConcurrent: 1, name: '' }, /name must be a non-empty string/],
    ['clock wrong', { maxConcurrent: 1, clock: {} }, /clock must implement Clock/],
    ['unknown key', { maxConcurrent: 1, maxQeue: 3 }, /unknown option "maxQeue"/],
  ];
  it.each(cases)('rejects %s', (_label, options, message) => {
    expect(() => bulkhead(options as BulkheadOptions)).toThrow(InvalidOptionsError);
    expect(() => bulkhead(options as BulkheadOptions)).toThrow(message);
  });

  it('has documented defaults', () => {
    const policy = bulkhead({ maxConcurrent: 3 });
    expect(policy.name).toBe('bulkhead');
    expect(policy.maxQueue).toBe(0);
    expect(policy.queueTimeoutMs).toBeUndefined();
    expect(policy.available).toBe(3);
  });
});

describe('bulkhead', () => {
  it('runs exactly maxConcurrent calls at once and queues the rest in FIFO order', async () => {
    const clock = new TestClock();
    const policy = bulkhead({ maxConcurrent: 2, maxQueue: 10, clock });
    const gates = Array.from({ length: 5 }, () => controllableWork<number>());
    const order: number[] = [];
    const results = gates.map((g, i) =>
      observe(
        policy.execute(() => {
          order.push(i);
          return g.work();
        }),
      ),
    );
    expect(order).toEqual([0, 1]);
    expect([policy.running, policy.queued, policy.available]).toEqual([2, 3, 0]);

    gates[1]?.resolve(1);
    await flushMicrotasks();
    expect(order).toEqual([0, 1, 2]);
    expect([policy.running, policy.queued]).toEqual([2, 2]);

    gates[0]?.resolve(0);
    gates[2]?.resolve(2);
    await flushMicrotasks();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    gates[3]?.resolve(3);
    gates[4]?.resolve(4);
    await flushMicrotasks();
    expect(results.map(r => r.value)).toEqual([0, 1, 2, 3, 4]);
    expect([policy.running, policy.queued, policy.available]).toEqual([0, 0, 2]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects at once with BulkheadFullError when slots and queue are full', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, name: 'db', clock: new TestClock() });
    const events: BulkheadEvent[] = [];
    policy.onEvent(e => events.push(e));
    const running = controllableWork();
    const first = observe(policy.execute(running.work));
    const second = observe(policy.execute(controllableWork().work));
    const third = observe(policy.execute(controllableWork().work));
    await flushMicrotasks();
    expect(first.state).toBe('pending');
    expect(second.state).toBe('pending');
    expect(third.state).toBe('rejected');
    expect(third.error).toBeInstanceOf(BulkheadFullError);
    expect((third.error as BulkheadFullError).message).toBe('bulkhead "db" is full');
    expect((third.error as BulkheadFullError).retryable).toBe(true);
    expect(events).toEqual([
      { type: 'bulkhead.queued', policy: 'db', running: 1, queued: 1 },
      { type: 'bulkhead.rejected', policy: 'db', reason: 'full', running: 1, queued: 1 },
    ]);
  });

  it('with maxQueue 0 (default) never queues', async () => {
    const policy = bulkhead({ maxConcurrent: 1, clock: new TestClock() });
    const g = controllableWork();
    const a = policy.execute(g.work);
    await expect(policy.execute(() => 'x')).rejects.toSatisfy(isBulkheadFullError);
    g.resolve('a');
    await expect(a).resolves.toBe('a');
    await expect(policy.execute(() => 'y')).resolves.toBe('y');
  });

  it('rejects a queued call after queueTimeoutMs, with one shared timer', async () => {
    const clock = new TestClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 100, clock });
    const events: BulkheadEvent[] = [];
    policy.onEvent(e => events.push(e));
    const running = controllableWork();
    void policy.execute(running.work);
    const a = observe(policy.execute(controllableWork().work));
    await clock.advance(40);
    const b = observe(policy.execute(controllableWork().work));
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(59);
    expect(a.state).toBe('pending');
    await clock.advance(1);
    expect(a.state).toBe('rejected');
    expect(isBulkheadFullError(a.error)).toBe(true);
    expect((a.error as Error).message).toMatch(/queue timeout/);
    expect(policy.queued).toBe(1);
    await clock.advance(40);
    expect(b.state).toBe('rejected');
    expect(policy.queued).toBe(0);
    expect(policy.running).toBe(1);
    expect(events.filter(e => e.type === 'bulkhead.rejected')).toEqual([
      {
        type: 'bulkhead.rejected',
        policy: 'bulkhead',
        reason: 'queue_timeout',
        running: 1,
        queued: 1,
      },
      {
        type: 'bulkhead.rejected',
        policy: 'bulkhead',
        reason: 'queue_timeout',
        running: 1,
        queued: 0,
      },
    ]);
    running.resolve('done');
    await flushMicrotasks();
    expect(policy.running).toBe(0);
    expect(clock.referencedTimers).toBe(0);
  });

  it('a call admitted before its queue timeout is not rejected later', async () => {
    const clock = new TestClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 100, clock });
    const first = controllableWork();
    void policy.execute(first.work);
    const second = controllableWork();
    const result = observe(policy.execute(second.work));
    await clock.advance(50);
    first.resolve('1');
    await flushMicrotasks();
    expect(second.started).toBe(true);
    await clock.advance(200);
    expect(result.state).toBe('pending');
    second.resolve('2');
    await flushMicrotasks();
    expect(result.value).toBe('2');
  });

  it('a queued call whose signal aborts settles at once and never takes a slot', async () => {
    const clock = new TestClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 3, clock });
    const events: BulkheadEvent[] = [];
    policy.onEvent(e => events.push(e));
    const running = controllableWork();
    void policy.execute(running.work);
    const controller = new AbortController();
    const aborted = controllableWork();
    const abortedCall = observe(policy.execute(aborted.work, { signal: controller.signal }));
    const next = controllableWork();
    const nextCall = observe(policy.execute(next.work));
    await clock.advance(10);
    controller.abort('stop');
    await flushMicrotasks();
    expect(abortedCall.state).toBe('rejected');
    expect(isCancelledError(abortedCall.error)).toBe(true);
    expect(policy.queued).toBe(1);
    running.resolve('r');
    await flushMicrotasks();
    expect(aborted.started).toBe(false);
    expect(next.started).toBe(true);
    next.resolve('n');
    await flushMicrotasks();
    expect(nextCall.value).toBe('n');
    expect([policy.running, policy.queued]).toEqual([0, 0]);
    expect(events.filter(e => e.type === 'bulkhead.dequeued')).toEqual([
      {
        type: 'bulkhead.dequeued',
        policy: 'bulkhead',
        outcome: 'aborted',
        waitedMs: 10,
        queued: 1,
      },
      {
        type: 'bulkhead.dequeued',
        policy: 'bulkhead',
        outcome: 'admitted',
        waitedMs: 10,
        queued: 0,
      },
    ]);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const policy = bulkhead({ maxConcurrent: 1, clock: new TestClock() });
    const controller = new AbortController();
    controller.abort();
    await expect(policy.execute(() => 1, { signal: controller.signal })).rejects.toSatisfy(
      isCancelledError,
    );
    expect(policy.running).toBe(0);
  });

  it('a queued call never waits past its deadline', async () => {
    const clock = new TestClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 1000, clock });
    const running = controllableWork();
    void policy.execute(running.work);
    const waiting = controllableWork();
    const call = observe(policy.execute(waiting.work, { deadline: Deadline.after(50, { clock }) }));
    await clock.advance(49);
    expect(call.state).toBe('pending');
    await clock.advance(1);
    expect(call.state).toBe('rejected');
    expect(isDeadlineExceededError(call.error)).toBe(true);
    expect(policy.queued).toBe(0);
    running.resolve('r');
    await flushMicrotasks();
    expect(waiting.started).toBe(false);
    expect(policy.running).toBe(0);
  });

  it('does not queue a call whose deadline has already come', () => {
    const clock = new TestClock({ startMs: 100 });
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    void policy.execute(controllableWork().work);
    const step = policy.compose(invoke);
    const errors: unknown[] = [];
    step(() => 1, new Context(new Scope(), 100, 1, clock), {
      ok: () => errors.push('ok'),
      fail: e => errors.push(e),
    });
    expect(errors).toHaveLength(1);
    expect(isDeadlineExceededError(errors[0])).toBe(true);
    expect(policy.queued).toBe(0);
  });

  it('an outer timeout aborts a queued call and frees its queue place', async () => {
    const clock = new TestClock();
    const limiter = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const guarded = pipeline(timeout({ timeoutMs: 30, clock }), limiter);
    const running = controllableWork();
    void limiter.execute(running.work);
    const call = observe(guarded.execute(controllableWork().work));
    expect(limiter.queued).toBe(1);
    await clock.advance(30);
    expect(isTimeoutError(call.error)).toBe(true);
    expect(limiter.queued).toBe(0);
  });

  it('releases the slot when the work throws synchronously, rejects, or returns a plain value', async () => {
    const policy = bulkhead({ maxConcurrent: 1, clock: new TestClock() });
    const boom = new Error('boom');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(policy.running).toBe(0);
    await expect(policy.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(policy.running).toBe(0);
    await expect(policy.execute(() => 7)).resolves.toBe(7);
    expect(policy.running).toBe(0);
  });

  it('a sync throw in a queued call releases its slot to the next waiter', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2, clock: new TestClock() });
    const first = controllableWork();
    void policy.execute(first.work);
    const thrower = observe(
      policy.execute(() => {
        throw new Error('sync');
      }),
    );
    const last = observe(policy.execute(() => 'last'));
    first.resolve('first');
    await flushMicrotasks();
    expect(thrower.state).toBe('rejected');
    expect(last.value).toBe('last');
    expect(policy.running).toBe(0);
  });

  it('drains a long queue of synchronous work without deep recursion', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 50_000, clock: new TestClock() });
    const first = controllableWork();
    void policy.execute(first.work);
    let done = 0;
    const calls = Array.from({ length: 50_000 }, () => policy.execute(() => ++done));
    first.resolve('go');
    await Promise.all(calls);
    expect(done).toBe(50_000);
    expect(policy.running).toBe(0);
  });

  it('emits nothing and allocates no event when nobody listens (events are opt-in)', async () => {
    const policy = bulkhead({ maxConcurrent: 1, clock: new TestClock() });
    const events: BulkheadEvent[] = [];
    const sub = policy.onEvent(e => events.push(e));
    sub.dispose();
    await policy.execute(() => 1);
    expect(events).toEqual([]);
  });

  it('property: never more than maxConcurrent run, and no slot leaks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.tuple(fc.constantFrom('start', 'finish', 'fail', 'abort'), fc.nat(20)), {
          maxLength: 60,
        }),
        async (maxConcurrent, maxQueue, ops) => {
          const clock = new TestClock();
          const policy = bulkhead({ maxConcurrent, maxQueue, clock });
          let active = 0;
          let peak = 0;
          const live: { g: ControllableWork<string>; c: AbortController }[] = [];
          const all: Promise<unknown>[] = [];
          for (const [op, index] of ops) {
            if (op === 'start') {
              const g = controllableWork();
              const c = new AbortController();
              live.push({ g, c });
              const p = policy.execute(
                () => {
                  active++;
                  peak = Math.max(peak, active);
                  return g.work().finally(() => active--);
                },
                { signal: c.signal },
              );
              all.push(p.catch(() => undefined));
            } else if (live.length > 0) {
              const item = live[index % live.length];
              if (op === 'finish' && item?.g.started) item.g.resolve('x');
              if (op === 'fail' && item?.g.started) item.g.reject(new Error('x'));
              if (op === 'abort') item?.c.abort();
            }
            await flushMicrotasks();
            expect(policy.running).toBeLessThanOrEqual(maxConcurrent);
            expect(policy.queued).toBeLessThanOrEqual(maxQueue);
          }
          expect(peak).toBeLessThanOrEqual(maxConcurrent);
          // Finish everything: every slot must come back.
          for (let round = 0; round < live.length + 1; round++) {
            for (const { g, c } of live) {
              c.abort();
              if (g.started) g.resolve('end');
            }
            await flushMicrotasks();
          }
          await Promise.all(all);
          expect([policy.running, policy.queued]).toEqual([0, 0]);
        },
      ),
      { numRuns: 60, seed: 42 },
    );
  });
});
