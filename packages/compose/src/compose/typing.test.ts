import { describe, expect, expectTypeOf, it } from 'vitest';
import { composition, part, type PartContext } from './index.js';

interface User {
  id: number;
  name: string;
}

describe('typing', () => {
  it('infers part types and types ctx.deps from earlier parts (builder)', async () => {
    const c = composition<{ id: number }>({ name: 'overview' })
      .part('user', {
        criticality: 'critical',
        load: async (input): Promise<User> => ({ id: input.id, name: 'Ada' }),
      })
      .part('orders', {
        criticality: 'optional',
        dependsOn: ['user'],
        load: (_input, ctx) => {
          expectTypeOf(ctx.deps.user).toEqualTypeOf<User>();
          return [ctx.deps.user.id * 10];
        },
      });
    const result = await c.run({ id: 4 });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expectTypeOf(result.data.user).toEqualTypeOf<User>();
      expectTypeOf(result.data.orders).toEqualTypeOf<number[] | undefined>();
      expect(result.data.orders).toEqual([40]);
    }
  });

  it('infers input and values from a parts object', async () => {
    const c = composition({
      name: 'overview',
      parts: {
        user: part({
          criticality: 'critical',
          load: (input: { id: number }): User => ({ id: input.id, name: 'Ada' }),
        }),
        orders: part({
          criticality: 'optional',
          dependsOn: ['user'],
          load: (_input: { id: number }, ctx: PartContext<{ user: User }>) => [ctx.deps.user.name],
        }),
      },
    });
    const result = await c.run({ id: 1 });
    if (result.ok) {
      expectTypeOf(result.data.user).toEqualTypeOf<User>();
      expectTypeOf(result.data.orders).toEqualTypeOf<string[] | undefined>();
    }
    expect(result.data.orders).toEqual(['Ada']);
  });

  it('rejects unknown dependencies and taken names at the type level', () => {
    const c = composition<number>({ name: 'x' }).part('a', {
      criticality: 'optional',
      load: () => 1,
    });
    expect(() =>
      // @ts-expect-error: "b" is not a part yet
      c.part('c', { criticality: 'optional', dependsOn: ['b'], load: () => 2 }),
    ).toThrow(/depends on "b", which is not a part yet/);
    // @ts-expect-error: "a" is taken
    expect(() => c.part('a', { criticality: 'optional', load: () => 2 })).toThrow(/already exists/);
  });
});
