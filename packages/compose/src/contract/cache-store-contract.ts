/**
 * The contract every `CacheStore` implementation passes. Run it from the implementation's own
 * test file:
 *
 *   describeCacheStoreContract('redisCacheStore', async () => {
 *     const clock = new TestClock();
 *     const store = redisCacheStore({ redis, keyPrefix: `t-${run}:`, clock });
 *     return { store, advanceMs: ms => clock.advance(ms), cleanup: () => ... };
 *   });
 *
 * Time is the harness's business: `advanceMs` moves whatever clock the store's expiry follows, so
 * expiry is tested without sleeping. A store whose server expires keys on its own clock (Redis
 * PX) must also hide entries its injected clock says have expired.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CacheEntry, CacheStore } from '../cache/store.js';

export interface CacheStoreHarness {
  readonly store: CacheStore;
  /** Moves the store's clock forward by `ms` milliseconds. */
  advanceMs(ms: number): void | Promise<void>;
  /** Removes what the test wrote (keys, connections). */
  cleanup?(): void | Promise<void>;
}

export type CacheStoreFactory = () => CacheStoreHarness | Promise<CacheStoreHarness>;

const WALL = Date.UTC(2026, 0, 1);

export function describeCacheStoreContract(name: string, factory: CacheStoreFactory): void {
  describe(`CacheStore contract: ${name}`, () => {
    let h: CacheStoreHarness;
    beforeEach(async () => {
      h = await factory();
    });
    afterEach(async () => {
      await h.cleanup?.();
    });

    it('returns undefined for a key never set', async () => {
      expect(await h.store.get('never-set')).toBeUndefined();
    });

    it('returns what was set, value and storedAtMs', async () => {
      const entry: CacheEntry = { value: { id: 'u1', name: 'Ada' }, storedAtMs: WALL };
      await h.store.set('user:u1', entry, 60_000);
      expect(await h.store.get('user:u1')).toEqual(entry);
    });

    it('round-trips JSON values of every kind', async () => {
      const values: unknown[] = [
        null,
        true,
        false,
        0,
        -1.5,
        1e21,
        '',
        'text with "quotes", \\ backslash and unicode: żółw 🐢',
        [],
        [1, 'two', { three: [3] }],
        { nested: { deeper: { list: [null, { a: 1 }] } }, empty: {} },
      ];
      for (const [index, value] of values.entries()) {
        await h.store.set(`json:${index}`, { value, storedAtMs: WALL + index }, 60_000);
      }
      for (const [index, value] of values.entries()) {
        expect(await h.store.get(`json:${index}`)).toEqual({ value, storedAtMs: WALL + index });
      }
    });

    it('returns JSON, not the object that was stored', async () => {
      const value = { when: new Date(WALL), gone: undefined as unknown, kept: 1 };
      await h.store.set('json:date', { value, storedAtMs: WALL }, 60_000);
      const read = await h.store.get('json:date');
      expect(read?.value).toEqual({ when: new Date(WALL).toISOString(), kept: 1 });
      expect(read?.value).not.toBe(value);
    });

    it('replaces an entry on set', async () => {
      await h.store.set('k', { value: 'old', storedAtMs: WALL }, 60_000);
      await h.store.set('k', { value: 'new', storedAtMs: WALL + 5 }, 60_000);
      expect(await h.store.get('k')).toEqual({ value: 'new', storedAtMs: WALL + 5 });
    });

    it('keeps keys apart, including keys with separators, spaces and unicode', async () => {
      const keys = ['a', 'a:b', 'a:b:c', 'with space', 'żółw', 'ends-with:'];
      for (const key of keys) await h.store.set(key, { value: key, storedAtMs: WALL }, 60_000);
      for (const key of keys) expect((await h.store.get(key))?.value).toBe(key);
    });

    it('deletes an entry, and deleting a missing key is fine', async () => {
      await h.store.set('d', { value: 1, storedAtMs: WALL }, 60_000);
      await h.store.delete('d');
      expect(await h.store.get('d')).toBeUndefined();
      await expect(h.store.delete('never-set')).resolves.toBeUndefined();
    });

    it('expires an entry ttlMs after set', async () => {
      await h.store.set('ttl', { value: 'v', storedAtMs: WALL }, 1_000);
      await h.advanceMs(999);
      expect((await h.store.get('ttl'))?.value).toBe('v');
      await h.advanceMs(2);
      expect(await h.store.get('ttl')).toBeUndefined();
    });

    it('restarts the ttl when an entry is replaced', async () => {
      await h.store.set('ttl2', { value: 1, storedAtMs: WALL }, 1_000);
      await h.advanceMs(800);
      await h.store.set('ttl2', { value: 2, storedAtMs: WALL + 800 }, 1_000);
      await h.advanceMs(800);
      expect((await h.store.get('ttl2'))?.value).toBe(2);
    });

    it('rounds a fractional ttlMs up', async () => {
      await h.store.set('frac', { value: 'f', storedAtMs: WALL }, 1_000.5);
      await h.advanceMs(1_000);
      expect((await h.store.get('frac'))?.value).toBe('f');
      await h.advanceMs(1);
      expect(await h.store.get('frac')).toBeUndefined();
    });

    it('handles concurrent sets and gets of different keys', async () => {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          h.store.set(`c:${i}`, { value: i, storedAtMs: WALL }, 60_000),
        ),
      );
      const read = await Promise.all(Array.from({ length: 50 }, (_, i) => h.store.get(`c:${i}`)));
      expect(read.map(e => e?.value)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });
  });
}
