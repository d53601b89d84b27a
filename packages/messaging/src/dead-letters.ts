/**
 * Operations on the dead letter queue: list and search, show, replay (filtered, previewed,
 * rate-limited, optionally with an edited payload) and purge. Replays and purges, dry runs
 * included, are written to the backend's audit log with who asked, the filter and the ids.
 */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import type {
  AuditEntry,
  AuditQuery,
  DeadLetter,
  DeadLetterCursor,
  DeadLetterFilter,
  QueueBackend,
} from './backend.js';
import { MessagingError } from './errors.js';
import {
  REPLAY_COUNT_HEADER,
  REPLAYED_FROM_HEADER,
  newMessageId,
  type EnqueueRecord,
} from './message.js';
import { checkBackend } from './producer.js';
import {
  checkClock,
  describeValue,
  rejectUnknownKeys,
  requireInteger,
  requireNumber,
  requireObject,
} from './validate.js';

export interface DeadLetterOpsOptions {
  backend: QueueBackend;
  /** Times of audit entries and replayed messages. Default: the system clock. */
  clock?: Clock;
}

export interface ListOptions {
  /** Page size. Default 100, at most 1_000. */
  limit?: number;
  /** Continue after this position (the previous page's `next`). */
  after?: DeadLetterCursor;
}

export interface DeadLetterList {
  readonly items: readonly DeadLetter[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next?: DeadLetterCursor;
}

export interface ReplayOptions {
  /** Which dead letters. Default: all. */
  filter?: DeadLetterFilter;
  /** Only report what would be replayed. Default false. */
  dryRun?: boolean;
  /** Replay at most this many. Default: all that match. */
  limit?: number;
  /** At most this many messages per second (spaced evenly on the clock). Default: no limit. */
  ratePerSecond?: number;
  /**
   * A replacement payload. Only with a filter that matches exactly one dead letter (for example
   * `{ ids: [id] }`); use `edit` for many. The idempotency key is kept either way.
   */
  payload?: unknown;
  /** Computes each replayed message's payload from its dead letter (for bulk fixes). */
  edit?: (letter: DeadLetter) => unknown;
  /** Replay into this queue instead of each message's source queue. */
  toQueue?: string;
  /** Who asked, for the audit log. */
  actor?: string;
  /** Stops a long (rate-limited) replay between messages; what was replayed stays replayed. */
  signal?: AbortSignal;
}

export interface ReplayResult {
  readonly dryRun: boolean;
  /** How many dead letters matched the filter (before `limit`). */
  readonly matched: number;
  /** Per source queue, of those matched. */
  readonly byQueue: Readonly<Record<string, number>>;
  /** Dead letter ids replayed (in a dry run: that would be, at most 1_000). */
  readonly ids: readonly string[];
  /** The new message ids, in the order of `ids` (empty in a dry run). */
  readonly messageIds: readonly string[];
  /** Matched but gone before their turn (replayed or purged by someone else meanwhile). */
  readonly skipped: number;
}

export interface PurgeOptions {
  /** Which dead letters. Required; `{}` (everything) also needs `all: true`. */
  filter: DeadLetterFilter;
  /** Confirms that an empty filter really means every dead letter. */
  all?: boolean;
  dryRun?: boolean;
  actor?: string;
}

export interface PurgeResult {
  readonly dryRun: boolean;
  readonly count: number;
  readonly byQueue: Readonly<Record<string, number>>;
  /** Purged ids (none in a dry run). */
  readonly ids: readonly string[];
}

export interface DeadLetterOps {
  list(filter?: DeadLetterFilter, options?: ListOptions): Promise<DeadLetterList>;
  /** Throws `MessagingError` DEAD_LETTER_NOT_FOUND when there is no such dead letter. */
  show(id: string): Promise<DeadLetter>;
  replay(options?: ReplayOptions): Promise<ReplayResult>;
  purge(options: PurgeOptions): Promise<PurgeResult>;
  /** Newest first. */
  audit(query?: AuditQuery): Promise<readonly AuditEntry[]>;
}

const AUDIT_IDS_MAX = 1_000;
const FILTER_KEYS = ['queue', 'type', 'errorCode', 'from', 'to', 'text', 'ids'];
const REPLAY_KEYS = [
  'filter',
  'dryRun',
  'limit',
  'ratePerSecond',
  'payload',
  'edit',
  'toQueue',
  'actor',
  'signal',
];

export function deadLetters(options: DeadLetterOpsOptions): DeadLetterOps {
  const where = 'deadLetters';
  requireObject(where, options);
  rejectUnknownKeys(where, options, ['backend', 'clock']);
  checkBackend(where, options.backend);
  const backend = options.backend;
  const clock = checkClock(where, options.clock) ?? systemClock;

  async function audit(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    const at = clock.wallNow();
    await backend.appendAudit({ id: newMessageId(at), at, ...entry });
  }

  return {
    async list(filter = {}, listOptions = {}) {
      checkFilter('list', filter);
      const limit = requireInteger('list', 'limit', listOptions.limit ?? 100, 1);
      if (limit > 1_000) {
        throw new InvalidOptionsError(`list: limit must be <= 1000, got ${limit}; page with next`);
      }
      const page =
        listOptions.after === undefined ? { limit } : { limit, after: listOptions.after };
      const items = await backend.listDeadLetters(filter, page);
      const last = items[items.length - 1];
      return items.length === limit && last !== undefined
        ? { items, next: { deadAt: last.deadAt, id: last.id } }
        : { items };
    },

    async show(id) {
      const letter = await backend.getDeadLetter(id);
      if (letter === undefined) {
        throw new MessagingError('DEAD_LETTER_NOT_FOUND', `no dead letter with id ${id}`);
      }
      return letter;
    },

    async replay(replayOptions = {}) {
      const w = 'replay';
      requireObject(w, replayOptions);
      rejectUnknownKeys(w, replayOptions, REPLAY_KEYS);
      const filter = replayOptions.filter ?? {};
      checkFilter(w, filter);
      const dryRun = replayOptions.dryRun === true;
      const limit =
        replayOptions.limit === undefined
          ? Infinity
          : requireInteger(w, 'limit', replayOptions.limit, 1);
      const spacingMs =
        replayOptions.ratePerSecond === undefined
          ? 0
          : 1_000 /
            requireNumber(w, 'ratePerSecond', replayOptions.ratePerSecond, Number.MIN_VALUE);
      const hasPayload = 'payload' in replayOptions;
      if (hasPayload && replayOptions.edit !== undefined) {
        throw new InvalidOptionsError(`${w}: give payload or edit, not both`);
      }
      if (replayOptions.edit !== undefined && typeof replayOptions.edit !== 'function') {
        throw new InvalidOptionsError(
          `${w}: edit must be a function (deadLetter) => payload, got ${describeValue(replayOptions.edit)}`,
        );
      }
      if (
        replayOptions.toQueue !== undefined &&
        (typeof replayOptions.toQueue !== 'string' || replayOptions.toQueue === '')
      ) {
        throw new InvalidOptionsError(`${w}: toQueue must be a non-empty string`);
      }
      const summary = await backend.summarizeDeadLetters(filter);
      if (hasPayload && summary.total !== 1) {
        throw new InvalidOptionsError(
          `${w}: payload replaces one message's payload, but the filter matches ${summary.total}; narrow it to one (filter: { ids: [id] }) or use edit`,
        );
      }
      const base = {
        action: 'replay' as const,
        dryRun,
        filter,
        ...(replayOptions.actor === undefined ? {} : { actor: replayOptions.actor }),
      };

      if (dryRun) {
        const ids: string[] = [];
        let after: DeadLetterCursor | undefined;
        const want = Math.min(limit, summary.total, AUDIT_IDS_MAX);
        while (ids.length < want) {
          const page = await backend.listDeadLetters(
            filter,
            pageOf(Math.min(500, want - ids.length), after),
          );
          if (page.length === 0) break;
          for (const letter of page) ids.push(letter.id);
          const last = page[page.length - 1];
          if (last !== undefined) after = { deadAt: last.deadAt, id: last.id };
        }
        await audit({ ...base, count: Math.min(limit, summary.total), ids });
        return {
          dryRun,
          matched: summary.total,
          byQueue: summary.byQueue,
          ids,
          messageIds: [],
          skipped: 0,
        };
      }

      const ids: string[] = [];
      const messageIds: string[] = [];
      let skipped = 0;
      let after: DeadLetterCursor | undefined;
      let failure: Error | undefined;
      try {
        outer: while (ids.length < limit) {
          const page = await backend.listDeadLetters(
            filter,
            pageOf(Math.min(100, limit - ids.length), after),
          );
          if (page.length === 0) break;
          for (const letter of page) {
            after = { deadAt: letter.deadAt, id: letter.id };
            if (ids.length >= limit) break outer;
            if (replayOptions.signal?.aborted === true) break outer;
            if (spacingMs > 0 && ids.length > 0) {
              await sleep(clock, spacingMs, replayOptions.signal);
              // An abort ends the wait early: it must also stop the replay it was waiting for.
              if (isAborted(replayOptions.signal)) break outer;
            }
            const payload = hasPayload
              ? replayOptions.payload
              : replayOptions.edit !== undefined
                ? replayOptions.edit(letter)
                : letter.message.payload;
            const record = replayRecord(letter, payload, replayOptions.toQueue, clock.wallNow());
            if (await backend.replayDeadLetter(letter.id, record)) {
              ids.push(letter.id);
              messageIds.push(record.id);
            } else {
              skipped++;
            }
          }
        }
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      const note = [
        hasPayload || replayOptions.edit !== undefined ? 'payload edited' : '',
        replayOptions.toQueue === undefined ? '' : `to queue ${replayOptions.toQueue}`,
        failure === undefined ? '' : `interrupted: ${failure.message}`,
      ]
        .filter(s => s !== '')
        .join('; ');
      await audit({
        ...base,
        count: ids.length,
        ids: ids.slice(0, AUDIT_IDS_MAX),
        ...(note === '' ? {} : { note }),
      });
      if (failure !== undefined) throw failure;
      return { dryRun, matched: summary.total, byQueue: summary.byQueue, ids, messageIds, skipped };
    },

    async purge(purgeOptions) {
      const w = 'purge';
      requireObject(w, purgeOptions);
      rejectUnknownKeys(w, purgeOptions, ['filter', 'all', 'dryRun', 'actor']);
      if (purgeOptions.filter === undefined) {
        throw new InvalidOptionsError(
          `${w}: filter is required, for example { queue: 'emails' }; to purge everything pass filter: {} and all: true`,
        );
      }
      checkFilter(w, purgeOptions.filter);
      const filter = purgeOptions.filter;
      const empty = Object.values(filter).every(v => v === undefined);
      if (empty && purgeOptions.all !== true) {
        throw new InvalidOptionsError(
          `${w}: an empty filter purges every dead letter; pass all: true to confirm, or narrow the filter`,
        );
      }
      const dryRun = purgeOptions.dryRun === true;
      const base = {
        action: 'purge' as const,
        dryRun,
        filter,
        ...(purgeOptions.actor === undefined ? {} : { actor: purgeOptions.actor }),
      };
      const summary = await backend.summarizeDeadLetters(filter);
      if (dryRun) {
        await audit({ ...base, count: summary.total, ids: [] });
        return { dryRun, count: summary.total, byQueue: summary.byQueue, ids: [] };
      }
      const ids = await backend.purgeDeadLetters(filter);
      await audit({ ...base, count: ids.length, ids: ids.slice(0, AUDIT_IDS_MAX) });
      return { dryRun, count: ids.length, byQueue: summary.byQueue, ids };
    },

    audit(query = {}) {
      return backend.listAudit(query);
    },
  };
}

function pageOf(limit: number, after: DeadLetterCursor | undefined) {
  return after === undefined ? { limit } : { limit, after };
}

/**
 * The message a replay enqueues: a new id (the dead letter's id goes in a header), the original
 * type, headers and first-seen time, and the idempotency key — the original message's id when it
 * had none, so an inbox still sees the replay as the same effect.
 */
export function replayRecord(
  letter: DeadLetter,
  payload: unknown,
  toQueue: string | undefined,
  now: number,
): EnqueueRecord {
  const original = letter.message;
  const previous = Number(original.headers[REPLAY_COUNT_HEADER] ?? '0');
  return {
    id: newMessageId(now),
    queue: toQueue ?? letter.sourceQueue,
    type: original.type,
    payload,
    headers: {
      ...original.headers,
      [REPLAYED_FROM_HEADER]: letter.id,
      [REPLAY_COUNT_HEADER]: String((Number.isFinite(previous) ? previous : 0) + 1),
    },
    idempotencyKey: original.idempotencyKey ?? original.id,
    availableAt: now,
    firstSeenAt: original.firstSeenAt,
  };
}

function checkFilter(where: string, filter: unknown): asserts filter is DeadLetterFilter {
  requireObject(`${where}: filter`, filter);
  rejectUnknownKeys(`${where}: filter`, filter as object, FILTER_KEYS);
  const f = filter as DeadLetterFilter;
  for (const key of ['queue', 'type', 'errorCode', 'text'] as const) {
    if (f[key] !== undefined && typeof f[key] !== 'string') {
      throw new InvalidOptionsError(`${where}: filter.${key} must be a string`);
    }
  }
  for (const key of ['from', 'to'] as const) {
    if (f[key] !== undefined && !Number.isFinite(f[key])) {
      throw new InvalidOptionsError(`${where}: filter.${key} must be epoch milliseconds`);
    }
  }
  if (f.ids !== undefined && (!Array.isArray(f.ids) || f.ids.some(id => typeof id !== 'string'))) {
    throw new InvalidOptionsError(`${where}: filter.ids must be an array of strings`);
  }
}

/** A function, not an inline check, so TypeScript does not keep `aborted` narrowed across an await. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise(resolve => {
    const timer = clock.setTimer(done, ms);
    function done(): void {
      timer.clear();
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
