import { describe, expect, it } from 'vitest';
import { formatCacheStatus, isCacheStatusToken } from './cache-status.js';

describe('formatCacheStatus (RFC 9211)', () => {
  it('writes a fresh hit with whole seconds of ttl left', () => {
    expect(formatCacheStatus({ cache: 'bulwark', hit: true, ttlMs: 12_900, detail: 'l1' })).toBe(
      'bulwark; hit; ttl=12; detail=l1',
    );
  });

  it('writes a miss that was stored and collapsed', () => {
    expect(
      formatCacheStatus({ cache: 'bulwark', fwd: 'miss', stored: true, collapsed: true }),
    ).toBe('bulwark; fwd=miss; stored; collapsed');
  });

  it('writes negative ttl for stale values and never -0', () => {
    expect(formatCacheStatus({ cache: 'c', fwd: 'stale', ttlMs: -4_200 })).toBe(
      'c; fwd=stale; ttl=-4',
    );
    expect(formatCacheStatus({ cache: 'c', hit: true, ttlMs: -400 })).toBe('c; hit; ttl=0');
  });

  it('quotes a detail that is not a token', () => {
    expect(formatCacheStatus({ cache: 'c', hit: true, detail: 'two words' })).toBe(
      'c; hit; detail="two words"',
    );
  });

  it('accepts only structured-field tokens as cache names', () => {
    expect(isCacheStatusToken('shop-users:v2')).toBe(true);
    expect(isCacheStatusToken('9lives')).toBe(false);
    expect(isCacheStatusToken('has space')).toBe(false);
    expect(() => formatCacheStatus({ cache: 'has space', hit: true })).toThrow(/token/);
  });
});
