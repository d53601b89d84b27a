/**
 * From errors to envelope reasons, and from reasons to public texts. The envelope never carries an
 * upstream error's message (it may name internal hosts or paths): only the part's public name and
 * a fixed text per reason.
 */
import { BulwarkError, isBulwarkError } from '@bulwark/core';
import type { PartReason, PartStatus } from './types.js';

/**
 * Throw this from a `load` whose upstream answered with something unusable (schema mismatch): the
 * part fails with reason `invalid_response`. Not retryable: the same upstream will answer the same.
 */
export class InvalidResponseError extends BulwarkError {
  constructor(message = 'invalid response', options: { cause?: unknown } = {}) {
    super('INVALID_RESPONSE', message, { retryable: false, ...options });
  }
}

/** Codes of @bulwark/http's client that mean the answer itself was unusable. */
const INVALID_CODES = new Set([
  'INVALID_RESPONSE',
  'BAD_JSON',
  'BAD_CONTENT_ENCODING',
  'BODY_TOO_LARGE',
  'UNEXPECTED_STATUS',
]);

/**
 * The reason for a failed load. Core codes map one to one; `@bulwark/http` timeouts
 * (CONNECT/HEADERS/BODY_TIMEOUT) are `timeout`, unusable answers are `invalid_response`, a 429 is
 * `rate_limited`; anything else (including errors that are not Bulwark's) is `upstream_error`.
 * `RETRIES_EXHAUSTED` is judged by its last attempt.
 */
export function reasonOf(error: unknown): PartReason {
  for (let depth = 0; depth < 8 && isBulwarkError(error); depth++) {
    const code = error.code;
    switch (code) {
      case 'TIMEOUT':
      case 'CONNECT_TIMEOUT':
      case 'HEADERS_TIMEOUT':
      case 'BODY_TIMEOUT':
        return 'timeout';
      case 'DEADLINE_EXCEEDED':
        return 'deadline_exceeded';
      case 'CANCELLED':
        return 'cancelled';
      case 'CIRCUIT_OPEN':
        return 'circuit_open';
      case 'RATE_LIMITED':
        return 'rate_limited';
      case 'LOAD_SHED':
      case 'BULKHEAD_FULL':
        return 'load_shed';
      case 'RETRY_BUDGET_EXHAUSTED':
        return 'budget_exhausted';
      case 'RETRIES_EXHAUSTED':
        error = (error as { cause?: unknown }).cause;
        continue;
      case 'UPSTREAM_4XX':
        return (error as { status?: unknown }).status === 429 ? 'rate_limited' : 'upstream_error';
      default:
        return INVALID_CODES.has(code) ? 'invalid_response' : 'upstream_error';
    }
  }
  return 'upstream_error';
}

/** `extensions.code` in the envelope: the reason in upper case (`CIRCUIT_OPEN`). */
export function codeOf(reason: PartReason): string {
  return reason.toUpperCase();
}

/** Whether asking again later may give a better answer. */
export function retryableReason(reason: PartReason): boolean {
  return reason !== 'invalid_response';
}

const CAUSES: Record<PartReason, string> = {
  timeout: 'upstream timed out',
  deadline_exceeded: 'request deadline exceeded',
  circuit_open: 'circuit open',
  upstream_error: 'upstream failed',
  rate_limited: 'rate limited',
  load_shed: 'shed under load',
  budget_exhausted: 'retry budget exhausted',
  invalid_response: 'invalid upstream response',
  dependency_failed: 'a part it depends on is unavailable',
  cancelled: 'cancelled',
};

/** The public message of a part that is not `ok`, for example "orders served from cache: circuit open". */
export function publicMessage(part: string, status: PartStatus, reason: PartReason): string {
  const cause = CAUSES[reason];
  switch (status) {
    case 'stale':
      return `${part} served from cache: ${cause}`;
    case 'fallback':
      return `${part} replaced by a fallback: ${cause}`;
    case 'omitted':
      return `${part} omitted: ${cause}`;
    default:
      return `${part} failed: ${cause}`;
  }
}
