/** The Fastify app every service starts from: the bulwark plugin with a database readiness check. */
import { InvalidOptionsError } from '@bulwark/core';
import type { SqlDatabase } from '@bulwark/postgres';
import { bulwark, type BulwarkOptions } from '@bulwark/http/fastify';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { resolveSeedSizes, type SeedSizes } from './seed-sizes.js';

/** Options shared by the four service factories. */
export interface ServiceOptions {
  /** The SQL handle; the service uses only its own schema, so services may share one handle. */
  db: SqlDatabase;
  /**
   * Demo data seeded on first start (idempotent: a restart reuses it). Missing sizes take the
   * defaults (1,000 users, 10,000 products, 50,000 orders, 20 picks per user, 100 popular);
   * `false` seeds nothing. Default: the full defaults.
   */
  seed?: Partial<SeedSizes> | false;
  /** Fastify's logger option. Default false. */
  logger?: FastifyServerOptions['logger'];
  /**
   * Options of the bulwark plugin. A critical `db` health check is added to `health.checks`.
   * Default: the plugin's defaults.
   */
  bulwark?: BulwarkOptions;
}

export interface ServiceApp {
  app: FastifyInstance;
  seed: SeedSizes | false;
}

/** Validates the shared options and builds the app with the plugin registered (routes go after). */
export async function createServiceApp(name: string, options: ServiceOptions): Promise<ServiceApp> {
  const where = `create${name[0]?.toUpperCase() ?? ''}${name.slice(1)}Service`;
  if (typeof options !== 'object' || options === null || typeof options.db?.query !== 'function') {
    throw new InvalidOptionsError(`${where}: db must be a SqlDatabase from openDatabase()`);
  }
  const seed = resolveSeedSizes(where, options.seed);
  const { db } = options;
  const app = Fastify({ logger: options.logger ?? false }) as unknown as FastifyInstance;
  const given = options.bulwark ?? {};
  await app.register(bulwark, {
    ...given,
    health: {
      ...given.health,
      checks: [
        {
          name: 'db',
          critical: true,
          check: async () => {
            await db.query('select 1');
          },
        },
        ...(given.health?.checks ?? []),
      ],
    },
  });
  return { app, seed };
}
