/** The recommendations schema: per-user picks and popular products, deterministic demo data. */
import { migrate, type SqlDatabase } from '@bulwark/postgres';
import { seedInfoMigration, seedOnce } from '../common/seed-once.js';
import type { SeedSizes } from '../common/seed-sizes.js';

export const SCHEMA = 'recommendations';

export const migrations = [
  seedInfoMigration(SCHEMA),
  {
    id: '001-picks',
    // Query paths: a user's best picks (user_id, score desc) -> index; popular products by
    // rank -> primary key.
    sql: `create table recommendations.user_picks (
            user_id int not null,
            product_id int not null,
            score double precision not null,
            primary key (user_id, product_id)
          );
          create index user_picks_best on recommendations.user_picks
            (user_id, score desc, product_id);
          create table recommendations.popular (
            rank int primary key,
            product_id int not null unique,
            score double precision not null
          );`,
  },
];

export async function prepareRecommendations(
  db: SqlDatabase,
  sizes: SeedSizes | false,
): Promise<void> {
  await migrate(db, { migrations, table: `${SCHEMA}.migrations` });
  if (sizes === false) return;
  await seedOnce(db, SCHEMA, sizes, async tx => {
    // Scores fall with k, with a little per-user variation; a product picked twice for a user
    // (possible with few products) keeps its first score.
    await tx.query(
      `insert into recommendations.user_picks (user_id, product_id, score)
       select u, 1 + ((u * 7919 + k * 104729) % $2::int8),
              round(1.0 / (k + ((u * k) % 7) / 10.0), 4)::float8
       from generate_series(1::int8, $1::int8) as u,
            generate_series(1::int8, $3::int8) as k
       on conflict do nothing`,
      [sizes.users, sizes.products, sizes.picksPerUser],
    );
    await tx.query(
      `insert into recommendations.popular (rank, product_id, score)
       select k, 1 + ((k * 7919) % $1::int8), (($2::int8 - k + 1) * 97)::float8
       from generate_series(1::int8, least($2::int8, $1::int8)) as k
       on conflict do nothing`,
      [sizes.products, sizes.popular],
    );
  });
}
