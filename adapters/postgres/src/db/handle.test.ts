import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlDatabaseContract } from './contract.js';
import { openDatabase } from './open.js';

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
});
