export { rabbitmqQueueBackend, type RabbitmqQueueBackend } from './backend.js';
export type { RabbitmqQueueBackendOptions } from './options.js';
export { delayBucketMs } from './topology.js';
