// The CLI against a real PGlite database in a temp folder: the same path `bulwark dlq --url
// ./data` takes, plus one run of the built executable in a subprocess.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { QueueBackend } from '@bulwark/messaging';
import { openDatabase, postgresQueueBackend } from '@bulwark/postgres';
import { TestClock } from '@bulwark/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeIo, type CliIo } from './io.js';
import { run } from './run.js';

let dir: string;
let out = '';
let err = '';

const io: CliIo = {
  ...nodeIo(),
  stdout: text => void (out += text),
  stderr: text => void (err += text),
  env: { USER: 'ana' },
};

async function cli(...argv: string[]): Promise<number> {
  out = '';
  err = '';
  return run(argv, io);
}

/** Opens the folder, runs `f` against the backend, closes (PGlite allows one opener at a time). */
async function withBackend<T>(f: (backend: QueueBackend) => Promise<T>): Promise<T> {
  const db = await openDatabase({ dataDir: dir });
  try {
    return await f(await postgresQueueBackend({ db }));
  } finally {
    await db.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), `bulwark-cli-${process.pid}-`));
  const clock = new TestClock();
  await withBackend(async backend => {
    for (const [i, queue] of ['emails', 'emails', 'sms'].entries()) {
      await clock.advance(1_000);
      const now = clock.wallNow();
      await backend.enqueue([
        {
          id: `dl-${i + 1}`,
          queue,
          type: `${queue}.send`,
          payload: { n: i + 1 },
          headers: {},
          idempotencyKey: `key-${i + 1}`,
          availableAt: now,
          firstSeenAt: now,
        },
      ]);
      const { deliveries } = await backend.fetch({ queue, limit: 1, leaseMs: 5_000, now });
      const error = { code: 'BOOM', message: `failure ${i + 1}` };
      await backend.settle(deliveries[0]!.lease, { kind: 'dead', reason: 'failed', error }, now);
    }
  });
}, 60_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('bulwark dlq on PGlite', () => {
  it('lists, replays with an edited payload and purges; the folder keeps the result', async () => {
    expect(await cli('dlq', 'list', '--url', dir, '--json')).toBe(0);
    expect(err).toBe('');
    const page = JSON.parse(out) as { items: { id: string; sourceQueue: string }[] };
    expect(page.items.map(l => [l.id, l.sourceQueue])).toEqual([
      ['dl-1', 'emails'],
      ['dl-2', 'emails'],
      ['dl-3', 'sms'],
    ]);

    expect(
      await cli('dlq', 'replay', '--url', `pglite:${dir}`, '--id', 'dl-2', '--payload', '{"n":20}'),
    ).toBe(0);
    expect(out).toMatch(/^replayed 1 of 1 matching dead letters$/m);

    expect(await cli('dlq', 'purge', '--url', dir, '--queue', 'sms', '--yes')).toBe(0);
    expect(out).toMatch(/^purged 1 dead letters$/m);

    await withBackend(async backend => {
      const dead = await backend.listDeadLetters({}, { limit: 10 });
      expect(dead.map(l => l.id)).toEqual(['dl-1']);
      const { deliveries } = await backend.fetch({
        queue: 'emails',
        limit: 10,
        leaseMs: 1_000,
        now: Date.UTC(2030, 0, 1),
      });
      expect(deliveries.map(d => d.message)).toEqual([
        expect.objectContaining({ payload: { n: 20 }, idempotencyKey: 'key-2', attempt: 1 }),
      ]);
      const audit = await backend.listAudit({});
      expect(audit.map(e => [e.action, e.actor, e.count])).toEqual([
        ['purge', 'ana', 1],
        ['replay', 'ana', 1],
      ]);
    });
  }, 60_000);

  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  const built = existsSync(main);
  if (!built) console.warn(`skipping the subprocess test: run \`npx tsc -b\` to build ${main}`);

  it.skipIf(!built)(
    'runs as the built bulwark executable',
    async () => {
      const exec = promisify(execFile);
      const summary = await exec(process.execPath, [main, 'dlq', 'summary', '--json'], {
        env: { ...process.env, BULWARK_QUEUE_URL: dir },
      });
      expect(JSON.parse(summary.stdout)).toEqual({ total: 1, byQueue: { emails: 1 } });

      const usage = await exec(process.execPath, [
        main,
        'dlq',
        'purge',
        '--url',
        dir,
        '--queue',
        'emails',
      ]).catch((e: unknown) => e as { code: number; stdout: string; stderr: string });
      expect(usage).toMatchObject({ code: 2, stdout: '' });
      expect(usage.stderr).toContain('add --yes to confirm');
    },
    60_000,
  );
});
