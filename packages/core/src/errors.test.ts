import { describe, expect, it } from 'vitest';
import {
  BulwarkError,
  CircuitOpenError,
  hasCode,
  InjectedFaultError,
  InvalidOptionsError,
  isBulwarkError,
  isCircuitOpenError,
  isInjectedFaultError,
  isInvalidOptionsError,
  isRetryable,
  RetriesExhaustedError,
  retryAfterMsOf,
  TimeoutError,
} from './errors.js';

describe('error taxonomy', () => {
  it('carries code, retryable, cause and a readable name', () => {
    const cause = new Error('socket hang up');
    const error = new TimeoutError(250, { cause });
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('TimeoutError');
    expect(error.message).toBe('operation timed out after 250 ms');
  });

  it('keeps every attempt of an exhausted retry, the last one as cause', () => {
    const attempts = [new Error('a'), new Error('b')];
    const error = new RetriesExhaustedError(attempts);
    expect(error.attempts).toEqual(attempts);
    expect(error.cause).toBe(attempts[1]);
    expect(error.retryable).toBe(false);
  });

  it('guards work across duplicate installs (brand, not instanceof)', () => {
    // What a second copy of the package would create: same brand, different class.
    const foreign = Object.assign(new Error('open'), {
      [Symbol.for('bulwark.error')]: true,
      code: 'CIRCUIT_OPEN',
      retryable: true,
    });
    expect(foreign instanceof BulwarkError).toBe(false);
    expect(isBulwarkError(foreign)).toBe(true);
    expect(isCircuitOpenError(foreign)).toBe(true);
    expect(hasCode(new CircuitOpenError('users', 10), 'CIRCUIT_OPEN')).toBe(true);
    expect(isBulwarkError(new Error('plain'))).toBe(false);
    expect(isBulwarkError(null)).toBe(false);
    expect(isBulwarkError('TIMEOUT')).toBe(false);
  });

  it('reads retryable and retry-after hints from any error', () => {
    expect(isRetryable({ retryable: false })).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(true);
    expect(isRetryable(new Error('x'), false)).toBe(false);
    expect(retryAfterMsOf(new CircuitOpenError('users', 1500))).toBe(1500);
    expect(retryAfterMsOf({ retryAfterMs: -1 })).toBeUndefined();
    expect(retryAfterMsOf({ retryAfterMs: Number.POSITIVE_INFINITY })).toBeUndefined();
  });

  it('has guards for injected faults and invalid options', () => {
    expect(isInjectedFaultError(new InjectedFaultError())).toBe(true);
    expect(isInjectedFaultError(new InvalidOptionsError('x: bad'))).toBe(false);
    expect(isInvalidOptionsError(new InvalidOptionsError('x: bad'))).toBe(true);
    expect(isInvalidOptionsError(new Error('INVALID_OPTIONS'))).toBe(false);
    // Brand-based, like the others: a copy from another install still matches.
    const foreign = Object.assign(new Error('fault'), {
      [Symbol.for('bulwark.error')]: true,
      code: 'INJECTED_FAULT',
    });
    expect(isInjectedFaultError(foreign)).toBe(true);
  });
});
