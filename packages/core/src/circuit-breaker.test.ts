import { describe, expect, it, vi } from 'vitest';
import { controllableWork, TestClock } from '@bulwark/testing';
import {
  BREAKER_IGNORED_CODES,
  circuitBreaker,
  isIgnoredByBreaker,
  type BreakerSnapshot,
  type CircuitBreakerEvent,
  type CircuitBreakerOptions,
  type CircuitBreakerPolicy,
} from './circuit-breaker.js';
import { Deadline } from './deadline.js';
import {
  BulkheadFullError,
  BulwarkError,
  CancelledError,
  CircuitOpenError,
  InvalidOptionsError,
  LoadShedError,
  RateLimitedError,
  isCancelledError,
  isCircuitOpenError,
  isDeadlineExceededError,
  isTimeoutError,
} from './errors.js';
import { bulkhead } from './bulkhead.js';
import { HedgeCancelledError } from './hedge.js';
import { pipeline } from './pipeline.js';
import type { Work } from './policy.js';
import { timeout } from './timeout.js';

const boom = new Error('boom');
const fail: Work<never> = () => Promise.reject(boom);
const succeed: Work<string> = () => Promise.resolve('ok');

/** Runs `work` and reports how it settled, without throwing. */
async function outcome<T>(
  breaker: CircuitBreakerPolicy,
  work: Work<T>,
): Promise<{ ok: T } | { error: unknown }> {
  try {
    return { ok: await breaker.execute(work) };
  } catch (error) {
    return { error };
  }
}

async function failTimes(breaker: CircuitBreakerPolicy, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await outcome(breaker, fail);
}

async function succeedTimes(breaker: CircuitBreakerPolicy, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await outcome(breaker, succeed);
}

function recordEvents(breaker: CircuitBreakerPolicy, filter?: (e: CircuitBreakerEvent) => boolean) {
  const events: CircuitBreakerEvent[] = [];
  breaker.onEvent(e => {
    if (filter === undefined || filter(e)) events.push(e);
  });
  return events;
}

const stateChanges = (e: CircuitBreakerEvent) =>
  e.type !== 'breaker.success' && e.type !== 'breaker.failure' && e.type !== 'breaker.rejected';

describe('circuitBreaker: consecutive trigger', () => {
  it('opens after N failures in a row; a success in between starts over', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 3 }, clock });
    await failTimes(breaker, 2);
    await succeedTimes(breaker, 1);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    const rejected = await outcome(breaker, succeed);
    expect('error' in rejected && rejected.error).toBeInstanceOf(CircuitOpenError);
  });

  it('passes values and errors through unchanged', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 5 } });
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    await expect(breaker.execute(fail)).rejects.toBe(boom);
    await expect(
      breaker.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('does not read the clock on the closed path', async () => {
    const clock = new TestClock();
    const now = vi.spyOn(clock, 'now');
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 3 }, clock });
    await succeedTimes(breaker, 5);
    await failTimes(breaker, 2);
    expect(now).not.toHaveBeenCalled();
  });

  it('counts consecutive slow calls toward the same threshold', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 2 },
      slowCall: { thresholdMs: 100, rate: 1 },
      clock,
    });
    const events = recordEvents(breaker);
    const slowOnce = async () => {
      const work = controllableWork();
      const result = breaker.execute(work.work);
      await clock.advance(101);
      work.resolve('late');
      await expect(result).resolves.toBe('late');
    };
    await slowOnce();
    expect(breaker.state).toBe('closed');
    await slowOnce();
    expect(breaker.state).toBe('open');
    expect(events.find(e => e.type === 'breaker.opened')).toMatchObject({ reason: 'slow_calls' });
    expect(events.filter(e => e.type === 'breaker.failure')).toMatchObject([
      { cause: 'slow', error: undefined },
      { cause: 'slow', error: undefined },
    ]);
  });

  it('a call of exactly thresholdMs is not slow', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      slowCall: { thresholdMs: 100, rate: 1 },
      clock,
    });
    const work = controllableWork();
    const result = breaker.execute(work.work);
    await clock.advance(100);
    work.resolve('on time');
    await result;
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: closed-path successes', () => {
  it('does not record a success admitted before the breaker opened (nor after a re-close)', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 2, failureRate: 0.5 },
      openMs: 1_000,
      clock,
    });
    const slow = controllableWork<string>();
    const pending = breaker.execute(slow.work); // admitted while closed
    await failTimes(breaker, 2); // 2 of 2 failed: opens
    expect(breaker.state).toBe('open');
    breaker.reset(); // closed again, empty window, new generation
    slow.resolve('late');
    await expect(pending).resolves.toBe('late');
    // Had the late success been recorded, this one failure would make 1 of 2 and open it.
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
    expect(breaker.metrics()).toEqual({ calls: 1, failures: 1, slowCalls: 0 });
  });
});

describe('circuitBreaker: count trigger', () => {
  it('stays closed until minimumCalls, then opens at exactly failureRate (>=)', async () => {
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 10, failureRate: 0.5, minimumCalls: 4 },
    });
    await failTimes(breaker, 3);
    expect(breaker.state).toBe('closed'); // 3 calls < minimumCalls, even at 100% failures
    await succeedTimes(breaker, 1);
    // 4 calls, 3 failures = 75%
    expect(breaker.state).toBe('open');

    const atThreshold = circuitBreaker({
      trigger: { kind: 'count', windowSize: 4, failureRate: 0.5 },
    });
    await succeedTimes(atThreshold, 2);
    await failTimes(atThreshold, 1);
    expect(atThreshold.state).toBe('closed');
    await failTimes(atThreshold, 1); // 2 of 4 = 0.5 exactly
    expect(atThreshold.state).toBe('open');
  });

  it('defaults minimumCalls to windowSize', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'count', windowSize: 5, failureRate: 0.2 } });
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
    expect(breaker.metrics()).toEqual({ calls: 4, failures: 4, slowCalls: 0 });
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('stays closed below the rate as old outcomes slide out', async () => {
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 4, failureRate: 0.75 },
    });
    for (let i = 0; i < 20; i++) await outcome(breaker, i % 2 === 0 ? fail : succeed);
    expect(breaker.state).toBe('closed');
    expect(breaker.metrics()).toEqual({ calls: 4, failures: 2, slowCalls: 0 });
  });

  it('opens on the slow-call rate over the same window', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 4, failureRate: 1 },
      slowCall: { thresholdMs: 50, rate: 0.5 },
      clock,
    });
    const events = recordEvents(breaker, e => e.type === 'breaker.opened');
    await succeedTimes(breaker, 2);
    for (let i = 0; i < 2; i++) {
      const work = controllableWork();
      const result = breaker.execute(work.work);
      await clock.advance(60);
      work.resolve('slow');
      await result;
      if (i === 0) expect(breaker.metrics()).toEqual({ calls: 3, failures: 0, slowCalls: 1 });
    }
    expect(breaker.state).toBe('open'); // 2 slow of 4 = 0.5
    expect(breaker.metrics()).toEqual({ calls: 0, failures: 0, slowCalls: 0 }); // emptied on opening
    expect(events).toMatchObject([{ reason: 'slow_calls', from: 'closed', to: 'open' }]);
  });

  it('counts a slow failure as both a failure and a slow call', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 10, failureRate: 1 },
      slowCall: { thresholdMs: 50, rate: 1 },
      clock,
    });
    const work = controllableWork();
    const result = breaker.execute(work.work);
    await clock.advance(60);
    work.reject(boom);
    await expect(result).rejects.toBe(boom);
    expect(breaker.metrics()).toEqual({ calls: 1, failures: 1, slowCalls: 1 });
  });
});

describe('circuitBreaker: time trigger', () => {
  it('waits for minimumCalls (default 10) in the window, then opens at the rate', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'time', windowMs: 10_000, failureRate: 0.5 },
      clock,
    });
    await failTimes(breaker, 9);
    expect(breaker.state).toBe('closed');
    await succeedTimes(breaker, 1); // 9 of 10
    expect(breaker.state).toBe('open');
  });

  it('old buckets stop counting after windowMs', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5, minimumCalls: 4, buckets: 10 },
      clock,
    });
    await failTimes(breaker, 3); // at t=0
    await clock.advance(500);
    expect(breaker.metrics()).toEqual({ calls: 3, failures: 3, slowCalls: 0 });
    await clock.advance(500); // t=1000: the bucket [0, 100) has left the window
    expect(breaker.metrics()).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed'); // 1 call: the old failures do not count toward 4
    await succeedTimes(breaker, 3); // 1 of 4 < 0.5
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1); // 2 of 5 < 0.5
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1); // 3 of 6 = 0.5
    expect(breaker.state).toBe('open');
  });

  it('opens on the slow-call rate', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'time', windowMs: 1000, failureRate: 1, minimumCalls: 2 },
      slowCall: { thresholdMs: 10, rate: 0.5 },
      clock,
    });
    await succeedTimes(breaker, 1);
    const work = controllableWork();
    const result = breaker.execute(work.work);
    await clock.advance(20);
    work.resolve('slow');
    await result;
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: open and half-open', () => {
  it('rejects while open with the remaining open time, and half-opens after openMs (not before)', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 1000,
      clock,
      name: 'users',
    });
    const events = recordEvents(breaker);
    await failTimes(breaker, 1);
    await clock.advance(400);
    const work = controllableWork();
    const early = await outcome(breaker, work.work);
    expect(work.starts).toBe(0);
    const error = (early as { error: CircuitOpenError }).error;
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error.breaker).toBe('users');
    expect(error.retryAfterMs).toBe(600);
    expect(events.at(-1)).toEqual({
      type: 'breaker.rejected',
      policy: 'users',
      state: 'open',
      retryAfterMs: 600,
    });
    await clock.advance(599);
    await outcome(breaker, work.work);
    expect(work.starts).toBe(0);
    expect(breaker.state).toBe('open'); // lazy: nothing happens until a call arrives
    await clock.advance(1);
    expect(breaker.state).toBe('open');
    const probe = breaker.execute(work.work);
    expect(work.starts).toBe(1);
    expect(breaker.state).toBe('half-open');
    work.resolve('back');
    await expect(probe).resolves.toBe('back');
    expect(breaker.state).toBe('closed');
    expect(events.filter(stateChanges)).toEqual([
      {
        type: 'breaker.opened',
        policy: 'users',
        from: 'closed',
        to: 'open',
        reason: 'failures',
        openMs: 1000,
      },
      { type: 'breaker.half_opened', policy: 'users', from: 'open', to: 'half-open' },
      { type: 'breaker.closed', policy: 'users', from: 'half-open', to: 'closed' },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('closes only after successesToClose probes succeed', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      halfOpen: { probes: 2, successesToClose: 3 },
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const a = controllableWork();
    const b = controllableWork();
    const c = controllableWork();
    const pa = breaker.execute(a.work);
    const pb = breaker.execute(b.work);
    await expect(breaker.execute(c.work)).rejects.toSatisfy(isCircuitOpenError); // 2 slots taken
    a.resolve('a');
    await pa;
    expect(breaker.state).toBe('half-open');
    const pc = breaker.execute(c.work); // the slot a freed
    expect(c.starts).toBe(1);
    b.resolve('b');
    await pb;
    expect(breaker.state).toBe('half-open');
    c.resolve('c');
    await pc;
    expect(breaker.state).toBe('closed');
  });

  it('defaults successesToClose to probes', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      halfOpen: { probes: 2 },
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('half-open');
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('reopens on any probe failure, with a backoff capped at maxMs, reset by a close', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 1000,
      openBackoff: { factor: 2, maxMs: 5000 },
      halfOpen: { probes: 3 },
      clock,
    });
    const opened = recordEvents(breaker, e => e.type === 'breaker.opened');
    await failTimes(breaker, 1);
    const durations = [1000, 2000, 4000, 5000, 5000];
    for (const [i, openMs] of durations.entries()) {
      await clock.advance(openMs - 1);
      const early = await outcome(breaker, succeed);
      expect((early as { error: CircuitOpenError }).error.retryAfterMs).toBe(1);
      await clock.advance(1);
      if (i === durations.length - 1) break;
      await succeedTimes(breaker, 1); // one good probe, then a bad one
      await failTimes(breaker, 1);
      expect(breaker.state).toBe('open');
    }
    expect(
      opened.map(e => (e.type === 'breaker.opened' ? [e.from, e.reason, e.openMs] : [])),
    ).toEqual([
      ['closed', 'failures', 1000],
      ['half-open', 'probe_failed', 2000],
      ['half-open', 'probe_failed', 4000],
      ['half-open', 'probe_failed', 5000],
      ['half-open', 'probe_failed', 5000],
    ]);
    await succeedTimes(breaker, 3);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(opened.at(-1)).toMatchObject({ from: 'closed', openMs: 1000 });
  });

  it('without openBackoff every open lasts openMs', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 50,
      clock,
    });
    const opened = recordEvents(breaker, e => e.type === 'breaker.opened');
    await failTimes(breaker, 1);
    for (let i = 0; i < 3; i++) {
      await clock.advance(50);
      await failTimes(breaker, 1);
    }
    expect(opened.map(e => (e.type === 'breaker.opened' ? e.openMs : 0))).toEqual([50, 50, 50, 50]);
  });

  it('a slow probe counts as a failed probe', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      slowCall: { thresholdMs: 10, rate: 1 },
      openMs: 100,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const probe = controllableWork();
    const result = breaker.execute(probe.work);
    await clock.advance(11);
    probe.resolve('slow');
    await expect(result).resolves.toBe('slow');
    expect(breaker.state).toBe('open');
  });

  it('with openMs 0 the next call probes at once', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 0,
      clock,
    });
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('does not record calls admitted before a state change', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      halfOpen: { probes: 1 },
      clock,
    });
    const straggler = controllableWork();
    const late = breaker.execute(straggler.work); // admitted while closed
    await failTimes(breaker, 1);
    await clock.advance(100);
    const probe = controllableWork();
    const pending = breaker.execute(probe.work);
    expect(breaker.state).toBe('half-open');
    straggler.reject(boom); // would reopen if it were counted as a probe
    await expect(late).rejects.toBe(boom);
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(succeed)).rejects.toSatisfy(isCircuitOpenError); // still 1 slot in use
    probe.resolve('ok');
    await pending;
    expect(breaker.state).toBe('closed');
  });

  it('ignores the outcome of a probe from an earlier half-open period', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      halfOpen: { probes: 2 },
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const slowProbe = controllableWork();
    const first = breaker.execute(slowProbe.work);
    await failTimes(breaker, 1); // the second probe fails: open again
    expect(breaker.state).toBe('open');
    slowProbe.resolve('late');
    await first;
    await clock.advance(200);
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('half-open'); // the late success did not count toward the 2 needed
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: concurrency in half-open', () => {
  for (const probes of [1, 3, 10]) {
    it(`lets exactly ${probes} of 100 concurrent callers through and rejects the rest at once`, async () => {
      const clock = new TestClock();
      const breaker = circuitBreaker({
        trigger: { kind: 'consecutive', failures: 1 },
        openMs: 1000,
        halfOpen: { probes },
        clock,
      });
      await failTimes(breaker, 1);
      await clock.advance(1000);
      const resolvers: ((value: string) => void)[] = [];
      const work: Work<string> = () => new Promise<string>(resolve => resolvers.push(resolve));
      const settled: ('ok' | 'rejected' | 'other')[] = [];
      const calls = Array.from({ length: 100 }, (_, i) =>
        breaker.execute(work).then(
          () => {
            settled[i] = 'ok';
          },
          (error: unknown) => {
            settled[i] = isCircuitOpenError(error) ? 'rejected' : 'other';
          },
        ),
      );
      expect(resolvers).toHaveLength(probes);
      // Rejections need no probe to finish: they have all settled after one turn of the event loop.
      await clock.advance(0);
      expect(settled.filter(s => s === 'rejected')).toHaveLength(100 - probes);
      expect(settled.filter(s => s === 'ok')).toHaveLength(0);
      for (const resolve of resolvers) resolve('ok');
      await Promise.all(calls);
      expect(settled.filter(s => s === 'ok')).toHaveLength(probes);
      expect(settled.filter(s => s === 'other')).toHaveLength(0);
      expect(breaker.state).toBe('closed');
    });
  }
});

describe('circuitBreaker: probes and cancellation', () => {
  it('with ignore off, a probe cancelled by its caller frees its slot and counts as a failed probe', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      ignore: () => false,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const hung = controllableWork();
    const controller = new AbortController();
    const probe = breaker.execute(hung.work, { signal: controller.signal });
    expect(breaker.state).toBe('half-open');
    controller.abort();
    await expect(probe).rejects.toSatisfy(isCancelledError);
    expect(breaker.state).toBe('open');
    hung.resolve('too late'); // ignored
    await clock.advance(100);
    expect(breaker.state).toBe('open');
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('a probe whose deadline passes frees its slot', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const hung = controllableWork();
    const probe = expect(
      breaker.execute(hung.work, { deadline: Deadline.after(50, { clock }) }),
    ).rejects.toSatisfy(isDeadlineExceededError);
    await clock.advance(49);
    expect(breaker.state).toBe('half-open');
    await clock.advance(1);
    await probe;
    expect(breaker.state).toBe('open');
  });

  it('when isFailure ignores the abort reason, the slot is freed and the breaker stays half-open', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      isFailure: error => !isCancelledError(error),
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const controller = new AbortController();
    const probe = breaker.execute(controllableWork().work, { signal: controller.signal });
    controller.abort();
    await expect(probe).rejects.toSatisfy(isCancelledError);
    expect(breaker.state).toBe('half-open');
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('does not spend a probe on a caller that has already given up', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const deadline = Deadline.after(10, { clock });
    await clock.advance(10);
    const work = controllableWork();
    await expect(breaker.execute(work.work, { deadline })).rejects.toSatisfy(
      isDeadlineExceededError,
    );
    expect(work.starts).toBe(0);
  });
});

describe('circuitBreaker: classification', () => {
  it('an error isFailure rejects is passed through and counts as a success', async () => {
    class NotFound extends Error {}
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 2 },
      isFailure: error => !(error instanceof NotFound),
    });
    const events = recordEvents(breaker);
    await failTimes(breaker, 1);
    const notFound = new NotFound();
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
    expect(events.map(e => e.type)).toEqual([
      'breaker.failure',
      'breaker.success',
      'breaker.failure',
    ]);
    expect(events[0]).toEqual({
      type: 'breaker.failure',
      policy: 'circuit-breaker',
      state: 'closed',
      cause: 'error',
      error: boom,
    });
  });

  it('isResultFailure counts a returned value as a failure and still returns it', async () => {
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 2 },
      isResultFailure: value => (value as { status: number }).status >= 500,
    });
    const events = recordEvents(breaker, e => e.type === 'breaker.failure');
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await expect(breaker.execute(() => ({ status: 200 }))).resolves.toEqual({ status: 200 });
    await breaker.execute(() => ({ status: 500 }));
    await breaker.execute(() => ({ status: 502 }));
    expect(breaker.state).toBe('open');
    expect(events[0]).toMatchObject({ cause: 'result', error: undefined });
  });

  it('a predicate that throws counts the call as a failure and reports the bug asynchronously', async () => {
    const bug = new Error('predicate bug');
    const queued: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(fn => queued.push(fn));
    try {
      const breaker = circuitBreaker({
        trigger: { kind: 'consecutive', failures: 1 },
        isFailure: () => {
          throw bug;
        },
      });
      await expect(breaker.execute(fail)).rejects.toBe(boom);
      expect(breaker.state).toBe('open');
    } finally {
      spy.mockRestore();
    }
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow(bug);
  });
});

describe('circuitBreaker: isolate and reset', () => {
  it('isolate rejects every call until every handle is disposed, then closes', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 1 }, clock });
    const events = recordEvents(breaker);
    const first = breaker.isolate();
    const second = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    const work = controllableWork();
    const rejected = await outcome(breaker, work.work);
    expect(work.starts).toBe(0);
    expect((rejected as { error: CircuitOpenError }).error.retryAfterMs).toBeUndefined();
    first.dispose();
    first.dispose(); // idempotent: does not release the second hold
    expect(breaker.state).toBe('isolated');
    await clock.advance(1_000_000);
    await expect(breaker.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
    second.dispose();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(succeed)).resolves.toBe('ok');
    expect(events.filter(stateChanges)).toEqual([
      { type: 'breaker.isolated', policy: 'circuit-breaker', from: 'closed', to: 'isolated' },
      { type: 'breaker.closed', policy: 'circuit-breaker', from: 'isolated', to: 'closed' },
    ]);
    expect(events.filter(e => e.type === 'breaker.rejected')).toEqual([
      {
        type: 'breaker.rejected',
        policy: 'circuit-breaker',
        state: 'isolated',
        retryAfterMs: undefined,
      },
      {
        type: 'breaker.rejected',
        policy: 'circuit-breaker',
        state: 'isolated',
        retryAfterMs: undefined,
      },
    ]);
  });

  it('isolating an open breaker and releasing it closes the breaker', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 1 } });
    const events = recordEvents(breaker, stateChanges);
    await failTimes(breaker, 1);
    const hold = breaker.isolate();
    hold.dispose();
    expect(breaker.state).toBe('closed');
    expect(events.map(e => [e.type, 'from' in e ? e.from : ''])).toEqual([
      ['breaker.opened', 'closed'],
      ['breaker.isolated', 'open'],
      ['breaker.closed', 'isolated'],
    ]);
  });

  it('reset closes, clears the window and ends isolation; old handles become no-ops', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 4, failureRate: 0.5 },
      openMs: 100,
      openBackoff: { maxMs: 1000 },
      clock,
    });
    const events = recordEvents(breaker, stateChanges);
    await failTimes(breaker, 3);
    expect(breaker.metrics()).toEqual({ calls: 3, failures: 3, slowCalls: 0 });
    breaker.reset();
    expect(breaker.metrics()).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('open');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const hold = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const other = breaker.isolate();
    hold.dispose(); // from before the reset: must not release `other`
    expect(breaker.state).toBe('isolated');
    other.dispose();
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 4);
    // The backoff was forgotten too: this open lasts openMs again.
    expect(
      events.filter(e => e.type === 'breaker.opened').map(e => (e as { openMs: number }).openMs),
    ).toEqual([100, 100]);
  });
});

describe('circuitBreaker: snapshot and restore', () => {
  it('round-trips an open breaker through JSON, counting the time spent in storage', async () => {
    const clock = new TestClock({ wallStartMs: 1_000_000 });
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 2 },
      openMs: 10_000,
      openBackoff: { maxMs: 60_000 },
      clock,
    });
    await failTimes(breaker, 2);
    await clock.advance(3000);
    const snapshot = JSON.parse(JSON.stringify(breaker.snapshot())) as BreakerSnapshot;
    expect(snapshot).toEqual({
      version: 1,
      state: 'open',
      openRemainingMs: 7000,
      takenAtWallMs: 1_003_000,
      opens: 1,
      window: { kind: 'consecutive', failures: 0 },
    });
    // Another process: its monotonic clock starts elsewhere; 2 s of wall time passed meanwhile.
    const later = new TestClock({ startMs: 123_456, wallStartMs: 1_005_000 });
    const restored = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 2 },
      openMs: 10_000,
      openBackoff: { maxMs: 60_000 },
      clock: later,
      initialState: snapshot,
    });
    expect(restored.state).toBe('open');
    const rejected = await outcome(restored, succeed);
    expect((rejected as { error: CircuitOpenError }).error.retryAfterMs).toBe(5000);
    await later.advance(5000);
    const opened = recordEvents(restored, e => e.type === 'breaker.opened');
    await failTimes(restored, 1); // failed probe: the restored open count drives the backoff
    expect(opened).toMatchObject([{ from: 'half-open', openMs: 20_000 }]);
  });

  it('round-trips a closed count window and a closed time window', async () => {
    const clock = new TestClock();
    const options: CircuitBreakerOptions = {
      trigger: { kind: 'count', windowSize: 5, failureRate: 0.6 },
      clock,
    };
    const count = circuitBreaker(options);
    await failTimes(count, 2);
    await succeedTimes(count, 2);
    const restoredCount = circuitBreaker({
      ...options,
      initialState: JSON.parse(JSON.stringify(count.snapshot())),
    });
    expect(restoredCount.metrics()).toEqual({ calls: 4, failures: 2, slowCalls: 0 });
    await failTimes(restoredCount, 1); // 3 of 5
    expect(restoredCount.state).toBe('open');

    const timeOptions: CircuitBreakerOptions = {
      trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5, minimumCalls: 3 },
      clock,
    };
    const time = circuitBreaker(timeOptions);
    await failTimes(time, 1);
    await succeedTimes(time, 1);
    const restoredTime = circuitBreaker({ ...timeOptions, initialState: time.snapshot() });
    expect(restoredTime.metrics()).toEqual({ calls: 2, failures: 1, slowCalls: 0 });
    await failTimes(restoredTime, 1);
    expect(restoredTime.state).toBe('open');
  });

  it('restores half-open with no probe in flight, and isolated as open for openMs', async () => {
    const clock = new TestClock();
    const options: CircuitBreakerOptions = {
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      clock,
    };
    const breaker = circuitBreaker(options);
    await failTimes(breaker, 1);
    await clock.advance(100);
    const pending = breaker.execute(controllableWork().work);
    void pending;
    const halfOpen = breaker.snapshot();
    expect(halfOpen.state).toBe('half-open');
    const restored = circuitBreaker({ ...options, initialState: halfOpen });
    expect(restored.state).toBe('half-open');
    await succeedTimes(restored, 1);
    expect(restored.state).toBe('closed');

    const isolated = circuitBreaker(options);
    isolated.isolate();
    const fromIsolated = circuitBreaker({ ...options, initialState: isolated.snapshot() });
    expect(fromIsolated.state).toBe('open');
    const rejected = await outcome(fromIsolated, succeed);
    expect((rejected as { error: CircuitOpenError }).error.retryAfterMs).toBe(100);
  });

  it('drops a window of another kind instead of failing', () => {
    const source = circuitBreaker({ trigger: { kind: 'consecutive', failures: 3 } });
    const restored = circuitBreaker({
      trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5 },
      initialState: source.snapshot(),
    });
    expect(restored.state).toBe('closed');
    expect(restored.metrics()).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('rejects something that is not a snapshot', () => {
    for (const bad of [null, 42, {}, { state: 'ajar', window: {} }, { state: 'open' }]) {
      expect(() =>
        circuitBreaker({
          trigger: { kind: 'consecutive', failures: 1 },
          initialState: bad as unknown as BreakerSnapshot,
        }),
      ).toThrow(/initialState must be a BreakerSnapshot/);
    }
  });
});

describe('circuitBreaker: sharing and events', () => {
  it('one breaker in two pipelines is one circuit', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 2 }, clock });
    const a = pipeline(breaker);
    const b = pipeline(breaker);
    await expect(a.execute(fail)).rejects.toBe(boom);
    await expect(b.execute(fail)).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    await expect(a.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
    await expect(b.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
    await expect(breaker.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
  });

  it('counts a per-attempt timeout inside it as a failure', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 2 }, clock });
    const guarded = pipeline(breaker, timeout({ timeoutMs: 100, clock }));
    for (let i = 0; i < 2; i++) {
      const call = expect(guarded.execute(() => new Promise(() => {}))).rejects.toSatisfy(
        isTimeoutError,
      );
      await clock.advance(100);
      await call;
    }
    expect(breaker.state).toBe('open');
    await expect(guarded.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
  });

  it('emits per-call events with the state, and stops when the listener is disposed', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 5 }, name: 'db' });
    const events: CircuitBreakerEvent[] = [];
    const subscription = breaker.onEvent(e => events.push(e));
    await succeedTimes(breaker, 1);
    await failTimes(breaker, 1);
    subscription.dispose();
    await succeedTimes(breaker, 1);
    expect(events).toEqual([
      { type: 'breaker.success', policy: 'db', state: 'closed' },
      { type: 'breaker.failure', policy: 'db', state: 'closed', cause: 'error', error: boom },
    ]);
  });
});

describe('circuitBreaker: validation', () => {
  const consecutive = { kind: 'consecutive', failures: 3 } as const;
  const cases: [string, unknown, RegExp][] = [
    ['options', null, /expected an options object, got null/],
    ['unknown option', { trigger: consecutive, openMS: 5 }, /unknown option "openMS"/],
    ['trigger missing', {}, /trigger is required/],
    [
      'trigger not an object',
      { trigger: 'consecutive' },
      /trigger must be an object, got "consecutive"/,
    ],
    ['trigger.kind', { trigger: { kind: 'sliding' } }, /trigger.kind must be .* got "sliding"/],
    [
      'trigger unknown key',
      { trigger: { ...consecutive, size: 2 } },
      /trigger: unknown option "size"/,
    ],
    [
      'trigger.failures',
      { trigger: { kind: 'consecutive', failures: 0 } },
      /trigger.failures must be an integer >= 1, got 0/,
    ],
    [
      'trigger.failures fractional',
      { trigger: { kind: 'consecutive', failures: 1.5 } },
      /trigger.failures .* got 1.5/,
    ],
    [
      'trigger.windowSize',
      { trigger: { kind: 'count', windowSize: 0, failureRate: 0.5 } },
      /trigger.windowSize must be an integer >= 1, got 0/,
    ],
    [
      'count failureRate 0',
      { trigger: { kind: 'count', windowSize: 10, failureRate: 0 } },
      /trigger.failureRate must be a number in \(0, 1\].*got 0/,
    ],
    [
      'count failureRate > 1',
      { trigger: { kind: 'count', windowSize: 10, failureRate: 50 } },
      /trigger.failureRate .* got 50/,
    ],
    [
      'count minimumCalls > windowSize',
      { trigger: { kind: 'count', windowSize: 10, failureRate: 0.5, minimumCalls: 11 } },
      /trigger.minimumCalls must be <= trigger.windowSize \(10\), got 11/,
    ],
    [
      'count minimumCalls 0',
      { trigger: { kind: 'count', windowSize: 10, failureRate: 0.5, minimumCalls: 0 } },
      /trigger.minimumCalls must be an integer >= 1, got 0/,
    ],
    [
      'time windowMs',
      { trigger: { kind: 'time', windowMs: -1, failureRate: 0.5 } },
      /trigger.windowMs must be a finite number > 0, got -1/,
    ],
    [
      'time failureRate',
      { trigger: { kind: 'time', windowMs: 1000, failureRate: NaN } },
      /trigger.failureRate .* got NaN/,
    ],
    [
      'time minimumCalls',
      { trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5, minimumCalls: 0.5 } },
      /trigger.minimumCalls .* got 0.5/,
    ],
    [
      'time buckets',
      { trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5, buckets: 0 } },
      /trigger.buckets must be an integer >= 1, got 0/,
    ],
    [
      'time buckets too many',
      { trigger: { kind: 'time', windowMs: 1000, failureRate: 0.5, buckets: 5000 } },
      /trigger.buckets must be <= 1000, got 5000/,
    ],
    ['slowCall', { trigger: consecutive, slowCall: 100 }, /slowCall must be an object, got 100/],
    [
      'slowCall.thresholdMs',
      { trigger: consecutive, slowCall: { thresholdMs: 0, rate: 1 } },
      /slowCall.thresholdMs must be a finite number > 0, got 0/,
    ],
    [
      'slowCall.rate',
      { trigger: consecutive, slowCall: { thresholdMs: 10, rate: 1.5 } },
      /slowCall.rate must be a number in \(0, 1\].*got 1.5/,
    ],
    [
      'slowCall unknown key',
      { trigger: consecutive, slowCall: { thresholdMs: 10, rate: 1, ms: 1 } },
      /slowCall: unknown option "ms"/,
    ],
    ['openMs', { trigger: consecutive, openMs: -5 }, /openMs must be a finite number >= 0, got -5/],
    ['openMs infinite', { trigger: consecutive, openMs: Infinity }, /openMs .* got Infinity/],
    [
      'openBackoff',
      { trigger: consecutive, openBackoff: true },
      /openBackoff must be an object, got true/,
    ],
    [
      'openBackoff.factor',
      { trigger: consecutive, openBackoff: { factor: 0.5, maxMs: 60_000 } },
      /openBackoff.factor must be a finite number >= 1, got 0.5/,
    ],
    [
      'openBackoff.maxMs',
      { trigger: consecutive, openMs: 1000, openBackoff: { maxMs: 500 } },
      /openBackoff.maxMs must be a finite number >= 1000, got 500/,
    ],
    [
      'openBackoff.maxMs missing',
      { trigger: consecutive, openBackoff: {} },
      /openBackoff.maxMs .* got undefined/,
    ],
    [
      'openBackoff unknown key',
      { trigger: consecutive, openBackoff: { maxMs: 60_000, jitter: 1 } },
      /openBackoff: unknown option "jitter"/,
    ],
    ['halfOpen', { trigger: consecutive, halfOpen: 3 }, /halfOpen must be an object, got 3/],
    [
      'halfOpen.probes',
      { trigger: consecutive, halfOpen: { probes: 0 } },
      /halfOpen.probes must be an integer >= 1, got 0/,
    ],
    [
      'halfOpen.successesToClose',
      { trigger: consecutive, halfOpen: { successesToClose: 0 } },
      /halfOpen.successesToClose must be an integer >= 1, got 0/,
    ],
    [
      'halfOpen unknown key',
      { trigger: consecutive, halfOpen: { calls: 2 } },
      /halfOpen: unknown option "calls"/,
    ],
    [
      'isFailure',
      { trigger: consecutive, isFailure: true },
      /isFailure must be a function, got true/,
    ],
    [
      'isResultFailure',
      { trigger: consecutive, isResultFailure: 'x' },
      /isResultFailure must be a function, got "x"/,
    ],
    ['ignore', { trigger: consecutive, ignore: 'x' }, /ignore must be a function, got "x"/],
    ['name', { trigger: consecutive, name: '' }, /name must be a non-empty string .*got ""/],
    ['clock', { trigger: consecutive, clock: {} }, /clock must implement Clock/],
    [
      'initialState',
      { trigger: consecutive, initialState: 'open' },
      /initialState must be a BreakerSnapshot.*"open"/,
    ],
  ];
  for (const [label, options, message] of cases) {
    it(`rejects a bad ${label}`, () => {
      let thrown: unknown;
      try {
        circuitBreaker(options as CircuitBreakerOptions);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidOptionsError);
      expect((thrown as Error).message).toMatch(/^circuitBreaker: /);
      expect((thrown as Error).message).toMatch(message);
    });
  }

  it('accepts the documented defaults', () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 5 } });
    expect(breaker.name).toBe('circuit-breaker');
    expect(breaker.openMs).toBe(30_000);
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: ignored outcomes', () => {
  const notAboutHealth: [string, unknown][] = [
    ['CANCELLED', new CancelledError()],
    ['CANCELLED (hedge loser)', new HedgeCancelledError(2)],
    ['BULKHEAD_FULL', new BulkheadFullError('pool')],
    ['RATE_LIMITED', new RateLimitedError('api', 10)],
    ['LOAD_SHED', new LoadShedError()],
    ['CIRCUIT_OPEN', new CircuitOpenError('inner', 1000)],
  ];

  it('exports the default list of ignored codes', () => {
    expect([...BREAKER_IGNORED_CODES].sort()).toEqual(
      ['BULKHEAD_FULL', 'CANCELLED', 'CIRCUIT_OPEN', 'LOAD_SHED', 'RATE_LIMITED'].sort(),
    );
    expect(Object.isFrozen(BREAKER_IGNORED_CODES)).toBe(true);
    expect(isIgnoredByBreaker(new BulwarkError('TIMEOUT', 'slow'))).toBe(false);
    expect(isIgnoredByBreaker({ code: 'CANCELLED' })).toBe(false); // not a Bulwark error
    expect(isIgnoredByBreaker(boom)).toBe(false);
  });

  for (const [code, error] of notAboutHealth) {
    it(`by default does not count ${code} at all, and passes it through`, async () => {
      const clock = new TestClock();
      const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 1 }, clock });
      const events = recordEvents(breaker);
      await expect(breaker.execute(() => Promise.reject(error))).rejects.toBe(error);
      expect(breaker.state).toBe('closed');
      expect(breaker.metrics()).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
      expect(events).toEqual([
        { type: 'breaker.ignored', policy: 'circuit-breaker', state: 'closed', error },
      ]);
    });
  }

  it('an ignored outcome is not a success either: it does not break a run of failures', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 2 } });
    await failTimes(breaker, 1);
    await expect(breaker.execute(() => Promise.reject(new CancelledError()))).rejects.toSatisfy(
      isCancelledError,
    );
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('ignored calls are not counted in a count window, nor as slow', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'count', windowSize: 4, failureRate: 0.5 },
      slowCall: { thresholdMs: 10, rate: 0.5 },
      clock,
    });
    const slowShed = expect(
      breaker.execute(
        () => new Promise((_, reject) => clock.setTimer(() => reject(new LoadShedError()), 50)),
      ),
    ).rejects.toSatisfy(e => (e as BulwarkError).code === 'LOAD_SHED');
    await clock.advance(50);
    await slowShed;
    await succeedTimes(breaker, 1);
    expect(breaker.metrics()).toEqual({ calls: 1, failures: 0, slowCalls: 0 });
  });

  it('a full bulkhead inside the breaker does not open it', async () => {
    const breaker = circuitBreaker({ trigger: { kind: 'consecutive', failures: 1 } });
    const pool = bulkhead({ maxConcurrent: 1 });
    const guarded = pipeline(breaker, pool);
    const hung = controllableWork();
    const running = guarded.execute(hung.work);
    for (let i = 0; i < 5; i++) {
      await expect(guarded.execute(succeed)).rejects.toSatisfy(
        e => (e as BulwarkError).code === 'BULKHEAD_FULL',
      );
    }
    expect(breaker.state).toBe('closed');
    hung.resolve('done');
    await expect(running).resolves.toBe('done');
  });

  it('a probe cancelled by its caller frees its slot without deciding', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      clock,
    });
    const events = recordEvents(breaker, e => e.type === 'breaker.ignored');
    await failTimes(breaker, 1);
    await clock.advance(100);
    const hung = controllableWork();
    const controller = new AbortController();
    const probe = breaker.execute(hung.work, { signal: controller.signal });
    expect(breaker.state).toBe('half-open');
    // The only probe slot is taken.
    await expect(breaker.execute(succeed)).rejects.toSatisfy(isCircuitOpenError);
    controller.abort();
    await expect(probe).rejects.toSatisfy(isCancelledError);
    expect(breaker.state).toBe('half-open');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'breaker.ignored', state: 'half-open' });
    hung.resolve('too late'); // counted nowhere
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('an ignored probe outcome neither closes nor opens, and frees the slot', async () => {
    const clock = new TestClock();
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      openMs: 100,
      halfOpen: { probes: 1, successesToClose: 2 },
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('half-open');
    const full = new BulkheadFullError('pool');
    await expect(breaker.execute(() => Promise.reject(full))).rejects.toBe(full);
    expect(breaker.state).toBe('half-open');
    await succeedTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('a custom ignore replaces the default and is checked before isFailure', async () => {
    class ClientGone extends Error {}
    const isFailure = vi.fn(() => true);
    const breaker = circuitBreaker({
      trigger: { kind: 'consecutive', failures: 1 },
      ignore: error => error instanceof ClientGone,
      isFailure,
    });
    await expect(breaker.execute(() => Promise.reject(new ClientGone()))).rejects.toBeInstanceOf(
      ClientGone,
    );
    expect(isFailure).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
    // The default list no longer applies.
    await expect(breaker.execute(() => Promise.reject(new CancelledError()))).rejects.toSatisfy(
      isCancelledError,
    );
    expect(breaker.state).toBe('open');
  });

  it('an ignore that throws does not ignore the outcome and reports the bug asynchronously', async () => {
    const bug = new Error('ignore bug');
    const queued: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(fn => queued.push(fn));
    try {
      const breaker = circuitBreaker({
        trigger: { kind: 'consecutive', failures: 1 },
        ignore: () => {
          throw bug;
        },
      });
      await expect(breaker.execute(fail)).rejects.toBe(boom);
      expect(breaker.state).toBe('open');
    } finally {
      spy.mockRestore();
    }
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow(bug);
  });
});
