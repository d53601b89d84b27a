/** Messages between the crash harness (parent) and its worker processes, over the fork IPC channel. */
import type { QueueStats } from '../../backend.js';
import type { CrashSubjectConfig } from './subject.js';

/** Environment variable that carries a worker's JSON config. */
export const CRASH_WORKER_ENV = 'BULWARK_CRASH_WORKER';

export interface CrashWorkerConfig {
  /** Absolute path of a built ESM module exporting `openCrashSubject` (see subject.ts). */
  readonly subjectModule: string;
  readonly subject: CrashSubjectConfig;
  readonly consumer: {
    readonly concurrency: number;
    readonly prefetch: number;
    readonly leaseMs: number;
    readonly maxAttempts: number;
    readonly pollIntervalMs: number;
    readonly backoffBaseMs: number;
    readonly backoffMaxMs: number;
  };
  /** The poison has been "fixed": poison messages succeed like the others. */
  readonly fixPoison: boolean;
  /** Seeds the backoff jitter. */
  readonly seed: number;
  /** How often the worker reports progress, ms. */
  readonly progressIntervalMs: number;
}

export interface CrashProgress {
  /** Effect rows of the run so far: those found at start plus those this worker applied. */
  readonly effects: number;
  /** Dead letters from the queue so far: those found at start plus those this worker made. */
  readonly dead: number;
  /** Effects this worker applied (committed). */
  readonly applied: number;
  /** Deliveries whose effect the inbox had already seen (redeliveries after a crash). */
  readonly duplicates: number;
  /** Expired leases this worker recovered (another worker's in-flight messages). */
  readonly recovered: number;
  /**
   * The queue as the backend sees it, read only when this worker holds no lease (the only time
   * it can be empty): a stats query per report would slow an embedded backend noticeably.
   */
  readonly stats?: QueueStats;
}

export type WorkerToParent =
  | ({ readonly type: 'progress' } & CrashProgress)
  | ({ readonly type: 'stopped' } & CrashProgress)
  /**
   * Answer to `hold`: message `index`'s effect has committed and its handler will never return,
   * so the message is not acked. The parent kills the worker now: the crash lands exactly in the
   * window between the effect and the ack, the one only an inbox makes safe.
   */
  | { readonly type: 'held'; readonly index: number }
  /** The inbox refused a redelivered message's effect (sent before that delivery is acked). */
  | { readonly type: 'duplicate'; readonly index: number }
  | { readonly type: 'failed'; readonly error: string };

export type ParentToWorker = { readonly type: 'stop' } | { readonly type: 'hold' };

const WORKER_MESSAGE_TYPES: readonly string[] = [
  'progress',
  'stopped',
  'held',
  'duplicate',
  'failed',
];

export function isWorkerMessage(value: unknown): value is WorkerToParent {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return typeof type === 'string' && WORKER_MESSAGE_TYPES.includes(type);
}

/** Nothing left to deliver: no ready, scheduled or leased message. */
export function drained(stats: QueueStats | undefined): boolean {
  return stats !== undefined && stats.ready + stats.scheduled + stats.leased === 0;
}
