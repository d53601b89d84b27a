/**
 * Fallback chain steps. A part tries them in order after its origin fails; the first that gives
 * a value wins. Each step is a small tagged object so the engine can switch on `kind` without
 * closures per run.
 */
import { InvalidOptionsError } from '@bulwark/core';
import type { CachedValue } from '../provenance.js';
import type {
  AlternateFallback,
  FallbackContext,
  OmitFallback,
  StaleFallback,
  StaticFallback,
} from './types.js';
import { checkPublicName, requireFunction, requireMs } from './validate.js';

/**
 * Serve a cached value when the origin fails: `read` returns the entry (for example
 * `cache.peek(key)`) or undefined when there is none. The part becomes `stale` with
 * `source: cache:l1|l2` and the entry's `ageMs`. A `read` that answers synchronously is used even
 * when the request deadline has run out, since it costs no time.
 */
export function staleFrom<I, T>(
  read: (
    input: I,
    ctx: FallbackContext,
  ) => CachedValue<T> | undefined | PromiseLike<CachedValue<T> | undefined>,
): StaleFallback<I, T> {
  requireFunction('staleFrom', 'read', read);
  return { kind: 'stale', read };
}

export interface AlternateOptions {
  /** At most this many milliseconds, within the request deadline. Default: what is left of it. */
  timeoutMs?: number;
}

/**
 * Load the value from another source (for example popular items instead of personal
 * recommendations). The part becomes `fallback` with `source: alternate:<name>`.
 */
export function alternate<I, T>(
  name: string,
  load: (input: I, ctx: FallbackContext) => T | PromiseLike<T>,
  options: AlternateOptions = {},
): AlternateFallback<I, T> {
  checkPublicName('alternate', 'name', name);
  requireFunction('alternate', 'load', load);
  const timeoutMs =
    options.timeoutMs === undefined
      ? undefined
      : requireMs('alternate', 'timeoutMs', options.timeoutMs);
  return { kind: 'alternate', name, load, timeoutMs };
}

/**
 * A fixed default (shared by every run: do not mutate it). The part becomes `fallback` with
 * `source: static`. For a default built from the input, use {@link staticFrom}.
 */
export function staticValue<T>(value: T): StaticFallback<unknown, T> {
  return { kind: 'static', make: () => value };
}

/** A default built from the run's input (Hystrix's "stubbed" fallback). Must not throw or block. */
export function staticFrom<I, T>(make: (input: I) => T): StaticFallback<I, T> {
  requireFunction('staticFrom', 'make', make);
  return { kind: 'static', make };
}

const OMIT: OmitFallback = Object.freeze({ kind: 'omit' });

/**
 * Stop here and omit the part (`data.<name>` is null, with a matching `errors` entry). This is
 * also what happens at the end of an optional part's chain; `omit()` makes it explicit, and is
 * rejected on a critical part.
 */
export function omit(): OmitFallback {
  return OMIT;
}

/** @internal */
export function checkFallback(where: string, value: unknown, index: number): void {
  const kind = (value as { kind?: unknown } | null)?.kind;
  if (kind !== 'stale' && kind !== 'alternate' && kind !== 'static' && kind !== 'omit') {
    throw new InvalidOptionsError(
      `${where}: fallbacks[${index}] is not a fallback; build it with staleFrom(), alternate(), staticValue(), staticFrom() or omit()`,
    );
  }
}
