import { describe, expect, it } from 'vitest';
import { buildQuery, type Query } from './query.js';

/** What the client used to build (and what callees parse): URLSearchParams, pair by pair. */
function reference(query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    const items = Array.isArray(value) ? (value as readonly unknown[]) : [value];
    for (const item of items) params.append(key, String(item));
  }
  return params.toString();
}

describe('buildQuery', () => {
  it.each<[string, Query]>([
    ['plain', { limit: 5, cursor: 'abc_DEF-1.2*' }],
    ['empty', {}],
    ['undefined left out', { a: undefined, b: 1 }],
    ['arrays repeat the key', { ids: [1, 2, 3], x: [] }],
    ['commas and spaces', { ids: '1,2,3', q: 'a b' }],
    ['what encodeURIComponent leaves but forms do not', { q: "!'()~" }],
    ['reserved characters', { 'a&b': 'c=d', 'e+f': '/?#[]@$;:' }],
    ['non-ASCII and emoji', { name: 'zoë', mood: '😀' }],
    ['a lone surrogate', { bad: '\ud800x' }],
    ['numbers that print with +', { big: 1e21, small: 1e-7, neg: -1.5 }],
    ['booleans and empty strings', { yes: true, no: false, empty: '', '': 'v' }],
  ])('%s: the same string as URLSearchParams', (_name, query) => {
    expect(buildQuery(query)).toBe(reference(query));
  });
});
