export {
  tieredCache,
  type TieredCache,
  type CacheLoader,
  type CacheLoaderContext,
  type CacheFetchOptions,
  type CacheFetchResult,
  type CacheOutcome,
} from './tiered-cache.js';
export type { TieredCacheOptions } from './options.js';
export type { TieredCacheEvent } from './events.js';
export {
  CacheStoreError,
  isCacheStoreError,
  isCacheEntry,
  type CacheEntry,
  type CacheStore,
  type CacheStoreOperationOptions,
} from './store.js';
export { memoryCacheStore, type MemoryCacheStoreOptions } from './memory-store.js';
export { singleflight, type Singleflight, type SingleflightOptions } from './singleflight.js';
export { formatCacheStatus, isCacheStatusToken, type CacheStatusParts } from './cache-status.js';
