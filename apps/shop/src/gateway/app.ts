/**
 * The shop's gateway: the overview composed from four services, and order history passed
 * through with its cursor. Responses are compressed; every error is problem+json.
 */
import compress from '@fastify/compress';
import { tieredCache, type CacheStore } from '@bulwark/compose/cache';
import { bodyJson, prefersStrict, toHttpResponse } from '@bulwark/compose';
import { isHttpDependencyError } from '@bulwark/http';
import { bulwark, ProblemError } from '@bulwark/http/fastify';
import { redisCacheStore } from '@bulwark/redis';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Recommendation } from '../services/recommendations/app.js';
import type { OrdersPage } from '../services/orders/app.js';
import { notFound } from '../services/common/problems.js';
import { idSchema } from '../services/common/schemas.js';
import { intOption, resolveUpstreamUrls, type GatewayOptions } from './options.js';
import { loadPopular, overviewComposition } from './overview.js';
import { closeUpstreams, createUpstreams } from './upstreams.js';

export type { GatewayOptions, GatewayCacheOptions } from './options.js';

const idParams = { type: 'object', required: ['id'], properties: { id: idSchema } } as const;

/** Builds the gateway (not listening). Closing it closes the upstream pools and the Redis L2 it opened. */
export async function createGateway(options: GatewayOptions = {}): Promise<FastifyInstance> {
  const env = options.env ?? process.env;
  const urls = resolveUpstreamUrls(options.upstreams, env);
  const budgetMs = intOption('overviewBudgetMs', options.overviewBudgetMs, 1_000, 50, 60_000);
  const recentOrders = intOption('recentOrders', options.recentOrders, 5, 1, 50);
  const recommendations = intOption('recommendations', options.recommendations, 8, 1, 50);
  const maxOrdersLimit = intOption('maxOrdersLimit', options.maxOrdersLimit, 50, 1, 1_000);
  const c = options.cache ?? {};
  const ownL2 =
    c.l2 === undefined && env.REDIS_URL !== undefined && env.REDIS_URL !== ''
      ? redisCacheStore({ redis: env.REDIS_URL, keyPrefix: 'bulwark:shop:' })
      : undefined;
  const l2: CacheStore | undefined = c.l2 === false ? undefined : (c.l2 ?? ownL2);
  const clock = c.clock === undefined ? {} : { clock: c.clock };
  const ordersCache = tieredCache<string>({
    name: 'orders',
    ttlMs: c.ordersTtlMs ?? 1_000,
    staleIfErrorMs: c.ordersStaleIfErrorMs ?? 600_000,
    l1: { maxEntries: 10_000 },
    ...(l2 === undefined ? {} : { l2 }),
    ...clock,
  });
  const popularCache = tieredCache<Recommendation[]>({
    name: 'popular',
    ttlMs: c.popularTtlMs ?? 60_000,
    staleWhileRevalidateMs: c.popularStaleMs ?? 86_400_000,
    staleIfErrorMs: c.popularStaleMs ?? 86_400_000,
    l1: { maxEntries: 1 },
    ...(l2 === undefined ? {} : { l2 }),
    ...clock,
  });
  const upstreams = createUpstreams(urls, {
    ...(options.policies === undefined ? {} : { policies: options.policies }),
    ...(options.attemptTimeoutMs === undefined
      ? {}
      : { attemptTimeoutMs: options.attemptTimeoutMs }),
  });
  const overview = overviewComposition({
    upstreams,
    ordersCache,
    popularCache,
    budgetMs,
    recentOrders,
    recommendations,
  });

  const app = Fastify({ logger: options.logger ?? false }) as unknown as FastifyInstance;
  app.addHook('onClose', async () => {
    await closeUpstreams(upstreams);
    await ownL2?.close();
  });
  await app.register(bulwark, options.bulwark ?? {});
  await app.register(compress, { threshold: options.compressThresholdBytes ?? 1_024 });

  // Popular products are the recommendations fallback: fetch them once before serving, so they
  // are there even if the recommendations service goes down later. Best effort.
  app.addHook('onReady', async () => {
    try {
      await loadPopular({ upstreams, popularCache }, AbortSignal.timeout(1_000));
    } catch (error) {
      app.log.warn({ err: error }, 'popular products not loaded yet; the fallback will retry');
    }
  });

  app.get<{ Params: { id: number } }>(
    '/api/users/:id/overview',
    { schema: { params: idParams } },
    // `.then`, not async/await: with the plugin's async hooks on, an `await` is a promise more.
    (request, reply) =>
      overview
        .run(
          { userId: request.params.id },
          {
            deadline: request.deadline,
            strict: prefersStrict(request.headers.prefer),
            requestId: request.id,
          },
        )
        .then(result => {
          if (!result.ok) {
            // The profile is critical: an unknown user is the client's mistake, not an outage.
            const error = result.parts.user.error;
            if (isHttpDependencyError(error) && error.status === 404) {
              throw notFound('User', request.params.id, 'USER_NOT_FOUND');
            }
          }
          const response = toHttpResponse(result, {
            instance: `/api/users/${request.params.id}/overview`,
          });
          // As text: the orders part's value is JSON text already (overview.ts).
          return reply.code(response.statusCode).headers(response.headers).send(bodyJson(response));
        }),
  );

  app.get<{ Params: { id: number }; Querystring: { limit?: number; cursor?: string } }>(
    '/api/users/:id/orders',
    {
      schema: {
        params: idParams,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: maxOrdersLimit },
            cursor: { type: 'string', minLength: 1, maxLength: 512 },
          },
        },
      },
    },
    async request => {
      const { limit, cursor } = request.query;
      const res = await upstreams.orders.request<OrdersPage | UpstreamProblem>({
        path: `/users/${request.params.id}/orders`,
        query: { limit, cursor },
        // The orders service's 400 (a tampered cursor) is the client's: answer it as ours.
        acceptStatus: status => status === 200 || status === 400,
      });
      if (res.status === 400) throw badRequestFrom(res.body as UpstreamProblem);
      return res.body;
    },
  );
  return app;
}

interface UpstreamProblem {
  code?: unknown;
  detail?: unknown;
  errors?: unknown;
}

function badRequestFrom(problem: UpstreamProblem): ProblemError {
  return new ProblemError({
    status: 400,
    code: typeof problem.code === 'string' ? problem.code : 'BAD_REQUEST',
    detail: typeof problem.detail === 'string' ? problem.detail : 'The request is invalid.',
    retryable: false,
    ...(Array.isArray(problem.errors) ? { extensions: { errors: problem.errors } } : {}),
  });
}
