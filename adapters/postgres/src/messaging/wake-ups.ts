/**
 * Wake-ups for consumers. In this process: every backend on the same SQL handle and schema shares
 * one registry, so an enqueue wakes local consumers at once (this is all PGlite needs: it is one
 * process). Across processes on PostgreSQL: enqueue sends `pg_notify(<schema>, <queue>)` in the
 * same statement, and a dedicated LISTEN connection turns notifications into wake-ups.
 *
 * The SQL handle does not expose LISTEN (a pooled connection cannot hold it), hence `listenUrl`
 * and a client of our own.
 */
import type { Disposable } from '@bulwark/core';
import pg from 'pg';
import type { EnqueueRecord } from '@bulwark/messaging';
import type { SqlDatabase } from '../db/index.js';

type Registry = Map<string, Set<() => void>>;

const registries = new WeakMap<SqlDatabase, Map<string, Registry>>();

export interface LocalWakeUps {
  subscribe(queue: string, listener: () => void): Disposable;
  notify(records: readonly EnqueueRecord[]): void;
  wake(queue: string): void;
}

export function localWakeUps(db: SqlDatabase, schema: string): LocalWakeUps {
  let bySchema = registries.get(db);
  if (bySchema === undefined) registries.set(db, (bySchema = new Map<string, Registry>()));
  let registry = bySchema.get(schema);
  if (registry === undefined) bySchema.set(schema, (registry = new Map<string, Set<() => void>>()));
  const queues = registry;
  const wake = (queue: string): void => {
    const listeners = queues.get(queue);
    if (listeners === undefined) return;
    for (const listener of [...listeners]) queueMicrotask(listener);
  };
  return {
    subscribe(queue, listener) {
      let set = queues.get(queue);
      if (set === undefined) queues.set(queue, (set = new Set()));
      const mine = set;
      const entry = (): void => listener();
      mine.add(entry);
      return { dispose: () => void mine.delete(entry) };
    },
    notify(records) {
      const seen = new Set<string>();
      for (const r of records) {
        if (seen.has(r.queue)) continue;
        seen.add(r.queue);
        wake(r.queue);
      }
    },
    wake,
  };
}

export interface PostgresListener {
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** One connection that LISTENs on the schema's channel; notifications carry the queue name. */
export function postgresListener(
  url: string,
  channel: string,
  onQueue: (queue: string) => void,
): PostgresListener {
  const client = new pg.Client({ connectionString: url, application_name: 'bulwark-listen' });
  client.on('notification', message => {
    if (message.channel === channel && typeof message.payload === 'string') {
      onQueue(message.payload);
    }
  });
  // A dropped LISTEN connection only costs latency: consumers still poll.
  client.on('error', () => {});
  const ready = (async () => {
    await client.connect();
    await client.query(`listen ${channel}`);
  })();
  ready.catch(() => {});
  return {
    ready,
    async close() {
      await ready.catch(() => {});
      await client.end().catch(() => {});
    },
  };
}
