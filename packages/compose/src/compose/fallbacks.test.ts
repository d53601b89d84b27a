import { CircuitOpenError, Deadline } from '@bulwark/core';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { composition } from './composition.js';
import { alternate, omit, staleFrom, staticFrom, staticValue } from './fallbacks.js';
import type { FallbackContext } from './types.js';

type Input = { id: number };
const down = (): Promise<string[]> => Promise.reject(new CircuitOpenError('recs', 1_000));

describe('fallback chain', () => {
  it('tries stale, alternate, static in order; each failing passes to the next', async () => {
    const tried: string[] = [];
    const chain = (failStale: boolean, failAlternate: boolean, failStatic: boolean) =>
      composition<Input>({ name: 'chain' }).part('recs', {
        criticality: 'optional',
        load: down,
        fallbacks: [
          staleFrom(() => {
            tried.push('stale');
            if (failStale) return undefined;
            return { value: ['cached'], ageMs: 93_000, tier: 'l2', stale: true };
          }),
          alternate('popular-items', async () => {
            tried.push('alternate');
            if (failAlternate) throw new Error('popular down');
            return ['popular'];
          }),
          staticFrom(() => {
            tried.push('static');
            if (failStatic) throw new Error('no default');
            return ['default'];
          }),
        ],
      });

    let result = await chain(false, false, false).run({ id: 1 });
    expect(tried).toEqual(['stale']);
    expect(result.parts.recs).toMatchObject({
      status: 'stale',
      source: 'cache:l2',
      ageMs: 93_000,
      reason: 'circuit_open',
    });
    expect(result.data.recs).toEqual(['cached']);

    tried.length = 0;
    result = await chain(true, false, false).run({ id: 1 });
    expect(tried).toEqual(['stale', 'alternate']);
    expect(result.parts.recs).toMatchObject({
      status: 'fallback',
      source: 'alternate:popular-items',
    });
    expect(result.data.recs).toEqual(['popular']);

    tried.length = 0;
    result = await chain(true, true, false).run({ id: 1 });
    expect(tried).toEqual(['stale', 'alternate', 'static']);
    expect(result.parts.recs).toMatchObject({ status: 'fallback', source: 'static' });

    tried.length = 0;
    result = await chain(true, true, true).run({ id: 1 });
    expect(tried).toEqual(['stale', 'alternate', 'static']);
    expect(result.parts.recs).toMatchObject({ status: 'omitted', reason: 'circuit_open' });
    expect(result.parts.recs.source).toBeUndefined();
    expect(result.data.recs).toBeUndefined();
    expect(result.ok).toBe(true);
  });

  it('stops at omit() and gives fallbacks the reason and the origin error', async () => {
    let seen: FallbackContext | undefined;
    const origin = new CircuitOpenError('recs', 1_000);
    const c = composition<Input>({ name: 'omit' }).part('recs', {
      criticality: 'sheddable',
      load: () => Promise.reject(origin),
      fallbacks: [
        staleFrom(async (_input, ctx) => {
          seen = ctx;
          return undefined;
        }),
        omit(),
      ],
    });
    const result = await c.run({ id: 1 }, { requestId: 'r' });
    expect(result.parts.recs).toMatchObject({ status: 'omitted', reason: 'circuit_open' });
    expect(seen).toMatchObject({ reason: 'circuit_open', error: origin, requestId: 'r' });
  });

  it('lets a critical part resolve through a fallback (200, degraded)', async () => {
    const c = composition<Input>({ name: 'crit' }).part('user', {
      criticality: 'critical',
      load: () => Promise.reject(new Error('down')),
      fallbacks: [staticValue('anonymous')],
    });
    const result = await c.run({ id: 1 });
    expect(result.ok).toBe(true);
    expect(result.status).toBe('degraded');
    expect(result.parts.user).toMatchObject({ status: 'fallback', source: 'static' });
  });

  it('runs fallbacks within the request deadline: a slow alternate is aborted at it', async () => {
    const clock = new TestClock();
    let signal: AbortSignal | undefined;
    const c = composition<Input>({ name: 'slow', clock }).part('recs', {
      criticality: 'optional',
      timeoutMs: 50,
      load: () => new Promise<string[]>(() => {}),
      fallbacks: [
        alternate('popular', (_input, ctx) => {
          signal = ctx.signal;
          return new Promise<string[]>(() => {});
        }),
        staticValue(['default']),
      ],
    });
    const run = observe(c.run({ id: 1 }, { deadline: Deadline.after(200, { clock }) }));
    await clock.advance(50);
    expect(signal?.aborted).toBe(false);
    await clock.advance(149);
    expect(run.state).toBe('pending');
    await clock.advance(1);
    expect(signal?.aborted).toBe(true);
    // The alternate ran out of the request's time; the static default still answers.
    expect(run.value?.parts.recs).toMatchObject({
      status: 'fallback',
      source: 'static',
      reason: 'timeout',
    });
  });

  it('caps an alternate with its own timeoutMs', async () => {
    const clock = new TestClock();
    const c = composition<Input>({ name: 'alt', clock }).part('recs', {
      criticality: 'optional',
      load: down,
      fallbacks: [alternate('popular', () => new Promise<string[]>(() => {}), { timeoutMs: 30 })],
    });
    const run = observe(c.run({ id: 1 }));
    await clock.advance(30);
    expect(run.value?.parts.recs).toMatchObject({ status: 'omitted', latencyMs: 30 });
  });

  it('skips async fallbacks once the request has no time left, but takes sync ones', async () => {
    const clock = new TestClock();
    let alternateCalls = 0;
    let asyncStaleCalls = 0;
    const c = composition<Input>({ name: 'late', clock }).part('recs', {
      criticality: 'optional',
      load: () => new Promise<string[]>(() => {}),
      fallbacks: [
        alternate('popular', () => {
          alternateCalls++;
          return ['popular'];
        }),
        staleFrom(() => {
          asyncStaleCalls++;
          return Promise.resolve({ value: ['l2'], ageMs: 1, tier: 'l2' as const, stale: true });
        }),
        staleFrom(() => ({ value: ['l1'], ageMs: 5, tier: 'l1' as const, stale: true })),
      ],
    });
    const run = observe(c.run({ id: 1 }, { deadline: Deadline.after(100, { clock }) }));
    await clock.advance(100);
    await flushMicrotasks();
    expect(alternateCalls).toBe(0);
    expect(asyncStaleCalls).toBe(1);
    expect(run.value?.parts.recs).toMatchObject({
      status: 'stale',
      source: 'cache:l1',
      reason: 'deadline_exceeded',
    });
  });
});
