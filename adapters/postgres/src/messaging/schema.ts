/**
 * The queue tables, in their own schema (default `bulwark_messaging`). Times are epoch ms in
 * float8 columns: they come from the consumer's Clock as parameters, never from the server's
 * `now()`, so a TestClock drives the SQL exactly as it drives the in-memory backend.
 */
import type { Migration } from '../db/index.js';

export function messagingMigrations(schema: string): Migration[] {
  const s = schema;
  return [
    {
      id: '001-messaging-tables',
      sql: `
create schema if not exists ${s};
create table ${s}.messages (
  id text primary key,
  seq bigserial not null,
  queue text not null,
  type text not null,
  payload jsonb not null,
  headers jsonb not null,
  idempotency_key text,
  first_seen_at float8 not null,
  available_at float8 not null,
  attempts int not null default 0,
  state text not null default 'ready' check (state in ('ready', 'leased')),
  lease_token text,
  leased_at float8,
  lease_expires_at float8,
  history jsonb not null default '[]'::jsonb
);
create index messages_ready on ${s}.messages (queue, available_at, seq) where state = 'ready';
create index messages_leased on ${s}.messages (queue, lease_expires_at) where state = 'leased';
create table ${s}.dead_letters (
  id text primary key,
  source_queue text not null,
  type text not null,
  message jsonb not null,
  reason text not null,
  attempts jsonb not null,
  last_error_code text not null,
  last_error_message text not null,
  dead_at float8 not null,
  search text not null
);
create index dead_letters_order on ${s}.dead_letters (dead_at, id collate "C");
create index dead_letters_queue on ${s}.dead_letters (source_queue, dead_at);
create table ${s}.audit (
  seq bigserial primary key,
  id text not null unique,
  at float8 not null,
  action text not null,
  actor text,
  dry_run boolean not null,
  filter jsonb not null,
  count int not null,
  ids jsonb not null,
  note text
);
`,
    },
    {
      id: '002-outbox-inbox',
      sql: `
create table ${s}.outbox (
  seq bigserial primary key,
  id text not null unique,
  record jsonb not null,
  created_at float8 not null,
  claimed_until float8,
  sent_at float8
);
create index outbox_unsent on ${s}.outbox (seq) where sent_at is null;
create table ${s}.inbox (
  key text primary key,
  processed_at float8 not null
);
create index inbox_processed_at on ${s}.inbox (processed_at);
`,
    },
  ];
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export function isSchemaName(value: unknown): value is string {
  return typeof value === 'string' && IDENT.test(value);
}
