import { describe, expect, it, vi } from 'vitest';
import { controllableWork, flushMicrotasks, observe, TestClock } from '@bulwark/testing';
import type { Clock } from './clock.js';
import {
  concurrencyLimit,
  type ConcurrencyLimitEvent,
  type ConcurrencyLimitOptions,
  type ConcurrencyLimitPolicy,
} from './concurrency-limit.js';
import { Deadline } from './deadline.js';
import { Context, invoke, type Sink } from './policy.js';
import { Scope } from './scope.js';
import {
  CancelledError,
  InvalidOptionsError,
  isCancelledError,
  isDeadlineExceededError,
  isLoadShedError,
  LoadShedError,
  TimeoutError,
} from './errors.js';

/** Work that takes `rttMs` of virtual time. */
function takes(clock: TestClock, rttMs: number, outcome: 'ok' | Error = 'ok') {
  return () =>
    new Promise<string>((resolve, reject) => {
      clock.setTimer(() => (outcome === 'ok' ? resolve('ok') : reject(outcome)), rttMs);
    });
}

/** Runs one round: `limit` concurrent calls of `rttMs` each, and waits for all of them. */
async function round(clock: TestClock, policy: ConcurrencyLimitPolicy, rttMs: number) {
  const calls = Array.from({ length: policy.limit }, () =>
    policy.execute(takes(clock, rttMs)).catch(() => undefined),
  );
  await clock.advance(rttMs);
  await Promise.all(calls);
}

describe('concurrencyLimit: options', () => {
  const aimd = { kind: 'aimd' } as const;
  const cases: [string, unknown, RegExp][] = [
    ['not an object', 5, /expected an options object/],
    [
      'limit missing',
      {},
      /limit must be \{ kind: "aimd", \.\.\. \} or \{ kind: "gradient", \.\.\. \}, got undefined/,
    ],
    ['limit kind unknown', { limit: { kind: 'vegas' } }, /got kind vegas/],
    ['aimd unknown key', { limit: { kind: 'aimd', ratio: 0.5 } }, /unknown option "ratio"/],
    [
      'aimd initial 0',
      { limit: { kind: 'aimd', initial: 0 } },
      /limit.initial must be an integer >= 1, got 0/,
    ],
    [
      'aimd initial above max',
      { limit: { kind: 'aimd', initial: 30, max: 10 } },
      /limit.initial must be within \[limit.min, limit.max\] = \[1, 10\], got 30/,
    ],
    ['aimd min 0', { limit: { kind: 'aimd', min: 0 } }, /limit.min must be an integer >= 1, got 0/],
    [
      'aimd max below min',
      { limit: { kind: 'aimd', min: 5, max: 4 } },
      /limit.max must be an integer >= 5, got 4/,
    ],
    [
      'aimd backoffRatio 1',
      { limit: { kind: 'aimd', backoffRatio: 1 } },
      /limit.backoffRatio must be a number in \[0.5, 1\)/,
    ],
    ['aimd backoffRatio 0.4', { limit: { kind: 'aimd', backoffRatio: 0.4 } }, /limit.backoffRatio/],
    [
      'aimd increaseBy 0',
      { limit: { kind: 'aimd', increaseBy: 0 } },
      /limit.increaseBy must be an integer >= 1, got 0/,
    ],
    [
      'aimd timeoutMs 0',
      { limit: { kind: 'aimd', timeoutMs: 0 } },
      /limit.timeoutMs \(milliseconds\) must be a finite number > 0/,
    ],
    [
      'gradient unknown key',
      { limit: { kind: 'gradient', backoffRatio: 0.9 } },
      /unknown option "backoffRatio"/,
    ],
    [
      'gradient max 0',
      { limit: { kind: 'gradient', max: 0 } },
      /limit.max must be an integer >= 1/,
    ],
    [
      'gradient smoothing 0',
      { limit: { kind: 'gradient', smoothing: 0 } },
      /limit.smoothing must be a number in \(0, 1\], got 0/,
    ],
    [
      'gradient tolerance 0.9',
      { limit: { kind: 'gradient', tolerance: 0.9 } },
      /limit.tolerance must be a finite number >= 1, got 0.9/,
    ],
    [
      'gradient queueSize -1',
      { limit: { kind: 'gradient', queueSize: -1 } },
      /limit.queueSize \(calls\) must be a finite number >= 0/,
    ],
    [
      'gradient longWindow 0',
      { limit: { kind: 'gradient', longWindow: 0 } },
      /limit.longWindow \(samples\) must be an integer >= 1/,
    ],
    [
      'gradient shortWindow 1.5',
      { limit: { kind: 'gradient', shortWindow: 1.5 } },
      /limit.shortWindow \(samples\) must be an integer >= 1/,
    ],
    ['maxQueue -1', { limit: aimd, maxQueue: -1 }, /maxQueue must be an integer >= 0, got -1/],
    [
      'queueTimeoutMs 0',
      { limit: aimd, queueTimeoutMs: 0 },
      /queueTimeoutMs \(milliseconds\) must be a finite number > 0/,
    ],
    ['priority not a function', { limit: aimd, priority: 3 }, /priority must be a function/],
    [
      'classify not a function',
      { limit: aimd, classify: 'dropped' },
      /classify must be a function/,
    ],
    ['name empty', { limit: aimd, name: '' }, /name must be a non-empty string/],
    ['clock wrong', { limit: aimd, clock: 'now' }, /clock must implement Clock/],
    ['unknown key', { limit: aimd, maxQueued: 1 }, /unknown option "maxQueued"/],
  ];
  it.each(cases)('rejects %s', (_label, options, message) => {
    expect(() => concurrencyLimit(options as ConcurrencyLimitOptions)).toThrow(InvalidOptionsError);
    expect(() => concurrencyLimit(options as ConcurrencyLimitOptions)).toThrow(message);
  });

  it('has documented defaults', () => {
    const policy = concurrencyLimit({ limit: { kind: 'gradient' } });
    expect([policy.limit, policy.maxQueue, policy.queueTimeoutMs, policy.name]).toEqual([
      20,
      0,
      undefined,
      'concurrency-limit',
    ]);
  });
});

describe('concurrencyLimit: admission', () => {
  it('admits up to the limit and sheds the rest at once with a retryable LoadShedError', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({ limit: { kind: 'aimd', initial: 2, max: 2 }, clock });
    const events: ConcurrencyLimitEvent[] = [];
    policy.onEvent(e => events.push(e));
    const a = controllableWork();
    const b = controllableWork();
    void policy.execute(a.work);
    void policy.execute(b.work);
    expect(policy.inFlight).toBe(2);
    const shed = await policy.execute(() => 'c').catch((e: unknown) => e);
    expect(shed).toBeInstanceOf(LoadShedError);
    expect((shed as LoadShedError).retryable).toBe(true);
    expect((shed as LoadShedError).message).toBe(
      'concurrency limit "concurrency-limit": limit reached (limit 2, 2 in flight)',
    );
    expect(events).toEqual([
      {
        type: 'limit.shed',
        policy: 'concurrency-limit',
        priority: 0,
        reason: 'limit',
        limit: 2,
        inFlight: 2,
        queued: 0,
      },
    ]);
    a.resolve('a');
    await flushMicrotasks();
    await expect(policy.execute(() => 'c')).resolves.toBe('c');
  });

  it('releases its slot on a sync throw and on a rejection', async () => {
    const policy = concurrencyLimit({ limit: { kind: 'aimd', initial: 1, max: 1 } });
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(policy.inFlight).toBe(0);
    await expect(policy.execute(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(policy.inFlight).toBe(0);
    await expect(policy.execute(() => 1)).resolves.toBe(1);
  });

  it('does not read the clock per call when the algorithm needs no RTT (AIMD without timeoutMs)', async () => {
    let reads = 0;
    const test = new TestClock();
    const counting: Clock = {
      now: () => {
        reads++;
        return test.now();
      },
      wallNow: () => test.wallNow(),
      setTimer: (cb, ms) => test.setTimer(cb, ms),
    };
    const policy = concurrencyLimit({ limit: { kind: 'aimd' }, clock: counting });
    for (let i = 0; i < 10; i++) await policy.execute(() => i);
    expect(reads).toBe(0);
  });
});

describe('concurrencyLimit: AIMD', () => {
  it('increases under success and decreases on drops (limit trajectory)', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 4, max: 12, backoffRatio: 0.5 },
      clock,
    });
    const changes: [number, number][] = [];
    policy.onEvent(e => {
      if (e.type === 'limit.changed') changes.push([e.from, e.to]);
    });
    const trajectory = [policy.limit];
    for (let i = 0; i < 3; i++) {
      await round(clock, policy, 10);
      trajectory.push(policy.limit);
    }
    // Each round runs `limit` calls; calls that started with at least half the limit in flight
    // each add 1.
    expect(trajectory).toEqual([4, 7, 11, 12]);
    // Drops: a downstream timeout and a load shed each halve the limit.
    const timedOut = policy.execute(takes(clock, 0, new TimeoutError(5))).catch(() => undefined);
    await clock.advance(0);
    await timedOut;
    trajectory.push(policy.limit);
    const shed = policy.execute(() => Promise.reject(new LoadShedError())).catch(() => undefined);
    await shed;
    trajectory.push(policy.limit);
    expect(trajectory.slice(3)).toEqual([12, 6, 3]);
    expect(changes[0]).toEqual([4, 5]);
    expect(changes.slice(-2)).toEqual([
      [12, 6],
      [6, 3],
    ]);
  });

  it('counts a success slower than timeoutMs as a drop', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 10, timeoutMs: 100 },
      clock,
    });
    const slow = policy.execute(takes(clock, 150));
    await clock.advance(150);
    await slow;
    expect(policy.limit).toBe(9);
  });

  it('ignores application errors and cancellations by default; classify can change that', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({ limit: { kind: 'aimd', initial: 2 }, clock });
    await policy.execute(() => Promise.reject(new Error('404'))).catch(() => undefined);
    await policy.execute(() => Promise.reject(new CancelledError())).catch(() => undefined);
    expect(policy.limit).toBe(2);

    const strict = concurrencyLimit({
      limit: { kind: 'aimd', initial: 10 },
      classify: error => ((error as Error).message === '503' ? 'dropped' : 'ignored'),
      clock,
    });
    await strict.execute(() => Promise.reject(new Error('503'))).catch(() => undefined);
    expect(strict.limit).toBe(9);
  });
});

describe('concurrencyLimit: gradient', () => {
  it('decreases when RTT rises and recovers when it falls, within [min, max]', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'gradient', initial: 20, min: 5, max: 40 },
      clock,
    });
    const seen: number[] = [];
    policy.onEvent(e => {
      if (e.type === 'limit.changed') seen.push(e.to);
    });
    for (let i = 0; i < 10; i++) await round(clock, policy, 10);
    const healthy = policy.limit;
    expect(healthy).toBe(40); // steady RTT: probes up to max
    for (let i = 0; i < 10; i++) await round(clock, policy, 50);
    const overloaded = policy.limit;
    expect(overloaded).toBeLessThan(healthy / 2);
    for (let i = 0; i < 10; i++) await round(clock, policy, 10);
    const recovered = policy.limit;
    expect(recovered).toBeGreaterThan(overloaded * 2);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(5);
    expect(Math.max(...seen)).toBeLessThanOrEqual(40);
    expect({ healthy, overloaded, recovered }).toEqual({
      healthy: 40,
      overloaded: 11,
      recovered: 40,
    });
  });
});

describe('concurrencyLimit: queue and priority', () => {
  it('queues above the limit: higher priority first, FIFO within a priority', async () => {
    const clock = new TestClock();
    let next = 0;
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 10,
      priority: () => next,
      clock,
    });
    const first = controllableWork();
    void policy.execute(first.work);
    const order: string[] = [];
    const enqueue = (id: string, priority: number) => {
      next = priority;
      return policy.execute(() => order.push(id));
    };
    const calls = [
      enqueue('low1', 0),
      enqueue('high1', 5),
      enqueue('low2', 0),
      enqueue('mid', 2),
      enqueue('high2', 5),
    ];
    expect(policy.queued).toBe(5);
    first.resolve('go');
    await Promise.all(calls);
    expect(order).toEqual(['high1', 'high2', 'mid', 'low1', 'low2']);
  });

  it('sheds the lowest-priority waiter first when the queue is full', async () => {
    const clock = new TestClock();
    let next = 0;
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 2,
      priority: () => next,
      name: 'api',
      clock,
    });
    const shedEvents: [number, string][] = [];
    policy.onEvent(e => {
      if (e.type === 'limit.shed') shedEvents.push([e.priority, e.reason]);
    });
    const first = controllableWork();
    void policy.execute(first.work);
    const ran: string[] = [];
    const call = (id: string, priority: number) => {
      next = priority;
      return observe(policy.execute(() => ran.push(id)));
    };
    const a = call('a', 0);
    const b = call('b', 0);
    const high = call('high', 5); // evicts b, the newest of the lowest priority
    await flushMicrotasks();
    expect(b.state).toBe('rejected');
    expect(isLoadShedError(b.error)).toBe(true);
    expect((b.error as Error).message).toMatch(/evicted from the queue by a higher-priority call/);
    const c = call('c', 0); // queue full of equal or higher priority: c itself is shed
    await flushMicrotasks();
    expect(c.state).toBe('rejected');
    expect((c.error as Error).message).toMatch(/queue is full/);
    const mid = call('mid', 3); // evicts a
    await flushMicrotasks();
    expect(a.state).toBe('rejected');
    expect(shedEvents).toEqual([
      [0, 'evicted'],
      [0, 'queue_full'],
      [0, 'evicted'],
    ]);
    first.resolve('go');
    await flushMicrotasks();
    expect(ran).toEqual(['high', 'mid']);
    expect(high.state).toBe('fulfilled');
    expect(mid.state).toBe('fulfilled');
    expect([policy.inFlight, policy.queued]).toEqual([0, 0]);
  });

  it('fails a call whose priority function throws or returns NaN', async () => {
    let value: () => number = () => NaN;
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 1,
      priority: () => value(),
    });
    const first = controllableWork();
    void policy.execute(first.work);
    await expect(policy.execute(() => 1)).rejects.toThrow(/priority function must return a number/);
    value = () => {
      throw new Error('bad priority');
    };
    await expect(policy.execute(() => 1)).rejects.toThrow('bad priority');
    expect(policy.queued).toBe(0);
  });

  it('sheds a waiter after queueTimeoutMs', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 2,
      queueTimeoutMs: 100,
      clock,
    });
    const first = controllableWork();
    void policy.execute(first.work);
    const waiting = observe(policy.execute(() => 1));
    await clock.advance(99);
    expect(waiting.state).toBe('pending');
    await clock.advance(1);
    expect(isLoadShedError(waiting.error)).toBe(true);
    expect((waiting.error as Error).message).toMatch(/queue timeout/);
    expect(policy.queued).toBe(0);
  });

  it('a waiter whose signal aborts settles at once and never takes a slot', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 2,
      queueTimeoutMs: 1000,
      clock,
    });
    const first = controllableWork();
    void policy.execute(first.work);
    const controller = new AbortController();
    const aborted = controllableWork();
    const abortedCall = observe(policy.execute(aborted.work, { signal: controller.signal }));
    const after = observe(policy.execute(() => 'after'));
    controller.abort();
    await flushMicrotasks();
    expect(isCancelledError(abortedCall.error)).toBe(true);
    expect(policy.queued).toBe(1);
    first.resolve('go');
    await flushMicrotasks();
    expect(aborted.started).toBe(false);
    expect(after.value).toBe('after');
    expect(policy.inFlight).toBe(0);
    // The queue timeout of the aborted and admitted waiters no longer holds the process.
    expect(clock.referencedTimers).toBe(0);
  });

  it('a waiter never waits past its deadline', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 1,
      clock,
    });
    const first = controllableWork();
    void policy.execute(first.work);
    const call = observe(policy.execute(() => 1, { deadline: Deadline.after(30, { clock }) }));
    await clock.advance(30);
    expect(isDeadlineExceededError(call.error)).toBe(true);
    expect(policy.queued).toBe(0);
  });
});

describe('concurrencyLimit: tryAcquire', () => {
  it('hands out permits up to the limit; release frees them and feeds the limit', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 2, max: 3, backoffRatio: 0.5 },
      clock,
    });
    const events: ConcurrencyLimitEvent[] = [];
    policy.onEvent(e => events.push(e));
    const p1 = policy.tryAcquire();
    const p2 = policy.tryAcquire(7);
    expect(p1).toBeDefined();
    expect(p2).toBeDefined();
    expect(policy.inFlight).toBe(2);
    expect(policy.tryAcquire(9)).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: 'limit.shed', priority: 9, reason: 'limit' });

    p2?.release('success', 12);
    expect(policy.inFlight).toBe(1);
    expect(policy.limit).toBe(3); // p2 started with 2 in flight, at the limit of 2
    p2?.release('dropped'); // a second release does nothing
    expect([policy.inFlight, policy.limit]).toEqual([1, 3]);

    await clock.advance(20);
    p1?.release('dropped');
    expect([policy.inFlight, policy.limit]).toEqual([0, 1]);
    expect(events.filter(e => e.type === 'limit.changed')).toEqual([
      { type: 'limit.changed', policy: 'concurrency-limit', from: 2, to: 3 },
      { type: 'limit.changed', policy: 'concurrency-limit', from: 3, to: 1 },
    ]);
  });

  it('measures the RTT on its own clock when release gets none', async () => {
    const clock = new TestClock();
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 4, timeoutMs: 50 },
      clock,
    });
    const permit = policy.tryAcquire();
    await clock.advance(60);
    permit?.release('success');
    expect(policy.limit).toBe(3);
  });

  it('ignored permits free the slot without moving the limit', () => {
    const policy = concurrencyLimit({ limit: { kind: 'aimd', initial: 1, max: 1 } });
    policy.tryAcquire()?.release('ignored');
    expect([policy.inFlight, policy.limit]).toEqual([0, 1]);
  });

  it('a freed permit admits a queued execute call', async () => {
    const policy = concurrencyLimit({ limit: { kind: 'aimd', initial: 1, max: 1 }, maxQueue: 1 });
    const permit = policy.tryAcquire();
    const call = observe(policy.execute(() => 'queued'));
    expect(policy.queued).toBe(1);
    expect(policy.tryAcquire()).toBeUndefined();
    permit?.release('success', 1);
    await flushMicrotasks();
    expect(call.value).toBe('queued');
  });

  it('validates its arguments', () => {
    const policy = concurrencyLimit({ limit: { kind: 'aimd' } });
    expect(() => policy.tryAcquire(NaN)).toThrow(/priority must be a number/);
    const permit = policy.tryAcquire();
    expect(() => permit?.release('ok' as never)).toThrow(
      /outcome must be "success", "dropped" or "ignored"/,
    );
    expect(() => permit?.release('success', -1)).toThrow(/rttMs must be a finite number >= 0/);
    expect(policy.inFlight).toBe(1);
  });
});

/** Captures the microtasks queued while `run` executes (where policies rethrow user bugs). */
async function captureMicrotasks(run: () => Promise<void>): Promise<(() => void)[]> {
  const queued: (() => void)[] = [];
  const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(fn => queued.push(fn));
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return queued;
}

describe('concurrencyLimit: a broken classify', () => {
  it('settles the call with the work error, frees the slot and rethrows the bug from a microtask', async () => {
    const clock = new TestClock();
    const bug = new Error('classify bug');
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 1,
      classify: () => {
        throw bug;
      },
      clock,
    });
    const failure = new Error('503');
    const first = controllableWork();
    const queued = await captureMicrotasks(async () => {
      const running = observe(policy.execute(first.work));
      const waiting = observe(policy.execute(() => 'next'));
      expect(policy.queued).toBe(1);
      first.reject(failure);
      await flushMicrotasks();
      expect(running.error).toBe(failure);
      expect(waiting.value).toBe('next'); // the slot was freed and handed on
      expect(policy.inFlight).toBe(0);
      expect(policy.limit).toBe(1);
    });
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow(bug);
  });

  it('treats an answer that is not an outcome as a bug, too', async () => {
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 4 },
      classify: () => 'drop' as never,
    });
    const failure = new Error('boom');
    const queued = await captureMicrotasks(async () => {
      await expect(policy.execute(() => Promise.reject(failure))).rejects.toBe(failure);
      expect(policy.inFlight).toBe(0);
      expect(policy.limit).toBe(4); // ignored: the limit did not move
    });
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow(
      /classify must return "success", "dropped" or "ignored", got "drop"/,
    );
  });
});

describe('concurrencyLimit: no time left to queue', () => {
  function run(policy: ConcurrencyLimitPolicy, context: Context) {
    const result: { value?: unknown; error?: unknown } = {};
    const sink: Sink<unknown> = {
      ok: value => (result.value = value),
      fail: error => (result.error = error),
    };
    policy.compose(invoke)(() => new Promise(() => {}), context, sink);
    return result;
  }

  it('fails with DeadlineExceededError when the limit has passed but nobody aborted yet', () => {
    const clock = new TestClock({ startMs: 100 });
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 5,
      clock,
    });
    run(policy, new Context(new Scope(), Infinity, 1, clock)); // takes the only slot
    const result = run(policy, new Context(new Scope(), 100, 1, clock));
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(policy.queued).toBe(0);
  });

  it('fails with the scope reason when the call was aborted meanwhile', () => {
    const clock = new TestClock({ startMs: 100 });
    const scope = new Scope();
    const reason = new TimeoutError(50);
    const policy = concurrencyLimit({
      limit: { kind: 'aimd', initial: 1, max: 1 },
      maxQueue: 5,
      // The priority function is user code that runs after the entry check; here it cancels.
      priority: () => {
        scope.abort(reason);
        return 0;
      },
      clock,
    });
    run(policy, new Context(new Scope(), Infinity, 1, clock));
    const result = run(policy, new Context(scope, 100, 1, clock));
    expect(result.error).toBe(reason);
    expect(policy.queued).toBe(0);
  });
});
