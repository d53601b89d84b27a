/** The recommendations service: per-user picks, and popular products (the gateway's fallback). */
import type { FastifyInstance } from 'fastify';
import { createServiceApp, type ServiceOptions } from '../common/service-app.js';
import { idSchema, limitSchema } from '../common/schemas.js';
import { prepareRecommendations } from './data.js';

export type RecommendationsServiceOptions = ServiceOptions;

export interface Recommendation {
  productId: number;
  /** Higher is better; comparable within one list only. */
  score: number;
}

export interface RecommendationList {
  items: Recommendation[];
}

const listSchema = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['productId', 'score'],
        properties: { productId: { type: 'integer' }, score: { type: 'number' } },
      },
    },
  },
} as const;

const limitQuery = {
  type: 'object',
  properties: { limit: limitSchema(10, 50) },
} as const;

/**
 * Migrates (and on first start seeds) the `recommendations` schema, then returns the app, not
 * listening. A user without picks (unknown here) gets an empty list, not a 404: this service does
 * not own users, and the gateway shows popular products instead.
 */
export async function createRecommendationsService(
  options: RecommendationsServiceOptions,
): Promise<FastifyInstance> {
  const { app, seed } = await createServiceApp('recommendations', options);
  const { db } = options;
  await prepareRecommendations(db, seed);

  app.get<{ Params: { id: number }; Querystring: { limit: number } }>(
    '/users/:id/recommendations',
    {
      schema: {
        params: { type: 'object', required: ['id'], properties: { id: idSchema } },
        querystring: limitQuery,
        response: { 200: listSchema },
      },
    },
    async request => {
      const { rows } = await db.query<Recommendation>(
        `select product_id as "productId", score from recommendations.user_picks
         where user_id = $1 order by score desc, product_id limit $2`,
        [request.params.id, request.query.limit],
      );
      const list: RecommendationList = { items: rows };
      return list;
    },
  );

  app.get<{ Querystring: { limit: number } }>(
    '/popular',
    { schema: { querystring: limitQuery, response: { 200: listSchema } } },
    async request => {
      const { rows } = await db.query<Recommendation>(
        `select product_id as "productId", score from recommendations.popular
         order by rank limit $1`,
        [request.query.limit],
      );
      const list: RecommendationList = { items: rows };
      return list;
    },
  );
  return app;
}
