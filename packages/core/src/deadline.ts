/**
 * A deadline is an absolute point on the monotonic clock plus an AbortSignal that fires when it
 * passes. Children take a slice of what is left; nothing ever extends a deadline.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { DeadlineExceededError, InvalidOptionsError } from './errors.js';
import { Scope, type AbortListener } from './scope.js';

export interface DeadlineOptions {
  clock?: Clock;
  /** An outside signal (for example the client hung up) that cancels the deadline early. */
  signal?: AbortSignal;
}

export interface ChildDeadlineOptions {
  /** At most this many milliseconds from now. */
  timeoutMs?: number;
  /** At most this fraction (0, 1] of the parent's remaining budget. */
  fraction?: number;
  /** Keep this many milliseconds of the parent's budget back (for the parent's own work). */
  reserveMs?: number;
}

export class Deadline {
  /** @internal enforcement state: the scope aborts when the deadline passes or is cancelled. */
  readonly scope: Scope;
  private timer: TimerHandle | undefined;
  private armed: boolean;

  /**
   * @internal Use {@link Deadline.after}, {@link Deadline.at} or {@link Deadline.child}.
   * `armed` means someone else (a timeout policy's timer queue) already enforces this deadline.
   */
  constructor(
    readonly expiresAt: number,
    readonly clock: Clock,
    scope: Scope,
    armed: boolean,
  ) {
    this.scope = scope;
    this.armed = armed;
  }

  /** A deadline `timeoutMs` milliseconds from now. */
  static after(timeoutMs: number, options: DeadlineOptions = {}): Deadline {
    if (!(timeoutMs >= 0) || Number.isNaN(timeoutMs)) {
      throw new InvalidOptionsError(
        `Deadline.after: timeoutMs must be a number >= 0 (milliseconds), got ${String(timeoutMs)}`,
      );
    }
    const clock = options.clock ?? systemClock;
    return Deadline.at(clock.now() + timeoutMs, options);
  }

  /** A deadline at `expiresAt` on the clock's monotonic timeline (`clock.now()`). */
  static at(expiresAt: number, options: DeadlineOptions = {}): Deadline {
    const clock = options.clock ?? systemClock;
    const scope = new Scope();
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) scope.abort(signal.reason);
      else signal.addEventListener('abort', () => scope.abort(signal.reason), { once: true });
    }
    return new Deadline(expiresAt, clock, scope, false);
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    const left = this.expiresAt - this.clock.now();
    return left > 0 ? left : 0;
  }

  /** True once the time has passed or the deadline was cancelled. */
  get expired(): boolean {
    return this.scope.aborted || this.expiresAt <= this.clock.now();
  }

  /** Fires when the deadline passes (reason: `DeadlineExceededError`) or is cancelled. */
  get signal(): AbortSignal {
    this.arm();
    return this.scope.signal;
  }

  /** Throws `DeadlineExceededError` (or the cancellation reason) when no time is left. */
  throwIfExpired(): void {
    if (this.scope.aborted) throw this.scope.reason;
    if (this.expiresAt <= this.clock.now()) throw new DeadlineExceededError();
  }

  /** @internal Registers a listener called when the deadline passes or is cancelled. */
  onAbort(listener: AbortListener): void {
    this.arm();
    this.scope.add(listener);
  }

  /** @internal */
  offAbort(listener: AbortListener): void {
    this.scope.remove(listener);
  }

  /** Cancels the deadline now; work under it is aborted with `reason`. */
  cancel(reason: unknown = new DeadlineExceededError('deadline cancelled')): void {
    this.timer?.clear();
    this.scope.abort(reason);
  }

  /**
   * A deadline inside this one: the earliest of the parent's expiry, `timeoutMs` from now, and the
   * `fraction` of what is left; minus `reserveMs`. It is cancelled with its parent.
   */
  child(options: ChildDeadlineOptions = {}): Deadline {
    const { timeoutMs, fraction, reserveMs } = options;
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
      throw new InvalidOptionsError(
        `Deadline.child: timeoutMs must be >= 0, got ${String(timeoutMs)}`,
      );
    }
    if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) {
      throw new InvalidOptionsError(
        `Deadline.child: fraction must be in (0, 1], got ${String(fraction)}`,
      );
    }
    if (reserveMs !== undefined && !(reserveMs >= 0)) {
      throw new InvalidOptionsError(
        `Deadline.child: reserveMs must be >= 0, got ${String(reserveMs)}`,
      );
    }
    const now = this.clock.now();
    const left = Math.max(0, this.expiresAt - now);
    let budget = left - (reserveMs ?? 0);
    if (fraction !== undefined) budget = Math.min(budget, left * fraction);
    if (timeoutMs !== undefined) budget = Math.min(budget, timeoutMs);
    const child = new Deadline(now + Math.max(0, budget), this.clock, this.scope.child(), false);
    return child;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    if (this.scope.aborted) return;
    const left = this.expiresAt - this.clock.now();
    if (left <= 0) {
      this.scope.abort(new DeadlineExceededError());
      return;
    }
    const timer = this.clock.setTimer(() => this.scope.abort(new DeadlineExceededError()), left);
    this.timer = timer;
    // The deadline alone must not keep a process alive: the work it limits does that.
    timer.unref();
    this.scope.add({ abort: () => timer.clear() });
  }
}
