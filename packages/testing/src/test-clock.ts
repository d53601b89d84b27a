/**
 * A virtual clock. Time stands still until a test moves it; `advance` fires every timer that falls
 * due, in order, and lets promise callbacks run between timers, so code that awaits a timer and
 * then sets another behaves as it would in real time, without sleeping.
 */
import type { Clock, TimerHandle } from '@bulwark/core';

interface PendingTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
  cleared: boolean;
  referenced: boolean;
}

export interface TestClockOptions {
  /** Starting monotonic time in ms. Default 0. */
  startMs?: number;
  /** Wall-clock epoch ms at `startMs`. Default 2026-01-01T00:00:00Z, so timestamps are stable. */
  wallStartMs?: number;
}

/** Lets queued promise callbacks (and callbacks they queue) run. A real macrotask, never a sleep. */
export function flushMicrotasks(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

export class TestClock implements Clock {
  private current: number;
  private readonly wallOffset: number;
  private timers: PendingTimer[] = [];
  private nextId = 1;

  constructor(options: TestClockOptions = {}) {
    this.current = options.startMs ?? 0;
    this.wallOffset = (options.wallStartMs ?? Date.UTC(2026, 0, 1)) - this.current;
  }

  now(): number {
    return this.current;
  }

  wallNow(): number {
    return this.current + this.wallOffset;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer: PendingTimer = {
      id: this.nextId++,
      at: this.current + (delayMs > 0 ? delayMs : 0),
      callback,
      cleared: false,
      referenced: true,
    };
    this.timers.push(timer);
    return {
      clear: () => {
        timer.cleared = true;
        this.timers = this.timers.filter(t => t !== timer);
      },
      ref: () => {
        timer.referenced = true;
      },
      unref: () => {
        timer.referenced = false;
      },
    };
  }

  /** Timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Timers that would keep a real process alive (not unref'd). */
  get referencedTimers(): number {
    return this.timers.filter(t => t.referenced).length;
  }

  /** When the next timer is due, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const timer of this.timers) if (at === undefined || timer.at < at) at = timer.at;
    return at;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order (ties in the order they were set) and
   * flushing promise callbacks after each one.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`TestClock.advance: ms must be >= 0, got ${String(ms)}`);
    await this.advanceTo(this.current + ms);
  }

  /** Moves time forward to `target` (monotonic ms), firing due timers on the way. */
  async advanceTo(target: number): Promise<void> {
    await flushMicrotasks();
    for (;;) {
      const due = this.nextDue(target);
      if (due === undefined) break;
      this.current = Math.max(this.current, due.at);
      this.timers = this.timers.filter(t => t !== due);
      due.callback();
      await flushMicrotasks();
    }
    if (target > this.current) this.current = target;
    await flushMicrotasks();
  }

  /** Fires timers until none is left (at most `limit`, to stop runaway loops). Returns how many. */
  async runAll(limit = 10_000): Promise<number> {
    let fired = 0;
    await flushMicrotasks();
    for (;;) {
      const at = this.nextTimerAt();
      if (at === undefined) return fired;
      if (++fired > limit) throw new Error(`TestClock.runAll: more than ${limit} timers fired`);
      await this.advanceTo(at);
    }
  }

  private nextDue(target: number): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const timer of this.timers) {
      if (timer.at > target) continue;
      if (
        best === undefined ||
        timer.at < best.at ||
        (timer.at === best.at && timer.id < best.id)
      ) {
        best = timer;
      }
    }
    return best;
  }
}
