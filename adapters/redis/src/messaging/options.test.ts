/**
 * What needs no server: option validation, key naming and lease tokens. Bad options throw before
 * any client is made, and the clients built here are lazy and never connect; everything Redis
 * does is in backend.int.test.ts.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisQueueBackend } from './backend.js';
import { escapeQueue, queueKeys, queueOfToken, sharedKeys } from './keys.js';

describe('redisQueueBackend options', () => {
  it('needs exactly one of redis and url', () => {
    expect(() => redisQueueBackend({})).toThrow(/exactly one of redis .* and url/);
    const client = new Redis({ lazyConnect: true });
    expect(() => redisQueueBackend({ redis: client, url: 'redis://127.0.0.1:6379' })).toThrow(
      /exactly one of/,
    );
  });

  it('names the fix for bad values and unknown options', () => {
    expect(() => redisQueueBackend(null as never)).toThrow(/expected an options object/);
    expect(() => redisQueueBackend({ url: 'http://x' })).toThrow(
      /url must start with redis:\/\/ or rediss:\/\//,
    );
    expect(() => redisQueueBackend({ redis: {} as never })).toThrow(/an ioredis client/);
    expect(() => redisQueueBackend({ url: 'redis://h', prefix: 'a{b}' })).toThrow(
      /prefix must be a non-empty string without \{ or \}/,
    );
    expect(() => redisQueueBackend({ url: 'redis://h', prefix: '' })).toThrow(/prefix/);
    expect(() => redisQueueBackend({ url: 'redis://h', wakeUps: 'pubsub' as never })).toThrow(
      /wakeUps must be 'redis' or 'local'/,
    );
    expect(() => redisQueueBackend({ url: 'redis://h', keyPrefix: 'x' } as never)).toThrow(
      /unknown option "keyPrefix"; known options are redis, url, prefix, wakeUps, consumerName/,
    );
  });

  it('throws InvalidOptionsError (code INVALID_OPTIONS)', () => {
    expect(() => redisQueueBackend({})).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });

  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(opened.map(b => b.close()));
  });

  it('uses the prefix and the name "redis"', () => {
    const client = new Redis({ lazyConnect: true });
    const backend = redisQueueBackend({ redis: client, prefix: 'shop' });
    opened.push(backend);
    expect(backend.name).toBe('redis');
    expect(backend.prefix).toBe('shop');
    expect(backend.client).toBe(client);
  });
});

describe('key names', () => {
  it('puts every key of a queue under one hash tag', () => {
    const k = queueKeys('bw', 'orders:created');
    expect(k.tag).toBe('{bw:orders:created}');
    for (const key of [k.stream, k.due, k.leases, k.dead, k.seq]) {
      expect(key.startsWith(`${k.tag}:`)).toBe(true);
    }
    expect(sharedKeys('bw')).toEqual({
      queues: '{bw}:queues',
      audit: '{bw}:audit',
      wakeChannel: '{bw}:wake',
    });
  });

  it('escapes braces so a queue name cannot end the hash tag early, reversibly', () => {
    expect(queueKeys('bw', 'a}b').tag).toBe('{bw:a%7Db}');
    expect(queueKeys('bw', 'a{b').tag).toBe('{bw:a%7Bb}');
    // The escape character is escaped too, so distinct names stay distinct.
    expect(escapeQueue('a%7Db')).toBe('a%257Db');
    expect(escapeQueue('a%7Db')).not.toBe(escapeQueue('a}b'));
  });

  it('reads the queue back from a lease token', () => {
    expect(queueOfToken('0f9c.3:orders:created')).toBe('orders:created');
    expect(queueOfToken('no-queue')).toBeUndefined();
  });
});
