import { memoryQueueBackend, type QueueBackend } from '@bulwark/messaging';
import { flushMicrotasks, TestClock } from '@bulwark/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../io.js';
import { run } from '../run.js';

interface Seed {
  queue: string;
  type: string;
  payload: unknown;
  code: string;
  message: string;
  idempotencyKey?: string;
}

const SEEDS: Seed[] = [
  {
    queue: 'emails',
    type: 'order.placed',
    payload: { orderId: 1, to: 'ana@example.com' },
    code: 'SMTP_550',
    message: '550 mailbox unavailable',
    idempotencyKey: 'order-1',
  },
  {
    queue: 'emails',
    type: 'order.placed',
    payload: { orderId: 2, to: 'bo@example.com' },
    code: 'TIMEOUT',
    message: 'operation timed out after 10000 ms',
  },
  {
    queue: 'sms',
    type: 'otp.sent',
    payload: { phone: '+100' },
    code: 'INVALID_NUMBER',
    message: 'number not reachable',
  },
];

/** Dead-letters each seed through the port, one virtual second apart. */
async function seed(backend: QueueBackend, clock: TestClock): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, s] of SEEDS.entries()) {
    await clock.advance(1_000);
    const now = clock.wallNow();
    const id = `dl-${i + 1}`;
    await backend.enqueue([
      {
        id,
        queue: s.queue,
        type: s.type,
        payload: s.payload,
        headers: { 'x-trace': `t${i}` },
        ...(s.idempotencyKey === undefined ? {} : { idempotencyKey: s.idempotencyKey }),
        availableAt: now,
        firstSeenAt: now,
      },
    ]);
    const { deliveries } = await backend.fetch({ queue: s.queue, limit: 1, leaseMs: 5_000, now });
    const error = { code: s.code, message: s.message };
    await backend.settle(deliveries[0]!.lease, { kind: 'dead', reason: 'failed', error }, now);
    ids.push(id);
  }
  return ids;
}

let clock: TestClock;
let backend: QueueBackend;
let ids: string[];
let out: string;
let err: string;
let opened: { url: string; schema?: string }[];
let closed: number;
let files: Record<string, string>;

function io(
  env: Record<string, string> = { BULWARK_QUEUE_URL: 'pglite:./unused', USER: 'ana' },
): CliIo {
  return {
    stdout: text => void (out += text),
    stderr: text => void (err += text),
    env,
    readFile: path => {
      const content = files[path];
      return content === undefined
        ? Promise.reject(new Error(`ENOENT: no such file, open '${path}'`))
        : Promise.resolve(content);
    },
    openBackend: (url, options) => {
      opened.push({ url, ...options });
      return Promise.resolve({ backend, close: () => Promise.resolve(void closed++) });
    },
    clock,
  };
}

async function cli(...argv: string[]): Promise<number> {
  out = '';
  err = '';
  return run(argv, io());
}

async function dlqJson<T>(...argv: string[]): Promise<T> {
  const code = await cli('dlq', ...argv, '--json');
  expect(err).toBe('');
  expect(code).toBe(0);
  return JSON.parse(out) as T;
}

async function deadIds(): Promise<string[]> {
  return (await backend.listDeadLetters({}, { limit: 100 })).map(l => l.id);
}

beforeEach(async () => {
  clock = new TestClock();
  backend = memoryQueueBackend();
  ids = await seed(backend, clock);
  opened = [];
  closed = 0;
  files = {};
});

describe('help and usage', () => {
  it('prints help for bulwark, bulwark dlq and each command, opening nothing', async () => {
    expect(await cli('--help')).toBe(0);
    expect(out).toContain('bulwark dlq <command>');
    expect(await cli('dlq', '--help')).toBe(0);
    for (const name of ['list', 'show', 'summary', 'replay', 'purge', 'audit']) {
      expect(out).toContain(name);
    }
    expect(await cli('dlq', 'purge', '--help')).toBe(0);
    expect(out).toContain('--yes');
    expect(opened).toEqual([]);
  });

  it.each([
    [[], 'bulwark dlq <command>'],
    [['deploy'], 'unknown command "deploy"'],
    [['dlq'], 'Usage: bulwark dlq'],
    [['dlq', 'requeue'], 'unknown command "dlq requeue"'],
    [['dlq', 'list', '--queu', 'emails'], "Unknown option '--queu'; see bulwark dlq list --help"],
    [['dlq', 'list', '--limit', '0'], '--limit must be a whole number from 1 to 1000'],
    [['dlq', 'list', '--limit', '5000'], '--limit must be a whole number from 1 to 1000'],
    [['dlq', 'list', '--from', 'yesterday'], '--from must be an ISO 8601 time'],
    [['dlq', 'list', '--after', 'garbage!'], '--after must be the "next" value'],
    [['dlq', 'list', 'emails'], 'takes no arguments'],
    [['dlq', 'show'], 'exactly one dead letter id'],
    [['dlq', 'replay', '--rate', 'fast', '--all'], '--rate must be a number > 0'],
    [['dlq', 'replay'], 'replay needs a filter'],
    [['dlq', 'replay', '--id', 'dl-1', '--payload', '{bad'], '--payload must be JSON'],
    [['dlq', 'replay', '--id', 'dl-1', '--payload', '@missing.json'], 'cannot read missing.json'],
    [['dlq', 'purge', '--queue', 'emails'], 'add --yes to confirm'],
    [['dlq', 'purge', '--yes'], 'purge needs a filter'],
    [['dlq', 'audit', '--action', 'delete'], '--action must be replay or purge'],
    [['dlq', 'list', '--url', 'mysql://db/x'], 'no queue backend for mysql:// URLs'],
    [['dlq', 'list', '--url', 'redis://r', '--schema', 'q'], '--schema applies to PostgreSQL'],
    [['dlq', 'list', '--url', 'postgres://db/x', '--prefix', 'q'], '--prefix applies to redis://'],
  ])('bulwark %j exits 2 with a message on stderr', async (argv, message) => {
    expect(await cli(...argv)).toBe(2);
    expect(err).toContain(message);
    expect(out).toBe('');
    expect(opened).toEqual([]);
    expect(await deadIds()).toEqual(ids);
  });

  it('needs a URL from --url or BULWARK_QUEUE_URL', async () => {
    out = '';
    err = '';
    expect(await run(['dlq', 'list'], io({}))).toBe(2);
    expect(err).toContain('pass --url or set BULWARK_QUEUE_URL');
    expect(await run(['dlq', 'list', '--url', 'postgres://db/x', '--schema', 'q'], io({}))).toBe(0);
    expect(await run(['dlq', 'list', '--url', 'nats://n:4222', '--prefix', 'shop'], io({}))).toBe(
      0,
    );
    expect(opened).toEqual([
      { url: 'postgres://db/x', schema: 'q' },
      { url: 'nats://n:4222', prefix: 'shop' },
    ]);
    expect(closed).toBe(2);
  });
});

describe('list, show, summary', () => {
  it('lists as JSON with the same filters as the library', async () => {
    type Page = { items: { id: string }[]; next?: string };
    expect((await dlqJson<Page>('list')).items.map(l => l.id)).toEqual(ids);
    expect((await dlqJson<Page>('list', '--queue', 'sms')).items.map(l => l.id)).toEqual([ids[2]]);
    expect((await dlqJson<Page>('list', '--error-code', 'TIMEOUT')).items.map(l => l.id)).toEqual([
      ids[1],
    ]);
    expect((await dlqJson<Page>('list', '--text', 'MAILBOX')).items.map(l => l.id)).toEqual([
      ids[0],
    ]);
    expect(
      (await dlqJson<Page>('list', '--id', 'dl-1', '--id', 'dl-3')).items.map(l => l.id),
    ).toEqual([ids[0], ids[2]]);
    const first = (await backend.getDeadLetter(ids[0]!))!.deadAt;
    const from = new Date(first + 1_000).toISOString();
    expect(
      (await dlqJson<Page>('list', '--from', from, '--to', String(first + 2_000))).items.map(
        l => l.id,
      ),
    ).toEqual([ids[1]]);
    expect(closed).toBe(6);
  });

  it('pages with --limit and the printed cursor', async () => {
    type Page = { items: { id: string }[]; next?: string };
    const one = await dlqJson<Page>('list', '--limit', '2');
    expect(one.items.map(l => l.id)).toEqual(ids.slice(0, 2));
    const two = await dlqJson<Page>('list', '--limit', '2', '--after', one.next!);
    expect(two.items.map(l => l.id)).toEqual(ids.slice(2));
    expect(two.next).toBeUndefined();

    expect(await cli('dlq', 'list', '--limit', '2')).toBe(0);
    expect(out).toContain(`more: add --after ${one.next}`);
  });

  it('prints an aligned table for people', async () => {
    expect(await cli('dlq', 'list')).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^DEAD AT\s+ID\s+QUEUE\s+TYPE\s+ERROR\s+ATTEMPTS\s+MESSAGE$/);
    // Every column starts at the same offset on every line.
    for (const header of ['ID', 'QUEUE', 'TYPE', 'ERROR', 'ATTEMPTS', 'MESSAGE']) {
      const at = lines[0]!.indexOf(` ${header}`) + 1;
      for (const line of lines.slice(1)) {
        expect(line[at - 1]).toBe(' ');
        expect(line[at]).not.toBe(' ');
      }
    }
    expect(lines[1]).toContain('550 mailbox unavailable');
    expect(lines[3]).toMatch(/dl-3\s+sms\s+otp\.sent\s+INVALID_NUMBER\s+1\s+number not reachable$/);
  });

  it('shows one dead letter with its history and payload', async () => {
    expect(await cli('dlq', 'show', 'dl-1')).toBe(0);
    expect(out).toMatch(/^id\s+dl-1$/m);
    expect(out).toMatch(/^idempotency key\s+order-1$/m);
    expect(out).toContain('SMTP_550: 550 mailbox unavailable');
    expect(out).toMatch(/x-trace\s+t0/);
    expect(out).toContain('"to": "ana@example.com"');
    const letter = await dlqJson<{ id: string; sourceQueue: string }>('show', 'dl-2');
    expect(letter).toMatchObject({ id: 'dl-2', sourceQueue: 'emails' });
  });

  it('exits 1 for an unknown dead letter', async () => {
    expect(await cli('dlq', 'show', 'nope')).toBe(1);
    expect(err).toContain('no dead letter with id nope');
    expect(out).toBe('');
    expect(closed).toBe(1);
  });

  it('summarizes by queue', async () => {
    expect(await dlqJson('summary')).toEqual({ total: 3, byQueue: { emails: 2, sms: 1 } });
    expect(await cli('dlq', 'summary', '--queue', 'emails')).toBe(0);
    expect(out).toBe('QUEUE   COUNT\nemails  2\ntotal 2\n');
  });
});

describe('replay', () => {
  it('previews with --dry-run and moves nothing', async () => {
    const result = await dlqJson('replay', '--queue', 'emails', '--dry-run');
    expect(result).toEqual({
      dryRun: true,
      matched: 2,
      byQueue: { emails: 2 },
      ids: ids.slice(0, 2),
      messageIds: [],
      skipped: 0,
    });
    expect(await deadIds()).toEqual(ids);
    expect(await cli('dlq', 'replay', '--queue', 'emails', '--dry-run')).toBe(0);
    expect(out).toContain('dry run: would replay 2 of 2 matching dead letters');
  });

  it('replays matching dead letters and records the actor ($USER, or --actor)', async () => {
    expect(await cli('dlq', 'replay', '--error-code', 'SMTP_550')).toBe(0);
    expect(out).toMatch(/^replayed 1 of 1 matching dead letters$/m);
    expect(await deadIds()).toEqual(ids.slice(1));
    const { deliveries } = await backend.fetch({
      queue: 'emails',
      limit: 5,
      leaseMs: 1_000,
      now: clock.wallNow(),
    });
    expect(deliveries.map(d => d.message)).toEqual([
      expect.objectContaining({ idempotencyKey: 'order-1', payload: SEEDS[0]!.payload }),
    ]);
    await cli('dlq', 'replay', '--queue', 'sms', '--actor', 'oncall-bo');
    const audit = await backend.listAudit({});
    expect(audit.map(e => e.actor)).toEqual(['oncall-bo', 'ana']);
  });

  it('replays one with an edited payload, inline or from @file', async () => {
    files['fix.json'] = '{ "phone": "+1000" }';
    expect(await cli('dlq', 'replay', '--id', 'dl-3', '--payload', '@fix.json')).toBe(0);
    expect(await cli('dlq', 'replay', '--id', 'dl-2', '--payload', '{"orderId":2}')).toBe(0);
    const now = clock.wallNow();
    const sms = await backend.fetch({ queue: 'sms', limit: 5, leaseMs: 1_000, now });
    expect(sms.deliveries[0]?.message.payload).toEqual({ phone: '+1000' });
    const emails = await backend.fetch({ queue: 'emails', limit: 5, leaseMs: 1_000, now });
    expect(emails.deliveries[0]?.message).toMatchObject({
      payload: { orderId: 2 },
      idempotencyKey: 'dl-2',
    });
  });

  it('refuses an edited payload for a filter that matches several (exit 2)', async () => {
    expect(await cli('dlq', 'replay', '--queue', 'emails', '--payload', '{}')).toBe(2);
    expect(err).toContain('matches 2');
    expect(await deadIds()).toEqual(ids);
  });

  it('paces --rate on the clock', async () => {
    const start = clock.now();
    let done = false;
    const pending = cli('dlq', 'replay', '--all', '--rate', '2', '--json').then(code => {
      done = true;
      return code;
    });
    for (let i = 0; i < 100 && !done; i++) {
      await flushMicrotasks();
      const next = clock.nextTimerAt();
      if (next !== undefined) await clock.advanceTo(next);
    }
    expect(await pending).toBe(0);
    expect((JSON.parse(out) as { ids: string[] }).ids).toEqual(ids);
    expect(clock.now() - start).toBe(1_000);
  });
});

describe('purge and audit', () => {
  it('previews, then purges with --yes', async () => {
    expect(await dlqJson('purge', '--queue', 'emails', '--dry-run')).toEqual({
      dryRun: true,
      count: 2,
      byQueue: { emails: 2 },
      ids: [],
    });
    expect(await deadIds()).toEqual(ids);
    expect(await cli('dlq', 'purge', '--queue', 'emails', '--yes')).toBe(0);
    expect(out).toBe('purged 2 dead letters\n\nQUEUE   COUNT\nemails  2\n');
    expect(await deadIds()).toEqual([ids[2]]);
    expect(await cli('dlq', 'purge', '--all', '-y')).toBe(0);
    expect(await deadIds()).toEqual([]);
  });

  it('shows the audit log, filtered', async () => {
    await cli('dlq', 'replay', '--all', '--dry-run');
    await clock.advance(1_000);
    await cli('dlq', 'purge', '--queue', 'sms', '--yes', '--actor', 'bo');
    type Audit = { items: { action: string; actor: string; count: number }[] };
    expect((await dlqJson<Audit>('audit')).items).toEqual([
      expect.objectContaining({ action: 'purge', actor: 'bo', count: 1 }),
      expect.objectContaining({ action: 'replay', actor: 'ana', count: 3 }),
    ]);
    expect((await dlqJson<Audit>('audit', '--action', 'replay')).items).toHaveLength(1);
    expect(await cli('dlq', 'audit', '--limit', '1')).toBe(0);
    expect(out).toMatch(/^AT\s+ACTION\s+ACTOR\s+DRY RUN\s+COUNT\s+FILTER\s+NOTE\n/);
    expect(out).toMatch(/purge\s+bo\s+no\s+1\s+queue=sms\n$/);
  });
});
