import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import {
  constantBackoff,
  Deadline,
  retry,
  Scope,
  type Composable,
  type RetryEvent,
} from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/ambient';
import { startFaultProxy, type FaultProxy } from '@bulwark/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { requestStorage } from '../request-context.js';
import { httpDependency, type HttpDependency } from './dependency.js';
import { HttpDeadlineExceededError } from './errors.js';
import type { HttpDependencyOptions } from './options.js';
import type { HttpDependencyEvent } from './events.js';

// ---- helpers: a real server on 127.0.0.1:0 ------------------------------------------------

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Target {
  url: string;
  port: number;
  requests: IncomingMessage[];
  openSockets: Set<Socket>;
  /** Resolves when the next request arrives. */
  nextRequest(): Promise<IncomingMessage>;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function target(handler: Handler): Promise<Target> {
  const requests: IncomingMessage[] = [];
  const openSockets = new Set<Socket>();
  const waiters: ((r: IncomingMessage) => void)[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    for (const w of waiters.splice(0)) w(req);
    // Read the request body before answering, as real servers do.
    req.resume();
    req.on('end', () => handler(req, res, requests.length));
  });
  server.on('connection', (socket: Socket) => {
    openSockets.add(socket);
    socket.on('close', () => openSockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const t: Target = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    openSockets,
    nextRequest: () => new Promise(resolve => waiters.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  cleanups.push(() => t.close());
  return t;
}

function json(res: ServerResponse, status: number, value: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/** Fast policies for tests: up to 3 attempts, no delay, no budget. */
function fastRetry(events?: RetryEvent[]) {
  const policy = retry({
    maxAttempts: 3,
    backoff: constantBackoff({ delayMs: 0 }),
    budget: false,
    retryAfter: { maxMs: 20 },
  });
  if (events !== undefined) policy.onEvent(e => events.push(e));
  return policy;
}

function dep(url: string, options: Partial<HttpDependencyOptions> = {}): HttpDependency {
  const d = httpDependency({
    name: 'users',
    baseUrl: url,
    policies: [fastRetry()],
    firstByteTimeoutMs: 1_000,
    bodyTimeoutMs: 1_000,
    ...options,
  });
  cleanups.push(() => d.close());
  return d;
}

async function proxyTo(t: Target, mode: 'http' | 'tcp'): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: t.port }, mode });
  cleanups.push(() => proxy.close());
  return proxy;
}

/**
 * A policy that runs the work under a context of its own whose abort source (what
 * `abortSourceOf` returns for a foreign context: its `signal`) is a counting fake.
 */
function abortSpy(cancellable: boolean) {
  const source = {
    aborted: false,
    reason: undefined as unknown,
    listeners: new Set<() => void>(),
    added: 0,
    removed: 0,
    reads: 0,
    addEventListener(_type: string, listener: () => void) {
      this.added++;
      this.listeners.add(listener);
    },
    removeEventListener(_type: string, listener: () => void) {
      this.removed++;
      this.listeners.delete(listener);
    },
    abort(reason: unknown) {
      this.aborted = true;
      this.reason = reason;
      for (const listener of [...this.listeners]) listener();
    },
  };
  const policy: Composable<never> = {
    compose: next => (work, context, sink) => {
      const own = {
        get signal() {
          source.reads++;
          return source as unknown as AbortSignal;
        },
        deadline: undefined,
        attempt: context.attempt,
        cancellable,
      };
      next(work, own as unknown as typeof context, sink);
    },
  };
  return { source, policy };
}

// ---- success path ----------------------------------------------------------------------------

describe('httpDependency: requests', () => {
  it('GETs JSON under the base path, with query, headers and accept-encoding', async () => {
    const t = await target((req, res) =>
      json(res, 200, { url: req.url, h: req.headers['x-a'], ae: req.headers['accept-encoding'] }),
    );
    const users = dep(`${t.url}/api/`, { defaultHeaders: { 'X-A': 'default' } });
    const res = await users.request<{ url: string; h: string; ae: string }>({
      path: '/users/42',
      query: { fields: ['a', 'b'], skip: undefined, n: 1 },
    });
    expect(res.status).toBe(200);
    expect(res.attempts).toBe(1);
    expect(res.durationMs).toBeGreaterThanOrEqual(0);
    expect(res.body).toEqual({
      url: '/api/users/42?fields=a&fields=b&n=1',
      h: 'default',
      ae: 'gzip, deflate, br',
    });
    expect(res.headers['content-type']).toBe('application/json');
    expect(await users.getJson('/x', { headers: { 'x-a': 'mine' } })).toMatchObject({
      h: 'mine',
    });
  });

  it('POSTs JSON, text and buffers', async () => {
    const t = await target((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${req.method} ${req.headers['content-type']}`);
    });
    const users = dep(t.url);
    const text = await users.request<string>({
      method: 'post',
      path: '/u',
      json: { a: 1 },
      expect: 'text',
    });
    expect(text.body).toBe('POST application/json');
    const buf = await users.request<Buffer>({ path: '/u', expect: 'buffer' });
    expect(Buffer.isBuffer(buf.body)).toBe(true);
    const none = await users.request({ path: '/u', expect: 'none' });
    expect(none.body).toBeUndefined();
  });

  it('propagates the request id from getRequestId', async () => {
    const t = await target((req, res) => json(res, 200, req.headers['x-request-id'] ?? null));
    const users = dep(t.url, { getRequestId: () => 'req-7' });
    expect(await users.getJson('/')).toBe('req-7');
  });

  it('sends the ambient inbound request id by default, and none with getRequestId: false', async () => {
    const t = await target((req, res) => json(res, 200, req.headers['x-request-id'] ?? null));
    const users = dep(t.url);
    const quiet = dep(t.url, { getRequestId: false });
    expect(await users.getJson('/')).toBe(null);
    expect(await requestStorage.run({ requestId: 'abc' }, () => users.getJson('/'))).toBe('abc');
    expect(await requestStorage.run({ requestId: 'abc' }, () => quiet.getJson('/'))).toBe(null);
    // A request's own header wins.
    const mine = requestStorage.run({ requestId: 'abc' }, () =>
      users.getJson('/', { headers: { 'X-Request-Id': 'mine' } }),
    );
    expect(await mine).toBe('mine');
  });

  it('decodes gzip and br bodies', async () => {
    const doc = { hello: 'world'.repeat(50) };
    const t = await target((req, res) => {
      const encoding = req.url === '/gz' ? 'gzip' : 'br';
      const raw = Buffer.from(JSON.stringify(doc));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
      res.end(encoding === 'gzip' ? gzipSync(raw) : brotliCompressSync(raw));
    });
    const users = dep(t.url);
    expect(await users.getJson('/gz')).toEqual(doc);
    expect(await users.getJson('/br')).toEqual(doc);
  });
});

// ---- bodies that go wrong -------------------------------------------------------------------

describe('httpDependency: body limits and decoding', () => {
  it('BODY_TOO_LARGE for a large raw body (declared or streamed) and a zip bomb', async () => {
    const t = await target((req, res) => {
      if (req.url === '/declared') {
        res.writeHead(200, { 'content-length': 4096 });
        res.end(Buffer.alloc(4096));
      } else if (req.url === '/chunked') {
        res.writeHead(200);
        res.write(Buffer.alloc(1000));
        res.write(Buffer.alloc(1000));
        res.end(Buffer.alloc(1000));
      } else {
        res.writeHead(200, { 'content-encoding': 'gzip' });
        res.end(gzipSync(Buffer.alloc(1024 * 1024)));
      }
    });
    const users = dep(t.url, { maxResponseBytes: 1500 });
    for (const path of ['/declared', '/chunked', '/bomb']) {
      await expect(users.request({ path, expect: 'buffer' })).rejects.toMatchObject({
        code: 'BODY_TOO_LARGE',
        retryable: false,
        dependency: 'users',
        path,
      });
    }
    // Not retried: one request per path.
    expect(t.requests).toHaveLength(3);
  });

  it('BAD_JSON with an excerpt of the body', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('<html>oops</html>');
    });
    const users = dep(t.url);
    await expect(users.getJson('/u?token=secret')).rejects.toMatchObject({
      code: 'BAD_JSON',
      status: 200,
      path: '/u',
      message: expect.stringContaining('"<html>oops</html>"') as unknown,
    });
    await expect(users.getJson('/u?token=secret')).rejects.not.toMatchObject({
      message: expect.stringContaining('secret') as unknown,
    });
  });
});

// ---- statuses, retries and idempotency ------------------------------------------------------

describe('httpDependency: statuses and retries', () => {
  it('retries a GET on 503 and reports the attempts', async () => {
    const t = await target((_req, res, n) =>
      n === 1 ? json(res, 503, { title: 'busy' }) : json(res, 200, { ok: true }),
    );
    const users = dep(t.url);
    const res = await users.request({ path: '/u' });
    expect(res.body).toEqual({ ok: true });
    expect(res.attempts).toBe(2);
    expect(t.requests).toHaveLength(2);
  });

  it('surfaces the last classified error when retries run out', async () => {
    const t = await target((_req, res) => json(res, 503, { title: 'down' }));
    const users = dep(t.url);
    const error = await users.getJson('/u').catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'UPSTREAM_5XX',
      status: 503,
      attempt: 3,
      bodyExcerpt: '{"title":"down"}',
    });
    expect(t.requests).toHaveLength(3);
  });

  it('settles a call the same way whether or not someone listens to its events', async () => {
    const t = await target((_req, res, n) =>
      n === 1 ? json(res, 503, {}) : json(res, 200, { n }),
    );
    const quiet = dep(t.url);
    const watched = dep(t.url);
    const events: string[] = [];
    watched.onEvent(e => events.push(e.type));
    expect(await quiet.getJson('/u')).toEqual({ n: 2 });
    expect(await watched.getJson('/u')).toEqual({ n: 3 });
    expect((await quiet.request({ path: '/u' })).status).toBe(200);
    expect(events).toContain('http.call');
    const down = await target((_req, res) => json(res, 503, {}));
    const watchedDown = dep(down.url);
    watchedDown.onEvent(() => {});
    for (const users of [dep(down.url), watchedDown]) {
      const error = await users.getJson('/u').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'UPSTREAM_5XX', attempt: 3 });
    }
  });

  it('never retries a POST without an idempotency key', async () => {
    const t = await target((_req, res) => json(res, 503, {}));
    const users = dep(t.url);
    await expect(users.postJson('/orders', { a: 1 })).rejects.toMatchObject({
      code: 'UPSTREAM_5XX',
      retryable: false,
    });
    expect(t.requests).toHaveLength(1);
  });

  it('retries a POST with an idempotency key, sending the same key each time', async () => {
    const t = await target((_req, res, n) => json(res, n < 3 ? 503 : 201, { n }));
    const users = dep(t.url);
    const res = await users.request({
      method: 'POST',
      path: '/orders',
      json: { a: 1 },
      idempotencyKey: 'order-123',
    });
    expect(res.status).toBe(201);
    expect(t.requests.map(r => r.headers['idempotency-key'])).toEqual([
      'order-123',
      'order-123',
      'order-123',
    ]);
  });

  it('4xx is UPSTREAM_4XX and not retried, unless accepted', async () => {
    const t = await target((_req, res) => json(res, 404, { title: 'no such user' }));
    const users = dep(t.url);
    await expect(users.getJson('/users/1')).rejects.toMatchObject({
      code: 'UPSTREAM_4XX',
      status: 404,
      retryable: false,
    });
    expect(t.requests).toHaveLength(1);
    const res = await users.request({ path: '/users/1', acceptStatus: s => s === 404 });
    expect(res).toMatchObject({ status: 404, body: { title: 'no such user' } });
  });

  it('honours Retry-After on 429 (the hint reaches core retry)', async () => {
    const events: RetryEvent[] = [];
    const t = await target((_req, res, n) =>
      n === 1 ? json(res, 429, {}, { 'retry-after': '1' }) : json(res, 200, 'ok'),
    );
    const users = dep(t.url, { policies: [fastRetry(events)] });
    expect(await users.getJson('/')).toBe('ok');
    const scheduled = events.find(e => e.type === 'retry.scheduled');
    // The 1 s hint is capped by retryAfter.maxMs (20) but wins over the 0 ms backoff.
    expect(scheduled).toMatchObject({ delayMs: 20 });
    expect((scheduled as { error: { retryAfterMs: number } }).error.retryAfterMs).toBe(1000);
  });
});

// ---- deadlines ------------------------------------------------------------------------------

describe('httpDependency: deadlines', () => {
  it('sends the remaining budget, smaller on each retry', async () => {
    const t = await target((_req, res, n) => json(res, n < 3 ? 503 : 200, {}));
    const users = dep(t.url, {
      policies: [
        retry({ maxAttempts: 3, backoff: constantBackoff({ delayMs: 15 }), budget: false }),
      ],
    });
    await users.request({ path: '/', deadline: Deadline.after(5_000) });
    // With headers of its own (each attempt then writes its budget into the call's copy): the same.
    const own = await target((_req, res, n) => json(res, n < 3 ? 503 : 200, {}));
    const withHeaders = dep(own.url, {
      policies: [
        retry({ maxAttempts: 3, backoff: constantBackoff({ delayMs: 15 }), budget: false }),
      ],
    });
    await withHeaders.request({
      path: '/',
      deadline: Deadline.after(5_000),
      headers: { 'x-a': '1' },
    });
    const ownBudgets = own.requests.map(r => Number(r.headers['x-bulwark-budget-ms']));
    expect(ownBudgets[0]).toBeGreaterThan(ownBudgets[1] as number);
    expect(ownBudgets[1]).toBeGreaterThan(ownBudgets[2] as number);
    expect(own.requests.every(r => r.headers['x-a'] === '1')).toBe(true);
    const budgets = t.requests.map(r => Number(r.headers['x-bulwark-budget-ms']));
    expect(budgets).toHaveLength(3);
    expect(budgets[0]).toBeLessThanOrEqual(5_000);
    expect(budgets[0]).toBeGreaterThan(budgets[1] as number);
    expect(budgets[1]).toBeGreaterThan(budgets[2] as number);
    expect(t.requests[0]?.headers['grpc-timeout']).toMatch(/^\d+u$/);
    expect(t.requests[0]?.headers['x-envoy-expected-rq-timeout-ms']).toBeDefined();
  });

  it('uses the ambient deadline, and can keep it to itself', async () => {
    const t = await target((req, res) =>
      json(res, 200, req.headers['x-bulwark-budget-ms'] ?? null),
    );
    const users = dep(t.url);
    const quiet = dep(t.url, { propagateDeadline: false });
    const budget = await runWithDeadline(Deadline.after(3_000), () => users.getJson('/'));
    expect(Number(budget)).toBeGreaterThan(2_000);
    expect(await runWithDeadline(Deadline.after(3_000), () => quiet.getJson('/'))).toBeNull();
  });

  it('does not send a request the deadline has no room for', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const events: HttpDependencyEvent[] = [];
    const users = dep(t.url, { minBudgetMs: 1_000 });
    users.onEvent(e => events.push(e));
    await expect(
      users.request({ path: '/u', deadline: Deadline.after(500) }),
    ).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED', dependency: 'users', retryable: false });
    await expect(users.request({ path: '/u', deadline: Deadline.after(0) })).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    expect(t.requests).toHaveLength(0);
    expect(events.find(e => e.type === 'http.not_sent')).toMatchObject({ path: '/u' });
  });

  it('aborts an in-flight request when the deadline passes (the server sees the socket close)', async () => {
    const t = await target(() => {
      /* never answers */
    });
    const users = dep(t.url);
    const arrived = t.nextRequest();
    const call = users.request({ path: '/slow', deadline: Deadline.after(150) });
    const req = await arrived;
    const closed = once(req.socket, 'close');
    await expect(call).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await closed;
    expect(t.requests).toHaveLength(1);
  });

  it('listens for aborts only when something can abort the call (ctx.cancellable)', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const idle = abortSpy(false);
    const users = dep(t.url, { policies: [idle.policy] });
    await users.getJson('/');
    // Nothing can abort the call: the source is not even looked at.
    expect(idle.source.reads).toBe(0);
    const live = abortSpy(true);
    const watched = dep(t.url, { policies: [live.policy] });
    await watched.getJson('/');
    await watched.getJson('/');
    // One listener per attempt, removed when the attempt is over (no pile-up on a long-lived
    // signal), and no AbortController: the source is used as it is.
    expect(live.source.added).toBe(2);
    expect(live.source.removed).toBe(2);
    expect(live.source.listeners.size).toBe(0);
  });

  it("aborting the attempt's source rejects with its reason and closes the socket", async () => {
    const t = await target(() => {});
    const spy = abortSpy(true);
    // Time limits far beyond the test's own: only the abort listener can end this call (without
    // it, undici's first-byte timeout would, with the same reason, after a second).
    const users = dep(t.url, {
      policies: [spy.policy],
      firstByteTimeoutMs: 600_000,
      bodyTimeoutMs: 600_000,
    });
    const arrived = t.nextRequest();
    const call = users.getJson('/');
    const req = await arrived;
    const closed = once(req.socket, 'close');
    const reason = Object.assign(new Error('stop'), { code: 'DEADLINE_EXCEEDED' });
    spy.source.abort(reason);
    await expect(call).rejects.toBe(reason);
    await closed;
    expect(spy.source.listeners.size).toBe(0);
  });

  it('an attempt whose source has already aborted is not sent', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const spy = abortSpy(true);
    const reason = Object.assign(new Error('gone'), { code: 'CANCELLED' });
    spy.source.abort(reason);
    const users = dep(t.url, { policies: [spy.policy] });
    await expect(users.getJson('/')).rejects.toBe(reason);
    expect(t.requests).toHaveLength(0);
  });

  it('a 504 problem saying DEADLINE_EXCEEDED for the budget we sent is our deadline, not retried', async () => {
    const problem = { type: 'urn:bulwark:problem:deadline-exceeded', code: 'DEADLINE_EXCEEDED' };
    const t = await target((_req, res) =>
      json(res, 504, problem, { 'content-type': 'application/problem+json' }),
    );
    const users = dep(t.url);
    const error: unknown = await users
      .getJson('/', { deadline: Deadline.after(5_000) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpDeadlineExceededError);
    expect(error).toMatchObject({ code: 'DEADLINE_EXCEEDED', downstream: true, retryable: false });
    expect(t.requests).toHaveLength(1);
    // Without a deadline of ours (or when it is not sent) it is the dependency's own 504.
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'UPSTREAM_5XX', status: 504 });
    const third = dep(t.url, { propagateDeadline: false, policies: [] });
    await expect(third.getJson('/', { deadline: Deadline.after(5_000) })).rejects.toMatchObject({
      code: 'UPSTREAM_5XX',
    });
  });

  it('the caller’s signal cancels the call', async () => {
    const t = await target(() => {});
    const users = dep(t.url);
    const controller = new AbortController();
    const arrived = t.nextRequest();
    const call = users.request({ path: '/', signal: controller.signal });
    const req = await arrived;
    const closed = once(req.socket, 'close');
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'CANCELLED' });
    await closed;
  });

  it('a core Scope as the signal cancels the call too (a part passes ctx.cancel)', async () => {
    const t = await target(() => {});
    const users = dep(t.url);
    const scope = new Scope();
    const arrived = t.nextRequest();
    const call = users.request({ path: '/', signal: scope });
    const req = await arrived;
    const closed = once(req.socket, 'close');
    scope.abort(new Error('caller gone'));
    await expect(call).rejects.toMatchObject({ code: 'CANCELLED' });
    await closed;
  });
});

// ---- faults through the proxy ---------------------------------------------------------------

describe('httpDependency: faults map to codes', () => {
  it('down → CONNECTION_REFUSED, reset → CONNECTION_RESET', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const proxy = await proxyTo(t, 'tcp');
    const users = dep(`http://127.0.0.1:${proxy.port}`, { policies: [] });
    await proxy.setFaults([{ kind: 'down' }]);
    await expect(users.getJson('/')).rejects.toMatchObject({
      code: 'CONNECTION_REFUSED',
      retryable: true,
    });
    await proxy.setFaults([{ kind: 'reset' }]);
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'CONNECTION_RESET' });
    await proxy.clearFaults();
    expect(await users.getJson('/')).toEqual({});
  });

  // undici runs its headers timer on a coarse clock (about 1 s resolution), so a 100 ms
  // firstByteTimeoutMs fires within about a second; a latency fault would need seconds to test.
  it('hang → HEADERS_TIMEOUT; slow body → BODY_TIMEOUT', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify('x'.repeat(400)));
    });
    const proxy = await proxyTo(t, 'http');
    const users = dep(proxy.url, { policies: [], firstByteTimeoutMs: 100, bodyTimeoutMs: 150 });
    await proxy.setFaults([{ kind: 'hang' }]);
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'HEADERS_TIMEOUT' });
    await proxy.setFaults([{ kind: 'slow-body', bytesPerSecond: 1_000 }]);
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'BODY_TIMEOUT' });
  });

  // The whole-body limit (60 s) is far away, so only the stall limit, min(firstByteTimeoutMs,
  // bodyTimeoutMs) = 100 ms on undici's ~1 s clock, can end this body in time.
  it('a body that stalls for firstByteTimeoutMs → BODY_TIMEOUT, long before bodyTimeoutMs', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('"half a string'); // ...and never the rest
    });
    const users = dep(t.url, { policies: [], firstByteTimeoutMs: 100, bodyTimeoutMs: 60_000 });
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'BODY_TIMEOUT' });
  });

  it('http-error 503 with retry-after → UPSTREAM_5XX with retryAfterMs', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const proxy = await proxyTo(t, 'http');
    const users = dep(proxy.url, { policies: [] });
    await proxy.setFaults([{ kind: 'http-error', status: 503, headers: { 'retry-after': '1' } }]);
    await expect(users.getJson('/')).rejects.toMatchObject({
      code: 'UPSTREAM_5XX',
      status: 503,
      retryAfterMs: 1000,
      retryable: true,
    });
  });

  it('an unknown host → DNS_FAILED', async () => {
    const users = dep('http://bulwark-does-not-exist.invalid', { policies: [] });
    await expect(users.getJson('/')).rejects.toMatchObject({ code: 'DNS_FAILED' });
  });
});

// ---- events and lifecycle -------------------------------------------------------------------

describe('httpDependency: events and close', () => {
  it('emits response, failure-free call and policy events only while listened to', async () => {
    const t = await target((_req, res, n) => json(res, n === 1 ? 503 : 200, {}));
    const policy = fastRetry();
    const users = dep(t.url, { policies: [policy] });
    expect(policy.emitter.size).toBe(0);
    const events: HttpDependencyEvent[] = [];
    const sub = users.onEvent(e => events.push(e));
    expect(policy.emitter.size).toBe(1);
    await users.getJson('/u?secret=1');
    sub.dispose();
    expect(policy.emitter.size).toBe(0);
    expect(events.map(e => e.type)).toEqual([
      'http.response',
      'http.policy',
      'http.response',
      'http.policy',
      'http.call',
    ]);
    expect(events[0]).toMatchObject({
      dependency: 'users',
      method: 'GET',
      path: '/u',
      status: 503,
      attempt: 1,
      outcome: 'UPSTREAM_5XX',
    });
    expect(events[1]).toMatchObject({ event: { type: 'retry.scheduled' } });
    expect(events[3]).toMatchObject({ event: { type: 'retry.succeeded' } });
    expect(events[4]).toMatchObject({ outcome: 'ok', status: 200, attempts: 2, retries: 1 });
  });

  it('emits http.failure for transport errors', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const proxy = await proxyTo(t, 'tcp');
    await proxy.setFaults([{ kind: 'down' }]);
    const users = dep(`http://127.0.0.1:${proxy.port}`, { policies: [] });
    const events: HttpDependencyEvent[] = [];
    users.onEvent(e => events.push(e));
    await users.getJson('/').catch(() => {});
    expect(events[0]).toMatchObject({
      type: 'http.failure',
      code: 'CONNECTION_REFUSED',
      attempt: 1,
    });
    expect(events[1]).toMatchObject({
      type: 'http.call',
      outcome: 'error',
      code: 'CONNECTION_REFUSED',
    });
  });

  it('close() releases the sockets and later requests fail with DEPENDENCY_CLOSED', async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const users = dep(t.url);
    await users.getJson('/');
    await users.getJson('/');
    expect(t.openSockets.size).toBeGreaterThanOrEqual(1);
    const closed = Promise.all([...t.openSockets].map(s => once(s, 'close')));
    await users.close();
    await closed;
    expect(t.openSockets.size).toBe(0);
    await expect(users.getJson('/')).rejects.toMatchObject({
      code: 'DEPENDENCY_CLOSED',
      retryable: false,
    });
  });

  it('builds the default pipeline (retry then breaker) named after the dependency', () => {
    const d = httpDependency({ name: 'orders', baseUrl: 'http://127.0.0.1:1' });
    cleanups.push(() => d.close());
    expect(d.pipeline.policies.map(p => (p as unknown as { name: string }).name)).toEqual([
      'orders.retry',
      'orders.breaker',
    ]);
  });
});

// ---- the dispatch handler's edges --------------------------------------------------------

describe('httpDependency: reading the response', () => {
  it('aborts a body that crosses the limit while it streams (the server sees the close)', async () => {
    let written = 0;
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // An endless chunked body: only the client stopping can end it.
      const timer = setInterval(() => {
        written += 1024;
        res.write(Buffer.alloc(1024));
      }, 1);
      res.on('close', () => clearInterval(timer));
    });
    const users = dep(t.url, { maxResponseBytes: 8 * 1024, policies: [] });
    const arrived = t.nextRequest();
    const call = users.request({ path: '/big', expect: 'buffer' });
    const req = await arrived;
    const closed = once(req.socket, 'close');
    await expect(call).rejects.toMatchObject({
      code: 'BODY_TOO_LARGE',
      message: /exceeds 8192 bytes on the wire/,
    });
    await closed;
    expect(written).toBeLessThan(64 * 1024);
  });

  it('a body that does not decode, or an unknown encoding, is BAD_CONTENT_ENCODING', async () => {
    const t = await target((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': req.url === '/zstd' ? 'zstd' : 'gzip',
      });
      res.end('this is not gzip');
    });
    const users = dep(t.url, { policies: [] });
    await expect(users.getJson('/corrupt')).rejects.toMatchObject({
      code: 'BAD_CONTENT_ENCODING',
      status: undefined,
      retryable: false,
      message: /does not decode/,
    });
    await expect(users.getJson('/zstd')).rejects.toMatchObject({
      code: 'BAD_CONTENT_ENCODING',
      message: /"zstd"/,
    });
    // The connection is still usable for the next call (or replaced): nothing hangs.
    await expect(users.getJson('/corrupt')).rejects.toMatchObject({
      code: 'BAD_CONTENT_ENCODING',
    });
  });

  it('decodes a large gzip body in many chunks (decoder backpressure)', async () => {
    const doc = { items: Array.from({ length: 100_000 }, (_, i) => ({ i, name: `item-${i}` })) };
    const raw = Buffer.from(JSON.stringify(doc));
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(raw));
    });
    const users = dep(t.url, { policies: [] });
    expect(await users.getJson('/')).toEqual(doc);
  });

  it('a deadline passing mid-body aborts the read and closes the socket', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
      // ... and never finishes.
    });
    const users = dep(t.url, { policies: [] });
    const arrived = t.nextRequest();
    const call = users.getJson('/', { deadline: Deadline.after(150) });
    const req = await arrived;
    const closed = once(req.socket, 'close');
    await expect(call).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await closed;
  });

  it('the caller’s signal cancels a request still queued for a connection', async () => {
    const t = await target((req, res) => {
      if (req.url === '/slow') setTimeout(() => json(res, 200, 'slow'), 200);
      else json(res, 200, 'fast');
    });
    const users = dep(t.url, { connections: 1, policies: [] });
    const slow = users.getJson('/slow');
    const controller = new AbortController();
    const queued = users.getJson('/queued', { signal: controller.signal });
    controller.abort();
    await expect(queued).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await slow).toBe('slow');
    expect(await users.getJson('/after')).toBe('fast');
    // The cancelled request never reached the server.
    expect(t.requests.map(r => r.url)).toEqual(['/slow', '/after']);
  });

  it('keeps 1 KiB of a large error body and drops the connection', async () => {
    const t = await target((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('x'.repeat(64 * 1024));
    });
    const users = dep(t.url, { policies: [], maxResponseBytes: 4096 });
    const error = await users.getJson('/').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UPSTREAM_5XX', status: 503 });
    expect((error as { bodyExcerpt: string }).bodyExcerpt).toBe('x'.repeat(1024));
  });

  it('skips informational (1xx) responses', async () => {
    const t = await target((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      json(res, 200, { ok: true });
    });
    const users = dep(t.url, { policies: [] });
    expect(await users.getJson('/')).toEqual({ ok: true });
  });

  it('HEAD answers have no body', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '12' });
      res.end();
    });
    const users = dep(t.url, { policies: [] });
    const res = await users.request({ method: 'HEAD', path: '/' });
    expect(res).toMatchObject({ status: 200, body: undefined });
  });

  it('headers given to one call do not leak into the next', async () => {
    const t = await target((req, res) =>
      json(res, 200, {
        a: req.headers['x-a'] ?? null,
        key: req.headers['idempotency-key'] ?? null,
      }),
    );
    const users = dep(t.url);
    expect(await users.getJson('/', { headers: { 'x-a': '1' }, idempotencyKey: 'k' })).toEqual({
      a: '1',
      key: 'k',
    });
    expect(await users.getJson('/')).toEqual({ a: null, key: null });
    expect(await users.postJson('/', { x: 1 })).toEqual({ a: null, key: null });
    expect(await users.getJson('/')).toEqual({ a: null, key: null });
  });

  it("emits events in the caller's async context, whichever context opened the socket", async () => {
    const t = await target((_req, res) => json(res, 200, {}));
    const users = dep(t.url, { connections: 1, policies: [] });
    // The keep-alive socket is opened outside any request.
    await users.getJson('/');
    const seen: (string | undefined)[] = [];
    users.onEvent(event => {
      if (event.type === 'http.response') seen.push(requestStorage.getStore()?.requestId);
    });
    await requestStorage.run({ requestId: 'req-1' }, () => users.getJson('/'));
    await requestStorage.run({ requestId: 'req-2' }, () => users.getJson('/'));
    expect(seen).toEqual(['req-1', 'req-2']);
  });

  it('a dispatcher that throws fails the attempt with a classified error', async () => {
    const broken = {
      dispatch() {
        throw Object.assign(new Error('nope'), { code: 'UND_ERR_INVALID_ARG' });
      },
      request() {},
      close: async () => {},
    } as unknown as NonNullable<HttpDependencyOptions['dispatcher']>;
    const users = dep('http://127.0.0.1:1', { dispatcher: broken });
    await expect(users.getJson('/')).rejects.toMatchObject({
      code: 'REQUEST_FAILED',
      retryable: false,
    });
  });
});

describe('httpDependency: options', () => {
  const base = { name: 'users', baseUrl: 'http://127.0.0.1:1' };
  it.each([
    [{ ...base, name: '' }, /name must be a non-empty string/],
    [{ ...base, baseUrl: 'nope' }, /baseUrl must be an absolute http\(s\) URL/],
    [{ ...base, baseUrl: 'ftp://x' }, /baseUrl must use http: or https:/],
    [{ ...base, baseUrl: 'http://x/?a=1' }, /must not have a query string/],
    [{ ...base, baseUrl: 'http://u:p@x/' }, /must not carry credentials/],
    [{ ...base, connectTimeoutMs: 0 }, /connectTimeoutMs must be a finite number > 0, got 0/],
    [{ ...base, firstByteTimeoutMs: -1 }, /firstByteTimeoutMs must be/],
    [{ ...base, bodyTimeoutMs: Infinity }, /bodyTimeoutMs must be/],
    [{ ...base, connections: 1.5 }, /connections must be an integer > 0/],
    [{ ...base, keepAliveTimeoutMs: 'x' }, /keepAliveTimeoutMs must be/],
    [{ ...base, maxResponseBytes: 0 }, /maxResponseBytes must be an integer > 0/],
    [{ ...base, minBudgetMs: -1 }, /minBudgetMs must be a finite number >= 0/],
    [{ ...base, policies: 'fast' }, /policies must be 'default' or an array/],
    [{ ...base, policies: [{}] }, /policies\[0\] is not a policy/],
    [{ ...base, defaultHeaders: { a: 1 } }, /defaultHeaders\["a"\] must be a string/],
    [{ ...base, acceptStatus: 200 }, /acceptStatus must be a function/],
    [{ ...base, getRequestId: 'id' }, /getRequestId must be a function/],
    [{ ...base, requestIdHeader: 'bad header' }, /requestIdHeader must be a header name/],
    [{ ...base, propagateDeadline: 'yes' }, /propagateDeadline must be true or false/],
    [{ ...base, clock: {} }, /clock must be a Clock/],
    [{ ...base, dispatcher: {} }, /dispatcher must be an undici Dispatcher/],
    [{ ...base, retries: 3 }, /unknown option "retries"/],
  ])('rejects %o', (options, message) => {
    expect(() => httpDependency(options as unknown as HttpDependencyOptions)).toThrow(message);
  });

  it('rejects bad request options with a message naming the fix', async () => {
    const d = httpDependency({ ...base, policies: [] });
    cleanups.push(() => d.close());
    await expect(d.request({ path: 'users' })).rejects.toThrow(
      /path must be a string starting with '\/'/,
    );
    await expect(d.request({ path: '/', method: 'G T' })).rejects.toThrow(/method must be/);
    await expect(d.request({ path: '/', json: {}, body: 'x' })).rejects.toThrow(
      /either json or body/,
    );
  });
});
