import { concurrencyLimit } from '@bulwark/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { bulwark } from './plugin.js';
import type { BulwarkSheddingOptions } from './options.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map(app => app.close()));
});

/** A route whose requests stay in flight until `release()` is called. */
async function gatedApp(shedding: BulwarkSheddingOptions) {
  let open!: () => void;
  const gate = new Promise<void>(resolve => (open = resolve));
  let arrived = 0;
  const app = Fastify();
  apps.push(app);
  await app.register(bulwark, { shutdown: { handleSignals: false }, shedding });
  app.get('/work', async () => {
    arrived++;
    await gate;
    return { ok: true };
  });
  await app.ready();
  const waitArrived = async (n: number) => {
    while (arrived < n) await new Promise(resolve => setImmediate(resolve));
  };
  return { app, release: open, waitArrived };
}

const batch = { 'x-priority': 'batch' };
const priority = (request: { headers: Record<string, unknown> }) =>
  request.headers['x-priority'] === 'batch' ? -1 : 0;

describe('load shedding', () => {
  it('the K+1-th concurrent request gets 503 + Retry-After; probes are never shed', async () => {
    const limit = concurrencyLimit({ limit: { kind: 'aimd', initial: 4, min: 4, max: 4 } });
    const { app, release, waitArrived } = await gatedApp({
      maxEventLoopDelayMs: false,
      concurrency: limit,
      retryAfterMs: 1_500,
    });
    const first = Array.from({ length: 4 }, () => app.inject({ url: '/work' }));
    await waitArrived(4);
    const shed = await app.inject({ url: '/work' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('2');
    expect(shed.headers['content-type']).toContain('application/problem+json');
    expect(shed.json()).toMatchObject({
      code: 'LOAD_SHED',
      type: 'urn:bulwark:problem:overloaded',
      retryable: true,
    });
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    release();
    expect((await Promise.all(first)).map(r => r.statusCode)).toEqual([200, 200, 200, 200]);
    expect(limit.inFlight).toBe(0);
    expect((await app.inject({ url: '/work' })).statusCode).toBe(200);
  });

  it('sheds low-priority requests first', async () => {
    const limit = concurrencyLimit({ limit: { kind: 'aimd', initial: 4, min: 4, max: 4 } });
    const { app, release, waitArrived } = await gatedApp({
      maxEventLoopDelayMs: false,
      concurrency: limit,
      priority,
      lowPriorityShare: 0.5,
    });
    const held = [app.inject({ url: '/work' }), app.inject({ url: '/work', headers: batch })];
    await waitArrived(2);
    // 2 of 4 in flight: batch traffic (half the limit) is shed, normal traffic still admitted.
    expect((await app.inject({ url: '/work', headers: batch })).statusCode).toBe(503);
    held.push(app.inject({ url: '/work' }));
    await waitArrived(3);
    release();
    expect((await Promise.all(held)).map(r => r.statusCode)).toEqual([200, 200, 200]);
  });

  it('sheds on event-loop delay, low priority at a lower threshold, never probes', async () => {
    let delayMs = 0;
    const { app, release } = await gatedApp({
      maxEventLoopDelayMs: 200,
      eventLoopDelay: { delayMs: () => delayMs },
      priority,
    });
    release();
    expect((await app.inject({ url: '/work' })).statusCode).toBe(200);
    delayMs = 160; // above 0.75 × 200 only
    expect((await app.inject({ url: '/work', headers: batch })).statusCode).toBe(503);
    expect((await app.inject({ url: '/work' })).statusCode).toBe(200);
    delayMs = 250;
    const shed = await app.inject({ url: '/work' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('the default monitor measures and stops on close', async () => {
    const app = Fastify();
    await app.register(bulwark, {
      shutdown: { handleSignals: false },
      shedding: { eventLoopDelayWindowMs: 20 },
    });
    app.get('/', async () => 'ok');
    expect((await app.inject({ url: '/' })).statusCode).toBe(200);
    await app.close();
  });
});
