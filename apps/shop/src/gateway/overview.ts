/**
 * `GET /api/users/:id/overview` as a composition of three public parts:
 * - `user` (critical): the profile; without it the answer is 503/504 (404 for an unknown user);
 * - `orders` (optional): recent orders with their products, looked up in ONE batched catalog
 *   call; through a tiered cache, so a failing orders or catalog service serves the last value
 *   (stale) instead of nothing;
 * - `recommendations` (optional): the user's picks; when they fail, popular products (kept in a
 *   long-lived cache, so they survive the recommendations service being down).
 */
import type { Deadline, Scope } from '@bulwark/core';
import { alternate, composition, rawJson, staleFrom, type RawJson } from '@bulwark/compose';
import { batchLoader } from '@bulwark/compose/batch';
import type { TieredCache } from '@bulwark/compose/cache';
import type { Product, ProductBatch } from '../services/catalog/app.js';
import type { Order, OrderLine, OrdersPage } from '../services/orders/app.js';
import type { RecommendationList, Recommendation } from '../services/recommendations/app.js';
import type { UserProfile } from '../services/users/app.js';
import type { Upstreams } from './upstreams.js';

export interface OverviewInput {
  userId: number;
}

export interface OverviewLine extends OrderLine {
  /** The catalog's product; null when the catalog does not know it. */
  product: Product | null;
}

export interface OverviewOrder extends Omit<Order, 'lines'> {
  lines: OverviewLine[];
}

export interface OverviewOptions {
  upstreams: Upstreams;
  /** A user's recent orders as JSON text (an `OverviewOrder[]`; see the `orders` part). */
  ordersCache: TieredCache<string>;
  popularCache: TieredCache<Recommendation[]>;
  /** Route maximum for the whole overview, in ms. */
  budgetMs: number;
  /** Orders shown. */
  recentOrders: number;
  /** Recommendations shown. */
  recommendations: number;
}

/** Most product ids in one catalog call (the catalog's own limit). */
const CATALOG_BATCH = 100;

async function recentOrders(
  o: OverviewOptions,
  userId: number,
  deadline: Deadline,
  cancel: AbortSignal | Scope,
): Promise<OverviewOrder[]> {
  const { orders, catalog } = o.upstreams;
  const page = await orders.getJson<OrdersPage>(`/users/${userId}/orders`, {
    query: { limit: o.recentOrders },
    deadline,
    signal: cancel,
  });
  // One loader per load: every line's product id goes out in one /products?ids= call
  // (⌈n/100⌉ for more), duplicates once.
  const products = batchLoader<number, Product | null>({
    name: 'products',
    maxBatchSize: CATALOG_BATCH,
    // `.then` rather than async/await here and in the parts below: with async hooks on (the
    // bulwark plugin's request context), each `await` costs a promise more, per overview.
    load: (ids, batch) =>
      catalog
        .getJson<ProductBatch>('/products', {
          query: { ids: ids.join(',') },
          deadline,
          signal: batch.cancel,
        })
        .then(found => {
          // null marks a product the catalog does not know ("known absent"), not a failure.
          const result = new Map<number, Product | null>(found.missing.map(id => [id, null]));
          for (const product of found.items) result.set(product.id, product);
          return result;
        }),
  });
  // Plain loops, no flatMap, Set or second Map: this runs once per overview (12 lines in the
  // benchmark), and in a --cpu-prof run the flatMap-and-Set line alone took as many samples as
  // building the lines did then.
  // `slot`: product id -> its index in `ids`, which is also its index in what loadMany returns.
  const slot = new Map<number, number>();
  const ids: number[] = [];
  for (const order of page.items) {
    for (const line of order.lines) {
      if (!slot.has(line.productId)) slot.set(line.productId, ids.push(line.productId) - 1);
    }
  }
  const loaded = await products.loadMany(ids, { deadline, signal: cancel });
  for (const value of loaded) {
    // A catalog failure fails the part, which then serves the cached overview (stale).
    if (value instanceof Error) throw value;
  }
  // The parsed page is this call's own (fresh from the orders service's JSON), so each line gets
  // its product in place: the lines keep their order of properties with `product` last, as
  // `{ ...line, product }` would write them, without a new object per line and per order.
  for (const order of page.items) {
    for (const line of order.lines as OverviewLine[]) {
      line.product = (loaded[slot.get(line.productId)!] as Product | null | undefined) ?? null;
    }
  }
  return page.items as OverviewOrder[];
}

export async function loadPopular(
  o: Pick<OverviewOptions, 'upstreams' | 'popularCache'>,
  signal: AbortSignal | Scope,
  deadline?: Deadline,
): Promise<Recommendation[]> {
  const result = await o.popularCache.fetch(
    'popular',
    async ({ cancel }) =>
      (
        await o.upstreams.recommendations.getJson<RecommendationList>('/popular', {
          query: { limit: 50 },
          signal: cancel,
          ...(deadline === undefined ? {} : { deadline }),
        })
      ).items,
    { signal },
  );
  return result.value;
}

export function overviewComposition(o: OverviewOptions) {
  const { users, recommendations } = o.upstreams;
  return composition<OverviewInput>({ name: 'overview', timeoutMs: o.budgetMs })
    .part('user', {
      criticality: 'critical',
      timeoutMs: Math.round(o.budgetMs * 0.5),
      load: ({ userId }, ctx) =>
        // The part's deadline carries its cancellation too (it aborts when the run is decided),
        // so no `signal`: reading ctx.signal would create an AbortController per request.
        users.getJson<UserProfile>(`/users/${userId}`, { deadline: ctx.deadline }),
    })
    .part('orders', {
      criticality: 'optional',
      timeoutMs: Math.round(o.budgetMs * 0.7),
      // The cache keeps the orders as JSON text and the part's value is that text (RawJson): a
      // hit is written into the response as it is, and an entry is one string rather than an
      // object graph. The garbage collector still promotes each new entry (in the benchmark the
      // texts are most of what survives a scavenge), but as one block with no pointers to trace,
      // not object by object. The text is written once per load, where the response would
      // otherwise write the objects.
      load: ({ userId }, ctx) =>
        o.ordersCache
          .fetch(
            `user:${userId}`,
            // `cancel`, not `signal`, all the way down: each AbortSignal read here would make an
            // AbortController, and aborting it dispatch an event, on every request.
            ({ cancel }) =>
              recentOrders(o, userId, ctx.deadline, cancel).then(orders => JSON.stringify(orders)),
            { signal: ctx.cancel },
          )
          .then(result => {
            ctx.provenance(result.provenance);
            return ordersJson(result.value);
          }),
      fallbacks: [
        staleFrom(({ userId }, ctx) =>
          o.ordersCache
            .getStale(`user:${userId}`, ctx)
            .then(cached => cached && { ...cached, value: ordersJson(cached.value) }),
        ),
      ],
    })
    .part('recommendations', {
      criticality: 'optional',
      timeoutMs: Math.round(o.budgetMs * 0.35),
      load: ({ userId }, ctx) =>
        recommendations
          .getJson<RecommendationList>(`/users/${userId}/recommendations`, {
            query: { limit: o.recommendations },
            deadline: ctx.deadline,
          })
          .then(list => list.items),
      fallbacks: [
        alternate('popular-items', async (_input, ctx) =>
          (await loadPopular(o, ctx.cancel, ctx.deadline)).slice(0, o.recommendations),
        ),
      ],
    });
}

/**
 * The cached orders as a part value. An entry an earlier version left in Redis holds the array
 * itself, not its text: written out here, so it is served all the same until it expires.
 */
function ordersJson(value: string | OverviewOrder[]): RawJson<OverviewOrder[]> {
  return rawJson(typeof value === 'string' ? value : JSON.stringify(value));
}

export type OverviewComposition = ReturnType<typeof overviewComposition>;
