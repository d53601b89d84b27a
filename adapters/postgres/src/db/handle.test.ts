import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlDatabaseContract } from './contract.js';
import { openDatabase } from './open.js';
import { MAX_PGLITE_PREPARED } from './pglite-prepared.js';

sqlDatabaseContract(
  { describe, it, beforeAll, afterAll },
  {
    name: 'PGlite (in memory)',
    open: () => openDatabase(),
  },
);

describe('PGlite specifics', () => {
  it('refuses the handle inside its own transaction instead of waiting forever', async () => {
    const db = await openDatabase();
    try {
      await expect(db.transaction(() => db.query('select 1'))).rejects.toMatchObject({
        code: 'DB_NESTED_QUERY',
      });
      // The transaction ended: the handle works again.
      await expect(db.query('select 1 as one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    } finally {
      await db.close();
    }
  });

  it('a prepared statement dropped by DEALLOCATE ALL is prepared again', async () => {
    const db = await openDatabase();
    try {
      const text = 'select $1::int + 1 as n';
      expect((await db.query(text, [1])).rows).toEqual([{ n: 2 }]);
      await db.exec('deallocate all');
      expect((await db.query(text, [2])).rows).toEqual([{ n: 3 }]);
    } finally {
      await db.close();
    }
  });

  it('statement texts beyond the prepared-statement cache run unprepared, with the same results', async () => {
    const db = await openDatabase();
    try {
      for (let i = 0; i < MAX_PGLITE_PREPARED + 20; i++) {
        const { rows } = await db.query<{ n: number }>(`select $1::int + ${i} as n`, [1]);
        expect(rows).toEqual([{ n: 1 + i }]);
      }
      // A prepared one and an unprepared one still fail the same way.
      await expect(db.query('select $1::int as v', ['x'])).rejects.toMatchObject({
        code: 'DB_INVALID_INPUT',
      });
      await expect(
        db.query(`select $1::int + ${MAX_PGLITE_PREPARED + 100} as v`, ['x']),
      ).rejects.toMatchObject({ code: 'DB_INVALID_INPUT' });
    } finally {
      await db.close();
    }
  });
});
