/** The users schema: migrations and the deterministic demo profiles. */
import { migrate, type SqlDatabase } from '@bulwark/postgres';
import { pickSql } from '../common/demo-data.js';
import { seedInfoMigration, seedOnce } from '../common/seed-once.js';
import type { SeedSizes } from '../common/seed-sizes.js';

export const SCHEMA = 'users';

export const TIERS = ['standard', 'silver', 'gold', 'platinum'] as const;
export type Tier = (typeof TIERS)[number];

export const migrations = [
  seedInfoMigration(SCHEMA),
  {
    id: '001-profiles',
    // Query path: by id (primary key). Email is unique (a sign-in would look it up).
    sql: `create table users.profiles (
            id int primary key,
            name text not null,
            email text not null,
            tier text not null check (tier in (${TIERS.map(t => `'${t}'`).join(', ')})),
            member_since timestamptz not null
          );
          create unique index profiles_email on users.profiles (email);`,
  },
];

const FIRST = [
  'Ada',
  'Alan',
  'Grace',
  'Linus',
  'Barbara',
  'Edsger',
  'Margaret',
  'Dennis',
  'Frances',
  'Ken',
  'Radia',
  'Tim',
  'Hedy',
  'Donald',
  'Karen',
  'John',
  'Sophie',
  'Leslie',
  'Joan',
  'Niklaus',
];
const LAST = [
  'Lovelace',
  'Turing',
  'Hopper',
  'Torvalds',
  'Liskov',
  'Dijkstra',
  'Hamilton',
  'Ritchie',
  'Allen',
  'Thompson',
  'Perlman',
  'Berners-Lee',
  'Lamarr',
  'Knuth',
  'Jones',
  'Backus',
  'Wilson',
  'Lamport',
  'Clarke',
  'Wirth',
  'Goldberg',
  'Kay',
  'Hoare',
];

export async function prepareUsers(db: SqlDatabase, sizes: SeedSizes | false): Promise<void> {
  await migrate(db, { migrations, table: `${SCHEMA}.migrations` });
  if (sizes === false) return;
  await seedOnce(db, SCHEMA, sizes, async tx => {
    const first = pickSql(FIRST, 'i * 7');
    const last = pickSql(LAST, 'i * 13 + i / 20');
    await tx.query(
      `insert into users.profiles (id, name, email, tier, member_since)
       select i,
              ${first} || ' ' || ${last},
              lower(replace(${first} || '.' || ${last}, '-', '')) || i || '@example.com',
              case when (i * 37) % 100 < 60 then 'standard'
                   when (i * 37) % 100 < 88 then 'silver'
                   when (i * 37) % 100 < 97 then 'gold'
                   else 'platinum' end,
              timestamptz '2016-01-01T00:00:00Z'
                + ((i * 7919) % 3000) * interval '1 day'
                + ((i * 104729) % 86400) * interval '1 second'
       from generate_series(1::int8, $1::int8) as i`,
      [sizes.users],
    );
  });
}
