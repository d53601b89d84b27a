/**
 * End to end over real sockets: a test client → A → B → C, each a Fastify app with the plugin on
 * 127.0.0.1:0 calling the next with an httpDependency. What one hop learns (budget, request id,
 * cancellation, failure) must reach the others.
 */
import { BULWARK_BUDGET_HEADER, constantBackoff, retry, type Composable } from '@bulwark/core';
import { startFaultProxy, TestClock, type FaultProxy, type ProxyFault } from '@bulwark/testing';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { httpDependency, type HttpDependency } from './client/dependency.js';
import { isHttpDependencyError, type HttpDependencyError } from './client/errors.js';
import { bulwark, type BulwarkOptions } from './server/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What one service saw of its inbound request. */
interface Seen {
  budgetHeader: string | undefined;
  remainingMs: number;
  requestId: string | undefined;
}

interface Service {
  name: string;
  url: string;
  port: number;
  seen: Seen[];
  /** Errors of this service's outbound calls (to the next hop). */
  outboundErrors: unknown[];
  /**
   * Settles with the first outbound error. The client's answer can overtake it (A's own timer
   * may answer before B has noticed that A went away), so tests wait on this, not on the answer.
   */
  outboundFailed: Promise<unknown>;
}

function record(request: FastifyRequest): Seen {
  const header = request.headers[BULWARK_BUDGET_HEADER];
  return {
    budgetHeader: Array.isArray(header) ? header[0] : header,
    remainingMs: request.deadline.remainingMs(),
    requestId: request.headers['x-request-id'] as string | undefined,
  };
}

async function listen(
  app: FastifyInstance,
  name: string,
): Promise<Service & { failed(error: unknown): void }> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  let settle: (error: unknown) => void = () => {};
  const outboundFailed = new Promise<unknown>(resolve => (settle = resolve));
  const outboundErrors: unknown[] = [];
  return {
    name,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    seen: [],
    outboundErrors,
    outboundFailed,
    failed: error => {
      outboundErrors.push(error);
      settle(error);
    },
  };
}

async function app(options: BulwarkOptions = {}): Promise<FastifyInstance> {
  const instance = Fastify({ logger: false });
  await instance.register(bulwark, {
    shutdown: { handleSignals: false },
    // The event-loop monitor would only add noise to a test machine's timing.
    shedding: { maxEventLoopDelayMs: false },
    ...options,
  });
  return instance;
}

/** A service whose GET /work records what it saw and returns the next hop's answer. */
async function forwarding(
  name: string,
  nextUrl: string,
  policies: 'default' | readonly Composable<unknown>[] = 'default',
): Promise<Service> {
  const instance = await app();
  const next: HttpDependency = httpDependency({
    name: `${name}->next`,
    baseUrl: nextUrl,
    policies,
  });
  cleanups.push(() => next.close());
  const holder: { service?: Awaited<ReturnType<typeof listen>> } = {};
  instance.get('/work', async request => {
    const service = holder.service as Awaited<ReturnType<typeof listen>>;
    service.seen.push(record(request));
    try {
      return await next.getJson('/work');
    } catch (error) {
      service.failed(error);
      throw error;
    }
  });
  holder.service = await listen(instance, name);
  return holder.service;
}

interface Leaf extends Service {
  /** Settles with the reason C's request deadline signal fired with. */
  aborted: Promise<unknown>;
}

/** C: records what it saw; `hang` waits until its request's deadline signal fires, then throws. */
async function leaf(mode: 'ok' | 'hang', options: BulwarkOptions = {}): Promise<Leaf> {
  const instance = await app(options);
  let onAbort: (reason: unknown) => void = () => {};
  const aborted = new Promise<unknown>(resolve => (onAbort = resolve));
  const holder: { service?: Leaf } = {};
  instance.get('/work', async request => {
    (holder.service as Leaf).seen.push(record(request));
    if (mode === 'ok') return { from: 'c' };
    const signal = request.deadline.signal;
    const reason = await new Promise<unknown>(resolve => {
      if (signal.aborted) resolve(signal.reason);
      else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
    });
    onAbort(reason);
    throw reason;
  });
  holder.service = { ...(await listen(instance, 'c')), aborted };
  return holder.service;
}

const agent = new Agent({ connections: 4 });

async function call(url: string, headers: Record<string, string>) {
  const started = performance.now();
  const res = await request(`${url}/work`, { dispatcher: agent, headers });
  const body = (await res.body.json()) as Record<string, unknown>;
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    elapsedMs: performance.now() - started,
  };
}

/** An outbound call stopped by its deadline or its request's cancellation, not by an answer. */
function expectAborted(error: unknown): void {
  expect(error).toMatchObject({ code: expect.stringMatching(/^(DEADLINE_EXCEEDED|CANCELLED)$/) });
  expect((error as { downstream?: boolean }).downstream).not.toBe(true);
}

function only<T>(values: readonly T[]): T {
  expect(values).toHaveLength(1);
  return values[0] as T;
}

describe('three hops: A → B → C', () => {
  it('the budget shrinks at every hop and the inbound request id reaches C', async () => {
    const c = await leaf('ok');
    const b = await forwarding('b', c.url);
    const a = await forwarding('a', b.url);
    const res = await call(a.url, { [BULWARK_BUDGET_HEADER]: '2000', 'x-request-id': 'abc' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ from: 'c' });
    expect(res.headers['x-request-id']).toBe('abc');

    const [sa, sb, sc] = [only(a.seen), only(b.seen), only(c.seen)];
    expect(sa.budgetHeader).toBe('2000');
    const budgets = [sa, sb, sc].map(s => Number(s.budgetHeader));
    expect(budgets[1]).toBeLessThan(budgets[0] as number);
    expect(budgets[2]).toBeLessThan(budgets[1] as number);
    // C never believes it has more time than A had left.
    expect(budgets[2]).toBeLessThanOrEqual(sa.remainingMs);
    expect(sc.remainingMs).toBeLessThanOrEqual(sa.remainingMs);
    expect(sb.remainingMs).toBeLessThan(sa.remainingMs);
    expect(sc.remainingMs).toBeLessThan(sb.remainingMs);
    // Propagated by default: the client reads the plugin's ambient request id.
    expect(sb.requestId).toBe('abc');
    expect(sc.requestId).toBe('abc');
  });

  it('when A’s deadline passes, B’s outbound call is aborted, C’s signal fires, the client gets 504', async () => {
    // C's own clock is frozen, so its deadline can only fire because B went away: what stops C
    // here is B's abort travelling over the socket, not C's own timer.
    const c = await leaf('hang', { clock: new TestClock() });
    const b = await forwarding('b', c.url);
    const a = await forwarding('a', b.url);
    const budgetMs = 300;
    const res = await call(a.url, { [BULWARK_BUDGET_HEADER]: String(budgetMs) });

    expect(res.status).toBe(504);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      status: 504,
      code: 'DEADLINE_EXCEEDED',
      type: 'urn:bulwark:problem:deadline-exceeded',
    });
    expect(res.elapsedMs).toBeLessThan(budgetMs + 500);

    const [sa, sc] = [only(a.seen), only(c.seen)];
    expect(Number(sc.budgetHeader)).toBeLessThanOrEqual(sa.remainingMs);
    expect(sc.remainingMs).toBeLessThan(budgetMs);
    // C's request deadline fired because B closed the connection.
    expect(await c.aborted).toMatchObject({ code: 'CANCELLED' });
    // B's outbound call was aborted (C never answers): by B's own deadline, or, when A's timer
    // fired first and A hung up on B, by B's request being cancelled.
    expectAborted(await b.outboundFailed);
    expect(b.outboundErrors).toHaveLength(1);
  });

  it('with real clocks everywhere, whichever timer fires first, the answer is 504 DEADLINE_EXCEEDED', async () => {
    const c = await leaf('hang');
    const b = await forwarding('b', c.url);
    const a = await forwarding('a', b.url);
    const res = await call(a.url, { [BULWARK_BUDGET_HEADER]: '300' });
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(res.elapsedMs).toBeLessThan(300 + 500);
    expect(await c.aborted).toMatchObject({
      code: expect.stringMatching(/^(DEADLINE_EXCEEDED|CANCELLED)$/),
    });
    // Aborted, or C's 504 for the budget B sent (then `downstream`): never a 502-style failure.
    expect(await b.outboundFailed).toMatchObject({
      code: expect.stringMatching(/^(DEADLINE_EXCEEDED|CANCELLED)$/),
    });
  });
});

describe('three hops with a fault proxy between B and C', () => {
  /** B retries fast and caps Retry-After hints at 50 ms so the suite stays quick. */
  const bPolicies = [
    retry({
      maxAttempts: 3,
      backoff: constantBackoff({ delayMs: 5 }),
      budget: false,
      retryAfter: { maxMs: 50 },
    }),
  ];

  async function chainWithProxy(faults: readonly ProxyFault[]) {
    const c = await leaf('ok');
    const proxy: FaultProxy = await startFaultProxy({
      target: { host: '127.0.0.1', port: c.port },
      mode: 'http',
    });
    cleanups.push(() => proxy.close());
    await proxy.setFaults(faults);
    const b = await forwarding('b', proxy.url, bPolicies);
    const a = await forwarding('a', b.url);
    return { a, b, c, proxy };
  }

  /** B's problem document, as A's client received it (A's outbound error). */
  function problemFromB(a: Service): {
    error: HttpDependencyError;
    problem: Record<string, unknown>;
  } {
    const error = a.outboundErrors.at(-1);
    if (!isHttpDependencyError(error))
      throw new Error(`expected an HTTP error, got ${String(error)}`);
    return { error, problem: JSON.parse(error.bodyExcerpt ?? '{}') as Record<string, unknown> };
  }

  it('hang → B’s deadline aborts its call and B answers 504; A answers 504 DEADLINE_EXCEEDED', async () => {
    const { a, b } = await chainWithProxy([{ kind: 'hang' }]);
    const res = await call(a.url, { [BULWARK_BUDGET_HEADER]: '400' });
    expect(res.status).toBe(504);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(res.elapsedMs).toBeLessThan(400 + 500);
    expectAborted(await b.outboundFailed);
  });

  it.each([
    ['reset', { kind: 'reset' } as const, 'CONNECTION_RESET'],
    ['down', { kind: 'down' } as const, 'CONNECTION_REFUSED'],
  ])('%s → B retries, then answers 502 upstream-failed; A answers 502', async (_, fault, code) => {
    const { a, b, proxy } = await chainWithProxy([fault]);
    const res = await call(a.url, {});
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      code: 'UPSTREAM_5XX',
      type: 'urn:bulwark:problem:upstream-failed',
    });
    // Every B call retried C three times before answering.
    expect(b.outboundErrors.length).toBeGreaterThan(0);
    for (const error of b.outboundErrors) expect(error).toMatchObject({ code, attempt: 3 });
    const { error, problem } = problemFromB(a);
    expect(error).toMatchObject({ code: 'UPSTREAM_5XX', status: 502 });
    expect(problem).toMatchObject({
      status: 502,
      code,
      type: 'urn:bulwark:problem:upstream-failed',
    });
    if (fault.kind === 'reset') expect(proxy.stats().faults.reset).toBeGreaterThanOrEqual(3);
  });

  it('http-error 503 with Retry-After → B retries, then answers 502 with Retry-After', async () => {
    const { a, b, proxy } = await chainWithProxy([
      { kind: 'http-error', status: 503, headers: { 'retry-after': '1' } },
    ]);
    const res = await call(a.url, {});
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'UPSTREAM_5XX' });
    for (const error of b.outboundErrors) {
      expect(error).toMatchObject({
        code: 'UPSTREAM_5XX',
        status: 503,
        attempt: 3,
        retryAfterMs: 1_000,
      });
    }
    const { error, problem } = problemFromB(a);
    expect(error.headers?.['retry-after']).toBe('1');
    expect(problem).toMatchObject({ status: 502, code: 'UPSTREAM_5XX', retryable: true });
    expect(proxy.stats().faults['http-error']).toBe(3 * b.outboundErrors.length);
  });
});
