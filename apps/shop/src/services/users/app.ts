/** The users service: profiles by id. */
import type { FastifyInstance } from 'fastify';
import { createServiceApp, type ServiceOptions } from '../common/service-app.js';
import { notFound } from '../common/problems.js';
import { idParams, type IdParams } from '../common/schemas.js';
import { prepareUsers, type Tier } from './data.js';

export type UsersServiceOptions = ServiceOptions;

export interface UserProfile {
  id: number;
  name: string;
  email: string;
  tier: Tier;
  /** ISO 8601. */
  memberSince: string;
}

const profileSchema = {
  type: 'object',
  required: ['id', 'name', 'email', 'tier', 'memberSince'],
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    email: { type: 'string' },
    tier: { type: 'string' },
    memberSince: { type: 'string' },
  },
} as const;

/** Migrates (and on first start seeds) the `users` schema, then returns the app, not listening. */
export async function createUsersService(options: UsersServiceOptions): Promise<FastifyInstance> {
  const { app, seed } = await createServiceApp('users', options);
  const { db } = options;
  await prepareUsers(db, seed);

  app.get<{ Params: IdParams }>(
    '/users/:id',
    { schema: { params: idParams, response: { 200: profileSchema } } },
    async request => {
      const { rows } = await db.query<{
        id: number;
        name: string;
        email: string;
        tier: Tier;
        member_since: Date;
      }>('select id, name, email, tier, member_since from users.profiles where id = $1', [
        request.params.id,
      ]);
      const row = rows[0];
      if (row === undefined) throw notFound('User', request.params.id, 'USER_NOT_FOUND');
      const profile: UserProfile = {
        id: row.id,
        name: row.name,
        email: row.email,
        tier: row.tier,
        memberSince: row.member_since.toISOString(),
      };
      return profile;
    },
  );
  return app;
}
