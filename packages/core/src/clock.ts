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

/**
 * @internal `clock.setTimer` for a delay that may be longer than {@link MAX_TIMER_DELAY_MS}. A
 * timer clamped to the maximum would fire early (after about 24.8 days); this one is armed for at
 * most the maximum and re-armed when it fires, until `delayMs` has passed on `clock.now()`.
 * Delays that fit go straight to `clock.setTimer`, so the common case allocates nothing more.
 */
export function setLongTimer(clock: Clock, callback: () => void, delayMs: number): TimerHandle {
  if (!(delayMs > MAX_TIMER_DELAY_MS)) return clock.setTimer(callback, delayMs);
  return new LongTimer(clock, callback, clock.now() + delayMs);
}

class LongTimer implements TimerHandle {
  private timer: TimerHandle;
  private referenced = true;
  private readonly onFire = (): void => this.fire();

  constructor(
    private readonly clock: Clock,
    private readonly callback: () => void,
    private readonly dueAt: number,
  ) {
    this.timer = clock.setTimer(this.onFire, MAX_TIMER_DELAY_MS);
  }

  private fire(): void {
    const left = this.dueAt - this.clock.now();
    if (left > 0) {
      this.timer = this.clock.setTimer(this.onFire, Math.min(left, MAX_TIMER_DELAY_MS));
      if (!this.referenced) this.timer.unref();
      return;
    }
    this.callback();
  }

  clear(): void {
    this.timer.clear();
  }

  ref(): void {
    this.referenced = true;
    this.timer.ref();
  }

  unref(): void {
    this.referenced = false;
    this.timer.unref();
  }
}
