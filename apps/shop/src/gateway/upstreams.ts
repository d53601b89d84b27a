/**
 * The gateway's four upstreams, one `httpDependency` each, with policies sized for a read path
 * under an overview budget of about a second: a per-attempt timeout, at most two attempts, and a
 * breaker that stops calling a failing service for a few seconds.
 */
import {
  circuitBreaker,
  exponentialBackoff,
  isCircuitOpenError,
  isRetryable,
  retry,
  timeout,
  type Composable,
} from '@bulwark/core';
import { httpDependency, isDependencyFailure, type HttpDependency } from '@bulwark/http';

export const UPSTREAM_NAMES = ['users', 'orders', 'catalog', 'recommendations'] as const;
export type UpstreamName = (typeof UPSTREAM_NAMES)[number];

/** Environment variable holding each upstream's base URL. */
export const UPSTREAM_ENV: Readonly<Record<UpstreamName, string>> = {
  users: 'USERS_URL',
  orders: 'ORDERS_URL',
  catalog: 'CATALOG_URL',
  recommendations: 'RECOMMENDATIONS_URL',
};

/** Default ports of the services in the one-process shop. */
export const DEFAULT_PORTS: Readonly<Record<UpstreamName | 'gateway', number>> = {
  gateway: 3000,
  users: 3001,
  orders: 3002,
  catalog: 3003,
  recommendations: 3004,
};

/** Per-attempt time limits, in ms: well inside each part's slice, so a second attempt fits. */
export const ATTEMPT_TIMEOUT_MS: Readonly<Record<UpstreamName, number>> = {
  users: 250,
  orders: 300,
  catalog: 250,
  recommendations: 200,
};

export type Upstreams = Readonly<Record<UpstreamName, HttpDependency>>;

/** retry (2 attempts, not on an open circuit) → breaker → per-attempt timeout. */
export function upstreamPolicies(
  name: UpstreamName,
  attemptTimeoutMs: number = ATTEMPT_TIMEOUT_MS[name],
): Composable<unknown>[] {
  return [
    retry({
      name: `${name}.retry`,
      maxAttempts: 2,
      backoff: exponentialBackoff({ baseMs: 10, maxMs: 50 }),
      // An open breaker says "not now": waiting out its hint would spend the whole budget.
      retryOn: error => isRetryable(error) && !isCircuitOpenError(error),
    }),
    circuitBreaker({
      name: `${name}.breaker`,
      trigger: { kind: 'count', windowSize: 20, failureRate: 0.5, minimumCalls: 10 },
      openMs: 5_000,
      halfOpen: { probes: 2 },
      isFailure: isDependencyFailure,
    }),
    timeout({ name: `${name}.attempt`, timeoutMs: attemptTimeoutMs }),
  ];
}

export interface UpstreamOptions {
  /** Replace an upstream's policies (outermost first). */
  policies?: Partial<Record<UpstreamName, readonly Composable<unknown>[]>>;
  /** Per-attempt time limits in ms. Default {@link ATTEMPT_TIMEOUT_MS}. */
  attemptTimeoutMs?: Partial<Record<UpstreamName, number>>;
}

export function createUpstreams(
  urls: Readonly<Record<UpstreamName, string>>,
  options: UpstreamOptions = {},
): Upstreams {
  const make = (name: UpstreamName) =>
    httpDependency({
      name,
      baseUrl: urls[name],
      connectTimeoutMs: 500,
      policies:
        options.policies?.[name] ??
        upstreamPolicies(name, options.attemptTimeoutMs?.[name] ?? ATTEMPT_TIMEOUT_MS[name]),
    });
  return {
    users: make('users'),
    orders: make('orders'),
    catalog: make('catalog'),
    recommendations: make('recommendations'),
  };
}

export async function closeUpstreams(upstreams: Upstreams): Promise<void> {
  await Promise.all(UPSTREAM_NAMES.map(name => upstreams[name].close()));
}
