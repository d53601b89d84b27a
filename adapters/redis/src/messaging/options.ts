/** Options of `redisQueueBackend`, validated eagerly with messages that name the fix. */
import { hostname } from 'node:os';
import { InvalidOptionsError } from '@bulwark/core';
import type { Redis } from 'ioredis';

export interface RedisQueueBackendOptions {
  /**
   * An ioredis client you own: used as is and left open by `close()`. Exactly one of `redis` and
   * `url`.
   */
  redis?: Redis;
  /**
   * A `redis://` or `rediss://` URL for a client the backend creates (commands lost with a
   * connection are not resent: `maxRetriesPerRequest: 0`) and closes in `close()`.
   */
  url?: string;
  /** Starts every key, so several apps or test runs share one Redis. No `{` or `}`. Default `bulwark`. */
  prefix?: string;
  /**
   * `'redis'` (default): enqueues PUBLISH a wake-up, and the first `subscribe()` opens one more
   * connection that SUBSCRIBEs, so consumers in other processes wake at once. `'local'`: only
   * consumers on this backend object wake at once; others find messages at their next poll.
   */
  wakeUps?: 'redis' | 'local';
  /**
   * This backend's consumer name in each queue's consumer group (shown by XINFO CONSUMERS).
   * Default `<hostname>:<pid>:<random>`.
   */
  consumerName?: string;
}

export interface ResolvedOptions {
  readonly client: Redis | undefined;
  readonly url: string | undefined;
  readonly prefix: string;
  readonly wakeUps: 'redis' | 'local';
  readonly consumerName: string;
}

const WHERE = 'redisQueueBackend';
const KNOWN = ['redis', 'url', 'prefix', 'wakeUps', 'consumerName'];

export function resolveOptions(options: RedisQueueBackendOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(
      `${WHERE}: expected an options object { redis } or { url }, got ${String(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) {
      throw new InvalidOptionsError(
        `${WHERE}: unknown option "${key}"; known options are ${KNOWN.join(', ')}`,
      );
    }
  }
  const { redis, url } = options;
  if ((redis === undefined) === (url === undefined)) {
    throw new InvalidOptionsError(
      `${WHERE}: pass exactly one of redis (an ioredis client you own) and url (redis://host:6379)`,
    );
  }
  if (redis !== undefined) {
    const r = redis as Partial<Redis> | null;
    if (
      r === null ||
      typeof r !== 'object' ||
      typeof r.evalsha !== 'function' ||
      typeof r.duplicate !== 'function'
    ) {
      throw new InvalidOptionsError(
        `${WHERE}: redis must be an ioredis client (new Redis(url) from 'ioredis')`,
      );
    }
  }
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw new InvalidOptionsError(
      `${WHERE}: url must start with redis:// or rediss://, got ${JSON.stringify(url)}`,
    );
  }
  const prefix = options.prefix ?? 'bulwark';
  if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
    throw new InvalidOptionsError(
      `${WHERE}: prefix must be a non-empty string without { or } (they delimit hash tags), got ${JSON.stringify(prefix)}`,
    );
  }
  const wakeUps = options.wakeUps ?? 'redis';
  if (wakeUps !== 'redis' && wakeUps !== 'local') {
    throw new InvalidOptionsError(
      `${WHERE}: wakeUps must be 'redis' or 'local', got ${JSON.stringify(wakeUps)}`,
    );
  }
  const consumerName =
    options.consumerName ??
    `${hostname()}:${process.pid}:${globalThis.crypto.randomUUID().slice(0, 8)}`;
  if (typeof consumerName !== 'string' || consumerName === '') {
    throw new InvalidOptionsError(
      `${WHERE}: consumerName must be a non-empty string, or leave it out`,
    );
  }
  return { client: redis, url, prefix, wakeUps, consumerName };
}
