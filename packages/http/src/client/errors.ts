/**
 * The client's errors. Every failure of a call to a dependency is a `BulwarkError` that names the
 * dependency, the method and the path (never the query string, which often carries tokens), with a
 * stable `code` from {@link HttpErrorCode} and a `retryable` flag the core `retry` policy reads.
 */
import { BulwarkError, DeadlineExceededError, isBulwarkError } from '@bulwark/core';

/**
 * Stable codes of {@link HttpDependencyError}. The README has the full table (cause, retryable).
 */
export type HttpErrorCode =
  | 'CONNECTION_REFUSED'
  | 'CONNECTION_RESET'
  | 'CONNECTION_FAILED'
  | 'DNS_FAILED'
  | 'CONNECT_TIMEOUT'
  | 'HEADERS_TIMEOUT'
  | 'BODY_TIMEOUT'
  | 'UPSTREAM_5XX'
  | 'UPSTREAM_4XX'
  | 'UNEXPECTED_STATUS'
  | 'BAD_JSON'
  | 'BAD_CONTENT_ENCODING'
  | 'BODY_TOO_LARGE'
  | 'DEPENDENCY_CLOSED'
  | 'REQUEST_FAILED';

export const HTTP_ERROR_CODES: readonly HttpErrorCode[] = [
  'CONNECTION_REFUSED',
  'CONNECTION_RESET',
  'CONNECTION_FAILED',
  'DNS_FAILED',
  'CONNECT_TIMEOUT',
  'HEADERS_TIMEOUT',
  'BODY_TIMEOUT',
  'UPSTREAM_5XX',
  'UPSTREAM_4XX',
  'UNEXPECTED_STATUS',
  'BAD_JSON',
  'BAD_CONTENT_ENCODING',
  'BODY_TOO_LARGE',
  'DEPENDENCY_CLOSED',
  'REQUEST_FAILED',
];

/** Where a failed call was going. `path` never includes the query string. */
export interface HttpCallInfo {
  readonly dependency: string;
  readonly method: string;
  readonly path: string;
  /** The attempt that failed: 1 for the first. */
  readonly attempt: number;
}

export interface HttpDependencyErrorOptions {
  cause?: unknown;
  retryable: boolean;
  retryAfterMs?: number | undefined;
  /** The response status, when the dependency answered. */
  status?: number | undefined;
  /** Response headers, when the dependency answered. */
  headers?: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** The start of the response body (decoded text, at most ~1 KiB), when there was one. */
  bodyExcerpt?: string | undefined;
}

/** A call to a named HTTP dependency failed. */
export class HttpDependencyError extends BulwarkError {
  declare readonly code: HttpErrorCode;
  readonly dependency: string;
  readonly method: string;
  /** The request path without its query string. */
  readonly path: string;
  readonly attempt: number;
  readonly status: number | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>> | undefined;
  readonly bodyExcerpt: string | undefined;

  constructor(
    code: HttpErrorCode,
    info: HttpCallInfo,
    detail: string,
    options: HttpDependencyErrorOptions,
  ) {
    super(code, `${info.dependency}: ${info.method} ${info.path} ${detail}`, {
      retryable: options.retryable,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.retryAfterMs === undefined ? {} : { retryAfterMs: options.retryAfterMs }),
    });
    this.dependency = info.dependency;
    this.method = info.method;
    this.path = info.path;
    this.attempt = info.attempt;
    this.status = options.status;
    this.headers = options.headers;
    this.bodyExcerpt = options.bodyExcerpt;
  }
}

/**
 * The call's deadline ran out. Either it left too little time to send the request
 * (`downstream: false`: nothing was sent), or the dependency answered 504 with a Bulwark problem
 * whose code is `DEADLINE_EXCEEDED` for the budget we sent it (`downstream: true`): deadlines only
 * shrink downstream, so the callee ran out of *our* time, as gRPC propagates DEADLINE_EXCEEDED.
 * It is a `DeadlineExceededError` (code `DEADLINE_EXCEEDED`, not retryable) that also names the
 * dependency, so a service answers its own caller 504 whichever side's timer fired first.
 */
export class HttpDeadlineExceededError extends DeadlineExceededError {
  readonly dependency: string;
  readonly method: string;
  readonly path: string;
  /** The attempt that ran out: 1 for the first. */
  readonly attempt: number;
  /** Milliseconds the deadline had left when the request was refused or the 504 came back. */
  readonly remainingMs: number;
  /** True when the dependency reported the deadline exceeded (the request was sent). */
  readonly downstream: boolean;

  constructor(
    info: HttpCallInfo,
    remainingMs: number,
    minBudgetMs: number,
    options: { downstream?: boolean } = {},
  ) {
    const downstream = options.downstream === true;
    const left = Math.max(0, Math.floor(remainingMs));
    super(
      downstream
        ? `${info.dependency}: ${info.method} ${info.path} answered 504: the deadline we sent ran out downstream (${left} ms left here)`
        : `${info.dependency}: ${info.method} ${info.path} not sent: the deadline has ${left} ms left, ` +
            `less than minBudgetMs (${minBudgetMs} ms)`,
    );
    this.dependency = info.dependency;
    this.method = info.method;
    this.path = info.path;
    this.attempt = info.attempt;
    this.remainingMs = remainingMs;
    this.downstream = downstream;
  }
}

const CODES = new Set<string>(HTTP_ERROR_CODES);

/** True for errors raised by an HTTP dependency (by brand and code, not `instanceof`). */
export function isHttpDependencyError(error: unknown): error is HttpDependencyError {
  return (
    isBulwarkError(error) &&
    CODES.has(error.code) &&
    typeof (error as { dependency?: unknown }).dependency === 'string'
  );
}

/**
 * Whether an error means the dependency is unhealthy, for a circuit breaker's `isFailure`. Client
 * errors (4xx other than 408 and 429), bad JSON and oversized bodies are answers from a working
 * dependency, so they do not count; transport failures, timeouts and 5xx do. Errors from outside
 * the client (deadline, cancellation) count as failures, as the breaker's default does.
 */
export function isDependencyFailure(error: unknown): boolean {
  if (!isHttpDependencyError(error)) return true;
  switch (error.code) {
    case 'UPSTREAM_4XX':
      return error.status === 408 || error.status === 429;
    case 'UNEXPECTED_STATUS':
    case 'BAD_JSON':
    case 'BODY_TOO_LARGE':
    case 'DEPENDENCY_CLOSED':
      return false;
    default:
      return true;
  }
}
