/** A consumer for the wake-up tests of backends that wake consumers in other processes. */
import { consume, type Consumer } from '../consumer.js';
import type { QueueBackend } from '../backend.js';

export interface WakeOnlyConsumer {
  readonly consumer: Consumer;
  /** Resolves when the consumer's handler has run once. */
  readonly delivered: Promise<void>;
}

/**
 * A consumer of `queue` that polls once an hour, so in a test only a wake-up (LISTEN/NOTIFY,
 * PUBLISH, ...) can deliver it a message: its handler resolves `delivered`. Wait for
 * `consumer.whenIdle()` before sending, and stop it afterwards.
 */
export function wakeOnlyConsumer(backend: QueueBackend, queue: string): WakeOnlyConsumer {
  let resolve!: () => void;
  const delivered = new Promise<void>(r => (resolve = r));
  const consumer = consume({
    backend,
    queue,
    maxAttempts: 1,
    pollIntervalMs: 3_600_000,
    handler: () => resolve(),
  });
  return { consumer, delivered };
}
