/**
 * Driver errors are translated here, at the boundary, into `SqlError`s with stable codes and a
 * `retryable` flag, so callers (and core's `retry`) never inspect pg or PGlite error shapes.
 * Both drivers report a server error's SQLSTATE as `code`; pg reports network failures as Node
 * system errors (`ECONNREFUSED`, ...) or as plain messages ("Connection terminated ...").
 */
import { BulwarkError, isBulwarkError } from '@bulwark/core';

export type SqlErrorCode =
  /** 23505: a unique or primary-key constraint. `constraint` names it. */
  | 'DB_UNIQUE_VIOLATION'
  /** 23503 */
  | 'DB_FOREIGN_KEY_VIOLATION'
  /** 23502 */
  | 'DB_NOT_NULL_VIOLATION'
  /** 23514 */
  | 'DB_CHECK_VIOLATION'
  /** Other class 23 (e.g. exclusion constraints). */
  | 'DB_CONSTRAINT_VIOLATION'
  /** Class 22: a value the column or function does not accept (bad cast, out of range). */
  | 'DB_INVALID_INPUT'
  /** Class 42 and other programming errors: syntax, unknown table or column, permissions. */
  | 'DB_SQL_ERROR'
  /** 40001, retryable: run the whole transaction again. */
  | 'DB_SERIALIZATION_FAILURE'
  /** 40P01, retryable: run the whole transaction again. */
  | 'DB_DEADLOCK'
  /** 55P03, retryable. */
  | 'DB_LOCK_NOT_AVAILABLE'
  /** 57014 (statement_timeout or a cancel request), retryable like a timeout. */
  | 'DB_QUERY_CANCELLED'
  /** 25P02: a statement ran in a transaction that had already failed. */
  | 'DB_TRANSACTION_ABORTED'
  /** Cannot reach or lost the server: refused, reset, timed out, shutting down, too many connections. Retryable. */
  | 'DB_UNAVAILABLE'
  /** The handle was closed. */
  | 'DB_CLOSED'
  /** PGlite only: the handle (not `tx`) was used inside its own transaction, which would wait forever. */
  | 'DB_NESTED_QUERY'
  /** A migration that was applied before has different SQL now. */
  | 'DB_MIGRATION_CHANGED'
  /** Anything else. */
  | 'DB_QUERY_FAILED';

export interface SqlErrorDetails {
  cause?: unknown;
  retryable?: boolean;
  sqlState?: string | undefined;
  constraint?: string | undefined;
  table?: string | undefined;
  column?: string | undefined;
  schema?: string | undefined;
  detail?: string | undefined;
}

export class SqlError extends BulwarkError {
  declare readonly code: SqlErrorCode;
  /** The server's SQLSTATE (`23505`), when the error came from the server. */
  readonly sqlState: string | undefined;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly schema: string | undefined;
  /** The server's DETAIL line; may quote values, so keep it out of client responses. */
  readonly detail: string | undefined;

  constructor(code: SqlErrorCode, message: string, details: SqlErrorDetails = {}) {
    super(code, message, {
      retryable: details.retryable ?? RETRYABLE.has(code),
      ...(details.cause === undefined ? {} : { cause: details.cause }),
    });
    this.sqlState = details.sqlState;
    this.constraint = details.constraint;
    this.table = details.table;
    this.column = details.column;
    this.schema = details.schema;
    this.detail = details.detail;
  }
}

const RETRYABLE = new Set<SqlErrorCode>([
  'DB_SERIALIZATION_FAILURE',
  'DB_DEADLOCK',
  'DB_LOCK_NOT_AVAILABLE',
  'DB_QUERY_CANCELLED',
  'DB_UNAVAILABLE',
]);

export function isSqlError(error: unknown): error is SqlError {
  return isBulwarkError(error) && error.code.startsWith('DB_') && 'sqlState' in error;
}

/** Node system error codes that mean the server could not be reached or the connection dropped. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** pg's own messages for connection failures (they carry no code). */
const NETWORK_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
];

function byState(state: string): SqlErrorCode {
  switch (state) {
    case '23505':
      return 'DB_UNIQUE_VIOLATION';
    case '23503':
      return 'DB_FOREIGN_KEY_VIOLATION';
    case '23502':
      return 'DB_NOT_NULL_VIOLATION';
    case '23514':
      return 'DB_CHECK_VIOLATION';
    case '40001':
      return 'DB_SERIALIZATION_FAILURE';
    case '40P01':
      return 'DB_DEADLOCK';
    case '55P03':
      return 'DB_LOCK_NOT_AVAILABLE';
    case '57014':
      return 'DB_QUERY_CANCELLED';
    case '25P02':
      return 'DB_TRANSACTION_ABORTED';
    // protocol_violation: in class 08 (connection) but a caller's mistake, e.g. more values than
    // the statement has parameters; sent again it fails again, so not retryable.
    case '08P01':
      return 'DB_SQL_ERROR';
    // admin_shutdown, crash_shutdown, cannot_connect_now: the server is going away or not ready.
    case '57P01':
    case '57P02':
    case '57P03':
      return 'DB_UNAVAILABLE';
  }
  switch (state.slice(0, 2)) {
    case '23':
      return 'DB_CONSTRAINT_VIOLATION';
    case '22':
      return 'DB_INVALID_INPUT';
    case '08': // connection exception
    case '53': // insufficient resources (too many connections, out of memory or disk)
      return 'DB_UNAVAILABLE';
    case '42':
      return 'DB_SQL_ERROR';
    default:
      return 'DB_QUERY_FAILED';
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function networkCodeOf(error: object): string | undefined {
  const code = str((error as { code?: unknown }).code);
  if (code !== undefined && NETWORK_CODES.has(code)) return code;
  // Node 20 reports a failed dual-stack connect ("localhost") as an AggregateError of attempts.
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested)) {
    for (const inner of nested as unknown[]) {
      if (typeof inner === 'object' && inner !== null) {
        const found = networkCodeOf(inner);
        if (found !== undefined) return found;
      }
    }
  }
  return undefined;
}

/** Translates any error a driver threw into a `SqlError`; `SqlError`s pass through unchanged. */
export function translateSqlError(error: unknown): SqlError {
  if (isSqlError(error)) return error;
  if (typeof error !== 'object' || error === null) {
    return new SqlError('DB_QUERY_FAILED', `database call failed: ${String(error)}`, {
      cause: error,
    });
  }
  const e = error as Record<string, unknown>;
  const message = typeof e.message === 'string' ? e.message : 'database call failed';
  const network = networkCodeOf(error);
  if (network !== undefined) {
    return new SqlError('DB_UNAVAILABLE', `database unavailable (${network}): ${message}`, {
      cause: error,
    });
  }
  const state = str(e.code);
  // SQLSTATEs are five characters of digits and upper-case letters.
  if (state !== undefined && /^[0-9A-Z]{5}$/.test(state)) {
    return new SqlError(byState(state), message, {
      cause: error,
      sqlState: state,
      constraint: str(e.constraint),
      table: str(e.table),
      column: str(e.column),
      schema: str(e.schema),
      detail: str(e.detail),
    });
  }
  if (NETWORK_MESSAGES.some(pattern => pattern.test(message))) {
    return new SqlError('DB_UNAVAILABLE', `database unavailable: ${message}`, { cause: error });
  }
  return new SqlError('DB_QUERY_FAILED', message, { cause: error });
}

/**
 * A driver error (before translation) saying a prepared statement's plan is stale: a table
 * changed under it so that its result columns differ, and PostgreSQL refuses the old plan.
 * Both engines prepare statements and recover from this by preparing the text again.
 */
export function isStalePlan(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return (
    e.code === '0A000' &&
    typeof e.message === 'string' &&
    e.message.includes('cached plan must not change result type')
  );
}
