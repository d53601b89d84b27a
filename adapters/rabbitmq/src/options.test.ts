import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, envelopeOf, messageOf } from './envelope.js';
import { resolveOptions } from './options.js';
import { delayBucketMs, delayQueueArguments, topology } from './topology.js';

describe('rabbitmqQueueBackend options', () => {
  it('defaults the prefix and dedup window', () => {
    expect(resolveOptions({ url: 'amqp://localhost' })).toMatchObject({
      url: 'amqp://localhost',
      prefix: 'bulwark',
      dedupIds: 100_000,
      fetchChannels: 16,
    });
  });

  it.each([
    [{}, /url must be an amqp/],
    [{ url: 'http://x' }, /url must be an amqp/],
    [{ url: 'amqp://x', prefix: 'a b' }, /prefix must be/],
    [{ url: 'amqp://x', dedupIds: -1 }, /dedupIds must be an integer >= 0/],
    [{ url: 'amqp://x', leaseMs: 5 }, /unknown option "leaseMs"/],
    [{ url: 'amqp://x', clock: {} }, /clock must be a Clock/],
    [{ url: 'amqp://x', fetchChannels: 0 }, /fetchChannels must be an integer from 1 to 32/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveOptions(options as never)).toThrow(message);
    expect(() => resolveOptions(options as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });
});

describe('delay buckets', () => {
  it('keep delays under 100 ms exact and round longer ones up to two significant digits', () => {
    expect(
      [0, -5, 1, 10, 99, 100, 250, 900, 1_150, 1_234, 59_999, 123_456].map(delayBucketMs),
    ).toEqual([0, 0, 1, 10, 99, 100, 250, 900, 1_200, 1_300, 60_000, 130_000]);
  });

  it('never deliver early, and at most 10 % late', () => {
    for (let ms = 1; ms < 200_000; ms += 7) {
      const bucket = delayBucketMs(ms);
      expect(bucket).toBeGreaterThanOrEqual(ms);
      expect(bucket).toBeLessThanOrEqual(Math.ceil(ms * 1.1));
    }
  });

  it('dead-letter back to the work queue, at least once, and outlive their messages', () => {
    const names = topology('p');
    expect(names.delayQueue('orders', 300)).toBe('p.delay.orders.300');
    const args = delayQueueArguments(names.workQueue('orders'), 300);
    expect(args).toMatchObject({
      'x-queue-type': 'quorum',
      'x-message-ttl': 300,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'p.q.orders',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
    expect(args['x-expires']).toBeGreaterThan(300);
  });
});

describe('envelope', () => {
  it('round-trips a record and rejects what is not ours', () => {
    const envelope = envelopeOf({
      id: 'm1',
      queue: 'q',
      type: 't',
      payload: { a: [1, 2] },
      headers: { h: 'v' },
      idempotencyKey: 'k',
      availableAt: 5,
      firstSeenAt: 4,
    });
    const back = decodeEnvelope(encodeEnvelope(envelope));
    expect(messageOf(back, 3)).toEqual({
      id: 'm1',
      queue: 'q',
      type: 't',
      payload: { a: [1, 2] },
      headers: { h: 'v' },
      idempotencyKey: 'k',
      attempt: 3,
      firstSeenAt: 4,
    });
    expect(() => decodeEnvelope(Buffer.from('nope'))).toThrow(/not JSON/);
    expect(() => decodeEnvelope(Buffer.from('{"hello":1}'))).toThrow(/not a Bulwark envelope/);
  });
});
