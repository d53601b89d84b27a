/**
 * The shop in one process for chaos runs: the four services on one in-memory PGlite (small seed),
 * each behind its own fault proxy (http mode), and the gateway pointed at the proxies. Faults are
 * switched per scenario on `stack.proxies.<dependency>`.
 */
import {
  circuitBreaker,
  exponentialBackoff,
  InvalidOptionsError,
  isCircuitOpenError,
  isRetryable,
  retry,
  timeout,
  type Composable,
} from '@bulwark/core';
import { isDependencyFailure } from '@bulwark/http';
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import {
  ATTEMPT_TIMEOUT_MS,
  createCatalogService,
  createGateway,
  createOrdersService,
  createRecommendationsService,
  createUsersService,
} from '@bulwark/shop';
import { startFaultProxy, type FaultProxy } from '@bulwark/testing';
import type { FastifyInstance } from 'fastify';
import { DEPENDENCIES, type Dependency } from './faults.js';

export interface SeedSizes {
  users: number;
  products: number;
  orders: number;
  picksPerUser: number;
  popular: number;
}

export interface ShopStackOptions {
  /** Demo data. Default `{ users: 200, products: 500, orders: 2_000, picksPerUser: 10, popular: 20 }`. */
  seed?: SeedSizes;
  /** The gateway's overview budget, in ms. Default 1_000 (the gateway's own default). */
  overviewBudgetMs?: number;
  /**
   * How long an upstream's breaker stays open, in ms. Default 500: short, so that recovery is
   * seen within a scenario (the gateway's production default is 5_000).
   */
  breakerOpenMs?: number;
  /**
   * Per-attempt time limit of each upstream call, in ms. Default: the gateway's own (users 250,
   * orders 300, catalog 250, recommendations 200). Raise it (with `overviewBudgetMs`) on a slow or
   * busy machine: in-process PGlite answers a few hundred queries a second at best, and a healthy
   * call that queues past its limit would be counted as a fault. Keep it below 2_000 so that the
   * 2 s latency fault stays a fault.
   */
  attemptTimeoutMs?: number | Partial<Record<Dependency, number>>;
}

export interface ShopStack {
  /** `http://127.0.0.1:<port>` of the gateway. */
  readonly gatewayUrl: string;
  /** One fault proxy in front of each service. */
  readonly proxies: Readonly<Record<Dependency, FaultProxy>>;
  readonly overviewBudgetMs: number;
  readonly breakerOpenMs: number;
  readonly attemptTimeoutMs: Readonly<Record<Dependency, number>>;
  readonly seed: Readonly<SeedSizes>;
  /** Removes every fault. */
  clearFaults(): Promise<void>;
  /** Stops the gateway, the proxies, the services and the database. */
  close(): Promise<void>;
}

export const DEFAULT_SEED: Readonly<SeedSizes> = Object.freeze({
  users: 200,
  products: 500,
  orders: 2_000,
  picksPerUser: 10,
  popular: 20,
});

/** Per-attempt time limits of the gateway, in ms (users 250, orders 300, catalog 250, recommendations 200). */
export const GATEWAY_ATTEMPT_TIMEOUT_MS: Readonly<Record<Dependency, number>> = ATTEMPT_TIMEOUT_MS;

/**
 * The gateway's default pipeline (retry 2 → breaker → per-attempt timeout) with a shorter open
 * time. The shape mirrors `upstreamPolicies` of `@bulwark/shop`, which takes no `openMs` (yet):
 * only `openMs` differs.
 */
/**
 * The gateway's timings stretched by `factor`: the overview budget (1_000 ms) and every
 * per-attempt limit, so their proportions (attempt < part slice < budget) stay as designed.
 * Used with a factor > 1 on a small or busy machine, where in-process PGlite queues queries.
 */
export function scaledTimings(factor: number): {
  overviewBudgetMs: number;
  attemptTimeoutMs: Record<Dependency, number>;
} {
  if (!(factor > 0) || !Number.isFinite(factor)) {
    throw new InvalidOptionsError(
      `scaledTimings: factor must be a number > 0, got ${String(factor)}`,
    );
  }
  return {
    overviewBudgetMs: Math.round(1_000 * factor),
    attemptTimeoutMs: Object.fromEntries(
      DEPENDENCIES.map(name => [name, Math.round(GATEWAY_ATTEMPT_TIMEOUT_MS[name] * factor)]),
    ) as Record<Dependency, number>,
  };
}

export function chaosPolicies(
  name: Dependency,
  openMs: number,
  attemptTimeoutMs: number = GATEWAY_ATTEMPT_TIMEOUT_MS[name],
): Composable<unknown>[] {
  return [
    retry({
      name: `${name}.retry`,
      maxAttempts: 2,
      backoff: exponentialBackoff({ baseMs: 10, maxMs: 50 }),
      retryOn: error => isRetryable(error) && !isCircuitOpenError(error),
    }),
    circuitBreaker({
      name: `${name}.breaker`,
      trigger: { kind: 'count', windowSize: 20, failureRate: 0.5, minimumCalls: 10 },
      openMs,
      halfOpen: { probes: 2 },
      isFailure: isDependencyFailure,
    }),
    timeout({ name: `${name}.attempt`, timeoutMs: attemptTimeoutMs }),
  ];
}

// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
// Signals are the chaos runner's business, not each app's.
const QUIET = {
  shedding: { maxEventLoopDelayMs: false as const },
  shutdown: { handleSignals: false },
};

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address !== 'object') throw new Error('no listening address');
  return address.port;
}

/** Starts everything on ephemeral ports of 127.0.0.1 and resolves when the gateway listens. */
export async function startShopStack(options: ShopStackOptions = {}): Promise<ShopStack> {
  const seed = options.seed ?? DEFAULT_SEED;
  const overviewBudgetMs = options.overviewBudgetMs ?? 1_000;
  const breakerOpenMs = options.breakerOpenMs ?? 500;
  if (!Number.isInteger(breakerOpenMs) || breakerOpenMs < 1) {
    throw new InvalidOptionsError(
      `startShopStack: breakerOpenMs must be an integer >= 1, got ${String(breakerOpenMs)}`,
    );
  }
  const given = options.attemptTimeoutMs;
  const attemptTimeoutMs = Object.fromEntries(
    DEPENDENCIES.map(name => {
      const value =
        typeof given === 'number' ? given : (given?.[name] ?? GATEWAY_ATTEMPT_TIMEOUT_MS[name]);
      if (!Number.isInteger(value) || value < 1) {
        throw new InvalidOptionsError(
          `startShopStack: attemptTimeoutMs for ${name} must be an integer >= 1, got ${String(value)}`,
        );
      }
      return [name, value];
    }),
  ) as Record<Dependency, number>;
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    const db: SqlDatabase = await openDatabase();
    closers.push(() => db.close());
    const common = { db, seed, bulwark: QUIET };
    const services: Record<Dependency, FastifyInstance> = {
      users: await createUsersService(common),
      orders: await createOrdersService(common),
      catalog: await createCatalogService(common),
      recommendations: await createRecommendationsService(common),
    };
    const proxies = {} as Record<Dependency, FaultProxy>;
    const upstreams = {} as Record<Dependency, string>;
    for (const name of DEPENDENCIES) {
      const service = services[name];
      closers.push(() => service.close());
      const port = await listen(service);
      const proxy = await startFaultProxy({ mode: 'http', target: { host: '127.0.0.1', port } });
      closers.push(() => proxy.close());
      proxies[name] = proxy;
      upstreams[name] = proxy.url;
    }
    const policies = Object.fromEntries(
      DEPENDENCIES.map(name => [name, chaosPolicies(name, breakerOpenMs, attemptTimeoutMs[name])]),
    ) as Record<Dependency, Composable<unknown>[]>;
    const gateway = await createGateway({
      upstreams,
      policies,
      overviewBudgetMs,
      cache: { l2: false },
      bulwark: QUIET,
      env: {},
    });
    closers.push(() => gateway.close());
    const gatewayPort = await listen(gateway);
    return {
      gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
      proxies,
      overviewBudgetMs,
      breakerOpenMs,
      attemptTimeoutMs,
      seed,
      async clearFaults() {
        await Promise.all(DEPENDENCIES.map(name => proxies[name].clearFaults()));
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
