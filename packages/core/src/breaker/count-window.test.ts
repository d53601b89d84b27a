import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CountWindow } from './count-window.js';
import { FAILURE, NO_TRIP, SLOW, TRIP_FAILURE, TRIP_SLOW } from './window.js';

describe('CountWindow', () => {
  it('does not evaluate before minimumCalls, then trips at exactly the rate (>=)', () => {
    const window = new CountWindow(4, 4, 0.5, Infinity);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(0)).toBe(NO_TRIP);
    // 2 failures out of 4 calls = 0.5: the threshold itself trips.
    expect(window.record(0)).toBe(TRIP_FAILURE);
  });

  it('a success can trip once it brings the window to minimumCalls', () => {
    const window = new CountWindow(10, 3, 0.5, Infinity);
    window.record(FAILURE);
    window.record(FAILURE);
    expect(window.record(0)).toBe(TRIP_FAILURE);
  });

  it('evicts the oldest outcome once full', () => {
    const window = new CountWindow(3, 3, 0.67, Infinity);
    window.record(FAILURE);
    window.record(0);
    expect(window.record(0)).toBe(NO_TRIP); // 1/3
    expect(window.record(FAILURE)).toBe(NO_TRIP); // the first failure left: still 1/3
    expect(window.failures()).toBe(1);
    expect(window.calls()).toBe(3);
    expect(window.record(FAILURE)).toBe(NO_TRIP); // 2/3 = 0.666.. < 0.67
    expect(window.record(FAILURE)).toBe(TRIP_FAILURE); // 3/3
  });

  it('reports slow-call trips separately from failures', () => {
    const window = new CountWindow(4, 4, 1, 0.75);
    window.record(SLOW);
    window.record(SLOW | FAILURE);
    window.record(0);
    expect(window.record(SLOW)).toBe(TRIP_SLOW);
    expect(window.slowCalls()).toBe(3);
    expect(window.failures()).toBe(1);
  });

  it('allocates its ring only on the first call and drops it on reset', () => {
    const window = new CountWindow(1000, 1000, 0.5, Infinity);
    expect((window as unknown as { ring: unknown }).ring).toBeUndefined();
    window.record(0);
    expect((window as unknown as { ring: Uint8Array }).ring).toBeInstanceOf(Uint8Array);
    window.reset();
    expect((window as unknown as { ring: unknown }).ring).toBeUndefined();
    expect(window.calls()).toBe(0);
  });

  it('snapshots oldest first and restores into a smaller window keeping the newest', () => {
    const window = new CountWindow(4, 4, 1, Infinity);
    for (const outcome of [FAILURE, 0, SLOW, SLOW | FAILURE, 0]) window.record(outcome);
    const snapshot = window.snapshot();
    expect(snapshot).toEqual({ kind: 'count', outcomes: '0230' });
    const same = new CountWindow(4, 4, 1, Infinity);
    same.restore(JSON.parse(JSON.stringify(snapshot)));
    expect(same.snapshot()).toEqual(snapshot);
    expect([same.calls(), same.failures(), same.slowCalls()]).toEqual([4, 1, 2]);
    const smaller = new CountWindow(2, 2, 1, Infinity);
    smaller.restore(snapshot);
    expect(smaller.snapshot()).toEqual({ kind: 'count', outcomes: '30' });
    smaller.restore({ kind: 'count', outcomes: 'x1' });
    expect(smaller.calls()).toBe(0);
  });

  it('matches a naive model of the last N calls (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 200 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (size, outcomes, failureRate, slowRate) => {
          const minimumCalls = Math.max(1, Math.floor(size / 2));
          const window = new CountWindow(size, minimumCalls, failureRate, slowRate);
          const seen: number[] = [];
          for (const outcome of outcomes) {
            const trip = window.record(outcome);
            seen.push(outcome);
            const last = seen.slice(-size);
            const failures = last.filter(o => (o & FAILURE) !== 0).length;
            const slow = last.filter(o => (o & SLOW) !== 0).length;
            let expected = NO_TRIP;
            if (last.length >= minimumCalls) {
              if (failures / last.length >= failureRate) expected = TRIP_FAILURE;
              else if (slow / last.length >= slowRate) expected = TRIP_SLOW;
            }
            expect(trip).toBe(expected);
            expect(window.calls()).toBe(last.length);
            expect(window.failures()).toBe(failures);
            expect(window.slowCalls()).toBe(slow);
          }
        },
      ),
    );
  });
});
