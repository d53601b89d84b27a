/**
 * rateLimiter: a token bucket. The bucket holds up to `burst` tokens and refills at
 * `tokensPerSecond`; each call takes one token. The level is computed from the time elapsed since
 * the last call, so an idle limiter costs nothing: no interval timer, ever.
 *
 * In `reject` mode a call that finds no token fails at once with `RateLimitedError`, whose
 * `retryAfterMs` is the time until a token is available. In `wait` mode it waits its turn in a
 * FIFO queue; one timer (for the head of the queue) exists only while someone waits. A call is
 * queued only when its turn can come within `maxWaitMs` and before its deadline; otherwise it
 * fails at once with `RateLimitedError`, so no wait ever outlasts the deadline.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { InvalidOptionsError, RateLimitedError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { PolicyBase, type Context, type Sink, type Step, type Work } from './policy.js';
import type { AbortListener } from './scope.js';
import {
  checkClock,
  checkName,
  rejectUnknownKeys,
  requireNumber,
  requireObject,
  requirePositive,
} from './validate.js';
import { WaitList, type ListNode } from './wait-list.js';

export interface RateLimiterOptions {
  /** Refill rate, in tokens (calls) per second; may be fractional (0.5 = one call every 2 s). Required. */
  tokensPerSecond: number;
  /**
   * Bucket size: how many calls may start back to back after a quiet period. The bucket starts
   * full. Default `max(1, tokensPerSecond)`, i.e. one second's worth of tokens.
   */
  burst?: number;
  /**
   * What a call does when no token is left. `reject` (default): fail at once with
   * `RateLimitedError` (`retryAfterMs` = time until a token is available). `wait`: wait for a
   * token in FIFO order.
   */
  mode?: 'reject' | 'wait';
  /**
   * `wait` mode only: the longest a call may wait for its token, in milliseconds. A call whose
   * turn would come later fails at once with `RateLimitedError`. Default: no limit of its own; the
   * call's deadline still applies.
   */
  maxWaitMs?: number;
  /** Name used in events and errors. Default `"rate-limiter"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export type RateLimiterEvent =
  | {
      type: 'ratelimit.rejected';
      policy: string;
      /**
       * `no_tokens`: reject mode, the bucket is empty. `max_wait`: wait mode, the turn would come
       * after `maxWaitMs`. `deadline`: wait mode, the turn would come after the call's deadline.
       */
      reason: 'no_tokens' | 'max_wait' | 'deadline';
      retryAfterMs: number;
    }
  | { type: 'ratelimit.waited'; policy: string; waitedMs: number; queued: number };

/** Float refill arithmetic must not leave a call one rounding error short of its token. */
const EPSILON = 1e-9;

export class RateLimiterPolicy extends PolicyBase {
  readonly name: string;
  readonly tokensPerSecond: number;
  readonly burst: number;
  readonly mode: 'reject' | 'wait';
  readonly maxWaitMs: number;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly emitter = new Emitter<RateLimiterEvent>();
  readonly onEvent: Subscribe<RateLimiterEvent> = this.emitter.subscribe;
  /** @internal */
  readonly waiters = new WaitList<RateWaiter<unknown>>();
  private readonly perMs: number;
  private level: number;
  private updatedAt: number;
  private timer: TimerHandle | undefined = undefined;

  constructor(options: RateLimiterOptions) {
    super();
    const where = 'rateLimiter';
    requireObject(where, options);
    rejectUnknownKeys(where, options, [
      'tokensPerSecond',
      'burst',
      'mode',
      'maxWaitMs',
      'name',
      'clock',
    ]);
    this.tokensPerSecond = requirePositive(where, 'tokensPerSecond', options.tokensPerSecond);
    this.burst =
      options.burst === undefined
        ? Math.max(1, this.tokensPerSecond)
        : requireNumber(where, 'burst (tokens)', options.burst, 1);
    const mode = options.mode ?? 'reject';
    if (mode !== 'reject' && mode !== 'wait') {
      throw new InvalidOptionsError(
        `${where}: mode must be "reject" or "wait", got ${JSON.stringify(mode)}`,
      );
    }
    this.mode = mode;
    if (options.maxWaitMs !== undefined && mode !== 'wait') {
      throw new InvalidOptionsError(
        `${where}: maxWaitMs only applies to mode "wait"; set mode: "wait" or remove maxWaitMs`,
      );
    }
    this.maxWaitMs =
      options.maxWaitMs === undefined
        ? Infinity
        : requireNumber(where, 'maxWaitMs (milliseconds)', options.maxWaitMs, 0);
    this.name = checkName(where, options.name) ?? 'rate-limiter';
    this.clock = checkClock(where, options.clock) ?? systemClock;
    this.perMs = this.tokensPerSecond / 1000;
    this.level = this.burst;
    this.updatedAt = this.clock.now();
  }

  /** Tokens in the bucket now (fractional). Waiting calls have first claim on them. */
  get tokens(): number {
    this.refill(this.clock.now());
    return this.level;
  }

  /** Calls waiting for a token (`wait` mode). */
  get queued(): number {
    return this.waiters.size;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      if (context.scope.aborted) {
        sink.fail(context.scope.reason);
        return;
      }
      const now = this.clock.now();
      this.refill(now);
      // Waiters are served first: a new call never takes a token someone queued for.
      if (this.waiters.size === 0 && this.level >= 1 - EPSILON) {
        this.level -= 1;
        next(work, context, sink);
        return;
      }
      // Aborted waiters only make later turns come sooner, so this is an upper bound.
      const waitMs = (this.waiters.size + 1 - this.level) / this.perMs;
      if (this.mode === 'reject') {
        sink.fail(this.rejected('no_tokens', waitMs));
      } else if (waitMs > this.maxWaitMs) {
        sink.fail(this.rejected('max_wait', waitMs));
      } else if (now + waitMs >= context.expiresAt) {
        sink.fail(this.rejected('deadline', waitMs));
      } else {
        this.enqueue(new RateWaiter(this, next, work, context, sink, now));
      }
    };
  }

  private refill(now: number): void {
    const elapsed = now - this.updatedAt;
    this.updatedAt = now;
    if (elapsed > 0) {
      const level = this.level + elapsed * this.perMs;
      this.level = level > this.burst ? this.burst : level;
    }
  }

  private enqueue<T>(waiter: RateWaiter<T>): void {
    this.waiters.push(waiter);
    waiter.context.scope.add(waiter);
    this.timer ??= this.arm();
  }

  /** One timer, for when the head of the queue gets its token. */
  private arm(): TimerHandle {
    return this.clock.setTimer(() => this.fire(), (1 - this.level) / this.perMs);
  }

  private fire(): void {
    this.timer = undefined;
    this.refill(this.clock.now());
    while (this.level >= 1 - EPSILON) {
      const waiter = this.waiters.shift();
      if (waiter === undefined) break;
      this.level -= 1;
      waiter.admit();
    }
    if (this.waiters.size > 0) this.timer ??= this.arm();
  }

  /** @internal A waiter aborted and left the queue. */
  left(): void {
    if (this.waiters.size === 0 && this.timer !== undefined) {
      this.timer.clear();
      this.timer = undefined;
    }
  }

  private rejected(
    reason: 'no_tokens' | 'max_wait' | 'deadline',
    waitMs: number,
  ): RateLimitedError {
    // Whole milliseconds, rounded up (after forgiving float noise), so that retrying after
    // `retryAfterMs` finds the token there.
    const retryAfterMs = Math.max(0, Math.ceil(waitMs - 1e-6));
    if (this.emitter.size > 0) {
      this.emitter.emit({ type: 'ratelimit.rejected', policy: this.name, reason, retryAfterMs });
    }
    return new RateLimitedError(this.name, retryAfterMs);
  }
}

/** A call waiting for its token: a queue node and a scope listener. */
class RateWaiter<T> implements AbortListener, ListNode<RateWaiter<unknown>> {
  prev: RateWaiter<unknown> | undefined = undefined;
  next: RateWaiter<unknown> | undefined = undefined;
  list: WaitList<RateWaiter<unknown>> | undefined = undefined;
  constructor(
    private readonly policy: RateLimiterPolicy,
    private readonly step: Step,
    private readonly work: Work<T>,
    readonly context: Context,
    private readonly sink: Sink<T>,
    private readonly enqueuedAt: number,
  ) {}

  /** Got its token (already taken from the bucket): run now. */
  admit(): void {
    this.context.scope.remove(this);
    const policy = this.policy;
    if (policy.emitter.size > 0) {
      policy.emitter.emit({
        type: 'ratelimit.waited',
        policy: policy.name,
        waitedMs: policy.clock.now() - this.enqueuedAt,
        queued: policy.waiters.size,
      });
    }
    this.step(this.work, this.context, this.sink);
  }

  /** The scope aborted (caller cancelled, deadline): leave the queue and settle at once. */
  abort(reason: unknown): void {
    if (!this.policy.waiters.remove(this)) return;
    this.policy.left();
    this.sink.fail(reason);
  }
}

/** Limits the rate of calls with a token bucket; calls over the rate are rejected or wait. */
export function rateLimiter(options: RateLimiterOptions): RateLimiterPolicy {
  return new RateLimiterPolicy(options);
}
