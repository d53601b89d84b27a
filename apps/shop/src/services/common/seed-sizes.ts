/**
 * How much demo data to seed. Every service derives its rows from these numbers with the same
 * deterministic arithmetic, so the services agree (an order's product ids exist in the catalog,
 * its unit prices are the catalog's prices) without reading each other's tables.
 */
import { InvalidOptionsError } from '@bulwark/core';

export interface SeedSizes {
  /** Users 1..users. Default 1_000. */
  users: number;
  /** Products 1..products. Default 10_000. */
  products: number;
  /** Orders 1..orders, each with 1-5 lines. Default 50_000. */
  orders: number;
  /** Recommended products per user. Default 20. */
  picksPerUser: number;
  /** Popular products (the recommendations fallback). Default 100. */
  popular: number;
}

export const DEFAULT_SEED_SIZES: Readonly<SeedSizes> = Object.freeze({
  users: 1_000,
  products: 10_000,
  orders: 50_000,
  picksPerUser: 20,
  popular: 100,
});

/** Fills in defaults and checks the numbers; `false` means "seed nothing". */
export function resolveSeedSizes(
  where: string,
  seed: Partial<SeedSizes> | false | undefined,
): SeedSizes | false {
  if (seed === false) return false;
  const sizes: SeedSizes = { ...DEFAULT_SEED_SIZES, ...(seed ?? {}) };
  for (const [key, value] of Object.entries(sizes)) {
    if (!(key in DEFAULT_SEED_SIZES)) {
      throw new InvalidOptionsError(
        `${where}: unknown seed size "${key}"; known: ${Object.keys(DEFAULT_SEED_SIZES).join(', ')}`,
      );
    }
    // Ids are int4 and the seed arithmetic multiplies them by primes below 2^17: keep it in int8.
    if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 10_000_000) {
      throw new InvalidOptionsError(
        `${where}: seed.${key} must be an integer in [1, 10000000], got ${JSON.stringify(value)}; pass seed: false to seed nothing`,
      );
    }
  }
  return sizes;
}
