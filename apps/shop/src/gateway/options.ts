/** The gateway's options, their defaults (environment first) and eager validation. */
import { InvalidOptionsError, type Clock, type Composable } from '@bulwark/core';
import type { CacheStore } from '@bulwark/compose/cache';
import type { BulwarkOptions } from '@bulwark/http/fastify';
import type { FastifyServerOptions } from 'fastify';
import { DEFAULT_PORTS, UPSTREAM_ENV, UPSTREAM_NAMES, type UpstreamName } from './upstreams.js';

export interface GatewayCacheOptions {
  /**
   * Shared L2 for both caches. Default: `redisCacheStore` on env `REDIS_URL` when set (closed
   * with the gateway), else none (L1 only). `false`: none, whatever the environment says.
   */
  l2?: CacheStore | false;
  /** How long a user's recent orders are fresh, in ms (concurrent overviews share one load). Default 1_000. */
  ordersTtlMs?: number;
  /** How long past fresh the last orders are served when the orders or catalog service fails, in ms. Default 600_000. */
  ordersStaleIfErrorMs?: number;
  /** How long popular products are fresh, in ms. Default 60_000. */
  popularTtlMs?: number;
  /** How long past fresh popular products are kept for the fallback, in ms. Default 86_400_000. */
  popularStaleMs?: number;
  /** Drives the caches' freshness. Default: the system clock (tests pass a TestClock). */
  clock?: Clock;
}

export interface GatewayOptions {
  /** Base URLs. Default: env `USERS_URL`, `ORDERS_URL`, `CATALOG_URL`, `RECOMMENDATIONS_URL`, else `http://127.0.0.1:<3001..3004>`. */
  upstreams?: Partial<Record<UpstreamName, string>>;
  /** Override an upstream's policies (outermost first). Default: `upstreamPolicies(name)`. */
  policies?: Partial<Record<UpstreamName, readonly Composable<unknown>[]>>;
  /**
   * Per-attempt time limits of each upstream, in ms. Default users 250, orders 300, catalog 250,
   * recommendations 200. Ignored for an upstream whose `policies` are given.
   */
  attemptTimeoutMs?: Partial<Record<UpstreamName, number>>;
  /** Most time the overview may take, in ms (caps the caller's budget). Default 1_000. */
  overviewBudgetMs?: number;
  /** Orders in the overview. Default 5. */
  recentOrders?: number;
  /** Recommendations in the overview. Default 8. */
  recommendations?: number;
  /** Largest `limit` of `/api/users/:id/orders` (the orders service's maximum). Default 50. */
  maxOrdersLimit?: number;
  cache?: GatewayCacheOptions;
  /** Compress responses of at least this many bytes (gzip, br, deflate by Accept-Encoding). Default 1_024. */
  compressThresholdBytes?: number;
  /** Fastify's logger option. Default false. */
  logger?: FastifyServerOptions['logger'];
  /** Options of the bulwark plugin. Default: its defaults. */
  bulwark?: BulwarkOptions;
  /** Where defaults are read from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

const W = 'createGateway';

function fail(message: string): never {
  throw new InvalidOptionsError(`${W}: ${message}`);
}

export function intOption(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/** The base URL of each upstream: option, then environment, then the local default port. */
export function resolveUpstreamUrls(
  given: Partial<Record<UpstreamName, string>> = {},
  env: Record<string, string | undefined> = process.env,
): Record<UpstreamName, string> {
  const urls = {} as Record<UpstreamName, string>;
  for (const name of UPSTREAM_NAMES) {
    const fromEnv = env[UPSTREAM_ENV[name]];
    const url =
      given[name] ??
      (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv) ??
      `http://127.0.0.1:${DEFAULT_PORTS[name]}`;
    if (!/^https?:\/\/[^/?#]+/.test(url)) {
      fail(
        `the ${name} URL must be http(s)://host:port, got ${JSON.stringify(url)}; set ${UPSTREAM_ENV[name]} or upstreams.${name}`,
      );
    }
    urls[name] = url;
  }
  return urls;
}
