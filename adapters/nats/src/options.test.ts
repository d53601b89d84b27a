import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { natsQueueBackend } from './backend.js';
import { escapeToken, names, unescapeToken } from './names.js';
import { resolveOptions, type NatsQueueBackendOptions } from './options.js';

describe('natsQueueBackend options', () => {
  it('applies the documented defaults', () => {
    expect(resolveOptions({ url: 'nats://127.0.0.1:4222' })).toEqual({
      url: 'nats://127.0.0.1:4222',
      prefix: 'bulwark',
      ackWaitMarginMs: 5_000,
      maxAckPending: 10_000,
      duplicateWindowMs: 120_000,
      replicas: 1,
      storage: 'file',
      requestTimeoutMs: 5_000,
      name: 'bulwark-bulwark',
    });
  });

  it.each([
    [{}, /url is required/],
    [{ url: 'http://x:4222' }, /url must be nats:\/\/host:port/],
    [{ url: 'nats://a:1, redis://b:2' }, /"redis:\/\/b:2"/],
    [{ url: 'nats://a:1', prefix: 'a.b' }, /prefix must be 1 to 32 letters/],
    [{ url: 'nats://a:1', prefix: '' }, /prefix must be/],
    [{ url: 'nats://a:1', ackWaitMarginMs: -1 }, /ackWaitMarginMs must be an integer >= 0/],
    [{ url: 'nats://a:1', maxAckPending: 0 }, /maxAckPending must be an integer >= 1/],
    [{ url: 'nats://a:1', duplicateWindowMs: 1.5 }, /duplicateWindowMs must be an integer/],
    [{ url: 'nats://a:1', storage: 'disk' }, /storage must be "file" or "memory"/],
    [{ url: 'nats://a:1', leaseMs: 5 }, /unknown option "leaseMs"; known options are url, prefix/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveOptions(options as NatsQueueBackendOptions)).toThrow(message);
    try {
      resolveOptions(options as NatsQueueBackendOptions);
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_OPTIONS', retryable: false });
    }
  });

  it('validates before connecting', async () => {
    await expect(natsQueueBackend({ url: 'nats://x:1', prefix: 'a b' })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
  });

  it('accepts a cluster list and tls', () => {
    expect(resolveOptions({ url: 'nats://a:4222,tls://b:4222' }).url).toBe(
      'nats://a:4222,tls://b:4222',
    );
  });
});

describe('subject tokens', () => {
  it('keeps plain names readable and escapes the rest', () => {
    expect(escapeToken('orders-eu')).toBe('orders-eu');
    expect(escapeToken('a.b c_d>*')).toBe('a_2eb_20c_5fd_3e_2a');
    expect(escapeToken('ü')).toBe('_c3_bc');
  });

  it('escapes reversibly into subject-safe tokens', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1 }), text => {
        const token = escapeToken(text);
        return /^[A-Za-z0-9_-]+$/.test(token) && unescapeToken(token) === text;
      }),
    );
  });

  it('never lets two queues share a subject', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
        fc.pre(a !== b);
        const n = names('p');
        return n.queueSubject(a) !== n.queueSubject(b) && n.consumerName(a) !== n.consumerName(b);
      }),
    );
  });
});
