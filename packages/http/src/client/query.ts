/**
 * A request's query string from an object, encoded as `URLSearchParams` encodes it
 * (`application/x-www-form-urlencoded`). Pairs made only of characters that encoding leaves as
 * they are (ASCII letters and digits, `*`, `-`, `.`, `_`) are written directly: most queries
 * (`limit=5`) are, and a `URLSearchParams` per call was its own list, an array per pair and a
 * string builder, about 1 KB of garbage per gateway overview (three calls with a query).
 */
export type QueryValue = string | number | boolean;

export type Query = Readonly<Record<string, QueryValue | readonly QueryValue[] | undefined>>;

/** What form encoding leaves unchanged. */
const VERBATIM = /^[A-Za-z0-9*._-]*$/;

function pair(key: string, value: string): string {
  if (VERBATIM.test(key) && VERBATIM.test(value)) return `${key}=${value}`;
  return new URLSearchParams([[key, value]]).toString();
}

/** `undefined` values are left out; an array value repeats its key, in order. */
export function buildQuery(query: Query): string {
  let out = '';
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const item of value as readonly QueryValue[]) {
        out += (out === '' ? '' : '&') + pair(key, String(item));
      }
    } else {
      out += (out === '' ? '' : '&') + pair(key, String(value));
    }
  }
  return out;
}
