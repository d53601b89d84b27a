import { isInvalidOptionsError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';
import { composition, part } from './composition.js';
import { alternate, omit, staticValue } from './fallbacks.js';

const load = (): number => 1;

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    expect(isInvalidOptionsError(error)).toBe(true);
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('composition checks', () => {
  it('rejects a cycle, naming it and the fix', () => {
    const error = thrown(() =>
      composition({
        name: 'cyc',
        parts: {
          a: part({ criticality: 'optional', dependsOn: ['c'], load }),
          b: part({ criticality: 'optional', dependsOn: ['a'], load }),
          c: part({ criticality: 'optional', dependsOn: ['b'], load }),
          d: part({ criticality: 'optional', load }),
        },
      } as never),
    );
    expect(error.message).toMatch(/cycle \(a -> c -> b -> a\); remove one of these dependsOn/);
  });

  it('rejects an unknown dependency, listing the known parts', () => {
    const error = thrown(() =>
      composition({
        name: 'unk',
        parts: {
          user: part({ criticality: 'critical', load }),
          orders: part({ criticality: 'optional', dependsOn: ['usr'], load }),
        },
      } as never),
    );
    expect(error.message).toMatch(
      /part "orders" depends on "usr", which is not a part; known parts are user, orders/,
    );
  });

  it('orders parts so dependencies come first', () => {
    const c = composition({
      name: 'ord',
      parts: {
        orders: part({ criticality: 'optional', dependsOn: ['user'], load }),
        user: part({ criticality: 'critical', load }),
        recs: part({ criticality: 'sheddable', load }),
      },
    } as never);
    expect(c.partNames).toEqual(['user', 'recs', 'orders']);
  });

  it.each([
    [{ name: '' }, /name must be a public name/],
    [{ name: 'x', timeoutMs: 0 }, /timeoutMs must be a finite number > 0/],
    [{ name: 'x', minRemainingMs: -1 }, /minRemainingMs must be a finite number >= 0/],
    [{ name: 'x', timeoutMS: 5 }, /unknown option "timeoutMS"/],
    [{ name: 'x', shed: true }, /shed must be a function/],
    [{ name: 'x', clock: {} }, /clock must implement Clock/],
  ])('rejects bad options %j', (options, message) => {
    expect(thrown(() => composition(options as never)).message).toMatch(message);
  });

  it.each([
    [{ load }, /criticality must be "critical", "optional" or "sheddable"/],
    [{ criticality: 'optional' }, /load must be a function/],
    [{ criticality: 'optional', load, timeoutMs: -1 }, /timeoutMs must be a finite number > 0/],
    [{ criticality: 'optional', load, policies: {} }, /policies must be a core policy/],
    [{ criticality: 'optional', load, fallbacks: [() => 1] }, /fallbacks\[0\] is not a fallback/],
    [{ criticality: 'critical', load, fallbacks: [omit()] }, /a critical part cannot be omitted/],
    [{ criticality: 'optional', load, fallbacks: [omit(), staticValue(1)] }, /must be the last/],
    [{ criticality: 'optional', load, dependsOn: ['p'] }, /cannot depend on itself/],
    [{ criticality: 'optional', load, retries: 2 }, /unknown option "retries"/],
  ])('rejects bad part %#', (spec, message) => {
    expect(thrown(() => composition({ name: 'x' }).part('p', spec as never)).message).toMatch(
      message,
    );
  });

  it('rejects part names that are not public tokens', () => {
    expect(
      thrown(() =>
        composition({ name: 'x' }).part('users.internal:8080' as 'p', {
          criticality: 'optional',
          load,
        }),
      ).message,
    ).toMatch(/never use an internal hostname/);
    expect(thrown(() => alternate('', load)).message).toMatch(/name must be a public name/);
  });

  it('keeps compositions immutable: part() returns a new one', () => {
    const base = composition({ name: 'x' }).part('a', { criticality: 'optional', load });
    const more = base.part('b', { criticality: 'optional', dependsOn: ['a'], load });
    expect(base.partNames).toEqual(['a']);
    expect(more.partNames).toEqual(['a', 'b']);
  });
});
