import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AimdLimit } from './aimd.js';

describe('AimdLimit', () => {
  it('adds increaseBy on a success while at least half the limit is in flight', () => {
    const limit = new AimdLimit({ kind: 'aimd', initial: 4, max: 8, increaseBy: 2 });
    const trajectory = [limit.limit];
    for (let i = 0; i < 4; i++) trajectory.push(limit.update(5, limit.limit, false));
    expect(trajectory).toEqual([4, 6, 8, 8, 8]);
  });

  it('does not grow when the caller is far below the limit (app-limited)', () => {
    const limit = new AimdLimit({ kind: 'aimd', initial: 10 });
    expect(limit.update(5, 4, false)).toBe(10);
    expect(limit.update(5, 5, false)).toBe(11);
  });

  it('multiplies by backoffRatio on a drop and never goes below min', () => {
    const limit = new AimdLimit({ kind: 'aimd', initial: 20, min: 5, backoffRatio: 0.5 });
    const trajectory = [limit.limit];
    for (let i = 0; i < 4; i++) trajectory.push(limit.update(5, 1, true));
    expect(trajectory).toEqual([20, 10, 5, 5, 5]);
  });

  it('lowers the limit by at least one even when the ratio rounds up', () => {
    const limit = new AimdLimit({ kind: 'aimd', initial: 3, backoffRatio: 0.95 });
    expect(limit.update(1, 1, true)).toBe(2);
    expect(limit.update(1, 1, true)).toBe(1);
    expect(limit.update(1, 1, true)).toBe(1);
  });

  it('treats an RTT above timeoutMs as a drop', () => {
    const limit = new AimdLimit({ kind: 'aimd', initial: 10, timeoutMs: 100 });
    expect(limit.needsRtt).toBe(true);
    expect(limit.update(100, 10, false)).toBe(11);
    expect(limit.update(101, 10, false)).toBe(9);
    expect(new AimdLimit({ kind: 'aimd' }).needsRtt).toBe(false);
  });

  it('has the Netflix defaults', () => {
    const limit = new AimdLimit({ kind: 'aimd' });
    expect([limit.limit, limit.min, limit.max, limit.backoffRatio, limit.increaseBy]).toEqual([
      20, 1, 200, 0.9, 1,
    ]);
  });
});

describe('AimdLimit stays within [min, max] (property)', () => {
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
          const limit = new AimdLimit({
            kind: 'aimd',
            min,
            max: min + span,
            initial: min,
            timeoutMs: 500,
          });
          for (const [rtt, inFlight, dropped] of samples) {
            const value = limit.update(rtt, inFlight, dropped);
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
