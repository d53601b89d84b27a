/**
 * The shared (L2) cache tier as a port. Implementations: `memoryCacheStore` here (tests, single
 * process) and `redisCacheStore` in `@bulwark/redis`. Every implementation runs the contract suite
 * exported from `@bulwark/compose/contract`.
 */
import { BulwarkError, hasCode, type BulwarkErrorOptions } from '@bulwark/core';

/**
 * What a store keeps under a key. `storedAtMs` is wall-clock time (epoch ms) taken when the value
 * came from the origin, so a value's age means the same thing in every process that reads it.
 */
export interface CacheEntry<T = unknown> {
  readonly value: T;
  /** Wall-clock epoch milliseconds at which the origin produced the value. */
  readonly storedAtMs: number;
}

/** Per-operation options. Stores that cannot cancel an operation may ignore `signal`. */
export interface CacheStoreOperationOptions {
  readonly signal?: AbortSignal | undefined;
}

/**
 * A shared key-value store for cache entries. Values are JSON: what `get` returns is what
 * `JSON.parse(JSON.stringify(entry))` would give (a `Date` comes back as a string, `undefined`
 * properties disappear). Operations reject with {@link CacheStoreError} when the store cannot
 * answer; callers (the tiered cache) treat that as a miss.
 */
export interface CacheStore {
  /** The entry under `key`, or undefined when there is none or it is older than its `ttlMs`. */
  get(key: string, options?: CacheStoreOperationOptions): Promise<CacheEntry | undefined>;
  /**
   * Stores `entry` under `key` for `ttlMs` milliseconds (> 0; fractions are rounded up), replacing
   * any entry there.
   */
  set(
    key: string,
    entry: CacheEntry,
    ttlMs: number,
    options?: CacheStoreOperationOptions,
  ): Promise<void>;
  /** Removes the entry under `key`; removing a missing key is not an error. */
  delete(key: string, options?: CacheStoreOperationOptions): Promise<void>;
}

/** A cache store could not do what was asked (connection down, timeout, bad data). Retryable. */
export class CacheStoreError extends BulwarkError {
  constructor(
    readonly store: string,
    message: string,
    options: BulwarkErrorOptions = {},
  ) {
    super('CACHE_STORE_FAILED', `cache store "${store}": ${message}`, {
      retryable: true,
      ...options,
    });
  }
}

/** Type guard for {@link CacheStoreError}, by code (works across package copies). */
export function isCacheStoreError(error: unknown): error is CacheStoreError {
  return hasCode(error, 'CACHE_STORE_FAILED');
}

/** Checks the shape of something read back from a store; anything else is treated as a miss. */
export function isCacheEntry(candidate: unknown): candidate is CacheEntry {
  if (typeof candidate !== 'object' || candidate === null || !('value' in candidate)) return false;
  const storedAtMs = (candidate as { storedAtMs?: unknown }).storedAtMs;
  return typeof storedAtMs === 'number' && Number.isFinite(storedAtMs);
}
