/**
 * The embedded engine: PGlite (PostgreSQL compiled to WASM) in this process, in memory or in a
 * data folder. PGlite has one connection; its `query`, `exec` and `transaction` share one mutex,
 * so a transaction is exclusive: other queries wait for it instead of running inside it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdir } from 'node:fs/promises';
import { Mutex, PGlite, type Transaction } from '@electric-sql/pglite';
import { encodeCopy, type CopyValue } from './copy.js';
import { SqlError, translateSqlError } from './errors.js';
import { PglitePreparedStatements } from './pglite-prepared.js';
import { rowCountOf } from './rows.js';
import type { QueryResult, SqlDatabase, SqlTransaction } from './types.js';

export interface PgliteDatabaseOptions {
  /** Folder for the data files, created on first start. Default: in memory. */
  dataDir?: string;
}

function closedError(): SqlError {
  return new SqlError('DB_CLOSED', 'the database handle is closed; open a new one', {
    retryable: false,
  });
}

/**
 * COPY on PGlite reads its rows from the `/dev/blob` device, filled from the query's `blob`
 * option. Either PGlite or a transaction of it runs the statement.
 */
async function runCopy(
  target: Pick<PGlite | Transaction, 'query'>,
  table: string,
  columns: readonly string[],
  rows: Iterable<readonly CopyValue[]>,
): Promise<number> {
  const { statement, data } = encodeCopy(table, columns, rows, `'/dev/blob'`);
  const blob = new Blob([data]);
  try {
    const result = await target.query(statement, [], { blob });
    return result.affectedRows ?? 0;
  } catch (error) {
    throw translateSqlError(error);
  }
}

class PgliteTransaction implements SqlTransaction {
  constructor(private readonly tx: Transaction) {}

  async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    try {
      const result = await this.tx.query<R>(text, params === undefined ? undefined : [...params]);
      return { rows: result.rows, rowCount: rowCountOf(result.rows, result.affectedRows) };
    } catch (error) {
      throw translateSqlError(error);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.tx.exec(script);
    } catch (error) {
      throw translateSqlError(error);
    }
  }

  copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly CopyValue[]>,
  ): Promise<number> {
    return runCopy(this.tx, table, columns, rows);
  }
}

class PgliteDatabase implements SqlDatabase {
  readonly kind = 'pglite' as const;
  private isClosed = false;
  // Marks the async context of a running transaction callback: a handle call made from there
  // would wait on the mutex the transaction holds, forever.
  private readonly inTransaction = new AsyncLocalStorage<true>();
  /**
   * Every call of the handle runs under this lock, a transaction for its whole length. PGlite's
   * own locks cover its `query`, `exec` and `transaction`, but not the protocol exchanges of the
   * prepared statements, which would otherwise run inside someone else's open transaction.
   */
  private readonly lock = new Mutex();
  private readonly prepared: PglitePreparedStatements;

  constructor(private readonly pg: PGlite) {
    this.prepared = new PglitePreparedStatements(pg);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private check(): void {
    if (this.isClosed) throw closedError();
    if (this.inTransaction.getStore() === true) {
      throw new SqlError(
        'DB_NESTED_QUERY',
        'the database handle was used inside its own transaction; on PGlite that waits forever: use the `tx` passed to the callback',
        { retryable: false },
      );
    }
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    this.check();
    try {
      return await this.lock.runExclusive(async () => {
        if (this.prepared.accepts(text)) return this.prepared.query<R>(text, params ?? []);
        const result = await this.pg.query<R>(text, params === undefined ? undefined : [...params]);
        return { rows: result.rows, rowCount: rowCountOf(result.rows, result.affectedRows) };
      });
    } catch (error) {
      throw translateSqlError(error);
    }
  }

  async exec(script: string): Promise<void> {
    this.check();
    try {
      await this.lock.runExclusive(() => this.pg.exec(script));
    } catch (error) {
      throw translateSqlError(error);
    }
  }

  async copyFrom(
    table: string,
    columns: readonly string[],
    rows: Iterable<readonly CopyValue[]>,
  ): Promise<number> {
    this.check();
    return this.lock.runExclusive(() => runCopy(this.pg, table, columns, rows));
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    this.check();
    // Errors of `fn` are the caller's and pass through as they are; BEGIN/COMMIT failures come
    // from the driver and are translated. PGlite rolls back when `fn` throws.
    let fromCallback = false;
    try {
      return await this.lock.runExclusive(() =>
        this.pg.transaction(tx =>
          this.inTransaction.run(true, async () => {
            try {
              return await fn(new PgliteTransaction(tx));
            } catch (error) {
              fromCallback = true;
              throw error;
            }
          }),
        ),
      );
    } catch (error) {
      if (fromCallback) throw error;
      throw translateSqlError(error);
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    // After the calls already running or waiting: closing under them would fail them midway.
    await this.lock.runExclusive(() => this.pg.close());
  }
}

/**
 * In memory only: new WAL segments are not filled with zeroes first. PGlite's in-memory file
 * system grows a file by copying it (by an eighth at a time past 1 MB), so zero-filling each new
 * 16 MB segment in 8 KB writes copied it over and over, and a write-heavy minute paid for it:
 * consuming a freshly enqueued 10,000 messages ran at 14,370–17,898 messages/s against
 * 28,192–32,390 with this setting (ad-hoc, three alternating pairs). PostgreSQL's own
 * `wal_init_zero` (off: only a segment's last byte is written when it is created); the zeroes only
 * pre-allocate disk space, and there is no disk here. With `dataDir` the files are real ones and
 * the default stays.
 */
const IN_MEMORY_SETTINGS = 'set wal_init_zero = off';

/** Opens PGlite; with `dataDir` the folder is created when missing and reused on the next start. */
export async function openPglite(options: PgliteDatabaseOptions = {}): Promise<SqlDatabase> {
  let pg: PGlite;
  try {
    if (options.dataDir === undefined) {
      pg = await PGlite.create();
      await pg.exec(IN_MEMORY_SETTINGS);
    } else {
      await mkdir(options.dataDir, { recursive: true });
      pg = await PGlite.create({ dataDir: options.dataDir });
    }
  } catch (error) {
    throw translateSqlError(error);
  }
  return new PgliteDatabase(pg);
}
