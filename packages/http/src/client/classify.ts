/**
 * Turning what went wrong into the error taxonomy: transport errors from undici and Node's net
 * stack, unwanted statuses, and the `Retry-After` hint. Pure functions, so every mapping is tested
 * without a socket.
 */
import { HttpDependencyError, type HttpCallInfo, type HttpErrorCode } from './errors.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns milliseconds
 * (>= 0), or undefined when absent or malformed. A date in the past means "now" (0).
 * `wallNowMs` is the wall clock (ms since the epoch), because an HTTP-date is wall time.
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined,
  wallNowMs: number,
): number | undefined {
  const raw = typeof value === 'string' ? value : value?.[0];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  }
  // Only accept something that looks like a date, so "1.5" or "soon" are not parsed leniently.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - wallNowMs);
}

interface ErrorLike {
  code?: unknown;
  cause?: unknown;
  message?: unknown;
}

/** The first Node/undici error code found on the error or down its `cause` chain. */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as ErrorLike).code;
    if (typeof code === 'string') codes.push(code);
    // AggregateError (happy eyeballs tried several addresses): look at the first.
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      current = errors[0];
      continue;
    }
    current = (current as ErrorLike).cause;
  }
  return codes;
}

interface Mapping {
  code: HttpErrorCode;
  retryable: boolean;
  detail: string;
}

const TRANSPORT: Record<string, Mapping> = {
  ECONNREFUSED: { code: 'CONNECTION_REFUSED', retryable: true, detail: 'connection refused' },
  ECONNRESET: { code: 'CONNECTION_RESET', retryable: true, detail: 'connection reset' },
  EPIPE: { code: 'CONNECTION_RESET', retryable: true, detail: 'connection closed while writing' },
  UND_ERR_SOCKET: { code: 'CONNECTION_RESET', retryable: true, detail: 'connection closed' },
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: {
    code: 'CONNECTION_RESET',
    retryable: true,
    detail: 'response body shorter than its content-length',
  },
  ENOTFOUND: {
    // The name does not exist: a configuration mistake more often than a blip.
    code: 'DNS_FAILED',
    retryable: false,
    detail: 'host name not found (DNS)',
  },
  EAI_AGAIN: { code: 'DNS_FAILED', retryable: true, detail: 'DNS lookup failed temporarily' },
  EHOSTUNREACH: { code: 'CONNECTION_FAILED', retryable: true, detail: 'host unreachable' },
  ENETUNREACH: { code: 'CONNECTION_FAILED', retryable: true, detail: 'network unreachable' },
  ETIMEDOUT: { code: 'CONNECT_TIMEOUT', retryable: true, detail: 'connect timed out (OS)' },
  UND_ERR_CONNECT_TIMEOUT: {
    code: 'CONNECT_TIMEOUT',
    retryable: true,
    detail: 'connect timed out',
  },
  UND_ERR_HEADERS_TIMEOUT: {
    code: 'HEADERS_TIMEOUT',
    retryable: true,
    detail: 'no response headers in time (first byte timeout)',
  },
  UND_ERR_BODY_TIMEOUT: {
    code: 'BODY_TIMEOUT',
    retryable: true,
    detail: 'response body stalled (body timeout)',
  },
  UND_ERR_CLOSED: { code: 'DEPENDENCY_CLOSED', retryable: false, detail: 'client is closed' },
  UND_ERR_DESTROYED: { code: 'DEPENDENCY_CLOSED', retryable: false, detail: 'client is closed' },
  UND_ERR_INVALID_ARG: { code: 'REQUEST_FAILED', retryable: false, detail: 'invalid request' },
  UND_ERR_HEADERS_OVERFLOW: {
    code: 'REQUEST_FAILED',
    retryable: false,
    detail: 'response headers too large',
  },
};

/**
 * Maps a transport-level failure (no usable response) to an `HttpDependencyError`.
 * `mayRetry` is false for non-idempotent requests: see {@link finalRetryable}.
 */
export function classifyTransportError(
  error: unknown,
  info: HttpCallInfo,
  mayRetry: boolean,
): HttpDependencyError {
  let mapping: Mapping | undefined;
  let found: string | undefined;
  for (const code of codesOf(error)) {
    mapping = TRANSPORT[code];
    if (mapping !== undefined) {
      found = code;
      break;
    }
  }
  const message =
    typeof (error as ErrorLike | null)?.message === 'string'
      ? String((error as ErrorLike).message)
      : String(error);
  const m = mapping ?? { code: 'REQUEST_FAILED', retryable: true, detail: 'request failed' };
  return new HttpDependencyError(
    m.code,
    info,
    `failed: ${m.detail}${found === undefined ? `: ${message}` : ` (${found})`}`,
    { cause: error, retryable: finalRetryable(m.retryable, mayRetry) },
  );
}

/**
 * The retryable flag actually set on the error. A request that is not idempotent (POST or PATCH
 * without an Idempotency-Key) gets `retryable: false` on EVERY error, even a refused connection
 * or a 503: the core `retry` policy retries exactly the errors whose `retryable` is not false, so
 * this is what keeps the default pipeline from ever sending a write twice. We cannot tell from the
 * client side whether the server acted on a request that failed mid-way (a reset after the body
 * was written, a timeout waiting for headers), and a duplicated payment costs more than a failed
 * one. Send an Idempotency-Key to make such requests retryable.
 */
export function finalRetryable(retryable: boolean, mayRetry: boolean): boolean {
  return retryable && mayRetry;
}

/** Statuses worth retrying: the server says it did not (or could not) act on the request. */
function retryableStatus(status: number): boolean {
  if (status >= 500) return status !== 501 && status !== 505;
  return status === 408 || status === 425 || status === 429;
}

/**
 * The error for a status the caller did not accept. `retryAfterMs` is read from `Retry-After` on
 * 429 and 503 (the statuses RFC 9110 defines it for) so core's retry waits at least that long.
 */
export function statusError(
  status: number,
  headers: Headers,
  info: HttpCallInfo,
  mayRetry: boolean,
  wallNowMs: number,
  bodyExcerpt: string | undefined,
): HttpDependencyError {
  const code: HttpErrorCode =
    status >= 500 && status <= 599
      ? 'UPSTREAM_5XX'
      : status >= 400 && status <= 499
        ? 'UPSTREAM_4XX'
        : 'UNEXPECTED_STATUS';
  const retryAfterMs =
    status === 429 || status === 503
      ? parseRetryAfter(headers['retry-after'], wallNowMs)
      : undefined;
  const retryable = code !== 'UNEXPECTED_STATUS' && retryableStatus(status);
  return new HttpDependencyError(code, info, `answered ${status}`, {
    retryable: finalRetryable(retryable, mayRetry),
    retryAfterMs,
    status,
    headers,
    bodyExcerpt,
  });
}

/**
 * True when a 504 answer is a Bulwark problem saying `DEADLINE_EXCEEDED` (or of the
 * deadline-exceeded type). Read from the body excerpt with a pattern rather than a JSON parse, so
 * a problem cut at the excerpt limit still counts.
 */
export function reportsDeadlineExceeded(
  status: number,
  headers: Headers,
  bodyExcerpt: string | undefined,
): boolean {
  if (status !== 504 || bodyExcerpt === undefined) return false;
  const type = headers['content-type'];
  const contentType = typeof type === 'string' ? type : type?.[0];
  if (contentType === undefined || !contentType.toLowerCase().includes('json')) return false;
  return (
    /"code"\s*:\s*"DEADLINE_EXCEEDED"/.test(bodyExcerpt) ||
    /"type"\s*:\s*"urn:bulwark:problem:deadline-exceeded"/.test(bodyExcerpt)
  );
}
