/**
 * The `Prefer` request header (RFC 7240) as far as composition needs it: `handling=strict` asks
 * for an error rather than a degraded answer, `handling=lenient` for the default.
 */

/** The header as Node (or Fastify) hands it over: one string, several, or none. */
export type HeaderValue = string | readonly string[] | undefined;

/**
 * The preferences in a `Prefer` header, names lower-cased, values unquoted (`''` for a bare
 * token). RFC 7240 §2: when a preference appears more than once, only the first counts.
 * Parameters after `;` are ignored: no preference we read has any.
 */
export function parsePrefer(header: HeaderValue): Map<string, string> {
  const preferences = new Map<string, string>();
  if (header === undefined) return preferences;
  const lines = typeof header === 'string' ? [header] : header;
  for (const line of lines) {
    for (const item of splitOutsideQuotes(line, ',')) {
      const head = splitOutsideQuotes(item, ';')[0] ?? '';
      const eq = head.indexOf('=');
      const name = (eq === -1 ? head : head.slice(0, eq)).trim().toLowerCase();
      if (name === '' || preferences.has(name)) continue;
      let value = eq === -1 ? '' : head.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      }
      preferences.set(name, value);
    }
  }
  return preferences;
}

/** `handling` from a `Prefer` header: `'strict'`, `'lenient'`, or undefined when absent or unknown. */
export function preferredHandling(header: HeaderValue): 'strict' | 'lenient' | undefined {
  // Most requests send no Prefer header: no Map for them.
  if (header === undefined) return undefined;
  const value = parsePrefer(header).get('handling')?.toLowerCase();
  return value === 'strict' || value === 'lenient' ? value : undefined;
}

/** True when the header asks for `handling=strict`: pass it as the run's `strict` option. */
export function prefersStrict(header: HeaderValue): boolean {
  return preferredHandling(header) === 'strict';
}

/** Splits on `separator` where it is not inside a quoted string. */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && quoted) i++;
    else if (char === '"') quoted = !quoted;
    else if (char === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
