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

/** An entry of the queue: `done` once it finished (the queue then skips it) or expired. */
export interface TickEntry {
  done: boolean;
  expire(): void;
}

export class TickQueue<E extends TickEntry> {
  private items: (E | undefined)[] = [];
  private head = 0;
  private tail = 0;
  /** Entries from `sealed` to `tail` await the next tick for their expiry. */
  private sealed = 0;
  /**
   * Sealed generations, oldest first: generation `g` starts at entry index `starts[g]` and ends
   * where the next one starts, and all its entries expire at `expiries[g]`. Expiries live here
   * rather than on the entries because a number field that is not a small integer costs each
   * entry object a 16-byte heap box on Node, on every call; a generation costs one array slot.
   */
  private starts: number[] = [];
  private expiries: number[] = [];
  /** The oldest generation that may still hold entries, and one past the newest. */
  private genHead = 0;
  private genTail = 0;
  private timer: TimerHandle | undefined;
  /**
   * The last tick's (or the start's) time + timeoutMs: the expiry new calls are told while the
   * ticker runs. Declared with undefined first so V8 stores it as a pointer: every call of a
   * tick then shares the same heap number instead of boxing its own.
   */
  private expiry: number | undefined = undefined;

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

  /** While the ticker runs: the expiry calls that join now are told (last tick + timeoutMs). */
  get current(): number {
    return this.expiry as number;
  }

  /**
   * The expiry the work may be told: exact when the ticker was idle (this reads the clock and
   * starts it), otherwise the conservative last tick + timeoutMs. Call before `add`.
   */
  begin(): number {
    if (this.timer === undefined) {
      this.expiry = this.clock.now() + this.timeoutMs;
      this.timer = this.clock.setTimer(() => this.tick(), this.resolutionMs);
    }
    return this.expiry as number;
  }

  /** Adds an entry that learns its expiry at the next tick. */
  add(entry: E): void {
    if (this.head === this.tail) {
      // Empty (as after every call of a sequential caller): restart at 0. `clear`, written out.
      this.head = this.tail = this.sealed = 0;
      this.genHead = this.genTail = 0;
    }
    this.items[this.tail++] = entry;
  }

  /**
   * Adds an entry whose expiry is already known: one started while the ticker was idle (so the
   * queue is empty and nothing unsealed can precede it), with the exact expiry `begin` returned.
   */
  addExact(entry: E, expiresAt: number): void {
    if (this.head === this.tail) this.clear();
    this.seal(expiresAt);
    this.items[this.tail++] = entry;
    this.sealed = this.tail;
  }

  /** Marks an entry finished and drops finished entries from the head. */
  finish(entry: E): void {
    entry.done = true;
    const items = this.items;
    while (this.head < this.tail && (items[this.head] as E).done) items[this.head++] = undefined;
    if (this.sealed < this.head) this.sealed = this.head;
    if (this.head !== this.tail && this.head > 1024 && this.head * 2 > this.tail) this.compact();
  }

  private tick(): void {
    const now = this.clock.now();
    this.expiry = now + this.timeoutMs;
    if (this.sealed < this.tail) {
      this.seal(this.expiry);
      this.sealed = this.tail;
    }
    // Fields are re-read on each turn: an expiring entry's listeners may add or finish entries.
    while (this.head < this.tail) {
      const entry = this.items[this.head] as E;
      if (!entry.done) {
        if (this.head >= this.sealed || this.expiryOfHead() > now) break;
        entry.done = true;
        this.items[this.head++] = undefined;
        entry.expire();
      } else {
        this.items[this.head++] = undefined;
      }
    }
    if (this.head === this.tail) {
      // Idle: stop; the next call reads the clock and starts again.
      this.timer = undefined;
      return;
    }
    this.timer = this.clock.setTimer(() => this.tick(), this.resolutionMs);
  }

  /** Starts a generation at `tail` (the entries from `sealed` to `tail` join it when sealing). */
  private seal(expiresAt: number): void {
    this.starts[this.genTail] = this.sealed;
    this.expiries[this.genTail] = expiresAt;
    this.genTail++;
  }

  /** The expiry of the (sealed) head entry; drops generations that are behind the head. */
  private expiryOfHead(): number {
    const starts = this.starts;
    while (this.genHead + 1 < this.genTail && (starts[this.genHead + 1] as number) <= this.head) {
      this.genHead++;
    }
    return this.expiries[this.genHead] as number;
  }

  private clear(): void {
    this.head = this.tail = this.sealed = 0;
    this.genHead = this.genTail = 0;
  }

  private compact(): void {
    const shift = this.head;
    this.items = this.items.slice(shift, this.tail);
    this.tail -= shift;
    this.sealed -= shift;
    this.head = 0;
    const gens = this.genTail - this.genHead;
    this.starts = this.starts.slice(this.genHead, this.genTail).map(start => start - shift);
    this.expiries = this.expiries.slice(this.genHead, this.genTail);
    this.genHead = 0;
    this.genTail = gens;
  }
}
