/**
 * The handle's contract on a real PostgreSQL (DATABASE_URL). The suite gets a database of its
 * own, created here with a unique name and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlDatabaseContract } from './contract.js';
import { migrate } from './migrate.js';
import { openDatabase } from './open.js';
import type { SqlDatabase } from './types.js';
import { tableVacuum } from './vacuum.js';

const url = process.env.DATABASE_URL;
if (!url) console.warn('handle.int.test.ts skipped: set DATABASE_URL to a PostgreSQL server');

const dbName = `bulwark_handle_${randomBytes(4).toString('hex')}`;
const dbUrl = (() => {
  if (!url) return '';
  const u = new URL(url);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

describe.skipIf(!url)('PostgreSQL handle', () => {
  let admin: SqlDatabase;
  beforeAll(async () => {
    admin = await openDatabase({ url: url as string, maxConnections: 1 });
    await admin.exec(`create database ${dbName}`);
  });
  afterAll(async () => {
    await admin.exec(`drop database if exists ${dbName} with (force)`);
    await admin.close();
  });

  sqlDatabaseContract(
    { describe, it, beforeAll, afterAll },
    {
      name: 'PostgreSQL',
      open: () => openDatabase({ url: dbUrl }),
    },
  );

  it('prepares a statement text once per connection, and again when its table changed shape', async () => {
    const db = await openDatabase({ url: dbUrl, maxConnections: 1 });
    try {
      const text = 'select $1::int + 1 as n /* prepared once */';
      expect((await db.query<{ n: number }>(text, [1])).rows).toEqual([{ n: 2 }]);
      expect((await db.query<{ n: number }>(text, [2])).rows).toEqual([{ n: 3 }]);
      const prepared = await db.query<{ c: number }>(
        'select count(*)::int as c from pg_prepared_statements where statement = $1',
        [text],
      );
      expect(prepared.rows).toEqual([{ c: 1 }]);

      await db.exec('create table shapes (a int); insert into shapes values (1)');
      const star = 'select * from shapes';
      expect((await db.query(star)).rows).toEqual([{ a: 1 }]);
      await db.exec('alter table shapes add column b int default 2');
      // PostgreSQL refuses the old plan (its result type changed); the handle prepares anew.
      expect((await db.query(star)).rows).toEqual([{ a: 1, b: 2 }]);
    } finally {
      await db.close();
    }
  });

  it('leaves vacuuming to the server: tableVacuum is never due on PostgreSQL', async () => {
    const db = await openDatabase({ url: dbUrl, maxConnections: 1 });
    try {
      const vacuum = tableVacuum(db, 'public.anything');
      vacuum.note(1e9);
      expect(vacuum.due).toBe(false);
      await expect(vacuum.run()).resolves.toBeUndefined();
    } finally {
      await db.close();
    }
  });

  it('two processes migrating at once apply each migration once (advisory lock)', async () => {
    const a = await openDatabase({ url: dbUrl });
    const b = await openDatabase({ url: dbUrl });
    try {
      const migrations = [
        { id: '001', sql: 'create table race.things (id int primary key)' },
        { id: '002', sql: 'insert into race.things values (1)' },
      ];
      const runs = await Promise.all([
        migrate(a, { migrations, table: 'race.migrations' }),
        migrate(b, { migrations, table: 'race.migrations' }),
      ]);
      expect(runs.flatMap(r => r.applied).sort()).toEqual(['001', '002']);
      const { rows } = await a.query<{ c: number }>('select count(*)::int as c from race.things');
      expect(rows[0]?.c).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
