import { flushMicrotasks, TestClock } from '@bulwark/testing';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueueBackend } from '../backend.js';
import { memoryQueueBackend } from '../memory-backend.js';
import { REPLAYED_FROM_HEADER } from '../message.js';
import { deadLetterAdmin } from './index.js';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const P = '/admin/dlq';

interface Seed {
  queue: string;
  type: string;
  payload: unknown;
  code: string;
  message: string;
  idempotencyKey?: string;
}

/** Dead-letters each seed through the port, one virtual second apart (distinct `deadAt`). */
async function seed(backend: QueueBackend, clock: TestClock, seeds: Seed[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, s] of seeds.entries()) {
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
    const lease = deliveries[0]?.lease;
    if (lease === undefined) throw new Error('seed: nothing fetched');
    const error = { code: s.code, message: s.message };
    expect(await backend.settle(lease, { kind: 'dead', reason: 'failed', error }, now)).toBe(true);
    ids.push(id);
  }
  return ids;
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

let clock: TestClock;
let backend: QueueBackend;
let app: FastifyInstance;
let ids: string[];

async function build(extra: { maxReplayMs?: number; backend?: QueueBackend } = {}) {
  const server = Fastify();
  await server.register(
    deadLetterAdmin({
      backend: extra.backend ?? backend,
      token: TOKEN,
      actor: 'ops-bot',
      clock,
      ...(extra.maxReplayMs === undefined ? {} : { maxReplayMs: extra.maxReplayMs }),
    }),
    { prefix: P },
  );
  await server.ready();
  return server;
}

beforeEach(async () => {
  clock = new TestClock();
  backend = memoryQueueBackend();
  ids = await seed(backend, clock, SEEDS);
  app = await build();
});

afterEach(async () => {
  await app.close();
});

function get(url: string, headers: Record<string, string> = AUTH) {
  return app.inject({ method: 'GET', url: `${P}${url}`, headers });
}

function post(url: string, body: unknown, headers: Record<string, string> = AUTH) {
  return app.inject({ method: 'POST', url: `${P}${url}`, headers, payload: body as object });
}

function expectProblem(res: LightMyRequestResponse, status: number, type: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<Record<string, unknown>>();
  expect(body).toMatchObject({ status, type });
  expect(typeof body.detail).toBe('string');
  return body;
}

async function deadIds(): Promise<string[]> {
  return (await backend.listDeadLetters({}, { limit: 100 })).map(l => l.id);
}

describe('authentication', () => {
  it('refuses a request without a token with 401 problem+json and no data', async () => {
    const res = await get('/dead-letters', {});
    const body = expectProblem(res, 401, 'urn:bulwark:problem:unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="bulwark-admin"');
    expect(body).not.toHaveProperty('items');
    expect(res.body).not.toContain('order.placed');
  });

  it.each([
    ['a wrong token of the same length', `Bearer ${TOKEN.replace(/.$/, 'X')}`],
    ['a shorter token', 'Bearer short'],
    ['a longer token', `Bearer ${TOKEN}${TOKEN}`],
  ])('refuses %s with invalid_token', async (_name, header) => {
    const res = await get(`/dead-letters/${ids[0]}`, { authorization: header });
    expectProblem(res, 401, 'urn:bulwark:problem:unauthorized');
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(res.body).not.toContain('ana@example.com');
  });

  it('refuses another scheme (Basic) as a missing bearer token', async () => {
    const res = await get('/summary', { authorization: `Basic ${TOKEN}` });
    expectProblem(res, 401, 'urn:bulwark:problem:unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="bulwark-admin"');
  });

  it('checks the token before the body: an unauthorized purge purges nothing', async () => {
    const res = await post('/purge', { filter: {}, all: true }, { authorization: 'Bearer nope' });
    expectProblem(res, 401, 'urn:bulwark:problem:unauthorized');
    expect(await deadIds()).toEqual(ids);
    expect(await backend.listAudit({})).toEqual([]);
  });

  it('accepts the scheme in any case', async () => {
    const res = await get('/summary', { authorization: `bearer ${TOKEN}` });
    expect(res.statusCode).toBe(200);
  });
});

describe('GET /dead-letters', () => {
  it('lists every dead letter in deadAt order with its history', async () => {
    const res = await get('/dead-letters');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ items: { id: string; sourceQueue: string }[]; next?: string }>();
    expect(body.items.map(l => l.id)).toEqual(ids);
    expect(body.next).toBeUndefined();
    expect(body.items[0]).toMatchObject({
      sourceQueue: 'emails',
      reason: 'failed',
      lastError: { code: 'SMTP_550', message: '550 mailbox unavailable' },
      message: { type: 'order.placed', idempotencyKey: 'order-1', headers: { 'x-trace': 't0' } },
      attempts: [{ attempt: 1, code: 'SMTP_550' }],
    });
  });

  it.each([
    ['queue=sms', [2]],
    ['type=order.placed', [0, 1]],
    ['errorCode=TIMEOUT', [1]],
    ['text=MAILBOX', [0]],
    ['text=bo%40example', [1]],
    [`id=dl-1&id=dl-3`, [0, 2]],
    ['queue=emails&errorCode=INVALID_NUMBER', []],
  ])('filters by %s', async (query, expected) => {
    const res = await get(`/dead-letters?${query}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ items: { id: string }[] }>().items.map(l => l.id)).toEqual(
      expected.map(i => ids[i]),
    );
  });

  it('filters by time with ISO 8601 and epoch ms, [from, to)', async () => {
    const first = (await backend.getDeadLetter(ids[0]!))!.deadAt;
    const second = new Date(first + 1_000).toISOString();
    const res = await get(`/dead-letters?from=${encodeURIComponent(second)}&to=${first + 2_000}`);
    expect(res.json<{ items: { id: string }[] }>().items.map(l => l.id)).toEqual([ids[1]]);
  });

  it('pages with limit and the opaque next cursor', async () => {
    const one = await get('/dead-letters?limit=2');
    const page1 = one.json<{ items: { id: string }[]; next: string }>();
    expect(page1.items.map(l => l.id)).toEqual(ids.slice(0, 2));
    expect(typeof page1.next).toBe('string');
    const two = await get(`/dead-letters?limit=2&after=${page1.next}`);
    const page2 = two.json<{ items: { id: string }[]; next?: string }>();
    expect(page2.items.map(l => l.id)).toEqual(ids.slice(2));
    expect(page2.next).toBeUndefined();
  });

  it.each([
    ['error_code=X', 'error_code'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['from=yesterday', 'from'],
    ['to=2026-01-01T10:00', 'to'],
    ['after=not-a-cursor!', 'after'],
    ['queue=a&queue=b', 'queue'],
  ])('answers %s with 400 naming the field', async (query, field) => {
    const body = expectProblem(
      await get(`/dead-letters?${query}`),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(body.errors).toEqual([expect.objectContaining({ field, in: 'querystring' })]);
  });
});

describe('GET /dead-letters/:id and /summary', () => {
  it('shows one dead letter', async () => {
    const res = await get(`/dead-letters/${ids[2]}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: ids[2],
      sourceQueue: 'sms',
      message: { payload: { phone: '+100' } },
    });
  });

  it('answers an unknown id with 404 problem+json', async () => {
    const body = expectProblem(
      await get('/dead-letters/nope'),
      404,
      'urn:bulwark:problem:not-found',
    );
    expect(body.code).toBe('DEAD_LETTER_NOT_FOUND');
  });

  it('summarizes by queue, with the same filters as list', async () => {
    expect((await get('/summary')).json()).toEqual({ total: 3, byQueue: { emails: 2, sms: 1 } });
    expect((await get('/summary?errorCode=TIMEOUT')).json()).toEqual({
      total: 1,
      byQueue: { emails: 1 },
    });
    expectProblem(await get('/summary?limit=3'), 400, 'urn:bulwark:problem:validation');
  });
});

describe('POST /replay', () => {
  it('previews with dryRun: nothing moves, the audit says who looked', async () => {
    const res = await post('/replay', { filter: { queue: 'emails' }, dryRun: true });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      dryRun: true,
      matched: 2,
      byQueue: { emails: 2 },
      ids: ids.slice(0, 2),
      messageIds: [],
      skipped: 0,
    });
    expect(await deadIds()).toEqual(ids);
    const [entry] = await backend.listAudit({});
    expect(entry).toMatchObject({ action: 'replay', dryRun: true, actor: 'ops-bot', count: 2 });
  });

  it('replays the matching dead letters into their queue, keeping the idempotency key', async () => {
    const res = await post('/replay', { filter: { queue: 'emails', errorCode: 'SMTP_550' } });
    expect(res.statusCode).toBe(200);
    const result = res.json<{ ids: string[]; messageIds: string[] }>();
    expect(result.ids).toEqual([ids[0]]);
    expect(await deadIds()).toEqual(ids.slice(1));
    const { deliveries } = await backend.fetch({
      queue: 'emails',
      limit: 10,
      leaseMs: 1_000,
      now: clock.wallNow(),
    });
    expect(deliveries.map(d => d.message)).toEqual([
      expect.objectContaining({
        id: result.messageIds[0],
        idempotencyKey: 'order-1',
        payload: SEEDS[0]!.payload,
        headers: expect.objectContaining({ [REPLAYED_FROM_HEADER]: ids[0] }),
      }),
    ]);
    const [entry] = await backend.listAudit({});
    expect(entry).toMatchObject({
      action: 'replay',
      dryRun: false,
      actor: 'ops-bot',
      ids: [ids[0]],
    });
  });

  it('replays with an edited payload when the filter matches one', async () => {
    const res = await post('/replay', {
      filter: { ids: [ids[1]] },
      payload: { orderId: 2, to: 'bo@example.org' },
    });
    expect(res.statusCode).toBe(200);
    const { deliveries } = await backend.fetch({
      queue: 'emails',
      limit: 10,
      leaseMs: 1_000,
      now: clock.wallNow(),
    });
    // No idempotency key on the original: the replay carries the original id as its key.
    expect(deliveries[0]?.message).toMatchObject({
      payload: { orderId: 2, to: 'bo@example.org' },
      idempotencyKey: ids[1],
    });
    expect((await backend.listAudit({}))[0]?.note).toBe('payload edited');
  });

  it('refuses an edited payload for a filter that matches several', async () => {
    const body = expectProblem(
      await post('/replay', { filter: { queue: 'emails' }, payload: { x: 1 } }),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(body.detail).toContain('matches 2');
    expect(await deadIds()).toEqual(ids);
  });

  it('spaces a rate-limited replay on the clock', async () => {
    const start = clock.now();
    let done = false;
    const pending = post('/replay', { filter: {}, ratePerSecond: 2 }).then(res => {
      done = true;
      return res;
    });
    for (let i = 0; i < 100 && !done; i++) {
      await flushMicrotasks();
      const next = clock.nextTimerAt();
      if (next !== undefined) await clock.advanceTo(next);
    }
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(res.json<{ ids: string[] }>().ids).toEqual(ids);
    // Three messages at 2/s: two gaps of 500 ms.
    expect(clock.now() - start).toBe(1_000);
    expect(await deadIds()).toEqual([]);
  });

  it('refuses a rate-limited replay that would hold the request longer than maxReplayMs', async () => {
    await app.close();
    app = await build({ maxReplayMs: 1_500 });
    const body = expectProblem(
      await post('/replay', { filter: {}, ratePerSecond: 1 }),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(body.errors).toEqual([expect.objectContaining({ field: '/limit', in: 'body' })]);
    expect(String((body.errors as { message: string }[])[0]?.message)).toContain('limit <= 2');
    expect(await deadIds()).toEqual(ids);
    const ok = post('/replay', { filter: {}, ratePerSecond: 1, limit: 2 });
    await clock.runAll();
    for (let i = 0; i < 20; i++) {
      await flushMicrotasks();
      await clock.runAll();
    }
    expect((await ok).json<{ ids: string[] }>().ids).toEqual(ids.slice(0, 2));
  });

  it('stops a rate-limited replay between messages when the client goes away', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const client = new AbortController();
    const request = fetch(`http://127.0.0.1:${address.port}${P}/replay`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ filter: {}, ratePerSecond: 1 }),
      signal: client.signal,
    }).catch((e: unknown) => e);
    // The first message goes at once; then the replay waits a virtual second on the clock.
    // Real sockets are involved, so poll (bounded) until that state is reached.
    for (let i = 0; i < 400 && (await deadIds()).length !== 2; i++) {
      await new Promise(resolve => setTimeout(resolve, 5));
    }
    expect(await deadIds()).toEqual(ids.slice(1));
    client.abort();
    expect(await request).toMatchObject({ name: 'AbortError' });
    for (let i = 0; i < 400 && (await backend.listAudit({})).length === 0; i++) {
      await new Promise(resolve => setTimeout(resolve, 5));
    }
    // The replay was waiting before the second message when the client left: it stops there,
    // and the rest stay dead letters.
    const [entry] = await backend.listAudit({});
    expect(entry).toMatchObject({ action: 'replay', dryRun: false });
    expect(entry!.count).toBe(1);
    await clock.runAll();
    expect(await deadIds()).toEqual(ids.slice(entry!.count));
    expect(entry!.ids).toEqual(ids.slice(0, entry!.count));
  });

  it.each([
    [{}, '/filter'],
    [{ filter: { queue: 1 } }, '/filter/queue'],
    [{ filter: { from: 'last week' } }, '/filter/from'],
    [{ filter: { ids: 'dl-1' } }, '/filter/ids'],
    [{ filter: { queues: 'emails' } }, '/filter/queues'],
    [{ filter: {}, dryRun: 'yes' }, '/dryRun'],
    [{ filter: {}, ratePerSecond: 0 }, '/ratePerSecond'],
    [{ filter: {}, limit: 1.5 }, '/limit'],
    [{ filter: {}, actor: 'mallory' }, '/actor'],
  ])('answers body %j with 400 naming %s', async (payload, field) => {
    const body = expectProblem(
      await post('/replay', payload),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field, in: 'body' })]),
    );
    expect(await deadIds()).toEqual(ids);
  });

  it('answers malformed JSON with 400, text with 400 and unknown media types with 415', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: `${P}/replay`,
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{"filter": ',
    });
    expectProblem(bad, 400, 'urn:bulwark:problem:malformed-body');
    const text = await app.inject({
      method: 'POST',
      url: `${P}/replay`,
      headers: { ...AUTH, 'content-type': 'text/plain' },
      payload: 'filter=all',
    });
    const notJson = expectProblem(text, 400, 'urn:bulwark:problem:validation');
    expect(notJson.errors).toEqual([expect.objectContaining({ field: '', in: 'body' })]);
    const xml = await app.inject({
      method: 'POST',
      url: `${P}/replay`,
      headers: { ...AUTH, 'content-type': 'application/xml' },
      payload: '<filter/>',
    });
    expectProblem(xml, 415, 'urn:bulwark:problem:unsupported-media-type');
    expect(await deadIds()).toEqual(ids);
  });
});

describe('POST /dead-letters/:id/replay', () => {
  it('replays one dead letter with an edited payload', async () => {
    const res = await post(`/dead-letters/${ids[2]}/replay`, {
      payload: { phone: '+1000' },
      toQueue: 'sms-retry',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ dryRun: false, ids: [ids[2]] });
    const { deliveries } = await backend.fetch({
      queue: 'sms-retry',
      limit: 10,
      leaseMs: 1_000,
      now: clock.wallNow(),
    });
    expect(deliveries[0]?.message.payload).toEqual({ phone: '+1000' });
  });

  it('answers an unknown id with 404 and audits nothing', async () => {
    expectProblem(
      await post('/dead-letters/nope/replay', {}),
      404,
      'urn:bulwark:problem:not-found',
    );
    expect(await backend.listAudit({})).toEqual([]);
  });
});

describe('POST /purge and GET /audit', () => {
  it('requires a filter, and all: true for an empty one', async () => {
    const missing = expectProblem(await post('/purge', {}), 400, 'urn:bulwark:problem:validation');
    expect(missing.errors).toEqual([expect.objectContaining({ field: '/filter' })]);
    const everything = expectProblem(
      await post('/purge', { filter: {} }),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(everything.detail).toContain('all: true');
    expect(await deadIds()).toEqual(ids);
  });

  it('previews a purge with dryRun, then purges and records both', async () => {
    const preview = await post('/purge', { filter: { queue: 'emails' }, dryRun: true });
    expect(preview.json()).toEqual({ dryRun: true, count: 2, byQueue: { emails: 2 }, ids: [] });
    expect(await deadIds()).toEqual(ids);

    await clock.advance(1_000);
    const purge = await post('/purge', { filter: { queue: 'emails' } });
    expect(purge.json()).toMatchObject({ dryRun: false, count: 2, ids: ids.slice(0, 2) });
    expect(await deadIds()).toEqual([ids[2]]);

    const audit = await get('/audit');
    expect(audit.statusCode).toBe(200);
    expect(audit.json<{ items: unknown[] }>().items).toEqual([
      expect.objectContaining({ action: 'purge', dryRun: false, count: 2, actor: 'ops-bot' }),
      expect.objectContaining({ action: 'purge', dryRun: true, count: 2, actor: 'ops-bot' }),
    ]);
  });

  it('purges everything with all: true', async () => {
    const res = await post('/purge', { filter: {}, all: true });
    expect(res.json()).toMatchObject({ count: 3 });
    expect(await deadIds()).toEqual([]);
  });

  it('filters the audit log by action, time and limit', async () => {
    await post('/replay', { filter: {}, dryRun: true });
    await clock.advance(1_000);
    const cut = clock.wallNow();
    await post('/purge', { filter: { queue: 'sms' }, dryRun: true });
    const replays = await get('/audit?action=replay');
    expect(replays.json<{ items: { action: string }[] }>().items.map(e => e.action)).toEqual([
      'replay',
    ]);
    const recent = await get(`/audit?from=${new Date(cut).toISOString()}&limit=5`);
    expect(recent.json<{ items: { action: string }[] }>().items.map(e => e.action)).toEqual([
      'purge',
    ]);
    const bad = expectProblem(
      await get('/audit?action=delete'),
      400,
      'urn:bulwark:problem:validation',
    );
    expect(bad.errors).toEqual([expect.objectContaining({ field: 'action' })]);
  });
});

describe('failures and options', () => {
  it('answers a backend failure with 500 problem+json without its message', async () => {
    await app.close();
    const broken: QueueBackend = Object.create(backend) as QueueBackend;
    broken.listDeadLetters = () => Promise.reject(new Error('connection to 10.0.0.7 refused'));
    app = await build({ backend: broken });
    const body = expectProblem(await get('/dead-letters'), 500, 'urn:bulwark:problem:internal');
    expect(JSON.stringify(body)).not.toContain('10.0.0.7');
  });

  it.each([
    [{ token: 'short' }, /at least 16 characters/],
    [{ token: 'has a space in the middle ok' }, /without whitespace/],
    [{ token: TOKEN, actor: '' }, /actor must be a non-empty string/],
    [{ token: TOKEN, maxReplayMs: 0 }, /maxReplayMs/],
    [{ token: TOKEN, tokens: [] }, /unknown option "tokens"/],
  ])('refuses options %j when the plugin is made', (options, message) => {
    expect(() => deadLetterAdmin({ backend, ...options })).toThrow(message);
  });

  it('leaves routes outside its prefix alone', async () => {
    const server = Fastify();
    server.get('/public', () => ({ ok: true }));
    await server.register(deadLetterAdmin({ backend, token: TOKEN }), { prefix: P });
    const res = await server.inject({ method: 'GET', url: '/public' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    await server.close();
  });
});
