/**
 * Autovacuum for PGlite, which runs none. PGlite is PostgreSQL in single-user mode: no autovacuum
 * launcher and no table statistics (`pg_stat_user_tables` stays empty), so the old versions of
 * updated and deleted rows stay in the table and in every index until somebody runs VACUUM. A
 * queue turns its whole table over: without it the heap grew by 3.85 MB per 10,000 messages
 * processed, for ever, and fetches and acks slowed down as their indexes filled with entries of
 * deleted rows (see the README's figures).
 *
 * The rule is autovacuum's own: vacuum a table once the rows changed since its last vacuum pass
 * a floor plus a share of the table (`autovacuum_vacuum_scale_factor`, 0.2). The floor is higher
 * than autovacuum's 50 rows because a VACUUM of even a small table costs several ms here.
 *
 * The owner of a table counts the rows its statements changed (`note`) and, before its next
 * write, runs the vacuum when it is `due` — before, so that a failing VACUUM fails that write
 * before it changed anything. On PostgreSQL the server's autovacuum does this job: the handle
 * returned there is never due.
 */
import { InvalidOptionsError } from '@bulwark/core';
import type { SqlDatabase } from './types.js';

export interface TableVacuum {
  /** Whether enough rows changed since the last vacuum; always false on PostgreSQL. */
  readonly due: boolean;
  /** Counts rows updated or deleted (each leaves one dead row version behind). */
  note(changedRows: number): void;
  /**
   * Vacuums the table now (callers check `due` first). Calls while one runs share it. On failure
   * the changed rows stay counted, so the next `due` check tries again.
   */
  run(): Promise<void>;
}

export interface TableVacuumOptions {
  /** Fewest changed rows that make a vacuum due. Default 5_000. */
  minChangedRows?: number;
  /** Share of the table's rows (at its last vacuum) that must have changed. Default 0.2. */
  scaleFactor?: number;
}

const QUALIFIED_TABLE = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/** The vacuum keeper of `table` (e.g. `"bulwark_messaging.messages"`) on `db`. */
export function tableVacuum(
  db: SqlDatabase,
  table: string,
  options: TableVacuumOptions = {},
): TableVacuum {
  const where = 'tableVacuum';
  if (typeof table !== 'string' || !QUALIFIED_TABLE.test(table)) {
    throw new InvalidOptionsError(
      `${where}: table must be a lower-case [schema.]table identifier, got ${JSON.stringify(table)}`,
    );
  }
  const minChangedRows = options.minChangedRows ?? 5_000;
  if (!Number.isInteger(minChangedRows) || minChangedRows < 1) {
    throw new InvalidOptionsError(`${where}: minChangedRows must be an integer >= 1`);
  }
  const scaleFactor = options.scaleFactor ?? 0.2;
  if (typeof scaleFactor !== 'number' || !(scaleFactor >= 0) || !Number.isFinite(scaleFactor)) {
    throw new InvalidOptionsError(`${where}: scaleFactor must be a finite number >= 0`);
  }
  return db.kind === 'pglite'
    ? new PgliteTableVacuum(db, table, minChangedRows, scaleFactor)
    : SERVER_AUTOVACUUM;
}

const SERVER_AUTOVACUUM: TableVacuum = {
  due: false,
  note() {},
  run: () => Promise.resolve(),
};

class PgliteTableVacuum implements TableVacuum {
  private changed = 0;
  /** The table's rows at its last vacuum (`pg_class.reltuples`); 0 until the first. */
  private rows = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: SqlDatabase,
    private readonly table: string,
    private readonly minChangedRows: number,
    private readonly scaleFactor: number,
  ) {}

  get due(): boolean {
    return this.changed >= Math.max(this.minChangedRows, this.scaleFactor * this.rows);
  }

  note(changedRows: number): void {
    this.changed += changedRows;
  }

  run(): Promise<void> {
    this.running ??= this.vacuum().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async vacuum(): Promise<void> {
    const counted = this.changed;
    this.changed = 0;
    try {
      await this.db.exec(`vacuum ${this.table}`);
      const { rows } = await this.db.query<{ n: number }>(
        'select reltuples::float8 as n from pg_class where oid = $1::regclass',
        [this.table],
      );
      // -1: never vacuumed or analysed (cannot happen right after a vacuum, but costs nothing).
      this.rows = Math.max(0, rows[0]?.n ?? 0);
    } catch (error) {
      this.changed += counted;
      throw error;
    }
  }
}
