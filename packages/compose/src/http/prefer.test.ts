import { describe, expect, it } from 'vitest';
import { parsePrefer, preferredHandling, prefersStrict } from './prefer.js';

describe('Prefer header', () => {
  it('reads handling=strict among other preferences, case-insensitively', () => {
    expect(prefersStrict('respond-async, Handling=Strict; x=1, wait=10')).toBe(true);
    expect(prefersStrict(['wait=5', 'handling="strict"'])).toBe(true);
    expect(preferredHandling('handling=lenient')).toBe('lenient');
  });

  it('takes the first occurrence of a preference (RFC 7240 §2)', () => {
    expect(preferredHandling('handling=lenient, handling=strict')).toBe('lenient');
  });

  it('ignores absent, empty, unknown and quoted-comma values', () => {
    expect(prefersStrict(undefined)).toBe(false);
    expect(prefersStrict('')).toBe(false);
    expect(preferredHandling('handling=maybe')).toBeUndefined();
    expect(parsePrefer('foo="a,b", handling=strict')).toEqual(
      new Map([
        ['foo', 'a,b'],
        ['handling', 'strict'],
      ]),
    );
    expect(parsePrefer('respond-async').get('respond-async')).toBe('');
  });
});
