import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimeWindow } from './time-window.js';
import { FAILURE, NO_TRIP, SLOW, TRIP_FAILURE, TRIP_SLOW } from './window.js';

describe('TimeWindow', () => {
  it('waits for minimumCalls, then trips at exactly the rate (>=)', () => {
    const window = new TimeWindow(1000, 10, 4, 0.5, Infinity);
    expect(window.record(FAILURE, 0)).toBe(NO_TRIP);
    expect(window.record(FAILURE, 10)).toBe(NO_TRIP);
    expect(window.record(0, 20)).toBe(NO_TRIP);
    expect(window.record(0, 30)).toBe(TRIP_FAILURE);
  });

  it('forgets calls older than windowMs, one bucket at a time', () => {
    const window = new TimeWindow(1000, 10, 1, 1, Infinity);
    window.record(FAILURE, 0); // bucket [0, 100)
    window.record(0, 150); // bucket [100, 200)
    expect(window.calls(999)).toBe(2);
    expect(window.calls(1000)).toBe(1); // bucket [0, 100) left the window
    expect(window.failures(1000)).toBe(0);
    expect(window.calls(1100)).toBe(0);
    // A failure now is 1/1 = 100%: with the old success gone it trips.
    expect(window.record(FAILURE, 1100)).toBe(TRIP_FAILURE);
  });

  it('clears everything after a long idle time in one step', () => {
    const window = new TimeWindow(1000, 10, 1, 1, Infinity);
    for (let t = 0; t < 1000; t += 50) window.record(0, t);
    expect(window.calls(999)).toBe(20);
    expect(window.calls(1_000_000)).toBe(0);
    expect(window.record(0, 1_000_001)).toBe(NO_TRIP);
    expect(window.calls(1_000_001)).toBe(1);
  });

  it('counts slow calls', () => {
    const window = new TimeWindow(1000, 4, 2, 1, 1);
    window.record(SLOW, 0);
    expect(window.record(SLOW, 1)).toBe(TRIP_SLOW);
  });

  it('allocates its ring only on the first call', () => {
    const window = new TimeWindow(1000, 10, 1, 1, Infinity);
    expect((window as unknown as { ring: unknown }).ring).toBeUndefined();
    expect(window.snapshot(0)).toEqual({
      kind: 'time',
      bucketMs: 100,
      buckets: Array.from({ length: 10 }, () => [0, 0, 0]),
    });
  });

  it('restores a snapshot, ageing it by the time spent in storage', () => {
    const window = new TimeWindow(1000, 10, 1, 1, Infinity);
    window.record(FAILURE, 5_000); // bucket 50
    window.record(0, 5_350); // bucket 53
    const snapshot = JSON.parse(JSON.stringify(window.snapshot(5_399)));
    expect(snapshot.buckets[9]).toEqual([1, 0, 0]);
    expect(snapshot.buckets[6]).toEqual([1, 1, 0]);

    const fresh = new TimeWindow(1000, 10, 1, 1, Infinity);
    fresh.restore(snapshot, 77, 0);
    expect([fresh.calls(77), fresh.failures(77)]).toEqual([2, 1]);

    const aged = new TimeWindow(1000, 10, 1, 1, Infinity);
    aged.restore(snapshot, 77, 750); // 7 buckets later: the failure's bucket (3 from the end) is gone
    expect([aged.calls(77), aged.failures(77)]).toEqual([1, 0]);

    const other = new TimeWindow(2000, 10, 1, 1, Infinity);
    other.restore(snapshot, 77, 0);
    expect(other.calls(77)).toBe(0);
  });

  it('matches a naive model over bucketed time (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 3 })), {
          maxLength: 100,
        }),
        (buckets, steps) => {
          const bucketMs = 100;
          const window = new TimeWindow(bucketMs * buckets, buckets, 1, 1, Infinity);
          const seen: { bucket: number; outcome: number }[] = [];
          let now = 0;
          for (const [gap, outcome] of steps) {
            now += gap;
            window.record(outcome, now);
            seen.push({ bucket: Math.floor(now / bucketMs), outcome });
            const current = Math.floor(now / bucketMs);
            const live = seen.filter(s => s.bucket > current - buckets);
            expect(window.calls(now)).toBe(live.length);
            expect(window.failures(now)).toBe(live.filter(s => (s.outcome & FAILURE) !== 0).length);
            expect(window.slowCalls(now)).toBe(live.filter(s => (s.outcome & SLOW) !== 0).length);
          }
        },
      ),
    );
  });
});
