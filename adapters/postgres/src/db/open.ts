/** `openDatabase`: PostgreSQL when a URL is given, embedded PGlite otherwise. */
import { InvalidOptionsError } from '@bulwark/core';
import { openPglite } from './pglite.js';
import { openPostgres, type PostgresDatabaseOptions } from './postgres.js';
import type { SqlDatabase } from './types.js';

export interface OpenDatabaseOptions extends Partial<Omit<PostgresDatabaseOptions, 'url'>> {
  /** A `postgres://` or `postgresql://` URL: use a `pg` Pool. Default: none, PGlite. */
  url?: string;
  /** PGlite only: folder for the data files, created on first start. Default: in memory. */
  dataDir?: string;
}

const W = 'openDatabase';
const KNOWN = [
  'url',
  'dataDir',
  'maxConnections',
  'connectTimeoutMs',
  'idleTimeoutMs',
  'statementTimeoutMs',
  'applicationName',
  'onIdleError',
];
const POOL_ONLY = KNOWN.slice(2);

function fail(message: string): never {
  throw new InvalidOptionsError(`${W}: ${message}`);
}

function checkMs(name: string, value: unknown, allowZero: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (!allowZero && value === 0)
  ) {
    fail(
      `${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${JSON.stringify(value)}`,
    );
  }
}

/** Checks the options eagerly; each message names the option and the fix. */
export function validateOpenDatabaseOptions(options: OpenDatabaseOptions): void {
  if (typeof options !== 'object' || options === null) fail('expected an options object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key))
      fail(`unknown option "${key}"; known options are ${KNOWN.join(', ')}`);
  }
  const { url, dataDir } = options;
  if (url !== undefined) {
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url)) {
      fail(
        'url must be a postgres:// or postgresql:// URL; leave it out (or unset DATABASE_URL) to use embedded PGlite',
      );
    }
    if (dataDir !== undefined) {
      fail('pass either url (PostgreSQL) or dataDir (PGlite), not both');
    }
  } else {
    for (const key of POOL_ONLY) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        fail(`${key} applies to PostgreSQL only; pass url as well, or leave ${key} out`);
      }
    }
  }
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    fail('dataDir must be a folder path; leave it out for an in-memory database');
  }
  if (
    options.maxConnections !== undefined &&
    (!Number.isInteger(options.maxConnections) || options.maxConnections < 1)
  ) {
    fail(`maxConnections must be an integer >= 1, got ${String(options.maxConnections)}`);
  }
  checkMs('connectTimeoutMs', options.connectTimeoutMs, false);
  checkMs('idleTimeoutMs', options.idleTimeoutMs, true);
  checkMs('statementTimeoutMs', options.statementTimeoutMs, false);
  if (options.onIdleError !== undefined && typeof options.onIdleError !== 'function') {
    fail('onIdleError must be a function (error) => void');
  }
}

/**
 * Opens the SQL handle. With `url`, a `pg` Pool (no connection is made until the first query);
 * otherwise PGlite, in `dataDir` (created on first start) or in memory.
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<SqlDatabase> {
  validateOpenDatabaseOptions(options);
  const { url, dataDir, ...pool } = options;
  if (url !== undefined) return openPostgres({ url, ...pool });
  return openPglite(dataDir === undefined ? {} : { dataDir });
}
