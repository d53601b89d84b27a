import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { seededRandom } from '@bulwark/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FaultValidationError,
  startFaultProxy,
  startFaultProxyAdmin,
  type FaultProxy,
  type FaultProxyOptions,
} from './index.js';

// ---- helpers: a real target server and a plain node:http client ----------------------------

interface Target {
  port: number;
  /** Requests the target has received. */
  received: IncomingMessage[];
  /** TCP connections the target has accepted. */
  connections(): number;
  /** Resolves with the next request the target receives. */
  nextRequest(): Promise<IncomingMessage>;
  close(): Promise<void>;
}

/**
 * `/` → "hello"; `/echo` → method, path, x-test header and body as JSON (status 201 "Made It");
 * `/bytes?n=N` → N bytes; `/status?code=C` → that status.
 */
async function startTarget(): Promise<Target> {
  const received: IncomingMessage[] = [];
  const waiters: ((req: IncomingMessage) => void)[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    received.push(req);
    for (const waiter of waiters.splice(0)) waiter(req);
    const url = new URL(req.url ?? '/', 'http://target');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (url.pathname === '/echo') {
        const body = JSON.stringify({
          method: req.method,
          path: req.url,
          xTest: req.headers['x-test'] ?? null,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(201, 'Made It', { 'content-type': 'application/json', 'x-echo': 'yes' });
        res.end(body);
      } else if (url.pathname === '/bytes') {
        const n = Number(url.searchParams.get('n') ?? '0');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        res.end(Buffer.alloc(n, 'x'));
      } else if (url.pathname === '/status') {
        res.writeHead(Number(url.searchParams.get('code')), { 'x-from': 'target' });
        res.end('from target');
      } else {
        res.end('hello');
      }
    });
  });
  server.on('connection', () => (connections += 1));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no address');
  return {
    port: address.port,
    received,
    connections: () => connections,
    nextRequest: () => new Promise(resolve => waiters.push(resolve)),
    close: () =>
      new Promise(resolve => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A raw TCP echo server (not HTTP), to show tcp mode carries any protocol. */
async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer({ allowHalfOpen: true }, socket => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no address');
  return {
    port: address.port,
    close: () =>
      new Promise(resolve => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

interface Reply {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
  bytes: number;
  elapsedMs: number;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Default: a fresh connection per request (agent: false). */
  agent?: Agent;
}

/** One HTTP request; rejects with the socket error (code ECONNRESET, ECONNREFUSED, …). */
function request(base: string, path = '/', options: RequestOptions = {}): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), {
      method: options.method ?? 'GET',
      headers: options.headers ?? {},
      agent: options.agent ?? false,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    req.on('error', reject);
    req.on('response', res => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: body.toString('utf8'),
          bytes: body.length,
          elapsedMs: performance.now() - started,
        });
      });
    });
    req.end(options.body);
  });
}

/** The error a promise rejects with; fails the test if it fulfils. */
async function failure(promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await promise;
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  throw new Error('expected the promise to reject');
}

/** tcp-mode proxies carry HTTP too; this is the base URL to reach the target through one. */
function httpBase(proxy: FaultProxy): string {
  return `http://${proxy.host}:${proxy.port}`;
}

// ---- fixtures: everything started in a test is closed after it ------------------------------

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function target(): Promise<Target> {
  const t = await startTarget();
  cleanups.push(() => t.close());
  return t;
}

async function proxyTo(
  t: { port: number },
  options: Omit<FaultProxyOptions, 'target'> = {},
): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: t.port }, ...options });
  cleanups.push(() => proxy.close());
  return proxy;
}

function agent(): Agent {
  const a = new Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(async () => a.destroy());
  return a;
}

// ---- tcp mode ---------------------------------------------------------------------------------

describe('startFaultProxy in tcp mode', () => {
  it('listens below the ephemeral port range, so no listen(0) elsewhere can take a down port', async () => {
    let low: number;
    try {
      low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
    } catch {
      return; // not Linux: the proxy falls back to an ephemeral port
    }
    const proxy = await proxyTo(await target());
    expect(proxy.port).toBeLessThan(low);
    expect(proxy.port).toBeGreaterThanOrEqual(1024);
    await proxy.setFaults([{ kind: 'down' }]);
    await proxy.clearFaults();
    expect(proxy.listening).toBe(true);
  });

  it('passes HTTP through unchanged, keep-alive included', async () => {
    const t = await target();
    const proxy = await proxyTo(t);
    expect(proxy.url).toBe(`tcp://127.0.0.1:${proxy.port}`);
    expect(proxy.mode).toBe('tcp');

    const keepAlive = agent();
    for (let i = 0; i < 3; i++) {
      const reply = await request(httpBase(proxy), '/echo?i=' + i, {
        method: 'POST',
        headers: { 'x-test': 'abc' },
        body: 'payload',
        agent: keepAlive,
      });
      expect(reply.status).toBe(201);
      expect(reply.statusMessage).toBe('Made It');
      expect(reply.headers['x-echo']).toBe('yes');
      expect(JSON.parse(reply.body)).toEqual({
        method: 'POST',
        path: '/echo?i=' + i,
        xTest: 'abc',
        body: 'payload',
      });
    }
    // One connection carried all three requests: tcp mode pipes bytes, it does not parse them.
    expect(proxy.stats()).toMatchObject({ connections: 1, requests: 0 });
  });

  it('carries any protocol byte for byte, half-close included', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const proxy = await proxyTo(echo);
    const socket = connect(proxy.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.end(Buffer.from([0, 1, 2, 255, 10, 13]));
    await once(socket, 'end');
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0, 1, 2, 255, 10, 13]));
    socket.destroy();
  });

  it('latency delays each new connection by at least latencyMs', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { faults: [{ kind: 'latency', latencyMs: 120 }] });
    const reply = await request(httpBase(proxy));
    expect(reply.body).toBe('hello');
    expect(reply.elapsedMs).toBeGreaterThanOrEqual(115);
    expect(reply.elapsedMs).toBeLessThan(3000);
    expect(proxy.stats().faults.latency).toBe(1);
  });

  it('reset closes the connection with RST: the client sees ECONNRESET, the target nothing', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { faults: [{ kind: 'reset' }] });
    const error = await failure(request(httpBase(proxy)));
    expect(error.code).toBe('ECONNRESET');
    expect(t.connections()).toBe(0);
    expect(proxy.stats().faults.reset).toBe(1);
  });

  it('slow-body throttles bytes from the target', async () => {
    const t = await target();
    // 4000 bytes of body (plus ~100 of headers) at 20 000 B/s: at least 200 ms.
    const proxy = await proxyTo(t, { faults: [{ kind: 'slow-body', bytesPerSecond: 20_000 }] });
    const reply = await request(httpBase(proxy), '/bytes?n=4000');
    expect(reply.bytes).toBe(4000);
    expect(reply.elapsedMs).toBeGreaterThanOrEqual(195);
    expect(reply.elapsedMs).toBeLessThan(3000);
  });

  it('blackhole accepts and swallows, never answers and never contacts the target', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { faults: [{ kind: 'blackhole' }] });
    const error = await failure(
      request(httpBase(proxy), '/', { signal: AbortSignal.timeout(150) }),
    );
    expect(error.name).toBe('AbortError');
    expect(t.connections()).toBe(0);
    expect(proxy.stats().faults.blackhole).toBe(1);
  });

  it('hang forwards the request but never answers', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { faults: [{ kind: 'hang' }] });
    const arrived = t.nextRequest();
    const error = await failure(
      request(httpBase(proxy), '/', { signal: AbortSignal.timeout(150) }),
    );
    expect(error.name).toBe('AbortError');
    expect((await arrived).url).toBe('/');
    expect(proxy.stats().faults.hang).toBe(1);
  });

  it.each(['tcp', 'http'] as const)(
    'down refuses connections, and the same port works again after clearFaults (%s mode)',
    async mode => {
      const t = await target();
      const proxy = await proxyTo(t, { mode });
      const port = proxy.port;
      await proxy.setFaults([{ kind: 'down' }]);
      expect(proxy.listening).toBe(false);
      const error = await failure(request(httpBase(proxy)));
      expect(error.code).toBe('ECONNREFUSED');

      await proxy.clearFaults();
      expect(proxy.listening).toBe(true);
      expect(proxy.port).toBe(port);
      expect((await request(httpBase(proxy))).body).toBe('hello');
      expect(proxy.stats().faults.down).toBe(1);
    },
  );

  it('down drops connections that are open', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const proxy = await proxyTo(echo);
    const socket = connect(proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('hi');
    await once(socket, 'data');
    const closed = once(socket, 'close');
    await proxy.setFaults([{ kind: 'down' }]);
    await closed;
    expect(proxy.stats().activeConnections).toBe(0);
  });

  it('rejects http-only faults, with the field named', async () => {
    const t = await target();
    await expect(
      startFaultProxy({
        target: { host: '127.0.0.1', port: t.port },
        faults: [{ kind: 'http-error', status: 503 }],
      }),
    ).rejects.toThrow(/faults\[0\]\.kind 'http-error' needs a proxy in mode 'http'/);
    const proxy = await proxyTo(t);
    expect(() => proxy.setFaults([{ kind: 'latency', latencyMs: -1 }])).toThrow(
      FaultValidationError,
    );
    expect(proxy.faults()).toEqual([]);
  });

  it('close() ends hung and delayed connections and resolves', async () => {
    const t = await target();
    const hung = await startFaultProxy({
      target: { host: '127.0.0.1', port: t.port },
      faults: [{ kind: 'hang' }],
    });
    const slow = await startFaultProxy({
      target: { host: '127.0.0.1', port: t.port },
      faults: [{ kind: 'latency', latencyMs: 60_000 }],
    });
    const timersBefore = process.getActiveResourcesInfo().filter(r => r === 'Timeout').length;
    const second = failure(request(httpBase(slow)));
    const arrived = t.nextRequest();
    const first = failure(request(httpBase(hung)));
    // By the time the hung request reached the target, the earlier delayed connection was accepted.
    await arrived;
    expect(slow.stats().connections).toBe(1);

    const started = performance.now();
    await Promise.all([hung.close(), slow.close()]);
    expect((await first).code).toBe('ECONNRESET');
    expect((await second).code).toBe('ECONNRESET');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(hung.listening).toBe(false);
    expect(slow.stats().activeConnections).toBe(0);
    // The 60 s latency timer is gone, not merely unreferenced.
    expect(
      process.getActiveResourcesInfo().filter(r => r === 'Timeout').length,
    ).toBeLessThanOrEqual(timersBefore);
    await hung.close(); // idempotent
  });
});

// ---- http mode --------------------------------------------------------------------------------

describe('startFaultProxy in http mode', () => {
  it('passes requests through, keeping method, headers, status and body', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { mode: 'http' });
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);

    const reply = await request(proxy.url, '/echo?q=1', {
      method: 'PUT',
      headers: { 'x-test': 'abc', 'content-type': 'text/plain' },
      body: 'x'.repeat(100_000),
    });
    expect(reply.status).toBe(201);
    expect(reply.statusMessage).toBe('Made It');
    expect(reply.headers['x-echo']).toBe('yes');
    expect(JSON.parse(reply.body)).toEqual({
      method: 'PUT',
      path: '/echo?q=1',
      xTest: 'abc',
      body: 'x'.repeat(100_000),
    });

    const teapot = await request(proxy.url, '/status?code=418');
    expect(teapot.status).toBe(418);
    expect(teapot.headers['x-from']).toBe('target');
    expect(teapot.body).toBe('from target');
    expect(proxy.stats()).toMatchObject({ requests: 2, connections: 2 });
  });

  it('http-error answers 503 with Retry-After without contacting the target', async () => {
    const t = await target();
    const proxy = await proxyTo(t, {
      mode: 'http',
      faults: [{ kind: 'http-error', status: 503, headers: { 'Retry-After': '2' }, body: 'busy' }],
    });
    const reply = await request(proxy.url, '/anything', { method: 'POST', body: 'ignored' });
    expect(reply.status).toBe(503);
    expect(reply.headers['retry-after']).toBe('2');
    expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(reply.body).toBe('busy');
    expect(t.connections()).toBe(0);

    await proxy.setFaults([{ kind: 'http-error', status: 500 }]);
    const problem = await request(proxy.url);
    expect(problem.status).toBe(500);
    expect(problem.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(problem.body)).toMatchObject({ status: 500, title: 'Injected fault' });
    expect(proxy.stats().faults['http-error']).toBe(2);
  });

  it('latency applies to every request on a kept-alive connection', async () => {
    const t = await target();
    const proxy = await proxyTo(t, {
      mode: 'http',
      faults: [{ kind: 'latency', latencyMs: 60, direction: 'downstream' }],
    });
    const keepAlive = agent();
    for (let i = 0; i < 2; i++) {
      const reply = await request(proxy.url, '/', { agent: keepAlive });
      expect(reply.body).toBe('hello');
      expect(reply.elapsedMs).toBeGreaterThanOrEqual(55);
      expect(reply.elapsedMs).toBeLessThan(3000);
    }
    expect(proxy.stats()).toMatchObject({ connections: 1, requests: 2 });
    expect(proxy.stats().faults.latency).toBe(2);
  });

  it('slow-body throttles the response body', async () => {
    const t = await target();
    const proxy = await proxyTo(t, {
      mode: 'http',
      faults: [{ kind: 'slow-body', bytesPerSecond: 10_000 }],
    });
    const reply = await request(proxy.url, '/bytes?n=2000');
    expect(reply.bytes).toBe(2000);
    expect(reply.elapsedMs).toBeGreaterThanOrEqual(195);
    expect(reply.elapsedMs).toBeLessThan(3000);
  });

  it('reset downstream lets the target handle the request, then resets the client', async () => {
    const t = await target();
    const proxy = await proxyTo(t, {
      mode: 'http',
      faults: [{ kind: 'reset', direction: 'downstream' }],
    });
    const error = await failure(request(proxy.url, '/echo', { method: 'POST', body: 'pay' }));
    expect(error.code).toBe('ECONNRESET');
    expect(t.received).toHaveLength(1);
  });

  it('hang holds the request until the faults change', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { mode: 'http', faults: [{ kind: 'hang' }] });
    const aborted = await failure(request(proxy.url, '/', { signal: AbortSignal.timeout(150) }));
    expect(aborted.name).toBe('AbortError');

    const arrived = t.nextRequest();
    const held = failure(request(proxy.url));
    await arrived;
    await proxy.clearFaults();
    expect((await held).code).toBe('ECONNRESET');
    expect((await request(proxy.url)).body).toBe('hello');
  });

  it('blackhole swallows the request without contacting the target', async () => {
    const t = await target();
    const proxy = await proxyTo(t, { mode: 'http', faults: [{ kind: 'blackhole' }] });
    const error = await failure(
      request(proxy.url, '/', { method: 'POST', body: 'x', signal: AbortSignal.timeout(150) }),
    );
    expect(error.name).toBe('AbortError');
    expect(t.connections()).toBe(0);
    expect(proxy.stats()).toMatchObject({ requests: 1, faults: { blackhole: 1 } });
  });

  it('answers 502 problem+json when the target is unreachable', async () => {
    const t = await startTarget();
    const proxy = await proxyTo(t, { mode: 'http' });
    await t.close();
    const reply = await request(proxy.url);
    expect(reply.status).toBe(502);
    expect(reply.headers['content-type']).toBe('application/problem+json');
  });

  it('probability flaps per request, replayable from a seed', async () => {
    const t = await target();
    const proxy = await proxyTo(t, {
      mode: 'http',
      random: seededRandom(7),
      faults: [{ kind: 'http-error', status: 503, probability: 0.5 }],
    });
    const keepAlive = agent();
    let errors = 0;
    for (let i = 0; i < 200; i++) {
      const reply = await request(proxy.url, '/', { agent: keepAlive });
      if (reply.status === 503) errors += 1;
      else expect(reply.body).toBe('hello');
    }
    // One roll per request, so the same seed gives the same count.
    const replay = seededRandom(7);
    let expected = 0;
    for (let i = 0; i < 200; i++) if (replay.next() < 0.5) expected += 1;
    expect(errors).toBe(expected);
    expect(errors).toBeGreaterThanOrEqual(70);
    expect(errors).toBeLessThanOrEqual(130);
    expect(proxy.stats()).toMatchObject({ requests: 200, faults: { 'http-error': errors } });
  });
});

// ---- admin API ------------------------------------------------------------------------------

describe('startFaultProxyAdmin', () => {
  async function setup(token?: string) {
    const t = await target();
    const api = await proxyTo(t, { mode: 'http' });
    const db = await proxyTo(t);
    const admin = await startFaultProxyAdmin({
      proxies: { api, db },
      ...(token === undefined ? {} : { token }),
    });
    cleanups.push(() => admin.close());
    return { t, api, db, admin };
  }

  function json(faults: unknown, headers: Record<string, string> = {}): RequestOptions {
    return {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof faults === 'string' ? faults : JSON.stringify(faults),
    };
  }

  it('lists proxies with their faults and stats', async () => {
    const { admin, api } = await setup();
    expect(admin.url).toBe(`http://127.0.0.1:${admin.port}`);
    await request(api.url);
    const reply = await request(admin.url, '/proxies');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    const { proxies } = JSON.parse(reply.body);
    expect(proxies.map((p: { name: string }) => p.name)).toEqual(['api', 'db']);
    expect(proxies[0]).toMatchObject({
      name: 'api',
      mode: 'http',
      url: api.url,
      listening: true,
      faults: [],
      stats: { requests: 1, connections: 1 },
    });
    expect(proxies[1]).toMatchObject({ name: 'db', mode: 'tcp' });
  });

  it('sets and clears faults', async () => {
    const { admin, api } = await setup();
    const set = await request(
      admin.url,
      '/proxies/api/faults',
      json([{ kind: 'http-error', status: 503, headers: { 'retry-after': '1' } }]),
    );
    expect(set.status).toBe(200);
    expect(JSON.parse(set.body).faults).toEqual([
      { kind: 'http-error', status: 503, headers: { 'retry-after': '1' } },
    ]);
    expect((await request(api.url)).status).toBe(503);

    const cleared = await request(admin.url, '/proxies/api/faults', { method: 'DELETE' });
    expect(cleared.status).toBe(200);
    expect(JSON.parse(cleared.body).faults).toEqual([]);
    expect((await request(api.url)).status).toBe(200);
  });

  it('takes a proxy down and back up', async () => {
    const { admin, db } = await setup();
    const down = await request(admin.url, '/proxies/db/faults', json([{ kind: 'down' }]));
    expect(JSON.parse(down.body).listening).toBe(false);
    expect((await failure(request(httpBase(db)))).code).toBe('ECONNREFUSED');
    await request(admin.url, '/proxies/db/faults', { method: 'DELETE' });
    expect((await request(httpBase(db))).body).toBe('hello');
  });

  it('rejects bad input with 400 problem+json naming the field', async () => {
    const { admin, api, db } = await setup();
    const bad = await request(
      admin.url,
      '/proxies/api/faults',
      json([{ kind: 'hang' }, { kind: 'latency', latencyMs: -5 }]),
    );
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(bad.body)).toMatchObject({
      status: 400,
      title: 'Invalid faults',
      field: 'faults[1].latencyMs',
      pointer: '/1/latencyMs',
    });
    expect(api.faults()).toEqual([]);

    const tcpOnly = await request(
      admin.url,
      '/proxies/db/faults',
      json([{ kind: 'http-error', status: 503 }]),
    );
    expect(tcpOnly.status).toBe(400);
    expect(JSON.parse(tcpOnly.body).field).toBe('faults[0].kind');
    expect(db.faults()).toEqual([]);

    const unknownKind = await request(admin.url, '/proxies/api/faults', json([{ kind: 'boom' }]));
    expect(JSON.parse(unknownKind.body).detail).toMatch(/faults\[0\]\.kind must be one of/);

    const notJson = await request(admin.url, '/proxies/api/faults', json('[{'));
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).title).toBe('Invalid JSON');

    const form = await request(admin.url, '/proxies/api/faults', {
      ...json([]),
      headers: { 'content-type': 'text/plain' },
    });
    expect(form.status).toBe(415);

    expect((await request(admin.url, '/proxies/nope/faults', json([]))).status).toBe(404);
    expect((await request(admin.url, '/proxies', { method: 'POST' })).status).toBe(405);
  });

  it('requires the bearer token when one is set', async () => {
    const { admin } = await setup('s3cret');
    const none = await request(admin.url, '/proxies');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const wrong = await request(admin.url, '/proxies', {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    const right = await request(admin.url, '/proxies', {
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(right.status).toBe(200);
  });

  it('answers only to a local Host name (DNS rebinding guard)', async () => {
    const { admin } = await setup();
    const reply = await request(admin.url, '/proxies', { headers: { host: 'evil.example' } });
    expect(reply.status).toBe(403);
  });
});
