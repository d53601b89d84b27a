import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from './open.js';
import type { SqlDatabase } from './types.js';
import { tableVacuum } from './vacuum.js';

let db: SqlDatabase;

beforeAll(async () => {
  db = await openDatabase();
}, 60_000);

afterAll(async () => {
  await db?.close();
});

/** Bytes of the heap and of every index of `table`. */
async function sizeOf(table: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'select pg_total_relation_size($1::regclass)::float8 as n',
    [table],
  );
  return rows[0]!.n;
}

/** A table of `rows` rows, updated `rounds` times over (each round: `rows` dead versions). */
async function churn(
  table: string,
  rows: number,
  rounds: number,
  between: () => Promise<void>,
): Promise<number[]> {
  await db.exec(`create table ${table} (id int primary key, n int not null, note text);
    create index ${table}_n on ${table} (n);
    insert into ${table} select i, 0, repeat('x', 100) from generate_series(1, ${rows}) i;`);
  const sizes: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    await between();
    const { rowCount } = await db.query(`update ${table} set n = $1`, [round]);
    expect(rowCount).toBe(rows);
    sizes.push(await sizeOf(table));
  }
  return sizes;
}

describe('tableVacuum on PGlite (which runs no autovacuum)', () => {
  it('keeps a churned table at its size, where the same churn unvacuumed grows it every round', async () => {
    const vacuum = tableVacuum(db, 'public.churned', { minChangedRows: 1_000 });
    const kept = await churn('churned', 2_000, 6, async () => {
      if (vacuum.due) await vacuum.run();
      vacuum.note(2_000); // the update that follows
    });
    const grown = await churn('unvacuumed', 2_000, 6, async () => {});
    // Every update writes a new version of every row (and index entries for it): without a
    // vacuum the space of the old ones is never reused, and every round adds as much again.
    for (let round = 1; round < 6; round++) expect(grown[round]).toBeGreaterThan(grown[round - 1]!);
    // With it the space of dead versions is reused: after a few rounds of settling in (index
    // pages split once), the table stops growing, at well under the unvacuumed size.
    expect(kept[5]).toBe(kept[3]);
    expect(kept[5]).toBeLessThan(grown[5]! / 2);
  });

  it('is due after max(minChangedRows, scaleFactor x the rows at the last vacuum) changes', async () => {
    await db.exec(
      `create table counted (id int primary key); insert into counted select generate_series(1, 1000);`,
    );
    const vacuum = tableVacuum(db, 'public.counted', { minChangedRows: 100, scaleFactor: 0.5 });
    vacuum.note(99);
    expect(vacuum.due).toBe(false);
    vacuum.note(1);
    expect(vacuum.due).toBe(true);
    await vacuum.run();
    // The vacuum read the table's size back: 0.5 x 1,000 rows is now the bar.
    expect(vacuum.due).toBe(false);
    vacuum.note(499);
    expect(vacuum.due).toBe(false);
    vacuum.note(1);
    expect(vacuum.due).toBe(true);
  });

  it('shares one run between callers and stays due when the vacuum fails', async () => {
    const missing = tableVacuum(db, 'public.no_such_table', { minChangedRows: 1 });
    missing.note(1);
    const first = missing.run();
    expect(missing.run()).toBe(first);
    await expect(first).rejects.toMatchObject({ name: 'SqlError' });
    expect(missing.due).toBe(true);
  });

  it('refuses a table name that is not a plain identifier, and bad numbers', () => {
    expect(() => tableVacuum(db, 'messages; drop table x')).toThrow(/table must be/);
    expect(() => tableVacuum(db, 'Messages')).toThrow(/table must be/);
    expect(() => tableVacuum(db, 'm', { minChangedRows: 0 })).toThrow(/minChangedRows/);
    expect(() => tableVacuum(db, 'm', { scaleFactor: -1 })).toThrow(/scaleFactor/);
  });
});
