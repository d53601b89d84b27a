import { describe, expect, expectTypeOf, it } from 'vitest';
import { TestClock, observe } from '@bulwark/testing';
import { CircuitOpenError, hasCode, isTimeoutError, TimeoutError } from './errors.js';
import {
  fallback,
  whenCode,
  whenInstanceOf,
  type FallbackEvent,
  type FallbackPolicy,
} from './fallback.js';
import { pipeline } from './pipeline.js';
import type { ExecutionContext } from './policy.js';
import { timeout } from './timeout.js';

interface Item {
  id: number;
}

describe('fallback: options', () => {
  it.each([
    [undefined, /expected an options object/],
    [{}, /give exactly one of value or fn, got neither/],
    [{ value: 1, fn: () => 2 }, /got both/],
    [{ fn: 'x' }, /fn must be a function, got "x"/],
    [{ value: 1, when: true }, /when must be a function, got true/],
    [{ value: 1, name: 3 }, /name must be a non-empty string.*, got 3/],
    [{ value: 1, whenever: () => true }, /unknown option "whenever"/],
  ])('rejects %j', (options, message) => {
    expect(() => fallback(options as never)).toThrow(message);
  });

  it('helpers need at least one argument', () => {
    expect(() => whenCode()).toThrow(/at least one error code/);
    expect(() => whenInstanceOf()).toThrow(/at least one error class/);
  });

  it('accepts undefined as a value', async () => {
    await expect(
      fallback({ value: undefined }).execute(() => Promise.reject(new Error('x'))),
    ).resolves.toBe(undefined);
  });
});

describe('fallback', () => {
  it('passes successes through untouched', async () => {
    const policy = fallback({ value: 0 });
    await expect(policy.execute(() => 5)).resolves.toBe(5);
    await expect(policy.execute(async () => 6)).resolves.toBe(6);
  });

  it('replaces a failure with the value and emits fallback.used', async () => {
    const policy = fallback({ value: [] as Item[], name: 'items' });
    const events: FallbackEvent[] = [];
    policy.onEvent(e => events.push(e));
    const error = new Error('down');
    await expect(policy.execute(() => Promise.reject(error))).resolves.toEqual([]);
    await expect(
      policy.execute(() => {
        throw error;
      }),
    ).resolves.toEqual([]);
    expect(events).toEqual([
      { type: 'fallback.used', policy: 'items', error },
      { type: 'fallback.used', policy: 'items', error },
    ]);
  });

  it('calls fn with the error and the context, sync or async', async () => {
    const seen: [unknown, ExecutionContext][] = [];
    const policy = fallback({
      fn: (error, context) => {
        seen.push([error, context]);
        return `recovered from ${(error as Error).message}`;
      },
    });
    await expect(policy.execute(() => Promise.reject(new Error('a')))).resolves.toBe(
      'recovered from a',
    );
    expect(seen[0]?.[1].attempt).toBe(1);
    const asyncPolicy = fallback({ fn: async () => 'later' });
    await expect(asyncPolicy.execute(() => Promise.reject(new Error('b')))).resolves.toBe('later');
  });

  it('rejects with the error fn throws or rejects with, unchanged', async () => {
    const original = new Error('original');
    const thrown = new Error('fallback broke', { cause: original });
    const sync = fallback({
      fn: () => {
        throw thrown;
      },
    });
    await expect(sync.execute(() => Promise.reject(original))).rejects.toBe(thrown);
    const rejected = fallback({ fn: () => Promise.reject(thrown) });
    await expect(rejected.execute(() => Promise.reject(original))).rejects.toBe(thrown);
  });

  it('only replaces errors chosen by when', async () => {
    const policy = fallback({ value: 'cached', when: error => hasCode(error, 'CIRCUIT_OPEN') });
    const events: FallbackEvent[] = [];
    policy.onEvent(e => events.push(e));
    await expect(
      policy.execute(() => Promise.reject(new CircuitOpenError('users', 100))),
    ).resolves.toBe('cached');
    const other = new Error('bad request');
    await expect(policy.execute(() => Promise.reject(other))).rejects.toBe(other);
    expect(events).toHaveLength(1);
  });

  it('whenCode and whenInstanceOf choose by error kind', async () => {
    const byCode = fallback({ value: 'x', when: whenCode('CIRCUIT_OPEN', 'TIMEOUT') });
    await expect(byCode.execute(() => Promise.reject(new TimeoutError(5)))).resolves.toBe('x');
    await expect(byCode.execute(() => Promise.reject(new RangeError('r')))).rejects.toBeInstanceOf(
      RangeError,
    );
    const byClass = fallback({ value: 'y', when: whenInstanceOf(RangeError, SyntaxError) });
    await expect(byClass.execute(() => Promise.reject(new RangeError('r')))).resolves.toBe('y');
    await expect(byClass.execute(() => Promise.reject(new TimeoutError(5)))).rejects.toSatisfy(
      isTimeoutError,
    );
  });

  it('rejects with the predicate error when when throws', async () => {
    const bug = new Error('predicate bug');
    const policy = fallback({
      value: 1,
      when: () => {
        throw bug;
      },
    });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toBe(bug);
  });

  it('recovers from an inner timeout', async () => {
    const clock = new TestClock();
    const policy = pipeline(fallback({ value: 'slow path' }), timeout({ timeoutMs: 50, clock }));
    const result = observe(policy.execute(() => new Promise<string>(() => {})));
    await clock.advance(50);
    expect(result.value).toBe('slow path');
  });

  it('does not produce a fallback once the caller has cancelled', async () => {
    const controller = new AbortController();
    let calls = 0;
    const policy = fallback({
      fn: () => {
        calls++;
        return 'x';
      },
    });
    const result = observe(
      policy.execute(
        ctx =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
          ),
        { signal: controller.signal },
      ),
    );
    controller.abort();
    await new Promise(resolve => setImmediate(resolve));
    expect(result.state).toBe('rejected');
    expect(calls).toBe(0);
  });

  it('is typed: a pipeline with a fallback resolves to T | R', () => {
    const items = fallback({ value: [] as Item[] });
    expectTypeOf(items).toEqualTypeOf<FallbackPolicy<Item[]>>();
    const p = pipeline(items, timeout({ timeoutMs: 10 }));
    const run = () => p.execute(async () => 'text');
    expectTypeOf(run).returns.toEqualTypeOf<Promise<string | Item[]>>();
    const solo = () => fallback({ fn: async () => 42 }).execute(() => 'a');
    expectTypeOf(solo).returns.toEqualTypeOf<Promise<string | number>>();
    // Without a fallback the type stays T.
    const plain = () => pipeline(timeout({ timeoutMs: 10 })).execute(() => 1);
    expectTypeOf(plain).returns.toEqualTypeOf<Promise<number>>();
    // @ts-expect-error a Promise<string | Item[]> is not a Promise<string>
    const wrong: () => Promise<string> = run;
    void wrong;
  });
});
