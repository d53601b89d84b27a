/**
 * Forward-only migrations: each `{ id, sql }` runs once, in order, and is recorded with a
 * checksum of its SQL. All pending migrations run in one transaction (all or none). On
 * PostgreSQL a transaction-scoped advisory lock serialises processes that start together; on
 * PGlite the transaction is already exclusive.
 */
import { createHash } from 'node:crypto';
import { InvalidOptionsError } from '@bulwark/core';
import { SqlError } from './errors.js';
import type { SqlDatabase } from './types.js';

export interface Migration {
  /** Unique, stable id, e.g. `001-create-users`. Never rename or edit an applied migration. */
  id: string;
  /** One or more statements (run with the simple protocol). */
  sql: string;
}

export interface MigrateOptions {
  /** Applied in this order. */
  migrations: readonly Migration[];
  /**
   * Table that records applied migrations, optionally schema-qualified (`users.migrations`; the
   * schema is created when missing). Default `bulwark_migrations`.
   */
  table?: string;
}

export interface MigrateResult {
  /** Ids applied by this call. */
  applied: string[];
  /** Ids that were applied before. */
  skipped: string[];
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

function fail(message: string): never {
  throw new InvalidOptionsError(`migrate: ${message}`);
}

function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

function parseTable(table: string): { schema: string | undefined; qualified: string } {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every(part => IDENT.test(part))) {
    fail(
      `table must be a lower-case identifier, optionally schema-qualified ("users.migrations"), got ${JSON.stringify(table)}`,
    );
  }
  return { schema: parts.length === 2 ? parts[0] : undefined, qualified: table };
}

export async function migrate(db: SqlDatabase, options: MigrateOptions): Promise<MigrateResult> {
  const list: unknown = (options as { migrations?: unknown } | null)?.migrations;
  if (!Array.isArray(list)) fail('expected { migrations: [{ id, sql }], table? }');
  const seen = new Set<string>();
  for (const m of list as readonly Partial<Migration>[]) {
    if (typeof m?.id !== 'string' || m.id === '' || typeof m.sql !== 'string' || m.sql === '') {
      fail('every migration needs a non-empty string id and sql');
    }
    if (seen.has(m.id)) fail(`two migrations have the id "${m.id}"; ids must be unique`);
    seen.add(m.id);
  }
  const { schema, qualified } = parseTable(options.table ?? 'bulwark_migrations');

  return db.transaction(async tx => {
    if (db.kind === 'postgres') {
      // Held until COMMIT: a second process starting now waits here, then finds the work done.
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [
        `bulwark.migrate:${qualified}`,
      ]);
    }
    if (schema !== undefined) await tx.exec(`create schema if not exists ${schema}`);
    await tx.exec(
      `create table if not exists ${qualified} (
         id text primary key,
         checksum text not null,
         applied_at timestamptz not null default now()
       )`,
    );
    const { rows } = await tx.query<{ id: string; checksum: string }>(
      `select id, checksum from ${qualified}`,
    );
    const done = new Map(rows.map(row => [row.id, row.checksum]));
    const result: MigrateResult = { applied: [], skipped: [] };
    for (const m of options.migrations) {
      const sum = checksum(m.sql);
      const previous = done.get(m.id);
      if (previous !== undefined) {
        if (previous !== sum) {
          throw new SqlError(
            'DB_MIGRATION_CHANGED',
            `migration "${m.id}" was applied with different SQL; add a new migration instead of editing an applied one`,
            { retryable: false },
          );
        }
        result.skipped.push(m.id);
        continue;
      }
      await tx.exec(m.sql);
      await tx.query(`insert into ${qualified} (id, checksum) values ($1, $2)`, [m.id, sum]);
      result.applied.push(m.id);
    }
    return result;
  });
}
