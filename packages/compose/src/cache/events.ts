/** Events of a tiered cache. Emitted only when someone listens (`onEvent`). */
import type { CacheTier } from '../provenance.js';

export type TieredCacheEvent =
  /** A fresh value was served. */
  | { type: 'cache.hit'; cache: string; key: string; tier: CacheTier; ageMs: number }
  /** A stale value was served, within the window named by `reason`. */
  | {
      type: 'cache.stale';
      cache: string;
      key: string;
      tier: CacheTier;
      ageMs: number;
      reason: 'stale-while-revalidate' | 'stale-if-error';
    }
  /** Nothing usable was cached; the caller goes to the origin (or joins a load in flight). */
  | { type: 'cache.miss'; cache: string; key: string; collapsed: boolean }
  /** The loader ran for a caller (`refresh: false`) or in the background (`refresh: true`). */
  | { type: 'cache.load'; cache: string; key: string; refresh: boolean; ok: true }
  | { type: 'cache.load'; cache: string; key: string; refresh: boolean; ok: false; error: unknown }
  /**
   * An L2 operation failed, timed out or was skipped because the L2 breaker is open. The request
   * went on without L2 (a failed `get` is a miss, a failed `set` is dropped).
   */
  | {
      type: 'cache.l2-error';
      cache: string;
      key: string;
      operation: 'get' | 'set' | 'delete';
      error: unknown;
    };
