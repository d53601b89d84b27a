/**
 * One timer for many calls. A timeout policy has a fixed duration, so calls started later expire
 * later: a FIFO is already sorted by expiry. Each call appends an entry; completion marks it done
 * and pops finished entries from the head; a single clock timer is armed for the head. A
 * sequential caller therefore arms one timer per `timeoutMs`, not one per call (setTimeout +
 * clearTimeout costs ~400 ns on Node 20).
 */
import type { Clock, TimerHandle } from './clock.js';

export interface QueueEntry {
  readonly expiresAt: number;
  /** Set by the queue's owner when the call finished before expiry. */
  done: boolean;
  expire(): void;
}

export class TimerQueue<E extends QueueEntry> {
  private items: (E | undefined)[] = [];
  private head = 0;
  private tail = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private referenced = false;

  constructor(private readonly clock: Clock) {}

  get pending(): number {
    return this.tail - this.head;
  }

  add(entry: E): void {
    // Slots behind head are already cleared, so an empty queue restarts at 0 without resizing.
    if (this.head === this.tail) this.head = this.tail = 0;
    this.items[this.tail++] = entry;
    if (this.timer === undefined) {
      this.arm(entry.expiresAt);
    } else if (!this.referenced) {
      // A timer left over from earlier calls: it fires no later than this entry's expiry
      // (entries arrive in expiry order), and it must keep the process alive again.
      this.timer.ref();
      this.referenced = true;
    }
  }

  /** Marks an entry finished and drops finished entries from the head. */
  finish(entry: E): void {
    entry.done = true;
    const items = this.items;
    while (this.head < this.tail && (items[this.head] as E).done) {
      items[this.head++] = undefined;
    }
    if (this.head === this.tail) {
      if (this.referenced && this.timer !== undefined) {
        // Nothing in flight: the leftover timer must not hold the process open.
        this.timer.unref();
        this.referenced = false;
      }
    } else if (this.head > 1024 && this.head * 2 > this.tail) {
      this.items = items.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
  }

  private arm(at: number): void {
    this.timerAt = at;
    this.timer = this.clock.setTimer(() => this.fire(), at - this.clock.now());
    this.referenced = true;
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    const items = this.items;
    while (this.head < this.tail) {
      const entry = items[this.head] as E;
      if (!entry.done && entry.expiresAt > now) break;
      items[this.head++] = undefined;
      if (!entry.done) {
        entry.done = true;
        entry.expire();
      }
    }
    if (this.head < this.tail) this.arm((items[this.head] as E).expiresAt);
  }

  /** For tests and diagnostics. */
  get nextFireAt(): number {
    return this.timerAt;
  }
}
