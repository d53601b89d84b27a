/**
 * One behavioural suite for the SQL handle, run against PGlite (`handle.test.ts`) and PostgreSQL
 * (`handle.int.test.ts`), so "the same SQL on both" is checked, not assumed. It takes the test
 * runner's functions as parameters and asserts with node:assert, so it has no test-runner import.
 */
import assert from 'node:assert/strict';
import { isSqlError, type SqlError } from './errors.js';
import { migrate, type Migration } from './migrate.js';
import type { SqlDatabase } from './types.js';

export interface ContractRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
  beforeAll(fn: () => Promise<void>): void;
  afterAll(fn: () => Promise<void>): void;
}

export interface SqlDatabaseContractOptions {
  /** Suite title, e.g. the engine's name. */
  name: string;
  /** Opens a handle on a database (or schema) that belongs to this suite alone; called more than once. */
  open: () => Promise<SqlDatabase>;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SqlError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isSqlError(error), `expected a SqlError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** Resolves when `open()` is called; `open` itself returns a promise resolved by `release()`. */
function gate(): { opened: Promise<void>; wait: () => Promise<void>; release: () => void } {
  let markOpened!: () => void;
  let release!: () => void;
  const opened = new Promise<void>(resolve => (markOpened = resolve));
  const released = new Promise<void>(resolve => (release = resolve));
  return {
    opened,
    wait: () => {
      markOpened();
      return released;
    },
    release,
  };
}

export function sqlDatabaseContract(t: ContractRunner, options: SqlDatabaseContractOptions): void {
  t.describe(`SqlDatabase contract: ${options.name}`, () => {
    let db: SqlDatabase;
    let n = 0;
    // A fresh table name per test, so the tests of one suite never see each other's rows.
    const table = () => `contract_t${++n}`;
    /** The ids a test table holds, in order. */
    const idsIn = async (name: string): Promise<number[]> =>
      (await db.query<{ id: number }>(`select id from ${name} order by id`)).rows.map(r => r.id);

    t.beforeAll(async () => {
      db = await options.open();
    });
    t.afterAll(async () => {
      await db.close();
    });

    t.it('returns the same JS types on every engine', async () => {
      const { rows } = await db.query<Record<string, unknown>>(
        `select $1::int4 as i, $2::text as t, 42::int8 as small, 9007199254740993::int8 as big,
                1.5::float8 as f, 2.50::numeric as n, true as b, null::int as z,
                '2024-05-06T07:08:09.123Z'::timestamptz as ts, '{"a":[1]}'::jsonb as j`,
        [7, 'seven'],
      );
      const row = rows[0];
      assert.ok(row !== undefined);
      assert.equal(row.i, 7);
      assert.equal(row.t, 'seven');
      assert.equal(row.small, 42);
      assert.equal(row.big, 9007199254740993n);
      assert.equal(row.f, 1.5);
      assert.equal(row.n, '2.50');
      assert.equal(row.b, true);
      assert.equal(row.z, null);
      assert.ok(row.ts instanceof Date);
      assert.equal(row.ts.toISOString(), '2024-05-06T07:08:09.123Z');
      assert.deepEqual(row.j, { a: [1] });
    });

    t.it('counts returned rows and changed rows', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key, v text)`);
      const inserted = await db.query(`insert into ${name} values (1, 'a'), (2, 'b'), (3, 'c')`);
      assert.equal(inserted.rowCount, 3);
      assert.deepEqual(inserted.rows, []);
      const none = await db.query(`update ${name} set v = 'x' where id > $1`, [10]);
      assert.equal(none.rowCount, 0);
      const returning = await db.query<{ id: number }>(
        `update ${name} set v = 'y' where id <= $1 returning id`,
        [2],
      );
      assert.equal(returning.rowCount, 2);
      const all = await db.query<{ id: number }>(`select id from ${name} order by id`);
      assert.deepEqual(
        all.rows.map(r => r.id),
        [1, 2, 3],
      );
      assert.equal(all.rowCount, 3);
    });

    t.it('exec runs a script of several statements; query takes exactly one', async () => {
      const name = table();
      await db.exec(
        `create table ${name} (id int); insert into ${name} values (1); insert into ${name} values (2);`,
      );
      const { rows } = await db.query<{ c: number }>(`select count(*)::int as c from ${name}`);
      assert.equal(rows[0]?.c, 2);
      await rejectsWith(db.query('select 1; select 2'), 'DB_SQL_ERROR');
    });

    t.it('commits a transaction and returns its result', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key)`);
      const result = await db.transaction(async tx => {
        await tx.query(`insert into ${name} values ($1)`, [1]);
        await tx.exec(`insert into ${name} values (2)`);
        const { rows } = await tx.query<{ c: number }>(`select count(*)::int as c from ${name}`);
        return rows[0]?.c;
      });
      assert.equal(result, 2);
      const { rows } = await db.query<{ c: number }>(`select count(*)::int as c from ${name}`);
      assert.equal(rows[0]?.c, 2);
    });

    t.it("rolls back when the callback throws and rethrows the callback's own error", async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key)`);
      const mine = new Error('changed my mind');
      await assert.rejects(
        db.transaction(async tx => {
          await tx.query(`insert into ${name} values (1)`);
          throw mine;
        }),
        (error: unknown) => error === mine,
      );
      const { rows } = await db.query(`select * from ${name}`);
      assert.equal(rows.length, 0);
    });

    t.it('a failing statement in a transaction is translated and rolls it back', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key)`);
      await rejectsWith(
        db.transaction(async tx => {
          await tx.query(`insert into ${name} values (1)`);
          await tx.query(`insert into ${name} values (1)`);
        }),
        'DB_UNIQUE_VIOLATION',
      );
      const { rows } = await db.query(`select * from ${name}`);
      assert.equal(rows.length, 0);
      // The handle is usable afterwards (the failed transaction did not leak).
      await db.query(`insert into ${name} values (1)`);
    });

    t.it('a query issued while a transaction is open never runs inside it', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key)`);
      const g = gate();
      const tx = db.transaction(async tx => {
        await tx.query(`insert into ${name} values (1)`);
        await g.wait();
        throw new Error('roll back');
      });
      await g.opened;
      // On PGlite this waits for the transaction; on PostgreSQL it runs on another connection.
      // Either way the rollback must not take this row with it.
      const outside = db.query(`insert into ${name} values (2)`);
      g.release();
      await assert.rejects(tx, /roll back/);
      await outside;
      assert.deepEqual(await idsIn(name), [2]);
    });

    t.it('translates driver errors into stable codes', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key, v int not null check (v > 0))`);
      await db.query(`insert into ${name} values (1, 1)`);
      const unique = await rejectsWith(
        db.query(`insert into ${name} values (1, 1)`),
        'DB_UNIQUE_VIOLATION',
      );
      assert.equal(unique.sqlState, '23505');
      assert.equal(unique.constraint, `${name}_pkey`);
      assert.equal(unique.table, name);
      assert.equal(unique.retryable, false);
      await rejectsWith(db.query(`insert into ${name} values (2, null)`), 'DB_NOT_NULL_VIOLATION');
      await rejectsWith(db.query(`insert into ${name} values (3, -1)`), 'DB_CHECK_VIOLATION');
      await rejectsWith(db.query(`select * from no_such_table_here`), 'DB_SQL_ERROR');
      // More values than parameters: a protocol violation (08P01), the caller's mistake.
      const extra = await rejectsWith(db.query(`select $1::int as v`, [1, 2]), 'DB_SQL_ERROR');
      assert.equal(extra.retryable, false);
      await rejectsWith(db.query(`select $1::int as v`, ['not a number']), 'DB_INVALID_INPUT');
      await rejectsWith(db.query(`select 2147483647::int4 + 1`), 'DB_INVALID_INPUT');
    });

    t.it(
      'a statement run before its table changed shape runs again with the new columns',
      async () => {
        const name = table();
        await db.exec(`create table ${name} (id int)`);
        await db.query(`insert into ${name} values (1)`);
        const text = `select * from ${name} where id = $1`;
        // Run more than once: both engines keep the statement prepared after its first use.
        for (let i = 0; i < 3; i++) {
          assert.deepEqual((await db.query(text, [1])).rows, [{ id: 1 }]);
        }
        await db.exec(`alter table ${name} add column v text default 'x'`);
        assert.deepEqual((await db.query(text, [1])).rows, [{ id: 1, v: 'x' }]);
      },
    );

    t.it('copyFrom stores every kind of value exactly as given', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key, t text, big int8, f float8,
        b boolean, ts timestamptz, j jsonb, plain json)`);
      const tricky = 'tab\there, new\nline, cr\r, back\\slash, \\N, \\., emoji \u{1F600}, é';
      const doc = { s: tricky, q: 'say "hi"', n: [1, 2.5, null], nested: { ok: true } };
      const at = new Date('2024-05-06T07:08:09.123Z');
      const loaded = await db.copyFrom(
        name,
        ['id', 't', 'big', 'f', 'b', 'ts', 'j', 'plain'],
        [
          [1, tricky, 9007199254740993n, 1.25, true, at, doc, [tricky]],
          // A string is the column's text form: for json/jsonb, JSON text.
          [2, '', 0, -0.5, false, null, '"a string"', null],
          [3, null, undefined, Number.NaN, null, undefined, null, { a: 1 }],
          [4, '\\N', -1, Number.POSITIVE_INFINITY, true, at, [], 42],
        ],
      );
      assert.equal(loaded, 4);
      const { rows } = await db.query<Record<string, unknown>>(`select * from ${name} order by id`);
      assert.deepEqual(rows[0], {
        id: 1,
        t: tricky,
        big: 9007199254740993n,
        f: 1.25,
        b: true,
        ts: at,
        j: doc,
        plain: [tricky],
      });
      assert.deepEqual(rows[1], {
        id: 2,
        t: '',
        big: 0,
        f: -0.5,
        b: false,
        ts: null,
        j: 'a string',
        plain: null,
      });
      assert.equal(rows[2]?.t, null, 'null is NULL, not the text "null"');
      assert.equal(rows[2]?.big, null);
      assert.ok(Number.isNaN(rows[2]?.f));
      assert.equal(rows[2]?.j, null);
      assert.deepEqual(rows[2]?.plain, { a: 1 });
      assert.equal(rows[3]?.t, '\\N', 'the text \\N is not NULL');
      assert.equal(rows[3]?.f, Number.POSITIVE_INFINITY);
      assert.deepEqual(rows[3]?.j, []);
      assert.equal(rows[3]?.plain, 42);
      assert.equal(await db.copyFrom(name, ['id'], []), 0);
    });

    t.it('copyFrom loads all rows or none, and the handle works on afterwards', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key, v text not null)`);
      await db.copyFrom(name, ['id', 'v'], [[1, 'a']]);
      const inBatch = await rejectsWith(
        db.copyFrom(
          name,
          ['id', 'v'],
          [
            [2, 'b'],
            [3, 'c'],
            [2, 'again'],
          ],
        ),
        'DB_UNIQUE_VIOLATION',
      );
      assert.equal(inBatch.constraint, `${name}_pkey`);
      await rejectsWith(
        db.copyFrom(
          name,
          ['id', 'v'],
          [
            [4, 'd'],
            [1, 'a'],
          ],
        ),
        'DB_UNIQUE_VIOLATION',
      );
      await rejectsWith(db.copyFrom(name, ['id', 'v'], [[5, null]]), 'DB_NOT_NULL_VIOLATION');
      await rejectsWith(db.copyFrom(name, ['id', 'v'], [['six', 'f']]), 'DB_INVALID_INPUT');
      assert.deepEqual(await idsIn(name), [1]);
    });

    t.it('copyFrom in a transaction commits and rolls back with it', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int primary key)`);
      await db.transaction(async tx => {
        assert.equal(await tx.copyFrom(name, ['id'], [[1], [2]]), 2);
        await tx.query(`insert into ${name} values (3)`);
      });
      const failure = new Error('changed my mind');
      await assert.rejects(
        db.transaction(async tx => {
          await tx.copyFrom(name, ['id'], [[4], [5]]);
          throw failure;
        }),
        failure,
      );
      assert.deepEqual(await idsIn(name), [1, 2, 3]);
    });

    t.it('copyFrom refuses bad names and unstorable values before sending anything', async () => {
      const name = table();
      await db.exec(`create table ${name} (id int, v text, j jsonb)`);
      const cols = ['id', 'v', 'j'];
      await rejectsWith(
        db.copyFrom(`${name}; drop table x`, cols, [[1, 'a', null]]),
        'DB_SQL_ERROR',
      );
      await rejectsWith(db.copyFrom('a.b.c', cols, [[1, 'a', null]]), 'DB_SQL_ERROR');
      await rejectsWith(db.copyFrom(name, ['id', 'V'], [[1, 'a']]), 'DB_SQL_ERROR');
      await rejectsWith(db.copyFrom(name, [], []), 'DB_SQL_ERROR');
      await rejectsWith(db.copyFrom(name, cols, [[1, 'a']]), 'DB_INVALID_INPUT');
      await rejectsWith(db.copyFrom(name, cols, [[1, 'nul\u0000', null]]), 'DB_INVALID_INPUT');
      await rejectsWith(db.copyFrom(name, cols, [[1, 'lone \ud800', null]]), 'DB_INVALID_INPUT');
      await rejectsWith(db.copyFrom(name, cols, [[1, 'a', () => 1]]), 'DB_INVALID_INPUT');
      await rejectsWith(
        db.copyFrom(name, cols, [[1, 'a', Symbol('s') as unknown as string]]),
        'DB_INVALID_INPUT',
      );
      // JSON that jsonb cannot hold (NUL in a string) is the server's to refuse.
      await rejectsWith(db.copyFrom(name, cols, [[1, 'a', { s: '\u0000' }]]), 'DB_INVALID_INPUT');
      const { rows } = await db.query<{ c: number }>(`select count(*)::int as c from ${name}`);
      assert.equal(rows[0]?.c, 0);
    });

    t.it('a closed handle fails with DB_CLOSED; close is idempotent', async () => {
      const other = await options.open();
      await other.query('select 1');
      await other.close();
      await other.close();
      assert.equal(other.closed, true);
      await rejectsWith(other.query('select 1'), 'DB_CLOSED');
      await rejectsWith(other.exec('select 1'), 'DB_CLOSED');
      await rejectsWith(other.copyFrom('t', ['id'], [[1]]), 'DB_CLOSED');
      await rejectsWith(
        other.transaction(() => Promise.resolve(1)),
        'DB_CLOSED',
      );
    });

    t.describe('migrate', () => {
      const migrations = (schema: string): Migration[] => [
        { id: '001-items', sql: `create table ${schema}.items (id int primary key, name text)` },
        {
          id: '002-index',
          sql: `create index items_name on ${schema}.items (name); insert into ${schema}.items values (1, 'seed');`,
        },
      ];

      t.it('applies each migration once and records it', async () => {
        const schema = `mig_${++n}`;
        const first = await migrate(db, {
          migrations: migrations(schema),
          table: `${schema}.migrations`,
        });
        assert.deepEqual(first, { applied: ['001-items', '002-index'], skipped: [] });
        const second = await migrate(db, {
          migrations: migrations(schema),
          table: `${schema}.migrations`,
        });
        assert.deepEqual(second, { applied: [], skipped: ['001-items', '002-index'] });
        const more = [
          ...migrations(schema),
          { id: '003-col', sql: `alter table ${schema}.items add column price int` },
        ];
        const third = await migrate(db, { migrations: more, table: `${schema}.migrations` });
        assert.deepEqual(third.applied, ['003-col']);
        const { rows } = await db.query<{ id: string }>(
          `select id from ${schema}.migrations order by id`,
        );
        assert.deepEqual(
          rows.map(r => r.id),
          ['001-items', '002-index', '003-col'],
        );
      });

      t.it('refuses an applied migration whose SQL changed', async () => {
        const schema = `mig_${++n}`;
        const table = `${schema}.migrations`;
        await migrate(db, { migrations: migrations(schema), table });
        const edited = migrations(schema).map(m =>
          m.id === '001-items' ? { ...m, sql: `${m.sql} -- edited` } : m,
        );
        await rejectsWith(migrate(db, { migrations: edited, table }), 'DB_MIGRATION_CHANGED');
      });

      t.it('a failing migration rolls back every migration of the run', async () => {
        const schema = `mig_${++n}`;
        const table = `${schema}.migrations`;
        const broken = [...migrations(schema), { id: '003-broken', sql: 'select * from nowhere' }];
        await rejectsWith(migrate(db, { migrations: broken, table }), 'DB_SQL_ERROR');
        const { rows } = await db.query(
          `select 1 from information_schema.tables where table_schema = $1`,
          [schema],
        );
        assert.equal(rows.length, 0);
        const ok = await migrate(db, { migrations: migrations(schema), table });
        assert.deepEqual(ok.applied, ['001-items', '002-index']);
      });

      t.it('concurrent runs apply each migration exactly once', async () => {
        const schema = `mig_${++n}`;
        const table = `${schema}.migrations`;
        const runs = await Promise.all(
          [1, 2, 3].map(() => migrate(db, { migrations: migrations(schema), table })),
        );
        const applied = runs.flatMap(r => r.applied).sort();
        assert.deepEqual(applied, ['001-items', '002-index']);
        const { rows } = await db.query<{ c: number }>(
          `select count(*)::int as c from ${schema}.items`,
        );
        assert.equal(rows[0]?.c, 1);
      });

      t.it('validates its options', async () => {
        await assert.rejects(
          migrate(db, { migrations: [{ id: 'a', sql: 'select 1' }], table: 'Bad-Name' }),
          /table must be a lower-case identifier/,
        );
        await assert.rejects(
          migrate(db, {
            migrations: [
              { id: 'a', sql: 'select 1' },
              { id: 'a', sql: 'select 2' },
            ],
          }),
          /two migrations have the id "a"/,
        );
      });
    });
  });
}
