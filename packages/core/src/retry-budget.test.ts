import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import { InvalidOptionsError } from './errors.js';
import { retryBudget, SYNC_EVERY } from './retry-budget.js';

/** A TestClock that counts how often it is read. */
class CountingClock extends TestClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

function withdrawAll(budget: { tryWithdraw(): boolean }, limit = 100_000): number {
  let n = 0;
  while (n < limit && budget.tryWithdraw()) n++;
  return n;
}

describe('retryBudget', () => {
  it('defaults: 20% of requests plus 10 retries/s over a 10 s TTL', () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock });
    expect([budget.ratio, budget.minPerSecond, budget.ttlMs, budget.reserve]).toEqual([
      0.2, 10, 10_000, 100,
    ]);
    expect(budget.available()).toBe(100);
    for (let i = 0; i < 50; i++) budget.recordRequest();
    expect(budget.available()).toBe(110);
    expect(withdrawAll(budget)).toBe(110);
    expect(budget.tryWithdraw()).toBe(false);
    expect(budget.available()).toBe(0);
  });

  it('every request deposits ratio tokens; a retry needs a whole token', () => {
    const budget = retryBudget({ clock: new TestClock(), ratio: 0.5, minPerSecond: 0 });
    expect(budget.tryWithdraw()).toBe(false);
    budget.recordRequest();
    expect(budget.available()).toBe(0.5);
    expect(budget.tryWithdraw()).toBe(false);
    budget.recordRequest();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('deposits expire after the TTL (in tenth-of-TTL steps)', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 1, minPerSecond: 0, ttlMs: 1000 });
    for (let i = 0; i < 10; i++) budget.recordRequest();
    await clock.advance(500);
    expect(budget.available()).toBe(10); // a reading at t = 500 ...
    for (let i = 0; i < 5; i++) budget.recordRequest(); // ... so these land in its bucket
    expect(budget.available()).toBe(15);
    await clock.advance(499); // t = 999: the first deposits are still in the last bucket
    expect(budget.available()).toBe(15);
    await clock.advance(1); // t = 1000: they expire
    expect(budget.available()).toBe(5);
    await clock.advance(500);
    expect(budget.available()).toBe(0);
  });

  it('withdrawals expire too, so the floor refills at minPerSecond', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 0, minPerSecond: 10, ttlMs: 1000 });
    expect(withdrawAll(budget)).toBe(10);
    await clock.advance(900);
    expect(budget.tryWithdraw()).toBe(false);
    await clock.advance(100);
    expect(withdrawAll(budget)).toBe(10);
    await clock.advance(60_000); // a long gap clears every bucket at once
    expect(budget.available()).toBe(10);
  });

  it('ratio 0 and minPerSecond 0 allow no retries at all', () => {
    const budget = retryBudget({ clock: new TestClock(), ratio: 0, minPerSecond: 0 });
    for (let i = 0; i < 1000; i++) budget.recordRequest();
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('recordRequest reads the clock only once per SYNC_EVERY calls', () => {
    const clock = new CountingClock();
    const budget = retryBudget({ clock });
    clock.reads = 0;
    for (let i = 0; i < SYNC_EVERY * 10; i++) budget.recordRequest();
    expect(clock.reads).toBe(10);
  });

  it('credits unsynced requests to the previous reading, so they expire early, never late', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock, ratio: 1, minPerSecond: 0, ttlMs: 1000 });
    budget.available(); // read at t = 0
    await clock.advance(950);
    for (let i = 0; i < 5; i++) budget.recordRequest(); // at t = 950, not read
    await clock.advance(50);
    // Credited to the t = 0 bucket, which expires at t = 1000: strict, not lenient.
    expect(budget.available()).toBe(0);
  });

  it('stops a retry storm: 1000 calls x 5 retries in a 10 s window', async () => {
    const clock = new TestClock();
    const budget = retryBudget({ clock });
    let requests = 0;
    let retries = 0;
    for (let call = 0; call < 1000; call++) {
      budget.recordRequest();
      requests++;
      for (let r = 0; r < 5; r++) if (budget.tryWithdraw()) retries++;
      await clock.advance(9); // 9 s in all
    }
    expect(retries).toBeLessThanOrEqual(0.2 * requests + 10 * 10);
    expect(retries).toBeGreaterThan(0.2 * requests); // the floor is usable
  });

  it('validates every option', () => {
    expect(() => retryBudget({ ratio: -0.1 })).toThrow(
      /retryBudget: ratio must be a finite number >= 0, got -0.1/,
    );
    expect(() => retryBudget({ ratio: Number.NaN })).toThrow(/ratio/);
    expect(() => retryBudget({ minPerSecond: -1 })).toThrow(
      /minPerSecond must be a finite number >= 0/,
    );
    expect(() => retryBudget({ ttlMs: 0 })).toThrow(/ttlMs must be a finite number > 0, got 0/);
    expect(() => retryBudget({ ttl: 5 } as never)).toThrow(/unknown option "ttl"/);
    expect(() => retryBudget({ clock: Date } as never)).toThrow(/clock must implement Clock/);
    expect(() => retryBudget(null as never)).toThrow(InvalidOptionsError);
  });
});

describe('retryBudget properties', () => {
  type Op = { dt: number; requests: number; retries: number; peek: boolean };
  const op = fc.record({
    dt: fc.integer({ min: 0, max: 400 }),
    requests: fc.integer({ min: 0, max: 60 }),
    // Ops without withdrawals or peeks leave requests unsynced across the next time step.
    retries: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 })),
    // available() reads the clock, which changes how unsynced requests are credited.
    peek: fc.oneof(fc.constant(false), fc.boolean()),
  });

  it('retries granted never exceed ratio x requests + minPerSecond x TTL within the live window', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 120 }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })),
        fc.integer({ min: 100, max: 5000 }),
        async (ops: Op[], ratio, minPerSecond, ttlMs) => {
          const clock = new TestClock();
          const budget = retryBudget({ clock, ratio, minPerSecond, ttlMs });
          const reserve = (minPerSecond * ttlMs) / 1000;
          const requestTimes: number[] = [];
          const grantTimes: number[] = [];
          for (const { dt, requests, retries, peek } of ops) {
            await clock.advance(dt);
            const now = clock.now();
            for (let i = 0; i < requests; i++) {
              budget.recordRequest();
              requestTimes.push(now);
            }
            for (let i = 0; i < retries; i++) {
              if (!budget.tryWithdraw()) continue;
              grantTimes.push(now);
              // A deposit stays live at least 0.9 x TTL and at most TTL, so: the retries granted
              // in the last 0.9 TTL are covered by the requests of the last TTL plus the reserve.
              const granted = grantTimes.filter(t => t > now - 0.9 * ttlMs).length;
              const deposited = requestTimes.filter(t => t > now - ttlMs).length;
              expect(granted).toBeLessThanOrEqual(ratio * deposited + reserve + 1e-9);
            }
            if (peek) expect(budget.available()).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
