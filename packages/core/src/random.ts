/**
 * Randomness is a parameter too: jitter, hedging and fault injection take a `Random`, so tests can
 * replay an exact sequence from a seed.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
}

export const systemRandom: Random = { next: Math.random };

/**
 * A deterministic generator (mulberry32): fast, 32-bit state, good enough for jitter and sampling,
 * not for cryptography.
 */
export function seededRandom(seed: number): Random {
  if (!Number.isInteger(seed)) {
    throw new RangeError(`seededRandom: seed must be an integer, got ${String(seed)}`);
  }
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
