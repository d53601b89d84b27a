import { describe, expect, it } from 'vitest';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { Deadline } from './deadline.js';
import {
  InvalidOptionsError,
  isCancelledError,
  isRateLimitedError,
  RateLimitedError,
} from './errors.js';
import { rateLimiter, type RateLimiterEvent, type RateLimiterOptions } from './rate-limiter.js';

describe('rateLimiter: options', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', null, /expected an options object/],
    ['tokensPerSecond missing', {}, /tokensPerSecond must be a finite number > 0, got undefined/],
    [
      'tokensPerSecond 0',
      { tokensPerSecond: 0 },
      /tokensPerSecond must be a finite number > 0, got 0/,
    ],
    ['tokensPerSecond Infinity', { tokensPerSecond: Infinity }, /tokensPerSecond/],
    [
      'burst 0.5',
      { tokensPerSecond: 1, burst: 0.5 },
      /burst \(tokens\) must be a finite number >= 1, got 0.5/,
    ],
    [
      'mode unknown',
      { tokensPerSecond: 1, mode: 'queue' },
      /mode must be "reject" or "wait", got "queue"/,
    ],
    [
      'maxWaitMs without wait mode',
      { tokensPerSecond: 1, maxWaitMs: 10 },
      /maxWaitMs only applies to mode "wait"/,
    ],
    [
      'maxWaitMs negative',
      { tokensPerSecond: 1, mode: 'wait', maxWaitMs: -1 },
      /maxWaitMs \(milliseconds\) must be a finite number >= 0, got -1/,
    ],
    ['name not a string', { tokensPerSecond: 1, name: 3 }, /name must be a non-empty string/],
    ['clock wrong', { tokensPerSecond: 1, clock: { now: () => 0 } }, /clock must implement Clock/],
    ['unknown key', { tokensPerSecond: 1, rate: 3 }, /unknown option "rate"/],
  ];
  it.each(cases)('rejects %s', (_label, options, message) => {
    expect(() => rateLimiter(options as RateLimiterOptions)).toThrow(InvalidOptionsError);
    expect(() => rateLimiter(options as RateLimiterOptions)).toThrow(message);
  });

  it('has documented defaults: burst = tokensPerSecond (at least 1), reject mode', () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 3, clock });
    expect([policy.burst, policy.mode, policy.maxWaitMs, policy.name]).toEqual([
      3,
      'reject',
      Infinity,
      'rate-limiter',
    ]);
    expect(rateLimiter({ tokensPerSecond: 0.5, clock }).burst).toBe(1);
  });
});

describe('rateLimiter: reject mode', () => {
  it('allows a burst, then the steady rate, over virtual time', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 5, clock });
    const admittedAt: number[] = [];
    let rejected = 0;
    for (let t = 0; t <= 1000; t += 10) {
      if (t > clock.now()) await clock.advanceTo(t);
      // Six attempts every 10 ms: far more than the rate allows.
      for (let i = 0; i < 6; i++) {
        try {
          await policy.execute(() => admittedAt.push(clock.now()));
        } catch (error) {
          expect(isRateLimitedError(error)).toBe(true);
          rejected++;
        }
      }
    }
    expect(admittedAt.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(admittedAt.slice(5)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    expect(rejected).toBe(101 * 6 - 15);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports the time until the next token as retryAfterMs', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 2, name: 'api', clock });
    const events: RateLimiterEvent[] = [];
    policy.onEvent(e => events.push(e));
    await policy.execute(() => 1);
    await policy.execute(() => 1);
    await clock.advance(30);
    const error = await policy.execute(() => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(70);
    expect((error as RateLimitedError).retryable).toBe(true);
    expect((error as RateLimitedError).message).toBe('rate limiter "api" has no tokens left');
    expect(events).toEqual([
      { type: 'ratelimit.rejected', policy: 'api', reason: 'no_tokens', retryAfterMs: 70 },
    ]);
    await clock.advance(69);
    await expect(policy.execute(() => 1)).rejects.toMatchObject({ retryAfterMs: 1 });
    await clock.advance(1);
    await expect(policy.execute(() => 'ok')).resolves.toBe('ok');
  });

  it('handles fractional rates and never fills past burst', async () => {
    const clock = new TestClock();
    const slow = rateLimiter({ tokensPerSecond: 0.5, clock });
    await slow.execute(() => 1);
    await expect(slow.execute(() => 1)).rejects.toMatchObject({ retryAfterMs: 2000 });

    const policy = rateLimiter({ tokensPerSecond: 100, burst: 3, clock });
    await clock.advance(60_000);
    expect(policy.tokens).toBe(3);
    for (let i = 0; i < 3; i++) await policy.execute(() => i);
    await expect(policy.execute(() => 1)).rejects.toMatchObject({ retryAfterMs: 10 });
  });

  it('fails at once when the signal is already aborted, without taking a token', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 1, clock });
    const controller = new AbortController();
    controller.abort();
    await expect(policy.execute(() => 1, { signal: controller.signal })).rejects.toSatisfy(
      isCancelledError,
    );
    expect(policy.tokens).toBe(1);
  });
});

describe('rateLimiter: wait mode', () => {
  it('serves waiters in FIFO order, one per token, with a single timer', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 1, mode: 'wait', clock });
    const events: RateLimiterEvent[] = [];
    policy.onEvent(e => events.push(e));
    const ran: [string, number][] = [];
    const calls = ['a', 'b', 'c', 'd'].map(id =>
      observe(policy.execute(() => ran.push([id, clock.now()]))),
    );
    expect(ran).toEqual([['a', 0]]);
    expect(policy.queued).toBe(3);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(300);
    expect(ran).toEqual([
      ['a', 0],
      ['b', 100],
      ['c', 200],
      ['d', 300],
    ]);
    expect(calls.every(c => c.state === 'fulfilled')).toBe(true);
    expect(events).toEqual([
      { type: 'ratelimit.waited', policy: 'rate-limiter', waitedMs: 100, queued: 2 },
      { type: 'ratelimit.waited', policy: 'rate-limiter', waitedMs: 200, queued: 1 },
      { type: 'ratelimit.waited', policy: 'rate-limiter', waitedMs: 300, queued: 0 },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a new call queues behind waiters even when a token has just refilled', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 1, mode: 'wait', clock });
    const ran: string[] = [];
    void policy.execute(() => ran.push('a'));
    void policy.execute(() => ran.push('b'));
    await clock.advance(50);
    void policy.execute(() => ran.push('c'));
    await clock.advance(50);
    expect(ran).toEqual(['a', 'b']);
    await clock.advance(100);
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('a waiter that aborts settles at once and gives its turn to the next', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 1, mode: 'wait', clock });
    const ran: [string, number][] = [];
    void policy.execute(() => ran.push(['a', clock.now()]));
    const controller = new AbortController();
    const b = observe(
      policy.execute(() => ran.push(['b', clock.now()]), { signal: controller.signal }),
    );
    const c = observe(policy.execute(() => ran.push(['c', clock.now()])));
    await clock.advance(40);
    controller.abort('gone');
    await flushMicrotasks();
    expect(b.state).toBe('rejected');
    expect(isCancelledError(b.error)).toBe(true);
    expect(policy.queued).toBe(1);
    await clock.advance(60);
    expect(ran).toEqual([
      ['a', 0],
      ['c', 100],
    ]);
    expect(c.state).toBe('fulfilled');
  });

  it('clears its timer when the last waiter aborts', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 1, mode: 'wait', clock });
    await policy.execute(() => 1);
    const controller = new AbortController();
    const call = observe(policy.execute(() => 2, { signal: controller.signal }));
    expect(clock.pendingTimers).toBe(1);
    controller.abort();
    await flushMicrotasks();
    expect(call.state).toBe('rejected');
    expect(clock.pendingTimers).toBe(0);
    expect(policy.queued).toBe(0);
  });

  it('never waits past the deadline: a turn after it fails at once', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 10, burst: 1, mode: 'wait', clock });
    const events: RateLimiterEvent[] = [];
    policy.onEvent(e => events.push(e));
    void policy.execute(() => 'a');
    void policy.execute(() => 'b'); // turn at 100
    const late = observe(
      policy.execute(() => 'c', { deadline: Deadline.after(150, { clock }) }), // turn would be 200
    );
    await flushMicrotasks();
    expect(late.state).toBe('rejected');
    expect(late.error).toBeInstanceOf(RateLimitedError);
    expect((late.error as RateLimitedError).retryAfterMs).toBe(200);
    expect(events).toEqual([
      { type: 'ratelimit.rejected', policy: 'rate-limiter', reason: 'deadline', retryAfterMs: 200 },
    ]);
    const fits = observe(policy.execute(() => 'd', { deadline: Deadline.after(250, { clock }) }));
    await clock.advance(200);
    expect(fits.value).toBe('d');
  });

  it('a waiter whose deadline is cancelled early leaves at once', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 1, mode: 'wait', clock });
    await policy.execute(() => 1);
    const deadline = Deadline.after(5000, { clock });
    const call = observe(policy.execute(() => 2, { deadline }));
    await clock.advance(10);
    deadline.cancel();
    await flushMicrotasks();
    expect(call.state).toBe('rejected');
    expect(policy.queued).toBe(0);
  });

  it('never waits longer than maxWaitMs', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({
      tokensPerSecond: 10,
      burst: 1,
      mode: 'wait',
      maxWaitMs: 150,
      clock,
    });
    const events: RateLimiterEvent[] = [];
    policy.onEvent(e => events.push(e));
    void policy.execute(() => 'a');
    const b = observe(policy.execute(() => 'b')); // 100 ms
    const c = observe(policy.execute(() => 'c')); // 200 ms > 150
    await flushMicrotasks();
    expect(c.state).toBe('rejected');
    expect((c.error as RateLimitedError).retryAfterMs).toBe(200);
    expect(events).toEqual([
      { type: 'ratelimit.rejected', policy: 'rate-limiter', reason: 'max_wait', retryAfterMs: 200 },
    ]);
    await clock.advance(100);
    expect(b.value).toBe('b');
  });

  it('keeps the steady rate over a long run of waiters', async () => {
    const clock = new TestClock();
    const policy = rateLimiter({ tokensPerSecond: 3, burst: 1, mode: 'wait', clock });
    const times: number[] = [];
    const calls = Array.from({ length: 10 }, () => policy.execute(() => times.push(clock.now())));
    await clock.runAll();
    await Promise.all(calls);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    for (const gap of gaps) expect(gap).toBeCloseTo(1000 / 3, 6);
  });
});
