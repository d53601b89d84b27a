/** The plugin's options, their defaults and their eager validation. */
import {
  ConcurrencyLimitPolicy,
  InvalidOptionsError,
  systemClock,
  type Clock,
} from '@bulwark/core';
import type { FastifyRequest } from 'fastify';
import type { HealthCheck } from './health.js';
import type { EventLoopDelaySource } from './shedding.js';

export interface BulwarkTimeoutOptions {
  /** Budget of a request whose caller sent none, in milliseconds. Default 10_000. */
  defaultMs?: number;
  /** The most a caller may ask for, in milliseconds; larger budgets are cut. Default 60_000. */
  maxMs?: number;
}

export interface BulwarkHealthOptions {
  /** Dependency checks. Default none (every probe passes while the process is up). */
  checks?: readonly HealthCheck[];
  /** How long a check's result is reused, in milliseconds (readiness and `/health`). Default 2_000. */
  readyCacheMs?: number;
  /** Route paths; `false` leaves a route out. Defaults `/livez`, `/readyz`, `/health`. */
  paths?: { live?: string | false; ready?: string | false; health?: string | false };
  /**
   * Put a failing check's error message in `output`. Default false: only the error's `code`
   * (or "check failed"), because driver messages tend to name hosts and ports.
   */
  exposeErrors?: boolean;
}

export interface BulwarkShutdownOptions {
  /** Start a graceful shutdown on SIGTERM and SIGINT once the server listens. Default true. */
  handleSignals?: boolean;
  /** Which signals. Default `['SIGTERM', 'SIGINT']`. */
  signals?: readonly NodeJS.Signals[];
  /**
   * Time between failing readiness and refusing new requests, in milliseconds, so load
   * balancers notice first (set it near the readiness probe period). Default 0.
   */
  delayMs?: number;
  /** How long in-flight requests may take to finish before the server closes anyway, in milliseconds. Default 10_000. */
  drainTimeoutMs?: number;
}

export interface BulwarkSheddingOptions {
  /**
   * Shed when the event loop's mean delay over the last window exceeds this, in milliseconds.
   * `false` turns it off. Default 200.
   */
  maxEventLoopDelayMs?: number | false;
  /** Measuring window for the event-loop delay, in milliseconds. Default 500. */
  eventLoopDelayWindowMs?: number;
  /** Where the delay is read from. Default: `monitorEventLoopDelay` (10 ms resolution). */
  eventLoopDelay?: EventLoopDelaySource;
  /** An adaptive concurrency limit (core `concurrencyLimit`) for requests. Default none. */
  concurrency?: ConcurrencyLimitPolicy;
  /**
   * A request's priority; below 0 is low (shed first), 0 and above normal. Default: 0 for all.
   * Example: `req => (req.headers['x-bulwark-priority'] === 'batch' ? -1 : 0)`.
   */
  priority?: (request: FastifyRequest) => number;
  /** Share (0, 1] of each limit that low-priority requests may use. Default 0.75. */
  lowPriorityShare?: number;
  /** `Retry-After` sent with shed requests, in milliseconds (sent as whole seconds). Default 1_000. */
  retryAfterMs?: number;
}

export interface BulwarkOptions {
  timeouts?: BulwarkTimeoutOptions;
  /** Header carrying the request id in and out; `false` neither reads nor echoes one. Default `x-request-id`. */
  requestIdHeader?: string | false;
  health?: BulwarkHealthOptions;
  shutdown?: BulwarkShutdownOptions;
  shedding?: BulwarkSheddingOptions;
  /** Default: the system clock. */
  clock?: Clock;
}

/** @internal Options with every default filled in. */
export interface ResolvedOptions {
  defaultMs: number;
  maxMs: number;
  requestIdHeader: string | undefined;
  checks: readonly HealthCheck[];
  readyCacheMs: number;
  livePath: string | undefined;
  readyPath: string | undefined;
  healthPath: string | undefined;
  exposeErrors: boolean;
  handleSignals: boolean;
  signals: readonly NodeJS.Signals[];
  shutdownDelayMs: number;
  drainTimeoutMs: number;
  maxEventLoopDelayMs: number | undefined;
  eventLoopDelayWindowMs: number;
  eventLoopDelay: EventLoopDelaySource | undefined;
  concurrency: ConcurrencyLimitPolicy | undefined;
  priority: ((request: FastifyRequest) => number) | undefined;
  lowPriorityShare: number;
  shedRetryAfterMs: number;
  clock: Clock;
}

const W = 'bulwark (Fastify plugin)';

function fail(message: string): never {
  throw new InvalidOptionsError(`${W}: ${message}`);
}

function known(where: string, value: object | undefined, keys: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null) fail(`${where} must be an object`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) fail(`unknown option ${where}.${key}; known: ${keys.join(', ')}`);
  }
}

function positive(name: string, value: unknown, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (!allowZero && value === 0)
  ) {
    fail(
      `${name} must be a finite number ${allowZero ? '>= 0' : '> 0'} (milliseconds), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function path(name: string, value: unknown, fallback: string): string | undefined {
  if (value === undefined) return fallback;
  if (value === false) return undefined;
  if (typeof value !== 'string' || !value.startsWith('/')) {
    fail(`${name} must be a path starting with "/" or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** @internal */
export function resolveOptions(options: BulwarkOptions = {}): ResolvedOptions {
  known('options', options, [
    'timeouts',
    'requestIdHeader',
    'health',
    'shutdown',
    'shedding',
    'clock',
  ]);
  const t = options.timeouts ?? {};
  known('timeouts', t, ['defaultMs', 'maxMs']);
  const maxMs = positive('timeouts.maxMs', t.maxMs, 60_000);
  const defaultMs = positive('timeouts.defaultMs', t.defaultMs, Math.min(10_000, maxMs));
  if (defaultMs > maxMs) {
    fail(
      `timeouts.defaultMs (${defaultMs}) must not exceed timeouts.maxMs (${maxMs}); raise maxMs or lower defaultMs`,
    );
  }
  const header = options.requestIdHeader;
  if (header !== undefined && header !== false && (typeof header !== 'string' || header === '')) {
    fail(`requestIdHeader must be a header name or false, got ${String(header)}`);
  }
  const h = options.health ?? {};
  known('health', h, ['checks', 'readyCacheMs', 'paths', 'exposeErrors']);
  const checks = h.checks ?? [];
  if (!Array.isArray(checks)) fail('health.checks must be an array of { name, critical, check }');
  const names = new Set<string>();
  for (const c of checks as HealthCheck[]) {
    known(`health.checks[${String(c?.name)}]`, c, [
      'name',
      'critical',
      'measurement',
      'timeoutMs',
      'check',
    ]);
    if (typeof c.name !== 'string' || c.name === '' || c.name.includes(':')) {
      fail(`health.checks: name must be a non-empty string without ":", got ${String(c.name)}`);
    }
    if (names.has(c.name))
      fail(`health.checks: two checks are named "${c.name}"; names must be unique`);
    names.add(c.name);
    if (typeof c.critical !== 'boolean') {
      fail(
        `health.checks "${c.name}": critical must be true or false (does readiness depend on it?)`,
      );
    }
    if (typeof c.check !== 'function')
      fail(`health.checks "${c.name}": check must be a function (signal) => Promise`);
    positive(`health.checks "${c.name}".timeoutMs`, c.timeoutMs, 1_000);
  }
  const paths = h.paths ?? {};
  known('health.paths', paths, ['live', 'ready', 'health']);
  const s = options.shutdown ?? {};
  known('shutdown', s, ['handleSignals', 'signals', 'delayMs', 'drainTimeoutMs']);
  if (s.handleSignals !== undefined && typeof s.handleSignals !== 'boolean') {
    fail(`shutdown.handleSignals must be a boolean, got ${String(s.handleSignals)}`);
  }
  const sh = options.shedding ?? {};
  known('shedding', sh, [
    'maxEventLoopDelayMs',
    'eventLoopDelayWindowMs',
    'eventLoopDelay',
    'concurrency',
    'priority',
    'lowPriorityShare',
    'retryAfterMs',
  ]);
  const maxDelay = sh.maxEventLoopDelayMs;
  if (sh.concurrency !== undefined && !(sh.concurrency instanceof ConcurrencyLimitPolicy)) {
    fail(
      'shedding.concurrency must be a policy made by concurrencyLimit({ limit: ... }) from @bulwark/core',
    );
  }
  if (sh.priority !== undefined && typeof sh.priority !== 'function') {
    fail('shedding.priority must be a function (request) => number');
  }
  if (sh.eventLoopDelay !== undefined && typeof sh.eventLoopDelay?.delayMs !== 'function') {
    fail('shedding.eventLoopDelay must be an object with delayMs(): number');
  }
  const share = sh.lowPriorityShare ?? 0.75;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) {
    fail(`shedding.lowPriorityShare must be in (0, 1], got ${String(share)}`);
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function' || typeof clock.setTimer !== 'function') {
    fail('clock must implement Clock (now, wallNow, setTimer)');
  }
  return {
    defaultMs,
    maxMs,
    requestIdHeader: header === false ? undefined : (header ?? 'x-request-id').toLowerCase(),
    checks,
    readyCacheMs: positive('health.readyCacheMs', h.readyCacheMs, 2_000, true),
    livePath: path('health.paths.live', paths.live, '/livez'),
    readyPath: path('health.paths.ready', paths.ready, '/readyz'),
    healthPath: path('health.paths.health', paths.health, '/health'),
    exposeErrors: h.exposeErrors === true,
    handleSignals: s.handleSignals ?? true,
    signals: s.signals ?? ['SIGTERM', 'SIGINT'],
    shutdownDelayMs: positive('shutdown.delayMs', s.delayMs, 0, true),
    drainTimeoutMs: positive('shutdown.drainTimeoutMs', s.drainTimeoutMs, 10_000),
    maxEventLoopDelayMs:
      maxDelay === false ? undefined : positive('shedding.maxEventLoopDelayMs', maxDelay, 200),
    eventLoopDelayWindowMs: positive(
      'shedding.eventLoopDelayWindowMs',
      sh.eventLoopDelayWindowMs,
      500,
    ),
    eventLoopDelay: sh.eventLoopDelay,
    concurrency: sh.concurrency,
    priority: sh.priority,
    lowPriorityShare: share,
    shedRetryAfterMs: positive('shedding.retryAfterMs', sh.retryAfterMs, 1_000, true),
    clock,
  };
}
