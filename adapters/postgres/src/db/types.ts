/** The SQL handle's interface: the same calls, the same SQL and the same row types on PGlite and PostgreSQL. */

import type { CopyValue } from './copy.js';

export type { CopyValue } from './copy.js';

/** What a query returns. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows returned, or rows changed by INSERT / UPDATE / DELETE without RETURNING. */
  rowCount: number;
}

/** Runs statements: the database itself or an open transaction. */
export interface SqlExecutor {
  /**
   * One statement with `$1`-style parameters (extended protocol: exactly one statement, values
   * never spliced into the text). Rows come back with the same JS types on both engines:
   * int2/int4/float8 as number, int8 as number (bigint past 2^53), numeric as string,
   * timestamptz as Date, json/jsonb parsed.
   */
  query<R = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>>;
  /**
   * A script of one or more statements without parameters (simple protocol), e.g. a migration.
   * Never build it from user input.
   */
  exec(script: string): Promise<void>;
  /**
   * Loads rows into `table` with `COPY ... FROM` (text format): PostgreSQL's fastest way in, one
   * statement, all rows or none (a constraint violation fails the whole load, as one INSERT
   * would). `table` (`schema.name` or `name`) and `columns` are lower-case identifiers written
   * by code, never user input; every row has one value per column. Values: `null`/`undefined`
   * as NULL; a string as the column's text form (for a json/jsonb column, JSON text, as a
   * parameter would be); numbers, bigints, booleans, Dates; any other object as JSON (for
   * json/jsonb columns). Resolves with the number of rows loaded.
   */
  copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly CopyValue[]>,
  ): Promise<number>;
}

/** The executor handed to a `transaction` callback; valid only until the callback settles. */
export type SqlTransaction = SqlExecutor;

export type SqlDatabaseKind = 'pglite' | 'postgres';

export interface SqlDatabase extends SqlExecutor {
  readonly kind: SqlDatabaseKind;
  /**
   * Runs `fn` in a transaction: COMMIT when it resolves, ROLLBACK when it throws (its error is
   * rethrown as is). On PGlite the transaction is exclusive: other queries on the handle wait
   * until it ends, so use `tx`, never the handle, inside `fn` (doing so throws `DB_NESTED_QUERY`
   * instead of waiting forever). On PostgreSQL it holds one pooled connection.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /** Closes the pool or the PGlite instance. Idempotent. Later calls fail with `DB_CLOSED`. */
  close(): Promise<void>;
  readonly closed: boolean;
}
