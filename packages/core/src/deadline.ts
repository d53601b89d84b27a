/**
 * A deadline is an absolute point on the monotonic clock plus an AbortSignal that fires when it
 * passes. Children take a slice of what is left; nothing ever extends a deadline.
 */
import { setLongTimer, systemClock, type Clock, type TimerHandle } from './clock.js';
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

/**
 * A child deadline is not linked into its parent's scope when it is made, only when it is armed
 * (someone reads its signal or runs work under it), so children that are made, read and dropped
 * cost the parent nothing. An armed deadline unlinks itself when it expires or is cancelled.
 */
export class Deadline {
  /** @internal enforcement state: the scope aborts when the deadline passes or is cancelled. */
  readonly scope: Scope;
  private armed: boolean;
  /**
   * Its scope aborts exactly at `expiresAt` once armed (its own timer, or its parent's). False for
   * a deadline armed at construction by a policy that enforces it, which may fire a little late
   * (a ticking timeout: up to its `resolutionMs`).
   */
  private readonly exact: boolean;
  /** The parent, for a child; its scope is joined only when this deadline arms. */
  private readonly parent: Deadline | undefined;
  private cleanup: Cleanup | undefined;

  /**
   * @internal Use {@link Deadline.after}, {@link Deadline.at} or {@link Deadline.child}.
   * `armed` means someone else (a timeout policy's timer queue) already enforces this deadline.
   */
  constructor(
    readonly expiresAt: number,
    readonly clock: Clock,
    scope: Scope,
    armed: boolean,
    parent?: Deadline,
  ) {
    this.scope = scope;
    this.armed = armed;
    this.exact = !armed;
    this.parent = parent;
  }

  /**
   * A deadline `timeoutMs` milliseconds from now. `timeoutMs` must be finite: for no limit, pass
   * no deadline at all (every `deadline` option accepts `undefined`).
   */
  static after(timeoutMs: number, options: DeadlineOptions = {}): Deadline {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs === Infinity) {
      throw new InvalidOptionsError(
        `Deadline.after: timeoutMs must be a finite number >= 0 (milliseconds), got ${String(timeoutMs)}; omit the deadline for no limit`,
      );
    }
    const clock = options.clock ?? systemClock;
    return Deadline.at(clock.now() + timeoutMs, options);
  }

  /**
   * A deadline at `expiresAt` on the clock's monotonic timeline (`clock.now()`). With a `signal`,
   * the deadline arms its (unref'd) timer at once, so that the listener it puts on the signal is
   * removed when the deadline passes, not kept until the signal fires.
   */
  static at(expiresAt: number, options: DeadlineOptions = {}): Deadline {
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
      throw new InvalidOptionsError(
        `Deadline.at: expiresAt must be a finite time on the clock's timeline (clock.now() + ms), got ${String(expiresAt)}; omit the deadline for no limit`,
      );
    }
    const clock = options.clock ?? systemClock;
    const deadline = new Deadline(expiresAt, clock, new Scope(), false);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        deadline.scope.abort(signal.reason);
      } else {
        deadline.tidy().signal = signal;
        signal.addEventListener('abort', deadline.tidy(), { once: true });
        deadline.arm();
      }
    }
    return deadline;
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    const left = this.expiresAt - this.clock.now();
    return left > 0 ? left : 0;
  }

  /** True once the time has passed or the deadline (or an ancestor) was cancelled. */
  get expired(): boolean {
    return this.cancelled() || this.expiresAt <= this.clock.now();
  }

  /** Fires when the deadline passes (reason: `DeadlineExceededError`) or is cancelled. */
  get signal(): AbortSignal {
    this.arm();
    return this.scope.signal;
  }

  /**
   * The same as `signal`, as the core {@link Scope} behind it: an {@link AbortSource} that
   * Bulwark's clients, caches and batch loaders take as `signal` with no AbortController (whose
   * creation and abort event cost microseconds on Node 20). Armed like `signal`.
   */
  get cancellation(): Scope {
    this.arm();
    return this.scope;
  }

  /** Throws `DeadlineExceededError` (or the cancellation reason) when no time is left. */
  throwIfExpired(): void {
    if (this.cancelled()) throw this.scope.reason;
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
    this.scope.abort(reason);
  }

  /**
   * A deadline inside this one: the earliest of the parent's expiry, `timeoutMs` from now, and the
   * `fraction` of what is left; minus `reserveMs`. It is cancelled with its parent.
   *
   * The child joins the parent's cancellation only once it is armed (its `signal` is read or work
   * runs under it), and leaves it again when it expires or is cancelled, so a long-lived parent
   * does not accumulate its children.
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
    return new Deadline(now + Math.max(0, budget), this.clock, new Scope(), false, this);
  }

  /**
   * Whether this deadline or an ancestor it has not joined yet was cancelled. An unjoined child
   * picks up its parent's cancellation here, on demand.
   */
  private cancelled(): boolean {
    if (this.scope.aborted) return true;
    const parent = this.parent;
    if (parent !== undefined && !this.armed && parent.cancelled()) {
      this.scope.abort(parent.scope.reason);
      return true;
    }
    return false;
  }

  /** The object that tidies up after this deadline's scope aborts (made on first need). */
  private tidy(): Cleanup {
    let cleanup = this.cleanup;
    if (cleanup === undefined) {
      cleanup = this.cleanup = new Cleanup(this.scope);
      this.scope.add(cleanup);
    }
    return cleanup;
  }

  private arm(): void {
    if (this.armed) return;
    if (this.cancelled()) {
      this.armed = true;
      return;
    }
    this.armed = true;
    const parent = this.parent;
    if (parent !== undefined) {
      // Join the parent's cancellation now; the parent arms too, so that it is itself joined to
      // its own parent and leaves it when it expires.
      parent.arm();
      this.tidy().parent = parent.scope;
      parent.scope.add(this.scope);
      if (this.scope.aborted) return;
      // Clamped by a parent that ends on time (a run's deadline under a request's, with the same
      // budget): the parent's timer ends both, so this one needs no timer of its own.
      if (parent.exact && this.expiresAt >= parent.expiresAt) return;
    }
    const left = this.expiresAt - this.clock.now();
    if (left <= 0) {
      this.scope.abort(new DeadlineExceededError());
      return;
    }
    const scope = this.scope;
    // setLongTimer: a deadline more than ~24.8 days away must not fire when a clamped timer does.
    const timer = setLongTimer(this.clock, () => scope.abort(new DeadlineExceededError()), left);
    // The deadline alone must not keep a process alive: the work it limits does that.
    timer.unref();
    this.tidy().timer = timer;
  }
}

/**
 * Runs when a deadline's scope aborts (expiry, cancel, parent, outside signal): clears the timer
 * and leaves the parent's scope and the outside signal, so neither keeps the deadline alive.
 */
class Cleanup implements AbortListener {
  timer: TimerHandle | undefined = undefined;
  parent: Scope | undefined = undefined;
  signal: AbortSignal | undefined = undefined;

  constructor(private readonly scope: Scope) {}

  /** The outside signal fired. */
  handleEvent(): void {
    this.scope.abort((this.signal as AbortSignal).reason);
  }

  abort(): void {
    this.timer?.clear();
    this.timer = undefined;
    this.parent?.remove(this.scope);
    this.parent = undefined;
    this.signal?.removeEventListener('abort', this);
    this.signal = undefined;
  }
}
