import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUsersService } from './app.js';

const seed = { users: 20, products: 50, orders: 100, picksPerUser: 5, popular: 10 };

// PGlite boots a WASM engine; test files run in parallel and contend for the CPU.
const BOOT_TIMEOUT_MS = 60_000;
// PGlite runs on this thread: its queries count as event-loop delay, which would shed requests.
const quiet = { shedding: { maxEventLoopDelayMs: false as const } };

describe('users service', () => {
  let db: SqlDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await openDatabase();
    app = await createUsersService({ db, seed, bulwark: quiet });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  it('GET /users/:id answers the profile', async () => {
    const res = await app.inject({ url: '/users/7' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toEqual({
      id: 7,
      name: expect.stringMatching(/^\S+ \S+$/),
      email: expect.stringMatching(/^[a-z.]+7@example\.com$/),
      tier: expect.stringMatching(/^(standard|silver|gold|platinum)$/),
      memberSince: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('an unknown user is a 404 problem', async () => {
    const res = await app.inject({ url: '/users/21' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 404, code: 'USER_NOT_FOUND' });
  });

  it.each(['abc', '0', '-1', '1.5', '99999999999', '1e3x'])(
    'id %s is a 400 problem naming the field',
    async id => {
      const res = await app.inject({ url: `/users/${id}` });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ field: '/id', in: 'params' }],
      });
    },
  );

  it('is ready when the database answers', async () => {
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
  });

  it('seeds once: a restart with other sizes reuses the data', async () => {
    const again = await createUsersService({ db, seed: { ...seed, users: 500 }, bulwark: quiet });
    await again.close();
    const { rows } = await db.query<{ c: number }>('select count(*)::int as c from users.profiles');
    expect(rows[0]?.c).toBe(20);
  });
});
