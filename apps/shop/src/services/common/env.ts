/** Reading the environment of a shop process: ports, host, database location. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionsError } from '@bulwark/core';

/**
 * The repository root: this file sits at apps/shop/{src,dist}/services/common/, the same depth
 * in the sources and the build.
 */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/** Default data folder of the shop: `<project>/.data/shop/<name>` (git-ignored). */
export function defaultDataDir(name: string): string {
  return join(PROJECT_ROOT, '.data', 'shop', name);
}

type Env = Record<string, string | undefined>;

/** A TCP port from `variable`, else `fallback`; 0 picks a free port. */
export function portFrom(env: Env, variable: string, fallback: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65_535)) {
    throw new InvalidOptionsError(
      `${variable} must be a port number 0-65535, got ${JSON.stringify(raw)}; unset it for ${fallback}`,
    );
  }
  return port;
}

/** A non-empty variable, or undefined when unset or empty (so `X= cmd` means "default"). */
export function optional(env: Env, variable: string): string | undefined {
  const value = env[variable];
  return value === undefined || value === '' ? undefined : value;
}
