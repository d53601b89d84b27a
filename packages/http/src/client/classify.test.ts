import { describe, expect, it } from 'vitest';
import { classifyTransportError, parseRetryAfter, statusError } from './classify.js';
import { isDependencyFailure, isHttpDependencyError } from './errors.js';
import { isIdempotentMethod, mayRepeat } from './idempotency.js';

const info = { dependency: 'users', method: 'GET', path: '/users/42', attempt: 1 };
const err = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`boom ${code}`), { code, ...extra });

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 2 ', now)).toBe(2000);
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
  });
  it('reads an HTTP-date relative to the wall clock, never negative', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });
  it('ignores absent and malformed values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('classifyTransportError', () => {
  it.each([
    ['ECONNREFUSED', 'CONNECTION_REFUSED', true],
    ['ECONNRESET', 'CONNECTION_RESET', true],
    ['EPIPE', 'CONNECTION_RESET', true],
    ['UND_ERR_SOCKET', 'CONNECTION_RESET', true],
    ['ENOTFOUND', 'DNS_FAILED', false],
    ['EAI_AGAIN', 'DNS_FAILED', true],
    ['EHOSTUNREACH', 'CONNECTION_FAILED', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'CONNECT_TIMEOUT', true],
    ['UND_ERR_HEADERS_TIMEOUT', 'HEADERS_TIMEOUT', true],
    ['UND_ERR_BODY_TIMEOUT', 'BODY_TIMEOUT', true],
    ['UND_ERR_CLOSED', 'DEPENDENCY_CLOSED', false],
    ['UND_ERR_INVALID_ARG', 'REQUEST_FAILED', false],
    ['SOMETHING_ELSE', 'REQUEST_FAILED', true],
  ])('%s → %s (retryable %s when idempotent)', (code, expected, retryable) => {
    const cause = err(code);
    const error = classifyTransportError(cause, info, true);
    expect(isHttpDependencyError(error)).toBe(true);
    expect(error.code).toBe(expected);
    expect(error.retryable).toBe(retryable);
    expect(error.cause).toBe(cause);
    expect(error.dependency).toBe('users');
    expect(error.message).toMatch(/^users: GET \/users\/42 failed: /);
  });

  it('finds the code down the cause chain and in AggregateError', () => {
    const wrapped = Object.assign(new Error('fetch failed'), { cause: err('ECONNRESET') });
    expect(classifyTransportError(wrapped, info, true).code).toBe('CONNECTION_RESET');
    const aggregate = new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')], 'x');
    expect(classifyTransportError(aggregate, info, true).code).toBe('CONNECTION_REFUSED');
    expect(classifyTransportError('weird', info, true).code).toBe('REQUEST_FAILED');
  });

  it('marks every error of a non-repeatable request not retryable', () => {
    expect(classifyTransportError(err('ECONNREFUSED'), info, false).retryable).toBe(false);
    expect(classifyTransportError(err('UND_ERR_HEADERS_TIMEOUT'), info, false).retryable).toBe(
      false,
    );
  });
});

describe('statusError', () => {
  const now = 0;
  it.each([
    [500, 'UPSTREAM_5XX', true],
    [502, 'UPSTREAM_5XX', true],
    [503, 'UPSTREAM_5XX', true],
    [504, 'UPSTREAM_5XX', true],
    [501, 'UPSTREAM_5XX', false],
    [505, 'UPSTREAM_5XX', false],
    [400, 'UPSTREAM_4XX', false],
    [404, 'UPSTREAM_4XX', false],
    [408, 'UPSTREAM_4XX', true],
    [425, 'UPSTREAM_4XX', true],
    [429, 'UPSTREAM_4XX', true],
    [302, 'UNEXPECTED_STATUS', false],
    [200, 'UNEXPECTED_STATUS', false],
  ])('%i → %s (retryable %s)', (status, code, retryable) => {
    const error = statusError(status, {}, info, true, now, undefined);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.status).toBe(status);
    expect(error.message).toBe(`users: GET /users/42 answered ${status}`);
  });

  it('reads Retry-After on 429 and 503 only', () => {
    expect(statusError(429, { 'retry-after': '2' }, info, true, now, undefined).retryAfterMs).toBe(
      2000,
    );
    expect(statusError(503, { 'retry-after': '1' }, info, true, now, undefined).retryAfterMs).toBe(
      1000,
    );
    expect(
      statusError(500, { 'retry-after': '1' }, info, true, now, undefined).retryAfterMs,
    ).toBeUndefined();
  });

  it('keeps the body excerpt and is never retryable for a non-repeatable request', () => {
    const error = statusError(503, {}, info, false, now, '{"title":"down"}');
    expect(error.retryable).toBe(false);
    expect(error.bodyExcerpt).toBe('{"title":"down"}');
  });
});

describe('isDependencyFailure', () => {
  it('counts transport errors, timeouts, 5xx, 408 and 429, and foreign errors', () => {
    expect(isDependencyFailure(classifyTransportError(err('ECONNRESET'), info, true))).toBe(true);
    expect(isDependencyFailure(statusError(503, {}, info, true, 0, undefined))).toBe(true);
    expect(isDependencyFailure(statusError(429, {}, info, true, 0, undefined))).toBe(true);
    expect(isDependencyFailure(new Error('x'))).toBe(true);
  });
  it('does not count answers from a working dependency', () => {
    expect(isDependencyFailure(statusError(404, {}, info, true, 0, undefined))).toBe(false);
    expect(isDependencyFailure(statusError(302, {}, info, true, 0, undefined))).toBe(false);
  });
});

describe('idempotency', () => {
  it('knows the idempotent methods', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) {
      expect(isIdempotentMethod(m)).toBe(true);
      expect(mayRepeat(m, undefined)).toBe(true);
    }
    expect(isIdempotentMethod('POST')).toBe(false);
  });
  it('lets POST and PATCH repeat only with a non-empty key', () => {
    expect(mayRepeat('POST', undefined)).toBe(false);
    expect(mayRepeat('PATCH', '')).toBe(false);
    expect(mayRepeat('POST', 'k-1')).toBe(true);
    expect(mayRepeat('PATCH', 'k-1')).toBe(true);
  });
});
