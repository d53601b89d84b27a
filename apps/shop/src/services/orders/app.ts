/**
 * The orders service: a user's order history, newest first, with keyset pagination; and placing
 * an order (POST /orders), which records it with its `order.placed` event in one transaction.
 */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import { outbox } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { createServiceApp, type ServiceOptions } from '../common/service-app.js';
import { invalidField } from '../common/problems.js';
import { idSchema, limitSchema } from '../common/schemas.js';
import { cursorCodec, DEV_CURSOR_SECRET } from './cursor.js';
import { MESSAGING_SCHEMA, prepareOrders, type OrderStatus } from './data.js';
import { NOTIFICATIONS_QUEUE, type OrderEventsRelay } from './events.js';
import {
  idempotencyKeyOf,
  MAX_LINES,
  MAX_QUANTITY,
  placeOrder,
  type PlaceOrderInput,
} from './place.js';

export interface OrdersServiceOptions extends ServiceOptions {
  /**
   * Secret that signs pagination cursors (HMAC-SHA256). Default: env `ORDERS_CURSOR_SECRET`,
   * else a fixed development secret. Services behind one gateway must share it only if they
   * share cursors; changing it invalidates cursors in flight (clients start from page one).
   */
  cursorSecret?: string;
  /** Page size when the client sends no `limit`. Default 10. */
  defaultLimit?: number;
  /** Largest `limit` accepted; more is a 400. Default 50. */
  maxLimit?: number;
  /** Where `order.placed` events go. Default: queue `notifications`, no relay kick. */
  events?: OrderEventsOptions;
  /** Order times and outbox rows. Default: the system clock. */
  clock?: Clock;
}

export interface OrderEventsOptions {
  /** Queue of `order.placed`. Default `notifications`. */
  queue?: string;
  /**
   * The relay that publishes the outbox (`orderEventsRelay`); kicked after each commit so the
   * event leaves at once. The caller starts and stops it. Without one the events wait in the
   * outbox for whichever relay runs.
   */
  relay?: OrderEventsRelay;
}

export interface OrderLine {
  productId: number;
  quantity: number;
  unitPriceCents: number;
}

export interface Order {
  id: number;
  /** ISO 8601, millisecond precision. */
  placedAt: string;
  status: OrderStatus;
  totalCents: number;
  lines: OrderLine[];
}

export interface OrdersPage {
  items: Order[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

const pageSchema = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'placedAt', 'status', 'totalCents', 'lines'],
        properties: {
          id: { type: 'integer' },
          placedAt: { type: 'string' },
          status: { type: 'string' },
          totalCents: { type: 'integer' },
          lines: {
            type: 'array',
            items: {
              type: 'object',
              required: ['productId', 'quantity', 'unitPriceCents'],
              properties: {
                productId: { type: 'integer' },
                quantity: { type: 'integer' },
                unitPriceCents: { type: 'integer' },
              },
            },
          },
        },
      },
    },
    nextCursor: { type: ['string', 'null'] },
  },
} as const;

const placeOrderBody = {
  type: 'object',
  required: ['userId', 'lines'],
  additionalProperties: false,
  properties: {
    userId: idSchema,
    lines: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_LINES,
      items: {
        type: 'object',
        required: ['productId', 'quantity'],
        additionalProperties: false,
        properties: {
          productId: idSchema,
          quantity: { type: 'integer', minimum: 1, maximum: MAX_QUANTITY },
        },
      },
    },
  },
} as const;

const placedOrderSchema = {
  type: 'object',
  required: ['id', 'userId', 'placedAt', 'status', 'totalCents', 'lines'],
  properties: {
    ...pageSchema.properties.items.items.properties,
    userId: { type: 'integer' },
  },
} as const;

interface OrderRow {
  id: number;
  placed_at: Date;
  status: OrderStatus;
  total_cents: number;
}

interface LineRow {
  order_id: number;
  product_id: number;
  quantity: number;
  unit_price_cents: number;
}

const COLUMNS = 'id, placed_at, status, total_cents';
const FIRST_PAGE = `select ${COLUMNS} from orders.orders
  where user_id = $1 order by placed_at desc, id desc limit $2`;
// Row comparison matches the index order (placed_at desc, id desc): strictly after the cursor.
const NEXT_PAGE = `select ${COLUMNS} from orders.orders
  where user_id = $1 and (placed_at, id) < ($3::timestamptz, $4::int)
  order by placed_at desc, id desc limit $2`;
const LINES = `select order_id, product_id, quantity, unit_price_cents from orders.order_lines
  where order_id = any($1::int[]) order by order_id, line_no`;

function checkLimit(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 1_000) {
    throw new InvalidOptionsError(
      `createOrdersService: ${name} must be an integer in [1, 1000], got ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

/** Migrates (and on first start seeds) the `orders` schema, then returns the app, not listening. */
export async function createOrdersService(options: OrdersServiceOptions): Promise<FastifyInstance> {
  const { cursorSecret, defaultLimit, maxLimit, events, clock, ...rest } = options;
  const max = checkLimit('maxLimit', maxLimit, 50);
  const fallback = checkLimit('defaultLimit', defaultLimit, Math.min(10, max));
  if (fallback > max) {
    throw new InvalidOptionsError(
      `createOrdersService: defaultLimit (${fallback}) must not exceed maxLimit (${max})`,
    );
  }
  const secret = cursorSecret ?? process.env.ORDERS_CURSOR_SECRET ?? DEV_CURSOR_SECRET;
  if (typeof secret !== 'string' || secret.length < 16) {
    throw new InvalidOptionsError(
      'createOrdersService: cursorSecret must be a string of at least 16 characters',
    );
  }
  const queue = events?.queue ?? NOTIFICATIONS_QUEUE;
  if (typeof queue !== 'string' || queue === '') {
    throw new InvalidOptionsError('createOrdersService: events.queue must be a non-empty string');
  }
  const cursors = cursorCodec(secret);
  const { app, seed } = await createServiceApp('orders', rest);
  const { db } = options;
  await prepareOrders(db, seed);
  const relay = events?.relay;
  const clockUsed = clock ?? systemClock;
  const placing = {
    db,
    outbox: outbox({ schema: MESSAGING_SCHEMA, clock: clockUsed }),
    queue,
    clock: clockUsed,
  };

  app.post<{ Body: PlaceOrderInput }>(
    '/orders',
    { schema: { body: placeOrderBody, response: { 201: placedOrderSchema } } },
    async (request, reply) => {
      const key = idempotencyKeyOf(request.headers['idempotency-key']);
      const { order, replayed } = await placeOrder(placing, request.body, key);
      // After the commit: publish now rather than at the relay's next poll. Never awaited.
      if (!replayed) relay?.kick();
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(order);
    },
  );

  app.get<{ Params: { id: number }; Querystring: { limit: number; cursor?: string } }>(
    '/users/:id/orders',
    {
      schema: {
        params: { type: 'object', required: ['id'], properties: { id: idSchema } },
        querystring: {
          type: 'object',
          properties: {
            limit: limitSchema(fallback, max),
            cursor: { type: 'string', minLength: 1, maxLength: 512 },
          },
        },
        response: { 200: pageSchema },
      },
    },
    async request => {
      const userId = request.params.id;
      const { limit, cursor } = request.query;
      let rows: OrderRow[];
      // One row more than asked for says whether there is a next page.
      if (cursor === undefined) {
        ({ rows } = await db.query<OrderRow>(FIRST_PAGE, [userId, limit + 1]));
      } else {
        const position = cursors.decode(cursor);
        if (position === undefined) {
          throw invalidField(
            'cursor',
            'querystring',
            'is not a cursor this service issued',
            'INVALID_CURSOR',
          );
        }
        if (position.userId !== userId) {
          throw invalidField('cursor', 'querystring', 'belongs to another user', 'INVALID_CURSOR');
        }
        ({ rows } = await db.query<OrderRow>(NEXT_PAGE, [
          userId,
          limit + 1,
          new Date(position.placedAtMs).toISOString(),
          position.orderId,
        ]));
      }
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      const lines = new Map<number, OrderLine[]>();
      if (page.length > 0) {
        const { rows: lineRows } = await db.query<LineRow>(LINES, [page.map(o => o.id)]);
        for (const line of lineRows) {
          let list = lines.get(line.order_id);
          if (list === undefined) lines.set(line.order_id, (list = []));
          list.push({
            productId: line.product_id,
            quantity: line.quantity,
            unitPriceCents: line.unit_price_cents,
          });
        }
      }
      const last = page[page.length - 1];
      const result: OrdersPage = {
        items: page.map(o => ({
          id: o.id,
          placedAt: o.placed_at.toISOString(),
          status: o.status,
          totalCents: o.total_cents,
          lines: lines.get(o.id) ?? [],
        })),
        nextCursor:
          more && last !== undefined
            ? cursors.encode({ userId, placedAtMs: last.placed_at.getTime(), orderId: last.id })
            : null,
      };
      return result;
    },
  );
  return app;
}
