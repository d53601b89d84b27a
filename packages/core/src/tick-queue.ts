/**
 * Timeouts without a clock read per call. Reading the monotonic clock costs ~80 ns on the 2-vCPU
 * cloud VMs we measure on, as much as the rest of a timeout put together, so a busy timeout
 * policy lets a ticker keep time for it:
 *
 * - A call that arrives while the policy is idle reads the clock once, gets an exact expiry, and
 *   starts the ticker (one timer every `resolutionMs`, only while calls are pending).
 * - A call that arrives while the ticker runs reads nothing: it joins the current generation. The
 *   next tick seals the generation with expiry = tick time + timeoutMs, an upper bound of its true
 *   start + timeoutMs. A call therefore never times out early, and at most `resolutionMs` (plus
 *   timer lateness) late. Its work is told the conservative expiry (last tick + timeoutMs), so
 *   downstream services are never promised more time than they have.
 * - The ticker stops at the first tick that finds nothing pending, so it holds a process open at
 *   most `resolutionMs` after the last call. It is never ref'd and unref'd per call: that pair of
 *   native calls cost more than the rest of a busy call's bookkeeping.
 *
 * All timeouts of one policy share the duration, so sealing in arrival order keeps the FIFO
 * sorted by expiry and the head is always the next to expire.
 */
import type { Clock, TimerHandle } from './clock.js';

/** An entry whose expiry (`fireAt`) may be unknown (`Infinity`) until the next tick seals it. */
export interface TickEntry {
  fireAt: number;
  done: boolean;
  expire(): void;
}

export class TickQueue<E extends TickEntry> {
  private items: (E | undefined)[] = [];
  private head = 0;
  private tail = 0;
  /** Entries from `sealed` to `tail` await the next tick for their expiry. */
  private sealed = 0;
  private timer: TimerHandle | undefined;
  /** Clock time of the last tick (or of the start); meaningful while the ticker runs. */
  private stamp = 0;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly resolutionMs: number,
  ) {}

  get pending(): number {
    return this.tail - this.head;
  }

  /** True while the ticker runs, i.e. while `add` needs no clock read. */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  /**
   * The expiry the work may be told: exact when the ticker was idle (this reads the clock and
   * starts it), otherwise the conservative last tick + timeoutMs. Call before `add`.
   */
  begin(): number {
    if (this.timer !== undefined) return this.stamp + this.timeoutMs;
    const now = this.clock.now();
    this.stamp = now;
    this.timer = this.clock.setTimer(() => this.tick(), this.resolutionMs);
    return now + this.timeoutMs;
  }

  /** Adds an entry. `exact` entries (from an idle start) already know their expiry. */
  add(entry: E, exact: boolean): void {
    if (this.head === this.tail) this.head = this.tail = this.sealed = 0;
    if (exact) {
      // Nothing can be unsealed before it: the ticker was idle, so the queue was empty.
      this.items[this.tail++] = entry;
      this.sealed = this.tail;
    } else {
      entry.fireAt = Infinity;
      this.items[this.tail++] = entry;
    }
  }

  /** Marks an entry finished and drops finished entries from the head. */
  finish(entry: E): void {
    entry.done = true;
    const items = this.items;
    while (this.head < this.tail && (items[this.head] as E).done) items[this.head++] = undefined;
    if (this.sealed < this.head) this.sealed = this.head;
    if (this.head !== this.tail && this.head > 1024 && this.head * 2 > this.tail) {
      this.items = items.slice(this.head, this.tail);
      this.tail -= this.head;
      this.sealed -= this.head;
      this.head = 0;
    }
  }

  private tick(): void {
    const now = this.clock.now();
    this.stamp = now;
    const items = this.items;
    const expiresAt = now + this.timeoutMs;
    for (let i = this.sealed; i < this.tail; i++) (items[i] as E).fireAt = expiresAt;
    this.sealed = this.tail;
    while (this.head < this.tail) {
      const entry = items[this.head] as E;
      if (!entry.done && entry.fireAt > now) break;
      items[this.head++] = undefined;
      if (!entry.done) {
        entry.done = true;
        entry.expire();
      }
    }
    if (this.head === this.tail) {
      // Idle: stop; the next call reads the clock and starts again.
      this.timer = undefined;
      return;
    }
    this.timer = this.clock.setTimer(() => this.tick(), this.resolutionMs);
  }
}
