import { describe, expect, it } from 'vitest';
import { ConsecutiveWindow } from './consecutive.js';
import { FAILURE, NO_TRIP, SLOW, TRIP_FAILURE, TRIP_SLOW } from './window.js';

describe('ConsecutiveWindow', () => {
  it('trips on the Nth failure in a row and a success starts over', () => {
    const window = new ConsecutiveWindow(3);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(0)).toBe(NO_TRIP);
    expect(window.failures()).toBe(0);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(FAILURE)).toBe(NO_TRIP);
    expect(window.record(FAILURE)).toBe(TRIP_FAILURE);
  });

  it('counts slow calls toward the same threshold and blames them only when every call was slow', () => {
    const slow = new ConsecutiveWindow(2);
    expect(slow.record(SLOW)).toBe(NO_TRIP);
    expect(slow.record(SLOW)).toBe(TRIP_SLOW);
    expect(slow.slowCalls()).toBe(2);
    const mixed = new ConsecutiveWindow(2);
    mixed.record(FAILURE);
    expect(mixed.record(SLOW)).toBe(TRIP_FAILURE);
    const slowFailure = new ConsecutiveWindow(1);
    expect(slowFailure.record(SLOW | FAILURE)).toBe(TRIP_FAILURE);
  });

  it('a threshold of 1 trips on the first failure', () => {
    expect(new ConsecutiveWindow(1).record(FAILURE)).toBe(TRIP_FAILURE);
  });

  it('snapshots and restores the run, ignoring other kinds', () => {
    const window = new ConsecutiveWindow(5);
    window.record(FAILURE);
    window.record(FAILURE);
    const snapshot = JSON.parse(JSON.stringify(window.snapshot()));
    expect(snapshot).toEqual({ kind: 'consecutive', failures: 2 });
    const copy = new ConsecutiveWindow(5);
    copy.restore(snapshot);
    expect(copy.failures()).toBe(2);
    copy.restore({ kind: 'count', outcomes: '111' });
    expect(copy.failures()).toBe(0);
    copy.restore({ kind: 'consecutive', failures: -4 });
    expect(copy.failures()).toBe(0);
  });

  it('snapshots the slow part of the run, so a restored window blames slow calls the same way', () => {
    const window = new ConsecutiveWindow(3);
    window.record(SLOW);
    window.record(SLOW);
    const snapshot = JSON.parse(JSON.stringify(window.snapshot()));
    expect(snapshot).toEqual({ kind: 'consecutive', failures: 2, slowCalls: 2 });
    const copy = new ConsecutiveWindow(3);
    copy.restore(snapshot);
    expect(copy.slowCalls()).toBe(2);
    expect(copy.record(SLOW)).toBe(TRIP_SLOW);
    // Untrusted data: never more slow calls than the run holds.
    copy.restore({ kind: 'consecutive', failures: 1, slowCalls: 9 });
    expect(copy.slowCalls()).toBe(1);
  });
});
