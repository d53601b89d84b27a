/**
 * A tiered cache whose Redis is unreachable or hangs still answers every fetch from the origin:
 * the L2 tier costs at most `l2TimeoutMs` per request and then nothing while its breaker is open.
 * These tests use real sockets and the system clock, and assert outcomes, never timings.
 */
import { createServer } from 'node:net';
import { tieredCache, type TieredCacheEvent } from '@bulwark/compose/cache';
import { startFaultProxy, type FaultProxy } from '@bulwark/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCacheStore, type RedisCacheStore } from './redis-cache-store.js';

const url = process.env.REDIS_URL;
if (!url)
  console.warn(
    'outage.int.test.ts: hang tests skipped: set REDIS_URL (e.g. redis://127.0.0.1:6379)',
  );

/** A local port nothing listens on: bind an ephemeral port, then release it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>(resolve => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function fetchMany(store: RedisCacheStore, count: number) {
  const cache = tieredCache<string>({ name: 'outage', ttlMs: 60_000, l2: store, l2TimeoutMs: 50 });
  const events: TieredCacheEvent[] = [];
  cache.onEvent(e => events.push(e));
  let originCalls = 0;
  const results = [];
  // One after another, as requests would arrive: each must be answered despite the dead L2.
  for (let i = 0; i < count; i++) {
    results.push(
      await cache.fetch(`key-${i}`, ({ key }) => {
        originCalls += 1;
        return `origin:${key}`;
      }),
    );
  }
  return { results, events, originCalls };
}

describe('tieredCache over an unreachable Redis', () => {
  let store: RedisCacheStore;
  beforeAll(async () => {
    store = redisCacheStore({ redis: `redis://127.0.0.1:${await closedPort()}` });
  });
  afterAll(() => store.close());

  it('answers every fetch from the origin and reports L2 errors as events', async () => {
    const { results, events, originCalls } = await fetchMany(store, 20);
    expect(originCalls).toBe(20);
    expect(results.map(r => r.value)).toEqual(results.map((_, i) => `origin:key-${i}`));
    expect(results.every(r => r.outcome === 'miss' && r.provenance.source === 'origin')).toBe(true);
    expect(events.some(e => e.type === 'cache.l2-error')).toBe(true);
  });
});

describe.skipIf(!url)('tieredCache over a Redis that hangs (fault proxy, REDIS_URL)', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    const target = new URL(url as string);
    proxy = await startFaultProxy({
      target: { host: target.hostname, port: Number(target.port || 6379) },
      faults: [{ kind: 'hang' }],
    });
  });
  afterAll(() => proxy.close());

  it('a client with ioredis defaults (offline queue on) cannot hold a request past l2TimeoutMs', async () => {
    const client = new Redis(`redis://${proxy.host}:${proxy.port}`);
    client.on('error', () => {});
    const store = redisCacheStore({ redis: client, keyPrefix: 'bulwark-test:outage:' });
    try {
      const { results, events, originCalls } = await fetchMany(store, 10);
      expect(originCalls).toBe(10);
      expect(results.every(r => r.outcome === 'miss')).toBe(true);
      const codes = events.flatMap(e =>
        e.type === 'cache.l2-error' ? [(e.error as { code?: string }).code] : [],
      );
      // First the reads time out; after 5 failures in a row the breaker skips L2 altogether.
      expect(codes).toContain('TIMEOUT');
      expect(codes).toContain('CIRCUIT_OPEN');
    } finally {
      client.disconnect();
    }
  });

  it('a store made from a URL fails fast while the connection is not ready', async () => {
    const store = redisCacheStore({ redis: `redis://${proxy.host}:${proxy.port}` });
    try {
      const { results, events } = await fetchMany(store, 10);
      expect(results.every(r => r.outcome === 'miss')).toBe(true);
      const errors = events.filter(e => e.type === 'cache.l2-error');
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });
});
