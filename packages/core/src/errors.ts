/**
 * The error taxonomy. Every error Bulwark raises has a stable `code`, keeps its `cause`, and says
 * whether trying again can help (`retryable`). Guards check a brand registered with `Symbol.for`,
 * not `instanceof`, so they keep working when two copies of the package are installed.
 */

const BRAND = Symbol.for('bulwark.error');

export type BulwarkErrorCode =
  | 'TIMEOUT'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'CIRCUIT_OPEN'
  | 'BULKHEAD_FULL'
  | 'RATE_LIMITED'
  | 'RETRY_BUDGET_EXHAUSTED'
  | 'RETRIES_EXHAUSTED'
  | 'LOAD_SHED'
  | 'INJECTED_FAULT'
  | 'INVALID_OPTIONS'
  // Codes used by packages built on core (http, compose, messaging) share the same taxonomy.
  | (string & {});

export interface BulwarkErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** A hint from the failure itself: wait at least this long before trying again (Retry-After). */
  retryAfterMs?: number;
}

export class BulwarkError extends Error {
  readonly [BRAND] = true;
  readonly code: BulwarkErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(code: BulwarkErrorCode, message: string, options: BulwarkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The per-attempt time limit of a `timeout` policy ran out. Retryable: another attempt may be faster. */
export class TimeoutError extends BulwarkError {
  constructor(
    readonly timeoutMs: number,
    options: BulwarkErrorOptions = {},
  ) {
    super('TIMEOUT', `operation timed out after ${timeoutMs} ms`, { retryable: true, ...options });
  }
}

/** The whole operation's deadline ran out. Not retryable: there is no time left to try again. */
export class DeadlineExceededError extends BulwarkError {
  constructor(message = 'deadline exceeded', options: BulwarkErrorOptions = {}) {
    super('DEADLINE_EXCEEDED', message, { retryable: false, ...options });
  }
}

/** The caller gave up (its AbortSignal fired). `cause` holds the signal's reason. */
export class CancelledError extends BulwarkError {
  constructor(options: BulwarkErrorOptions = {}) {
    super('CANCELLED', 'operation cancelled by the caller', { retryable: false, ...options });
  }
}

/** The circuit breaker is open (or half-open with every probe slot taken). */
export class CircuitOpenError extends BulwarkError {
  constructor(
    readonly breaker: string,
    retryAfterMs: number | undefined,
    options: BulwarkErrorOptions = {},
  ) {
    super('CIRCUIT_OPEN', `circuit breaker "${breaker}" is open`, {
      retryable: true,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...options,
    });
  }
}

export class BulkheadFullError extends BulwarkError {
  constructor(
    readonly bulkhead: string,
    message = `bulkhead "${bulkhead}" is full`,
    options: BulwarkErrorOptions = {},
  ) {
    super('BULKHEAD_FULL', message, { retryable: true, ...options });
  }
}

export class RateLimitedError extends BulwarkError {
  constructor(
    readonly limiter: string,
    retryAfterMs: number,
    options: BulwarkErrorOptions = {},
  ) {
    super('RATE_LIMITED', `rate limiter "${limiter}" has no tokens left`, {
      retryable: true,
      retryAfterMs,
      ...options,
    });
  }
}

/** A retry was wanted but the dependency's shared retry budget is spent. `cause` is the last error. */
export class RetryBudgetExhaustedError extends BulwarkError {
  constructor(
    readonly attempts: readonly unknown[],
    options: BulwarkErrorOptions = {},
  ) {
    super('RETRY_BUDGET_EXHAUSTED', 'retry budget exhausted; not retrying', {
      retryable: false,
      cause: attempts[attempts.length - 1],
      ...options,
    });
  }
}

/** Every attempt failed. `attempts` holds each attempt's error in order; `cause` is the last one. */
export class RetriesExhaustedError extends BulwarkError {
  constructor(
    readonly attempts: readonly unknown[],
    reason = `all ${attempts.length} attempts failed`,
    options: BulwarkErrorOptions = {},
  ) {
    super('RETRIES_EXHAUSTED', reason, {
      retryable: false,
      cause: attempts[attempts.length - 1],
      ...options,
    });
  }
}

/** Rejected early to protect the process (adaptive concurrency limit, event-loop delay). */
export class LoadShedError extends BulwarkError {
  constructor(message = 'load shed', options: BulwarkErrorOptions = {}) {
    super('LOAD_SHED', message, { retryable: true, ...options });
  }
}

/** Raised on purpose by the fault-injection policy. */
export class InjectedFaultError extends BulwarkError {
  constructor(message = 'injected fault', options: BulwarkErrorOptions = {}) {
    super('INJECTED_FAULT', message, { retryable: true, ...options });
  }
}

/** Options were rejected when a policy was built. The message names the option and the fix. */
export class InvalidOptionsError extends BulwarkError {
  constructor(message: string) {
    super('INVALID_OPTIONS', message, { retryable: false });
  }
}

// ---- guards -------------------------------------------------------------------------------

export function isBulwarkError(error: unknown): error is BulwarkError {
  return (
    typeof error === 'object' && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true
  );
}

export function hasCode<C extends BulwarkErrorCode>(
  error: unknown,
  code: C,
): error is BulwarkError & { code: C } {
  return isBulwarkError(error) && error.code === code;
}

/**
 * Whether an error says trying again can help. Reads a boolean `retryable` property on any object,
 * so application errors can take part; errors without one are treated as retryable (`fallback`).
 */
export function isRetryable(error: unknown, fallback = true): boolean {
  if (typeof error === 'object' && error !== null) {
    const value = (error as { retryable?: unknown }).retryable;
    if (typeof value === 'boolean') return value;
  }
  return fallback;
}

/** The delay hint carried by an error (`retryAfterMs`), if it is a finite, non-negative number. */
export function retryAfterMsOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null) {
    const value = (error as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof value === 'number' && value >= 0 && Number.isFinite(value)) return value;
  }
  return undefined;
}

export const isTimeoutError = (e: unknown): e is TimeoutError => hasCode(e, 'TIMEOUT');
export const isDeadlineExceededError = (e: unknown): e is DeadlineExceededError =>
  hasCode(e, 'DEADLINE_EXCEEDED');
export const isCancelledError = (e: unknown): e is CancelledError => hasCode(e, 'CANCELLED');
export const isCircuitOpenError = (e: unknown): e is CircuitOpenError => hasCode(e, 'CIRCUIT_OPEN');
export const isBulkheadFullError = (e: unknown): e is BulkheadFullError =>
  hasCode(e, 'BULKHEAD_FULL');
export const isRateLimitedError = (e: unknown): e is RateLimitedError => hasCode(e, 'RATE_LIMITED');
export const isRetryBudgetExhaustedError = (e: unknown): e is RetryBudgetExhaustedError =>
  hasCode(e, 'RETRY_BUDGET_EXHAUSTED');
export const isRetriesExhaustedError = (e: unknown): e is RetriesExhaustedError =>
  hasCode(e, 'RETRIES_EXHAUSTED');
export const isLoadShedError = (e: unknown): e is LoadShedError => hasCode(e, 'LOAD_SHED');
export const isInjectedFaultError = (e: unknown): e is InjectedFaultError =>
  hasCode(e, 'INJECTED_FAULT');
export const isInvalidOptionsError = (e: unknown): e is InvalidOptionsError =>
  hasCode(e, 'INVALID_OPTIONS');
