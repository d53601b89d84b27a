/**
 * The handle's contract on a real PostgreSQL (DATABASE_URL). The suite gets a database of its
 * own, created here with a unique name and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSqlError } from './errors.js';
import { sqlDatabaseContract } from './contract.js';
import { migrate } from './migrate.js';
import { openDatabase } from './open.js';
import type { SqlDatabase } from './types.js';
import { tableVacuum } from './vacuum.js';

const url = process.env.DATABASE_URL;
if (!url) console.warn('handle.int.test.ts skipped: set DATABASE_URL to a PostgreSQL server');

/**
 * A TCP proxy to the server that cuts both sides of a connection at the first message from the
 * client that `cutOn` picks (its type byte and body): a connection lost in the middle of a
 * statement. It reads the client's frames (type byte, int32 length including itself) after the
 * startup message (int32 length, no type byte). Not @bulwark/testing's fault proxy: its faults
 * apply per connection, by chance or by time, and cannot pick a protocol message.
 */
async function cuttingProxy(target: URL): Promise<{
  port: number;
  cutOn: ((type: string, body: Buffer) => boolean) | undefined;
  cuts: number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const state = {
    port: 0,
    cutOn: undefined as ((type: string, body: Buffer) => boolean) | undefined,
    cuts: 0,
    close: () =>
      new Promise<void>(resolve => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer(client => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    let startup = true;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let forward = 0;
      for (;;) {
        const header = startup ? 4 : 5;
        if (pending.length - forward < header) break;
        const length = pending.readInt32BE(forward + (startup ? 0 : 1));
        const size = startup ? length : length + 1;
        if (pending.length - forward < size) break;
        const type = String.fromCharCode(pending[forward] as number);
        if (!startup && state.cutOn?.(type, pending.subarray(forward + 5, forward + size))) {
          upstream.write(pending.subarray(0, forward));
          state.cuts += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
        forward += size;
        startup = false;
      }
      upstream.write(pending.subarray(0, forward));
      pending = pending.subarray(forward);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  return state;
}

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

  describe('a connection lost in the middle of a statement', () => {
    let proxy: Awaited<ReturnType<typeof cuttingProxy>>;
    let db: SqlDatabase;
    beforeAll(async () => {
      proxy = await cuttingProxy(new URL(dbUrl));
      const viaProxy = new URL(dbUrl);
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      // One connection: the statement after the cut can only run on a new one.
      db = await openDatabase({ url: viaProxy.toString(), maxConnections: 1 });
      await db.exec('create table cut (id int primary key, v text)');
    });
    afterAll(async () => {
      await db?.close();
      await proxy?.close();
    });
    const count = async () =>
      (await db.query<{ n: number }>('select count(*)::int as n from cut')).rows[0]?.n;
    const unavailable = (error: unknown) => {
      expect(isSqlError(error) && error.code).toBe('DB_UNAVAILABLE');
      expect(isSqlError(error) && error.retryable).toBe(true);
    };

    // Before the fix the pg client's 'error' event on the checked-out connection went unheard:
    // an uncaught exception (vitest reports it and fails the run; a service would have exited).
    it('in a COPY: DB_UNAVAILABLE, no row stored, the pool opens a new connection', async () => {
      const rows = Array.from({ length: 500 }, (_, i) => [i, `row ${i}`]);
      proxy.cutOn = type => type === 'd'; // the first CopyData
      const error = await db.copyFrom('cut', ['id', 'v'], rows).then(
        () => undefined,
        e => e,
      );
      proxy.cutOn = undefined;
      expect(proxy.cuts).toBe(1);
      unavailable(error);
      expect(await count()).toBe(0);
      expect(await db.copyFrom('cut', ['id', 'v'], rows)).toBe(500);
      await db.exec('truncate cut');
    });

    it('in a transaction: DB_UNAVAILABLE, nothing committed, the pool opens a new connection', async () => {
      const cuts = proxy.cuts;
      proxy.cutOn = (type, body) => type === 'P' && body.includes('cut here');
      const error = await db
        .transaction(async tx => {
          await tx.query('insert into cut values (1, $1)', ['first']);
          await tx.query('insert into cut values (2, $1) /* cut here */', ['second']);
        })
        .then(
          () => undefined,
          e => e,
        );
      proxy.cutOn = undefined;
      expect(proxy.cuts).toBe(cuts + 1);
      unavailable(error);
      expect(await count()).toBe(0);
    });
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
