/**
 * The Redis Streams queue backend. Per queue: a sorted set of waiting messages scored by when
 * they are due, a stream with one consumer group that delivers them (fetch moves due messages
 * into the stream and reads them with XREADGROUP, so the group's pending list is the set of
 * leased entries), a sorted set of lease expiries, a hash per message, and the queue's dead
 * letters. Every state change is one Lua script that takes `now` from the caller, and every
 * settlement checks the lease token (fencing). See lua.ts for the data layout.
 *
 * Lease expiry is ours, not Redis's: a pending entry's idle time runs on the server clock, which a
 * TestClock cannot move and which a consumer's heartbeat does not reset, so leases are expiry
 * times in a sorted set and an expired lease is handed back by a script (XACK + XDEL of the old
 * entry, the message back into the due set) instead of XCLAIM/XAUTOCLAIM.
 */
import type { Redis } from 'ioredis';
import { Redis as RedisClient } from 'ioredis';
import { isBulwarkError, type Disposable } from '@bulwark/core';
import {
  compareDeadLetters,
  MessagingError,
  type AuditEntry,
  type AuditQuery,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPage,
  type DeadLetterSummary,
  type Delivery,
  type EnqueueRecord,
  type FetchRequest,
  type FetchResult,
  type Lease,
  type QueueBackend,
  type QueueStats,
  type RecoverRequest,
  type Settlement,
} from '@bulwark/messaging';
import { appendAuditEntry, listAuditEntries } from './audit-log.js';
import { encodeRecord, toMessage } from './codec.js';
import { DeadLetterStore } from './dead-letter-store.js';
import { queueKeys, queueOfToken, sharedKeys, type SharedKeys } from './keys.js';
import * as lua from './lua.js';
import { resolveOptions, type RedisQueueBackendOptions } from './options.js';
import { luaScript, runScript } from './scripts.js';
import { WakeUps } from './wake-ups.js';

const SCRIPTS = {
  enqueue: luaScript(lua.ENQUEUE),
  fetch: luaScript(lua.FETCH),
  extend: luaScript(lua.EXTEND),
  settle: luaScript(lua.SETTLE),
  expired: luaScript(lua.EXPIRED),
  stats: luaScript(lua.STATS),
  replay: luaScript(lua.REPLAY),
  purge: luaScript(lua.PURGE),
  forgetConsumer: luaScript(lua.FORGET_CONSUMER),
};

/** Dead letter ids remembered with their queue (from listings) so replay finds them in one look. */
const HINTS_MAX = 10_000;
/** Ids per purge script call. */
const PURGE_BATCH = 500;

/** ioredis options for a client made from a URL: a command lost with a connection is not resent
 * (a resent fetch would lease messages nobody receives until their lease runs out). */
const URL_CLIENT_OPTIONS = { maxRetriesPerRequest: 0 } as const;

type FetchRow = [id: string, token: string, attempts: number, rec: string];
type ExpiredRow = [
  id: string,
  token: string,
  attempts: string,
  rec: string,
  leasedAt: string,
  expiresAt: string,
];

export class RedisQueueBackend implements QueueBackend {
  readonly name = 'redis';
  readonly prefix: string;
  /** The ioredis client in use (yours, or the one made from `url`). */
  readonly client: Redis;
  private readonly owned: boolean;
  private readonly consumer: string;
  private readonly instance = globalThis.crypto.randomUUID();
  private readonly shared: SharedKeys;
  private readonly deadLetters: DeadLetterStore;
  private readonly wakeUps: WakeUps;
  /** Queues this backend fetched from: `close()` removes its consumer from their groups. */
  private readonly fetched = new Set<string>();
  private readonly knownQueues = new Set<string>();
  private readonly hints = new Map<string, string>();

  constructor(options: RedisQueueBackendOptions) {
    const resolved = resolveOptions(options);
    this.prefix = resolved.prefix;
    this.consumer = resolved.consumerName;
    this.owned = resolved.client === undefined;
    this.client = resolved.client ?? new RedisClient(resolved.url!, URL_CLIENT_OPTIONS);
    if (this.owned) this.client.on('error', () => undefined); // failures reach callers as BACKEND_ERROR
    this.shared = sharedKeys(this.prefix);
    this.deadLetters = new DeadLetterStore(this.client, this.prefix);
    const url = resolved.url;
    const connect =
      resolved.wakeUps === 'local'
        ? undefined
        : url === undefined
          ? () => this.client.duplicate()
          : () => new RedisClient(url, URL_CLIENT_OPTIONS);
    this.wakeUps = new WakeUps(this.instance, this.shared.wakeChannel, connect);
  }

  enqueue(records: readonly EnqueueRecord[]): Promise<void> {
    return this.guard('enqueue', async () => {
      if (records.length === 0) return;
      const queues = [...new Set(records.map(r => r.queue))];
      await this.register(queues);
      const keys: string[] = [];
      const args: (string | number)[] = [this.instance, this.shared.wakeChannel, records.length];
      for (const r of records) {
        const k = queueKeys(this.prefix, r.queue);
        keys.push(k.due, k.seq);
        args.push(k.tag, r.id, r.availableAt, encodeRecord(r), r.queue);
      }
      await runScript(this.client, SCRIPTS.enqueue, keys, args);
      for (const queue of queues) this.wakeUps.wake(queue);
    });
  }

  fetch(request: FetchRequest): Promise<FetchResult> {
    return this.guard('fetch', async () => {
      const { queue, limit, leaseMs, now } = request;
      const k = queueKeys(this.prefix, queue);
      const expiresAt = now + leaseMs;
      this.fetched.add(queue);
      const [rows, nextAt] = (await runScript(
        this.client,
        SCRIPTS.fetch,
        [k.stream, k.due, k.leases],
        [k.tag, now, limit, expiresAt, this.consumer, globalThis.crypto.randomUUID(), `:${queue}`],
      )) as [FetchRow[], string];
      const deliveries: Delivery[] = rows.map(([id, token, attempts, rec]) => ({
        message: toMessage(id, queue, attempts, rec),
        lease: { id, token },
        leaseExpiresAt: expiresAt,
      }));
      return nextAt === '' ? { deliveries } : { deliveries, nextAvailableAt: Number(nextAt) };
    });
  }

  extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<string[]> {
    return this.guard('extendLeases', async () => {
      const byQueue = new Map<string, Lease[]>();
      for (const lease of leases) {
        const queue = queueOfToken(lease.token);
        if (queue === undefined) continue; // not a token of ours: not held
        let list = byQueue.get(queue);
        if (list === undefined) byQueue.set(queue, (list = []));
        list.push(lease);
      }
      const held = await Promise.all(
        [...byQueue].map(async ([queue, list]) => {
          const k = queueKeys(this.prefix, queue);
          const args: (string | number)[] = [k.tag, now + leaseMs];
          for (const l of list) args.push(l.id, l.token);
          return (await runScript(this.client, SCRIPTS.extend, [k.leases], args)) as string[];
        }),
      );
      return held.flat();
    });
  }

  settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean> {
    return this.guard('settle', () => this.apply(lease, settlement, now, now, undefined));
  }

  recoverExpiredLeases(request: RecoverRequest): Promise<number> {
    return this.guard('recoverExpiredLeases', async () => {
      const { queue, now, limit, decide } = request;
      const k = queueKeys(this.prefix, queue);
      const rows = (await runScript(
        this.client,
        SCRIPTS.expired,
        [k.leases],
        [k.tag, now, limit],
      )) as ExpiredRow[];
      const settled = await Promise.all(
        rows.map(([id, token, attempts, rec, leasedAt, expiresAt]) => {
          const leaseExpiresAt = Number(expiresAt);
          const decision = decide({
            message: toMessage(id, queue, Number(attempts), rec),
            leasedAt: Number(leasedAt),
            leaseExpiresAt,
          });
          // The attempt ended when the lease ran out, not when somebody noticed; and only a lease
          // still expired (not extended meanwhile) is taken back.
          return this.apply({ id, token }, decision, now, leaseExpiresAt, now);
        }),
      );
      return settled.filter(Boolean).length;
    });
  }

  stats(queue: string, now: number): Promise<QueueStats> {
    return this.guard('stats', async () => {
      const k = queueKeys(this.prefix, queue);
      const [ready, scheduled, leased, dead] = (await runScript(
        this.client,
        SCRIPTS.stats,
        [k.stream, k.due, k.leases, k.dead],
        [now],
      )) as [number, number, number, number];
      return { ready, scheduled, leased, dead };
    });
  }

  listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<DeadLetter[]> {
    return this.guard('listDeadLetters', async () => {
      const queues = await this.deadLetters.queues(filter);
      const perQueue = await Promise.all(
        queues.map(q => this.deadLetters.scan(q, filter, page.after, page.limit)),
      );
      const letters = perQueue.flat().sort(compareDeadLetters).slice(0, page.limit);
      for (const letter of letters) this.hint(letter.id, letter.sourceQueue);
      return letters;
    });
  }

  getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return this.guard('getDeadLetter', async () => {
      const queue = await this.deadLetters.queueOf(id, this.hints.get(id));
      if (queue === undefined) return undefined;
      const [letter] = await this.deadLetters.load(queue, [id]);
      return letter;
    });
  }

  summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary> {
    return this.guard('summarizeDeadLetters', async () => {
      const queues = await this.deadLetters.queues(filter);
      const counts = await Promise.all(queues.map(q => this.deadLetters.count(q, filter)));
      const byQueue: Record<string, number> = {};
      let total = 0;
      queues.forEach((queue, i) => {
        const n = counts[i] ?? 0;
        if (n === 0) return;
        byQueue[queue] = n;
        total += n;
      });
      return { total, byQueue };
    });
  }

  replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean> {
    return this.guard('replayDeadLetter', async () => {
      const source = await this.deadLetters.queueOf(id, this.hints.get(id));
      this.hints.delete(id);
      if (source === undefined) return false;
      await this.register([record.queue]);
      const from = queueKeys(this.prefix, source);
      const to = queueKeys(this.prefix, record.queue);
      const replayed = await runScript(
        this.client,
        SCRIPTS.replay,
        [from.dead, to.due, to.seq],
        [
          from.tag,
          id,
          this.instance,
          this.shared.wakeChannel,
          to.tag,
          record.id,
          record.availableAt,
          encodeRecord(record),
          record.queue,
        ],
      );
      if (replayed !== 1) return false;
      this.wakeUps.wake(record.queue);
      return true;
    });
  }

  purgeDeadLetters(filter: DeadLetterFilter): Promise<string[]> {
    return this.guard('purgeDeadLetters', async () => {
      const deleted: string[] = [];
      for (const queue of await this.deadLetters.queues(filter)) {
        const letters = await this.deadLetters.scan(queue, filter, undefined, Infinity);
        const k = queueKeys(this.prefix, queue);
        for (let i = 0; i < letters.length; i += PURGE_BATCH) {
          const ids = letters.slice(i, i + PURGE_BATCH).map(l => l.id);
          const gone = (await runScript(
            this.client,
            SCRIPTS.purge,
            [k.dead],
            [k.tag, ...ids],
          )) as string[];
          deleted.push(...gone);
        }
      }
      for (const id of deleted) this.hints.delete(id);
      return deleted;
    });
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.guard('appendAudit', () => appendAuditEntry(this.client, this.shared.audit, entry));
  }

  listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.guard('listAudit', () => listAuditEntries(this.client, this.shared.audit, query));
  }

  subscribe(queue: string, listener: () => void): Promise<Disposable> {
    return this.wakeUps.subscribe(queue, listener);
  }

  /** Ends the wake-up connection and, if it made it, the client; a client you passed stays open. */
  async close(): Promise<void> {
    await Promise.allSettled(
      [...this.fetched].map(queue =>
        runScript(
          this.client,
          SCRIPTS.forgetConsumer,
          [queueKeys(this.prefix, queue).stream],
          [this.consumer],
        ),
      ),
    );
    this.fetched.clear();
    await this.wakeUps.close();
    if (this.owned) await this.client.quit().catch(() => this.client.disconnect());
  }

  private async apply(
    lease: Lease,
    settlement: Settlement,
    now: number,
    endedAt: number,
    expiredBy: number | undefined,
  ): Promise<boolean> {
    const queue = queueOfToken(lease.token);
    if (queue === undefined) return false;
    const k = queueKeys(this.prefix, queue);
    const delayMs =
      settlement.kind === 'retry' || settlement.kind === 'defer' ? settlement.delayMs : 0;
    const error =
      settlement.kind === 'retry' || settlement.kind === 'dead' ? settlement.error : undefined;
    const applied = await runScript(
      this.client,
      SCRIPTS.settle,
      [k.stream, k.due, k.leases, k.dead],
      [
        k.tag,
        lease.id,
        lease.token,
        settlement.kind,
        now,
        now + delayMs,
        endedAt,
        error?.code ?? '',
        error?.message ?? '',
        settlement.kind === 'dead' ? settlement.reason : '',
        expiredBy ?? '',
      ],
    );
    return applied === 1;
  }

  /** Adds queues to the registry that cross-queue dead letter searches walk (once per process). */
  private async register(queues: readonly string[]): Promise<void> {
    const fresh = queues.filter(q => !this.knownQueues.has(q));
    if (fresh.length === 0) return;
    await this.client.sadd(this.shared.queues, ...fresh);
    for (const q of fresh) this.knownQueues.add(q);
  }

  private hint(id: string, queue: string): void {
    if (this.hints.size >= HINTS_MAX) this.hints.clear();
    this.hints.set(id, queue);
  }

  /** Runs `operation`, translating driver errors into MessagingError BACKEND_ERROR. */
  private async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isBulwarkError(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new MessagingError(
        'BACKEND_ERROR',
        `redis queue backend: ${operation} failed: ${reason}`,
        {
          cause: error,
          retryable: true,
        },
      );
    }
  }
}

/**
 * A queue backend on Redis Streams. Options are validated at once; the connection (for `url`)
 * opens in the background, and commands sent before it is up wait for it.
 */
export function redisQueueBackend(options: RedisQueueBackendOptions): RedisQueueBackend {
  return new RedisQueueBackend(options);
}
