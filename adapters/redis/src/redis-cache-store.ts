/**
 * redisCacheStore: the `CacheStore` port of `@bulwark/compose` on Redis (ioredis). One string key
 * per entry, `SET key json PX ttlMs`, so Redis drops entries on its own; values are JSON.
 *
 * Built for a cache tier, where an outage must cost a miss, not a wait: a client this store
 * creates from a URL does not queue commands while disconnected (`enableOfflineQueue: false`),
 * does not resend commands lost with a connection (`maxRetriesPerRequest: 0`), and bounds connects
 * and commands (`connectTimeoutMs`, `commandTimeoutMs`). It keeps reconnecting in the background
 * (ioredis's default backoff), so the tier comes back by itself.
 */
import {
  CacheStoreError,
  isCacheEntry,
  type CacheEntry,
  type CacheStore,
} from '@bulwark/compose/cache';
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisCacheStoreOptions {
  /**
   * An ioredis client, or a `redis://` / `rediss://` URL for a client this store creates (with
   * {@link failFastRedisOptions}) and closes in `close()`. A client you pass is used as is: give
   * it the fail-fast options too, or rely on the tiered cache's `l2TimeoutMs`. Required.
   */
  redis: Redis | string;
  /** Prepended to every key, so several apps or tests can share one Redis. Default `"bulwark:cache:"`. */
  keyPrefix?: string;
  /** For a client made from a URL: longest a TCP connect may take, in ms. Default 1_000. */
  connectTimeoutMs?: number;
  /** For a client made from a URL: longest a command may wait for its reply, in ms. Default 1_000. */
  commandTimeoutMs?: number;
  /** Used in errors. Default `"redis"`. */
  name?: string;
  /**
   * Wall-clock source for the read-side expiry check (see README). Default: the system clock.
   * Tests pass a TestClock to expire entries without waiting.
   */
  clock?: Clock;
}

export interface RedisCacheStore extends CacheStore {
  /** The ioredis client in use. */
  readonly client: Redis;
  /** Resolves once the client is connected and ready (rejects after `timeoutMs`, default 5_000). */
  ready(timeoutMs?: number): Promise<void>;
  /** Closes the client if this store created it; a client you passed is left open. */
  close(): Promise<void>;
}

/**
 * ioredis options for a cache: fail at once while Redis is away instead of queueing. Use them
 * when you build the client yourself: `new Redis(url, failFastRedisOptions)`.
 */
export const failFastRedisOptions: Readonly<RedisOptions> = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 1_000,
  commandTimeout: 1_000,
});

/** What is stored in Redis. `expiresAtMs` (wall clock) backs up PX on read. */
interface Stored {
  value: unknown;
  storedAtMs: number;
  expiresAtMs: number;
}

const WHERE = 'redisCacheStore';
const KNOWN = ['redis', 'keyPrefix', 'connectTimeoutMs', 'commandTimeoutMs', 'name', 'clock'];

export function redisCacheStore(options: RedisCacheStoreOptions): RedisCacheStore {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${WHERE}: expected an options object, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) {
      throw new InvalidOptionsError(
        `${WHERE}: unknown option "${key}"; known options are ${KNOWN.join(', ')}`,
      );
    }
  }
  const keyPrefix = options.keyPrefix ?? 'bulwark:cache:';
  if (typeof keyPrefix !== 'string') {
    throw new InvalidOptionsError(`${WHERE}: keyPrefix must be a string, e.g. "myapp:cache:"`);
  }
  const name = options.name ?? 'redis';
  const clock = options.clock ?? systemClock;
  const connectTimeout = positive('connectTimeoutMs', options.connectTimeoutMs ?? 1_000);
  const commandTimeout = positive('commandTimeoutMs', options.commandTimeoutMs ?? 1_000);

  let client: Redis;
  let owned: boolean;
  if (typeof options.redis === 'string') {
    if (!/^rediss?:\/\//.test(options.redis)) {
      throw new InvalidOptionsError(
        `${WHERE}: redis must be an ioredis client or a redis:// or rediss:// URL, got ${JSON.stringify(options.redis)}`,
      );
    }
    client = new Redis(options.redis, {
      ...failFastRedisOptions,
      connectTimeout,
      commandTimeout,
    });
    // Errors reach callers through their commands; without a listener ioredis prints each one.
    client.on('error', () => {});
    owned = true;
  } else if (options.redis instanceof Redis || isRedisLike(options.redis)) {
    client = options.redis;
    owned = false;
  } else {
    throw new InvalidOptionsError(
      `${WHERE}: redis must be an ioredis client or a redis:// URL (e.g. process.env.REDIS_URL)`,
    );
  }

  const fail = (what: string, cause: unknown): CacheStoreError =>
    new CacheStoreError(
      name,
      `${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );

  return {
    client,
    async get(key) {
      let raw: string | null;
      try {
        raw = await client.get(keyPrefix + key);
      } catch (error) {
        throw fail(`GET ${key}`, error);
      }
      if (raw === null) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (error) {
        throw fail(`GET ${key} (entry is not JSON)`, error);
      }
      if (!isCacheEntry(parsed)) throw fail(`GET ${key}`, 'entry is not a cache entry');
      const stored = parsed as Stored;
      // Redis expires on its own clock; this check makes expiry follow the injected clock too.
      if (typeof stored.expiresAtMs === 'number' && stored.expiresAtMs <= clock.wallNow()) {
        return undefined;
      }
      return { value: stored.value, storedAtMs: stored.storedAtMs } satisfies CacheEntry;
    },
    async set(key, entry, ttlMs) {
      if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) {
        throw new InvalidOptionsError(
          `${WHERE}.set: ttlMs must be a finite number > 0, got ${ttlMs}`,
        );
      }
      const px = Math.ceil(ttlMs);
      const stored: Stored = {
        value: entry.value,
        storedAtMs: entry.storedAtMs,
        expiresAtMs: clock.wallNow() + px,
      };
      try {
        await client.set(keyPrefix + key, JSON.stringify(stored), 'PX', px);
      } catch (error) {
        throw fail(`SET ${key}`, error);
      }
    },
    async delete(key) {
      try {
        await client.del(keyPrefix + key);
      } catch (error) {
        throw fail(`DEL ${key}`, error);
      }
    },
    ready(timeoutMs = 5_000) {
      if (client.status === 'ready') return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          client.off('ready', onReady);
          reject(
            new CacheStoreError(name, `not ready after ${timeoutMs} ms (status ${client.status})`),
          );
        }, timeoutMs);
        const onReady = (): void => {
          clearTimeout(timer);
          resolve();
        };
        client.once('ready', onReady);
      });
    },
    async close() {
      if (!owned) return;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}

function positive(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionsError(
      `${WHERE}: ${option} must be a finite number of milliseconds > 0, got ${String(value)}`,
    );
  }
  return value;
}

/** Accepts a client from another copy of ioredis (instanceof fails across copies). */
function isRedisLike(candidate: unknown): candidate is Redis {
  const c = candidate as Partial<Redis> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.get === 'function' &&
    typeof c.set === 'function' &&
    typeof c.del === 'function' &&
    typeof c.once === 'function'
  );
}
