/**
 * The last `windowMs` milliseconds (resilience4j's TIME_BASED window): a ring of `buckets` partial
 * aggregates with running totals. Moving into a new bucket subtracts the buckets that fell out of
 * the window (subtract-on-evict), so recording costs O(1) amortised (at most `buckets` steps after
 * a long idle time) and no call is stored. The ring is allocated on the first call.
 *
 * A call is counted from the moment it finishes until its bucket leaves the ring, that is for
 * between `windowMs - windowMs / buckets` and `windowMs` milliseconds.
 */
import {
  count,
  evaluate,
  FAILURE,
  SLOW,
  type FailureWindow,
  type WindowSnapshot,
} from './window.js';

export class TimeWindow implements FailureWindow {
  /** `[calls, failures, slow]` for each bucket, bucket i at 3 * i. */
  private ring: Uint32Array | undefined = undefined;
  /** The absolute number (floor(now / bucketMs)) of the newest bucket, and its slot in the ring. */
  private head = 0;
  private slot = 0;
  private total = 0;
  private failed = 0;
  private slow = 0;
  readonly bucketMs: number;

  /**
   * @param windowMs length of the window
   * @param buckets number of buckets the window is split into
   * @param minimumCalls calls in the window needed before a rate is evaluated
   * @param failureRate open when failures / calls >= this
   * @param slowRate open when slow calls / calls >= this (Infinity: never)
   */
  constructor(
    windowMs: number,
    private readonly buckets: number,
    private readonly minimumCalls: number,
    private readonly failureRate: number,
    private readonly slowRate: number,
  ) {
    this.bucketMs = windowMs / buckets;
  }

  record(outcome: number, now: number): number {
    const ring = this.advance(now);
    const at = this.slot * 3;
    const failed = outcome & FAILURE;
    const slow = (outcome & SLOW) >> 1;
    ring[at] = (ring[at] as number) + 1;
    ring[at + 1] = (ring[at + 1] as number) + failed;
    ring[at + 2] = (ring[at + 2] as number) + slow;
    this.total++;
    this.failed += failed;
    this.slow += slow;
    return evaluate(
      this.total,
      this.failed,
      this.slow,
      this.minimumCalls,
      this.failureRate,
      this.slowRate,
    );
  }

  /** Evicts the buckets that left the window by `now` and returns the ring. */
  private advance(now: number): Uint32Array {
    const bucket = Math.floor(now / this.bucketMs);
    let ring = this.ring;
    if (ring === undefined) {
      ring = this.ring = new Uint32Array(this.buckets * 3);
      this.head = bucket;
      this.slot = 0;
      return ring;
    }
    // An earlier time (it should not happen on a monotonic clock) lands in the newest bucket.
    const steps = bucket - this.head;
    if (steps <= 0) return ring;
    this.head = bucket;
    if (steps >= this.buckets) {
      ring.fill(0);
      this.total = this.failed = this.slow = 0;
      return ring;
    }
    let slot = this.slot;
    for (let i = 0; i < steps; i++) {
      slot = slot + 1 === this.buckets ? 0 : slot + 1;
      const at = slot * 3;
      this.total -= ring[at] as number;
      this.failed -= ring[at + 1] as number;
      this.slow -= ring[at + 2] as number;
      ring[at] = ring[at + 1] = ring[at + 2] = 0;
    }
    this.slot = slot;
    return ring;
  }

  reset(): void {
    this.ring = undefined;
    this.total = this.failed = this.slow = 0;
  }

  calls(now: number): number {
    if (this.ring !== undefined) this.advance(now);
    return this.total;
  }

  failures(now: number): number {
    if (this.ring !== undefined) this.advance(now);
    return this.failed;
  }

  slowCalls(now: number): number {
    if (this.ring !== undefined) this.advance(now);
    return this.slow;
  }

  snapshot(now: number): WindowSnapshot {
    const buckets: [number, number, number][] = [];
    const ring = this.ring === undefined ? undefined : this.advance(now);
    for (let i = 1; i <= this.buckets; i++) {
      if (ring === undefined) {
        buckets.push([0, 0, 0]);
        continue;
      }
      const at = ((this.slot + i) % this.buckets) * 3;
      buckets.push([ring[at] as number, ring[at + 1] as number, ring[at + 2] as number]);
    }
    return { kind: 'time', bucketMs: this.bucketMs, buckets };
  }

  restore(snapshot: WindowSnapshot, now: number, elapsedMs: number): void {
    this.reset();
    if (
      snapshot.kind !== 'time' ||
      snapshot.bucketMs !== this.bucketMs ||
      !Array.isArray(snapshot.buckets) ||
      snapshot.buckets.length !== this.buckets
    ) {
      return;
    }
    const ring = new Uint32Array(this.buckets * 3);
    snapshot.buckets.forEach((bucket, i) => {
      if (!Array.isArray(bucket)) return;
      const calls = count(bucket[0]);
      // Never more failures or slow calls than calls, whatever the stored data says.
      const failed = Math.min(count(bucket[1]), calls);
      const slow = Math.min(count(bucket[2]), calls);
      ring[i * 3] = calls;
      ring[i * 3 + 1] = failed;
      ring[i * 3 + 2] = slow;
      this.total += calls;
      this.failed += failed;
      this.slow += slow;
    });
    this.ring = ring;
    // The newest stored bucket sits in the last slot. Time spent in storage ages it: place it as many
    // buckets back as have passed, and let the next `advance` evict what fell out of the window.
    this.slot = this.buckets - 1;
    const aged = Math.floor(Math.max(0, elapsedMs) / this.bucketMs);
    this.head = Math.floor(now / this.bucketMs) - aged;
    this.advance(now);
  }
}
