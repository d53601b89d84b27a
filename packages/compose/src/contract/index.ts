/**
 * `@bulwark/compose/contract`: contract suites for the ports of this package, for adapters to run
 * against their real service. Needs `vitest` (a dev dependency of the adapter running it).
 */
export {
  describeCacheStoreContract,
  type CacheStoreFactory,
  type CacheStoreHarness,
} from './cache-store-contract.js';
