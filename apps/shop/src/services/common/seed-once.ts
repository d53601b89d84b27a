/**
 * Seeding runs once per schema: the first start claims the schema's `seed_info` row and fills
 * the tables in the same transaction; later starts (and a second process racing the first on
 * PostgreSQL, which waits on the row's unique key) find the row and skip.
 */
import type { SqlDatabase, SqlTransaction } from '@bulwark/postgres';
import type { SeedSizes } from './seed-sizes.js';

/** The migration that creates `<schema>.seed_info`; every service includes it. */
export function seedInfoMigration(schema: string): { id: string; sql: string } {
  return {
    id: '000-seed-info',
    sql: `create table ${schema}.seed_info (
            singleton boolean primary key default true check (singleton),
            sizes jsonb not null,
            seeded_at timestamptz not null default now()
          )`,
  };
}

/** Runs `fill` unless the schema was seeded before. Returns whether it seeded now. */
export async function seedOnce(
  db: SqlDatabase,
  schema: string,
  sizes: SeedSizes,
  fill: (tx: SqlTransaction) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async tx => {
    const claimed = await tx.query(
      `insert into ${schema}.seed_info (sizes) values ($1::jsonb)
       on conflict do nothing returning singleton`,
      [JSON.stringify(sizes)],
    );
    if (claimed.rowCount === 0) return false;
    await fill(tx);
    return true;
  });
}
