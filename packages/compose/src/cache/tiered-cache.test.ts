import { isCancelledError, isTimeoutError, Scope } from '@bulwark/core';
import { TestClock, flushMicrotasks } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import type { TieredCacheEvent } from './events.js';
import { memoryCacheStore } from './memory-store.js';
import type { CacheStore } from './store.js';
import { tieredCache, type CacheLoader } from './tiered-cache.js';
import type { TieredCacheOptions } from './options.js';

function setup(overrides: Partial<TieredCacheOptions> = {}) {
  const clock = new TestClock();
  const cache = tieredCache<string>({ name: 'users', ttlMs: 10_000, clock, ...overrides });
  const events: TieredCacheEvent[] = [];
  cache.onEvent(e => events.push(e));
  return { clock, cache, events };
}

/** A loader that counts its calls and answers `value-<n>`, or fails while `failing` is set. */
function countingLoader() {
  const state = { calls: 0, failing: false, signals: [] as AbortSignal[] };
  const loader: CacheLoader<string> = ({ signal }) => {
    state.calls += 1;
    state.signals.push(signal);
    if (state.failing) return Promise.reject(new Error('origin down'));
    return Promise.resolve(`value-${state.calls}`);
  };
  return { state, loader };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A store whose every operation fails (or hangs), counting calls. */
function brokenStore(mode: 'fail' | 'hang') {
  const calls = { get: 0, set: 0, delete: 0 };
  const answer = () =>
    mode === 'fail' ? Promise.reject(new Error('ECONNREFUSED')) : new Promise<never>(() => {});
  const store: CacheStore = {
    get: () => (calls.get++, answer()),
    set: () => (calls.set++, answer()),
    delete: () => (calls.delete++, answer()),
  };
  return { store, calls };
}

describe('tieredCache: windows', () => {
  it('loads on a miss and reports origin provenance and Cache-Status fwd=miss', async () => {
    const { cache } = setup();
    const { loader, state } = countingLoader();
    const result = await cache.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-1',
      outcome: 'miss',
      cached: undefined,
      provenance: { source: 'origin' },
      cacheStatus: 'users; fwd=miss; stored',
      collapsed: false,
    });
    expect(state.calls).toBe(1);
  });

  it('a loader that throws synchronously rejects the fetch, reports the load, and stores nothing', async () => {
    const { cache, events } = setup();
    const broken = new Error('bad loader');
    const throwing: CacheLoader<string> = () => {
      throw broken;
    };
    await expect(cache.fetch('u1', throwing)).rejects.toBe(broken);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'cache.load', key: 'u1', ok: false, error: broken }),
    );
    expect(cache.peek('u1')).toBeUndefined();
    const { loader } = countingLoader();
    expect((await cache.fetch('u1', loader)).value).toBe('value-1');
  });

  it('serves a fresh hit from L1 with its age and remaining ttl', async () => {
    const { cache, clock } = setup();
    const { loader, state } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(2_500);
    const result = await cache.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-1',
      outcome: 'hit',
      cached: { value: 'value-1', tier: 'l1', ageMs: 2_500, stale: false },
      provenance: { source: 'cache:l1', ageMs: 2_500, stale: false },
      cacheStatus: 'users; hit; ttl=7; detail=l1',
    });
    expect(state.calls).toBe(1);
  });

  it('within stale-while-revalidate serves stale at once and refreshes once in the background', async () => {
    const { cache, clock, events } = setup({ staleWhileRevalidateMs: 5_000 });
    const { loader, state } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(12_000);

    const gate = deferred<string>();
    let refreshes = 0;
    const slowLoader: CacheLoader<string> = () => (refreshes++, gate.promise);
    const results = await Promise.all([
      cache.fetch('u1', slowLoader),
      cache.fetch('u1', slowLoader),
      cache.fetch('u1', slowLoader),
    ]);
    for (const r of results) {
      expect(r).toMatchObject({
        value: 'value-1',
        outcome: 'stale-while-revalidate',
        provenance: { source: 'cache:l1', ageMs: 12_000, stale: true },
        cacheStatus: 'users; hit; ttl=-2; detail=stale-while-revalidate',
      });
    }
    expect(refreshes).toBe(1);
    gate.resolve('refreshed');
    await flushMicrotasks();
    const after = await cache.fetch('u1', loader);
    expect(after).toMatchObject({ value: 'refreshed', outcome: 'hit' });
    expect(state.calls).toBe(1);
    expect(events).toContainEqual({
      type: 'cache.load',
      cache: 'users',
      key: 'u1',
      refresh: true,
      ok: true,
    });
  });

  it('a failing background refresh keeps serving stale and emits the failure', async () => {
    const { cache, clock, events } = setup({ staleWhileRevalidateMs: 5_000 });
    const { loader, state } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(11_000);
    state.failing = true;
    expect((await cache.fetch('u1', loader)).outcome).toBe('stale-while-revalidate');
    await flushMicrotasks();
    expect(events.some(e => e.type === 'cache.load' && e.refresh && !e.ok)).toBe(true);
    expect((await cache.fetch('u1', loader)).value).toBe('value-1');
  });

  it('past stale-while-revalidate but within stale-if-error: loads, and serves stale if the load fails', async () => {
    const { cache, clock } = setup({ staleWhileRevalidateMs: 1_000, staleIfErrorMs: 60_000 });
    const { loader, state } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(30_000);
    state.failing = true;
    const result = await cache.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-1',
      outcome: 'stale-if-error',
      cached: { tier: 'l1', ageMs: 30_000, stale: true },
      cacheStatus: 'users; fwd=stale; ttl=-20; detail=stale-if-error',
    });
    expect(state.calls).toBe(2);
  });

  it('past stale-if-error, a failing load fails the fetch with the loader error', async () => {
    const { cache, clock } = setup({ staleIfErrorMs: 5_000 });
    const { loader, state } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(15_000);
    state.failing = true;
    await expect(cache.fetch('u1', loader)).rejects.toThrow('origin down');
  });

  it('past ttl with a working origin reloads and says fwd=stale', async () => {
    const { cache, clock } = setup({ staleIfErrorMs: 60_000 });
    const { loader } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(10_000);
    const result = await cache.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-2',
      outcome: 'miss',
      cacheStatus: 'users; fwd=stale; stored',
    });
  });

  it('with nothing cached, a failing load fails the fetch', async () => {
    const { cache } = setup({ staleIfErrorMs: 60_000 });
    const { loader, state } = countingLoader();
    state.failing = true;
    await expect(cache.fetch('u1', loader)).rejects.toThrow('origin down');
  });

  it('does not cache undefined', async () => {
    const { cache } = setup();
    let calls = 0;
    const loader: CacheLoader<string> = () => (calls++, Promise.resolve(undefined as never));
    const first = await cache.fetch('u1', loader);
    expect(first.cacheStatus).toBe('users; fwd=miss');
    await cache.fetch('u1', loader);
    expect(calls).toBe(2);
  });
});

describe('tieredCache: L1', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const { cache } = setup({ l1: { maxEntries: 2 } });
    const { loader } = countingLoader();
    await cache.fetch('a', loader);
    await cache.fetch('b', loader);
    await cache.fetch('a', loader); // a is now more recent than b
    await cache.fetch('c', loader);
    expect(cache.peek('a')).toBeDefined();
    expect(cache.peek('b')).toBeUndefined();
    expect(cache.peek('c')).toBeDefined();
  });

  it('forgets an entry once every window has passed (L1 ttl follows the injected clock)', async () => {
    const { cache, clock } = setup({ staleWhileRevalidateMs: 1_000, staleIfErrorMs: 5_000 });
    const { loader } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(14_999);
    expect(cache.peek('u1')).toMatchObject({ stale: true, ageMs: 14_999 });
    await clock.advance(1);
    expect(cache.peek('u1')).toBeUndefined();
  });

  it('set and delete', async () => {
    const { cache } = setup();
    await cache.set('u1', 'manual');
    expect(cache.peek('u1')).toMatchObject({ value: 'manual', ageMs: 0, stale: false, tier: 'l1' });
    await cache.delete('u1');
    expect(cache.peek('u1')).toBeUndefined();
  });
});

describe('tieredCache: singleflight and aborts', () => {
  it('100 concurrent misses make 1 loader call', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    let calls = 0;
    const loader: CacheLoader<string> = () => (calls++, gate.promise);
    const pending = Array.from({ length: 100 }, () => cache.fetch('u1', loader));
    gate.resolve('one');
    const results = await Promise.all(pending);
    expect(calls).toBe(1);
    expect(results.every(r => r.value === 'one')).toBe(true);
    expect(results.filter(r => r.collapsed)).toHaveLength(99);
    expect(results[1]?.cacheStatus).toBe('users; fwd=miss; stored; collapsed');
  });

  it('100 concurrent cold misses with an L2 make 1 L2 read and 1 loader call', async () => {
    const clock = new TestClock();
    const store = memoryCacheStore({ clock });
    let gets = 0;
    const counted: CacheStore = { ...store, get: (k, o) => (gets++, store.get(k, o)) };
    const cache = tieredCache<string>({ name: 'users', ttlMs: 1_000, l2: counted, clock });
    let calls = 0;
    const loader: CacheLoader<string> = () => (calls++, Promise.resolve('v'));
    await Promise.all(Array.from({ length: 100 }, () => cache.fetch('u1', loader)));
    expect(gets).toBe(1);
    expect(calls).toBe(1);
  });

  it('a caller that aborts stops waiting at once; the shared load goes on for the others', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    let loadSignal: AbortSignal | undefined;
    const loader: CacheLoader<string> = ({ signal }) => ((loadSignal = signal), gate.promise);
    const leaving = new AbortController();
    const first = cache.fetch('u1', loader, { signal: leaving.signal });
    const second = cache.fetch('u1', loader, { signal: new AbortController().signal });
    await flushMicrotasks();
    leaving.abort();
    await expect(first).rejects.toSatisfy(isCancelledError);
    expect(loadSignal?.aborted).toBe(false);
    gate.resolve('shared');
    await expect(second).resolves.toMatchObject({ value: 'shared', collapsed: true });
  });

  it('the load is aborted when every caller has left', async () => {
    const { cache } = setup();
    let loadSignal: AbortSignal | undefined;
    const loader: CacheLoader<string> = ({ signal }) => {
      loadSignal = signal;
      return new Promise<string>(() => {});
    };
    const a = new AbortController();
    const b = new AbortController();
    const pa = cache.fetch('u1', loader, { signal: a.signal });
    const pb = cache.fetch('u1', loader, { signal: b.signal });
    await flushMicrotasks();
    a.abort();
    b.abort();
    await expect(pa).rejects.toSatisfy(isCancelledError);
    await expect(pb).rejects.toSatisfy(isCancelledError);
    expect(loadSignal?.aborted).toBe(true);
  });

  it('takes a core Scope as the caller signal; the loader gets cancel, with no AbortController', async () => {
    const { cache } = setup();
    let loadCancel: Scope | undefined;
    const loader: CacheLoader<string> = ({ cancel, key }) => {
      loadCancel = cancel;
      expect(key).toBe('u1');
      return new Promise<string>(() => {});
    };
    const caller = new Scope();
    const pending = cache.fetch('u1', loader, { signal: caller });
    await flushMicrotasks();
    expect(loadCancel?.aborted).toBe(false);
    caller.abort(new Error('client gone'));
    await expect(pending).rejects.toSatisfy(isCancelledError);
    expect(loadCancel?.aborted).toBe(true);
    expect((loadCancel as unknown as { controller: unknown }).controller).toBeUndefined();
  });

  it('a caller that left gets its cancellation, not a stale value', async () => {
    const { cache, clock } = setup({ staleIfErrorMs: 60_000 });
    const { loader } = countingLoader();
    await cache.fetch('u1', loader);
    await clock.advance(20_000);
    const leaving = new AbortController();
    const pending = cache.fetch('u1', () => new Promise<string>(() => {}), {
      signal: leaving.signal,
    });
    leaving.abort();
    await expect(pending).rejects.toSatisfy(isCancelledError);
  });
});

describe('tieredCache: L2', () => {
  function twoProcesses(overrides: Partial<TieredCacheOptions> = {}) {
    const clock = new TestClock();
    const l2 = memoryCacheStore({ clock });
    const make = () =>
      tieredCache<string>({
        name: 'users',
        ttlMs: 10_000,
        l2,
        clock,
        ...overrides,
      });
    return { clock, l2, a: make(), b: make() };
  }

  it("one process's load is another's L2 hit, with the age from the origin's store time", async () => {
    const { clock, a, b } = twoProcesses();
    const { loader, state } = countingLoader();
    await a.fetch('u1', loader);
    await flushMicrotasks(); // the L2 write is not awaited by the caller
    await clock.advance(3_000);
    const result = await b.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-1',
      outcome: 'hit',
      cached: { tier: 'l2', ageMs: 3_000, stale: false },
      provenance: { source: 'cache:l2', ageMs: 3_000, stale: false },
      cacheStatus: 'users; hit; ttl=7; detail=l2',
    });
    expect(state.calls).toBe(1);
    // ...and is now in b's L1.
    expect(b.peek('u1')).toMatchObject({ tier: 'l1', ageMs: 3_000 });
  });

  it('an L2 value within stale-while-revalidate is served stale with a background refresh', async () => {
    const { clock, a, b } = twoProcesses({ staleWhileRevalidateMs: 10_000 });
    const { loader, state } = countingLoader();
    await a.fetch('u1', loader);
    await flushMicrotasks();
    await clock.advance(12_000);
    const result = await b.fetch('u1', loader);
    expect(result).toMatchObject({
      value: 'value-1',
      outcome: 'stale-while-revalidate',
      provenance: { source: 'cache:l2', stale: true },
    });
    await flushMicrotasks();
    expect(state.calls).toBe(2);
    expect((await b.fetch('u1', loader)).value).toBe('value-2');
  });

  it('getStale reads L1, then L2', async () => {
    const { clock, a, b } = twoProcesses({ staleIfErrorMs: 60_000 });
    const { loader } = countingLoader();
    await a.fetch('u1', loader);
    await flushMicrotasks();
    await clock.advance(20_000);
    expect(await a.getStale('u1')).toMatchObject({ tier: 'l1', ageMs: 20_000, stale: true });
    expect(b.peek('u1')).toBeUndefined();
    expect(await b.getStale('u1')).toMatchObject({ tier: 'l2', ageMs: 20_000, stale: true });
    expect(await b.getStale('nope')).toBeUndefined();
  });

  it('delete removes the key from L2 too', async () => {
    const { a, b } = twoProcesses();
    await a.set('u1', 'x');
    await a.delete('u1');
    expect(await b.getStale('u1')).toBeUndefined();
  });

  it('namespaces L2 keys by cache name', async () => {
    const clock = new TestClock();
    const l2 = memoryCacheStore({ clock });
    const users = tieredCache<string>({ name: 'users', ttlMs: 1_000, l2, clock });
    const orders = tieredCache<string>({ name: 'orders', ttlMs: 1_000, l2, clock });
    await users.set('1', 'ada');
    expect(await orders.getStale('1')).toBeUndefined();
    expect((await l2.get('users:1'))?.value).toBe('ada');
  });

  it('a failing L2 never fails a fetch: errors become events', async () => {
    const { store } = brokenStore('fail');
    const { cache, events } = setup({ l2: store });
    const { loader } = countingLoader();
    const result = await cache.fetch('u1', loader);
    expect(result).toMatchObject({ value: 'value-1', outcome: 'miss' });
    await flushMicrotasks();
    const l2Errors = events.filter(e => e.type === 'cache.l2-error');
    expect(l2Errors.map(e => e.type === 'cache.l2-error' && e.operation)).toEqual(['get', 'set']);
    await expect(cache.delete('u1')).resolves.toBeUndefined();
    expect(await cache.getStale('nothing')).toBeUndefined();
  });

  it('a hanging L2 read is abandoned after l2TimeoutMs and the fetch answers from origin', async () => {
    const { store } = brokenStore('hang');
    const { cache, clock, events } = setup({ l2: store, l2TimeoutMs: 40 });
    const { loader } = countingLoader();
    const pending = cache.fetch('u1', loader);
    let settled = false;
    void pending.then(() => (settled = true));
    await clock.advance(39);
    expect(settled).toBe(false);
    // The timeout policy times calls to within its resolution (1 ms here).
    await clock.advance(2);
    expect(settled).toBe(true);
    await expect(pending).resolves.toMatchObject({ value: 'value-1', outcome: 'miss' });
    const getError = events.find(e => e.type === 'cache.l2-error' && e.operation === 'get');
    expect(getError?.type === 'cache.l2-error' && isTimeoutError(getError.error)).toBe(true);
  });

  it('after l2Breaker.failures failures in a row L2 is skipped until openMs has passed', async () => {
    const { store, calls } = brokenStore('fail');
    const { cache, clock } = setup({ l2: store, l2Breaker: { failures: 3, openMs: 1_000 } });
    const { loader } = countingLoader();
    // Each miss tries one get and one set: the third failure (the second get) opens the breaker.
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const result = await cache.fetch(key, loader);
      expect(result.outcome).toBe('miss');
      await flushMicrotasks();
    }
    expect(calls.get + calls.set).toBe(3);
    await clock.advance(1_000);
    await cache.fetch('g', loader);
    await flushMicrotasks();
    // Half-open lets one probe through (the get); it fails and the breaker opens again.
    expect(calls.get + calls.set).toBe(4);
  });

  it('without a breaker every request still tries L2', async () => {
    const { store, calls } = brokenStore('fail');
    const { cache } = setup({ l2: store, l2Breaker: false });
    const { loader } = countingLoader();
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) await cache.fetch(key, loader);
    expect(calls.get).toBe(6);
  });
});

describe('tieredCache: events and options', () => {
  it('emits hit, miss and stale events', async () => {
    const { cache, clock, events } = setup({ staleWhileRevalidateMs: 5_000 });
    const { loader } = countingLoader();
    await cache.fetch('u1', loader);
    await cache.fetch('u1', loader);
    await clock.advance(11_000);
    await cache.fetch('u1', loader);
    expect(events.map(e => e.type)).toEqual([
      'cache.miss',
      'cache.load',
      'cache.hit',
      'cache.stale',
      'cache.load',
    ]);
  });

  it('uses cacheStatusName, or "bulwark" when the name is not a token', async () => {
    const clock = new TestClock();
    const named = tieredCache<string>({ name: 'users', ttlMs: 1, cacheStatusName: 'edge', clock });
    expect((await named.fetch('k', () => 'v')).cacheStatus).toBe('edge; fwd=miss; stored');
    const spaced = tieredCache<string>({ name: 'user cache', ttlMs: 1, clock });
    expect((await spaced.fetch('k', () => 'v')).cacheStatus).toBe('bulwark; fwd=miss; stored');
  });

  it('rejects bad options with messages that name the fix', () => {
    expect(() => tieredCache({ name: 'x', ttlMs: 0 })).toThrow(
      /ttlMs must be a finite number of milliseconds > 0/,
    );
    expect(() => tieredCache({ name: '', ttlMs: 1 })).toThrow(/name must be a non-empty string/);
    expect(() => tieredCache({ name: 'x', ttlMs: 1, ttl: 5 } as never)).toThrow(
      /unknown option "ttl"/,
    );
    expect(() => tieredCache({ name: 'x', ttlMs: 1, l1: { maxEntries: 0 } })).toThrow(
      /l1.maxEntries/,
    );
    expect(() => tieredCache({ name: 'x', ttlMs: 1, l2: {} as never })).toThrow(/redisCacheStore/);
    expect(() => tieredCache({ name: 'x', ttlMs: 1, cacheStatusName: 'a b' })).toThrow(/token/);
    expect(() => tieredCache({ name: 'x', ttlMs: 1, l2TimeoutMs: -1 })).toThrow(/l2TimeoutMs/);
  });
});
