/**
 * `COPY ... FROM` in text format, the same on both engines: the statement (identifiers checked,
 * never taken from user input) and the rows encoded as COPY's text format.
 *
 * Why COPY at all: PostgreSQL loads a COPY with multi-row heap inserts, one WAL record per page
 * instead of one per row, and without a JSON document to parse first. 1,000 queue messages took
 * 11.0–12.3 ms (median of 40) against 17.0 ms for `INSERT ... SELECT FROM jsonb_to_recordset`
 * on the same table (ad-hoc, PostgreSQL 15 on loopback, the two interleaved, two runs).
 */
import { SqlError } from './errors.js';

/** A column value: NULL, text, a number, a boolean, a Date (timestamptz), or JSON (json/jsonb). */
export type CopyValue = null | undefined | string | number | bigint | boolean | Date | object;

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

function badInput(message: string): SqlError {
  return new SqlError('DB_INVALID_INPUT', message, { retryable: false });
}

function badName(message: string): SqlError {
  return new SqlError('DB_SQL_ERROR', message, { retryable: false });
}

/** `COPY schema.table (a, b) FROM <source>` after checking every name is a plain identifier. */
function copyStatement(table: string, columns: readonly string[], source: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every(p => IDENT.test(p))) {
    throw badName(
      `copyFrom: table must be [schema.]name of lower-case identifiers, got ${JSON.stringify(table)}`,
    );
  }
  if (columns.length === 0 || !columns.every(c => IDENT.test(c))) {
    throw badName(
      `copyFrom: columns must be one or more lower-case identifiers, got ${JSON.stringify(columns)}`,
    );
  }
  return `copy ${table} (${columns.join(', ')}) from ${source}`;
}

// COPY's text format: a backslash starts an escape, tab separates columns, newline ends a row.
const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
/** NUL, or a surrogate not in a pair (in a `u` regex, a paired surrogate is one code point). */
const UNSTORABLE = /[\0\p{Cs}]/u;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escape(text: string): string {
  // Most values (ids, names, numbers) have nothing to escape: test before allocating.
  return SPECIAL.test(text) ? text.replace(SPECIALS, ch => ESCAPES[ch]!) : text;
}

function field(value: CopyValue, row: number, column: string): string {
  switch (typeof value) {
    case 'undefined':
      return '\\N';
    case 'string':
      // Encoded to UTF-8, a lone surrogate would become U+FFFD without a word, and NUL cannot be
      // stored in text: refused here as a parameter holding them is refused.
      if (UNSTORABLE.test(value)) {
        throw badInput(
          `copyFrom: row ${row}, column ${column}: text holds NUL or a lone UTF-16 surrogate`,
        );
      }
      return escape(value);
    case 'number':
      if (!Number.isFinite(value)) {
        return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
      }
      return String(value);
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 't' : 'f';
    case 'object':
      if (value === null) return '\\N';
      if (value instanceof Date) return value.toISOString();
      return escape(json(value, row, column));
    default:
      throw badInput(`copyFrom: row ${row}, column ${column}: cannot store a ${typeof value}`);
  }
}

function json(value: object, row: number, column: string): string {
  const encoded = JSON.stringify(value) as string | undefined;
  if (encoded === undefined) {
    throw badInput(`copyFrom: row ${row}, column ${column}: not JSON-serialisable`);
  }
  return encoded;
}

/** A COPY to run: its statement and its rows as COPY text. */
export interface EncodedCopy {
  readonly statement: string;
  readonly data: string;
}

/**
 * Checks the names and encodes the rows, before any connection is taken or anything is sent
 * (`source`: `stdin` on PostgreSQL, `'/dev/blob'` on PGlite).
 */
export function encodeCopy(
  table: string,
  columns: readonly string[],
  rows: Iterable<readonly CopyValue[]>,
  source: string,
): EncodedCopy {
  return { statement: copyStatement(table, columns, source), data: encodeCopyRows(rows, columns) };
}

/** The rows as COPY text; each row must have one value per column. */
function encodeCopyRows(rows: Iterable<readonly CopyValue[]>, columns: readonly string[]): string {
  let out = '';
  let row = 0;
  for (const values of rows) {
    if (values.length !== columns.length) {
      throw badInput(
        `copyFrom: row ${row} has ${values.length} values for ${columns.length} columns`,
      );
    }
    for (let i = 0; i < values.length; i++) {
      if (i > 0) out += '\t';
      out += field(values[i], row, columns[i]!);
    }
    out += '\n';
    row++;
  }
  return out;
}
