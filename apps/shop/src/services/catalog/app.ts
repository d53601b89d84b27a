/** The catalog service: a product by id, and many products in one call (the gateway's batch). */
import { InvalidOptionsError } from '@bulwark/core';
import type { FastifyInstance } from 'fastify';
import { createServiceApp, type ServiceOptions } from '../common/service-app.js';
import { invalidField, notFound } from '../common/problems.js';
import { MAX_ID, idParams, type IdParams } from '../common/schemas.js';
import { prepareCatalog } from './data.js';

export interface CatalogServiceOptions extends ServiceOptions {
  /** Most ids in one `GET /products?ids=` call. Default 100. */
  maxBatchIds?: number;
}

export interface Product {
  id: number;
  name: string;
  priceCents: number;
  category: string;
}

export interface ProductBatch {
  /** Found products, in the order of the ids asked for (duplicates once). */
  items: Product[];
  /** Ids asked for that do not exist. */
  missing: number[];
}

const productSchema = {
  type: 'object',
  required: ['id', 'name', 'priceCents', 'category'],
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    priceCents: { type: 'integer' },
    category: { type: 'string' },
  },
} as const;

const batchSchema = {
  type: 'object',
  required: ['items', 'missing'],
  properties: {
    items: { type: 'array', items: productSchema },
    missing: { type: 'array', items: { type: 'integer' } },
  },
} as const;

interface ProductRow {
  id: number;
  name: string;
  price_cents: number;
  category: string;
}

const toProduct = (row: ProductRow): Product => ({
  id: row.id,
  name: row.name,
  priceCents: row.price_cents,
  category: row.category,
});

/** Parses `1,2,3`: positive int4 ids, at most `max`, duplicates dropped (first one kept). */
export function parseIds(raw: string, max: number): number[] {
  const parts = raw.split(',');
  if (parts.length > max) {
    throw invalidField('ids', 'querystring', `must list at most ${max} ids, got ${parts.length}`);
  }
  const ids = new Set<number>();
  for (const part of parts) {
    const id = /^[0-9]{1,10}$/.test(part) ? Number(part) : NaN;
    if (!(id >= 1 && id <= MAX_ID)) {
      throw invalidField(
        'ids',
        'querystring',
        `must be comma-separated positive integer ids, got ${JSON.stringify(part.slice(0, 20))}`,
      );
    }
    ids.add(id);
  }
  return [...ids];
}

/** Migrates (and on first start seeds) the `catalog` schema, then returns the app, not listening. */
export async function createCatalogService(
  options: CatalogServiceOptions,
): Promise<FastifyInstance> {
  const { maxBatchIds = 100, ...rest } = options;
  if (!Number.isInteger(maxBatchIds) || maxBatchIds < 1) {
    throw new InvalidOptionsError(
      `createCatalogService: maxBatchIds must be an integer >= 1, got ${String(maxBatchIds)}`,
    );
  }
  const { app, seed } = await createServiceApp('catalog', rest);
  const { db } = options;
  await prepareCatalog(db, seed);

  app.get<{ Params: IdParams }>(
    '/products/:id',
    { schema: { params: idParams, response: { 200: productSchema } } },
    async request => {
      const { rows } = await db.query<ProductRow>(
        'select id, name, price_cents, category from catalog.products where id = $1',
        [request.params.id],
      );
      const row = rows[0];
      if (row === undefined) throw notFound('Product', request.params.id, 'PRODUCT_NOT_FOUND');
      return toProduct(row);
    },
  );

  app.get<{ Querystring: { ids: string } }>(
    '/products',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['ids'],
          properties: { ids: { type: 'string', minLength: 1 } },
        },
        response: { 200: batchSchema },
      },
    },
    async request => {
      const ids = parseIds(request.query.ids, maxBatchIds);
      const { rows } = await db.query<ProductRow>(
        'select id, name, price_cents, category from catalog.products where id = any($1::int[])',
        [ids],
      );
      const byId = new Map(rows.map(row => [row.id, row]));
      const batch: ProductBatch = { items: [], missing: [] };
      for (const id of ids) {
        const row = byId.get(id);
        if (row === undefined) batch.missing.push(id);
        else batch.items.push(toProduct(row));
      }
      return batch;
    },
  );
  return app;
}
