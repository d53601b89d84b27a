import { TestClock, flushMicrotasks, observe } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { bodyJson, toHttpResponse } from '../http/response.js';
import { composition } from './composition.js';
import { envelopeJson, toEnvelope, type Envelope } from './envelope.js';
import { staleFrom } from './fallbacks.js';
import { rawJson, RawJson } from './raw-json.js';

const orders = [
  { id: 7, note: 'a "quoted" \u2028 line', lines: [{ productId: 1, product: null }] },
];

/** Key order as toEnvelope writes it: data, errors (when there are any), meta. */
function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    data: overrides.data ?? {
      user: { id: 1 },
      orders: rawJson(JSON.stringify(orders)),
      'odd "name"': [1, 2],
    },
    ...(overrides.errors === undefined ? {} : { errors: overrides.errors }),
    meta: { status: 'complete', deadline: { budgetMs: 800, elapsedMs: 3 }, parts: {} },
  };
}

describe('RawJson', () => {
  it('writes a RawJson part value into the envelope as it is: same text as JSON.stringify of the parsed value', () => {
    const withErrors = envelope({
      errors: [
        {
          message: 'orders served from cache: upstream timed out',
          path: ['orders'],
          extensions: { code: 'TIMEOUT', retryable: true, part: 'orders' },
        },
      ],
    });
    for (const e of [envelope(), withErrors]) {
      const text = envelopeJson(e);
      const parsed = { ...e, data: { ...e.data, orders } };
      expect(text).toBe(JSON.stringify(parsed));
      // Plain JSON.stringify (a serializer that does not know RawJson) writes the same, via toJSON.
      expect(JSON.stringify(e)).toBe(text);
    }
  });

  it('does not parse the text: what was stored is what goes out', () => {
    // Whitespace JSON.stringify would not write survives, so the text was not re-serialized.
    const e = envelope({ data: { orders: rawJson('[ 1,  2 ]'), fn: () => 1, none: null } });
    expect(envelopeJson(e)).toBe(
      '{"data":{"orders":[ 1,  2 ],"none":null},"meta":{"status":"complete","deadline":{"budgetMs":800,"elapsedMs":3},"parts":{}}}',
    );
  });

  it('without a RawJson value the envelope is JSON.stringify of itself', () => {
    const e = envelope({ data: { user: { id: 1 } } });
    expect(envelopeJson(e)).toBe(JSON.stringify(e));
  });

  it('refuses anything but a string', () => {
    expect(() => rawJson([1] as unknown as string)).toThrow(
      'rawJson: json must be a string of JSON text, got object',
    );
    expect(new RawJson('1').toJSON()).toBe(1);
  });

  it('bodyJson: a run with a RawJson part, served stale, and a failed run as problem text', async () => {
    const clock = new TestClock();
    const c = composition<{ fail: boolean }>({ name: 'raw', clock, timeoutMs: 800 })
      .part('user', {
        criticality: 'critical',
        load: input => (input.fail ? Promise.reject(new Error('down')) : { id: 1 }),
      })
      .part('orders', {
        criticality: 'optional',
        load: () => Promise.reject(new Error('orders down')),
        fallbacks: [
          staleFrom(() => ({
            value: rawJson(JSON.stringify(orders)),
            ageMs: 5_000,
            tier: 'l1',
            stale: true,
          })),
        ],
      });
    const ok = observe(c.run({ fail: false }));
    await flushMicrotasks();
    const response = toHttpResponse(ok.value!);
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(bodyJson(response)) as Envelope;
    expect(body.data).toEqual({ user: { id: 1 }, orders });
    expect(body.meta.parts.orders).toMatchObject({ status: 'stale', ageMs: 5_000 });
    expect(bodyJson(response)).toBe(JSON.stringify(toEnvelope(ok.value!)));

    const failed = observe(c.run({ fail: true }));
    await flushMicrotasks();
    const problem = toHttpResponse(failed.value!);
    expect(problem.statusCode).toBe(503);
    expect(bodyJson(problem)).toBe(JSON.stringify(problem.body));
  });
});
