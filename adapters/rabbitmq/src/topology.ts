/**
 * Names and arguments of what the backend declares on the broker. One place, so the README, the
 * backend and the tests agree on what exists per queue.
 *
 * Per port queue `q` (prefix `p`):
 * - `p.q.<q>`: the work queue, a quorum queue (replicated; `x-delivery-count` on redelivery).
 * - `p.delay.<q>.<ms>`: one delay bucket per distinct delay, a quorum queue whose messages all
 *   expire after `<ms>` and are dead-lettered (at least once) back to the work queue. One TTL per
 *   queue means the head always expires first, so no message waits behind a longer one.
 * Per prefix: `p.dead-letters`, a stream holding dead letters, tombstones and audit entries.
 */

/** Delays are rounded up to two significant digits (>= 100 ms), bounding the number of buckets. */
export function delayBucketMs(delayMs: number): number {
  if (!(delayMs > 0)) return 0;
  const ms = Math.ceil(delayMs);
  if (ms < 100) return ms;
  const step = 10 ** (Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step) * step;
}

/**
 * How long an unused delay bucket lives after its last declaration, beyond its TTL, ms. Queue TTL
 * (`x-expires`) is not reset by publishes, so the backend re-declares a bucket before publishing
 * when half of this has passed: a bucket is never deleted while it can still hold a message.
 */
export const DELAY_BUCKET_IDLE_MS = 60_000;

export interface Topology {
  readonly workQueue: (queue: string) => string;
  readonly delayQueue: (queue: string, bucketMs: number) => string;
  readonly deadLetterStream: string;
}

export function topology(prefix: string): Topology {
  return {
    workQueue: queue => `${prefix}.q.${queue}`,
    delayQueue: (queue, bucketMs) => `${prefix}.delay.${queue}.${bucketMs}`,
    deadLetterStream: `${prefix}.dead-letters`,
  };
}

export const WORK_QUEUE_ARGUMENTS = { 'x-queue-type': 'quorum' } as const;

export function delayQueueArguments(workQueue: string, bucketMs: number): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-message-ttl': bucketMs,
    'x-expires': bucketMs + DELAY_BUCKET_IDLE_MS,
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': workQueue,
    // Without this, a broker failure while moving an expired message could drop it.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

export const STREAM_ARGUMENTS = { 'x-queue-type': 'stream' } as const;
