/**
 * timeout: limits one run of the work. When the time is up the work's AbortSignal is aborted with a
 * `TimeoutError` and the call rejects at once; it never waits for work that ignores its signal.
 * The limit is never longer than the deadline the call already runs under: when the deadline is
 * earlier, the deadline wins and the call rejects with its reason (`DeadlineExceededError`).
 */
import { systemClock, type Clock } from './clock.js';
import { InvalidOptionsError, TimeoutError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { Context, PolicyBase, type LimitOwner, type Sink, type Step } from './policy.js';
import { Scope, type AbortListener } from './scope.js';
import { TickQueue, type TickEntry } from './tick-queue.js';
import { TimerQueue } from './timer-queue.js';
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
    const exactQueue =
      ticks === undefined ? new TimerQueue<TimeoutCall<unknown>>(clock) : undefined;
    return (work, context, sink) => {
      const exact = ticks === undefined || !ticks.ticking;
      let expiresAt = ticks === undefined ? clock.now() + timeoutMs : ticks.begin();
      // An earlier outer limit (deadline or outer timeout) enforces itself through the parent
      // scope; this call only queues its own, earlier expiry.
      const queued = context.expiresAt > expiresAt;
      if (!queued) expiresAt = context.expiresAt;
      const call = new TimeoutCall(
        expiresAt,
        context.scope,
        sink,
        queued ? (ticks ?? exactQueue) : undefined,
        this,
      );
      if (exact) call.fireAt = expiresAt;
      context.scope.add(call);
      if (call.settled) return; // the parent had already aborted
      if (queued) {
        if (ticks !== undefined) ticks.add(call, exact);
        else (exactQueue as TimerQueue<TimeoutCall<unknown>>).add(call);
      }
      next(work, new Context(call, expiresAt, context.attempt, clock, undefined, this), call);
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

/** Either queue: exact (a clock read per call) or ticking. */
interface Finisher {
  finish(entry: TimeoutCall<unknown>): void;
}

/** One timed run: the child scope the work sees, the sink it settles, and a timer-queue entry. */
class TimeoutCall<T> extends Scope implements Sink<T>, TickEntry, AbortListener {
  done = false;
  settled = false;
  /** When the ticking queue fires it (set when the call's generation is sealed). */
  fireAt = Infinity;
  constructor(
    /** The limit the work is told, and the exact queue's expiry. */
    readonly expiresAt: number,
    private readonly parent: Scope,
    private readonly sink: Sink<T>,
    private readonly queue: Finisher | undefined,
    private readonly policy: TimeoutPolicy,
  ) {
    super();
  }

  ok(value: T): void {
    if (this.settled) return;
    this.settle();
    this.sink.ok(value);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settle();
    this.sink.fail(error);
  }

  /** The queue's timer reached this call's expiry. */
  expire(): void {
    this.abort(this.policy.timedOut());
  }

  /** The parent scope aborted (outer deadline, cancellation), or this call expired. */
  override abort(reason: unknown): void {
    if (this.settled) {
      // Finished already; still pass a late parent abort on to anything the work left running.
      super.abort(reason);
      return;
    }
    this.settle();
    super.abort(reason);
    this.sink.fail(reason);
  }

  private settle(): void {
    this.settled = true;
    this.parent.remove(this);
    if (this.queue !== undefined && !this.done) this.queue.finish(this);
  }
}

/** Limits each run of the work to `timeoutMs` milliseconds, aborting its signal when time is up. */
export function timeout(options: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(options);
}
