/**
 * The CacheStore contract against a real Redis (REDIS_URL), plus what is specific to Redis: PX
 * expiry, key prefixes, bad data. Every run uses its own key prefix and deletes its keys.
 */
import { randomUUID } from 'node:crypto';
import { describeCacheStoreContract } from '@bulwark/compose/contract';
import { isCacheStoreError } from '@bulwark/compose/cache';
import { TestClock } from '@bulwark/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCacheStore, type RedisCacheStore } from './redis-cache-store.js';

const url = process.env.REDIS_URL;
if (!url)
  console.warn(
    'redis-cache-store.int.test.ts skipped: set REDIS_URL (e.g. redis://127.0.0.1:6379)',
  );

const runPrefix = `bulwark-test:cache:${randomUUID()}:`;

async function deleteByPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

describe.skipIf(!url)('redisCacheStore (REDIS_URL)', () => {
  let admin: Redis;
  beforeAll(() => {
    admin = new Redis(url as string);
  });
  afterAll(async () => {
    await deleteByPrefix(admin, runPrefix);
    await admin.quit();
  });

  let n = 0;
  describeCacheStoreContract('redisCacheStore', async () => {
    const clock = new TestClock({ wallStartMs: Date.now() });
    const prefix = `${runPrefix}contract-${n++}:`;
    const store = redisCacheStore({ redis: url as string, keyPrefix: prefix, clock });
    await store.ready();
    return {
      store,
      advanceMs: ms => clock.advance(ms),
      cleanup: async () => {
        await deleteByPrefix(admin, prefix);
        await store.close();
      },
    };
  });

  describe('Redis specifics', () => {
    let store: RedisCacheStore;
    const prefix = `${runPrefix}specific:`;
    beforeAll(async () => {
      store = redisCacheStore({ redis: url as string, keyPrefix: prefix });
      await store.ready();
    });
    afterAll(() => store.close());

    it('stores JSON under the prefixed key with a PX expiry', async () => {
      await store.set('k1', { value: { a: 1 }, storedAtMs: 123 }, 60_000);
      const raw = await admin.get(`${prefix}k1`);
      expect(JSON.parse(raw as string)).toMatchObject({ value: { a: 1 }, storedAtMs: 123 });
      const pttl = await admin.pttl(`${prefix}k1`);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(60_000);
    });

    it('reports data that is not a cache entry as a CacheStoreError', async () => {
      await admin.set(`${prefix}bad-json`, 'not json', 'PX', 60_000);
      await admin.set(`${prefix}bad-shape`, '{"hello":1}', 'PX', 60_000);
      for (const key of ['bad-json', 'bad-shape']) {
        const error: unknown = await store.get(key).catch((e: unknown) => e);
        expect(isCacheStoreError(error)).toBe(true);
      }
    });

    it('works with a client you pass in, and leaves it open on close', async () => {
      const client = new Redis(url as string);
      const mine = redisCacheStore({ redis: client, keyPrefix: prefix });
      await mine.set('passed', { value: 'x', storedAtMs: 1 }, 60_000);
      expect((await store.get('passed'))?.value).toBe('x');
      await mine.close();
      expect(await client.ping()).toBe('PONG');
      await client.quit();
    });

    it('rejects bad options with messages that name the fix', () => {
      expect(() => redisCacheStore({ redis: 'http://x' })).toThrow(/redis:\/\/ or rediss:\/\/ URL/);
      expect(() => redisCacheStore({ redis: {} as never })).toThrow(/ioredis client/);
      expect(() => redisCacheStore({ redis: url as string, prefix: 'x' } as never)).toThrow(
        /unknown option "prefix"/,
      );
    });
  });
});
