/**
 * Runs one service as its own process: `PORT`, `HOST` (default 127.0.0.1), `DATABASE_URL`
 * (else PGlite in `DATA_DIR`, default `.data/shop/<name>`), `LOG_LEVEL` (default info).
 * SIGTERM / SIGINT start the plugin's graceful shutdown; the database closes after the server.
 */
import { openDatabase, type SqlDatabase } from '@bulwark/postgres';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { defaultDataDir, optional, portFrom } from './env.js';

export interface RunServiceOptions {
  name: string;
  defaultPort: number;
  create: (db: SqlDatabase, logger: FastifyServerOptions['logger']) => Promise<FastifyInstance>;
  env?: Record<string, string | undefined>;
}

export async function runService(options: RunServiceOptions): Promise<FastifyInstance> {
  const env = options.env ?? process.env;
  const port = portFrom(env, 'PORT', options.defaultPort);
  const host = optional(env, 'HOST') ?? '127.0.0.1';
  const url = optional(env, 'DATABASE_URL');
  const dataDir = optional(env, 'DATA_DIR') ?? defaultDataDir(options.name);
  const db = await openDatabase(url === undefined ? { dataDir } : { url });
  let app: FastifyInstance;
  try {
    app = await options.create(db, { level: optional(env, 'LOG_LEVEL') ?? 'info' });
  } catch (error) {
    await db.close();
    throw error;
  }
  app.addHook('onClose', async () => {
    await db.close();
  });
  await app.listen({ port, host });
  app.log.info(
    { database: url === undefined ? `pglite:${dataDir}` : 'postgres' },
    `${options.name} service ready`,
  );
  return app;
}
