/**
 * Inbound deadlines without a timer per request. Arming each request's `Deadline` (a timer, its
 * handle and a cleanup object, then a clear when the response goes out) was one of the plugin's
 * larger per-request costs, and almost every request finishes long before its deadline. Instead,
 * the requests in flight sit in one binary min-heap ordered by expiry, and ONE timer is aimed at
 * the earliest expiry:
 *
 * - Adding a request re-aims the timer only when it expires before the current aim (a caller
 *   with a shorter budget than everyone in flight). With one budget for everyone, the newest
 *   request always expires last: no timer work at all.
 * - Removing a request never touches the timer. When it fires for a request that already
 *   finished, the sweep simply re-aims at the current earliest expiry: under steady load that is
 *   one timer per `defaultMs`, not one per request.
 * - Expiry is exact (the timer is aimed at the earliest `expiresAt`), not rounded to a tick.
 *
 * A handler that reads `request.deadline.signal` still arms that deadline's own timer (core's
 * lazy arming); both then fire at the same time and the first one wins.
 */
import { MAX_TIMER_DELAY_MS, type Clock, type TimerHandle } from '@bulwark/core';

/** An entry of the sweep: its expiry on the clock's timeline and what to do when it passes. */
export interface SweepEntry {
  readonly expiresAt: number;
  /** @internal Position in the heap; -1 when not in it. */
  heapIndex: number;
  /** Called once, from the sweep's timer, when `expiresAt` has passed and it is still in. */
  expire(): void;
}

/** @internal */
export class DeadlineSweep<E extends SweepEntry> {
  private readonly heap: E[] = [];
  private timer: TimerHandle | undefined;
  /** When the timer fires (clock time), Infinity when it is not set. */
  private aimedAt = Infinity;

  constructor(private readonly clock: Clock) {}

  /** Entries in flight. */
  get size(): number {
    return this.heap.length;
  }

  /** Visits every entry (in heap order, not expiry order). */
  forEach(visit: (entry: E) => void): void {
    // A copy: `visit` may remove entries.
    for (const entry of this.heap.slice()) visit(entry);
  }

  add(entry: E): void {
    const heap = this.heap;
    entry.heapIndex = heap.length;
    heap.push(entry);
    this.up(entry.heapIndex);
    if (entry.expiresAt < this.aimedAt) this.aim(entry.expiresAt);
  }

  /** Removes an entry (no-op when it is not in the sweep). Never touches the timer. */
  remove(entry: E): void {
    const index = entry.heapIndex;
    if (index < 0) return;
    entry.heapIndex = -1;
    const heap = this.heap;
    const last = heap.pop() as E;
    if (index === heap.length) return;
    heap[index] = last;
    last.heapIndex = index;
    this.down(index);
    this.up(last.heapIndex);
  }

  /** Stops the timer (the entries stay; nothing expires until the next `add`). */
  close(): void {
    this.timer?.clear();
    this.timer = undefined;
    this.aimedAt = Infinity;
  }

  private aim(at: number): void {
    this.timer?.clear();
    this.aimedAt = at;
    const delayMs = Math.max(0, Math.min(at - this.clock.now(), MAX_TIMER_DELAY_MS));
    const timer = this.clock.setTimer(this.fire, delayMs);
    // Deadlines never keep a process alive: the requests they limit do that.
    timer.unref();
    this.timer = timer;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.aimedAt = Infinity;
    const heap = this.heap;
    const now = this.clock.now();
    while (heap.length > 0 && (heap[0] as E).expiresAt <= now) {
      const entry = heap[0] as E;
      this.remove(entry);
      entry.expire();
    }
    // expire() may have added entries (and aimed the timer) itself.
    const first = heap[0];
    if (first !== undefined && first.expiresAt < this.aimedAt) this.aim(first.expiresAt);
  };

  private up(index: number): void {
    const heap = this.heap;
    const entry = heap[index] as E;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex] as E;
      if (parent.expiresAt <= entry.expiresAt) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }

  private down(index: number): void {
    const heap = this.heap;
    const length = heap.length;
    const entry = heap[index] as E;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && (heap[right] as E).expiresAt < (heap[left] as E).expiresAt) {
        child = right;
      }
      const smallest = heap[child] as E;
      if (smallest.expiresAt >= entry.expiresAt) break;
      heap[index] = smallest;
      smallest.heapIndex = index;
      index = child;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }
}
