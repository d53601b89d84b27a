import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import { clampDelay, MAX_TIMER_DELAY_MS, type Clock } from './clock.js';
import { Deadline } from './deadline.js';
import { isDeadlineExceededError } from './errors.js';
import { Scope } from './scope.js';

/** A TestClock that clamps delays the way setTimeout (and the Clock contract) does. */
function clamping(clock: TestClock): Clock {
  return {
    now: () => clock.now(),
    wallNow: () => clock.wallNow(),
    setTimer: (callback, delayMs) => clock.setTimer(callback, clampDelay(delayMs)),
  };
}

/** Listeners a scope holds (read to prove nothing accumulates). */
function linked(deadline: Deadline): number {
  return deadline.scope.listenerCount;
}

describe('Deadline', () => {
  it('counts down on the injected clock and never goes negative', async () => {
    const clock = new TestClock({ startMs: 1000 });
    const deadline = Deadline.after(250, { clock });
    expect(deadline.expiresAt).toBe(1250);
    expect(deadline.remainingMs()).toBe(250);
    await clock.advance(100);
    expect(deadline.remainingMs()).toBe(150);
    expect(deadline.expired).toBe(false);
    await clock.advance(500);
    expect(deadline.remainingMs()).toBe(0);
    expect(deadline.expired).toBe(true);
    expect(() => deadline.throwIfExpired()).toThrow(/deadline exceeded/);
  });

  it('arms no timer until someone asks for the signal, then aborts on time', async () => {
    const clock = new TestClock();
    const deadline = Deadline.after(100, { clock });
    expect(clock.pendingTimers).toBe(0);
    const signal = deadline.signal;
    expect(clock.pendingTimers).toBe(1);
    expect(clock.referencedTimers).toBe(0); // a deadline alone does not hold the process open
    await clock.advance(99);
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    expect(signal.aborted).toBe(true);
    expect(isDeadlineExceededError(signal.reason)).toBe(true);
  });

  it('gives children a slice of what is left, never more', async () => {
    const clock = new TestClock();
    const parent = Deadline.after(1000, { clock });
    await clock.advance(200);
    expect(parent.child({ timeoutMs: 5000 }).remainingMs()).toBe(800);
    expect(parent.child({ timeoutMs: 300 }).remainingMs()).toBe(300);
    expect(parent.child({ fraction: 0.5 }).remainingMs()).toBe(400);
    expect(parent.child({ reserveMs: 100 }).remainingMs()).toBe(700);
    expect(parent.child({ reserveMs: 5000 }).remainingMs()).toBe(0);
  });

  it('cancels children with the parent', () => {
    const clock = new TestClock();
    const parent = Deadline.after(1000, { clock });
    const child = parent.child({ timeoutMs: 500 });
    const grandchild = child.child();
    const reason = new Error('client disconnected');
    parent.cancel(reason);
    expect(child.signal.aborted).toBe(true);
    expect(grandchild.signal.reason).toBe(reason);
    expect(grandchild.expired).toBe(true);
  });

  it('a child expiring does not cancel its parent', async () => {
    const clock = new TestClock();
    const parent = Deadline.after(1000, { clock });
    const child = parent.child({ timeoutMs: 100 });
    const childSignal = child.signal;
    await clock.advance(100);
    expect(childSignal.aborted).toBe(true);
    expect(parent.signal.aborted).toBe(false);
  });

  it('a child clamped by its parent arms no timer of its own and expires with the parent', async () => {
    const clock = new TestClock();
    const parent = Deadline.after(100, { clock });
    await clock.advance(10);
    const child = parent.child({ timeoutMs: 500 }); // 90 ms left: the parent's expiry
    expect(child.expiresAt).toBe(parent.expiresAt);
    const childSignal = child.signal;
    expect(clock.pendingTimers).toBe(1); // the parent's
    await clock.advance(89);
    expect(childSignal.aborted).toBe(false);
    await clock.advance(1);
    expect(childSignal.aborted).toBe(true);
    expect(isDeadlineExceededError(childSignal.reason)).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it("a child of a deadline a policy enforces keeps its own timer (the policy's may fire late)", async () => {
    const clock = new TestClock();
    // As a ticking timeout makes its calls' deadlines: armed, its scope aborted by the policy.
    const enforced = new Deadline(clock.now() + 100, clock, new Scope(), true);
    const child = enforced.child({ timeoutMs: 500 });
    expect(child.expiresAt).toBe(enforced.expiresAt);
    const childSignal = child.signal;
    expect(clock.pendingTimers).toBe(1); // the child's own
    await clock.advance(100);
    expect(childSignal.aborted).toBe(true);
  });

  it('follows an outside signal', () => {
    const controller = new AbortController();
    const deadline = Deadline.after(1000, { clock: new TestClock(), signal: controller.signal });
    controller.abort('gone');
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.reason).toBe('gone');
  });

  it('validates its inputs', () => {
    const clock = new TestClock();
    expect(() => Deadline.after(-1, { clock })).toThrow(/timeoutMs must be a finite number >= 0/);
    expect(() => Deadline.after(Number.NaN, { clock })).toThrow(/timeoutMs/);
    const d = Deadline.after(10, { clock });
    expect(() => d.child({ fraction: 0 })).toThrow(/fraction must be in \(0, 1\]/);
    expect(() => d.child({ fraction: 1.5 })).toThrow(/fraction/);
    expect(() => d.child({ timeoutMs: -5 })).toThrow(/timeoutMs must be >= 0/);
    expect(() => d.child({ reserveMs: -5 })).toThrow(/reserveMs/);
  });

  it('rejects an infinite or NaN time and says how to have no limit', () => {
    const clock = new TestClock();
    expect(() => Deadline.after(Infinity, { clock })).toThrow(
      /timeoutMs must be a finite number >= 0 \(milliseconds\), got Infinity; omit the deadline for no limit/,
    );
    expect(() => Deadline.at(Infinity, { clock })).toThrow(
      /expiresAt must be a finite time .* got Infinity; omit the deadline for no limit/,
    );
    expect(() => Deadline.at(Number.NaN, { clock })).toThrow(/expiresAt must be a finite time/);
  });

  it('a deadline beyond the largest timer delay does not fire early', async () => {
    const test = new TestClock();
    const clock = clamping(test);
    const deadline = Deadline.after(MAX_TIMER_DELAY_MS + 5000, { clock });
    const signal = deadline.signal;
    await test.advance(MAX_TIMER_DELAY_MS);
    expect(signal.aborted).toBe(false);
    expect(test.pendingTimers).toBe(1); // re-armed for the rest
    expect(test.referencedTimers).toBe(0); // and still unref'd
    await test.advance(4999);
    expect(signal.aborted).toBe(false);
    await test.advance(1);
    expect(signal.aborted).toBe(true);
    expect(isDeadlineExceededError(signal.reason)).toBe(true);
    expect(test.pendingTimers).toBe(0);
  });

  it('removes its listener from an outside signal when it expires', async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const deadline = Deadline.after(100, { clock, signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await clock.advance(100);
    expect(deadline.expired).toBe(true);
    expect(isDeadlineExceededError(deadline.signal.reason)).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort('late'); // no effect on an expired deadline
    expect(isDeadlineExceededError(deadline.signal.reason)).toBe(true);
  });

  it('removes its listener from an outside signal when it is cancelled, and clears its timer', () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const deadline = Deadline.after(100, { clock, signal: controller.signal });
    expect(clock.pendingTimers).toBe(1);
    deadline.cancel('done');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
    expect(deadline.signal.reason).toBe('done');
  });

  it('an outside signal that fires clears the timer', () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const deadline = Deadline.after(100, { clock, signal: controller.signal });
    controller.abort('gone');
    expect(deadline.signal.reason).toBe('gone');
    expect(clock.pendingTimers).toBe(0);
  });

  it('children that expire or are cancelled leave a long-lived parent', async () => {
    const clock = new TestClock();
    const parent = Deadline.after(60_000, { clock });
    void parent.signal;
    const own = linked(parent); // the parent's own timer cleanup
    for (let i = 0; i < 100; i++) {
      const child = parent.child({ timeoutMs: 10 });
      void child.signal; // armed: joins the parent
      if (i % 2 === 0) child.cancel();
    }
    expect(linked(parent)).toBe(own + 50);
    await clock.advance(10);
    expect(linked(parent)).toBe(own);
  });

  it('children that are never armed are never linked, but still see the parent cancel', () => {
    const clock = new TestClock();
    const parent = Deadline.after(1000, { clock });
    const children = Array.from({ length: 100 }, () => parent.child({ timeoutMs: 500 }));
    expect(linked(parent)).toBe(0);
    const reason = new Error('client disconnected');
    parent.cancel(reason);
    const child = children[0] as Deadline;
    expect(child.expired).toBe(true);
    expect(() => child.throwIfExpired()).toThrow(reason);
    expect(child.signal.reason).toBe(reason);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a child armed after its parent was cancelled aborts at once with the reason', () => {
    const clock = new TestClock();
    const parent = Deadline.after(1000, { clock });
    const child = parent.child();
    parent.cancel('stop');
    expect(child.signal.aborted).toBe(true);
    expect(child.signal.reason).toBe('stop');
  });

  it('an armed grandchild follows a grandparent cancel through an unarmed parent', () => {
    const clock = new TestClock();
    const root = Deadline.after(1000, { clock });
    const middle = root.child({ timeoutMs: 800 });
    const leaf = middle.child({ timeoutMs: 500 });
    const signal = leaf.signal; // arms leaf, and middle with it
    root.cancel('bye');
    expect(signal.reason).toBe('bye');
    expect(middle.expired).toBe(true);
    expect(linked(root)).toBe(0); // aborted scopes drop their listeners
    expect(linked(middle)).toBe(0);
  });

  it('cancellation is the Scope behind signal: armed like it, aborting when the deadline passes', async () => {
    const clock = new TestClock();
    const deadline = Deadline.after(100, { clock });
    const cancellation = deadline.cancellation;
    let fired = 0;
    cancellation.addEventListener('abort', () => (fired += 1));
    await clock.advance(100);
    expect(fired).toBe(1);
    expect(cancellation.aborted).toBe(true);
    expect(isDeadlineExceededError(cancellation.reason)).toBe(true);
    // Nobody read `signal`: no AbortController was made.
    expect((cancellation as unknown as { controller: unknown }).controller).toBeUndefined();
    expect(deadline.signal.aborted).toBe(true);
  });
});
