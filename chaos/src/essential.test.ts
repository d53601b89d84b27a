/**
 * The essential chaos scenarios, run in CI: the shop in process, each service behind a fault
 * proxy, bounded load. Assertions are on outcome counts and `meta`, never on timings, except the
 * generous "no hang" bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario, warmUp, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import { scaledTimings, startShopStack, type ShopStack } from './stack.js';

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 90_000;
const SCENARIO_TIMEOUT_MS = 40_000;
// The gateway's timings x5 (budget 5 s, 1-1.5 s per attempt): CI machines are shared and
// in-process PGlite queues queries, and a healthy call must never look like a fault. Every
// per-attempt limit stays below the 2 s latency fault.
const TIMINGS = scaledTimings(5);
const BUDGET_MS = TIMINGS.overviewBudgetMs;
/** "Never a hang": far above any legitimate answer, far below a hung request. */
const NO_HANG_MARGIN_MS = 2_000;

const load: ScenarioOptions = {
  requests: 40,
  concurrency: 8,
  marginMs: NO_HANG_MARGIN_MS,
  recoveryPolls: 200,
  recoveryIntervalMs: 25,
};

describe('chaos: essential scenarios', () => {
  let stack: ShopStack;
  let nextUser = 1;
  const run = (options: ScenarioOptions = {}): Promise<ScenarioResult> => {
    const firstUserId = nextUser;
    nextUser += 60;
    return runScenario(stack, { ...load, ...options, firstUserId });
  };

  beforeAll(async () => {
    stack = await startShopStack({
      seed: { users: 400, products: 300, orders: 1_200, picksPerUser: 8, popular: 20 },
      ...TIMINGS,
      breakerOpenMs: 300,
    });
    await warmUp(stack);
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await stack?.close();
  });

  const failed = (r: ScenarioResult) => r.checks.filter(c => !c.pass);

  it(
    'healthy: every overview is complete',
    async () => {
      const r = await run();
      expect(failed(r)).toEqual([]);
      expect(r.counts.ok).toBe(r.counts.requests);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'recommendations down: 200 with the profile, popular items as fallback, then recovery',
    async () => {
      const r = await run({ dependency: 'recommendations', fault: 'down' });
      expect(failed(r)).toEqual([]);
      expect(r.counts.degraded).toBe(r.counts.requests);
      // The popular items were cached when the gateway started: every answer has them.
      expect(r.counts.parts.recommendations).toEqual({
        'fallback:alternate:popular-items': r.counts.requests,
      });
      expect(r.counts.parts.user).toEqual({ ok: r.counts.requests });
      expect(r.counts.parts.orders).toEqual({ ok: r.counts.requests });
      expect(r.recovery?.recovered).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'orders 500: 200 with the profile, orders stale or omitted, then recovery',
    async () => {
      const r = await run({ dependency: 'orders', fault: 'http-500' });
      expect(failed(r)).toEqual([]);
      expect(r.counts.ok + r.counts.degraded).toBe(r.counts.requests);
      for (const status of Object.keys(r.counts.parts.orders ?? {})) {
        expect(status).toMatch(/^(stale|omitted|ok:cache)/);
      }
      expect(r.counts.parts.recommendations).toEqual({ ok: r.counts.requests });
      expect(r.recovery?.recovered).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'catalog hang: 200 with the profile, orders degraded, no hang, then recovery',
    async () => {
      const r = await run({ dependency: 'catalog', fault: 'hang' });
      expect(failed(r)).toEqual([]);
      expect(r.counts.ok + r.counts.degraded).toBe(r.counts.requests);
      expect(r.counts.byOutcome.hang).toBe(0);
      expect(r.counts.parts.user).toEqual({ ok: r.counts.requests });
      expect(r.recovery?.recovered).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'users down: every overview is a 503 problem+json, then recovery',
    async () => {
      const r = await run({ dependency: 'users', fault: 'down' });
      expect(failed(r)).toEqual([]);
      expect(r.counts.byStatus).toEqual({ '503': r.counts.requests });
      expect(r.recovery?.recovered).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'users hang: every overview is a 503/504 problem+json within the deadline, then recovery',
    async () => {
      const r = await run({ dependency: 'users', fault: 'hang' });
      expect(failed(r)).toEqual([]);
      expect(r.counts.byOutcome.problem).toBe(r.counts.requests);
      expect(r.latency.maxMs).toBeLessThan(BUDGET_MS + NO_HANG_MARGIN_MS);
      expect(r.recovery?.recovered).toBe(true);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
