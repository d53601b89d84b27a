// The queue backend for @bulwark/messaging on Redis Streams (src/messaging/).
export { redisQueueBackend, RedisQueueBackend } from './backend.js';
export type { RedisQueueBackendOptions } from './options.js';
