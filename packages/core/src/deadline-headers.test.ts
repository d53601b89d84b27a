import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TestClock } from '@bulwark/testing';
import { Deadline } from './deadline.js';
import {
  budgetFromHeaders,
  deadlineFromHeaders,
  deadlineToHeaders,
  formatGrpcTimeout,
  parseGrpcTimeout,
  parseMillisHeader,
} from './deadline-headers.js';

describe('grpc-timeout', () => {
  it('parses every unit', () => {
    expect(parseGrpcTimeout('2H')).toBe(7_200_000);
    expect(parseGrpcTimeout('3M')).toBe(180_000);
    expect(parseGrpcTimeout('5S')).toBe(5_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('2000000n')).toBe(2);
  });

  it('rejects what the spec does not allow', () => {
    for (const bad of ['', '10', 'm', '123456789m', '-5m', '1.5S', '10x', '10 m', '0x10m']) {
      expect(parseGrpcTimeout(bad), bad).toBeUndefined();
    }
  });

  it('round-trips without ever granting more time than was left', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), ms => {
        const text = formatGrpcTimeout(ms);
        expect(text).toMatch(/^\d{1,8}[HMSmun]$/);
        const back = parseGrpcTimeout(text) as number;
        expect(back).toBeLessThanOrEqual(ms + 1e-9);
      }),
    );
    expect(formatGrpcTimeout(1234.5678)).toBe('1234567u');
    expect(formatGrpcTimeout(-3)).toBe('0u');
  });
});

describe('budget headers', () => {
  it('takes the smallest budget of the three headers', () => {
    expect(
      budgetFromHeaders({
        'grpc-timeout': '900m',
        'x-envoy-expected-rq-timeout-ms': '700',
        'x-bulwark-budget-ms': '800',
      }),
    ).toBe(700);
    expect(budgetFromHeaders({ 'x-bulwark-budget-ms': '120' })).toBe(120);
    expect(budgetFromHeaders({})).toBeUndefined();
  });

  it('ignores headers that do not parse instead of trusting them', () => {
    expect(
      budgetFromHeaders({ 'x-envoy-expected-rq-timeout-ms': 'soon', 'grpc-timeout': '5S' }),
    ).toBe(5000);
    expect(parseMillisHeader('-1')).toBeUndefined();
    expect(parseMillisHeader('1e3')).toBeUndefined();
    expect(parseMillisHeader(' 42 ')).toBe(42);
  });

  it('reads Headers-like objects and arrays', () => {
    const headers = new Headers({ 'grpc-timeout': '2S' });
    expect(budgetFromHeaders(headers)).toBe(2000);
    expect(budgetFromHeaders({ 'x-bulwark-budget-ms': ['300', '900'] })).toBe(300);
  });

  it('builds an inbound deadline: default when absent, clamped to the maximum', () => {
    const clock = new TestClock();
    const options = { clock, defaultMs: 1000, maxMs: 5000 };
    expect(deadlineFromHeaders({}, options).remainingMs()).toBe(1000);
    expect(deadlineFromHeaders({ 'grpc-timeout': '1H' }, options).remainingMs()).toBe(5000);
    expect(deadlineFromHeaders({ 'grpc-timeout': '300m' }, options).remainingMs()).toBe(300);
    expect(() => deadlineFromHeaders({}, { clock, defaultMs: 10, maxMs: 5 })).toThrow(
      /defaultMs <= maxMs/,
    );
  });

  it('writes the remaining budget, not the original one', async () => {
    const clock = new TestClock();
    const deadline = Deadline.after(1000, { clock });
    await clock.advance(400);
    expect(deadlineToHeaders(deadline)).toEqual({
      'grpc-timeout': '600000u',
      'x-envoy-expected-rq-timeout-ms': '600',
      'x-bulwark-budget-ms': '600',
    });
  });
});
