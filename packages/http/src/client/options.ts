/**
 * The options of `httpDependency`, their defaults, and their eager validation. Messages name the
 * option, the bad value and the fix.
 */
import {
  circuitBreaker,
  exponentialBackoff,
  InvalidOptionsError,
  retry,
  systemClock,
  type Clock,
  type Composable,
} from '@bulwark/core';
import type { Dispatcher } from 'undici';
import { currentRequestId } from '../request-context.js';
import { isDependencyFailure } from './errors.js';

export interface HttpDependencyOptions {
  /** The dependency's name, used in errors, events and policy names (e.g. `"users"`). Required. */
  name: string;
  /**
   * Where the dependency lives: `http(s)://host:port`, optionally with a path prefix that every
   * request path is appended to (`http://10.0.0.5:3001/api`). No query string or fragment. Required.
   */
  baseUrl: string | URL;
  /** Longest a new TCP (and TLS) connection may take to open, in ms. Default 1_000. */
  connectTimeoutMs?: number;
  /**
   * Longest to wait for the response headers once the request is sent, in ms (time to first
   * byte). Default 2_000.
   */
  firstByteTimeoutMs?: number;
  /**
   * Longest the whole response body may take, from the headers to the last byte, in ms. A body
   * that stalls (no chunk) is ended after min(firstByteTimeoutMs, bodyTimeoutMs): "no byte for
   * firstByteTimeoutMs" holds for the body as for the headers. Default 5_000.
   */
  bodyTimeoutMs?: number;
  /** Most open connections to the dependency (undici Pool `connections`). Default 64. */
  connections?: number;
  /** How long an idle keep-alive connection is kept, in ms. Default 4_000 (undici's default). */
  keepAliveTimeoutMs?: number;
  /**
   * Largest response body accepted, in bytes, both on the wire and after decoding gzip/br/deflate.
   * Enforced while the body streams. Default 10 MiB (10_485_760).
   */
  maxResponseBytes?: number;
  /**
   * The least budget, in ms, worth sending a request with: when the call's deadline has less left
   * at the start of an attempt, the request is not sent and the attempt fails with
   * `DeadlineExceededError`. Default 1 (the budget headers count whole milliseconds; a budget of
   * 0 only tells the callee to fail).
   */
  minBudgetMs?: number;
  /**
   * The policies every request runs under, outermost first, or `'default'`:
   * `retry({ maxAttempts: 3, backoff: exponentialBackoff({ baseMs: 50, maxMs: 1_000 }) })` then
   * `circuitBreaker({ trigger: { kind: 'count', windowSize: 50, failureRate: 0.5, minimumCalls: 20 },
   * openMs: 10_000, halfOpen: { probes: 3 }, isFailure: isDependencyFailure })`, both named after
   * the dependency and driven by `clock`. `[]` runs requests with no policy. Policies that
   * replace the result (fallback) belong around the call, not here. Default `'default'`.
   */
  policies?: 'default' | readonly Composable<unknown>[];
  /** Headers sent with every request (a request's own headers win). Default none. */
  defaultHeaders?: Readonly<Record<string, string>>;
  /**
   * Which statuses are a normal response. Others become errors: 5xx → `UPSTREAM_5XX`,
   * 4xx → `UPSTREAM_4XX`, anything else → `UNEXPECTED_STATUS`. Default: 200–299.
   */
  acceptStatus?: (status: number) => boolean;
  /**
   * Send the remaining budget downstream (`x-bulwark-budget-ms`, `grpc-timeout`,
   * `x-envoy-expected-rq-timeout-ms`). Turn off for third-party APIs. Default true.
   */
  propagateDeadline?: boolean;
  /**
   * Where the id sent in `requestIdHeader` comes from; `false` sends none. A request's own header
   * wins. Default: the id of the inbound request being served by the Fastify plugin
   * (`currentRequestId()`), so a handler's outbound calls carry the id it was called with; outside
   * such a request nothing is sent.
   */
  getRequestId?: (() => string | undefined) | false;
  /** Header that carries `getRequestId()`. Default `'x-request-id'`. */
  requestIdHeader?: string;
  /** Time source for durations and the body time limit. Default the system clock. */
  clock?: Clock;
  /**
   * An undici Dispatcher to send through (an Agent, a MockAgent, a proxy) instead of the
   * dependency's own Pool. `connections`, `connectTimeoutMs` and `keepAliveTimeoutMs` then do
   * not apply, and `close()` does not close it (its owner does). Default: a Pool of its own.
   */
  dispatcher?: Dispatcher;
}

export const DEFAULTS = {
  connectTimeoutMs: 1_000,
  firstByteTimeoutMs: 2_000,
  bodyTimeoutMs: 5_000,
  connections: 64,
  keepAliveTimeoutMs: 4_000,
  maxResponseBytes: 10 * 1024 * 1024,
  minBudgetMs: 1,
  requestIdHeader: 'x-request-id',
} as const;

const KNOWN = new Set([
  'name',
  'baseUrl',
  'connectTimeoutMs',
  'firstByteTimeoutMs',
  'bodyTimeoutMs',
  'connections',
  'keepAliveTimeoutMs',
  'maxResponseBytes',
  'minBudgetMs',
  'policies',
  'defaultHeaders',
  'acceptStatus',
  'propagateDeadline',
  'getRequestId',
  'requestIdHeader',
  'clock',
  'dispatcher',
]);

const WHERE = 'httpDependency';

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return typeof value;
}

function fail(message: string): never {
  throw new InvalidOptionsError(`${WHERE}: ${message}`);
}

function positive(name: string, value: unknown, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    fail(
      `${name} must be ${integer ? 'an integer' : 'a finite number'} > 0, got ${show(value)}; omit it for the default ${fallback}`,
    );
  }
  return value;
}

function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(
      `${name} must be a finite number >= 0, got ${show(value)}; omit it for the default ${fallback}`,
    );
  }
  return value;
}

function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    fail(`${name} must be a function, got ${show(value)}`);
  }
}

/** The options after validation, with defaults filled in. */
export interface ResolvedOptions {
  name: string;
  origin: string;
  /** The base URL's path without a trailing slash ('' for none). */
  basePath: string;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  bodyTimeoutMs: number;
  /**
   * undici's idle timer for the body: min(firstByteTimeoutMs, bodyTimeoutMs). With the defaults
   * it equals undici's headers timer, and undici then refreshes one timer per connection from
   * headers to body instead of replacing it with a new one on every response (see `bodyTimeoutMs`).
   */
  stallTimeoutMs: number;
  connections: number;
  keepAliveTimeoutMs: number;
  maxResponseBytes: number;
  minBudgetMs: number;
  policies: readonly Composable<unknown>[];
  defaultHeaders: Record<string, string>;
  acceptStatus: (status: number) => boolean;
  propagateDeadline: boolean;
  getRequestId: (() => string | undefined) | undefined;
  requestIdHeader: string;
  clock: Clock;
  dispatcher: Dispatcher | undefined;
}

export function isSuccessStatus(status: number): boolean {
  return status >= 200 && status <= 299;
}

export function resolveOptions(options: HttpDependencyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    fail(
      `expected an options object such as httpDependency({ name: 'users', baseUrl: 'http://127.0.0.1:3001' }), got ${show(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      fail(`unknown option ${JSON.stringify(key)}; known options: ${[...KNOWN].join(', ')}`);
    }
  }
  const name = options.name as unknown;
  if (typeof name !== 'string' || name.trim() === '') {
    fail(`name must be a non-empty string naming the dependency (e.g. 'users'), got ${show(name)}`);
  }
  const { origin, basePath } = parseBaseUrl(options.baseUrl);
  const clock = options.clock ?? systemClock;
  if (
    typeof clock !== 'object' ||
    typeof clock.now !== 'function' ||
    typeof clock.wallNow !== 'function'
  ) {
    fail(`clock must be a Clock (now(), wallNow(), setTimer()), got ${show(clock)}`);
  }
  optionalFunction('acceptStatus', options.acceptStatus);
  if (options.getRequestId !== undefined && options.getRequestId !== false) {
    if (typeof options.getRequestId !== 'function') {
      fail(
        `getRequestId must be a function or false (send no id), got ${show(options.getRequestId)}`,
      );
    }
  }
  const defaultHeaders: Record<string, string> = {};
  if (options.defaultHeaders !== undefined) {
    if (typeof options.defaultHeaders !== 'object' || options.defaultHeaders === null) {
      fail(
        `defaultHeaders must be an object of header name to string, got ${show(options.defaultHeaders)}`,
      );
    }
    for (const [key, value] of Object.entries(options.defaultHeaders)) {
      if (typeof value !== 'string') {
        fail(`defaultHeaders[${JSON.stringify(key)}] must be a string, got ${show(value)}`);
      }
      defaultHeaders[key.toLowerCase()] = value;
    }
  }
  const requestIdHeader = options.requestIdHeader ?? DEFAULTS.requestIdHeader;
  if (typeof requestIdHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(requestIdHeader)) {
    fail(
      `requestIdHeader must be a header name such as 'x-request-id', got ${show(requestIdHeader)}`,
    );
  }
  if (options.propagateDeadline !== undefined && typeof options.propagateDeadline !== 'boolean') {
    fail(`propagateDeadline must be true or false, got ${show(options.propagateDeadline)}`);
  }
  const dispatcher = options.dispatcher;
  if (
    dispatcher !== undefined &&
    (typeof dispatcher !== 'object' || typeof dispatcher?.dispatch !== 'function')
  ) {
    fail(
      `dispatcher must be an undici Dispatcher (Agent, Pool, MockAgent), got ${show(dispatcher)}`,
    );
  }
  const firstByteTimeoutMs = positive(
    'firstByteTimeoutMs',
    options.firstByteTimeoutMs,
    DEFAULTS.firstByteTimeoutMs,
  );
  const bodyTimeoutMs = positive('bodyTimeoutMs', options.bodyTimeoutMs, DEFAULTS.bodyTimeoutMs);
  const resolved: ResolvedOptions = {
    name,
    origin,
    basePath,
    connectTimeoutMs: positive(
      'connectTimeoutMs',
      options.connectTimeoutMs,
      DEFAULTS.connectTimeoutMs,
    ),
    firstByteTimeoutMs,
    bodyTimeoutMs,
    stallTimeoutMs: Math.min(firstByteTimeoutMs, bodyTimeoutMs),
    connections: positive('connections', options.connections, DEFAULTS.connections, true),
    keepAliveTimeoutMs: positive(
      'keepAliveTimeoutMs',
      options.keepAliveTimeoutMs,
      DEFAULTS.keepAliveTimeoutMs,
    ),
    maxResponseBytes: positive(
      'maxResponseBytes',
      options.maxResponseBytes,
      DEFAULTS.maxResponseBytes,
      true,
    ),
    minBudgetMs: nonNegative('minBudgetMs', options.minBudgetMs, DEFAULTS.minBudgetMs),
    policies: [],
    defaultHeaders,
    acceptStatus: options.acceptStatus ?? isSuccessStatus,
    propagateDeadline: options.propagateDeadline ?? true,
    getRequestId:
      options.getRequestId === false ? undefined : (options.getRequestId ?? currentRequestId),
    requestIdHeader: requestIdHeader.toLowerCase(),
    clock,
    dispatcher,
  };
  resolved.policies = resolvePolicies(options.policies, name, clock);
  return resolved;
}

function parseBaseUrl(baseUrl: unknown): { origin: string; basePath: string } {
  let url: URL;
  try {
    url = new URL(baseUrl as string);
  } catch {
    return fail(
      `baseUrl must be an absolute http(s) URL such as 'http://127.0.0.1:3001', got ${show(baseUrl)}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(`baseUrl must use http: or https:, got ${JSON.stringify(url.protocol)}`);
  }
  if (url.search !== '' || url.hash !== '') {
    fail(
      `baseUrl must not have a query string or fragment (pass query per request), got ${show(String(baseUrl))}`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    fail('baseUrl must not carry credentials; send them with defaultHeaders (e.g. authorization)');
  }
  const basePath = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return { origin: url.origin, basePath };
}

function resolvePolicies(
  policies: HttpDependencyOptions['policies'],
  name: string,
  clock: Clock,
): readonly Composable<unknown>[] {
  if (policies === undefined || policies === 'default') return defaultPolicies(name, clock);
  if (!Array.isArray(policies)) {
    fail(
      `policies must be 'default' or an array of policies (outermost first), got ${show(policies)}`,
    );
  }
  policies.forEach((policy: unknown, index) => {
    if (
      typeof policy !== 'object' ||
      policy === null ||
      typeof (policy as Composable).compose !== 'function'
    ) {
      fail(
        `policies[${index}] is not a policy (expected an object with compose()), got ${show(policy)}`,
      );
    }
  });
  return [...(policies as readonly Composable<unknown>[])];
}

/** The default pipeline: retry outside the breaker, so every attempt is counted by the breaker. */
function defaultPolicies(name: string, clock: Clock): readonly Composable<unknown>[] {
  return [
    retry({
      name: `${name}.retry`,
      maxAttempts: 3,
      backoff: exponentialBackoff({ baseMs: 50, maxMs: 1_000 }),
      clock,
    }),
    circuitBreaker({
      name: `${name}.breaker`,
      trigger: { kind: 'count', windowSize: 50, failureRate: 0.5, minimumCalls: 20 },
      openMs: 10_000,
      halfOpen: { probes: 3 },
      isFailure: isDependencyFailure,
      clock,
    }),
  ];
}
