import { CircuitOpenError } from '@bulwark/core';
import { HttpDependencyError } from '@bulwark/http';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { composition } from './composition.js';
import { toEnvelope } from './envelope.js';
import { alternate, staleFrom } from './fallbacks.js';

type Input = { id: number };

/** An upstream error whose message holds what must never reach a client. */
const leaky = (): HttpDependencyError =>
  new HttpDependencyError(
    'CONNECTION_REFUSED',
    { dependency: 'users.internal.corp', method: 'GET', path: '/v1/secret', attempt: 1 },
    'connect ECONNREFUSED 10.0.0.7:5432',
    { retryable: true },
  );

function overview(clock: TestClock) {
  return composition<Input>({ name: 'user-overview', clock, timeoutMs: 800 })
    .part('user', { criticality: 'critical', load: async input => ({ id: input.id, name: 'Ada' }) })
    .part('orders', {
      criticality: 'optional',
      timeoutMs: 400,
      load: () => new Promise<number[]>(() => {}),
      fallbacks: [staleFrom(() => ({ value: [9], ageMs: 93_000, tier: 'l2', stale: true }))],
    })
    .part('recommendations', {
      criticality: 'optional',
      load: () => Promise.reject(new CircuitOpenError('recs-breaker', 2_000)),
      fallbacks: [alternate('popular-items', () => ({ items: ['p1'], kind: 'popular' }))],
    })
    .part('reviews', { criticality: 'sheddable', load: () => Promise.reject(leaky()) });
}

describe('envelope', () => {
  it('matches the decided shape: data, errors, meta', async () => {
    const clock = new TestClock();
    const run = observe(overview(clock).run({ id: 1 }, { requestId: 'req-1' }));
    await clock.advance(400);
    await flushMicrotasks();
    const envelope = toEnvelope(run.value!);
    expect(Object.keys(envelope)).toEqual(['data', 'errors', 'meta']);
    expect(envelope.data).toEqual({
      user: { id: 1, name: 'Ada' },
      orders: [9],
      recommendations: { items: ['p1'], kind: 'popular' },
      reviews: null,
    });
    expect(envelope.errors).toEqual([
      {
        message: 'orders served from cache: upstream timed out',
        path: ['orders'],
        extensions: { code: 'TIMEOUT', retryable: true, part: 'orders' },
      },
      {
        message: 'recommendations replaced by a fallback: circuit open',
        path: ['recommendations'],
        extensions: { code: 'CIRCUIT_OPEN', retryable: true, part: 'recommendations' },
      },
      {
        message: 'reviews omitted: upstream failed',
        path: ['reviews'],
        extensions: { code: 'UPSTREAM_ERROR', retryable: true, part: 'reviews' },
      },
    ]);
    expect(envelope.meta).toEqual({
      status: 'degraded',
      requestId: 'req-1',
      deadline: { budgetMs: 800, elapsedMs: 400 },
      parts: {
        user: { status: 'ok', criticality: 'critical', source: 'origin', latencyMs: 0 },
        orders: {
          status: 'stale',
          criticality: 'optional',
          source: 'cache:l2',
          ageMs: 93_000,
          reason: 'timeout',
          latencyMs: 400,
        },
        recommendations: {
          status: 'fallback',
          criticality: 'optional',
          source: 'alternate:popular-items',
          reason: 'circuit_open',
          retryAfterMs: 2_000,
          latencyMs: 0,
        },
        reviews: {
          status: 'omitted',
          criticality: 'sheddable',
          reason: 'upstream_error',
          latencyMs: 0,
        },
      },
    });
  });

  it('never carries an upstream error message, but keeps the error on the result', async () => {
    const clock = new TestClock();
    const run = observe(overview(clock).run({ id: 1 }));
    await clock.advance(400);
    const result = run.value!;
    const text = JSON.stringify(toEnvelope(result));
    for (const secret of ['10.0.0.7', 'internal', 'ECONNREFUSED', '/v1/secret', 'recs-breaker']) {
      expect(text).not.toContain(secret);
    }
    expect(result.parts.reviews.error).toBeInstanceOf(HttpDependencyError);
  });

  it('has no errors member and status complete when every part is ok', async () => {
    const result = await composition({ name: 'c' })
      .part('a', { criticality: 'critical', load: () => 1 })
      .run(undefined);
    const envelope = toEnvelope(result);
    expect(envelope.errors).toBeUndefined();
    expect(envelope.meta.status).toBe('complete');
    expect(envelope.meta.requestId).toBeUndefined();
  });
});
