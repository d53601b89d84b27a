export {
  redisCacheStore,
  failFastRedisOptions,
  type RedisCacheStore,
  type RedisCacheStoreOptions,
} from './redis-cache-store.js';
