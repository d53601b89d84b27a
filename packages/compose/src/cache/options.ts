/** Options of `tieredCache`, their defaults, and eager validation. */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import { isCacheStatusToken } from './cache-status.js';
import type { CacheStore } from './store.js';
import {
  rejectUnknown,
  requireClock,
  requireCount,
  requireMs,
  requireName,
  requireOptionsObject,
  requirePositiveMs,
} from './validate.js';

export interface TieredCacheOptions {
  /**
   * The cache's name: used in events, as the Cache-Status identifier (unless `cacheStatusName`
   * is set) and as the prefix of its L2 keys (`<name>:<key>`), so caches can share one store.
   * Required.
   */
  name: string;
  /** How long a value is fresh after the origin produced it, in ms. Required, > 0. */
  ttlMs: number;
  /**
   * How long after `ttlMs` a stale value is still served at once while one background load
   * refreshes it, in ms (RFC 5861 stale-while-revalidate). Default 0 (off).
   */
  staleWhileRevalidateMs?: number;
  /**
   * How long after `ttlMs` a stale value is served when the loader fails (RFC 5861
   * stale-if-error). Also bounds what `getStale` returns. Default 0 (off).
   */
  staleIfErrorMs?: number;
  /** The in-process tier (lru-cache). Default `{ maxEntries: 1_000 }`. */
  l1?: { maxEntries: number };
  /** The shared tier, e.g. `redisCacheStore(...)` from `@bulwark/redis`. Default none. */
  l2?: CacheStore;
  /** Longest any one L2 operation may take, in ms; then it counts as failed. Default 50. */
  l2TimeoutMs?: number;
  /**
   * After `failures` L2 failures in a row, skip L2 for `openMs` (then let probes through), so an
   * L2 outage costs nothing per request. `false` turns it off. Default `{ failures: 5, openMs: 5_000 }`.
   */
  l2Breaker?: { failures: number; openMs: number } | false;
  /** The identifier in Cache-Status (an RFC 8941 token). Default `name` if a token, else `bulwark`. */
  cacheStatusName?: string;
  /** Default: the system clock. Wall time dates entries; monotonic time drives L1 expiry and timeouts. */
  clock?: Clock;
}

export interface ResolvedTieredCacheOptions {
  readonly name: string;
  readonly ttlMs: number;
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
  readonly maxEntries: number;
  readonly l2: CacheStore | undefined;
  readonly l2TimeoutMs: number;
  readonly l2Breaker: { failures: number; openMs: number } | false;
  readonly cacheStatusName: string;
  readonly clock: Clock;
}

const WHERE = 'tieredCache';
const KNOWN = [
  'name',
  'ttlMs',
  'staleWhileRevalidateMs',
  'staleIfErrorMs',
  'l1',
  'l2',
  'l2TimeoutMs',
  'l2Breaker',
  'cacheStatusName',
  'clock',
];

export function resolveTieredCacheOptions(options: TieredCacheOptions): ResolvedTieredCacheOptions {
  requireOptionsObject(WHERE, options);
  rejectUnknown(WHERE, options, KNOWN);
  const name = requireName(WHERE, options.name);
  const ttlMs = requirePositiveMs(WHERE, 'ttlMs', options.ttlMs);
  const staleWhileRevalidateMs = requireMs(
    WHERE,
    'staleWhileRevalidateMs',
    options.staleWhileRevalidateMs ?? 0,
  );
  const staleIfErrorMs = requireMs(WHERE, 'staleIfErrorMs', options.staleIfErrorMs ?? 0);
  const l1 = options.l1 ?? { maxEntries: 1_000 };
  requireOptionsObject(`${WHERE}: l1`, l1);
  rejectUnknown(`${WHERE}: l1`, l1, ['maxEntries']);
  const maxEntries = requireCount(WHERE, 'l1.maxEntries', l1.maxEntries, 1);
  const l2 = options.l2;
  if (
    l2 !== undefined &&
    (l2 === null ||
      typeof l2 !== 'object' ||
      typeof l2.get !== 'function' ||
      typeof l2.set !== 'function' ||
      typeof l2.delete !== 'function')
  ) {
    throw new InvalidOptionsError(
      `${WHERE}: l2 must implement CacheStore (get, set, delete), e.g. redisCacheStore() from @bulwark/redis; omit it for an L1-only cache`,
    );
  }
  const l2TimeoutMs = requirePositiveMs(WHERE, 'l2TimeoutMs', options.l2TimeoutMs ?? 50);
  const breaker = options.l2Breaker ?? { failures: 5, openMs: 5_000 };
  if (breaker !== false) {
    requireOptionsObject(`${WHERE}: l2Breaker`, breaker);
    rejectUnknown(`${WHERE}: l2Breaker`, breaker, ['failures', 'openMs']);
    requireCount(WHERE, 'l2Breaker.failures', breaker.failures, 1);
    requirePositiveMs(WHERE, 'l2Breaker.openMs', breaker.openMs);
  }
  const cacheStatusName = options.cacheStatusName ?? (isCacheStatusToken(name) ? name : 'bulwark');
  if (!isCacheStatusToken(cacheStatusName)) {
    throw new InvalidOptionsError(
      `${WHERE}: cacheStatusName must be a structured-field token (start with a letter; letters, digits and -._:/ ...), got ${JSON.stringify(cacheStatusName)}`,
    );
  }
  requireClock(WHERE, options.clock);
  return {
    name,
    ttlMs,
    staleWhileRevalidateMs,
    staleIfErrorMs,
    maxEntries,
    l2,
    l2TimeoutMs,
    l2Breaker: breaker,
    cacheStatusName,
    clock: options.clock ?? systemClock,
  };
}
