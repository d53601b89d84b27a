/**
 * The `Cache-Status` response header (RFC 9211): one list member per cache, here one for the
 * tiered cache, e.g. `bulwark; hit; ttl=12` or `bulwark; fwd=miss; stored; collapsed`.
 *
 * Parameters used (IANA "HTTP Cache-Status" registry): `hit` (answered without going to the
 * origin), `fwd` (went to the origin, and why: `miss` = nothing cached, `stale` = only a stale
 * value was cached), `ttl` (remaining freshness in whole seconds; negative when stale), `stored`
 * (the origin's answer was cached), `collapsed` (this request shared another's origin call),
 * `detail` (our own token: `stale-while-revalidate`, `stale-if-error`, or the tier `l1`/`l2`).
 */
import { InvalidOptionsError } from '@bulwark/core';

export interface CacheStatusParts {
  /** The cache's identifier: an RFC 8941 token (`bulwark`, `shop-users`). */
  readonly cache: string;
  readonly hit?: boolean;
  readonly fwd?: 'miss' | 'stale';
  /** Remaining freshness in ms (negative when stale); written as whole seconds. */
  readonly ttlMs?: number;
  readonly stored?: boolean;
  readonly collapsed?: boolean;
  readonly detail?: string;
}

// RFC 8941 sf-token: ( ALPHA / "*" ) *( tchar / ":" / "/" )
const TOKEN = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*$/;

/** Whether `name` can be written as a Cache-Status cache identifier without quoting. */
export function isCacheStatusToken(name: string): boolean {
  return TOKEN.test(name);
}

export function formatCacheStatus(parts: CacheStatusParts): string {
  if (!isCacheStatusToken(parts.cache)) {
    throw new InvalidOptionsError(
      `formatCacheStatus: cache must be a structured-field token (letters, digits, -._:/ ...), got ${JSON.stringify(parts.cache)}`,
    );
  }
  let out = parts.cache;
  if (parts.hit === true) out += '; hit';
  if (parts.fwd !== undefined) out += `; fwd=${parts.fwd}`;
  if (parts.ttlMs !== undefined) out += `; ttl=${toSeconds(parts.ttlMs)}`;
  if (parts.stored === true) out += '; stored';
  if (parts.collapsed === true) out += '; collapsed';
  if (parts.detail !== undefined) {
    out += isCacheStatusToken(parts.detail)
      ? `; detail=${parts.detail}`
      : `; detail=${JSON.stringify(parts.detail.replace(/[^\x20-\x7e]/g, '?'))}`;
  }
  return out;
}

/** Whole seconds, rounded toward zero: 12.9 s of freshness left is `ttl=12`, 0.4 s stale is `ttl=0`. */
function toSeconds(ms: number): number {
  const s = Math.trunc(ms / 1000);
  return s === 0 ? 0 : s; // no "-0"
}
