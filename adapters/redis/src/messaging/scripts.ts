/**
 * Runs Lua scripts by SHA (EVALSHA) and falls back to EVAL when the server does not know the
 * script yet (NOSCRIPT: after a restart, a failover or SCRIPT FLUSH). Done by hand rather than
 * with ioredis's `defineCommand`, which would add methods to a client the caller owns.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source, 'utf8').digest('hex') };
}

export async function runScript(
  client: Redis,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.source, keys.length, ...keys, ...args);
  }
}
