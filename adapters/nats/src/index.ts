export { natsQueueBackend, NatsQueueBackend } from './backend.js';
export type { NatsQueueBackendOptions } from './options.js';
export { escapeToken, unescapeToken, names, type Names } from './names.js';
