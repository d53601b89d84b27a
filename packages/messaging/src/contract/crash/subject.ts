/**
 * What an adapter gives the crash harness: a queue backend and an effect store whose writes are
 * exactly-once per message key (an inbox mark and the effect in one transaction). The same
 * `openCrashSubject` runs in the test process (to enqueue and to check) and in each worker child
 * process (to consume), so it must open everything from its serialisable config.
 */
import type { QueueBackend } from '../../backend.js';
import type { Message } from '../../message.js';

export interface CrashSubjectConfig {
  /** Unique per run: scopes effect rows and inbox keys. */
  readonly runId: string;
  /** The queue under test. */
  readonly queue: string;
  /** Adapter-specific strings (a URL, a data folder, a schema). */
  readonly params: Readonly<Record<string, string>>;
}

export interface CrashSubject {
  readonly backend: QueueBackend;
  /**
   * Applies message `index`'s effect unless the message key (`idempotencyKey ?? id`) was seen:
   * the effect row and the key must commit together. True when applied, false for a duplicate.
   * The effect store must NOT deduplicate on its own (no unique index on the index): a second
   * effect has to be visible to the check.
   */
  applyEffect(message: Message, index: number): Promise<boolean>;
  /** Effect rows of this run (all indices, duplicates included). */
  countEffects(): Promise<number>;
  /** Effect rows of this run per message index (index → rows). */
  effectCounts(): Promise<ReadonlyMap<number, number>>;
  /** Releases what `open` opened. */
  close(): Promise<void>;
}

/** The function the adapter's subject module exports under the name `openCrashSubject`. */
export type OpenCrashSubject = (config: CrashSubjectConfig) => Promise<CrashSubject>;
