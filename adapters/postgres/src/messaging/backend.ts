/**
 * The PGlite / PostgreSQL queue backend. One table of messages, leased with
 * `FOR UPDATE SKIP LOCKED` (on PGlite, one connection, the same SQL simply never finds a lock)
 * and a lease token checked on every settlement (fencing); dead letters and the audit log in
 * tables beside it. All in one schema, created by `migrate`.
 */
import { randomUUID } from 'node:crypto';
import { InvalidOptionsError, type Disposable } from '@bulwark/core';
import type {
  AuditEntry,
  AuditQuery,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPage,
  DeadLetterSummary,
  Delivery,
  EnqueueRecord,
  FetchRequest,
  FetchResult,
  Lease,
  Message,
  QueueBackend,
  QueueStats,
  RecoverRequest,
  Settlement,
  AttemptRecord,
  DeadReason,
} from '@bulwark/messaging';
import {
  isSqlError,
  migrate,
  tableVacuum,
  type CopyValue,
  type SqlDatabase,
  type SqlExecutor,
  type TableVacuum,
} from '../db/index.js';
import { isSchemaName, messagingMigrations } from './schema.js';
import { queueSql, type QueueSql } from './sql.js';
import { localWakeUps, postgresListener, type PostgresListener } from './wake-ups.js';

export interface PostgresQueueBackendOptions {
  /** The SQL handle (`openDatabase()` from this package): PGlite or a pg Pool. */
  db: SqlDatabase;
  /** Schema for the tables; a lower-case identifier. Default `bulwark_messaging`. */
  schema?: string;
  /**
   * PostgreSQL only: a URL for one dedicated connection that LISTENs for enqueue notifications
   * from other processes, so their consumers wake at once instead of at their next poll. Default:
   * none (consumers in this process still wake at once; others poll).
   */
  listenUrl?: string;
  /** Run the migrations before returning. Default true. */
  migrate?: boolean;
}

interface MessageRow {
  id: string;
  queue: string;
  type: string;
  payload: unknown;
  headers: Record<string, string>;
  idempotency_key: string | null;
  attempts: number;
  first_seen_at: number;
  lease_token: string;
  leased_at: number;
  lease_expires_at: number;
  seq?: number;
}

/** One message as a fetch returns it, in its JSON batch (sql.ts FETCHED_AS_JSON). */
type FetchedMessage = [
  id: string,
  type: string,
  payload: unknown,
  headers: MessageRow['headers'],
  idempotencyKey: string | null,
  attempts: number,
  firstSeenAt: number,
];

interface DeadRow {
  id: string;
  source_queue: string;
  message: Message & { idempotencyKey?: string | null };
  reason: DeadReason;
  attempts: AttemptRecord[];
  last_error_code: string;
  last_error_message: string;
  dead_at: number;
}

interface AuditRow {
  id: string;
  at: number;
  action: 'replay' | 'purge';
  actor: string | null;
  dry_run: boolean;
  filter: DeadLetterFilter;
  count: number;
  ids: string[];
  note: string | null;
}

export class PostgresQueueBackend implements QueueBackend {
  readonly name: string;
  readonly schema: string;
  private readonly sql: QueueSql;
  /** PostgreSQL (true) or PGlite: picks the statements and parameters of an enqueue. */
  private readonly pg: boolean;
  private readonly wakeUps;
  private listener: PostgresListener | undefined;
  /** PGlite runs no autovacuum: every fetch, ack and settlement leaves a dead row version. */
  private readonly vacuum: TableVacuum;

  constructor(
    private readonly db: SqlDatabase,
    schema: string,
    private readonly listenUrl: string | undefined,
  ) {
    this.schema = schema;
    this.name = db.kind;
    this.pg = db.kind === 'postgres';
    this.sql = queueSql(schema, this.pg);
    this.wakeUps = localWakeUps(db, schema);
    this.vacuum = tableVacuum(db, `${schema}.messages`);
  }

  /** Creates or upgrades the tables (idempotent). */
  async migrate(): Promise<void> {
    await migrate(this.db, {
      migrations: messagingMigrations(this.schema),
      table: `${this.schema}.migrations`,
    });
  }

  async enqueue(records: readonly EnqueueRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.insert(this.db, records);
    this.wakeUps.notify(records);
  }

  private async insert(executor: SqlExecutor, records: readonly EnqueueRecord[]): Promise<void> {
    // The fresh-ids-first path (below) only outside a transaction: inside one (a replay) a failed
    // statement would abort the caller's transaction, so there the conflict-safe INSERT only.
    if (executor === this.db) {
      try {
        await this.insertFresh(records);
        return;
      } catch (error) {
        if (!(isSqlError(error) && error.code === 'DB_UNIQUE_VIOLATION')) throw error;
        // An id already there: the whole batch failed; insert it again, skipping duplicates.
      }
    }
    await executor.query(
      this.pg ? this.sql.enqueueNotify : this.sql.enqueue,
      this.batchParams(records),
    );
  }

  /**
   * Ids taken as fresh, each engine's fastest way: a large PostgreSQL batch by COPY, one message
   * by its bound values, any other batch by one INSERT. A duplicate id fails the whole call.
   */
  private async insertFresh(records: readonly EnqueueRecord[]): Promise<void> {
    if (this.pg && records.length >= COPY_MIN_ROWS) return this.copy(records);
    if (records.length === 1) {
      const values = messageValues(records[0]!);
      await (this.pg
        ? this.db.query(this.sql.enqueueOneNotify, [...values, this.schema])
        : this.db.query(this.sql.enqueueOne, values));
      return;
    }
    await this.db.query(
      this.pg ? this.sql.enqueueFreshNotify : this.sql.enqueueFresh,
      this.batchParams(records),
    );
  }

  /** A batch's parameters: one JSON document on PostgreSQL, one array per column on PGlite. */
  private batchParams(records: readonly EnqueueRecord[]): unknown[] {
    if (!this.pg) return columnArrays(records);
    const json = JSON.stringify(
      records.map(r => ({
        id: r.id,
        queue: r.queue,
        type: r.type,
        payload: r.payload,
        headers: r.headers,
        idempotency_key: r.idempotencyKey ?? null,
        available_at: r.availableAt,
        first_seen_at: r.firstSeenAt,
      })),
    );
    return [json, this.schema, distinctQueues(records)];
  }

  /**
   * A large batch on PostgreSQL: one COPY (what it gains, and from what size: COPY_MIN_ROWS). Ids
   * are fresh as on the INSERT path: a duplicate fails the whole COPY with DB_UNIQUE_VIOLATION.
   * The wake-up follows the commit instead of riding in the statement: once the rows are in, the
   * send has succeeded, so a failed NOTIFY must not fail it (a caller sending again would enqueue
   * the messages twice); other processes' consumers then find the rows at their next poll.
   */
  private async copy(records: readonly EnqueueRecord[]): Promise<void> {
    await this.db.copyFrom(`${this.schema}.messages`, COPY_COLUMNS, records.map(messageValues));
    try {
      await this.db.query(this.sql.notify, [this.schema, distinctQueues(records)]);
    } catch {
      // Best effort, see above.
    }
  }

  async fetch(request: FetchRequest): Promise<FetchResult> {
    const { queue, limit, leaseMs, now } = request;
    // Before the fetch, not after: a failing vacuum must not fail a fetch that leased rows.
    if (this.vacuum.due) await this.vacuum.run();
    // One fresh token for every message this fetch leases: a lease is fenced by (id, token), and a
    // message leased again later gets that later fetch's token, so a stale holder still cannot
    // settle it. Known here, it need not be read back (nor need the times, computed the same way).
    const token = randomUUID();
    const leaseExpiresAt = now + leaseMs;
    const { rows } = await this.db.query<{ batch: string | null }>(this.sql.fetch, [
      queue,
      now,
      limit,
      leaseMs,
      token,
    ]);
    // In fetch order already (the aggregate orders by seq); null when nothing was leased.
    const batch = rows[0]?.batch;
    const fetched = batch ? (JSON.parse(batch) as FetchedMessage[]) : [];
    this.vacuum.note(fetched.length);
    const deliveries: Delivery[] = fetched.map(
      ([id, type, payload, headers, idempotencyKey, attempts, firstSeenAt]) => ({
        message: toMessage(
          {
            id,
            type,
            payload,
            headers,
            idempotency_key: idempotencyKey,
            attempts,
            first_seen_at: firstSeenAt,
          },
          queue,
        ),
        lease: { id, token },
        leaseExpiresAt,
      }),
    );
    if (deliveries.length >= limit) return { deliveries };
    const next = await this.db.query<{ at: number | null }>(this.sql.nextAvailable, [queue, now]);
    const at = next.rows[0]?.at;
    return at === null || at === undefined ? { deliveries } : { deliveries, nextAvailableAt: at };
  }

  async extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<string[]> {
    if (leases.length === 0) return [];
    const { rows } = await this.db.query<{ id: string }>(this.sql.extend, [
      leases.map(l => l.id),
      leases.map(l => l.token),
      now,
      leaseMs,
    ]);
    this.vacuum.note(rows.length);
    return rows.map(r => r.id);
  }

  /** Acks in one statement (the consumer batches the acks of handlers that finish together). */
  // `now` is part of the port; an ack deletes the row, so the time it happened is not kept.
  async ackMany(leases: readonly Lease[], _now?: number): Promise<readonly string[]> {
    if (leases.length === 0) return [];
    const { rows } = await this.db.query<{ ids: string | null }>(this.sql.ackMany, [
      leases.map(l => l.id),
      leases.map(l => l.token),
    ]);
    const ids = rows[0]?.ids;
    const acked = ids ? (JSON.parse(ids) as string[]) : [];
    this.vacuum.note(acked.length);
    return acked;
  }

  async settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean> {
    const changed = await this.apply(this.db, lease, settlement, now, now);
    if (changed) this.vacuum.note(1);
    return changed;
  }

  private async apply(
    executor: SqlExecutor,
    lease: Lease,
    settlement: Settlement,
    now: number,
    endedAt: number,
  ): Promise<boolean> {
    const { id, token } = lease;
    let changed: number;
    switch (settlement.kind) {
      case 'ack':
        changed = (await executor.query(this.sql.ack, [id, token])).rowCount;
        break;
      case 'defer':
        changed = (await executor.query(this.sql.defer, [id, token, now, settlement.delayMs]))
          .rowCount;
        break;
      case 'retry':
        changed = (
          await executor.query(this.sql.retry, [
            id,
            token,
            now,
            settlement.delayMs,
            endedAt,
            settlement.error.code,
            settlement.error.message,
          ])
        ).rowCount;
        break;
      case 'dead':
        changed = (
          await executor.query(this.sql.dead, [
            id,
            token,
            now,
            endedAt,
            settlement.error.code,
            settlement.error.message,
            settlement.reason,
          ])
        ).rowCount;
        break;
    }
    return changed > 0;
  }

  async recoverExpiredLeases(request: RecoverRequest): Promise<number> {
    const { queue, now, limit, decide } = request;
    const recovered = await this.db.transaction(async tx => {
      const { rows } = await tx.query<MessageRow>(this.sql.expired, [queue, now, limit]);
      let count = 0;
      for (const row of rows) {
        const decision = decide({
          message: toMessage(row, row.queue),
          leasedAt: row.leased_at,
          leaseExpiresAt: row.lease_expires_at,
        });
        const lease = { id: row.id, token: row.lease_token };
        // The attempt ended when the lease ran out, not when somebody noticed.
        if (await this.apply(tx, lease, decision, now, row.lease_expires_at)) count++;
      }
      return count;
    });
    this.vacuum.note(recovered);
    return recovered;
  }

  async stats(queue: string, now: number): Promise<QueueStats> {
    const { rows } = await this.db.query<QueueStats>(this.sql.stats, [queue, now]);
    const row = rows[0];
    return row === undefined
      ? { ready: 0, scheduled: 0, leased: 0, dead: 0 }
      : { ready: row.ready, scheduled: row.scheduled, leased: row.leased, dead: row.dead };
  }

  async listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<DeadLetter[]> {
    const { where, params } = whereOf(filter);
    if (page.after !== undefined) {
      params.push(page.after.deadAt, page.after.id);
      const a = params.length - 1;
      const b = params.length;
      where.push(
        `(dead_at > $${a}::float8 or (dead_at = $${a}::float8 and id collate "C" > $${b}))`,
      );
    }
    params.push(page.limit);
    const { rows } = await this.db.query<DeadRow>(
      `select ${this.sql.deadColumns} from ${this.schema}.dead_letters
       ${clause(where)} order by dead_at, id collate "C" limit $${params.length}::int`,
      params,
    );
    return rows.map(toDeadLetter);
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    const { rows } = await this.db.query<DeadRow>(
      `select ${this.sql.deadColumns} from ${this.schema}.dead_letters where id = $1`,
      [id],
    );
    const row = rows[0];
    return row === undefined ? undefined : toDeadLetter(row);
  }

  async summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary> {
    const { where, params } = whereOf(filter);
    const { rows } = await this.db.query<{ source_queue: string; n: number }>(
      `select source_queue, count(*)::int as n from ${this.schema}.dead_letters
       ${clause(where)} group by source_queue`,
      params,
    );
    const byQueue: Record<string, number> = {};
    let total = 0;
    for (const row of rows) {
      byQueue[row.source_queue] = row.n;
      total += row.n;
    }
    return { total, byQueue };
  }

  async replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean> {
    const replayed = await this.db.transaction(async tx => {
      const { rowCount } = await tx.query(this.sql.deleteDeadLetter, [id]);
      if (rowCount === 0) return false;
      await this.insert(tx, [record]);
      return true;
    });
    if (replayed) this.wakeUps.notify([record]);
    return replayed;
  }

  async purgeDeadLetters(filter: DeadLetterFilter): Promise<string[]> {
    const { where, params } = whereOf(filter);
    const { rows } = await this.db.query<{ id: string }>(
      `delete from ${this.schema}.dead_letters ${clause(where)} returning id`,
      params,
    );
    return rows.map(r => r.id);
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await this.db.query(this.sql.insertAudit, [
      entry.id,
      entry.at,
      entry.action,
      entry.actor ?? null,
      entry.dryRun,
      JSON.stringify(entry.filter),
      entry.count,
      JSON.stringify(entry.ids),
      entry.note ?? null,
    ]);
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.from !== undefined) where.push(`at >= $${params.push(query.from)}::float8`);
    if (query.to !== undefined) where.push(`at < $${params.push(query.to)}::float8`);
    if (query.action !== undefined) where.push(`action = $${params.push(query.action)}`);
    params.push(query.limit ?? 100);
    const { rows } = await this.db.query<AuditRow>(
      `select id, at, action, actor, dry_run, filter, count, ids, note from ${this.schema}.audit
       ${clause(where)} order by seq desc limit $${params.length}::int`,
      params,
    );
    return rows.map(row => ({
      id: row.id,
      at: row.at,
      action: row.action,
      dryRun: row.dry_run,
      filter: row.filter,
      count: row.count,
      ids: row.ids,
      ...(row.actor === null ? {} : { actor: row.actor }),
      ...(row.note === null ? {} : { note: row.note }),
    }));
  }

  async subscribe(queue: string, listener: () => void): Promise<Disposable> {
    const local = this.wakeUps.subscribe(queue, listener);
    if (this.listenUrl === undefined || this.db.kind !== 'postgres') return local;
    this.listener ??= postgresListener(this.listenUrl, this.schema, q => this.wakeUps.wake(q));
    await this.listener.ready;
    return local;
  }

  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close();
  }
}

type MessageFields = Pick<
  MessageRow,
  'id' | 'type' | 'payload' | 'headers' | 'idempotency_key' | 'attempts' | 'first_seen_at'
>;

function toMessage(row: MessageFields, queue: string): Message {
  const base = {
    id: row.id,
    queue,
    type: row.type,
    payload: row.payload,
    headers: row.headers,
    attempt: row.attempts,
    firstSeenAt: row.first_seen_at,
  };
  // Object.assign, not `{ ...base, idempotencyKey }`: on Node 20 a spread followed by a new
  // property takes V8's slow path, once per message here.
  return row.idempotency_key === null
    ? base
    : Object.assign(base, { idempotencyKey: row.idempotency_key });
}

function toDeadLetter(row: DeadRow): DeadLetter {
  const { idempotencyKey, ...rest } = row.message;
  const message: Message =
    idempotencyKey === null || idempotencyKey === undefined ? rest : { ...rest, idempotencyKey };
  return {
    id: row.id,
    message,
    sourceQueue: row.source_queue,
    reason: row.reason,
    attempts: row.attempts,
    lastError: { code: row.last_error_code, message: row.last_error_message },
    deadAt: row.dead_at,
  };
}

/** The WHERE conditions of a dead letter filter; same rules as `matchesDeadLetterFilter`. */
function whereOf(filter: DeadLetterFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.queue !== undefined) where.push(`source_queue = $${params.push(filter.queue)}`);
  if (filter.type !== undefined) where.push(`type = $${params.push(filter.type)}`);
  if (filter.errorCode !== undefined) {
    where.push(`last_error_code = $${params.push(filter.errorCode)}`);
  }
  if (filter.from !== undefined) where.push(`dead_at >= $${params.push(filter.from)}::float8`);
  if (filter.to !== undefined) where.push(`dead_at < $${params.push(filter.to)}::float8`);
  if (filter.ids !== undefined) where.push(`id = any($${params.push([...filter.ids])}::text[])`);
  if (filter.text !== undefined && filter.text !== '') {
    // strpos, not LIKE: the text is matched literally, % and _ included.
    where.push(`strpos(search, $${params.push(filter.text.toLowerCase())}) > 0`);
  }
  return { where, params };
}

function clause(where: readonly string[]): string {
  return where.length === 0 ? '' : `where ${where.join(' and ')}`;
}

/**
 * Opens the queue backend on a SQL handle and (by default) migrates its schema. The backend does
 * not own `db`: close the handle yourself; `backend.close()` only ends the LISTEN connection.
 */
export async function postgresQueueBackend(
  options: PostgresQueueBackendOptions,
): Promise<PostgresQueueBackend> {
  const where = 'postgresQueueBackend';
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${where}: expected an options object { db, schema? }`);
  }
  for (const key of Object.keys(options)) {
    if (!['db', 'schema', 'listenUrl', 'migrate'].includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown option "${key}"; known options are db, schema, listenUrl, migrate`,
      );
    }
  }
  const db = options.db as Partial<SqlDatabase> | undefined;
  if (db === undefined || typeof db.query !== 'function' || typeof db.transaction !== 'function') {
    throw new InvalidOptionsError(
      `${where}: db must be a SQL handle from openDatabase() (@bulwark/postgres)`,
    );
  }
  const schema = options.schema ?? 'bulwark_messaging';
  if (!isSchemaName(schema)) {
    throw new InvalidOptionsError(
      `${where}: schema must be a lower-case SQL identifier (letters, digits, _), got ${JSON.stringify(schema)}`,
    );
  }
  if (options.listenUrl !== undefined && !/^postgres(ql)?:\/\//.test(options.listenUrl)) {
    throw new InvalidOptionsError(
      `${where}: listenUrl must be a postgres:// URL (the same server as db), or leave it out`,
    );
  }
  const backend = new PostgresQueueBackend(options.db, schema, options.listenUrl);
  if (options.migrate !== false) await backend.migrate();
  return backend;
}

/**
 * From how many messages a PostgreSQL batch goes in by COPY instead of one INSERT. COPY takes a
 * connection of its own and a second round trip for the wake-up, which small batches do not earn
 * back: level at 150–200 messages, 0.6× the time at 300 (figures in the package README). PGlite keeps
 * the INSERT: its COPY (rows read from a `/dev/blob` device) was no faster at 300 or 1,000.
 */
const COPY_MIN_ROWS = 200;

const COPY_COLUMNS = [
  'id',
  'queue',
  'type',
  'payload',
  'headers',
  'idempotency_key',
  'available_at',
  'first_seen_at',
] as const;

/**
 * One message as the values of a COPY row, of the one-message INSERT or (by column) of PGlite's
 * batch INSERT, in {@link COPY_COLUMNS}'s order. Payload and headers as JSON text, so a string
 * payload is stored as a JSON string on every path; a payload JSON cannot represent (undefined)
 * is JSON null.
 */
function messageValues(r: EnqueueRecord): CopyValue[] {
  return [
    r.id,
    r.queue,
    r.type,
    JSON.stringify(r.payload) ?? 'null',
    JSON.stringify(r.headers),
    r.idempotencyKey ?? null,
    r.availableAt,
    r.firstSeenAt,
  ];
}

/** {@link messageValues} of a batch, column by column: the PGlite INSERT's eight arrays. */
function columnArrays(records: readonly EnqueueRecord[]): CopyValue[][] {
  const columns: CopyValue[][] = COPY_COLUMNS.map(() => new Array<CopyValue>(records.length));
  records.forEach((r, i) => {
    messageValues(r).forEach((value, c) => {
      columns[c]![i] = value;
    });
  });
  return columns;
}

/** The queues a batch enqueues into, each once: the ones a NOTIFY wakes. */
function distinctQueues(records: readonly EnqueueRecord[]): string[] {
  return [...new Set(records.map(r => r.queue))];
}
