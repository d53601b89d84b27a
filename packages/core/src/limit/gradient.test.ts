import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GradientLimit } from './gradient.js';

describe('GradientLimit', () => {
  it('grows by smoothing * queueSize per sample while RTT is steady', () => {
    const limit = new GradientLimit({ kind: 'gradient', initial: 10 });
    limit.update(10, 10);
    expect(limit.estimate).toBeCloseTo(10.8, 10);
    limit.update(10, 10);
    expect(limit.estimate).toBeCloseTo(11.6, 10);
    expect(limit.limit).toBe(11);
  });

  it('shrinks when the short-term RTT rises above tolerance x the long-term RTT', () => {
    const limit = new GradientLimit({ kind: 'gradient', initial: 50, max: 50 });
    for (let i = 0; i < 100; i++) limit.update(10, 50);
    expect(limit.limit).toBe(50);
    const trajectory: number[] = [];
    for (let i = 0; i < 10; i++) trajectory.push(limit.update(40, 50));
    expect(trajectory[trajectory.length - 1]).toBeLessThan(30);
    for (let i = 1; i < trajectory.length; i++) {
      expect(trajectory[i]).toBeLessThanOrEqual(trajectory[i - 1] as number);
    }
    // Gradient is clamped at 0.5: one sample can cut at most smoothing * (limit / 2 - queueSize).
    const before = limit.estimate;
    limit.update(10_000, 50);
    expect(limit.estimate).toBeCloseTo(before * 0.9 + 0.8, 10);
  });

  it('does not move while fewer than half the limit are in flight', () => {
    const limit = new GradientLimit({ kind: 'gradient', initial: 20 });
    expect(limit.update(10, 9)).toBe(20);
    expect(limit.update(1000, 9)).toBe(20);
    expect(limit.update(10, 10)).toBeGreaterThanOrEqual(20);
  });

  it('forgets an inflated long-term RTT quickly once latency falls', () => {
    const limit = new GradientLimit({ kind: 'gradient', longWindow: 600 });
    for (let i = 0; i < 50; i++) limit.update(100, 100);
    const inflated = limit.longRttMs;
    for (let i = 0; i < 30; i++) limit.update(10, 100);
    // A 600-sample EMA alone would still be above 90 ms; the 0.95 decay pulls it down.
    expect(limit.longRttMs).toBeLessThan(inflated * 0.5);
    expect(limit.shortRttMs).toBeCloseTo(10, 0);
  });

  it('treats zero RTTs as no queueing', () => {
    const limit = new GradientLimit({ kind: 'gradient', initial: 10 });
    expect(limit.update(0, 10)).toBe(10);
    expect(limit.estimate).toBeCloseTo(10.8, 10);
  });
});

describe('GradientLimit stays within [min, max] (property)', () => {
  const sample = fc.tuple(
    fc.double({ min: 0, max: 10_000, noNaN: true }),
    fc.integer({ min: 0, max: 2000 }),
    fc.boolean(),
  );
  it('for any samples', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(sample, { maxLength: 200 }),
        (min, span, samples) => {
          const limit = new GradientLimit({
            kind: 'gradient',
            min,
            max: min + span,
            initial: min + span,
            shortWindow: 1,
          });
          for (const [rtt, inFlight] of samples) {
            const value = limit.update(rtt, inFlight);
            expect(Number.isInteger(value)).toBe(true);
            expect(value).toBeGreaterThanOrEqual(min);
            expect(value).toBeLessThanOrEqual(min + span);
          }
        },
      ),
      { seed: 7 },
    );
  });
});
