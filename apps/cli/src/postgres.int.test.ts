// The CLI against real PostgreSQL by URL, in a schema of its own (--schema), dropped afterwards.
import type { QueueBackend } from '@bulwark/messaging';
import { openDatabase, postgresQueueBackend, type SqlDatabase } from '@bulwark/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeIo, type CliIo } from './io.js';
import { run } from './run.js';

const url = process.env.DATABASE_URL;
if (url === undefined) {
  console.warn(
    'postgres.int.test.ts skipped: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test',
  );
}
const schema = `bw_cli_${process.pid}_${Date.now().toString(36)}`;

describe.skipIf(url === undefined)('bulwark dlq on PostgreSQL', () => {
  let db: SqlDatabase;
  let backend: QueueBackend;
  let out = '';
  let err = '';
  const io: CliIo = {
    ...nodeIo(),
    stdout: text => void (out += text),
    stderr: text => void (err += text),
    env: { BULWARK_QUEUE_URL: url ?? '', USER: 'ana' },
  };
  const cli = async (...argv: string[]) => {
    out = '';
    err = '';
    return run([...argv, '--schema', schema], io);
  };

  beforeAll(async () => {
    db = await openDatabase({ url: url! });
    backend = await postgresQueueBackend({ db, schema });
    const now = Date.now();
    for (const [i, queue] of ['emails', 'sms'].entries()) {
      await backend.enqueue([
        {
          id: `dl-${i + 1}`,
          queue,
          type: `${queue}.send`,
          payload: { n: i + 1 },
          headers: {},
          availableAt: now + i,
          firstSeenAt: now + i,
        },
      ]);
      const { deliveries } = await backend.fetch({ queue, limit: 1, leaseMs: 5_000, now: now + i });
      const error = { code: 'BOOM', message: `failure ${i + 1}` };
      await backend.settle(
        deliveries[0]!.lease,
        { kind: 'dead', reason: 'failed', error },
        now + i,
      );
    }
  }, 30_000);

  afterAll(async () => {
    await db?.exec(`drop schema if exists ${schema} cascade`);
    await db?.close();
  });

  it('lists, replays and purges by postgres:// URL', async () => {
    expect(await cli('dlq', 'summary', '--json')).toBe(0);
    expect(err).toBe('');
    expect(JSON.parse(out)).toEqual({ total: 2, byQueue: { emails: 1, sms: 1 } });

    expect(await cli('dlq', 'replay', '--queue', 'emails')).toBe(0);
    expect(out).toMatch(/^replayed 1 of 1 matching dead letters$/m);
    expect(await cli('dlq', 'purge', '--id', 'dl-2', '--yes', '--json')).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ dryRun: false, count: 1, ids: ['dl-2'] });

    expect(await backend.listDeadLetters({}, { limit: 10 })).toEqual([]);
    expect((await backend.stats('emails', Date.now())).ready).toBe(1);
    expect((await backend.listAudit({})).map(e => [e.action, e.actor])).toEqual([
      ['purge', 'ana'],
      ['replay', 'ana'],
    ]);
  }, 30_000);
});
