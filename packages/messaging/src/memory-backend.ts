/**
 * An in-memory `QueueBackend`: the reference implementation of the port, for unit tests, examples
 * and single-process tools that can afford to lose everything on exit. Nothing is persisted and
 * nothing is shared between processes. Fetching scans the queue (O(n) per fetch), which is fine
 * for tests and small workloads; use the PGlite backend (`@bulwark/postgres`) for durable
 * embedded queues.
 */
import type { Disposable } from '@bulwark/core';
import type {
  AuditEntry,
  AuditQuery,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPage,
  DeadLetterSummary,
  Delivery,
  FetchRequest,
  FetchResult,
  Lease,
  QueueBackend,
  QueueStats,
  RecoverRequest,
  Settlement,
  AttemptRecord,
} from './backend.js';
import { compareDeadLetters, matchesDeadLetterFilter } from './dead-letter-filter.js';
import type { EnqueueRecord, Message } from './message.js';

interface Row {
  readonly record: EnqueueRecord;
  readonly seq: number;
  availableAt: number;
  attempts: number;
  state: 'ready' | 'leased';
  token: string | undefined;
  leasedAt: number;
  leaseExpiresAt: number;
  history: AttemptRecord[];
}

export interface MemoryQueueBackendOptions {
  /** Makes lease tokens; default random UUIDs. Tests may pass a counter. */
  newToken?: () => string;
}

export class MemoryQueueBackend implements QueueBackend {
  readonly name = 'memory';
  private readonly rows = new Map<string, Row>();
  private readonly dead = new Map<string, DeadLetter>();
  private readonly audit: AuditEntry[] = [];
  private readonly listeners = new Map<string, Set<() => void>>();
  private seq = 0;
  private readonly newToken: () => string;

  constructor(options: MemoryQueueBackendOptions = {}) {
    this.newToken = options.newToken ?? (() => globalThis.crypto.randomUUID());
  }

  enqueue(records: readonly EnqueueRecord[]): Promise<void> {
    const queues = new Set<string>();
    for (const record of records) {
      // An id still queued is a re-publish (an outbox relay retrying): store it once.
      if (this.rows.has(record.id)) continue;
      this.insert(record);
      queues.add(record.queue);
    }
    for (const queue of queues) this.wake(queue);
    return Promise.resolve();
  }

  fetch(request: FetchRequest): Promise<FetchResult> {
    const { queue, limit, leaseMs, now } = request;
    const ready: Row[] = [];
    let nextAvailableAt: number | undefined;
    for (const row of this.rows.values()) {
      if (row.record.queue !== queue || row.state !== 'ready') continue;
      if (row.availableAt <= now) ready.push(row);
      else if (nextAvailableAt === undefined || row.availableAt < nextAvailableAt) {
        nextAvailableAt = row.availableAt;
      }
    }
    ready.sort((a, b) => a.availableAt - b.availableAt || a.seq - b.seq);
    const deliveries: Delivery[] = [];
    for (const row of ready.slice(0, limit)) {
      row.state = 'leased';
      row.attempts += 1;
      row.token = this.newToken();
      row.leasedAt = now;
      row.leaseExpiresAt = now + leaseMs;
      deliveries.push({
        message: toMessage(row),
        lease: { id: row.record.id, token: row.token },
        leaseExpiresAt: row.leaseExpiresAt,
      });
    }
    if (deliveries.length === limit) return Promise.resolve({ deliveries });
    if (ready.length > limit) nextAvailableAt = now;
    return Promise.resolve(
      nextAvailableAt === undefined ? { deliveries } : { deliveries, nextAvailableAt },
    );
  }

  extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<string[]> {
    const held: string[] = [];
    for (const lease of leases) {
      const row = this.current(lease);
      // An expired lease that nobody recovered yet is still ours: extending it is harmless.
      if (row === undefined) continue;
      row.leaseExpiresAt = now + leaseMs;
      held.push(lease.id);
    }
    return Promise.resolve(held);
  }

  settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean> {
    const row = this.current(lease);
    if (row === undefined) return Promise.resolve(false);
    this.apply(row, settlement, now, row.leasedAt);
    return Promise.resolve(true);
  }

  ackMany(leases: readonly Lease[], now: number): Promise<readonly string[]> {
    const acked: string[] = [];
    for (const lease of leases) {
      const row = this.current(lease);
      if (row === undefined) continue;
      this.apply(row, { kind: 'ack' }, now, row.leasedAt);
      acked.push(lease.id);
    }
    return Promise.resolve(acked);
  }

  recoverExpiredLeases(request: RecoverRequest): Promise<number> {
    const expired: Row[] = [];
    for (const row of this.rows.values()) {
      if (
        row.record.queue === request.queue &&
        row.state === 'leased' &&
        row.leaseExpiresAt <= request.now
      ) {
        expired.push(row);
      }
    }
    expired.sort((a, b) => a.leaseExpiresAt - b.leaseExpiresAt || a.seq - b.seq);
    const chosen = expired.slice(0, request.limit);
    for (const row of chosen) {
      const decision = request.decide({
        message: toMessage(row),
        leasedAt: row.leasedAt,
        leaseExpiresAt: row.leaseExpiresAt,
      });
      // The attempt ended when the lease ran out, not when somebody noticed.
      this.apply(row, decision, request.now, row.leasedAt, row.leaseExpiresAt);
    }
    return Promise.resolve(chosen.length);
  }

  stats(queue: string, now: number): Promise<QueueStats> {
    let ready = 0;
    let scheduled = 0;
    let leased = 0;
    let dead = 0;
    for (const row of this.rows.values()) {
      if (row.record.queue !== queue) continue;
      if (row.state === 'leased') leased++;
      else if (row.availableAt <= now) ready++;
      else scheduled++;
    }
    for (const letter of this.dead.values()) if (letter.sourceQueue === queue) dead++;
    return Promise.resolve({ ready, scheduled, leased, dead });
  }

  listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<DeadLetter[]> {
    const after = page.after;
    const matching = [...this.dead.values()]
      .filter(letter => matchesDeadLetterFilter(letter, filter))
      .filter(letter => after === undefined || compareDeadLetters(letter, after) > 0)
      .sort(compareDeadLetters);
    return Promise.resolve(matching.slice(0, page.limit));
  }

  getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return Promise.resolve(this.dead.get(id));
  }

  summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary> {
    const byQueue: Record<string, number> = {};
    let total = 0;
    for (const letter of this.dead.values()) {
      if (!matchesDeadLetterFilter(letter, filter)) continue;
      total++;
      byQueue[letter.sourceQueue] = (byQueue[letter.sourceQueue] ?? 0) + 1;
    }
    return Promise.resolve({ total, byQueue });
  }

  replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean> {
    if (!this.dead.has(id)) return Promise.resolve(false);
    this.dead.delete(id);
    if (!this.rows.has(record.id)) this.insert(record);
    this.wake(record.queue);
    return Promise.resolve(true);
  }

  purgeDeadLetters(filter: DeadLetterFilter): Promise<string[]> {
    const ids: string[] = [];
    for (const letter of this.dead.values()) {
      if (matchesDeadLetterFilter(letter, filter)) ids.push(letter.id);
    }
    for (const id of ids) this.dead.delete(id);
    return Promise.resolve(ids);
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    this.audit.push(entry);
    return Promise.resolve();
  }

  listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    const entries = this.audit
      .filter(
        e =>
          (query.from === undefined || e.at >= query.from) &&
          (query.to === undefined || e.at < query.to) &&
          (query.action === undefined || e.action === query.action),
      )
      .reverse();
    return Promise.resolve(entries.slice(0, query.limit ?? 100));
  }

  subscribe(queue: string, listener: () => void): Promise<Disposable> {
    let set = this.listeners.get(queue);
    if (set === undefined) this.listeners.set(queue, (set = new Set()));
    const mine = set;
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry = (): void => listener();
    mine.add(entry);
    return Promise.resolve({ dispose: () => void mine.delete(entry) });
  }

  private insert(record: EnqueueRecord): void {
    this.rows.set(record.id, {
      record,
      seq: this.seq++,
      availableAt: record.availableAt,
      attempts: 0,
      state: 'ready',
      token: undefined,
      leasedAt: 0,
      leaseExpiresAt: 0,
      history: [],
    });
  }

  private current(lease: Lease): Row | undefined {
    const row = this.rows.get(lease.id);
    return row !== undefined && row.state === 'leased' && row.token === lease.token
      ? row
      : undefined;
  }

  private apply(
    row: Row,
    settlement: Settlement,
    now: number,
    startedAt: number,
    endedAt = now,
  ): void {
    row.token = undefined;
    switch (settlement.kind) {
      case 'ack':
        this.rows.delete(row.record.id);
        return;
      case 'defer':
        row.attempts -= 1;
        row.state = 'ready';
        row.availableAt = now + settlement.delayMs;
        return;
      case 'retry':
        row.history.push({ attempt: row.attempts, startedAt, endedAt, ...settlement.error });
        row.state = 'ready';
        row.availableAt = now + settlement.delayMs;
        return;
      case 'dead':
        row.history.push({ attempt: row.attempts, startedAt, endedAt, ...settlement.error });
        this.rows.delete(row.record.id);
        this.dead.set(row.record.id, {
          id: row.record.id,
          message: toMessage(row),
          sourceQueue: row.record.queue,
          reason: settlement.reason,
          attempts: [...row.history],
          lastError: { code: settlement.error.code, message: settlement.error.message },
          deadAt: now,
        });
        return;
    }
  }

  private wake(queue: string): void {
    const set = this.listeners.get(queue);
    if (set === undefined) return;
    for (const listener of [...set]) queueMicrotask(listener);
  }
}

function toMessage(row: Row): Message {
  const r = row.record;
  const base = {
    id: r.id,
    queue: r.queue,
    type: r.type,
    payload: r.payload,
    headers: r.headers,
    attempt: row.attempts,
    firstSeenAt: r.firstSeenAt,
  };
  // Object.assign, not a spread: see toRecord in producer.ts.
  return r.idempotencyKey === undefined
    ? base
    : Object.assign(base, { idempotencyKey: r.idempotencyKey });
}

/** A fresh in-memory backend. See {@link MemoryQueueBackend} for what it is (and is not) for. */
export function memoryQueueBackend(options: MemoryQueueBackendOptions = {}): MemoryQueueBackend {
  return new MemoryQueueBackend(options);
}
