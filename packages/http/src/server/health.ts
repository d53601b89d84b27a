/**
 * Health: `/livez` (the process), `/readyz` (critical dependencies and shutdown state) and
 * `/health` (every check, `application/health+json` per draft-inadarei-api-health-check).
 * Each check result is cached for `readyCacheMs` and shared by concurrent probes, so a storm
 * of probes costs one call per dependency per window.
 */
import { timeout, type Clock, type TimeoutPolicy } from '@bulwark/core';
import type { FastifyBaseLogger } from 'fastify';

export const HEALTH_CONTENT_TYPE = 'application/health+json';

export type HealthStatus = 'pass' | 'warn' | 'fail';

/** What a check may return; returning nothing means `pass`. */
export interface HealthCheckOutcome {
  /** `warn`: works, with concerns. Default `pass`. A thrown error (or timeout) is `fail`. */
  status?: 'pass' | 'warn';
  observedValue?: unknown;
  observedUnit?: string;
  output?: string;
}

export interface HealthCheck {
  /** Component name, the first half of the `checks` key (`"<name>:<measurement>"`). */
  name: string;
  /** Critical checks decide readiness and `fail`; optional ones can only make `/health` `warn`. */
  critical: boolean;
  /** Measurement name, the second half of the key. Default `responseTime` (observed in ms). */
  measurement?: string;
  /** Time limit for one run, in milliseconds; past it the check fails. Default 1_000. */
  timeoutMs?: number;
  /** The check. Stop when `signal` aborts. Throw (or reject) to fail. */
  check: (signal: AbortSignal) => Promise<void | HealthCheckOutcome>;
}

/** One entry of `checks` in the health document. */
export interface HealthCheckResult {
  status: HealthStatus;
  /** When the check ran (ISO 8601). */
  time: string;
  componentType?: string;
  observedValue?: unknown;
  observedUnit?: string;
  output?: string;
}

export interface HealthDocument {
  status: HealthStatus;
  notes?: string[];
  output?: string;
  checks?: Record<string, HealthCheckResult[]>;
}

interface Entry {
  check: HealthCheck;
  key: string;
  policy: TimeoutPolicy;
  cachedAt: number;
  result: HealthCheckResult | undefined;
  running: Promise<HealthCheckResult> | undefined;
}

/** @internal Runs and caches the checks. */
export class HealthRegistry {
  private readonly entries: Entry[];

  constructor(
    checks: readonly HealthCheck[],
    private readonly cacheMs: number,
    private readonly clock: Clock,
    private readonly exposeErrors: boolean,
    private readonly log: FastifyBaseLogger,
  ) {
    this.entries = checks.map(check => ({
      check,
      key: `${check.name}:${check.measurement ?? 'responseTime'}`,
      policy: timeout({
        timeoutMs: check.timeoutMs ?? 1_000,
        name: `health:${check.name}`,
        clock,
      }),
      cachedAt: -Infinity,
      result: undefined,
      running: undefined,
    }));
  }

  /** Runs (or reuses) the checks; `criticalOnly` for readiness. */
  async evaluate(criticalOnly: boolean): Promise<HealthDocument> {
    const entries = criticalOnly ? this.entries.filter(e => e.check.critical) : this.entries;
    const results = await Promise.all(entries.map(entry => this.result(entry)));
    let status: HealthStatus = 'pass';
    const checks: Record<string, HealthCheckResult[]> = {};
    entries.forEach((entry, i) => {
      const result = results[i] as HealthCheckResult;
      checks[entry.key] = [result];
      if (result.status === 'pass') return;
      if (entry.check.critical && result.status === 'fail') status = 'fail';
      // An optional dependency down, or any check with concerns: healthy, with concerns.
      else if (status === 'pass') status = 'warn';
    });
    return { status, checks };
  }

  private result(entry: Entry): Promise<HealthCheckResult> {
    if (entry.result !== undefined && this.clock.now() - entry.cachedAt < this.cacheMs) {
      return Promise.resolve(entry.result);
    }
    entry.running ??= this.run(entry).then(result => {
      entry.result = result;
      entry.cachedAt = this.clock.now();
      entry.running = undefined;
      return result;
    });
    return entry.running;
  }

  private async run(entry: Entry): Promise<HealthCheckResult> {
    const startedAt = this.clock.now();
    const time = new Date(this.clock.wallNow()).toISOString();
    const measuresTime = entry.check.measurement === undefined;
    try {
      const outcome = await entry.policy.execute(ctx => entry.check.check(ctx.signal));
      const result: HealthCheckResult = { status: outcome?.status ?? 'pass', time };
      if (outcome?.observedValue !== undefined) {
        result.observedValue = outcome.observedValue;
        if (outcome.observedUnit !== undefined) result.observedUnit = outcome.observedUnit;
      } else if (measuresTime) {
        result.observedValue = Math.round(this.clock.now() - startedAt);
        result.observedUnit = 'ms';
      }
      if (outcome?.output !== undefined) result.output = outcome.output;
      return result;
    } catch (error) {
      this.log.warn({ err: error, check: entry.check.name }, 'health check failed');
      const code = (error as { code?: unknown } | null)?.code;
      // Error texts often name hosts and ports; by default only a code leaves the process.
      const output = this.exposeErrors
        ? String((error as { message?: unknown } | null)?.message ?? error)
        : typeof code === 'string'
          ? code
          : 'check failed';
      return { status: 'fail', time, output };
    }
  }
}
