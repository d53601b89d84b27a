import { describe, expect, it, vi } from 'vitest';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { clampDelay, MAX_TIMER_DELAY_MS, type Clock } from './clock.js';
import { Deadline } from './deadline.js';
import { isCancelledError, isDeadlineExceededError, isTimeoutError } from './errors.js';
import { hedge, HedgeCancelledError, type HedgeEvent, type HedgeOptions } from './hedge.js';
import { pipeline } from './pipeline.js';
import type { ExecutionContext } from './policy.js';
import { timeout } from './timeout.js';

interface Run<T> {
  ctx: ExecutionContext;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Work whose every attempt settles only when the test says so. */
function attempts<T>() {
  const runs: Run<T>[] = [];
  const work = (ctx: ExecutionContext) =>
    new Promise<T>((resolve, reject) => {
      runs.push({ ctx, resolve, reject });
    });
  return { work, runs, run: (i: number) => runs[i] as Run<T> };
}

function setup(options: Partial<HedgeOptions> = {}) {
  const clock = new TestClock();
  const policy = hedge({ delay: { kind: 'fixed', delayMs: 100 }, clock, ...options });
  const events: HedgeEvent[] = [];
  policy.onEvent(e => events.push(e));
  return { clock, policy, events };
}

describe('hedge: options', () => {
  const delay = { kind: 'fixed', delayMs: 10 } as const;
  it.each([
    [undefined, /expected an options object/],
    [{}, /delay is required/],
    [{ delay: { kind: 'nope' } }, /delay.kind must be 'fixed' or 'percentile', got nope/],
    [
      { delay: { kind: 'fixed', delayMs: -1 } },
      /delay.delayMs must be a finite number >= 0, got -1/,
    ],
    [{ delay: { kind: 'fixed' } }, /delay.delayMs/],
    [{ delay: { kind: 'fixed', delayMs: 1, percentile: 0.9 } }, /unknown option "percentile"/],
    [{ delay: { kind: 'percentile' } }, /delay.fallbackDelayMs must be a finite number >= 0/],
    [
      { delay: { kind: 'percentile', fallbackDelayMs: 5, percentile: 0 } },
      /percentile must be a fraction in \(0, 1\], got 0/,
    ],
    [{ delay: { kind: 'percentile', fallbackDelayMs: 5, percentile: 95 } }, /got 95; use 0.95/],
    [
      { delay: { kind: 'percentile', fallbackDelayMs: 5, minDelayMs: -2 } },
      /delay.minDelayMs must be/,
    ],
    [
      { delay: { kind: 'percentile', fallbackDelayMs: 5, maxDelayMs: Number.NaN } },
      /delay.maxDelayMs must be/,
    ],
    [
      { delay: { kind: 'percentile', fallbackDelayMs: 5, minDelayMs: 10, maxDelayMs: 5 } },
      /maxDelayMs \(5\) must be >= delay.minDelayMs \(10\)/,
    ],
    [
      { delay: { kind: 'percentile', fallbackDelayMs: 5, minSamples: 0 } },
      /delay.minSamples must be an integer >= 1, got 0/,
    ],
    [{ delay: { kind: 'percentile', fallbackDelayMs: 5, lag: 1 } }, /unknown option "lag"/],
    [{ delay, maxHedges: 0 }, /maxHedges must be an integer >= 1, got 0/],
    [{ delay, maxHedges: 1.5 }, /maxHedges/],
    [{ delay, budgetRatio: 1.5 }, /budgetRatio must be a number in \[0, 1\], got 1.5/],
    [{ delay, budgetMinPerSecond: -1 }, /budgetMinPerSecond must be a finite number >= 0, got -1/],
    [{ delay, hedgeOnError: 'yes' }, /hedgeOnError must be a boolean or a function/],
    [{ delay, name: '' }, /name must be a non-empty string/],
    [{ delay, clock: {} }, /clock must implement Clock/],
    [{ delay, random: { next: 1 } }, /random must implement Random/],
    [{ delay, maxHedge: 2 }, /unknown option "maxHedge"; known options are delay, maxHedges/],
  ])('rejects %j', (options, message) => {
    expect(() => hedge(options as never)).toThrow(message);
  });

  it('has documented defaults', () => {
    const policy = hedge({ delay: { kind: 'percentile', fallbackDelayMs: 40 } });
    expect(policy.name).toBe('hedge');
    expect(policy.maxHedges).toBe(1);
    expect(policy.budgetRatio).toBe(0.05);
    expect(policy.budgetMinPerSecond).toBe(1);
    expect(policy.currentDelayMs()).toBe(40);
  });
});

describe('hedge: attempts', () => {
  it('does not hedge when the first attempt is fast, and leaves no timer', async () => {
    const { clock, policy, events } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(99);
    work.run(0).resolve('fast');
    await clock.advance(0);
    expect(result.value).toBe('fast');
    expect(work.runs).toHaveLength(1);
    expect(work.run(0).ctx.signal.aborted).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    expect(events).toEqual([]);
  });

  it('passes synchronous results and throws through without a timer', async () => {
    const { clock, policy } = setup();
    await expect(policy.execute(() => 7)).resolves.toBe(7);
    const boom = new Error('sync');
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(calls).toBe(1); // a synchronous failure is not hedged
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts the hedge exactly at delayMs with its own context', async () => {
    const { clock, policy, events } = setup({ name: 'users' });
    const work = attempts<string>();
    observe(policy.execute(work.work));
    await clock.advance(99.9);
    expect(work.runs).toHaveLength(1);
    await clock.advance(0.1);
    expect(work.runs).toHaveLength(2);
    expect(work.run(0).ctx.attempt).toBe(1);
    expect(work.run(1).ctx.attempt).toBe(2);
    expect(work.run(1).ctx.signal).not.toBe(work.run(0).ctx.signal);
    expect(events).toEqual([
      { type: 'hedge.started', policy: 'users', attempt: 2, delayMs: 100, trigger: 'delay' },
    ]);
    expect(clock.pendingTimers).toBe(0); // maxHedges 1: nothing more to arm
  });

  it('takes the hedge when it succeeds first and aborts the loser', async () => {
    const { clock, policy, events } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(100);
    await clock.advance(20);
    work.run(1).resolve('hedge');
    await clock.advance(0);
    expect(result.value).toBe('hedge');
    const loser = work.run(0).ctx.signal;
    expect(loser.aborted).toBe(true);
    expect(loser.reason).toBeInstanceOf(HedgeCancelledError);
    expect(isCancelledError(loser.reason)).toBe(true);
    expect((loser.reason as HedgeCancelledError).winner).toBe(2);
    expect(work.run(1).ctx.signal.aborted).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'hedge.won', policy: 'hedge', attempt: 2 });
    // A late result from the loser changes nothing.
    work.run(0).resolve('late');
    await clock.advance(0);
    expect(result.value).toBe('hedge');
  });

  it('takes the first attempt when it wins after the hedge started, aborting the hedge', async () => {
    const { clock, policy, events } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(150);
    work.run(0).resolve('first');
    await clock.advance(0);
    expect(result.value).toBe('first');
    expect(work.run(1).ctx.signal.aborted).toBe(true);
    expect(work.run(0).ctx.signal.aborted).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'hedge.won', policy: 'hedge', attempt: 1 });
  });

  it('waits for the other attempt when one fails, and succeeds with it', async () => {
    const { clock, policy } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(100);
    work.run(0).reject(new Error('first failed'));
    await clock.advance(10);
    expect(result.state).toBe('pending');
    work.run(1).resolve('second');
    await clock.advance(0);
    expect(result.value).toBe('second');
  });

  it('rejects with the last error when every attempt fails', async () => {
    const { clock, policy } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(100);
    const second = new Error('second');
    work.run(1).reject(second);
    await clock.advance(5);
    expect(result.state).toBe('pending');
    work.run(0).reject(new Error('first'));
    await clock.advance(0);
    expect((result.error as Error).message).toBe('first');
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts the next hedge at once when an attempt fails early (gRPC non-fatal status)', async () => {
    const { clock, policy, events } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(30);
    work.run(0).reject(new Error('503'));
    await clock.advance(0);
    expect(work.runs).toHaveLength(2);
    expect(events).toEqual([
      { type: 'hedge.started', policy: 'hedge', attempt: 2, delayMs: 30, trigger: 'error' },
    ]);
    expect(clock.pendingTimers).toBe(0);
    work.run(1).resolve('ok');
    await clock.advance(0);
    expect(result.value).toBe('ok');
  });

  it('does not hedge on an error that says retryable: false, or when hedgeOnError is false', async () => {
    for (const [options, error] of [
      [{}, Object.assign(new Error('400'), { retryable: false })],
      [{ hedgeOnError: false }, new Error('503')],
      [{ hedgeOnError: (e: unknown) => (e as Error).message !== 'nope' }, new Error('nope')],
    ] as const) {
      const { clock, policy } = setup(options);
      const work = attempts<string>();
      const result = observe(policy.execute(work.work));
      await clock.advance(30);
      work.run(0).reject(error);
      await clock.advance(0);
      expect(result.error).toBe(error);
      expect(work.runs).toHaveLength(1);
      expect(clock.pendingTimers).toBe(0);
    }
  });

  it('with maxHedges 2 hedges again after another delay, and the last one can win', async () => {
    const { clock, policy, events } = setup({ maxHedges: 2 });
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(100);
    expect(work.runs).toHaveLength(2);
    await clock.advance(100);
    expect(work.runs).toHaveLength(3);
    expect(work.run(2).ctx.attempt).toBe(3);
    await clock.advance(500);
    expect(work.runs).toHaveLength(3);
    work.run(2).resolve('third');
    await clock.advance(0);
    expect(result.value).toBe('third');
    expect(work.run(0).ctx.signal.aborted).toBe(true);
    expect(work.run(1).ctx.signal.aborted).toBe(true);
    expect(events.map(e => e.type)).toEqual(['hedge.started', 'hedge.started', 'hedge.won']);
  });

  it('gives each attempt its own inner timeout; a timed-out attempt hedges at once', async () => {
    const clock = new TestClock();
    const hedged = hedge({ delay: { kind: 'fixed', delayMs: 100 }, maxHedges: 2, clock });
    const policy = pipeline(hedged, timeout({ timeoutMs: 150, resolutionMs: 0, clock }));
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await clock.advance(150);
    // Attempt 1 timed out at 150 (TimeoutError is retryable): attempt 3 starts at once.
    expect(isTimeoutError(work.run(0).ctx.signal.reason)).toBe(true);
    expect(work.runs).toHaveLength(3);
    await clock.advance(100); // attempt 2 times out at 250
    await clock.advance(50); // attempt 3 times out at 300
    expect(isTimeoutError(result.error)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('hedge: cancellation and deadlines', () => {
  it('aborts every attempt and settles at once when the caller aborts', async () => {
    const { clock, policy } = setup({ maxHedges: 2 });
    const work = attempts<string>();
    const controller = new AbortController();
    const result = observe(policy.execute(work.work, { signal: controller.signal }));
    await clock.advance(120);
    expect(work.runs).toHaveLength(2);
    controller.abort(new Error('client left'));
    await clock.advance(0);
    expect(isCancelledError(result.error)).toBe(true);
    expect(work.run(0).ctx.signal.aborted).toBe(true);
    expect(work.run(1).ctx.signal.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0); // the second hedge's timer is cleared
  });

  it('clears the hedge timer when the caller aborts before the hedge', async () => {
    const { clock, policy } = setup();
    const work = attempts<string>();
    const controller = new AbortController();
    const result = observe(policy.execute(work.work, { signal: controller.signal }));
    await clock.advance(10);
    controller.abort();
    await clock.advance(0);
    expect(isCancelledError(result.error)).toBe(true);
    expect(work.run(0).ctx.signal.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(1000);
    expect(work.runs).toHaveLength(1);
  });

  it('rejects at once when the scope is already aborted', async () => {
    const { clock, policy } = setup();
    const deadline = Deadline.after(10, { clock });
    deadline.cancel();
    let calls = 0;
    await expect(policy.execute(() => calls++, { deadline })).rejects.toSatisfy(
      isDeadlineExceededError,
    );
    expect(calls).toBe(0);
  });

  it('never starts a hedge the deadline cannot fit', async () => {
    const { clock, policy, events } = setup();
    const work = attempts<string>();
    const result = observe(policy.execute(work.work, { deadline: Deadline.after(100, { clock }) }));
    expect(clock.pendingTimers).toBe(1); // only the deadline's own timer
    await clock.advance(100);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(work.runs).toHaveLength(1);
    expect(work.run(0).ctx.signal.aborted).toBe(true);
    expect(events).toEqual([]);
  });

  it('stops hedging when the next hedge would start after the deadline', async () => {
    const { clock, policy } = setup({ maxHedges: 3 });
    const work = attempts<string>();
    const deadline = Deadline.after(250, { clock });
    const result = observe(policy.execute(work.work, { deadline }));
    await clock.advance(200);
    expect(work.runs).toHaveLength(3);
    expect(clock.pendingTimers).toBe(1); // the deadline; a hedge at 300 would be too late
    expect(work.run(2).ctx.deadline?.expiresAt).toBe(250);
    await clock.advance(50);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(work.runs.every(r => r.ctx.signal.aborted)).toBe(true);
  });
});

describe('hedge: budget', () => {
  it('limits hedges to budgetRatio of calls over 1000 slow calls', async () => {
    const { clock, policy, events } = setup({
      delay: { kind: 'fixed', delayMs: 10 },
      budgetMinPerSecond: 0,
    });
    const work = attempts<number>();
    const results = Array.from({ length: 1000 }, () => observe(policy.execute(work.work)));
    await clock.advance(10);
    expect(work.runs.length - 1000).toBe(50);
    expect(events.filter(e => e.type === 'hedge.started')).toHaveLength(50);
    expect(events.filter(e => e.type === 'hedge.budget_exhausted')).toHaveLength(950);
    for (const run of work.runs) run.resolve(1);
    await clock.advance(0);
    expect(results.every(r => r.state === 'fulfilled')).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps extra load near 5% (plus the 1/s minimum) for a steady stream of slow calls', async () => {
    const { clock, policy } = setup({ delay: { kind: 'fixed', delayMs: 20 } });
    policy.onEvent(() => {});
    const work = attempts<number>();
    let started = 0;
    for (let i = 0; i < 1000; i++) {
      observe(policy.execute(work.work));
      started++;
      await clock.advance(10);
    }
    const hedges = work.runs.length - started;
    // 1000 calls over 10 s: 5% of them (50) plus 1 per second over the 10 s window (10).
    expect(hedges).toBeGreaterThanOrEqual(50);
    expect(hedges).toBeLessThanOrEqual(60);
    for (const run of work.runs) run.resolve(1);
    await clock.advance(0);
  });

  it('refills as the window slides', async () => {
    const { clock, policy } = setup({
      delay: { kind: 'fixed', delayMs: 10 },
      budgetMinPerSecond: 1,
    });
    const work = attempts<number>();
    for (let i = 0; i < 20; i++) observe(policy.execute(work.work));
    await clock.advance(10);
    expect(work.runs.length - 20).toBe(11); // 10 from the minimum, 1 from 5% of 20
    await clock.advance(10_000);
    for (let i = 0; i < 5; i++) observe(policy.execute(work.work));
    await clock.advance(10);
    expect(work.runs.length - 25).toBe(11 + 5);
    for (const run of work.runs) run.resolve(1);
    await clock.advance(0);
  });
});

describe('hedge: percentile delay', () => {
  async function callTaking(
    clock: TestClock,
    policy: ReturnType<typeof hedge>,
    latencyMs: number,
  ): Promise<number> {
    const work = attempts<number>();
    const result = observe(policy.execute(work.work));
    await clock.advance(latencyMs);
    work.run(0).resolve(latencyMs);
    await clock.advance(0);
    expect(result.state).toBe('fulfilled');
    return work.runs.length;
  }

  it('uses fallbackDelayMs until minSamples, then the observed percentile', async () => {
    const clock = new TestClock();
    const policy = hedge({
      delay: { kind: 'percentile', fallbackDelayMs: 500, minSamples: 20 },
      budgetRatio: 1,
      clock,
    });
    for (let i = 1; i <= 19; i++) await callTaking(clock, policy, i * 5);
    expect(policy.currentDelayMs()).toBe(500);
    for (let i = 0; i < 181; i++) await callTaking(clock, policy, (i % 100) + 1);
    // Latencies are roughly uniform on 1..100 ms: p95 is about 95 ms (buckets are 10% wide).
    expect(policy.currentDelayMs()).toBeGreaterThan(85);
    expect(policy.currentDelayMs()).toBeLessThan(105);
  });

  it('adapts when latency shifts, and hedges at the adapted delay', async () => {
    const clock = new TestClock();
    const policy = hedge({
      delay: { kind: 'percentile', fallbackDelayMs: 500, minSamples: 5 },
      budgetRatio: 1,
      clock,
    });
    for (let i = 0; i < 300; i++) await callTaking(clock, policy, 200);
    expect(policy.currentDelayMs()).toBeGreaterThan(180);
    expect(policy.currentDelayMs()).toBeLessThan(221);
    for (let i = 0; i < 3000; i++) await callTaking(clock, policy, 10);
    const delay = policy.currentDelayMs();
    expect(delay).toBeGreaterThan(9);
    expect(delay).toBeLessThan(11.1);
    // A slow call now hedges after about 10 ms.
    const work = attempts<number>();
    observe(policy.execute(work.work));
    await clock.advance(delay - 0.01);
    expect(work.runs).toHaveLength(1);
    await clock.advance(0.01);
    expect(work.runs).toHaveLength(2);
    work.run(1).resolve(1);
    await clock.advance(0);
  });

  it('clamps the delay to minDelayMs and maxDelayMs', async () => {
    const clock = new TestClock();
    const low = hedge({
      delay: { kind: 'percentile', fallbackDelayMs: 50, minSamples: 1, minDelayMs: 30 },
      clock,
    });
    const high = hedge({
      delay: { kind: 'percentile', fallbackDelayMs: 50, minSamples: 1, maxDelayMs: 80 },
      clock,
    });
    await callTaking(clock, low, 5);
    await callTaking(clock, high, 400);
    expect(low.currentDelayMs()).toBe(30);
    expect(high.currentDelayMs()).toBe(80);
  });

  it('records a losing first attempt as a lower bound so the percentile does not collapse', async () => {
    const clock = new TestClock();
    const policy = hedge({
      delay: { kind: 'percentile', fallbackDelayMs: 50, minSamples: 1000 },
      budgetRatio: 1,
      clock,
    });
    const work = attempts<number>();
    observe(policy.execute(work.work));
    await clock.advance(60);
    work.run(1).resolve(1);
    await clock.advance(0);
    expect(policy.latency?.recorded).toBe(2); // the hedge's 10 ms and the first attempt's 60 ms
    expect(policy.latency?.percentile(1)).toBeGreaterThan(55);
  });
});

describe('hedge: robustness', () => {
  it('a hedgeOnError that throws starts no hedge, still settles the call and reports the bug', async () => {
    const bug = new Error('hedgeOnError bug');
    const failure = new Error('503');
    const { clock, policy } = setup({
      hedgeOnError: () => {
        throw bug;
      },
    });
    const work = attempts<string>();
    const queued: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(fn => queued.push(fn));
    let result;
    try {
      result = observe(policy.execute(work.work));
      await flushMicrotasks();
      work.run(0).reject(failure);
      await flushMicrotasks();
    } finally {
      spy.mockRestore();
    }
    expect(result.error).toBe(failure);
    expect(work.runs).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow(bug);
  });

  it('a throwing hedgeOnError does not cut short the attempts still running', async () => {
    const { clock, policy } = setup({
      hedgeOnError: () => {
        throw new Error('bug');
      },
    });
    const work = attempts<string>();
    const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(() => {});
    try {
      const result = observe(policy.execute(work.work));
      await clock.advance(100);
      expect(work.runs).toHaveLength(2);
      work.run(0).reject(new Error('first failed'));
      await flushMicrotasks();
      expect(result.state).toBe('pending');
      work.run(1).resolve('second');
      await flushMicrotasks();
      expect(result.value).toBe('second');
    } finally {
      spy.mockRestore();
    }
  });

  it('a hedge delay beyond the largest timer delay does not hedge early', async () => {
    const test = new TestClock();
    const clock: Clock = {
      now: () => test.now(),
      wallNow: () => test.wallNow(),
      setTimer: (callback, delayMs) => test.setTimer(callback, clampDelay(delayMs)),
    };
    const policy = hedge({ delay: { kind: 'fixed', delayMs: MAX_TIMER_DELAY_MS + 1000 }, clock });
    const work = attempts<string>();
    const result = observe(policy.execute(work.work));
    await test.advance(MAX_TIMER_DELAY_MS);
    expect(work.runs).toHaveLength(1);
    await test.advance(999);
    expect(work.runs).toHaveLength(1);
    await test.advance(1);
    expect(work.runs).toHaveLength(2);
    work.run(1).resolve('hedge');
    await flushMicrotasks();
    expect(result.value).toBe('hedge');
    expect(test.pendingTimers).toBe(0);
  });
});
