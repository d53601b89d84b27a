import { hostname } from 'node:os';
import {
  BulkheadFullError,
  BulwarkError,
  CircuitOpenError,
  DeadlineExceededError,
  LoadShedError,
  RateLimitedError,
  RetriesExhaustedError,
  TimeoutError,
} from '@bulwark/core';
import { currentDeadline } from '@bulwark/core/ambient';
import { TestClock } from '@bulwark/testing';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Agent, request as undiciRequest } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { currentRequestId } from '../request-context.js';
import { bulwark } from './plugin.js';
import { ProblemError } from './problem.js';
import type { BulwarkOptions } from './options.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map(app => app.close()));
});

async function makeApp(
  options: BulwarkOptions = {},
  routes?: (app: FastifyInstance) => void,
  fastifyOptions: FastifyServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...fastifyOptions });
  apps.push(app);
  await app.register(bulwark, {
    shutdown: { handleSignals: false },
    shedding: { maxEventLoopDelayMs: false },
    ...options,
  });
  routes?.(app);
  await app.ready();
  return app;
}

describe('deadline in', () => {
  const budgetApp = (clock: TestClock) =>
    makeApp({ clock, timeouts: { defaultMs: 1_000, maxMs: 5_000 } }, app => {
      app.get('/budget', async request => ({ remainingMs: request.deadline.remainingMs() }));
    });

  it('reads the smallest budget header, defaults, clamps to max and ignores garbage', async () => {
    const clock = new TestClock();
    const app = await budgetApp(clock);
    const budget = async (headers: Record<string, string>) =>
      (await app.inject({ url: '/budget', headers })).json<{ remainingMs: number }>().remainingMs;
    expect(await budget({})).toBe(1_000);
    expect(
      await budget({
        'grpc-timeout': '3S',
        'x-envoy-expected-rq-timeout-ms': '2500',
        'x-bulwark-budget-ms': '800',
      }),
    ).toBe(800);
    expect(await budget({ 'grpc-timeout': '300m', 'x-bulwark-budget-ms': '800' })).toBe(300);
    expect(await budget({ 'x-bulwark-budget-ms': '600000' })).toBe(5_000);
    expect(await budget({ 'x-bulwark-budget-ms': 'soon', 'grpc-timeout': '-1S' })).toBe(1_000);
  });

  it('makes the deadline and request id ambient inside an async handler, after awaits and body parsing', async () => {
    const app = await makeApp({}, app => {
      app.post('/ambient', async request => {
        await new Promise(resolve => setImmediate(resolve));
        await Promise.resolve();
        return {
          same: currentDeadline() === request.deadline,
          id: currentRequestId(),
          requestId: request.id,
        };
      });
    });
    const res = await app.inject({
      method: 'POST',
      url: '/ambient',
      payload: { hello: 'world' },
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(res.json()).toEqual({ same: true, id: 'abc-123', requestId: 'abc-123' });
    expect(currentDeadline()).toBeUndefined();
  });

  it('answers 504 problem+json when the deadline passes and aborts the handler signal', async () => {
    const clock = new TestClock();
    let signal: AbortSignal | undefined;
    let entered!: () => void;
    const inHandler = new Promise<void>(resolve => (entered = resolve));
    const app = await makeApp({ clock, timeouts: { defaultMs: 100, maxMs: 1_000 } }, app => {
      app.get('/slow', async request => {
        signal = request.deadline.signal;
        entered();
        await new Promise((_resolve, reject) =>
          signal!.addEventListener('abort', () => reject(signal!.reason as Error)),
        );
        return 'never';
      });
    });
    const pending = app.inject({ url: '/slow' });
    await inHandler;
    await clock.advance(100);
    const res = await pending;
    expect(res.statusCode).toBe(504);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({
      type: 'urn:bulwark:problem:deadline-exceeded',
      status: 504,
      code: 'DEADLINE_EXCEEDED',
      instance: '/slow',
    });
    expect(signal?.aborted).toBe(true);
  });

  it('answers 504 when the deadline passes while the handler never looks at it', async () => {
    const clock = new TestClock();
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>(resolve => (entered = resolve));
    const app = await makeApp({ clock, timeouts: { defaultMs: 100, maxMs: 1_000 } }, app => {
      app.get('/oblivious', async () => {
        entered();
        await gate;
        return 'late';
      });
    });
    const pending = app.inject({ url: '/oblivious', headers: { 'x-bulwark-budget-ms': '50' } });
    await inHandler;
    await clock.advance(50);
    const res = await pending;
    release();
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ code: 'DEADLINE_EXCEEDED', instance: '/oblivious' });
  });

  it('answers 504 at once when the handler cancels its deadline as exceeded', async () => {
    const clock = new TestClock();
    const app = await makeApp({ clock }, app => {
      app.get('/give-up', async request => {
        request.deadline.cancel();
        await new Promise(resolve => setImmediate(resolve));
        return 'too late';
      });
    });
    const res = await app.inject({ url: '/give-up' });
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('answers 504 for a zero budget before the handler runs', async () => {
    let ran = false;
    const app = await makeApp({}, app => {
      app.get('/zero', async () => {
        ran = true;
        return 'ran';
      });
    });
    const res = await app.inject({ url: '/zero', headers: { 'x-bulwark-budget-ms': '0' } });
    expect(res.statusCode).toBe(504);
    expect(ran).toBe(false);
  });

  it('aborts the deadline signal when the client disconnects (real socket)', async () => {
    let aborted!: (reason: unknown) => void;
    const abortedReason = new Promise<unknown>(resolve => (aborted = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>(resolve => (entered = resolve));
    const app = await makeApp({}, app => {
      app.get('/hang', async request => {
        const signal = request.deadline.signal;
        signal.addEventListener('abort', () => aborted(signal.reason));
        entered();
        await new Promise(resolve => signal.addEventListener('abort', resolve));
        return 'gone';
      });
    });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = new Agent();
    const controller = new AbortController();
    const request = undiciRequest(`${address}/hang`, {
      dispatcher: agent,
      signal: controller.signal,
    }).catch(() => 'aborted');
    await inHandler;
    controller.abort();
    expect(await request).toBe('aborted');
    expect(await abortedReason).toMatchObject({ code: 'CANCELLED' });
    await agent.destroy();
  });
});

describe('request id', () => {
  it('echoes a sane id, generates a missing one and replaces a bad one', async () => {
    const app = await makeApp({}, app => {
      app.get('/id', async request => ({ id: request.id }));
    });
    const sane = await app.inject({ url: '/id', headers: { 'x-request-id': 'req_42.a:b' } });
    expect(sane.headers['x-request-id']).toBe('req_42.a:b');
    expect(sane.json()).toEqual({ id: 'req_42.a:b' });
    const missing = await app.inject({ url: '/id' });
    expect(missing.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    for (const bad of ['x'.repeat(129), 'has space', 'new\\nline', '<script>']) {
      const res = await app.inject({ url: '/id', headers: { 'x-request-id': bad } });
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.json<{ id: string }>().id).toBe(res.headers['x-request-id']);
    }
  });

  it('carries the id into the request logger', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = {
      write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>),
    };
    const app = await makeApp(
      {},
      app => {
        app.get('/log', async request => {
          request.log.info('inside');
          return 'ok';
        });
      },
      { logger: { stream } },
    );
    await app.inject({ url: '/log', headers: { 'x-request-id': 'trace-me' } });
    expect(lines.find(l => l.msg === 'inside')).toMatchObject({ reqId: 'trace-me' });
  });
});

describe('problem+json', () => {
  async function errorApp() {
    return makeApp({}, app => {
      app.post(
        '/items',
        {
          bodyLimit: 64,
          schema: {
            body: {
              type: 'object',
              required: ['name', 'qty'],
              properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 1 } },
            },
          },
        },
        async () => ({ ok: true }),
      );
      app.get('/throw/:kind', async request => {
        const kind = (request.params as { kind: string }).kind;
        const errors: Record<string, Error> = {
          circuit: new CircuitOpenError('payments', 1_500),
          bulkhead: new BulkheadFullError('db'),
          shed: new LoadShedError(),
          rate: new RateLimitedError('api', 2_001),
          timeout: new TimeoutError(50),
          deadline: new DeadlineExceededError(),
          upstream: new BulwarkError(
            'UPSTREAM_5XX',
            'GET http://inventory.internal.corp:8080/items failed with 503',
            { retryable: true },
          ),
          refused: new BulwarkError('CONNECTION_REFUSED', 'connect ECONNREFUSED 10.1.2.3:5432'),
          upstreamTimeout: new BulwarkError('HEADERS_TIMEOUT', 'db.internal headers timeout', {
            retryable: true,
          }),
          retries: new RetriesExhaustedError([new BulwarkError('UPSTREAM_5XX', 'x')]),
          problem: new ProblemError({
            status: 409,
            type: 'urn:shop:problem:out-of-stock',
            title: 'Out of stock',
            detail: 'Only 2 left',
            code: 'OUT_OF_STOCK',
            extensions: { available: 2 },
          }),
          plain: new Error(`boom at ${hostname()} db.internal.corp:5432`),
        };
        throw errors[kind] ?? new Error('unknown');
      });
    });
  }

  it('validation error: 400 with the failing fields', async () => {
    const app = await errorApp();
    const res = await app.inject({ method: 'POST', url: '/items?x=1', payload: { qty: 0 } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json();
    expect(body).toMatchObject({
      type: 'urn:bulwark:problem:validation',
      title: 'Validation Failed',
      status: 400,
      instance: '/items',
      code: 'VALIDATION_FAILED',
      retryable: false,
    });
    expect(body.requestId).toBe(res.headers['x-request-id']);
    expect(body.errors).toContainEqual(expect.objectContaining({ field: '/name', in: 'body' }));
  });

  it('validation reports every failing field with allErrors-style schemas', async () => {
    const app = await errorApp();
    const res = await app.inject({ method: 'POST', url: '/items', payload: { name: 'a', qty: 0 } });
    expect(res.json().errors).toEqual([
      { field: '/qty', in: 'body', message: expect.any(String) as string },
    ]);
  });

  it('unknown route 404, oversized 413, unsupported media 415, malformed JSON 400', async () => {
    const app = await errorApp();
    const notFound = await app.inject({ url: '/nope?secret=1' });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.json()).toMatchObject({
      type: 'urn:bulwark:problem:not-found',
      instance: '/nope',
    });
    const big = await app.inject({
      method: 'POST',
      url: '/items',
      payload: { name: 'x'.repeat(200), qty: 1 },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ type: 'urn:bulwark:problem:payload-too-large' });
    const text = await app.inject({
      method: 'POST',
      url: '/items',
      // Fastify parses text/plain by default (then validation says 400); XML has no parser.
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ type: 'urn:bulwark:problem:unsupported-media-type' });
    const malformed = await app.inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json' },
      payload: '{"name":',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ type: 'urn:bulwark:problem:malformed-body' });
    for (const res of [notFound, big, text, malformed]) {
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
  });

  it.each([
    ['circuit', 503, 'urn:bulwark:problem:dependency-unavailable', 'CIRCUIT_OPEN', '2'],
    ['bulkhead', 503, 'urn:bulwark:problem:overloaded', 'BULKHEAD_FULL', '1'],
    ['shed', 503, 'urn:bulwark:problem:overloaded', 'LOAD_SHED', '1'],
    ['rate', 429, 'urn:bulwark:problem:rate-limited', 'RATE_LIMITED', '3'],
    ['timeout', 504, 'urn:bulwark:problem:deadline-exceeded', 'TIMEOUT', undefined],
    ['deadline', 504, 'urn:bulwark:problem:deadline-exceeded', 'DEADLINE_EXCEEDED', undefined],
    ['upstream', 502, 'urn:bulwark:problem:upstream-failed', 'UPSTREAM_5XX', undefined],
    ['refused', 502, 'urn:bulwark:problem:upstream-failed', 'CONNECTION_REFUSED', undefined],
    ['upstreamTimeout', 504, 'urn:bulwark:problem:upstream-timeout', 'HEADERS_TIMEOUT', undefined],
    ['retries', 502, 'urn:bulwark:problem:upstream-failed', 'RETRIES_EXHAUSTED', undefined],
    ['problem', 409, 'urn:shop:problem:out-of-stock', 'OUT_OF_STOCK', undefined],
    ['plain', 500, 'urn:bulwark:problem:internal', 'INTERNAL', undefined],
  ])('%s → %i %s', async (kind, status, type, code, retryAfter) => {
    const app = await errorApp();
    const res = await app.inject({ url: `/throw/${kind}` });
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.headers['retry-after']).toBe(retryAfter);
    const body = res.json();
    expect(body).toMatchObject({ type, status, code, instance: `/throw/${kind}` });
    expect(typeof body.title).toBe('string');
    expect(typeof body.detail).toBe('string');
    expect(typeof body.retryable).toBe('boolean');
    // Nothing internal leaks: no stack, no hostnames, no dependency URLs or addresses.
    expect(res.body).not.toMatch(/at .*\.ts:\d+|stack/);
    expect(res.body).not.toContain(hostname());
    expect(res.body).not.toMatch(/\.internal|10\.1\.2\.3|http:\/\//);
    if (kind === 'problem') expect(body).toMatchObject({ detail: 'Only 2 left', available: 2 });
  });
});
