import { describe, expect, it } from 'vitest';
import { controllableWork, observe, TestClock } from '@bulwark/testing';
import { Deadline } from './deadline.js';
import {
  isCancelledError,
  isDeadlineExceededError,
  isTimeoutError,
  TimeoutError,
} from './errors.js';
import { pipeline } from './pipeline.js';
import { Scope } from './scope.js';
import { faultInjection } from './fault-injection.js';
import { timeout, type TimeoutEvent } from './timeout.js';

describe('timeout', () => {
  it('passes a fast result through and leaves no referenced timer behind (exact mode)', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 0, clock });
    await expect(policy.execute(async () => 42)).resolves.toBe(42);
    await expect(policy.execute(() => 'sync')).resolves.toBe('sync');
    expect(clock.referencedTimers).toBe(0);
  });

  it('rejects with TimeoutError at timeoutMs and aborts the work signal', async () => {
    const clock = new TestClock();
    const events: TimeoutEvent[] = [];
    const policy = timeout({ timeoutMs: 100, clock, name: 'users' });
    policy.onEvent(e => events.push(e));
    const work = controllableWork<number>();
    const result = policy.execute(work.work);
    const settled = observe(result);
    await clock.advance(99);
    expect(settled.state).toBe('pending');
    expect(work.context?.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(settled.state).toBe('rejected');
    await expect(result).rejects.toBeInstanceOf(TimeoutError);
    expect(work.context?.signal.aborted).toBe(true);
    expect(isTimeoutError(work.context?.signal.reason)).toBe(true);
    expect(events).toEqual([{ type: 'timeout.expired', policy: 'users', timeoutMs: 100 }]);
  });

  it('does not wait for work that ignores its signal', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 50, clock });
    const result = observe(policy.execute(() => new Promise(() => {})));
    await clock.advance(50);
    expect(isTimeoutError(result.error)).toBe(true);
  });

  it('converts a synchronous throw into a rejection', async () => {
    const policy = timeout({ timeoutMs: 50, clock: new TestClock() });
    const boom = new Error('boom');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('expires concurrent calls in order with one timer (exact mode)', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 0, clock });
    const a = policy.execute(() => new Promise(() => {}));
    await clock.advance(30);
    const b = policy.execute(() => new Promise(() => {}));
    const fast = controllableWork<string>();
    const c = policy.execute(fast.work);
    expect(clock.pendingTimers).toBe(1);
    fast.resolve('c');
    await expect(c).resolves.toBe('c');
    const sa = observe(a);
    const sb = observe(b);
    await clock.advance(70);
    expect([sa.state, sb.state]).toEqual(['rejected', 'pending']);
    await clock.advance(30);
    expect(sb.state).toBe('rejected');
    await expect(a).rejects.toSatisfy(isTimeoutError);
    await expect(b).rejects.toSatisfy(isTimeoutError);
    expect(clock.pendingTimers).toBe(0);
  });

  it('never runs longer than the deadline and reports the deadline as the reason', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 1000, clock });
    const deadline = Deadline.after(200, { clock });
    const work = controllableWork<number>();
    const result = observe(policy.execute(work.work, { deadline }));
    expect(work.context?.deadline?.expiresAt).toBe(200);
    await clock.advance(200);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(work.context?.signal.aborted).toBe(true);
  });

  it('gives the work a deadline of its own limit when that is earlier', async () => {
    const clock = new TestClock({ startMs: 10 });
    const policy = timeout({ timeoutMs: 100, clock });
    const deadline = Deadline.after(1000, { clock });
    let seen: number | undefined;
    await policy.execute(ctx => (seen = ctx.deadline?.remainingMs()), { deadline });
    expect(seen).toBe(100);
  });

  it('rejects at once when the deadline has already passed', async () => {
    const clock = new TestClock();
    const deadline = Deadline.after(10, { clock });
    await clock.advance(10);
    let ran = false;
    await expect(
      timeout({ timeoutMs: 100, clock }).execute(() => (ran = true), { deadline }),
    ).rejects.toSatisfy(isDeadlineExceededError);
    expect(ran).toBe(false);
  });

  it('cancels on the caller signal with CancelledError and aborts the work', async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const work = controllableWork<number>();
    const result = timeout({ timeoutMs: 100, clock }).execute(work.work, {
      signal: controller.signal,
    });
    controller.abort(new Error('client went away'));
    await expect(result).rejects.toSatisfy(isCancelledError);
    expect(work.context?.signal.aborted).toBe(true);
  });

  it('takes a core Scope as the caller signal: CancelledError with the reason as cause, unlinked once settled', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, clock });
    const cancel = new Scope();
    const work = controllableWork<number>();
    const result = policy.execute(work.work, { signal: cancel });
    const reason = new Error('lease lost');
    cancel.abort(reason);
    const error: unknown = await result.catch((e: unknown) => e);
    expect(isCancelledError(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
    expect(work.context?.signal.aborted).toBe(true);

    // Settled calls leave nothing registered on the scope; an aborted scope refuses new calls.
    const kept = new Scope();
    await expect(policy.execute(() => 1, { signal: kept })).resolves.toBe(1);
    await expect(policy.execute(async () => 2, { signal: kept })).resolves.toBe(2);
    expect(kept.listenerCount).toBe(0);
    let ran = false;
    await expect(policy.execute(() => (ran = true), { signal: cancel })).rejects.toSatisfy(
      isCancelledError,
    );
    expect(ran).toBe(false);
  });

  it('nests: the inner (shorter) timeout fires first, the outer bounds retries of it', async () => {
    const clock = new TestClock();
    const outer = timeout({ timeoutMs: 300, clock, name: 'outer' });
    const inner = timeout({ timeoutMs: 100, clock, name: 'inner' });
    const result = observe(pipeline(outer, inner).execute(() => new Promise(() => {})));
    await clock.advance(100);
    expect(result.error).toMatchObject({ code: 'TIMEOUT', timeoutMs: 100 });
  });

  it('times a call that starts while others run without reading the clock, never early', async () => {
    const clock = new TestClock();
    let reads = 0;
    const counting = Object.assign(Object.create(clock) as TestClock, {
      now: () => {
        reads++;
        return clock.now();
      },
    });
    const policy = timeout({ timeoutMs: 100, resolutionMs: 10, clock: counting });
    const first = observe(policy.execute(() => new Promise(() => {})));
    expect(reads).toBe(1); // idle start: one exact read
    await clock.advance(35); // ticks at 10, 20, 30
    const readsBefore = reads;
    let seen: number | undefined;
    const second = observe(
      policy.execute(ctx => {
        seen = ctx.deadline?.expiresAt;
        return new Promise(() => {});
      }),
    );
    expect(reads).toBe(readsBefore); // no read on the busy path
    expect(seen).toBe(130); // told the conservative expiry: last tick (30) + 100
    await clock.advance(65); // t = 100
    expect(first.state).toBe('rejected');
    expect(second.state).toBe('pending');
    await clock.advance(34); // t = 134: started at 35, must not have expired before 135
    expect(second.state).toBe('pending');
    await clock.advance(6); // sealed at the tick at 40: expires at 140
    expect(isTimeoutError(second.error)).toBe(true);
    // Idle again: the ticker stops at its next tick and leaves nothing behind.
    await clock.advance(10);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a call that joins a busy timeout under an earlier deadline aborts its signal at the deadline', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 10, clock });
    const first = observe(policy.execute(() => new Promise(() => {}))); // starts the ticker
    await clock.advance(15);
    let signal: AbortSignal | undefined;
    const second = observe(
      policy.execute(
        ctx => {
          signal = ctx.signal;
          return new Promise(() => {});
        },
        { deadline: Deadline.after(20, { clock }) },
      ),
    );
    expect(signal?.aborted).toBe(false);
    await clock.advance(20);
    expect(signal?.aborted).toBe(true);
    expect(isDeadlineExceededError(signal?.reason)).toBe(true);
    expect(isDeadlineExceededError(second.error)).toBe(true);
    expect(first.state).toBe('pending');
    await clock.advance(100);
    expect(isTimeoutError(first.error)).toBe(true);
  });

  it('a busy timeout settles each sequential call once and keeps timing the next ones', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 10, clock });
    for (let i = 0; i < 5; i++) await expect(policy.execute(async () => i)).resolves.toBe(i);
    const hung = observe(policy.execute(() => new Promise(() => {})));
    await clock.advance(110);
    expect(isTimeoutError(hung.error)).toBe(true);
  });

  it("an inner policy that runs out of the timeout's time reports the retryable TimeoutError", async () => {
    const clock = new TestClock();
    const policy = pipeline(
      timeout({ timeoutMs: 100, resolutionMs: 10, clock }),
      faultInjection({ rate: 1, fault: { kind: 'latency', delayMs: 500 }, clock }),
    );
    const first = observe(policy.execute(() => 'x')); // idle start: exact, starts the ticker
    await clock.advance(35); // last tick at 30
    const second = observe(policy.execute(() => 'y')); // told the conservative limit 130
    await clock.advance(95); // t = 130: the latency stops at the limit it was told
    expect(isTimeoutError(first.error)).toBe(true);
    expect(second.state).toBe('rejected');
    expect(isTimeoutError(second.error)).toBe(true);
    expect(isDeadlineExceededError(second.error)).toBe(false);
  });

  it('keeps expiring in order after the ticking queue compacts (more than 1024 finished)', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 10, clock });
    const calls = Array.from({ length: 2000 }, () => controllableWork<number>());
    const results = calls.map(call => observe(policy.execute(call.work)));
    calls.slice(0, 1500).forEach((call, i) => call.resolve(i));
    await clock.advance(0);
    expect(results.slice(0, 1500).every(r => r.state === 'fulfilled')).toBe(true);
    await clock.advance(99);
    expect(results.slice(1500).every(r => r.state === 'pending')).toBe(true);
    await clock.advance(11); // the first is exact (100), the rest sealed at the tick at 10 (110)
    expect(results.slice(1500).every(r => isTimeoutError(r.error))).toBe(true);
    // The queue still works after compaction.
    await expect(policy.execute(() => 'after')).resolves.toBe('after');
  });

  it('holds the process open at most resolutionMs after the last call', async () => {
    const clock = new TestClock();
    const policy = timeout({ timeoutMs: 100, resolutionMs: 5, clock });
    const work = controllableWork<number>();
    const call = observe(policy.execute(work.work));
    expect(clock.referencedTimers).toBe(1);
    work.resolve(1);
    await clock.advance(0);
    expect(call.value).toBe(1);
    await clock.advance(5);
    expect(clock.pendingTimers).toBe(0);
  });

  it('validates options with messages that name the fix', () => {
    expect(() => timeout({ timeoutMs: 10, resolutionMs: 20 })).toThrow(
      /resolutionMs \(20\) must be <= timeoutMs \(10\)/,
    );
    expect(() => timeout({ timeoutMs: 10, resolutionMs: -1 })).toThrow(/resolutionMs must be/);
    expect(() => timeout({ timeoutMs: 10, name: '' })).toThrow(/name must be a non-empty string/);
    expect(() => timeout({ timeoutMs: 0 })).toThrow(/timeoutMs must be a finite number > 0, got 0/);
    expect(() => timeout({ timeoutMs: Number.NaN })).toThrow(/timeoutMs/);
    expect(() => timeout({} as never)).toThrow(/timeoutMs/);
    expect(() => timeout({ timeoutMs: 5, timeout: 3 } as never)).toThrow(
      /unknown option "timeout"/,
    );
    expect(() => timeout(undefined as never)).toThrow(/expected an options object/);
  });
});
