import { isBulwarkError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';
import { SqlError, isSqlError, translateSqlError } from './errors.js';

function serverError(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`server said ${code}`), { code, ...extra });
}

describe('translateSqlError', () => {
  it.each([
    ['23505', 'DB_UNIQUE_VIOLATION', false],
    ['23503', 'DB_FOREIGN_KEY_VIOLATION', false],
    ['23P01', 'DB_CONSTRAINT_VIOLATION', false],
    ['22P02', 'DB_INVALID_INPUT', false],
    ['42P01', 'DB_SQL_ERROR', false],
    ['40001', 'DB_SERIALIZATION_FAILURE', true],
    ['40P01', 'DB_DEADLOCK', true],
    ['55P03', 'DB_LOCK_NOT_AVAILABLE', true],
    ['57014', 'DB_QUERY_CANCELLED', true],
    ['57P01', 'DB_UNAVAILABLE', true],
    ['08006', 'DB_UNAVAILABLE', true],
    ['08P01', 'DB_SQL_ERROR', false],
    ['53300', 'DB_UNAVAILABLE', true],
    ['25P02', 'DB_TRANSACTION_ABORTED', false],
    ['XX000', 'DB_QUERY_FAILED', false],
  ])('SQLSTATE %s -> %s (retryable %s)', (state, code, retryable) => {
    const cause = serverError(state, { constraint: 'c', table: 't', detail: 'Key (id)=(1)' });
    const error = translateSqlError(cause);
    expect(error).toBeInstanceOf(SqlError);
    expect(isBulwarkError(error) && isSqlError(error)).toBe(true);
    expect(error).toMatchObject({ code, retryable, sqlState: state, constraint: 'c', table: 't' });
    expect(error.cause).toBe(cause);
  });

  it('network failures, also nested in an AggregateError, are DB_UNAVAILABLE', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(translateSqlError(refused)).toMatchObject({ code: 'DB_UNAVAILABLE', retryable: true });
    const aggregate = new AggregateError([refused, refused], '');
    expect(translateSqlError(aggregate)).toMatchObject({ code: 'DB_UNAVAILABLE' });
    expect(translateSqlError(new Error('Connection terminated unexpectedly'))).toMatchObject({
      code: 'DB_UNAVAILABLE',
    });
  });

  it('passes SqlErrors through and wraps anything else', () => {
    const mine = new SqlError('DB_CLOSED', 'closed');
    expect(translateSqlError(mine)).toBe(mine);
    expect(translateSqlError('boom')).toMatchObject({ code: 'DB_QUERY_FAILED', retryable: false });
    expect(translateSqlError(new Error('odd'))).toMatchObject({ code: 'DB_QUERY_FAILED' });
  });
});
