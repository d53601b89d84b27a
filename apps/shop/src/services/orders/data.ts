/** The orders schema: migrations and the deterministic demo order history. */
import { messagingMigrations, migrate, type SqlDatabase } from '@bulwark/postgres';
import { pickSql, productPriceSql } from '../common/demo-data.js';
import { seedInfoMigration, seedOnce } from '../common/seed-once.js';
import type { SeedSizes } from '../common/seed-sizes.js';

export const SCHEMA = 'orders';

export const STATUSES = ['placed', 'paid', 'shipped', 'delivered', 'cancelled'] as const;
export type OrderStatus = (typeof STATUSES)[number];

export const migrations = [
  seedInfoMigration(SCHEMA),
  {
    id: '001-orders',
    // Query paths: a user's orders newest first, by keyset (user_id, placed_at, id) -> the
    // composite index; their lines by order id -> the lines' primary key. placed_at is kept at
    // millisecond precision so the cursor (epoch ms) addresses rows exactly.
    sql: `create table orders.orders (
            id int primary key,
            user_id int not null,
            placed_at timestamptz not null
              check (placed_at = date_trunc('milliseconds', placed_at)),
            status text not null check (status in (${STATUSES.map(s => `'${s}'`).join(', ')})),
            total_cents int not null check (total_cents >= 0)
          );
          create index orders_by_user_recent on orders.orders (user_id, placed_at desc, id desc);
          create table orders.order_lines (
            order_id int not null references orders.orders (id),
            line_no int not null,
            product_id int not null,
            quantity int not null check (quantity > 0),
            unit_price_cents int not null check (unit_price_cents >= 0),
            primary key (order_id, line_no)
          );`,
  },
  {
    id: '002-placed-orders',
    // Orders placed through POST /orders. Their ids come from a sequence that starts above the
    // largest seed (10,000,000 orders), so seeding after it (or never) cannot collide. An
    // Idempotency-Key is unique across the service (there is no signed-in principal to scope it
    // by); request_hash is the fingerprint of the first request, to refuse a reused key whose
    // body differs.
    sql: `create sequence orders.placed_order_ids start with 10000001;
          alter table orders.orders add column idempotency_key text, add column request_hash text;
          create unique index orders_by_idempotency_key on orders.orders (idempotency_key)
            where idempotency_key is not null;`,
  },
];

/** The schema of the outbox that `order.placed` is written to, in the order's transaction. */
export const MESSAGING_SCHEMA = 'bulwark_messaging';

/**
 * The demo lines of orders 1..$1 over products 1..$2: 1-5 lines per order, products scattered
 * by prime multipliers, unit prices equal to the catalog's.
 */
const LINES_SQL = `
  select o as order_id, l as line_no,
         1 + ((o * 7919 + l * 104729) % $2::int8) as product_id,
         1 + ((o + l) % 3) as quantity
  from generate_series(1::int8, $1::int8) as o,
       generate_series(1::int8, 1 + (o * 13) % 5) as l`;

export async function prepareOrders(db: SqlDatabase, sizes: SeedSizes | false): Promise<void> {
  await migrate(db, { migrations, table: `${SCHEMA}.migrations` });
  // The outbox table; the queue backend runs the same migrations (recorded once, by checksum).
  await migrate(db, {
    migrations: messagingMigrations(MESSAGING_SCHEMA),
    table: `${MESSAGING_SCHEMA}.migrations`,
  });
  if (sizes === false) return;
  await seedOnce(db, SCHEMA, sizes, async tx => {
    // About ten minutes apart, with jitter so neighbouring ids interleave in time and some
    // orders of a user share a timestamp (the keyset's id tie-break matters).
    await tx.query(
      `insert into orders.orders (id, user_id, placed_at, status, total_cents)
       select order_id,
              1 + ((order_id * 7907 + (order_id * order_id) % 1009) % $3::int8),
              timestamptz '2023-01-01T00:00:00Z'
                + (order_id * 10 + (order_id * 7919) % 600) * interval '1 minute',
              ${pickSql(['delivered', 'delivered', 'delivered', 'shipped', 'paid', 'placed', 'cancelled'], 'order_id * 17')},
              sum(quantity * ${productPriceSql('product_id')})
       from (${LINES_SQL}) as lines
       group by order_id`,
      [sizes.orders, sizes.products, sizes.users],
    );
    await tx.query(
      `insert into orders.order_lines (order_id, line_no, product_id, quantity, unit_price_cents)
       select order_id, line_no, product_id, quantity, ${productPriceSql('product_id')}
       from (${LINES_SQL}) as lines`,
      [sizes.orders, sizes.products],
    );
  });
}
