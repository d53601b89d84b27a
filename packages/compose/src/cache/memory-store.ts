/**
 * The in-memory implementation of the {@link CacheStore} port: for tests and single-process use.
 * It is not shared between processes, so it is not a real L2; use `@bulwark/redis` for that. It
 * round-trips every entry through JSON so code tested against it sees what a real store would
 * return (no shared object references, no `Date`s, no `undefined`).
 */
import { systemClock, type Clock } from '@bulwark/core';
import { isCacheEntry, type CacheEntry, type CacheStore } from './store.js';
import { rejectUnknown, requireClock, requireCount, requireOptionsObject } from './validate.js';

export interface MemoryCacheStoreOptions {
  /** Most entries kept; the oldest written is dropped first. Default 10_000. */
  maxEntries?: number;
  /** Drives expiry (monotonic `now()`). Default: the system clock. */
  clock?: Clock;
}

interface Slot {
  readonly json: string;
  readonly expiresAt: number;
}

const WHERE = 'memoryCacheStore';

export function memoryCacheStore(options: MemoryCacheStoreOptions = {}): CacheStore {
  requireOptionsObject(WHERE, options);
  rejectUnknown(WHERE, options, ['maxEntries', 'clock']);
  const maxEntries = requireCount(WHERE, 'maxEntries', options.maxEntries ?? 10_000, 1);
  requireClock(WHERE, options.clock);
  const clock = options.clock ?? systemClock;
  const slots = new Map<string, Slot>();

  return {
    get(key) {
      const slot = slots.get(key);
      if (slot === undefined) return Promise.resolve(undefined);
      if (slot.expiresAt <= clock.now()) {
        slots.delete(key);
        return Promise.resolve(undefined);
      }
      const parsed: unknown = JSON.parse(slot.json);
      return Promise.resolve(isCacheEntry(parsed) ? parsed : undefined);
    },
    set(key, entry: CacheEntry, ttlMs) {
      if (!(ttlMs > 0)) {
        return Promise.reject(new RangeError(`${WHERE}.set: ttlMs must be > 0, got ${ttlMs}`));
      }
      let json: string;
      try {
        json = JSON.stringify(entry);
      } catch (error) {
        return Promise.reject(error);
      }
      // Re-inserting moves the key to the end, so the Map's order is write order.
      slots.delete(key);
      slots.set(key, { json, expiresAt: clock.now() + Math.ceil(ttlMs) });
      while (slots.size > maxEntries) {
        const oldest = slots.keys().next().value as string;
        slots.delete(oldest);
      }
      return Promise.resolve();
    },
    delete(key) {
      slots.delete(key);
      return Promise.resolve();
    },
  };
}
