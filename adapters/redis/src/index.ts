export {
  redisCacheStore,
  failFastRedisOptions,
  type RedisCacheStore,
  type RedisCacheStoreOptions,
} from './redis-cache-store.js';
export {
  redisQueueBackend,
  RedisQueueBackend,
  type RedisQueueBackendOptions,
} from './messaging/index.js';
