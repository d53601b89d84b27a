import {
  CircuitOpenError,
  Deadline,
  LoadShedError,
  RateLimitedError,
  RetriesExhaustedError,
  Scope,
  pipeline,
  timeout,
} from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/ambient';
import { HttpDependencyError } from '@bulwark/http';
import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { composition } from './composition.js';
import { reasonOf, InvalidResponseError } from './reasons.js';
import type { CompositionEvent, PartContext } from './types.js';

type Input = { id: number };

/** A load whose outcome the test decides; it records the context it was called with. */
interface HeldLoad<T> {
  readonly load: (input: unknown, ctx: PartContext<Record<string, unknown>>) => Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  readonly calls: number;
  /** The context of the latest call. */
  readonly ctx: PartContext<Record<string, unknown>> | undefined;
}

function heldLoad<T>(): HeldLoad<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  let calls = 0;
  let ctx: PartContext<Record<string, unknown>> | undefined;
  return {
    load: (_input, context) => {
      calls++;
      ctx = context;
      // Read the signal now, as real I/O would, so the test can look at it after the run.
      void context.signal;
      return new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
    },
    resolve: value => resolve(value),
    reject: error => reject(error),
    get calls() {
      return calls;
    },
    get ctx() {
      return ctx;
    },
  };
}

describe('composition run', () => {
  it('takes loads that answer or throw synchronously, dependents included', async () => {
    const ok = composition<Input>({ name: 'sync', timeoutMs: 1_000 })
      .part('a', { criticality: 'critical', load: input => input.id })
      .part('b', { criticality: 'optional', dependsOn: ['a'], load: (_i, ctx) => ctx.deps.a + 1 })
      .part('c', { criticality: 'optional', timeoutMs: 100, load: () => 'c' });
    const result = await ok.run({ id: 1 });
    expect(result.status).toBe('complete');
    expect(result.data).toEqual({ a: 1, b: 2, c: 'c' });

    let laterStarted = false;
    const failing = composition<Input>({ name: 'sync-fail', timeoutMs: 1_000 })
      .part('first', {
        criticality: 'critical',
        load: () => {
          throw new Error('down');
        },
      })
      .part('later', {
        criticality: 'optional',
        load: () => {
          laterStarted = true;
          return 'x';
        },
      });
    const failed = await failing.run({ id: 1 });
    expect(failed.ok).toBe(false);
    expect(failed.parts.first.status).toBe('error');
    // Decided before the optional part was started: it is given up, not run.
    expect(laterStarted).toBe(false);
    expect(failed.parts.later).toMatchObject({ status: 'omitted', reason: 'cancelled' });
  });

  it('completes when every part loads from origin, with latency per part', async () => {
    const clock = new TestClock();
    const user = heldLoad<{ name: string }>();
    const orders = heldLoad<number[]>();
    const c = composition<Input>({ name: 'overview', clock, timeoutMs: 800 })
      .part('user', { criticality: 'critical', load: user.load })
      .part('orders', { criticality: 'optional', load: orders.load });
    const run = observe(c.run({ id: 1 }, { requestId: 'r-1' }));
    await clock.advance(30);
    user.resolve({ name: 'Ada' });
    await clock.advance(10);
    orders.resolve([1, 2]);
    await flushMicrotasks();
    const result = run.value!;
    expect(result.ok).toBe(true);
    expect(result.status).toBe('complete');
    expect(result.data).toEqual({ user: { name: 'Ada' }, orders: [1, 2] });
    expect(result.parts.user).toMatchObject({ status: 'ok', source: 'origin', latencyMs: 30 });
    expect(result.parts.orders).toMatchObject({ status: 'ok', source: 'origin', latencyMs: 40 });
    expect(result.budgetMs).toBe(800);
    expect(result.elapsedMs).toBe(40);
    expect(result.requestId).toBe('r-1');
    // The run's deadline timer is released when the run ends.
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts a part only when its dependencies have values, and hands it their values', async () => {
    const clock = new TestClock();
    const user = heldLoad<{ id: number }>();
    let seen: unknown;
    const c = composition<Input>({ name: 'overview', clock })
      .part('user', { criticality: 'critical', load: user.load })
      .part('orders', {
        criticality: 'optional',
        dependsOn: ['user'],
        load: (_input, ctx) => {
          seen = ctx.deps.user;
          return [ctx.deps.user.id];
        },
      });
    const run = observe(c.run({ id: 1 }));
    await flushMicrotasks();
    expect(seen).toBeUndefined();
    user.resolve({ id: 7 });
    await flushMicrotasks();
    expect(seen).toEqual({ id: 7 });
    expect(run.value?.data).toEqual({ user: { id: 7 }, orders: [7] });
  });

  it('does not call a part whose dependency has no value; it goes to its fallbacks', async () => {
    const clock = new TestClock();
    let called = false;
    const c = composition<Input>({ name: 'overview', clock })
      .part('profile', {
        criticality: 'optional',
        load: () => Promise.reject(new Error('down')),
      })
      .part('badges', {
        criticality: 'optional',
        dependsOn: ['profile'],
        load: () => {
          called = true;
          return ['x'];
        },
        fallbacks: [{ kind: 'static', make: () => [] as string[] }],
      });
    const result = await c.run({ id: 1 });
    expect(called).toBe(false);
    expect(result.status).toBe('degraded');
    expect(result.parts.profile).toMatchObject({ status: 'omitted', reason: 'upstream_error' });
    expect(result.parts.badges).toMatchObject({
      status: 'fallback',
      source: 'static',
      reason: 'dependency_failed',
    });
    expect(result.data.badges).toEqual([]);
  });

  it('gives each part a slice of the request deadline, never more than the request has left', async () => {
    const clock = new TestClock();
    const short = heldLoad<number>();
    const long = heldLoad<number>();
    const c = composition<Input>({ name: 'slices', clock })
      .part('short', { criticality: 'optional', timeoutMs: 100, load: short.load })
      .part('long', { criticality: 'optional', timeoutMs: 5_000, load: long.load });
    const request = Deadline.after(300, { clock });
    const run = observe(c.run({ id: 1 }, { deadline: request }));
    await flushMicrotasks();
    expect(short.ctx?.deadline.remainingMs()).toBe(100);
    expect(long.ctx?.deadline.remainingMs()).toBe(300);
    await clock.advance(100);
    // The part's own slice ran out: `timeout`; the request still has time.
    expect(short.ctx?.signal.aborted).toBe(true);
    expect(long.ctx?.signal.aborted).toBe(false);
    await clock.advance(200);
    const result = run.value!;
    expect(result.parts.short).toMatchObject({
      status: 'omitted',
      reason: 'timeout',
      latencyMs: 100,
    });
    expect(result.parts.long).toMatchObject({
      status: 'omitted',
      reason: 'deadline_exceeded',
      latencyMs: 300,
    });
    expect(long.ctx?.signal.aborted).toBe(true);
  });

  it('ctx.cancel aborts as ctx.signal does (slice, run decided), without an AbortController', async () => {
    const clock = new TestClock();
    const seen: { name: string; cancel: AbortSignal | Scope }[] = [];
    const keep = (name: string) => (_input: unknown, ctx: PartContext<Record<string, unknown>>) => {
      seen.push({ name, cancel: ctx.cancel });
      return new Promise<never>(() => {});
    };
    let failUser: (error: unknown) => void = () => {};
    const c = composition<Input>({ name: 'cancel', clock })
      .part('user', {
        criticality: 'critical',
        load: () => new Promise((_resolve, reject) => (failUser = reject)),
      })
      .part('short', { criticality: 'optional', timeoutMs: 100, load: keep('short') })
      .part('long', { criticality: 'optional', timeoutMs: 5_000, load: keep('long') });
    const run = observe(c.run({ id: 1 }, { deadline: Deadline.after(1_000, { clock }) }));
    await flushMicrotasks();
    const [short, long] = seen;
    expect(short?.cancel).toBeInstanceOf(Scope);
    expect(long?.cancel.aborted).toBe(false);
    await clock.advance(100);
    expect(short?.cancel.aborted).toBe(true); // its slice ran out
    expect(long?.cancel.aborted).toBe(false);
    failUser(new Error('users down'));
    await flushMicrotasks();
    expect(run.value?.ok).toBe(false);
    // The critical part failed: the optional part still running is cancelled.
    expect(long?.cancel.aborted).toBe(true);
    expect((long?.cancel as unknown as { controller: unknown }).controller).toBeUndefined();
  });

  it('never cancels the caller deadline when the run ends early', async () => {
    const clock = new TestClock();
    const request = Deadline.after(300, { clock });
    const c = composition<Input>({ name: 'early', clock }).part('a', {
      criticality: 'critical',
      load: (_input, ctx) => {
        void ctx.signal;
        return 1;
      },
    });
    expect((await c.run({ id: 1 }, { deadline: request })).ok).toBe(true);
    expect(request.expired).toBe(false);
    expect(request.signal.aborted).toBe(false);
  });

  it('caps the caller deadline with the composition timeoutMs', async () => {
    const clock = new TestClock();
    const a = heldLoad<number>();
    const c = composition<Input>({ name: 'cap', clock, timeoutMs: 200 }).part('a', {
      criticality: 'optional',
      load: a.load,
    });
    const run = observe(c.run({ id: 1 }, { deadline: Deadline.after(1_000, { clock }) }));
    await flushMicrotasks();
    expect(a.ctx?.deadline.remainingMs()).toBe(200);
    await clock.advance(200);
    expect(run.value?.budgetMs).toBe(200);
  });

  it('uses the ambient deadline when the run is given none', async () => {
    const clock = new TestClock();
    const a = heldLoad<number>();
    const c = composition<Input>({ name: 'ambient', clock }).part('a', {
      criticality: 'optional',
      load: a.load,
    });
    const run = observe(runWithDeadline(Deadline.after(50, { clock }), () => c.run({ id: 1 })));
    await flushMicrotasks();
    expect(a.ctx?.deadline.remainingMs()).toBe(50);
    await clock.advance(50);
    expect(run.value?.parts.a).toMatchObject({ reason: 'deadline_exceeded' });
  });

  it('answers at once when a critical part fails, aborting the optional parts still running', async () => {
    const clock = new TestClock();
    const user = heldLoad<string>();
    const orders = heldLoad<number[]>();
    const recs = heldLoad<string[]>();
    const c = composition<Input>({ name: 'overview', clock })
      .part('user', { criticality: 'critical', load: user.load })
      .part('orders', { criticality: 'optional', load: orders.load })
      .part('recs', { criticality: 'sheddable', load: recs.load });
    const run = observe(c.run({ id: 1 }));
    await clock.advance(5);
    user.reject(new CircuitOpenError('users', 2_500));
    await flushMicrotasks();
    // Decided without moving the clock: nobody waited for orders or recs.
    expect(run.state).toBe('fulfilled');
    const result = run.value!;
    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({
      kind: 'unavailable',
      parts: ['user'],
      retryAfterMs: 2_500,
    });
    expect(result.parts.user).toMatchObject({ status: 'error', reason: 'circuit_open' });
    expect(result.parts.orders).toMatchObject({
      status: 'omitted',
      reason: 'cancelled',
      latencyMs: 5,
    });
    expect(orders.ctx?.signal.aborted).toBe(true);
    expect(recs.ctx?.signal.aborted).toBe(true);
    // Late answers change nothing.
    orders.resolve([1]);
    await flushMicrotasks();
    expect(result.data.orders).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it('fails with kind "deadline" when the request deadline runs out before a critical part', async () => {
    const clock = new TestClock();
    const user = heldLoad<string>();
    const c = composition<Input>({ name: 'overview', clock, timeoutMs: 250 }).part('user', {
      criticality: 'critical',
      load: user.load,
    });
    const run = observe(c.run({ id: 1 }));
    await clock.advance(249);
    expect(run.state).toBe('pending');
    await clock.advance(1);
    expect(run.value?.failure).toMatchObject({ kind: 'deadline', parts: ['user'] });
    expect(run.value?.parts.user).toMatchObject({ status: 'error', reason: 'deadline_exceeded' });
    expect(user.ctx?.signal.aborted).toBe(true);
  });

  it('omits sheddable parts without calling them when the run sheds', async () => {
    const clock = new TestClock();
    let calls = 0;
    const c = composition<Input>({ name: 'shed', clock, shed: input => input.id === 2 })
      .part('user', { criticality: 'critical', load: () => 'u' })
      .part('recs', {
        criticality: 'sheddable',
        load: () => {
          calls++;
          return ['r'];
        },
        fallbacks: [{ kind: 'static', make: () => ['popular'] }],
      })
      .part('orders', { criticality: 'optional', load: () => [1] });
    const shed = await c.run({ id: 1 }, { shed: true });
    expect(calls).toBe(0);
    expect(shed.status).toBe('degraded');
    expect(shed.parts.recs).toMatchObject({ status: 'omitted', reason: 'load_shed', latencyMs: 0 });
    expect(shed.parts.orders.status).toBe('ok');
    const byOption = await c.run({ id: 2 });
    expect(byOption.parts.recs.reason).toBe('load_shed');
    expect(calls).toBe(0);
    const normal = await c.run({ id: 3 });
    expect(normal.status).toBe('complete');
    expect(calls).toBe(1);
  });

  it('does not start a part with less than minRemainingMs left; a sync stale read still serves', async () => {
    const clock = new TestClock();
    let calls = 0;
    const c = composition<Input>({ name: 'min', clock, minRemainingMs: 5 }).part('orders', {
      criticality: 'optional',
      load: () => {
        calls++;
        return [1];
      },
      fallbacks: [
        { kind: 'stale', read: () => ({ value: [9], ageMs: 60_000, tier: 'l1', stale: true }) },
      ],
    });
    const result = await c.run({ id: 1 }, { deadline: Deadline.after(4, { clock }) });
    expect(calls).toBe(0);
    expect(result.parts.orders).toMatchObject({
      status: 'stale',
      source: 'cache:l1',
      ageMs: 60_000,
      reason: 'deadline_exceeded',
    });
    expect(result.data.orders).toEqual([9]);
    // A part may ask for less.
    const relaxed = composition<Input>({ name: 'min', clock }).part('orders', {
      criticality: 'optional',
      minRemainingMs: 1,
      load: () => {
        calls++;
        return [1];
      },
    });
    expect((await relaxed.run({ id: 1 }, { deadline: Deadline.after(4, { clock }) })).status).toBe(
      'complete',
    );
  });

  it('runs the load through the part policies (core pipeline)', async () => {
    const clock = new TestClock();
    const a = heldLoad<number>();
    const c = composition<Input>({ name: 'pol', clock }).part('a', {
      criticality: 'optional',
      policies: pipeline(timeout({ timeoutMs: 40, clock, resolutionMs: 0 })),
      load: a.load,
    });
    const run = observe(c.run({ id: 1 }));
    await clock.advance(40);
    expect(run.value?.parts.a).toMatchObject({ status: 'omitted', reason: 'timeout' });
    expect(a.ctx?.signal.aborted).toBe(true);
  });

  it('reports a read-through cache through ctx.provenance', async () => {
    const c = composition<Input>({ name: 'prov' })
      .part('fresh', {
        criticality: 'critical',
        load: (_input, ctx) => {
          ctx.provenance({ source: 'cache:l1', ageMs: 20, stale: false });
          return 1;
        },
      })
      .part('old', {
        criticality: 'optional',
        load: (_input, ctx) => {
          ctx.provenance({ value: 2, tier: 'l2', ageMs: 93_000, stale: true });
          return 2;
        },
      });
    const result = await c.run({ id: 1 });
    expect(result.parts.fresh).toMatchObject({ status: 'ok', source: 'cache:l1', ageMs: 20 });
    expect(result.parts.old).toMatchObject({ status: 'stale', source: 'cache:l2', ageMs: 93_000 });
    expect(result.status).toBe('degraded');
  });

  it('in strict mode fails on any degradation without trying fallbacks', async () => {
    let fallbackCalls = 0;
    const c = composition<Input>({ name: 'strict' })
      .part('user', { criticality: 'critical', load: () => 'u' })
      .part('orders', {
        criticality: 'optional',
        load: () => Promise.reject(new RateLimitedError('orders', 3_000)),
        fallbacks: [
          {
            kind: 'static',
            make: () => {
              fallbackCalls++;
              return [];
            },
          },
        ],
      });
    const strict = await c.run({ id: 1 }, { strict: true });
    expect(fallbackCalls).toBe(0);
    expect(strict.ok).toBe(false);
    expect(strict.strict).toBe(true);
    expect(strict.failure).toMatchObject({
      kind: 'degraded',
      parts: ['orders'],
      retryAfterMs: 3_000,
    });
    const lenient = await c.run({ id: 1 });
    expect(lenient.status).toBe('degraded');
    expect(fallbackCalls).toBe(1);
  });

  it('fails with kind "cancelled" when the caller signal fires, aborting every part', async () => {
    const clock = new TestClock();
    const a = heldLoad<number>();
    const controller = new AbortController();
    const c = composition<Input>({ name: 'cancel', clock }).part('a', {
      criticality: 'optional',
      load: a.load,
    });
    const run = observe(c.run({ id: 1 }, { signal: controller.signal }));
    await flushMicrotasks();
    controller.abort(new Error('client hung up'));
    await flushMicrotasks();
    expect(run.value?.failure?.kind).toBe('cancelled');
    expect(a.ctx?.signal.aborted).toBe(true);
    const already = await c.run({ id: 1 }, { signal: controller.signal });
    expect(already.failure?.kind).toBe('cancelled');
  });

  it('emits an event per part outcome and per run, only to listeners', async () => {
    const c = composition<Input>({ name: 'ev' })
      .part('a', { criticality: 'critical', load: () => 1 })
      .part('b', { criticality: 'optional', load: () => Promise.reject(new Error('x')) });
    const events: CompositionEvent[] = [];
    const sub = c.onEvent(event => events.push(event));
    await c.run({ id: 1 });
    sub.dispose();
    await c.run({ id: 1 });
    expect(events.map(e => e.type)).toEqual(['compose.part', 'compose.part', 'compose.run']);
    expect(events[1]).toMatchObject({ part: 'b', status: 'omitted', reason: 'upstream_error' });
    expect(events[2]).toMatchObject({ status: 'degraded', failure: undefined });
  });

  it('completes an empty composition', async () => {
    const result = await composition({ name: 'empty' }).run(undefined);
    expect(result).toMatchObject({ ok: true, status: 'complete', data: {} });
  });
});

describe('reasonOf', () => {
  const info = { dependency: 'users', method: 'GET', path: '/u', attempt: 1 };
  it.each([
    [new CircuitOpenError('b', 1), 'circuit_open'],
    [new RateLimitedError('r', 1), 'rate_limited'],
    [new LoadShedError(), 'load_shed'],
    [new InvalidResponseError(), 'invalid_response'],
    [new HttpDependencyError('HEADERS_TIMEOUT', info, 'x', { retryable: true }), 'timeout'],
    [new HttpDependencyError('BAD_JSON', info, 'x', { retryable: false }), 'invalid_response'],
    [
      new HttpDependencyError('UPSTREAM_4XX', info, 'x', { retryable: true, status: 429 }),
      'rate_limited',
    ],
    [
      new HttpDependencyError('UPSTREAM_5XX', info, 'x', { retryable: true, status: 502 }),
      'upstream_error',
    ],
    [new RetriesExhaustedError([new CircuitOpenError('b', 1)]), 'circuit_open'],
    [new Error('plain'), 'upstream_error'],
  ])('%s -> %s', (error, reason) => {
    expect(reasonOf(error)).toBe(reason);
  });
});
