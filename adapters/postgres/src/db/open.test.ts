import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from './open.js';

describe('openDatabase', () => {
  it('creates the PGlite data folder on first start and keeps the data for the next', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bulwark-pglite-'));
    const dataDir = join(root, 'nested', 'db');
    try {
      const first = await openDatabase({ dataDir });
      expect(first.kind).toBe('pglite');
      await first.exec('create table kept (v int); insert into kept values (41);');
      await first.close();
      expect((await stat(dataDir)).isDirectory()).toBe(true);

      const second = await openDatabase({ dataDir });
      const { rows } = await second.query<{ v: number }>('select v + 1 as v from kept');
      expect(rows).toEqual([{ v: 42 }]);
      // Real files: new WAL segments are zero-filled as PostgreSQL does by default.
      const walInit = await second.query<{ wal_init_zero: string }>('show wal_init_zero');
      expect(walInit.rows).toEqual([{ wal_init_zero: 'on' }]);
      await second.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('in memory, new WAL segments are not zero-filled (no disk to pre-allocate)', async () => {
    const db = await openDatabase();
    try {
      const { rows } = await db.query<{ wal_init_zero: string }>('show wal_init_zero');
      expect(rows).toEqual([{ wal_init_zero: 'off' }]);
    } finally {
      await db.close();
    }
  });

  it('uses PostgreSQL for a URL without connecting until the first query', async () => {
    const db = await openDatabase({ url: 'postgres://nobody@127.0.0.1:1/none' });
    expect(db.kind).toBe('postgres');
    await db.close();
  });

  it('reports a refused connection as DB_UNAVAILABLE, retryable', async () => {
    // Port 1 on loopback: nothing listens, the kernel refuses at once.
    const db = await openDatabase({ url: 'postgres://nobody@127.0.0.1:1/none' });
    try {
      await expect(db.query('select 1')).rejects.toMatchObject({
        code: 'DB_UNAVAILABLE',
        retryable: true,
      });
      await expect(db.transaction(async () => 1)).rejects.toMatchObject({
        code: 'DB_UNAVAILABLE',
      });
    } finally {
      await db.close();
    }
  });

  it('validates options eagerly with messages that name the fix', async () => {
    await expect(openDatabase({ url: 'mysql://x' })).rejects.toThrow(/postgres:\/\/ or postgresql/);
    await expect(openDatabase({ url: 'postgres://x/y', dataDir: '/tmp/x' })).rejects.toThrow(
      /either url .* or dataDir/,
    );
    await expect(openDatabase({ maxConnections: 5 })).rejects.toThrow(
      /maxConnections applies to PostgreSQL only/,
    );
    await expect(openDatabase({ url: 'postgres://x/y', maxConnections: 0 })).rejects.toThrow(
      /maxConnections must be an integer >= 1/,
    );
    await expect(openDatabase({ url: 'postgres://x/y', connectTimeoutMs: -1 })).rejects.toThrow(
      /connectTimeoutMs must be a finite number > 0/,
    );
    await expect(
      openDatabase({ dataDirectory: 'x' } as unknown as Parameters<typeof openDatabase>[0]),
    ).rejects.toThrow(/unknown option "dataDirectory"/);
    await expect(openDatabase({ dataDir: '' })).rejects.toThrow(/dataDir must be a folder/);
  });
});
