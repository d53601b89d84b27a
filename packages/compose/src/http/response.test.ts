import { CircuitOpenError, LoadShedError } from '@bulwark/core';
import { HttpDependencyError } from '@bulwark/http';
import { TestClock, observe } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { composition, staticValue } from '../compose/index.js';
import { DEGRADED_PROBLEM_TYPE, toHttpResponse } from './response.js';

type Input = { id: number };
const upstream = new HttpDependencyError(
  'UPSTREAM_5XX',
  { dependency: 'users.internal', method: 'GET', path: '/private', attempt: 1 },
  'answered 502 from 10.1.2.3',
  { retryable: true, status: 502 },
);

function build(userLoad: () => unknown, clock = new TestClock()) {
  return composition<Input>({ name: 'overview', clock, timeoutMs: 300 })
    .part('user', { criticality: 'critical', load: userLoad })
    .part('orders', {
      criticality: 'optional',
      load: () => Promise.reject(upstream),
      fallbacks: [staticValue([] as number[])],
    });
}

describe('toHttpResponse', () => {
  it('answers 200 with the envelope; no-store when degraded', async () => {
    const result = await build(() => 'u').run({ id: 1 });
    const response = toHttpResponse(result);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toMatchObject({
      data: { user: 'u', orders: [] },
      meta: { status: 'degraded' },
    });
  });

  it('lets a complete response be cached (no cache-control set)', async () => {
    const result = await composition({ name: 'c' })
      .part('a', { criticality: 'critical', load: () => 1 })
      .run(undefined);
    const response = toHttpResponse(result);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBeUndefined();
  });

  it('answers 504 when the deadline runs out before a critical part', async () => {
    const clock = new TestClock();
    const run = observe(
      build(() => new Promise(() => {}), clock).run({ id: 1 }, { requestId: 'r9' }),
    );
    await clock.advance(300);
    const response = toHttpResponse(run.value!, { instance: '/overview/1' });
    expect(response.statusCode).toBe(504);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers['retry-after']).toBeUndefined();
    expect(response.body).toEqual({
      type: 'urn:bulwark:problem:deadline-exceeded',
      title: 'Deadline Exceeded',
      status: 504,
      detail: 'A part this response needs did not answer within the time budget.',
      code: 'DEADLINE_EXCEEDED',
      retryable: true,
      failedParts: ['user'],
      instance: '/overview/1',
      requestId: 'r9',
    });
  });

  it('answers 503 with Retry-After from the failure when a critical part fails otherwise', async () => {
    const result = await build(() =>
      Promise.reject(new CircuitOpenError('users-breaker', 4_200)),
    ).run({
      id: 1,
    });
    const response = toHttpResponse(result);
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toMatchObject({
      type: 'urn:bulwark:problem:dependency-unavailable',
      code: 'CIRCUIT_OPEN',
      failedParts: ['user'],
    });
    expect(JSON.stringify(response.body)).not.toContain('users-breaker');
  });

  it('answers 503 overloaded with the default Retry-After when a critical part was shed', async () => {
    const result = await build(() => Promise.reject(new LoadShedError())).run({ id: 1 });
    const response = toHttpResponse(result, { defaultRetryAfterMs: 2_000 });
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('2');
    expect(response.body).toMatchObject({
      type: 'urn:bulwark:problem:overloaded',
      code: 'LOAD_SHED',
    });
  });

  it('keeps upstream messages out of a problem', async () => {
    const response = toHttpResponse(await build(() => Promise.reject(upstream)).run({ id: 1 }));
    expect(response.statusCode).toBe(503);
    expect(response.body).toMatchObject({ code: 'UPSTREAM_ERROR', failedParts: ['user'] });
    const text = JSON.stringify(response.body);
    for (const secret of ['10.1.2.3', 'internal', '/private']) expect(text).not.toContain(secret);
  });

  it('turns degradation into a 503 problem listing degraded parts under strict handling', async () => {
    const result = await build(() => 'u').run({ id: 1 }, { strict: true });
    const response = toHttpResponse(result);
    expect(response.statusCode).toBe(503);
    expect(response.headers['preference-applied']).toBe('handling=strict');
    expect(response.headers['retry-after']).toBe('1');
    expect(response.body).toMatchObject({
      type: DEGRADED_PROBLEM_TYPE,
      code: 'DEGRADED',
      degradedParts: ['orders'],
    });
  });

  it('adds Server-Timing per part on request', async () => {
    const clock = new TestClock();
    const c = composition<Input>({ name: 'st', clock })
      .part('a', {
        criticality: 'critical',
        load: () => new Promise<number>(resolve => clock.setTimer(() => resolve(1), 12)),
      })
      .part('b', { criticality: 'optional', load: () => Promise.reject(new Error('x')) });
    const run = observe(c.run({ id: 1 }));
    await clock.advance(12);
    const response = toHttpResponse(run.value!, { serverTiming: true });
    expect(response.headers['server-timing']).toBe('a;dur=12, b;dur=0;desc="omitted"');
  });
});
