import { isBulwarkError, seededRandom, type Random } from '@bulwark/core';
import { describe, expect, it } from 'vitest';
import {
  FaultValidationError,
  planFaults,
  validateProxyFaults,
  type ProxyFault,
} from './faults.js';

function rejection(input: unknown, mode: 'tcp' | 'http' = 'http'): FaultValidationError {
  try {
    validateProxyFaults(input, mode);
  } catch (error) {
    if (error instanceof FaultValidationError) return error;
    throw error;
  }
  throw new Error('expected validation to fail');
}

describe('validateProxyFaults', () => {
  it('accepts every kind and returns a frozen, normalised copy', () => {
    const input: ProxyFault[] = [
      { kind: 'latency', latencyMs: 10, jitterMs: 5, direction: 'both', probability: 0.5 },
      { kind: 'http-error', status: 503, body: 'x', headers: { 'Retry-After': '1' } },
      { kind: 'hang' },
      { kind: 'reset', direction: 'downstream' },
      { kind: 'slow-body', bytesPerSecond: 1000, direction: 'upstream' },
      { kind: 'blackhole', probability: 0 },
      { kind: 'down' },
    ];
    const faults = validateProxyFaults(input, 'http');
    expect(faults).toEqual(input);
    expect(faults).not.toBe(input);
    expect(Object.isFrozen(faults)).toBe(true);
    expect(Object.isFrozen(faults[0])).toBe(true);
  });

  it.each([
    [{ kind: 'latency', latencyMs: 10 }, 'faults', /must be an array/],
    [[null], 'faults[0]', /must be an object/],
    [[{ kind: 'explode' }], 'faults[0].kind', /must be one of 'latency', 'http-error'/],
    [[{ latencyMs: 3 }], 'faults[0].kind', /must be one of/],
    [
      [{ kind: 'latency' }],
      'faults[0].latencyMs',
      /finite number of milliseconds >= 0, got undefined/,
    ],
    [[{ kind: 'latency', latencyMs: -1 }], 'faults[0].latencyMs', /got -1/],
    [[{ kind: 'latency', latencyMs: 2 ** 31 }], 'faults[0].latencyMs', /must be <=/],
    [[{ kind: 'latency', latencyMs: 1, jitterMs: NaN }], 'faults[0].jitterMs', /got NaN/],
    [[{ kind: 'latency', latency: 5 }], 'faults[0].latency', /not a property of a 'latency' fault/],
    [
      [{ kind: 'latency', latencyMs: 1, direction: 'sideways' }],
      'faults[0].direction',
      /'upstream', 'downstream', 'both'/,
    ],
    [[{ kind: 'hang', probability: 1.5 }], 'faults[0].probability', /\[0, 1\]/],
    [
      [{ kind: 'hang', direction: 'upstream' }],
      'faults[0].direction',
      /not a property of a 'hang' fault/,
    ],
    [
      [{ kind: 'reset', direction: 'both' }],
      'faults[0].direction',
      /'upstream', 'downstream', got "both"/,
    ],
    [
      [{ kind: 'down', probability: 0.5 }],
      'faults[0].probability',
      /not a property of a 'down' fault/,
    ],
    [[{ kind: 'slow-body', bytesPerSecond: 0 }], 'faults[0].bytesPerSecond', /> 0, got 0/],
    [[{ kind: 'http-error', status: 200 }], 'faults[0].status', /\[400, 599\]/],
    [[{ kind: 'http-error', status: 503, body: 5 }], 'faults[0].body', /must be a string/],
    [
      [{ kind: 'http-error', status: 503, headers: { 'bad name': 'x' } }],
      'faults[0].headers.bad name',
      /header name/,
    ],
    [
      [{ kind: 'http-error', status: 503, headers: { a: 'x\ny' } }],
      'faults[0].headers.a',
      /header value/,
    ],
    [
      [{ kind: 'http-error', status: 503, headers: { a: 1 } }],
      'faults[0].headers.a',
      /must be a string/,
    ],
  ])('rejects %j at %s', (input, field, message) => {
    const error = rejection(input);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message.startsWith(`fault proxy: ${field} `)).toBe(true);
    expect(isBulwarkError(error)).toBe(true);
    expect(error.code).toBe('INVALID_OPTIONS');
  });

  it('rejects http-only faults in tcp mode and says what to use instead', () => {
    const error = rejection([{ kind: 'hang' }, { kind: 'http-error', status: 503 }], 'tcp');
    expect(error.field).toBe('faults[1].kind');
    expect(error.pointer).toBe('/1/kind');
    expect(error.message).toMatch(
      /needs a proxy in mode 'http'.*use 'reset', 'hang' or 'blackhole'/,
    );
  });

  it('escapes JSON Pointer segments', () => {
    const error = rejection([{ kind: 'http-error', status: 503, headers: { 'a/b~': 'x\n' } }]);
    expect(error.pointer).toBe('/0/headers/a~1b~0');
  });
});

describe('planFaults', () => {
  const never: Random = {
    next() {
      throw new Error('random must not be consulted');
    },
  };

  it('forwards untouched with no faults', () => {
    expect(planFaults([], never, () => {})).toEqual({
      outcome: 'forward',
      httpError: undefined,
      latencyUpMs: 0,
      latencyDownMs: 0,
      throttleUp: undefined,
      throttleDown: undefined,
    });
  });

  it('adds latencies, keeps the slowest throttle, and lets the first ending fault win', () => {
    const applied: string[] = [];
    const plan = planFaults(
      validateProxyFaults(
        [
          { kind: 'latency', latencyMs: 10 },
          { kind: 'latency', latencyMs: 5, direction: 'both' },
          { kind: 'slow-body', bytesPerSecond: 500 },
          { kind: 'slow-body', bytesPerSecond: 100, direction: 'both' },
          { kind: 'down' },
          { kind: 'reset', direction: 'downstream' },
          { kind: 'hang' },
        ],
        'tcp',
      ),
      never,
      kind => applied.push(kind),
    );
    expect(plan).toMatchObject({
      outcome: 'reset-downstream',
      latencyUpMs: 15,
      latencyDownMs: 5,
      throttleUp: 100,
      throttleDown: 100,
    });
    expect(applied).toEqual(['latency', 'latency', 'slow-body', 'slow-body', 'reset']);
  });

  it('rolls only for probabilities strictly between 0 and 1, and jitter stays within bounds', () => {
    const faults = validateProxyFaults(
      [
        { kind: 'blackhole', probability: 0 },
        { kind: 'latency', latencyMs: 100, jitterMs: 50 },
        { kind: 'hang', probability: 0.5 },
      ],
      'tcp',
    );
    const random = seededRandom(3);
    let calls = 0;
    const counting: Random = {
      next: () => {
        calls += 1;
        return random.next();
      },
    };
    for (let i = 0; i < 100; i++) {
      const plan = planFaults(faults, counting, () => {});
      expect(plan.latencyUpMs).toBeGreaterThanOrEqual(100);
      expect(plan.latencyUpMs).toBeLessThan(150);
      expect(plan.outcome === 'hang' || plan.outcome === 'forward').toBe(true);
    }
    // One draw for the jitter and one for the hang's probability, per plan.
    expect(calls).toBe(200);
  });
});
