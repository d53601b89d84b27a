/**
 * `--url` to a queue backend. Adapters load with dynamic `import()`, so `bulwark dlq` against
 * PostgreSQL never loads a Redis or NATS client (and starts faster), and a build whose adapter
 * lacks its queue backend fails with a clear message instead of at start-up.
 */
import { stat } from 'node:fs/promises';
import type { QueueBackend } from '@bulwark/messaging';
import type * as Postgres from '@bulwark/postgres';
import { UsageError } from './errors.js';

export type BackendTarget =
  | { readonly kind: 'postgres'; readonly url: string }
  | { readonly kind: 'pglite'; readonly dataDir: string }
  | { readonly kind: 'redis' | 'rabbitmq' | 'nats'; readonly url: string };

export interface OpenBackendOptions {
  /** PostgreSQL and PGlite: the schema of the queue tables. Default: the adapter's. */
  readonly schema?: string;
  /** Redis, RabbitMQ, NATS: the adapter's `prefix` for its keys, queues or streams. */
  readonly prefix?: string;
}

export interface OpenedBackend {
  readonly backend: QueueBackend;
  /** Closes what opening made: connections, the PGlite instance. */
  close(): Promise<void>;
}

export type Importer = (specifier: string) => Promise<unknown>;

const SCHEMES: Readonly<Record<string, 'postgres' | 'redis' | 'rabbitmq' | 'nats'>> = {
  postgres: 'postgres',
  postgresql: 'postgres',
  redis: 'redis',
  rediss: 'redis',
  amqp: 'rabbitmq',
  amqps: 'rabbitmq',
  nats: 'nats',
};

export const URL_HELP =
  'postgres://… or postgresql://… (PostgreSQL), a folder or pglite:<folder> (PGlite), redis://…, amqp://… (RabbitMQ) or nats://…';

/** Which backend a `--url` names. Throws `UsageError` for a scheme nobody serves. */
export function targetOf(url: string): BackendTarget {
  const text = url.trim();
  if (text === '') throw new UsageError(`--url is empty; give ${URL_HELP}`);
  if (text.startsWith('pglite:')) {
    const dataDir = text.slice('pglite:'.length);
    if (dataDir === '') throw new UsageError('pglite: needs a folder, e.g. pglite:./data/queue');
    return { kind: 'pglite', dataDir };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'pglite', dataDir: text };
  const kind = SCHEMES[scheme];
  if (kind === undefined) {
    throw new UsageError(`no queue backend for ${scheme}:// URLs; give ${URL_HELP}`);
  }
  return { kind, url: text };
}

const defaultImporter: Importer = specifier => import(specifier);

export async function openBackendByUrl(
  url: string,
  options: OpenBackendOptions = {},
  importer: Importer = defaultImporter,
): Promise<OpenedBackend> {
  const target = targetOf(url);
  checkNamespace(target, options);
  switch (target.kind) {
    case 'postgres':
      return openSql({ url: target.url }, options, importer);
    case 'pglite': {
      // PGlite would create an empty database in a mistyped folder; an admin tool must not.
      const info = await stat(target.dataDir).catch(() => undefined);
      if (info?.isDirectory() !== true) {
        throw new Error(
          `no PGlite data folder at ${target.dataDir}; give the folder your service uses (its dataDir)`,
        );
      }
      return openSql({ dataDir: target.dataDir }, options, importer);
    }
    default: {
      const factory = await adapterExport(target.kind, importer);
      const backend = (await factory(
        options.prefix === undefined
          ? { url: target.url }
          : { url: target.url, prefix: options.prefix },
      )) as QueueBackend;
      return { backend, close: async () => backend.close?.() };
    }
  }
}

/** `--schema` belongs to SQL backends and `--prefix` to brokers: the other way round is a mistake. */
export function checkNamespace(target: BackendTarget, options: OpenBackendOptions): void {
  const sql = target.kind === 'postgres' || target.kind === 'pglite';
  if (sql && options.prefix !== undefined) {
    throw new UsageError(
      '--prefix applies to redis://, amqp:// and nats:// URLs; for SQL use --schema',
    );
  }
  if (!sql && options.schema !== undefined) {
    throw new UsageError(
      `--schema applies to PostgreSQL and PGlite; for ${target.kind} use --prefix`,
    );
  }
}

const ADAPTERS = {
  redis: { module: '@bulwark/redis', factory: 'redisQueueBackend' },
  rabbitmq: { module: '@bulwark/rabbitmq', factory: 'rabbitmqQueueBackend' },
  nats: { module: '@bulwark/nats', factory: 'natsQueueBackend' },
} as const;

type Factory = (options: { url: string; prefix?: string }) => unknown;

/** The adapter's queue backend factory, or an error saying this build has none. */
export async function adapterExport(
  kind: keyof typeof ADAPTERS,
  importer: Importer,
): Promise<Factory> {
  const { module, factory } = ADAPTERS[kind];
  let loaded: unknown;
  try {
    loaded = await importer(module);
  } catch (cause) {
    throw new Error(
      `the ${kind} queue backend is not available in this build (${module} did not load)`,
      { cause },
    );
  }
  const fn = (loaded as Record<string, unknown> | null)?.[factory];
  if (typeof fn !== 'function') {
    throw new Error(
      `the ${kind} queue backend is not available in this build (${module} has no ${factory})`,
    );
  }
  return fn as Factory;
}

type PostgresModule = typeof Postgres;

async function openSql(
  where: { url: string } | { dataDir: string },
  options: OpenBackendOptions,
  importer: Importer,
): Promise<OpenedBackend> {
  const pg = (await importer('@bulwark/postgres')) as PostgresModule;
  const db = await pg.openDatabase(where);
  try {
    const backend = await pg.postgresQueueBackend(
      options.schema === undefined ? { db } : { db, schema: options.schema },
    );
    return {
      backend,
      close: async () => {
        await backend.close?.();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
