/**
 * timeout: limits one run of the work. When the time is up the work's AbortSignal is aborted with a
 * `TimeoutError` and the call rejects at once; it never waits for work that ignores its signal.
 * The limit is never longer than the deadline the call already runs under: when the deadline is
 * earlier, the deadline wins and the call rejects with its reason (`DeadlineExceededError`).
 */
import { systemClock, type Clock } from './clock.js';
import { InvalidOptionsError, TimeoutError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import type { Deadline } from './deadline.js';
import {
  Context,
  deadlineOf,
  limitErrorOf,
  PolicyBase,
  type LimitOwner,
  type Sink,
  type Step,
} from './policy.js';
import { Scope, type AbortListener } from './scope.js';
import { TickQueue, type TickEntry } from './tick-queue.js';
import { TimerQueue, type QueueEntry } from './timer-queue.js';
import {
  checkClock,
  checkName,
  rejectUnknownKeys,
  requireNumber,
  requireObject,
  requirePositive,
} from './validate.js';

export interface TimeoutOptions {
  /** The limit for one run of the work, in milliseconds. Required. */
  timeoutMs: number;
  /**
   * How precisely a call that starts while others are in flight is timed, in milliseconds. Such
   * calls read no clock (see tick-queue.ts) and time out between `timeoutMs` and
   * `timeoutMs + resolutionMs` after they start; a call that starts while the policy is idle is
   * timed exactly. `0` times every call exactly, at the cost of a clock read per call.
   * Default: `timeoutMs / 50`, at least 1 and at most 25.
   */
  resolutionMs?: number;
  /** Name used in events. Default `"timeout"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export interface TimeoutEvent {
  type: 'timeout.expired';
  policy: string;
  timeoutMs: number;
}

export class TimeoutPolicy extends PolicyBase implements LimitOwner {
  readonly name: string;
  readonly timeoutMs: number;
  readonly resolutionMs: number;
  /** @internal */
  readonly clock: Clock;
  private readonly emitter = new Emitter<TimeoutEvent>();
  readonly onEvent: Subscribe<TimeoutEvent> = this.emitter.subscribe;

  constructor(options: TimeoutOptions) {
    super();
    requireObject('timeout', options);
    rejectUnknownKeys('timeout', options, ['timeoutMs', 'resolutionMs', 'name', 'clock']);
    this.timeoutMs = requirePositive('timeout', 'timeoutMs', options.timeoutMs);
    this.resolutionMs =
      options.resolutionMs === undefined
        ? Math.min(25, Math.max(1, this.timeoutMs / 50))
        : requireNumber('timeout', 'resolutionMs', options.resolutionMs);
    if (this.resolutionMs > this.timeoutMs) {
      throw new InvalidOptionsError(
        `timeout: resolutionMs (${this.resolutionMs}) must be <= timeoutMs (${this.timeoutMs}); omit it for the default`,
      );
    }
    this.name = checkName('timeout', options.name) ?? 'timeout';
    this.clock = checkClock('timeout', options.clock) ?? systemClock;
  }

  compose(next: Step): Step {
    const clock = this.clock;
    const timeoutMs = this.timeoutMs;
    // resolutionMs 0: every call reads the clock and shares one exact timer queue.
    const ticks =
      this.resolutionMs === 0
        ? undefined
        : new TickQueue<TimeoutCall<unknown>>(clock, timeoutMs, this.resolutionMs);
    const shared = new TimeoutShared(
      this,
      ticks,
      ticks === undefined ? new TimerQueue<TimeoutCall<unknown>>(clock) : undefined,
    );
    return (work, context, sink) => {
      // A busy policy (its ticker running) reads no clock: the common case, kept small so the
      // optimizer can inline it; the rest (idle policy, exact queue) is `shared.enterExact`.
      const call =
        ticks !== undefined && ticks.ticking
          ? shared.enterTicking(ticks, context, sink)
          : shared.enterExact(context, sink);
      // The call is the work's context too: its own scope, its expiry, this policy's error.
      if (call !== undefined) next(work, call, call);
    };
  }

  /** @internal The error for a call under this timeout that has no time left (see Context). */
  limitError(): TimeoutError {
    return new TimeoutError(this.timeoutMs);
  }

  /** @internal */
  timedOut(): TimeoutError {
    const error = new TimeoutError(this.timeoutMs);
    if (this.emitter.size > 0) {
      this.emitter.emit({ type: 'timeout.expired', policy: this.name, timeoutMs: this.timeoutMs });
    }
    return error;
  }
}

/** What one composed timeout step shares between its calls. */
class TimeoutShared {
  constructor(
    readonly policy: TimeoutPolicy,
    readonly ticks: TickQueue<TimeoutCall<unknown>> | undefined,
    readonly exact: TimerQueue<TimeoutCall<unknown>> | undefined,
  ) {}

  /**
   * Starts a call while the ticker runs: it joins the current tick's generation. Undefined when
   * the parent scope had already aborted (the call is then settled).
   */
  enterTicking<T>(
    ticks: TickQueue<TimeoutCall<unknown>>,
    context: Context,
    sink: Sink<T>,
  ): TimeoutCall<T> | undefined {
    const expiresAt = ticks.current;
    // An earlier outer limit (deadline or outer timeout) enforces itself through the parent
    // scope; this call only queues its own, earlier expiry.
    const queued = context.expiresAt > expiresAt;
    const call = new TimeoutCall(
      context.scope,
      sink,
      this,
      !queued,
      queued ? expiresAt : context.expiresAt,
      context.attempt,
    );
    context.scope.add(call);
    if (call.settled) return undefined; // the parent had already aborted
    if (queued) ticks.add(call);
    return call;
  }

  /** Starts a call that reads the clock: the policy was idle, or `resolutionMs` is 0. */
  enterExact<T>(context: Context, sink: Sink<T>): TimeoutCall<T> | undefined {
    const ticks = this.ticks;
    let expiresAt =
      ticks === undefined ? this.policy.clock.now() + this.policy.timeoutMs : ticks.begin();
    const queued = context.expiresAt > expiresAt;
    if (!queued) expiresAt = context.expiresAt;
    const call = new TimeoutCall(context.scope, sink, this, !queued, expiresAt, context.attempt);
    context.scope.add(call);
    if (call.settled) return undefined; // the parent had already aborted
    if (queued) {
      if (ticks === undefined) (this.exact as TimerQueue<TimeoutCall<unknown>>).add(call);
      else ticks.addExact(call, expiresAt);
    }
    return call;
  }

  finish(call: TimeoutCall<unknown>): void {
    if (this.ticks !== undefined) this.ticks.finish(call);
    else (this.exact as TimerQueue<TimeoutCall<unknown>>).finish(call);
  }
}

/**
 * One timed run: the child scope the work sees, the context the steps inside get, the sink the
 * work settles, and a timer-queue entry, in one object (it is made on every call). Its only
 * number that is not a small integer is `expiresAt`: the ticking queue keeps expiries per
 * generation, since each such field costs a 16-byte heap box per object on Node.
 */
class TimeoutCall<T>
  extends Scope
  implements Sink<T>, TickEntry, QueueEntry, AbortListener, Context
{
  // `declare`d fields set in the constructor: made on every call (see scope.ts).
  /** @internal See Context. */
  declare made: Deadline | undefined;
  declare private readonly parent: Scope;
  /** Where the outcome goes; undefined once settled (it doubles as the settled flag). */
  declare private sink: Sink<T> | undefined;
  declare private readonly shared: TimeoutShared;
  /** Out of the queue: finished, expired, or never queued (an earlier outer limit rules). */
  declare done: boolean;
  /**
   * The limit the work is told (and the exact queue's expiry). A real class field, unlike the
   * others: it starts out undefined, so V8 keeps it as a pointer and calls that share an expiry
   * share one heap number (the ticking queue hands out one per tick). A field that only ever
   * held numbers would get a fresh 16-byte box on every call.
   */
  readonly expiresAt: number;
  declare readonly attempt: number;

  constructor(
    parent: Scope,
    sink: Sink<T>,
    shared: TimeoutShared,
    done: boolean,
    expiresAt: number,
    attempt: number,
  ) {
    super();
    this.made = undefined;
    this.parent = parent;
    this.sink = sink;
    this.shared = shared;
    this.done = done;
    this.expiresAt = expiresAt;
    this.attempt = attempt;
  }

  // ---- Context ----
  get scope(): Scope {
    return this;
  }
  get clock(): Clock {
    return this.shared.policy.clock;
  }
  get limit(): LimitOwner {
    return this.shared.policy;
  }
  get cancellable(): boolean {
    return true;
  }
  get deadline(): Deadline | undefined {
    return deadlineOf(this);
  }
  limitError(): unknown {
    return limitErrorOf(this);
  }
  withAttempt(attempt: number): Context {
    return new Context(this, this.expiresAt, attempt, this.clock, this.made, this.limit);
  }

  /** True once the call has an outcome (finished, expired, or aborted from outside). */
  get settled(): boolean {
    return this.sink === undefined;
  }

  // ---- Sink ----
  ok(value: T): void {
    const sink = this.sink;
    if (sink === undefined) return;
    this.settle();
    sink.ok(value);
  }

  fail(error: unknown): void {
    const sink = this.sink;
    if (sink === undefined) return;
    this.settle();
    sink.fail(error);
  }

  /** The queue's timer reached this call's expiry. */
  expire(): void {
    this.abort(this.shared.policy.timedOut());
  }

  /** The parent scope aborted (outer deadline, cancellation), or this call expired. */
  override abort(reason: unknown): void {
    const sink = this.sink;
    if (sink === undefined) {
      // Finished already; still pass a late parent abort on to anything the work left running.
      super.abort(reason);
      return;
    }
    this.settle();
    super.abort(reason);
    sink.fail(reason);
  }

  private settle(): void {
    this.sink = undefined;
    this.parent.remove(this);
    if (!this.done) this.shared.finish(this);
  }
}

/** Limits each run of the work to `timeoutMs` milliseconds, aborting its signal when time is up. */
export function timeout(options: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(options);
}
