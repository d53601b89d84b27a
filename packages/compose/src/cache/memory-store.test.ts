import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { describeCacheStoreContract } from '../contract/index.js';
import { memoryCacheStore } from './memory-store.js';

describeCacheStoreContract('memoryCacheStore', () => {
  const clock = new TestClock();
  return { store: memoryCacheStore({ clock }), advanceMs: ms => clock.advance(ms) };
});

describe('memoryCacheStore', () => {
  it('drops the oldest written entry beyond maxEntries', async () => {
    const store = memoryCacheStore({ maxEntries: 2, clock: new TestClock() });
    await store.set('a', { value: 1, storedAtMs: 0 }, 1_000);
    await store.set('b', { value: 2, storedAtMs: 0 }, 1_000);
    await store.set('c', { value: 3, storedAtMs: 0 }, 1_000);
    expect(await store.get('a')).toBeUndefined();
    expect((await store.get('c'))?.value).toBe(3);
  });

  it('rejects options it does not know, naming the fix', () => {
    expect(() => memoryCacheStore({ maxEntires: 2 } as never)).toThrow(
      /unknown option "maxEntires"/,
    );
    expect(() => memoryCacheStore({ maxEntries: 0 })).toThrow(/maxEntries must be an integer >= 1/);
  });
});
