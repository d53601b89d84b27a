import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import { Deadline } from './deadline.js';
import { isDeadlineExceededError } from './errors.js';

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

  it('follows an outside signal', () => {
    const controller = new AbortController();
    const deadline = Deadline.after(1000, { clock: new TestClock(), signal: controller.signal });
    controller.abort('gone');
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.reason).toBe('gone');
  });

  it('validates its inputs', () => {
    const clock = new TestClock();
    expect(() => Deadline.after(-1, { clock })).toThrow(/timeoutMs must be a number >= 0/);
    expect(() => Deadline.after(Number.NaN, { clock })).toThrow(/timeoutMs/);
    const d = Deadline.after(10, { clock });
    expect(() => d.child({ fraction: 0 })).toThrow(/fraction must be in \(0, 1\]/);
    expect(() => d.child({ fraction: 1.5 })).toThrow(/fraction/);
    expect(() => d.child({ timeoutMs: -5 })).toThrow(/timeoutMs must be >= 0/);
    expect(() => d.child({ reserveMs: -5 })).toThrow(/reserveMs/);
  });
});
