/**
 * Where a part's value came from. The composition engine (src/compose/) puts these into the
 * envelope's `meta.parts`; the cache (src/cache/) produces them. This file is the seam between the
 * two, so neither imports the other's internals.
 */

/** Which tier served a cached value. `l1` is in-process, `l2` is the shared store (e.g. Redis). */
export type CacheTier = 'l1' | 'l2';

/** A value read from a cache, with its age. */
export interface CachedValue<T> {
  readonly value: T;
  /** Milliseconds since the value was stored at its origin (wall clock, so it is comparable across processes). */
  readonly ageMs: number;
  readonly tier: CacheTier;
  /** True when the value is past its TTL (served from a stale-while-revalidate or stale-if-error window). */
  readonly stale: boolean;
}

/** `source` as shown in the envelope: `origin`, `cache:l1`, `cache:l2`, `alternate:<name>`, `static`. */
export type PartSource = 'origin' | `cache:${CacheTier}` | `alternate:${string}` | 'static';

/** How a part's value is described in `meta.parts.<name>`. */
export interface Provenance {
  readonly source: PartSource;
  /** Set for cached values. */
  readonly ageMs?: number;
  /** True when a cached value was past its TTL. */
  readonly stale?: boolean;
}

/** The provenance of a cached value. */
export function provenanceOf(cached: CachedValue<unknown>): Provenance {
  return { source: `cache:${cached.tier}`, ageMs: cached.ageMs, stale: cached.stale };
}
