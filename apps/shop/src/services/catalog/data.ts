/** The catalog schema: migrations and the deterministic demo products. */
import { migrate, type SqlDatabase } from '@bulwark/postgres';
import { pickSql, productPriceSql } from '../common/demo-data.js';
import { seedInfoMigration, seedOnce } from '../common/seed-once.js';
import type { SeedSizes } from '../common/seed-sizes.js';

export const SCHEMA = 'catalog';

export const migrations = [
  seedInfoMigration(SCHEMA),
  {
    id: '001-products',
    // Query paths: by id and by a list of ids (`id = any($1)`), both on the primary key.
    sql: `create table catalog.products (
            id int primary key,
            name text not null,
            price_cents int not null check (price_cents >= 0),
            category text not null
          )`,
  },
];

export const CATEGORIES = [
  'kitchen',
  'garden',
  'office',
  'outdoor',
  'toys',
  'books',
  'audio',
  'lighting',
  'bath',
  'tools',
];
const ADJECTIVES = [
  'Sturdy',
  'Compact',
  'Classic',
  'Deluxe',
  'Everyday',
  'Foldable',
  'Handmade',
  'Modern',
  'Portable',
  'Quiet',
  'Rugged',
  'Smart',
  'Solid',
  'Travel',
  'Vintage',
  'Wireless',
];
const NOUNS = [
  'Kettle',
  'Lamp',
  'Notebook',
  'Backpack',
  'Speaker',
  'Chair',
  'Shelf',
  'Mug',
  'Planter',
  'Blanket',
  'Toolbox',
  'Puzzle',
  'Towel',
  'Clock',
  'Headphones',
  'Tent',
  'Knife',
  'Desk',
  'Bottle',
  'Rug',
  'Kite',
  'Pan',
  'Stool',
  'Mirror',
  'Drill',
  'Cushion',
  'Basket',
];

export async function prepareCatalog(db: SqlDatabase, sizes: SeedSizes | false): Promise<void> {
  await migrate(db, { migrations, table: `${SCHEMA}.migrations` });
  if (sizes === false) return;
  await seedOnce(db, SCHEMA, sizes, async tx => {
    await tx.query(
      `insert into catalog.products (id, name, price_cents, category)
       select i,
              ${pickSql(ADJECTIVES, 'i * 5')} || ' ' || ${pickSql(NOUNS, 'i * 11 + i / 7')},
              ${productPriceSql('i')},
              ${pickSql(CATEGORIES, 'i * 3 + i / 10')}
       from generate_series(1::int8, $1::int8) as i`,
      [sizes.products],
    );
  });
}
