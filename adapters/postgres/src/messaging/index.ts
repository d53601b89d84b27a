// The queue backend for @bulwark/messaging on PGlite and PostgreSQL (src/messaging/).
export {
  postgresQueueBackend,
  PostgresQueueBackend,
  type PostgresQueueBackendOptions,
} from './backend.js';
export { messagingMigrations } from './schema.js';
export {
  outbox,
  outboxRelay,
  type Outbox,
  type OutboxOptions,
  type OutboxRelay,
  type OutboxRelayOptions,
} from './outbox.js';
export { inbox, type Inbox, type InboxOptions, type InboxResult } from './inbox.js';
