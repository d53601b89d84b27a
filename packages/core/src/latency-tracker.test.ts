import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LatencyTracker } from './latency-tracker.js';
import { seededRandom } from './random.js';

describe('LatencyTracker', () => {
  it.each([
    [null, /expected an options object/],
    [{ lowestMs: 0 }, /lowestMs must be a finite number > 0, got 0/],
    [{ highestMs: -5 }, /highestMs must be a finite number > 0, got -5/],
    [{ lowestMs: 10, highestMs: 5 }, /highestMs \(5\) must be greater than lowestMs \(10\)/],
    [{ growthFactor: 1 }, /growthFactor must be a number in \(1, 2\], got 1/],
    [{ growthFactor: 3 }, /growthFactor/],
    [{ decayAfter: 1 }, /decayAfter must be an integer >= 2, got 1/],
    [{ decay: 5 }, /unknown option "decay"/],
  ])('rejects %j', (options, message) => {
    expect(() => new LatencyTracker(options as never)).toThrow(message);
  });

  it('is empty until the first sample and ignores invalid samples', () => {
    const tracker = new LatencyTracker();
    expect(tracker.percentile(0.95)).toBeUndefined();
    tracker.record(Number.NaN);
    tracker.record(-1);
    expect(tracker.recorded).toBe(0);
    tracker.record(0);
    expect(tracker.percentile(0.5)).toBeLessThanOrEqual(0.1);
  });

  it('estimates percentiles of a uniform distribution within the bucket error', () => {
    const tracker = new LatencyTracker({ decayAfter: 100_000 });
    const random = seededRandom(7);
    for (let i = 0; i < 50_000; i++) tracker.record(random.next() * 1000);
    for (const p of [0.5, 0.9, 0.95, 0.99]) {
      const estimate = tracker.percentile(p) as number;
      expect(Math.abs(estimate - p * 1000) / (p * 1000)).toBeLessThan(0.1);
    }
  });

  it('clamps samples to the tracked range', () => {
    const tracker = new LatencyTracker({ lowestMs: 1, highestMs: 100 });
    tracker.record(1e9);
    expect(tracker.percentile(1)).toBe(100);
    tracker.reset();
    expect(tracker.percentile(1)).toBeUndefined();
    tracker.record(0.001);
    expect(tracker.percentile(1)).toBeLessThanOrEqual(1);
  });

  it('forgets old samples by halving, so the estimate follows a shift', () => {
    const tracker = new LatencyTracker({ decayAfter: 100 });
    for (let i = 0; i < 500; i++) tracker.record(500);
    expect(tracker.weight).toBeLessThan(100);
    for (let i = 0; i < 500; i++) tracker.record(5);
    expect(tracker.percentile(0.95)).toBeLessThan(5.5);
    expect(tracker.recorded).toBe(1000);
  });

  it('keeps memory fixed: bucket count does not depend on the number of samples', () => {
    const tracker = new LatencyTracker();
    const before = (tracker as unknown as { counts: Float64Array }).counts.length;
    for (let i = 0; i < 10_000; i++) tracker.record(i);
    expect((tracker as unknown as { counts: Float64Array }).counts.length).toBe(before);
    expect(before).toBeLessThan(200);
  });

  it('percentiles are monotonic in p and within the recorded range (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.2, max: 100_000, noNaN: true }), {
          minLength: 1,
          maxLength: 300,
        }),
        samples => {
          const tracker = new LatencyTracker();
          for (const s of samples) tracker.record(s);
          const max = Math.max(...samples);
          const min = Math.min(...samples);
          let last = 0;
          for (const p of [0, 0.25, 0.5, 0.9, 0.99, 1]) {
            const v = tracker.percentile(p) as number;
            expect(v).toBeGreaterThanOrEqual(last);
            expect(v).toBeGreaterThanOrEqual(min / 1.1 - 1e-9);
            expect(v).toBeLessThanOrEqual(max * 1.1 + 1e-9);
            last = v;
          }
        },
      ),
    );
  });
});
