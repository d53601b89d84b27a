// The SQL handle over pg or PGlite, and migrations (src/db/).
export * from './db/index.js';
export * from './messaging/index.js';
