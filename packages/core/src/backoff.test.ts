import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  constantBackoff,
  customBackoff,
  decorrelatedJitterBackoff,
  exponentialBackoff,
  type Backoff,
} from './backoff.js';
import { InvalidOptionsError } from './errors.js';
import { seededRandom, type Random } from './random.js';

const fixed = (value: number): Random => ({ next: () => value });
const HIGH = 1 - Number.EPSILON;

/** Runs a backoff for `count` retries the way the retry policy does, chaining the previous delay. */
function delays(backoff: Backoff, random: Random, count: number): number[] {
  const out: number[] = [];
  let previousDelayMs = 0;
  for (let attempt = 1; attempt <= count; attempt++) {
    previousDelayMs = backoff.next({ attempt, previousDelayMs, random });
    out.push(previousDelayMs);
  }
  return out;
}

describe('exponentialBackoff', () => {
  it('defaults to full jitter, base 100, factor 2, cap 30 s', () => {
    expect(delays(exponentialBackoff(), fixed(HIGH), 3).map(Math.round)).toEqual([100, 200, 400]);
    expect(delays(exponentialBackoff(), fixed(0), 3)).toEqual([0, 0, 0]);
    expect(delays(exponentialBackoff(), fixed(0.5), 3)).toEqual([50, 100, 200]);
    const late = delays(exponentialBackoff(), fixed(HIGH), 20);
    expect(Math.round(late[19]!)).toBe(30_000);
  });

  it("'none' doubles exactly up to the cap", () => {
    const b = exponentialBackoff({ jitter: 'none', baseMs: 10, maxMs: 1000 });
    expect(delays(b, fixed(0.3), 9)).toEqual([10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
  });

  it("'equal' stays within [d/2, d)", () => {
    const b = exponentialBackoff({ jitter: 'equal', baseMs: 100, factor: 3 });
    expect(delays(b, fixed(0), 3)).toEqual([50, 150, 450]);
    expect(delays(b, fixed(0.5), 2)).toEqual([75, 225]);
  });

  it('factor 1 is a jittered constant, even at absurd attempt numbers', () => {
    const b = exponentialBackoff({ jitter: 'none', factor: 1, baseMs: 70 });
    for (const attempt of [1, 2, 1e6, Infinity, Number.NaN, -3]) {
      expect(b.next({ attempt, previousDelayMs: 0, random: fixed(0) })).toBe(70);
    }
  });

  it('never returns NaN, a negative or more than maxMs, even after 10,000 attempts', () => {
    for (const jitter of ['full', 'equal', 'none'] as const) {
      const b = exponentialBackoff({ jitter, factor: 7.5 });
      for (const d of delays(b, seededRandom(1), 10_000)) {
        expect(d >= 0 && d <= 30_000).toBe(true);
      }
      const atInfinity = b.next({ attempt: Infinity, previousDelayMs: 0, random: fixed(0.5) });
      expect(atInfinity >= 0 && atInfinity <= 30_000).toBe(true);
    }
  });

  it('survives a Random that misbehaves (NaN counts as high)', () => {
    const b = exponentialBackoff({ baseMs: 100, maxMs: 100 });
    expect(b.next({ attempt: 1, previousDelayMs: 0, random: fixed(Number.NaN) })).toBeCloseTo(100);
    expect(b.next({ attempt: 1, previousDelayMs: 0, random: fixed(-1) })).toBe(0);
    expect(b.next({ attempt: 1, previousDelayMs: 0, random: fixed(7) })).toBeLessThanOrEqual(100);
  });

  it('validates every option', () => {
    expect(() => exponentialBackoff({ baseMs: 0 })).toThrow(
      /exponentialBackoff: baseMs must be a finite number > 0, got 0/,
    );
    expect(() => exponentialBackoff({ maxMs: Number.NaN })).toThrow(/maxMs/);
    expect(() => exponentialBackoff({ baseMs: 500, maxMs: 100 })).toThrow(
      /maxMs \(100\) must be >= baseMs \(500\)/,
    );
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(
      /factor must be a finite number >= 1, got 0.5/,
    );
    expect(() => exponentialBackoff({ jitter: 'half' as never })).toThrow(
      /jitter must be one of 'full', 'equal', 'none', got "half"/,
    );
    expect(() => exponentialBackoff({ base: 5 } as never)).toThrow(/unknown option "base"/);
    expect(() => exponentialBackoff(null as never)).toThrow(InvalidOptionsError);
  });
});

describe('decorrelatedJitterBackoff', () => {
  it('follows min(cap, random(base, prev * 3)) starting from base', () => {
    const b = decorrelatedJitterBackoff({ baseMs: 10, maxMs: 1000 });
    expect(delays(b, fixed(0), 3)).toEqual([10, 10, 10]);
    // random ~1: 30, 90, 270, 810, then capped
    expect(delays(b, fixed(HIGH), 6).map(Math.round)).toEqual([30, 90, 270, 810, 1000, 1000]);
    // random 0.5: base + (prev*3 - base)/2
    expect(delays(b, fixed(0.5), 2)).toEqual([20, 35]);
  });

  it('clamps a previous delay outside [base, cap] before using it', () => {
    const b = decorrelatedJitterBackoff({ baseMs: 10, maxMs: 100 });
    const state = { attempt: 5, random: fixed(HIGH) };
    expect(b.next({ ...state, previousDelayMs: Number.NaN })).toBe(100);
    expect(b.next({ ...state, previousDelayMs: 1e308 })).toBe(100);
    expect(b.next({ ...state, previousDelayMs: -1 })).toBeCloseTo(30);
  });

  it('validates', () => {
    expect(() => decorrelatedJitterBackoff({ baseMs: -1 })).toThrow(/baseMs/);
    expect(() => decorrelatedJitterBackoff({ baseMs: 10, maxMs: 5 })).toThrow(/maxMs \(5\)/);
    expect(() => decorrelatedJitterBackoff({ jitter: 'full' } as never)).toThrow(
      /unknown option "jitter"/,
    );
  });
});

describe('constantBackoff', () => {
  it('returns the same delay every time', () => {
    expect(delays(constantBackoff({ delayMs: 250 }), fixed(0.9), 4)).toEqual([250, 250, 250, 250]);
    expect(delays(constantBackoff({ delayMs: 0 }), fixed(0.9), 2)).toEqual([0, 0]);
  });

  it('validates', () => {
    expect(() => constantBackoff({} as never)).toThrow(
      /delayMs is required .*constantBackoff\(\{ delayMs: 200 \}\)/,
    );
    expect(() => constantBackoff({ delayMs: -5 })).toThrow(
      /delayMs must be a finite number >= 0, got -5/,
    );
    expect(() => constantBackoff({ delayMs: Infinity })).toThrow(/delayMs/);
    expect(() => constantBackoff(100 as never)).toThrow(/expected an options object/);
    expect(() => constantBackoff({ delayMs: 1, ms: 2 } as never)).toThrow(/unknown option "ms"/);
  });
});

describe('customBackoff', () => {
  it('passes attempt, previous delay, error and random, and clamps the result', () => {
    const seen: unknown[] = [];
    const random = fixed(0.25);
    const b = customBackoff(
      (attempt, previousDelayMs, error, r) => {
        seen.push([attempt, previousDelayMs, error, r]);
        return attempt * 1000;
      },
      { maxMs: 2500 },
    );
    expect(b.next({ attempt: 1, previousDelayMs: 0, error: 'e1', random })).toBe(1000);
    expect(b.next({ attempt: 3, previousDelayMs: 1000, error: 'e3', random })).toBe(2500);
    expect(seen).toEqual([
      [1, 0, 'e1', random],
      [3, 1000, 'e3', random],
    ]);
  });

  it('turns NaN and non-numbers into maxMs and negatives into 0', () => {
    const state = { attempt: 1, previousDelayMs: 0, random: fixed(0) };
    expect(customBackoff(() => Number.NaN).next(state)).toBe(30_000);
    expect(customBackoff(() => undefined as never, { maxMs: 10 }).next(state)).toBe(10);
    expect(customBackoff(() => -100).next(state)).toBe(0);
    expect(customBackoff(() => Infinity).next(state)).toBe(30_000);
  });

  it('validates', () => {
    expect(() => customBackoff(5 as never)).toThrow(
      /customBackoff: the first argument must be a function/,
    );
    expect(() => customBackoff(() => 1, { maxMs: -1 })).toThrow(
      /maxMs must be a finite number >= 0/,
    );
    expect(() => customBackoff(() => 1, { cap: 1 } as never)).toThrow(/unknown option "cap"/);
  });
});

describe('backoff properties', () => {
  const seed = fc.integer();
  const baseMs = fc.double({ min: 0.001, max: 10_000, noNaN: true });
  const spread = fc.double({ min: 1, max: 1000, noNaN: true });
  const attempts = fc.integer({ min: 1, max: 300 });

  it('exponential: every delay in [0, maxMs] (equal jitter: >= half the ceiling), never NaN', () => {
    fc.assert(
      fc.property(
        seed,
        baseMs,
        spread,
        fc.double({ min: 1, max: 100, noNaN: true }),
        fc.constantFrom('full', 'equal', 'none'),
        attempts,
        (s, base, mult, factor, jitter, count) => {
          const maxMs = base * mult;
          const b = exponentialBackoff({ baseMs: base, maxMs, factor, jitter });
          const out = delays(b, seededRandom(s), count);
          out.forEach((d, i) => {
            expect(Number.isNaN(d)).toBe(false);
            expect(d).toBeGreaterThanOrEqual(0);
            expect(d).toBeLessThanOrEqual(maxMs);
            const ceiling = Math.min(maxMs, base * factor ** i);
            expect(d).toBeLessThanOrEqual(ceiling * (1 + 1e-9));
            if (jitter === 'equal') expect(d).toBeGreaterThanOrEqual((ceiling / 2) * (1 - 1e-9));
            if (jitter === 'none') expect(d).toBeCloseTo(ceiling, 6);
          });
        },
      ),
    );
  });

  it('decorrelated: every delay in [baseMs, maxMs] and <= 3 x the previous one', () => {
    fc.assert(
      fc.property(seed, baseMs, spread, attempts, (s, base, mult, count) => {
        const maxMs = base * mult;
        const out = delays(
          decorrelatedJitterBackoff({ baseMs: base, maxMs }),
          seededRandom(s),
          count,
        );
        let previous = base;
        for (const d of out) {
          expect(d).toBeGreaterThanOrEqual(base);
          expect(d).toBeLessThanOrEqual(maxMs);
          expect(d).toBeLessThanOrEqual(previous * 3 * (1 + 1e-12));
          previous = d;
        }
      }),
    );
  });

  it('custom: whatever the function returns, the delay is in [0, maxMs]', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.double(), fc.constant(Number.NaN), fc.anything()),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        attempts,
        (value, maxMs, attempt) => {
          const d = customBackoff(() => value as number, { maxMs }).next({
            attempt,
            previousDelayMs: 0,
            random: fixed(0),
          });
          expect(d >= 0 && d <= maxMs).toBe(true);
        },
      ),
    );
  });

  it('any kind, 10,000 chained attempts from any seed: finite, within bounds', () => {
    fc.assert(
      fc.property(seed, s => {
        const kinds: [Backoff, number, number][] = [
          [exponentialBackoff(), 0, 30_000],
          [exponentialBackoff({ jitter: 'equal' }), 0, 30_000],
          [decorrelatedJitterBackoff(), 100, 30_000],
          [constantBackoff({ delayMs: 5 }), 5, 5],
        ];
        for (const [backoff, min, max] of kinds) {
          for (const d of delays(backoff, seededRandom(s), 10_000)) {
            if (!(d >= min && d <= max)) throw new Error(`delay ${d} outside [${min}, ${max}]`);
          }
        }
      }),
      { numRuns: 20 },
    );
  });
});
