/**
 * Time is a parameter. Every policy takes a `Clock`; production uses {@link systemClock}, tests use
 * `TestClock` from `@bulwark/testing`, which advances virtual time and fires due timers, so no test
 * sleeps.
 */

/** A scheduled callback. `unref()` lets the process exit while the timer is pending. */
export interface TimerHandle {
  clear(): void;
  ref(): void;
  unref(): void;
}

export interface Clock {
  /** Monotonic time in milliseconds (fractional). Only differences are meaningful. */
  now(): number;
  /** Wall-clock time in milliseconds since the Unix epoch, for timestamps shown to people. */
  wallNow(): number;
  /** Runs `callback` once after `delayMs` milliseconds (clamped to [0, 2^31 - 1]). */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
}

/** setTimeout's largest delay; larger values would fire at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

interface RuntimeTimer {
  ref?(): unknown;
  unref?(): unknown;
}

class SystemTimer implements TimerHandle {
  constructor(private readonly id: ReturnType<typeof setTimeout>) {}
  clear(): void {
    clearTimeout(this.id);
  }
  ref(): void {
    (this.id as RuntimeTimer).ref?.();
  }
  unref(): void {
    (this.id as RuntimeTimer).unref?.();
  }
}

/** The real clock: `performance.now()` for monotonic time, `Date.now()` for wall time. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer: (callback, delayMs) => new SystemTimer(setTimeout(callback, clampDelay(delayMs))),
};

export function clampDelay(delayMs: number): number {
  if (!(delayMs > 0)) return 0;
  return delayMs > MAX_TIMER_DELAY_MS ? MAX_TIMER_DELAY_MS : delayMs;
}
