/**
 * Placing an order: the order, its lines and its `order.placed` event are written in ONE
 * transaction (the event into the outbox), so an order exists if and only if its event does. The
 * event is published afterwards by the relay; nothing here waits for a consumer.
 *
 * Idempotency-Key: the first request with a key creates the order and stores the key with a
 * fingerprint of the body; a later request with the same key and body gets the same order back
 * (201, `Idempotent-Replayed: true`) and no second event; the same key with another body is a 422.
 * The key's unique index makes this atomic: two racing requests insert once, the loser reads the
 * winner's order.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '@bulwark/core';
import type { Outbox, SqlDatabase, SqlTransaction } from '@bulwark/postgres';
import { ProblemError, ProblemTypes } from '@bulwark/http/fastify';
import { productPriceSql } from '../common/demo-data.js';
import { ORDER_PLACED, orderPlacedKey, type OrderPlaced } from './events.js';

export interface PlaceOrderInput {
  userId: number;
  lines: { productId: number; quantity: number }[];
}

export interface PlacedOrder {
  id: number;
  userId: number;
  /** ISO 8601, millisecond precision. */
  placedAt: string;
  status: string;
  totalCents: number;
  lines: { productId: number; quantity: number; unitPriceCents: number }[];
}

export interface PlaceResult {
  order: PlacedOrder;
  /** True when an earlier request with the same Idempotency-Key created it. */
  replayed: boolean;
}

export const MAX_LINES = 50;
/** Keeps the total well inside int4: 50 lines x 100 x 499.99. */
export const MAX_QUANTITY = 100;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

// Prices come from the demo price formula, the same one the catalog's rows were seeded with: the
// orders service does not read the catalog's tables (a real shop would take a quoted price).
const PRICED_LINES = `select ord::int as line_no,
    (l->>'productId')::int as product_id,
    (l->>'quantity')::int as quantity,
    ${productPriceSql(`(l->>'productId')::int8`)} as unit_price_cents
  from jsonb_array_elements($1::jsonb) with ordinality as x(l, ord)
  order by ord`;
const INSERT_ORDER = `insert into orders.orders
    (id, user_id, placed_at, status, total_cents, idempotency_key, request_hash)
  values (nextval('orders.placed_order_ids'), $1, $2::timestamptz, 'placed', $3, $4, $5)
  on conflict (idempotency_key) where idempotency_key is not null do nothing
  returning id`;
const INSERT_LINES = `insert into orders.order_lines
    (order_id, line_no, product_id, quantity, unit_price_cents)
  select $1, line_no, product_id, quantity, unit_price_cents
  from jsonb_to_recordset($2::jsonb)
    as x(line_no int, product_id int, quantity int, unit_price_cents int)`;
const BY_KEY = `select id, user_id, placed_at, status, total_cents, request_hash
  from orders.orders where idempotency_key = $1`;
const LINES_OF = `select product_id, quantity, unit_price_cents from orders.order_lines
  where order_id = $1 order by line_no`;

interface LineRow {
  line_no: number;
  product_id: number;
  quantity: number;
  unit_price_cents: number;
}

export interface PlaceOrderContext {
  db: SqlDatabase;
  outbox: Outbox;
  /** Where `order.placed` goes. */
  queue: string;
  clock: Clock;
}

export async function placeOrder(
  ctx: PlaceOrderContext,
  input: PlaceOrderInput,
  idempotencyKey: string | undefined,
): Promise<PlaceResult> {
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        userId: input.userId,
        lines: input.lines.map(l => [l.productId, l.quantity]),
      }),
    )
    .digest('base64url');
  // Millisecond precision: the table's check constraint and the pagination cursor need it.
  const placedAt = new Date(Math.floor(ctx.clock.wallNow())).toISOString();
  return ctx.db.transaction(async tx => {
    const { rows: lines } = await tx.query<LineRow>(PRICED_LINES, [JSON.stringify(input.lines)]);
    const totalCents = lines.reduce((sum, l) => sum + l.quantity * l.unit_price_cents, 0);
    const { rows } = await tx.query<{ id: number }>(INSERT_ORDER, [
      input.userId,
      placedAt,
      totalCents,
      idempotencyKey ?? null,
      idempotencyKey === undefined ? null : fingerprint,
    ]);
    const created = rows[0];
    if (created === undefined) {
      // Only a key conflict inserts nothing: the key was used before.
      return replay(tx, idempotencyKey as string, fingerprint);
    }
    await tx.query(INSERT_LINES, [created.id, JSON.stringify(lines)]);
    const order: PlacedOrder = {
      id: created.id,
      userId: input.userId,
      placedAt,
      status: 'placed',
      totalCents,
      lines: lines.map(l => ({
        productId: l.product_id,
        quantity: l.quantity,
        unitPriceCents: l.unit_price_cents,
      })),
    };
    const event: OrderPlaced = {
      orderId: order.id,
      userId: order.userId,
      placedAt,
      totalCents,
      lines: order.lines,
    };
    await ctx.outbox.enqueue(tx, {
      queue: ctx.queue,
      type: ORDER_PLACED,
      payload: event,
      idempotencyKey: orderPlacedKey(order.id),
    });
    return { order, replayed: false };
  });
}

async function replay(tx: SqlTransaction, key: string, fingerprint: string): Promise<PlaceResult> {
  const { rows } = await tx.query<{
    id: number;
    user_id: number;
    placed_at: Date;
    status: string;
    total_cents: number;
    request_hash: string;
  }>(BY_KEY, [key]);
  const row = rows[0];
  if (row === undefined) throw new Error(`orders: Idempotency-Key ${key} conflicted but is gone`);
  if (row.request_hash !== fingerprint) {
    throw new ProblemError({
      status: 422,
      type: 'urn:bulwark:problem:idempotency-key-reused',
      title: 'Idempotency Key Reused',
      detail:
        'This Idempotency-Key was used for a different order; send a new key for a new order.',
      code: 'IDEMPOTENCY_KEY_REUSED',
      retryable: false,
    });
  }
  const { rows: lines } = await tx.query<Omit<LineRow, 'line_no'>>(LINES_OF, [row.id]);
  return {
    replayed: true,
    order: {
      id: row.id,
      userId: row.user_id,
      placedAt: row.placed_at.toISOString(),
      status: row.status,
      totalCents: row.total_cents,
      lines: lines.map(l => ({
        productId: l.product_id,
        quantity: l.quantity,
        unitPriceCents: l.unit_price_cents,
      })),
    },
  };
}

/** The Idempotency-Key header, checked: 1-255 visible ASCII characters, or absent. */
export function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header : [header];
  const value = key[0];
  if (
    key.length !== 1 ||
    value === undefined ||
    value.length < 1 ||
    value.length > MAX_IDEMPOTENCY_KEY_LENGTH ||
    !/^[\x21-\x7e]+$/.test(value)
  ) {
    const message = `must be one value of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (a UUID works)`;
    throw new ProblemError({
      status: 400,
      type: ProblemTypes.validation,
      title: 'Validation Failed',
      detail: `The request is invalid: headers /idempotency-key ${message}.`,
      code: 'VALIDATION_FAILED',
      retryable: false,
      extensions: { errors: [{ field: '/idempotency-key', in: 'headers', message }] },
    });
  }
  return value;
}
