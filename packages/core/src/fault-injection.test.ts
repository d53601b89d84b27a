import { describe, expect, it } from 'vitest';
import { TestClock, observe } from '@bulwark/testing';
import { constantBackoff } from './backoff.js';
import { clampDelay, MAX_TIMER_DELAY_MS, type Clock } from './clock.js';
import { Deadline } from './deadline.js';
import {
  InjectedFaultError,
  isCancelledError,
  isDeadlineExceededError,
  isTimeoutError,
} from './errors.js';
import { faultInjection, type FaultInjectionEvent } from './fault-injection.js';
import { pipeline } from './pipeline.js';
import { retry } from './retry.js';
import { Context, type ExecutionContext } from './policy.js';
import { seededRandom } from './random.js';
import { Scope } from './scope.js';
import { timeout } from './timeout.js';

describe('faultInjection: options', () => {
  const fault = { kind: 'error' } as const;
  it.each([
    [undefined, /expected an options object/],
    [{ fault }, /rate must be a number in \[0, 1\], got undefined/],
    [{ rate: 1.2, fault }, /rate must be a number in \[0, 1\], got 1.2/],
    [{ rate: 0.1 }, /fault is required/],
    [
      { rate: 0.1, fault: { kind: 'boom' } },
      /fault.kind must be 'error', 'latency' or 'result', got boom/,
    ],
    [
      { rate: 0.1, fault: { kind: 'latency' } },
      /fault.delayMs must be a finite number >= 0, got undefined/,
    ],
    [
      { rate: 0.1, fault: { kind: 'latency', delayMs: -5 } },
      /fault.delayMs must be a finite number >= 0, got -5/,
    ],
    [{ rate: 0.1, fault: { kind: 'result' } }, /fault.value is required/],
    [{ rate: 0.1, fault: { kind: 'error', delayMs: 5 } }, /unknown option "delayMs"/],
    [{ rate: 0.1, fault, enabled: 'yes' }, /enabled must be a boolean or a function/],
    [{ rate: 0.1, fault, name: '' }, /name must be a non-empty string/],
    [{ rate: 0.1, fault, clock: { now: () => 0 } }, /clock must implement Clock/],
    [{ rate: 0.1, fault, random: Math.random }, /random must implement Random/],
    [{ rate: 0.1, fault, chance: 1 }, /unknown option "chance"/],
  ])('rejects %j', (options, message) => {
    expect(() => faultInjection(options as never)).toThrow(message);
  });
});

describe('faultInjection', () => {
  it('injects errors at the configured rate (seeded, 1000 calls at 0.1)', async () => {
    const policy = faultInjection({
      rate: 0.1,
      fault: { kind: 'error' },
      random: seededRandom(42),
    });
    let ran = 0;
    let injected = 0;
    for (let i = 0; i < 1000; i++) {
      try {
        await policy.execute(() => {
          ran++;
          return i;
        });
      } catch (error) {
        expect(error).toBeInstanceOf(InjectedFaultError);
        injected++;
      }
    }
    expect(injected + ran).toBe(1000);
    // Binomial(1000, 0.1) has sd ~9.5; seed 42 gives 101. The seed is fixed, so this is deterministic.
    expect(injected).toBeGreaterThanOrEqual(90);
    expect(injected).toBeLessThanOrEqual(110);
  });

  it('rate 0 never injects; rate 1 always does', async () => {
    const never = faultInjection({ rate: 0, fault: { kind: 'result', value: 'x' } });
    const always = faultInjection({ rate: 1, fault: { kind: 'result', value: 'x' } });
    for (let i = 0; i < 50; i++) {
      await expect(never.execute(() => 'real')).resolves.toBe('real');
      await expect(always.execute(() => 'real')).resolves.toBe('x');
    }
  });

  it('uses a custom error or an error factory, and emits fault.injected', async () => {
    const custom = new Error('chaos');
    const policy = faultInjection({
      rate: 1,
      fault: { kind: 'error', error: custom },
      name: 'chaos',
    });
    const events: FaultInjectionEvent[] = [];
    policy.onEvent(e => events.push(e));
    await expect(policy.execute(() => 1)).rejects.toBe(custom);
    expect(events).toEqual([{ type: 'fault.injected', policy: 'chaos', kind: 'error' }]);
    const factory = faultInjection({
      rate: 1,
      fault: {
        kind: 'error',
        error: (ctx: ExecutionContext) => new Error(`attempt ${ctx.attempt}`),
      },
    });
    await expect(factory.execute(() => 1)).rejects.toThrow('attempt 1');
    const defaults = faultInjection({ rate: 1, fault: { kind: 'error' } });
    const error = await defaults.execute(() => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InjectedFaultError);
    expect((error as InjectedFaultError).code).toBe('INJECTED_FAULT');
    expect((error as InjectedFaultError).retryable).toBe(true);
  });

  it('returns the injected result without running the work', async () => {
    let ran = false;
    const policy = faultInjection({ rate: 1, fault: { kind: 'result', value: { stub: true } } });
    await expect(
      policy.execute(() => {
        ran = true;
        return { stub: false };
      }),
    ).resolves.toEqual({ stub: true });
    expect(ran).toBe(false);
  });

  it('delays the work by delayMs', async () => {
    const clock = new TestClock();
    const policy = faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 300 }, clock });
    let startedAt = -1;
    const result = observe(
      policy.execute(() => {
        startedAt = clock.now();
        return 'done';
      }),
    );
    await clock.advance(299);
    expect(startedAt).toBe(-1);
    await clock.advance(1);
    expect(startedAt).toBe(300);
    expect(result.value).toBe('done');
    expect(clock.pendingTimers).toBe(0);
  });

  it('aborts the injected latency at once when the caller cancels', async () => {
    const clock = new TestClock();
    const policy = faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 10_000 }, clock });
    const controller = new AbortController();
    let ran = false;
    const result = observe(
      policy.execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    );
    await clock.advance(5);
    controller.abort();
    await clock.advance(0);
    expect(isCancelledError(result.error)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(20_000);
    expect(ran).toBe(false);
  });

  it('cuts the latency at the deadline and fails with the limit error', async () => {
    const clock = new TestClock();
    const policy = faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 10_000 }, clock });
    let ran = false;
    const result = observe(
      policy.execute(
        () => {
          ran = true;
        },
        { deadline: Deadline.after(200, { clock }) },
      ),
    );
    await clock.advance(199);
    expect(result.state).toBe('pending');
    await clock.advance(1);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(ran).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('inside an outer timeout, the latency ends with the TimeoutError', async () => {
    const clock = new TestClock();
    const policy = pipeline(
      timeout({ timeoutMs: 100, resolutionMs: 0, clock }),
      faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 500 }, clock }),
    );
    const result = observe(policy.execute(() => 'x'));
    await clock.advance(100);
    expect(isTimeoutError(result.error)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('fails with DeadlineExceededError when nobody else enforces the limit', async () => {
    const clock = new TestClock();
    const policy = faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 500 }, clock });
    // A step that narrows expiresAt without arming anything (like a deadline read from a header).
    const step = policy.compose((work, context, sink) => sink.ok(work(context) as never));
    const outcome: { error?: unknown; value?: unknown } = {};
    step(() => 'x', new Context(new Scope(), 50, 1, clock), {
      ok: value => (outcome.value = value),
      fail: error => (outcome.error = error),
    });
    await clock.advance(50);
    expect(isDeadlineExceededError(outcome.error)).toBe(true);
  });

  it('rejects at once when the scope is already aborted', async () => {
    const clock = new TestClock();
    const policy = faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 50 }, clock });
    const deadline = Deadline.after(100, { clock });
    const result = observe(policy.execute(() => 'x', { deadline }));
    deadline.cancel();
    await clock.advance(0);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('can be turned off and on with enabled', async () => {
    let on = false;
    const policy = faultInjection({
      rate: 1,
      fault: { kind: 'result', value: 'chaos' },
      enabled: () => on,
    });
    await expect(policy.execute(() => 'real')).resolves.toBe('real');
    on = true;
    await expect(policy.execute(() => 'real')).resolves.toBe('chaos');
    on = false;
    await expect(policy.execute(() => 'real')).resolves.toBe('real');
    const off = faultInjection({ rate: 1, fault: { kind: 'error' }, enabled: false });
    await expect(off.execute(() => 'real')).resolves.toBe('real');
  });

  it('does not consume randomness while disabled', async () => {
    let draws = 0;
    const random = { next: () => (draws++, 0) };
    const policy = faultInjection({ rate: 0.5, fault: { kind: 'error' }, enabled: false, random });
    await policy.execute(() => 1);
    expect(draws).toBe(0);
  });
});

describe('faultInjection: robustness', () => {
  it('an enabled() that throws rejects the call with its error', async () => {
    const bug = new Error('enabled bug');
    const policy = faultInjection({
      rate: 1,
      fault: { kind: 'error' },
      enabled: () => {
        throw bug;
      },
    });
    let ran = false;
    await expect(policy.execute(() => (ran = true))).rejects.toBe(bug);
    expect(ran).toBe(false);
  });

  it('an enabled() that throws on a retry, from a timer, still settles the call', async () => {
    const clock = new TestClock();
    const bug = Object.assign(new Error('enabled bug'), { retryable: false });
    let reads = 0;
    const policy = pipeline(
      retry({ maxAttempts: 3, backoff: constantBackoff({ delayMs: 10 }), budget: false, clock }),
      faultInjection({
        rate: 1,
        fault: { kind: 'error' },
        enabled: () => {
          if (reads++ > 0) throw bug;
          return true;
        },
        clock,
      }),
    );
    const result = observe(policy.execute(() => 'real'));
    await clock.advance(10); // the retry's timer runs the step; the throw must not escape it
    expect(result.state).toBe('rejected');
    expect(result.error).toBe(bug);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a random that throws rejects the call too', async () => {
    const bug = new Error('random bug');
    const policy = faultInjection({
      rate: 0.5,
      fault: { kind: 'error' },
      random: {
        next: () => {
          throw bug;
        },
      },
    });
    await expect(policy.execute(() => 'x')).rejects.toBe(bug);
  });

  it('a latency beyond the largest timer delay does not end early', async () => {
    const test = new TestClock();
    const clock: Clock = {
      now: () => test.now(),
      wallNow: () => test.wallNow(),
      setTimer: (callback, delayMs) => test.setTimer(callback, clampDelay(delayMs)),
    };
    const policy = faultInjection({
      rate: 1,
      fault: { kind: 'latency', delayMs: MAX_TIMER_DELAY_MS + 1000 },
      clock,
    });
    let ran = false;
    const result = observe(policy.execute(() => (ran = true)));
    await test.advance(MAX_TIMER_DELAY_MS);
    expect(ran).toBe(false);
    await test.advance(1000);
    expect(ran).toBe(true);
    expect(result.value).toBe(true);
  });
});
