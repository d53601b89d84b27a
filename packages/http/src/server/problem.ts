/**
 * Every error leaves as `application/problem+json` (RFC 9457) with a stable URN `type`, a
 * `code`, the `requestId` and whether retrying can help. Only texts written for clients reach
 * the body: messages of unknown errors, stack traces, causes and dependency URLs stay in the log.
 */
import { isBulwarkError, retryAfterMsOf } from '@bulwark/core';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem types this package sends. Stable: clients may switch on them. */
export const ProblemTypes = {
  validation: 'urn:bulwark:problem:validation',
  badRequest: 'urn:bulwark:problem:bad-request',
  malformedBody: 'urn:bulwark:problem:malformed-body',
  notFound: 'urn:bulwark:problem:not-found',
  payloadTooLarge: 'urn:bulwark:problem:payload-too-large',
  unsupportedMediaType: 'urn:bulwark:problem:unsupported-media-type',
  overloaded: 'urn:bulwark:problem:overloaded',
  rateLimited: 'urn:bulwark:problem:rate-limited',
  dependencyUnavailable: 'urn:bulwark:problem:dependency-unavailable',
  upstreamFailed: 'urn:bulwark:problem:upstream-failed',
  upstreamTimeout: 'urn:bulwark:problem:upstream-timeout',
  deadlineExceeded: 'urn:bulwark:problem:deadline-exceeded',
  cancelled: 'urn:bulwark:problem:cancelled',
  shuttingDown: 'urn:bulwark:problem:shutting-down',
  internal: 'urn:bulwark:problem:internal',
} as const;

/** One failing input field of a validation problem. */
export interface ProblemFieldError {
  /** JSON pointer into the part named by `in` (`/items/0/qty`); `''` for the whole part. */
  field: string;
  /** Where the field is: `body`, `querystring`, `params` or `headers`. */
  in?: string;
  message: string;
}

/** The problem document (RFC 9457) with Bulwark's extension members. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The request path without its query string. */
  instance: string;
  code: string;
  requestId: string;
  retryable: boolean;
  errors?: ProblemFieldError[];
  [extension: string]: unknown;
}

/** What to send: status, extra headers (`Retry-After`) and the body. */
export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: ProblemDetails;
}

export interface ProblemErrorOptions {
  /** HTTP status, 400–599. */
  status: number;
  /** A stable URI (URN or URL) naming the problem. Default: by status (`urn:bulwark:problem:...`). */
  type?: string;
  /** Short, human-readable summary that does not change between occurrences. Default: by status. */
  title?: string;
  /** Explanation of this occurrence, safe to show to the client. Default: the title. */
  detail?: string;
  /** Stable machine-readable code. Default `HTTP_<status>`. */
  code?: string;
  /** Default: true for 429, 502, 503 and 504. */
  retryable?: boolean;
  /** Sent as `Retry-After` (whole seconds, rounded up). */
  retryAfterMs?: number;
  /** Extra members of the problem document (must not override the standard ones). */
  extensions?: Record<string, unknown>;
  cause?: unknown;
}

/** Throw this from a handler to answer with a problem of your own; its texts reach the client. */
export class ProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(options: ProblemErrorOptions) {
    const status = options.status;
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new TypeError(`ProblemError: status must be an integer 400–599, got ${String(status)}`);
    }
    const title = options.title ?? titleOf(status);
    super(
      options.detail ?? title,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.status = status;
    this.type = options.type ?? typeOfStatus(status);
    this.title = title;
    this.detail = options.detail ?? title;
    this.code = options.code ?? `HTTP_${status}`;
    this.retryable = options.retryable ?? RETRYABLE_STATUS.has(status);
    this.retryAfterMs = options.retryAfterMs;
    this.extensions = options.extensions ?? {};
  }

  override get name(): string {
    return 'ProblemError';
  }
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function titleOf(status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
}

function typeOfStatus(status: number): string {
  switch (status) {
    case 404:
      return ProblemTypes.notFound;
    case 413:
      return ProblemTypes.payloadTooLarge;
    case 415:
      return ProblemTypes.unsupportedMediaType;
    case 429:
      return ProblemTypes.rateLimited;
    case 502:
      return ProblemTypes.upstreamFailed;
    case 503:
      return ProblemTypes.overloaded;
    case 504:
      return ProblemTypes.deadlineExceeded;
    default:
      return status >= 500 ? ProblemTypes.internal : `urn:bulwark:problem:http-${status}`;
  }
}

/** The parts of a problem decided by the error alone (no request yet). */
interface Classified {
  status: number;
  type: string;
  title: string;
  detail: string;
  code: string;
  retryable: boolean;
  retryAfterMs?: number | undefined;
  errors?: ProblemFieldError[];
  extensions?: Record<string, unknown>;
}

/** Codes of the HTTP client's dependency failures that mean "no answer in time". */
const UPSTREAM_CODES = new Set([
  'CONNECTION_REFUSED',
  'CONNECTION_RESET',
  'CONNECTION_FAILED',
  'DNS_FAILED',
  'TLS_FAILED',
  'BAD_JSON',
  'BAD_RESPONSE',
  'BODY_TOO_LARGE',
  'SOCKET_CLOSED',
]);

function isUpstreamCode(code: string): boolean {
  return (
    UPSTREAM_CODES.has(code) ||
    code.startsWith('UPSTREAM_') ||
    code.startsWith('HTTP_') ||
    code.endsWith('_TIMEOUT')
  );
}

/** The default Retry-After for overload answers whose error carries no hint. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

function classifyBulwark(error: { code: string; retryable: boolean }, raw: unknown): Classified {
  const code = error.code;
  const retryAfterMs = retryAfterMsOf(raw);
  switch (code) {
    case 'CIRCUIT_OPEN':
      return {
        status: 503,
        type: ProblemTypes.dependencyUnavailable,
        title: 'Dependency Unavailable',
        detail:
          'A dependency this request needs is failing; the service is not calling it for now.',
        code,
        retryable: true,
        retryAfterMs: retryAfterMs ?? DEFAULT_RETRY_AFTER_MS,
      };
    case 'BULKHEAD_FULL':
    case 'LOAD_SHED':
      return {
        status: 503,
        type: ProblemTypes.overloaded,
        title: 'Service Overloaded',
        detail: 'The service is at capacity and shed this request; try again later.',
        code,
        retryable: true,
        retryAfterMs: retryAfterMs ?? DEFAULT_RETRY_AFTER_MS,
      };
    case 'RATE_LIMITED':
      return {
        status: 429,
        type: ProblemTypes.rateLimited,
        title: 'Too Many Requests',
        detail: 'A rate limit was reached; try again later.',
        code,
        retryable: true,
        retryAfterMs: retryAfterMs ?? DEFAULT_RETRY_AFTER_MS,
      };
    case 'TIMEOUT':
    case 'DEADLINE_EXCEEDED':
      return {
        status: 504,
        type: ProblemTypes.deadlineExceeded,
        title: 'Deadline Exceeded',
        detail: 'The request could not be completed within its time budget.',
        code,
        retryable: code === 'TIMEOUT',
      };
    case 'CANCELLED':
      return {
        status: 503,
        type: ProblemTypes.cancelled,
        title: 'Request Cancelled',
        detail: 'The work for this request was cancelled.',
        code,
        retryable: true,
      };
    case 'RETRIES_EXHAUSTED':
    case 'RETRY_BUDGET_EXHAUSTED': {
      // The useful answer is the last attempt's failure; the code says retrying already happened.
      const cause = (raw as { cause?: unknown }).cause;
      const inner = isBulwarkError(cause) ? classifyBulwark(cause, cause) : undefined;
      if (inner !== undefined && inner.status !== 500) return { ...inner, code, retryable: false };
      return {
        status: 502,
        type: ProblemTypes.upstreamFailed,
        title: 'Upstream Failed',
        detail: 'A dependency failed after every attempt.',
        code,
        retryable: false,
      };
    }
    default:
      if (isUpstreamCode(code)) {
        const timedOut = code.endsWith('_TIMEOUT');
        return {
          status: timedOut ? 504 : 502,
          type: timedOut ? ProblemTypes.upstreamTimeout : ProblemTypes.upstreamFailed,
          title: timedOut ? 'Upstream Timeout' : 'Upstream Failed',
          detail: timedOut
            ? 'A dependency did not answer in time.'
            : 'A dependency this request needs failed.',
          code,
          retryable: error.retryable,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        };
      }
      return internal(code);
  }
}

function internal(code = 'INTERNAL'): Classified {
  return {
    status: 500,
    type: ProblemTypes.internal,
    title: 'Internal Server Error',
    detail: 'An unexpected error occurred. Quote the requestId when reporting it.',
    code,
    retryable: false,
  };
}

interface FastifyValidationItem {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function fieldErrors(validation: FastifyValidationItem[], context: unknown): ProblemFieldError[] {
  return validation.map(item => {
    let field = item.instancePath ?? '';
    const params = item.params ?? {};
    // Ajv reports a missing property on its parent; point at the property itself.
    if (item.keyword === 'required' && typeof params.missingProperty === 'string') {
      field = `${field}/${escapePointer(params.missingProperty)}`;
    } else if (
      item.keyword === 'additionalProperties' &&
      typeof params.additionalProperty === 'string'
    ) {
      field = `${field}/${escapePointer(params.additionalProperty)}`;
    }
    return {
      field,
      ...(typeof context === 'string' ? { in: context } : {}),
      message: item.message ?? 'is invalid',
    };
  });
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function classifyFastify(error: {
  code?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  validationContext?: unknown;
  message?: unknown;
}): Classified | undefined {
  if (Array.isArray(error.validation)) {
    const errors = fieldErrors(
      error.validation as FastifyValidationItem[],
      error.validationContext,
    );
    return {
      status: 400,
      type: ProblemTypes.validation,
      title: 'Validation Failed',
      detail:
        errors.length === 1
          ? `The request is invalid: ${describe(errors[0] as ProblemFieldError)}.`
          : `The request is invalid in ${errors.length} places; see errors.`,
      code: 'VALIDATION_FAILED',
      retryable: false,
      errors,
    };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        type: ProblemTypes.payloadTooLarge,
        title: 'Content Too Large',
        detail: 'The request body is larger than this endpoint accepts.',
        code: 'PAYLOAD_TOO_LARGE',
        retryable: false,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        type: ProblemTypes.unsupportedMediaType,
        title: 'Unsupported Media Type',
        detail: 'The Content-Type of the request body is not supported by this endpoint.',
        code: 'UNSUPPORTED_MEDIA_TYPE',
        retryable: false,
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        status: 400,
        type: ProblemTypes.malformedBody,
        title: 'Malformed Request Body',
        detail:
          error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
            ? 'The request declares a JSON body but sent none.'
            : error.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'
              ? 'The Content-Length does not match the body sent.'
              : 'The request body is not valid JSON.',
        code: 'MALFORMED_BODY',
        retryable: false,
      };
  }
  // SyntaxError from JSON.parse in a custom parser carries statusCode 400 in Fastify.
  const status = error.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const fastifyOwn = typeof error.code === 'string' && error.code.startsWith('FST_');
    return {
      status,
      type:
        typeOfStatus(status) === `urn:bulwark:problem:http-${status}` && status === 400
          ? ProblemTypes.badRequest
          : typeOfStatus(status),
      title: titleOf(status),
      // Fastify's own 4xx texts and http-errors marked `expose` are written for clients.
      detail:
        (fastifyOwn || (error as { expose?: unknown }).expose === true) &&
        typeof error.message === 'string'
          ? error.message
          : titleOf(status),
      code: status === 404 ? 'NOT_FOUND' : status === 400 ? 'BAD_REQUEST' : `HTTP_${status}`,
      retryable: status === 429 || status === 408,
    };
  }
  return undefined;
}

function describe(error: ProblemFieldError): string {
  const where = error.in === undefined ? '' : `${error.in} `;
  return `${where}${error.field === '' ? '(root)' : error.field} ${error.message}`;
}

/** @internal The problem for an error, before request-specific members are added. */
export function classify(error: unknown): Classified {
  if (error instanceof ProblemError) {
    return {
      status: error.status,
      type: error.type,
      title: error.title,
      detail: error.detail,
      code: error.code,
      retryable: error.retryable,
      retryAfterMs: error.retryAfterMs,
      extensions: error.extensions,
    };
  }
  if (isBulwarkError(error)) return classifyBulwark(error, error);
  if (typeof error === 'object' && error !== null) {
    const fastify = classifyFastify(error);
    if (fastify !== undefined) return fastify;
  }
  return internal();
}

/** The path of the request without its query string. */
export function instanceOf(request: Pick<FastifyRequest, 'url'>): string {
  const url = request.url;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Maps any error to a problem response: `ProblemError` as given; Fastify validation errors to 400
 * with `errors`; Fastify body errors to 400/413/415; Bulwark errors by `code` (overload 503,
 * rate limit 429, deadline 504, dependency failures 502/504); anything else to a generic 500.
 */
export function toProblem(
  error: unknown,
  request: Pick<FastifyRequest, 'url' | 'id'>,
): ProblemResponse {
  const c = classify(error);
  const body: ProblemDetails = {
    ...(c.extensions ?? {}),
    type: c.type,
    title: c.title,
    status: c.status,
    detail: c.detail,
    instance: instanceOf(request),
    code: c.code,
    requestId: request.id,
    retryable: c.retryable,
    ...(c.errors === undefined ? {} : { errors: c.errors }),
  };
  const headers: Record<string, string> = {};
  if (c.retryAfterMs !== undefined) headers['retry-after'] = retryAfterSeconds(c.retryAfterMs);
  return { status: c.status, headers, body };
}

/** `Retry-After` in whole seconds, rounded up so a client never comes back too early. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(0, Math.ceil(ms / 1000)));
}

/** Sends a problem response on `reply`. */
export function sendProblem(reply: FastifyReply, problem: ProblemResponse): FastifyReply {
  return (
    reply
      .code(problem.status)
      .headers(problem.headers)
      .type(PROBLEM_CONTENT_TYPE)
      // Serialized here so a route's response schema never reshapes (or strips) the problem.
      .send(JSON.stringify(problem.body))
  );
}
