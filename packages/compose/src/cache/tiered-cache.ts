/**
 * tieredCache: an in-process L1 (lru-cache) over an optional shared L2 (`CacheStore`), with
 * fresh / stale-while-revalidate / stale-if-error windows, per-key singleflight, provenance for
 * the response envelope and a `Cache-Status` (RFC 9211) string.
 *
 * Windows, measured from the value's wall-clock `storedAtMs` (so an L2 value's age is the same in
 * every process):
 *
 *   age < ttlMs                              fresh: served, no origin call
 *   age < ttlMs + staleWhileRevalidateMs     served stale at once; one background load refreshes
 *   age < ttlMs + staleIfErrorMs             the loader runs; if it fails, served stale
 *   otherwise                                gone
 *
 * L2 never fails a request: each L2 operation is bounded by `l2TimeoutMs`, runs behind a
 * circuit breaker, and its errors become `cache.l2-error` events (a failed read is a miss, a
 * failed write is dropped). L2 writes are not awaited by the caller.
 */
import {
  circuitBreaker,
  Emitter,
  isCancelledError,
  NEVER_SCOPE,
  pipeline,
  timeout,
  type Composable,
  type Scope,
  type Policy,
  type Subscribe,
} from '@bulwark/core';
import { LRUCache } from 'lru-cache';
import { LoadContext } from '../load-context.js';
import type { CachedValue, CacheTier, Provenance } from '../provenance.js';
import { formatCacheStatus } from './cache-status.js';
import type { TieredCacheEvent } from './events.js';
import { resolveTieredCacheOptions, type TieredCacheOptions } from './options.js';
import { singleflight } from './singleflight.js';
import { isCacheEntry, type CacheEntry, type CacheStore } from './store.js';

export interface CacheLoaderContext {
  /** Aborts when every caller waiting for this load has left (a background refresh: never). */
  readonly signal: AbortSignal;
  /**
   * The same cancellation as a core `Scope`: pass it as `signal` to Bulwark's http client,
   * caches and batch loaders, which then need no AbortController (reading `signal` makes one).
   */
  readonly cancel: Scope;
  readonly key: string;
}

class LoaderContext extends LoadContext implements CacheLoaderContext {
  constructor(
    cancel: Scope,
    readonly key: string,
  ) {
    super(cancel);
  }
}

/** Loads a value from the origin. It must be JSON-serialisable; `undefined` is returned but not cached. */
export type CacheLoader<T> = (context: CacheLoaderContext) => T | PromiseLike<T>;

export interface CacheFetchOptions {
  /**
   * This caller stops waiting when it aborts (rejecting with `CancelledError`); shared loads go
   * on. A core `Scope` (a part's `ctx.cancel`) works too, without an AbortController.
   */
  readonly signal?: AbortSignal | Scope | undefined;
}

/**
 * How `fetch` answered: `hit` (fresh cached value), `stale-while-revalidate` (stale value now,
 * refresh in the background), `stale-if-error` (the loader failed, a stale value was served),
 * `miss` (the loader's value, possibly shared with concurrent callers).
 */
export type CacheOutcome = 'hit' | 'stale-while-revalidate' | 'stale-if-error' | 'miss';

export interface CacheFetchResult<T> {
  readonly value: T;
  readonly outcome: CacheOutcome;
  /** The cached value served, with tier and age; undefined when the loader answered. */
  readonly cached: CachedValue<T> | undefined;
  /** For the envelope's `meta.parts`: `origin`, or `cache:l1`/`cache:l2` with `ageMs` and `stale`. */
  readonly provenance: Provenance;
  /** The RFC 9211 `Cache-Status` member for this answer, e.g. `users; hit; ttl=12; detail=l1`. */
  readonly cacheStatus: string;
  /** True when this caller shared a load another caller (or a background refresh) started. */
  readonly collapsed: boolean;
}

export interface TieredCache<T> {
  readonly name: string;
  /** Answers from L1, then L2, then `loader`, following the windows above. */
  fetch(
    key: string,
    loader: CacheLoader<T>,
    options?: CacheFetchOptions,
  ): Promise<CacheFetchResult<T>>;
  /**
   * What L1 holds for `key`, fresh or stale (up to `ttlMs + max(staleWhileRevalidateMs,
   * staleIfErrorMs)`), without touching recency or calling anything. Synchronous.
   */
  peek(key: string): CachedValue<T> | undefined;
  /**
   * Like `peek`, then L2 (bounded by `l2TimeoutMs`): the value a composition serves when its part
   * failed. Never rejects for L2 trouble.
   */
  getStale(key: string, options?: CacheFetchOptions): Promise<CachedValue<T> | undefined>;
  /** Stores a value as if the origin just produced it (L1 now, L2 awaited but errors swallowed). */
  set(key: string, value: T): Promise<void>;
  /** Removes `key` from L1 and L2. A load already in flight may still store its value. */
  delete(key: string): Promise<void>;
  /** Subscribe to hits, misses, stale serves, loads and L2 errors. */
  readonly onEvent: Subscribe<TieredCacheEvent>;
}

type Window = 'fresh' | 'swr' | 'sie' | 'gone';

export function tieredCache<T>(options: TieredCacheOptions): TieredCache<T> {
  const o = resolveTieredCacheOptions(options);
  const { name, ttlMs, clock, cacheStatusName } = o;
  const swrEnd = ttlMs + o.staleWhileRevalidateMs;
  const sieEnd = ttlMs + o.staleIfErrorMs;
  const retentionMs = Math.max(swrEnd, sieEnd);
  const emitter = new Emitter<TieredCacheEvent>();

  // ttlResolution 0: lru-cache would otherwise cache `now` behind a real setTimeout per read,
  // which both costs a timer and hides TestClock moves.
  const l1 = new LRUCache<string, CacheEntry<T>>({
    max: o.maxEntries,
    ttl: retentionMs,
    ttlResolution: 0,
    perf: { now: () => clock.now() },
  });
  const loads = singleflight<string, CacheEntry<T>>();
  const l2Reads = singleflight<string, CacheEntry<T> | undefined>();
  const l2 = o.l2;
  const l2Policy = l2 === undefined ? undefined : makeL2Policy();

  function makeL2Policy(): Policy {
    const bound = timeout({ timeoutMs: o.l2TimeoutMs, name: `${name}.l2-timeout`, clock });
    if (o.l2Breaker === false) return bound;
    const breaker: Composable = circuitBreaker({
      name: `${name}.l2`,
      trigger: { kind: 'consecutive', failures: o.l2Breaker.failures },
      openMs: o.l2Breaker.openMs,
      clock,
    });
    return pipeline(breaker, bound);
  }

  const ageOf = (entry: CacheEntry<T>): number => Math.max(0, clock.wallNow() - entry.storedAtMs);

  function windowOf(ageMs: number): Window {
    if (ageMs < ttlMs) return 'fresh';
    if (ageMs < swrEnd) return 'swr';
    if (ageMs < sieEnd) return 'sie';
    return 'gone';
  }

  function cachedValue(entry: CacheEntry<T>, tier: CacheTier, ageMs: number): CachedValue<T> {
    return { value: entry.value, ageMs, tier, stale: ageMs >= ttlMs };
  }

  function putL1(key: string, entry: CacheEntry<T>, ageMs: number): void {
    const left = retentionMs - ageMs;
    if (left > 0) l1.set(key, entry, { ttl: left });
  }

  const l2Key = (key: string): string => `${name}:${key}`;

  function l2Failed(key: string, operation: 'get' | 'set' | 'delete', error: unknown): void {
    if (emitter.size > 0)
      emitter.emit({ type: 'cache.l2-error', cache: name, key, operation, error });
  }

  async function l2Get(store: CacheStore, policy: Policy, key: string, cancel: Scope) {
    try {
      const found = await policy.execute(
        ctx => store.get(l2Key(key), { signal: ctx.signal }),
        // No caller can leave this read: skip the per-call cancellation plumbing.
        cancel === NEVER_SCOPE ? undefined : { signal: cancel },
      );
      if (found === undefined) return undefined;
      if (!isCacheEntry(found)) {
        l2Failed(key, 'get', new TypeError('L2 returned something that is not a cache entry'));
        return undefined;
      }
      return found as CacheEntry<T>;
    } catch (error) {
      // The caller leaving is not an L2 failure.
      if (!(isCancelledError(error) && cancel.aborted)) l2Failed(key, 'get', error);
      return undefined;
    }
  }

  async function l2Set(key: string, entry: CacheEntry<T>, ageMs: number): Promise<void> {
    if (l2 === undefined || l2Policy === undefined) return;
    const left = retentionMs - ageMs;
    if (!(left > 0)) return;
    try {
      await l2Policy.execute(ctx => l2.set(l2Key(key), entry, left, { signal: ctx.signal }));
    } catch (error) {
      l2Failed(key, 'set', error);
    }
  }

  // runLoad and the miss path of fetch chain with `.then` rather than async/await: with async
  // hooks on (a server's request context), each `await` costs a promise more, on every miss.

  function runLoad(
    key: string,
    loader: CacheLoader<T>,
    cancel: Scope,
    refresh: boolean,
  ): Promise<CacheEntry<T>> {
    const failed = (error: unknown): never => {
      if (emitter.size > 0) {
        emitter.emit({ type: 'cache.load', cache: name, key, refresh, ok: false, error });
      }
      throw error;
    };
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(loader(new LoaderContext(cancel, key)));
    } catch (error) {
      return Promise.reject(error).catch(failed);
    }
    return pending.then(value => {
      if (emitter.size > 0) {
        emitter.emit({ type: 'cache.load', cache: name, key, refresh, ok: true });
      }
      const entry: CacheEntry<T> = { value, storedAtMs: clock.wallNow() };
      if (value !== undefined) {
        putL1(key, entry, 0);
        // Only with an L2: the call alone would make a promise per load.
        if (l2 !== undefined) void l2Set(key, entry, 0);
      }
      return entry;
    }, failed);
  }

  function refreshInBackground(key: string, loader: CacheLoader<T>): void {
    if (loads.has(key)) return;
    // No signal: a background refresh has no caller who could leave. Its failure is an event.
    loads.do(key, cancel => runLoad(key, loader, cancel, true)).then(noop, noop);
  }

  function served(
    entry: CacheEntry<T>,
    tier: CacheTier,
    ageMs: number,
    outcome: 'hit' | 'stale-while-revalidate' | 'stale-if-error',
    key: string,
  ): CacheFetchResult<T> {
    const cached = cachedValue(entry, tier, ageMs);
    if (emitter.size > 0) {
      emitter.emit(
        outcome === 'hit'
          ? { type: 'cache.hit', cache: name, key, tier, ageMs }
          : { type: 'cache.stale', cache: name, key, tier, ageMs, reason: outcome },
      );
    }
    const ttlLeftMs = ttlMs - ageMs;
    const cacheStatus =
      outcome === 'hit'
        ? formatCacheStatus({ cache: cacheStatusName, hit: true, ttlMs: ttlLeftMs, detail: tier })
        : outcome === 'stale-while-revalidate'
          ? formatCacheStatus({
              cache: cacheStatusName,
              hit: true,
              ttlMs: ttlLeftMs,
              detail: outcome,
            })
          : formatCacheStatus({
              cache: cacheStatusName,
              fwd: 'stale',
              ttlMs: ttlLeftMs,
              detail: outcome,
            });
    return {
      value: entry.value,
      outcome,
      cached,
      provenance: { source: `cache:${tier}`, ageMs, stale: cached.stale },
      cacheStatus,
      collapsed: false,
    };
  }

  type Fallback = { entry: CacheEntry<T>; tier: CacheTier } | undefined;

  function fetch(
    key: string,
    loader: CacheLoader<T>,
    options?: CacheFetchOptions,
  ): Promise<CacheFetchResult<T>> {
    try {
      const signal = options?.signal;
      // The newest value we hold that only stale-if-error may serve.
      let fallback: Fallback;
      const inL1 = l1.get(key);
      if (inL1 !== undefined) {
        const ageMs = ageOf(inL1);
        const window = windowOf(ageMs);
        if (window === 'fresh') return Promise.resolve(served(inL1, 'l1', ageMs, 'hit', key));
        if (window === 'swr') {
          refreshInBackground(key, loader);
          return Promise.resolve(served(inL1, 'l1', ageMs, 'stale-while-revalidate', key));
        }
        if (window === 'sie') fallback = { entry: inL1, tier: 'l1' };
      }
      if (l2 !== undefined && l2Policy !== undefined) {
        return fetchThroughL2(l2, l2Policy, key, loader, signal, fallback);
      }
      return fetchFromOrigin(key, loader, signal, fallback);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function fetchThroughL2(
    store: CacheStore,
    policy: Policy,
    key: string,
    loader: CacheLoader<T>,
    signal: CacheFetchOptions['signal'],
    fallback: Fallback,
  ): Promise<CacheFetchResult<T>> {
    const inL2 = await l2Reads.do(key, s => l2Get(store, policy, key, s), { signal });
    if (inL2 !== undefined) {
      const ageMs = ageOf(inL2);
      const window = windowOf(ageMs);
      if (window !== 'gone') putL1(key, inL2, ageMs);
      if (window === 'fresh') return served(inL2, 'l2', ageMs, 'hit', key);
      if (window === 'swr') {
        refreshInBackground(key, loader);
        return served(inL2, 'l2', ageMs, 'stale-while-revalidate', key);
      }
      if (
        window === 'sie' &&
        (fallback === undefined || inL2.storedAtMs > fallback.entry.storedAtMs)
      ) {
        fallback = { entry: inL2, tier: 'l2' };
      }
    }
    return fetchFromOrigin(key, loader, signal, fallback);
  }

  function fetchFromOrigin(
    key: string,
    loader: CacheLoader<T>,
    signal: CacheFetchOptions['signal'],
    fallback: Fallback,
  ): Promise<CacheFetchResult<T>> {
    const collapsed = loads.has(key);
    if (emitter.size > 0) emitter.emit({ type: 'cache.miss', cache: name, key, collapsed });
    return loads
      .do(key, s => runLoad(key, loader, s, false), { signal })
      .then(
        (entry): CacheFetchResult<T> => ({
          value: entry.value,
          outcome: 'miss',
          cached: undefined,
          provenance: { source: 'origin' },
          cacheStatus: formatCacheStatus({
            cache: cacheStatusName,
            fwd: fallback === undefined ? 'miss' : 'stale',
            stored: entry.value !== undefined,
            collapsed,
          }),
          collapsed,
        }),
        (error: unknown) => {
          // A caller that left gets its cancellation; serving stale is for failures, not departures.
          if (fallback !== undefined && !(isCancelledError(error) && signal?.aborted === true)) {
            const ageMs = ageOf(fallback.entry);
            if (ageMs < sieEnd) {
              return served(fallback.entry, fallback.tier, ageMs, 'stale-if-error', key);
            }
          }
          throw error;
        },
      );
  }

  function peek(key: string): CachedValue<T> | undefined {
    const entry = l1.peek(key);
    if (entry === undefined) return undefined;
    const ageMs = ageOf(entry);
    return ageMs < retentionMs ? cachedValue(entry, 'l1', ageMs) : undefined;
  }

  async function getStale(
    key: string,
    options?: CacheFetchOptions,
  ): Promise<CachedValue<T> | undefined> {
    const local = peek(key);
    if (local !== undefined || l2 === undefined || l2Policy === undefined) return local;
    const entry = await l2Reads.do(key, s => l2Get(l2, l2Policy, key, s), {
      signal: options?.signal,
    });
    if (entry === undefined) return undefined;
    const ageMs = ageOf(entry);
    if (!(ageMs < retentionMs)) return undefined;
    putL1(key, entry, ageMs);
    return cachedValue(entry, 'l2', ageMs);
  }

  async function set(key: string, value: T): Promise<void> {
    const entry: CacheEntry<T> = { value, storedAtMs: clock.wallNow() };
    putL1(key, entry, 0);
    await l2Set(key, entry, 0);
  }

  async function remove(key: string): Promise<void> {
    l1.delete(key);
    if (l2 === undefined || l2Policy === undefined) return;
    try {
      await l2Policy.execute(ctx => l2.delete(l2Key(key), { signal: ctx.signal }));
    } catch (error) {
      l2Failed(key, 'delete', error);
    }
  }

  return {
    name,
    fetch,
    peek,
    getStale,
    set,
    delete: remove,
    onEvent: emitter.subscribe,
  };
}

function noop(): void {}
