/**
 * The server engine: a `pg` Pool. The SQL and the row types match PGlite: int8 is parsed to a
 * number like PGlite does (pg's default is a string), bigint past 2^53.
 */
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import { encodeCopy, type CopyValue, type EncodedCopy } from './copy.js';
import { isStalePlan, SqlError, translateSqlError } from './errors.js';
import { rowCountOf } from './rows.js';
import type { QueryResult, SqlDatabase, SqlTransaction } from './types.js';

export interface PostgresDatabaseOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Most open connections. Default 10. */
  maxConnections?: number;
  /** Give up connecting after this many milliseconds (`DB_UNAVAILABLE`). Default 5_000. */
  connectTimeoutMs?: number;
  /** Close connections idle this long, in milliseconds. Default 10_000. */
  idleTimeoutMs?: number;
  /** Server-side `statement_timeout` per statement, in milliseconds (`DB_QUERY_CANCELLED`). Default none. */
  statementTimeoutMs?: number;
  /** `application_name` shown in `pg_stat_activity`. Default `bulwark`. */
  applicationName?: string;
  /**
   * Errors of idle pooled connections (the server restarted, a proxy cut the socket). The pool
   * drops such a connection by itself; without a listener pg would crash the process. Default:
   * ignored.
   */
  onIdleError?: (error: Error) => void;
}

const INT8_OID = 20;

function parseInt8(value: string): number | bigint {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function closedError(): SqlError {
  return new SqlError('DB_CLOSED', 'the database handle is closed; open a new one', {
    retryable: false,
  });
}

async function run<R>(
  client: pg.Pool | pg.PoolClient,
  text: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<R>> {
  // Always the extended protocol, as on PGlite: one statement per call, even without values.
  // `queryMode` is in pg 8.12+ but not yet in @types/pg.
  const config: pg.QueryConfig<unknown[]> & { queryMode: 'extended' } = {
    text,
    values: params === undefined ? [] : [...params],
    queryMode: 'extended',
  };
  const name = statementName(text);
  if (name !== undefined) config.name = name;
  try {
    const result = await client.query(config);
    const rows = result.rows as R[];
    return { rows, rowCount: rowCountOf(rows, result.rowCount) };
  } catch (error) {
    // A table changed under a prepared statement so that its result columns differ: PostgreSQL
    // refuses the old plan. Prepared again under a new name, it runs; on a pool (outside a
    // transaction, which the refusal would have aborted) the call is retried once.
    if (name !== undefined && isStalePlan(error)) {
      renameStatement(text);
      if (client instanceof pg.Pool) return run<R>(client, text, params);
    }
    throw translateSqlError(error);
  }
}

/**
 * How many distinct statement texts a process prepares (per connection, on first use). The
 * hot statements (enqueue, fetch, ack, settle) are a handful per schema; texts built per call
 * (dead letter filters, say) beyond this run unprepared instead of growing every connection's
 * server-side cache without bound.
 */
const MAX_PREPARED_STATEMENTS = 200;
const statementNames = new Map<string, string>();

/**
 * The name a statement text is prepared under. A named statement is parsed and planned once per
 * connection, then only bound and executed (what that gained in the queue-pg benchmark: the
 * package README). Statement names are per process, so every connection of every pool in it
 * uses the same name for the same text.
 */
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_PREPARED_STATEMENTS) {
    name = `bulwark_${++statementCounter}`;
    statementNames.set(text, name);
  }
  return name;
}
let statementCounter = 0;

function renameStatement(text: string): void {
  statementNames.set(text, `bulwark_${++statementCounter}`);
}

async function runScript(client: pg.Pool | pg.PoolClient, script: string): Promise<void> {
  try {
    // No values: pg uses the simple protocol, which accepts several statements.
    await client.query(script);
  } catch (error) {
    throw translateSqlError(error);
  }
}

/** COPY FROM STDIN on one connection; the rows are encoded before anything is sent. */
async function runCopy(client: pg.PoolClient, { statement, data }: EncodedCopy): Promise<number> {
  const stream = client.query(copyFromStdin(statement));
  try {
    // 'finish' comes after the server's ReadyForQuery: the rows are in (or, in a transaction,
    // part of it) by then.
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', resolve);
      stream.end(data);
    });
  } catch (error) {
    throw translateSqlError(error);
  }
  return stream.rowCount;
}

class PostgresTransaction implements SqlTransaction {
  constructor(private readonly client: pg.PoolClient) {}

  query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return run<R>(this.client, text, params);
  }

  exec(script: string): Promise<void> {
    return runScript(this.client, script);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly CopyValue[]>,
  ): Promise<number> {
    return runCopy(this.client, encodeCopy(table, columns, rows, 'stdin'));
  }
}

class PostgresDatabase implements SqlDatabase {
  readonly kind = 'postgres' as const;
  private isClosed = false;

  constructor(private readonly pool: pg.Pool) {}

  get closed(): boolean {
    return this.isClosed;
  }

  query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.isClosed) return Promise.reject(closedError());
    return run<R>(this.pool, text, params);
  }

  exec(script: string): Promise<void> {
    if (this.isClosed) return Promise.reject(closedError());
    return runScript(this.pool, script);
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly CopyValue[]>,
  ): Promise<number> {
    if (this.isClosed) throw closedError();
    // Encoded first: a bad name or value fails without taking a connection.
    const copy = encodeCopy(table, columns, rows, 'stdin');
    // A COPY holds its connection from the statement to the server's answer, so it takes one
    // from the pool, as a transaction does.
    const { client, release } = await this.checkout();
    let broken: Error | undefined;
    try {
      return await runCopy(client, copy);
    } catch (error) {
      if (isUnavailable(error)) broken = error as Error;
      throw error;
    } finally {
      release(broken);
    }
  }

  /**
   * A connection of the pool's for a COPY or a transaction. pg-pool stops listening to a
   * connection's 'error' event while it is checked out, and pg emits one when the socket dies
   * (after failing the statement in flight): unheard, it would be an uncaught exception that ends
   * the process. Heard here, it marks the connection broken, so it is not handed back.
   */
  private async checkout(): Promise<{
    client: pg.PoolClient;
    release: (broken?: Error) => void;
  }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw translateSqlError(error);
    }
    let lost: Error | undefined;
    const onError = (error: Error): void => {
      lost = error;
    };
    client.on('error', onError);
    return {
      client,
      release: broken => {
        client.removeListener('error', onError);
        client.release(broken ?? lost);
      },
    };
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    if (this.isClosed) throw closedError();
    const { client, release } = await this.checkout();
    // A connection that failed mid-transaction must not go back to the pool.
    let broken: Error | undefined;
    try {
      await runScript(client, 'BEGIN');
      let result: T;
      try {
        result = await fn(new PostgresTransaction(client));
      } catch (error) {
        try {
          await runScript(client, 'ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      }
      await runScript(client, 'COMMIT');
      return result;
    } catch (error) {
      if (broken === undefined && isUnavailable(error)) broken = error as Error;
      throw error;
    } finally {
      release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.pool.end();
  }
}

function isUnavailable(error: unknown): boolean {
  return error instanceof SqlError && error.code === 'DB_UNAVAILABLE';
}

/** Opens a pool. No connection is made until the first query. */
export function openPostgres(options: PostgresDatabaseOptions): SqlDatabase {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
    application_name: options.applicationName ?? 'bulwark',
    ...(options.statementTimeoutMs === undefined
      ? {}
      : { statement_timeout: options.statementTimeoutMs }),
    types,
  });
  pool.on('error', options.onIdleError ?? (() => {}));
  return new PostgresDatabase(pool);
}
