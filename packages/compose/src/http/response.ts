/**
 * From a run's result to an HTTP answer (DESIGN.md "Partial responses"):
 * - 200 with the envelope when every critical part has a value, `Cache-Control: no-store` when
 *   degraded (a degraded aggregate must never be cached);
 * - 504 problem when a critical part ran out of time (its slice or the request deadline);
 * - 503 problem with `Retry-After` when a critical part failed otherwise, or strict handling
 *   refused a degraded answer.
 * Problems are `application/problem+json` (RFC 9457) with the stable `urn:bulwark:problem:*` types
 * of `@bulwark/http`, and list the parts that failed by their public names only.
 */
import { PROBLEM_CONTENT_TYPE, ProblemTypes, retryAfterSeconds } from '@bulwark/http/fastify';
import { envelopeJson, toEnvelope, type Envelope } from '../compose/envelope.js';
import { codeOf, retryableReason } from '../compose/reasons.js';
import type { CompositionResult, PartReason } from '../compose/types.js';

/** Sent when strict handling refused a degraded answer. */
export const DEGRADED_PROBLEM_TYPE = 'urn:bulwark:problem:degraded';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The problem document of a failed run. */
export interface CompositionProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  retryable: boolean;
  /** The request path, when given. */
  instance?: string;
  requestId?: string;
  /** Public names of the critical parts that failed (absent for strict refusals). */
  failedParts?: string[];
  /** Public names of the parts that degraded (strict refusals only). */
  degradedParts?: string[];
  [extension: string]: unknown;
}

export interface CompositionHttpResponse {
  statusCode: number;
  /** Lower-case names; always includes `content-type`. */
  headers: Record<string, string>;
  body: Envelope | CompositionProblem;
}

export interface ToHttpResponseOptions {
  /** The request path (without query string), for the problem's `instance`. */
  instance?: string;
  /** Add a `Server-Timing` header with each part's latency. Default false. */
  serverTiming?: boolean;
  /** `Retry-After` for a 503 whose failure gave no hint, in ms. Default 1000. */
  defaultRetryAfterMs?: number;
}

const DEFAULT_RETRY_AFTER_MS = 1_000;

export function toHttpResponse(
  result: CompositionResult<object>,
  options: ToHttpResponseOptions = {},
): CompositionHttpResponse {
  const headers: Record<string, string> = {};
  if (result.strict) headers['preference-applied'] = 'handling=strict';
  if (options.serverTiming === true) headers['server-timing'] = serverTiming(result);
  if (result.ok) {
    headers['content-type'] = JSON_CONTENT_TYPE;
    if (result.status === 'degraded') headers['cache-control'] = 'no-store';
    return { statusCode: 200, headers, body: toEnvelope(result) };
  }
  headers['content-type'] = PROBLEM_CONTENT_TYPE;
  headers['cache-control'] = 'no-store';
  const failure = result.failure;
  const outcomes = result.parts as Record<string, { reason?: PartReason } | undefined>;
  const reasons = failure.parts.map(name => outcomes[name]?.reason ?? 'upstream_error');
  const first: PartReason = reasons[0] ?? 'cancelled';
  const retryable = reasons.every(retryableReason);
  let problem: CompositionProblem;
  switch (failure.kind) {
    case 'deadline':
      problem = {
        type: ProblemTypes.deadlineExceeded,
        title: 'Deadline Exceeded',
        status: 504,
        detail: 'A part this response needs did not answer within the time budget.',
        code: codeOf(first),
        retryable,
        failedParts: [...failure.parts],
      };
      break;
    case 'unavailable':
      problem = {
        type: first === 'load_shed' ? ProblemTypes.overloaded : ProblemTypes.dependencyUnavailable,
        title: first === 'load_shed' ? 'Service Overloaded' : 'Dependency Unavailable',
        status: 503,
        detail: 'A part this response needs is unavailable; try again later.',
        code: codeOf(first),
        retryable,
        failedParts: [...failure.parts],
      };
      break;
    case 'degraded':
      problem = {
        type: DEGRADED_PROBLEM_TYPE,
        title: 'Degraded Response Refused',
        status: 503,
        detail:
          'Strict handling was requested and part of the response could only be served degraded.',
        code: 'DEGRADED',
        retryable,
        degradedParts: [...failure.parts],
      };
      break;
    case 'cancelled':
      problem = {
        type: ProblemTypes.cancelled,
        title: 'Request Cancelled',
        status: 503,
        detail: 'The work for this request was cancelled.',
        code: 'CANCELLED',
        retryable: true,
      };
      break;
  }
  if (options.instance !== undefined) problem.instance = options.instance;
  if (result.requestId !== undefined) problem.requestId = result.requestId;
  if (problem.status === 503) {
    const retryAfterMs =
      failure.retryAfterMs ?? options.defaultRetryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    headers['retry-after'] = retryAfterSeconds(retryAfterMs);
  }
  return { statusCode: problem.status, headers, body: problem };
}

/**
 * The response body as JSON text: the envelope through {@link envelopeJson} (a part value that is
 * `RawJson` goes in as it is), a problem through `JSON.stringify`. Send it with the response's
 * `content-type`; a framework then writes it as it is.
 */
export function bodyJson(response: CompositionHttpResponse): string {
  return response.statusCode === 200
    ? envelopeJson(response.body as Envelope)
    : JSON.stringify(response.body);
}

/** `Server-Timing: user;dur=38.2, orders;dur=12;desc="stale"`. Part names are already tokens. */
function serverTiming(result: CompositionResult<object>): string {
  const entries: string[] = [];
  for (const [name, outcome] of Object.entries(
    result.parts as Record<string, { status: string; latencyMs: number }>,
  )) {
    const dur = Math.round(outcome.latencyMs * 10) / 10;
    entries.push(
      outcome.status === 'ok'
        ? `${name};dur=${dur}`
        : `${name};dur=${dur};desc="${outcome.status}"`,
    );
  }
  return entries.join(', ');
}
