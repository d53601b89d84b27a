import { TestClock } from '@bulwark/testing';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from './health.js';
import { bulwark } from './plugin.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map(app => app.close()));
});

async function healthApp(checks: HealthCheck[], clock = new TestClock(), readyCacheMs = 2_000) {
  const app = Fastify();
  apps.push(app);
  await app.register(bulwark, {
    clock,
    health: { checks, readyCacheMs },
    shutdown: { handleSignals: false },
    shedding: { maxEventLoopDelayMs: false },
  });
  await app.ready();
  return app;
}

const up = (name: string, critical: boolean): HealthCheck => ({
  name,
  critical,
  check: async () => {},
});
const down = (name: string, critical: boolean): HealthCheck => ({
  name,
  critical,
  check: async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
  },
});

describe('health', () => {
  it('pass: every check up', async () => {
    const app = await healthApp([up('db', true), up('recs', false)]);
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/health+json');
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body.status).toBe('pass');
    expect(body.checks['db:responseTime'][0]).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    expect(typeof body.checks['db:responseTime'][0].time).toBe('string');
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  });

  it('warn: an optional dependency down is still 200 and ready', async () => {
    const app = await healthApp([up('db', true), down('recs', false)]);
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('warn');
    expect(res.json().checks['recs:responseTime'][0]).toEqual({
      status: 'fail',
      time: expect.any(String) as string,
      output: 'ECONNREFUSED',
    });
    expect(res.body).not.toContain('10.0.0.5');
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('fail: a critical dependency down is 503 and not ready; liveness stays 200', async () => {
    const app = await healthApp([down('db', true), up('recs', false)]);
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json().status).toBe('fail');
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(Object.keys(ready.json().checks)).toEqual(['db:responseTime']);
    expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  });

  it('a check that outlives its timeoutMs fails, and its signal is aborted', async () => {
    const clock = new TestClock();
    let signal: AbortSignal | undefined;
    const app = await healthApp(
      [
        {
          name: 'slow',
          critical: true,
          timeoutMs: 50,
          check: s => {
            signal = s;
            return new Promise(() => {});
          },
        },
      ],
      clock,
    );
    const pending = app.inject({ url: '/readyz' });
    while (signal === undefined) await new Promise(resolve => setImmediate(resolve));
    await clock.advance(50);
    const res = await pending;
    expect(res.statusCode).toBe(503);
    expect(res.json().checks['slow:responseTime'][0]).toMatchObject({
      status: 'fail',
      output: 'TIMEOUT',
    });
    expect(signal.aborted).toBe(true);
  });

  it('caches results for readyCacheMs and shares one run between concurrent probes', async () => {
    const clock = new TestClock();
    let calls = 0;
    const app = await healthApp(
      [
        {
          name: 'db',
          critical: true,
          check: async () => {
            calls++;
            return { observedValue: 3, observedUnit: 'connections', status: 'warn' as const };
          },
          measurement: 'connections',
        },
      ],
      clock,
      2_000,
    );
    const storm = await Promise.all(
      Array.from({ length: 20 }, () => app.inject({ url: '/readyz' })),
    );
    expect(storm.every(r => r.statusCode === 200)).toBe(true);
    await app.inject({ url: '/health' });
    expect(calls).toBe(1);
    expect((await app.inject({ url: '/health' })).json().checks['db:connections'][0]).toMatchObject(
      {
        status: 'warn',
        observedValue: 3,
        observedUnit: 'connections',
      },
    );
    await clock.advance(1_999);
    await app.inject({ url: '/readyz' });
    expect(calls).toBe(1);
    await clock.advance(1);
    await app.inject({ url: '/readyz' });
    expect(calls).toBe(2);
  });
});
