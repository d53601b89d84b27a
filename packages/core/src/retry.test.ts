import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { constantBackoff, customBackoff, exponentialBackoff } from './backoff.js';
import { clampDelay, MAX_TIMER_DELAY_MS, type Clock } from './clock.js';
import { Deadline } from './deadline.js';
import {
  CircuitOpenError,
  DeadlineExceededError,
  InvalidOptionsError,
  RateLimitedError,
  RetriesExhaustedError,
  TimeoutError,
  isCancelledError,
  isRetriesExhaustedError,
  isRetryBudgetExhaustedError,
} from './errors.js';
import { pipeline } from './pipeline.js';
import { Context, invoke, type ExecutionContext, type Sink } from './policy.js';
import { seededRandom } from './random.js';
import { retry, type RetryEvent, type RetryOptions } from './retry.js';
import { retryBudget } from './retry-budget.js';
import { Scope } from './scope.js';
import { timeout } from './timeout.js';

class CountingClock extends TestClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

/** Work that fails `failures` times (with the given errors, or a fresh retryable Error) then returns `value`. */
function flaky<T>(clock: TestClock, failures: number, value: T, errors?: (n: number) => unknown) {
  const calls: { at: number; attempt: number; context: ExecutionContext }[] = [];
  const work = (context: ExecutionContext): Promise<T> => {
    calls.push({ at: clock.now(), attempt: context.attempt, context });
    const n = calls.length;
    if (n <= failures) return Promise.reject(errors?.(n) ?? new Error(`failure ${n}`));
    return Promise.resolve(value);
  };
  return { work, calls };
}

function policyWithEvents(options: RetryOptions) {
  const policy = retry(options);
  const events: RetryEvent[] = [];
  policy.onEvent(e => events.push(e));
  return { policy, events };
}

const delaysOf = (events: RetryEvent[]) =>
  events.flatMap(e => (e.type === 'retry.scheduled' ? [e.delayMs] : []));

describe('retry: options', () => {
  it('requires maxAttempts and shows how to set it', () => {
    expect(() => retry({} as never)).toThrow(InvalidOptionsError);
    expect(() => retry({} as never)).toThrow(
      /maxAttempts is required.*retry\(\{ maxAttempts: 3 \}\)/,
    );
    expect(() => retry(undefined as never)).toThrow(/retry\(\{ maxAttempts: 3 \}\)/);
  });

  it('validates every option with a message naming it', () => {
    const cases: [unknown, RegExp][] = [
      [{ maxAttempts: 0 }, /maxAttempts must be an integer >= 1, got 0/],
      [{ maxAttempts: 2.5 }, /maxAttempts must be an integer >= 1, got 2.5/],
      [{ maxAttempts: Number.NaN }, /maxAttempts/],
      [{ maxAttempts: '3' }, /maxAttempts must be an integer >= 1, got "3"/],
      [{ maxAttempts: 3, backoff: 100 }, /backoff must be a Backoff .*exponentialBackoff\(\)/],
      [{ maxAttempts: 3, backoff: {} }, /backoff must be a Backoff/],
      [{ maxAttempts: 3, retryOn: true }, /retryOn must be a function/],
      [{ maxAttempts: 3, retryOnResult: 'yes' }, /retryOnResult must be a function/],
      [
        { maxAttempts: 3, budget: true },
        /budget must be a RetryBudget \(e.g. retryBudget\(\)\) or false/,
      ],
      [{ maxAttempts: 3, budget: { tryWithdraw() {} } }, /budget must be a RetryBudget/],
      [
        { maxAttempts: 3, retryAfter: { maxMs: -1 } },
        /retryAfter.maxMs must be a finite number >= 0, got -1/,
      ],
      [{ maxAttempts: 3, retryAfter: { capMs: 5 } }, /retryAfter: unknown option "capMs"/],
      [{ maxAttempts: 3, retryAfter: true }, /retryAfter: expected an options object/],
      [{ maxAttempts: 3, name: '' }, /name must be a non-empty string/],
      [{ maxAttempts: 3, clock: {} }, /clock must implement Clock/],
      [{ maxAttempts: 3, clock: null }, /clock must implement Clock/],
      [{ maxAttempts: 3, random: {} }, /random must implement Random.*seededRandom/],
      [
        { maxAttempts: 3, maxRetries: 2 },
        /unknown option "maxRetries"; known options are maxAttempts/,
      ],
    ];
    for (const [options, message] of cases) {
      expect(() => retry(options as RetryOptions), JSON.stringify(options)).toThrow(message);
    }
  });

  it('exposes resolved defaults', () => {
    const policy = retry({ maxAttempts: 3 });
    expect(policy.name).toBe('retry');
    expect(policy.retryAfterMaxMs).toBe(60_000);
    expect(policy.budget).toBeDefined();
    expect(retry({ maxAttempts: 3, budget: false, retryAfter: false })).toMatchObject({
      budget: undefined,
      retryAfterMaxMs: undefined,
    });
    expect(retry({ maxAttempts: 3, retryAfter: {} }).retryAfterMaxMs).toBe(60_000);
  });
});

describe('retry: success path', () => {
  it('returns a first-attempt result without timers, events or clock reads', async () => {
    const clock = new CountingClock();
    const { policy, events } = policyWithEvents({ maxAttempts: 3, clock, budget: false });
    clock.reads = 0;
    await expect(policy.execute(() => 42)).resolves.toBe(42);
    await expect(policy.execute(async () => 'async')).resolves.toBe('async');
    expect(clock.reads).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(events).toEqual([]);
  });

  it('with the default budget, reads the clock at most once per 32 successful calls', async () => {
    const clock = new CountingClock();
    const policy = retry({ maxAttempts: 3, clock });
    clock.reads = 0;
    for (let i = 0; i < 320; i++) await policy.execute(() => i);
    expect(clock.reads).toBe(10);
  });

  it('runs each attempt with its attempt number, the same signal and the same deadline', async () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 10 }) });
    const { work, calls } = flaky(clock, 2, 'ok');
    const deadline = Deadline.after(1000, { clock });
    const result = observe(policy.execute(work, { deadline }));
    await clock.advance(20);
    expect(result.value).toBe('ok');
    expect(calls.map(c => c.attempt)).toEqual([1, 2, 3]);
    expect(calls.map(c => c.context.deadline?.expiresAt)).toEqual([1000, 1000, 1000]);
    expect(new Set(calls.map(c => c.context.signal)).size).toBe(1);
  });
});

describe('retry: delays', () => {
  it('waits the backoff delay between attempts', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 5,
      clock,
      backoff: exponentialBackoff({ jitter: 'none', baseMs: 100 }),
    });
    const { work, calls } = flaky(clock, 3, 'done');
    const result = observe(policy.execute(work));
    await clock.advance(699);
    expect(result.state).toBe('pending');
    await clock.advance(1);
    expect(result.value).toBe('done');
    expect(calls.map(c => c.at)).toEqual([0, 100, 300, 700]);
    expect(delaysOf(events)).toEqual([100, 200, 400]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('draws jitter from the injected random (default backoff: full jitter, 100 ms base)', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({ maxAttempts: 4, clock, random: seededRandom(7) });
    const result = observe(policy.execute(flaky(clock, 3, 1).work));
    await clock.runAll();
    expect(result.value).toBe(1);
    const expected = exponentialBackoff();
    const random = seededRandom(7);
    let previousDelayMs = 0;
    const want = [1, 2, 3].map(
      attempt => (previousDelayMs = expected.next({ attempt, previousDelayMs, random })),
    );
    expect(delaysOf(events)).toEqual(want);
    expect(want[0]).toBeLessThan(100);
    expect(want[2]).toBeLessThan(400);
  });

  it('a zero delay retries at once, without a timer, and never grows the stack', async () => {
    const clock = new TestClock();
    const policy = retry({
      maxAttempts: 50_000,
      clock,
      budget: false,
      backoff: constantBackoff({ delayMs: 0 }),
    });
    let attempts = 0;
    const error = await policy
      .execute(() => {
        attempts++;
        throw new Error('sync');
      })
      .catch((e: unknown) => e);
    expect(attempts).toBe(50_000);
    expect((error as RetriesExhaustedError).attempts).toHaveLength(50_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects with the error a backoff throws', async () => {
    const boom = new Error('bad backoff');
    const policy = retry({
      maxAttempts: 3,
      clock: new TestClock(),
      backoff: customBackoff(() => {
        throw boom;
      }),
    });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toBe(boom);
  });
});

describe('retry: Retry-After hints', () => {
  const backoff = constantBackoff({ delayMs: 100 });

  async function firstDelay(
    options: Partial<RetryOptions>,
    error: unknown,
  ): Promise<number | undefined> {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({ maxAttempts: 2, clock, backoff, ...options });
    const result = observe(policy.execute(flaky(clock, 1, 'ok', () => error).work));
    await clock.runAll();
    expect(result.value).toBe('ok');
    return delaysOf(events)[0];
  }

  it('waits for the hint when it is longer than the backoff', async () => {
    expect(await firstDelay({}, new RateLimitedError('api', 5000))).toBe(5000);
    expect(await firstDelay({}, new CircuitOpenError('users', 2500))).toBe(2500);
    expect(await firstDelay({}, { retryAfterMs: 700 })).toBe(700);
  });

  it('keeps the backoff when the hint is shorter', async () => {
    expect(await firstDelay({}, new RateLimitedError('api', 20))).toBe(100);
  });

  it('caps the hint at retryAfter.maxMs (default 60 s)', async () => {
    expect(await firstDelay({}, new RateLimitedError('api', 3_600_000))).toBe(60_000);
    expect(
      await firstDelay({ retryAfter: { maxMs: 1000 } }, new RateLimitedError('api', 5000)),
    ).toBe(1000);
    expect(await firstDelay({ retryAfter: { maxMs: 0 } }, new RateLimitedError('api', 5000))).toBe(
      100,
    );
  });

  it('ignores hints with retryAfter: false', async () => {
    expect(await firstDelay({ retryAfter: false }, new RateLimitedError('api', 5000))).toBe(100);
  });
});

describe('retry: cancellation during a delay', () => {
  it('settles at once with the scope reason, clears the timer and leaves the scope', () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 5000 }) });
    const step = policy.compose(invoke);
    const scope = new Scope();
    const outcomes: unknown[] = [];
    const sink: Sink<unknown> = {
      ok: v => outcomes.push(['ok', v]),
      fail: e => outcomes.push(['fail', e]),
    };
    let attempts = 0;
    step(
      () => {
        attempts++;
        throw new Error('sync failure');
      },
      new Context(scope, Infinity, 1, clock),
      sink,
    );
    expect(clock.pendingTimers).toBe(1); // sleeping
    const reason = new Error('stop');
    scope.abort(reason);
    // Synchronously, in the same turn, with the clock untouched.
    expect(outcomes).toEqual([['fail', reason]]);
    expect(clock.now()).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(attempts).toBe(1);
  });

  it('rejects execute() with CancelledError when the caller aborts mid-delay', async () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 2000 }) });
    const controller = new AbortController();
    const { work, calls } = flaky(clock, 5, 'never');
    const result = observe(policy.execute(work, { signal: controller.signal }));
    await clock.advance(50);
    expect(clock.pendingTimers).toBe(1);
    controller.abort(new Error('client went away'));
    await flushMicrotasks();
    expect(result.state).toBe('rejected');
    expect(isCancelledError(result.error)).toBe(true);
    expect(clock.now()).toBe(50);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(10_000);
    expect(calls).toHaveLength(1);
  });

  it('starts no new attempt when the scope aborted while an attempt was running', async () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 5, clock, backoff: constantBackoff({ delayMs: 0 }) });
    const controller = new AbortController();
    let attempts = 0;
    let failLater!: (e: unknown) => void;
    const result = observe(
      policy.execute(
        () => {
          attempts++;
          // Ignores its signal.
          return new Promise((_, reject) => (failLater = reject));
        },
        { signal: controller.signal },
      ),
    );
    controller.abort('bye');
    await flushMicrotasks();
    expect(isCancelledError(result.error)).toBe(true);
    failLater(new Error('late failure'));
    await clock.runAll();
    expect(attempts).toBe(1);
  });
});

describe('retry: deadline', () => {
  it('starts no attempt that the deadline cannot fit, and says why', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 10,
      clock,
      backoff: constantBackoff({ delayMs: 300 }),
    });
    const { work, calls } = flaky(clock, 100, 'never');
    const deadline = Deadline.after(1000, { clock });
    const result = observe(policy.execute(work, { deadline }));
    await clock.advance(900);
    // Attempts at 0, 300, 600, 900; the next would start at 1200 > 1000: give up at 900, now.
    expect(calls.map(c => c.at)).toEqual([0, 300, 600, 900]);
    expect(result.state).toBe('rejected');
    expect(isRetriesExhaustedError(result.error)).toBe(true);
    const error = result.error as RetriesExhaustedError;
    expect(error.message).toMatch(/deadline leaves no room.*100 ms left.*300 ms delay/);
    expect(error.attempts).toHaveLength(4);
    expect(events.at(-1)).toMatchObject({
      type: 'retry.exhausted',
      reason: 'deadline',
      attempts: 4,
    });
    expect(clock.pendingTimers).toBe(1); // only the deadline's own (unref'd) timer
    expect(clock.referencedTimers).toBe(0);
  });

  it('treats a delay ending exactly at the deadline as no room', async () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 100 }) });
    const deadline = Deadline.after(100, { clock });
    const { work, calls } = flaky(clock, 5, 'never');
    const result = observe(policy.execute(work, { deadline }));
    await flushMicrotasks();
    expect(isRetriesExhaustedError(result.error)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('an outer timeout is a deadline for the retries inside it', async () => {
    const clock = new TestClock();
    const p = pipeline(
      timeout({ timeoutMs: 250, clock }),
      retry({ maxAttempts: 10, clock, backoff: constantBackoff({ delayMs: 100 }) }),
    );
    const { work, calls } = flaky(clock, 100, 'never');
    const result = observe(p.execute(work));
    await clock.advance(200);
    // 200 + 100 >= 250: gives up at 200 instead of sleeping into the timeout.
    expect(calls.map(c => c.at)).toEqual([0, 100, 200]);
    expect(isRetriesExhaustedError(result.error)).toBe(true);
  });

  it('retries attempts that a per-attempt timeout cut short', async () => {
    const clock = new TestClock();
    const p = pipeline(
      retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 10 }) }),
      timeout({ timeoutMs: 50, clock }),
    );
    let attempts = 0;
    const result = observe(
      p.execute(ctx => {
        attempts++;
        return ctx.attempt < 3 ? new Promise(() => {}) : 'third time';
      }),
    );
    await clock.advance(200);
    expect(result.value).toBe('third time');
    expect(attempts).toBe(3);
  });

  it('property: the delays never carry the call past its deadline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer(),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 200 }),
        fc.constantFrom('exponential', 'decorrelated', 'constant'),
        async (deadlineMs, seed, maxAttempts, workMs, kind) => {
          const clock = new TestClock();
          const backoff =
            kind === 'constant'
              ? constantBackoff({ delayMs: (seed % 700) >>> 0 })
              : kind === 'exponential'
                ? exponentialBackoff({ baseMs: 50, maxMs: 2000 })
                : exponentialBackoff({ baseMs: 50, maxMs: 2000, jitter: 'equal' });
          const { policy, events } = policyWithEvents({
            maxAttempts,
            clock,
            backoff,
            random: seededRandom(seed),
            budget: false,
          });
          const starts: number[] = [];
          const deadline = Deadline.after(deadlineMs, { clock });
          const result = observe(
            policy.execute(
              () => {
                starts.push(clock.now());
                return new Promise((_, reject) =>
                  clock.setTimer(() => reject(new Error('slow failure')), workMs),
                );
              },
              { deadline },
            ),
          );
          await clock.advanceTo(deadlineMs + 10_000);
          expect(result.state).toBe('rejected');
          const totalDelay = delaysOf(events).reduce((a, b) => a + b, 0);
          expect(totalDelay).toBeLessThan(deadlineMs);
          for (const at of starts) expect(at).toBeLessThan(deadlineMs);
          expect(starts.length).toBeLessThanOrEqual(maxAttempts);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('retry: which failures are retried', () => {
  it('keeps every attempt error, in order, in RetriesExhaustedError', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 3,
      clock,
      backoff: constantBackoff({ delayMs: 1 }),
    });
    const errors = [new Error('a'), new TimeoutError(50), new Error('c')];
    const result = observe(policy.execute(flaky(clock, 3, 'x', n => errors[n - 1]).work));
    await clock.runAll();
    const error = result.error as RetriesExhaustedError;
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect(error.attempts).toEqual(errors);
    expect(error.cause).toBe(errors[2]);
    expect(error.message).toBe('all 3 attempts failed');
    expect(events.at(-1)).toEqual({
      type: 'retry.exhausted',
      policy: 'retry',
      attempts: 3,
      errors,
      reason: 'attempts',
    });
  });

  it('maxAttempts 1 never retries', async () => {
    const clock = new TestClock();
    const { work, calls } = flaky(clock, 1, 'x');
    const error = await retry({ maxAttempts: 1, clock })
      .execute(work)
      .catch((e: unknown) => e);
    expect((error as RetriesExhaustedError).attempts).toHaveLength(1);
    expect(calls).toHaveLength(1);
  });

  it('passes a non-retryable error through unchanged, on any attempt', async () => {
    const clock = new TestClock();
    const fatal = Object.assign(new Error('bad request'), { retryable: false });
    const deadlineError = new DeadlineExceededError();
    for (const [failAt, error] of [
      [1, fatal],
      [2, fatal],
      [3, deadlineError],
    ] as const) {
      const policy = retry({ maxAttempts: 5, clock, backoff: constantBackoff({ delayMs: 0 }) });
      const { work, calls } = flaky(clock, 10, 'x', n =>
        n === failAt ? error : new Error('transient'),
      );
      await expect(policy.execute(work)).rejects.toBe(error);
      expect(calls).toHaveLength(failAt);
    }
  });

  it('uses retryOn(error, attempt) when given', async () => {
    const clock = new TestClock();
    const seen: [unknown, number][] = [];
    const policy = retry({
      maxAttempts: 5,
      clock,
      backoff: constantBackoff({ delayMs: 0 }),
      retryOn: (error, attempt) => {
        seen.push([(error as Error).message, attempt]);
        return attempt < 2;
      },
    });
    const { work } = flaky(clock, 10, 'x', n =>
      Object.assign(new Error(`e${n}`), { retryable: false }),
    );
    await expect(policy.execute(work)).rejects.toThrow('e2');
    expect(seen).toEqual([
      ['e1', 1],
      ['e2', 2],
    ]);
  });

  it('rejects with what retryOn throws', async () => {
    const oops = new Error('predicate bug');
    const policy = retry({
      maxAttempts: 5,
      clock: new TestClock(),
      retryOn: () => {
        throw oops;
      },
    });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toBe(oops);
  });

  it('retries results that retryOnResult rejects', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 4,
      clock,
      backoff: constantBackoff({ delayMs: 5 }),
      retryOnResult: (value, attempt) =>
        (value as { status: number }).status === 503 && attempt > 0,
    });
    const responses = [{ status: 503 }, { status: 503 }, { status: 200 }];
    let i = 0;
    const result = observe(policy.execute(() => responses[i++]));
    await clock.runAll();
    expect(result.value).toEqual({ status: 200 });
    expect(events.map(e => e.type)).toEqual([
      'retry.scheduled',
      'retry.scheduled',
      'retry.succeeded',
    ]);
    expect(events[0]).toMatchObject({ attempt: 2, error: { status: 503 }, outcome: 'result' });
  });

  it('resolves with the last result when it is still rejected on the last attempt', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 3,
      clock,
      backoff: constantBackoff({ delayMs: 5 }),
      retryOnResult: value => value !== 'good',
    });
    let n = 0;
    const result = observe(policy.execute(() => `bad ${++n}`));
    await clock.runAll();
    expect(result.value).toBe('bad 3');
    expect(events.at(-1)).toMatchObject({
      type: 'retry.exhausted',
      errors: ['bad 1', 'bad 2', 'bad 3'],
      reason: 'attempts',
    });
  });

  it('rejects with what retryOnResult throws', async () => {
    const oops = new Error('predicate bug');
    const policy = retry({
      maxAttempts: 3,
      clock: new TestClock(),
      retryOnResult: () => {
        throw oops;
      },
    });
    await expect(policy.execute(() => 1)).rejects.toBe(oops);
  });
});

describe('retry: budget', () => {
  it('stops a retry storm: 1000 failing calls in 10 s retry at most 20% + 10/s x 10 s', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 10,
      clock,
      backoff: constantBackoff({ delayMs: 0 }),
    });
    let attempts = 0;
    const outcomes: unknown[] = [];
    for (let call = 0; call < 1000; call++) {
      outcomes.push(
        await policy
          .execute(() => {
            attempts++;
            throw new Error('down');
          })
          .catch((e: unknown) => e),
      );
      await clock.advance(10);
    }
    const retries = attempts - 1000;
    expect(retries).toBeLessThanOrEqual(0.2 * 1000 + 10 * 10);
    expect(retries).toBeGreaterThanOrEqual(0.2 * 1000);
    const refused = outcomes.filter(isRetryBudgetExhaustedError);
    expect(refused.length).toBeGreaterThan(900);
    // Once the budget is spent, most calls fail after their first attempt.
    const firstOnly = refused.filter(e => e.attempts.length === 1);
    expect(firstOnly.length).toBeGreaterThan(500);
    expect(events.filter(e => e.type === 'retry.budget_exhausted')).toHaveLength(refused.length);
  });

  it('one budget shared by several policies caps them together', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 0, minPerSecond: 1, ttlMs: 3000 }); // 3 retries
    const options = { maxAttempts: 3, clock, budget, backoff: constantBackoff({ delayMs: 0 }) };
    const a = retry(options);
    const b = retry(options);
    let attempts = 0;
    const fail = () => {
      attempts++;
      throw new Error('down');
    };
    const ea = await a.execute(fail).catch((e: unknown) => e);
    const eb = await b.execute(fail).catch((e: unknown) => e);
    expect(isRetriesExhaustedError(ea)).toBe(true); // 2 retries
    expect(isRetryBudgetExhaustedError(eb)).toBe(true); // 1 retry, then refused
    expect(attempts).toBe(3 + 2);
  });

  it('a refused retry of a rejected result resolves with that result', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 0, minPerSecond: 0 });
    const policy = retry({ maxAttempts: 3, clock, budget, retryOnResult: () => true });
    await expect(policy.execute(() => 'meh')).resolves.toBe('meh');
  });

  it('does not spend budget on a retry the deadline rules out', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 0, minPerSecond: 1, ttlMs: 1000 });
    const policy = retry({
      maxAttempts: 3,
      clock,
      budget,
      backoff: constantBackoff({ delayMs: 500 }),
    });
    const deadline = Deadline.after(100, { clock });
    await expect(
      policy.execute(() => Promise.reject(new Error('x')), { deadline }),
    ).rejects.toSatisfy(isRetriesExhaustedError);
    expect(budget.available()).toBe(1);
  });

  it('budget: false retries without a budget', async () => {
    const clock = new TestClock();
    const policy = retry({
      maxAttempts: 300,
      clock,
      budget: false,
      backoff: constantBackoff({ delayMs: 0 }),
    });
    const { work, calls } = flaky(clock, 299, 'finally');
    await expect(policy.execute(work)).resolves.toBe('finally');
    expect(calls).toHaveLength(300);
  });
});

describe('retry: events', () => {
  it('reports scheduled retries and the success after them', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 3,
      clock,
      name: 'users',
      backoff: constantBackoff({ delayMs: 25 }),
    });
    const error = new Error('flake');
    const result = observe(policy.execute(flaky(clock, 1, 'ok', () => error).work));
    await clock.runAll();
    expect(result.value).toBe('ok');
    expect(events).toEqual([
      {
        type: 'retry.scheduled',
        policy: 'users',
        attempt: 2,
        delayMs: 25,
        error,
        outcome: 'error',
      },
      { type: 'retry.succeeded', policy: 'users', attempts: 2 },
    ]);
  });

  it('reports a refused retry', async () => {
    const clock = new TestClock();
    const { policy, events } = policyWithEvents({
      maxAttempts: 3,
      clock,
      budget: retryBudget({ clock, ratio: 0, minPerSecond: 0 }),
    });
    const error = new Error('down');
    await policy.execute(() => Promise.reject(error)).catch(() => {});
    expect(events).toEqual([
      { type: 'retry.budget_exhausted', policy: 'retry', attempts: 1, error },
    ]);
  });

  it('a listener that aborts the call during retry.scheduled stops it at once', () => {
    const clock = new TestClock();
    const policy = retry({ maxAttempts: 3, clock, backoff: constantBackoff({ delayMs: 100 }) });
    const scope = new Scope();
    policy.onEvent(() => scope.abort('stop'));
    const outcomes: unknown[] = [];
    policy.compose(invoke)(
      () => {
        throw new Error('x');
      },
      new Context(scope, Infinity, 1, clock),
      { ok: v => outcomes.push(v), fail: e => outcomes.push(e) },
    );
    expect(outcomes).toEqual(['stop']);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('retry: long delays', () => {
  it('a delay beyond the largest timer delay does not retry early', async () => {
    const test = new TestClock();
    const clock: Clock = {
      now: () => test.now(),
      wallNow: () => test.wallNow(),
      setTimer: (callback, delayMs) => test.setTimer(callback, clampDelay(delayMs)),
    };
    const policy = retry({
      maxAttempts: 2,
      backoff: constantBackoff({ delayMs: MAX_TIMER_DELAY_MS + 1000 }),
      budget: false,
      clock,
    });
    let attempts = 0;
    const result = observe(
      policy.execute(() => (++attempts === 1 ? Promise.reject(new Error('503')) : 'ok')),
    );
    await test.advance(MAX_TIMER_DELAY_MS);
    expect(attempts).toBe(1);
    await test.advance(999);
    expect(attempts).toBe(1);
    await test.advance(1);
    expect(attempts).toBe(2);
    expect(result.value).toBe('ok');
  });
});
