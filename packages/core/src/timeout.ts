/**
 * timeout: limits one run of the work. When the time is up the work's AbortSignal is aborted with a
 * `TimeoutError` and the call rejects at once; it never waits for work that ignores its signal.
 * The limit is never longer than the deadline the call already runs under: when the deadline is
 * earlier, the deadline wins and the call rejects with its reason (`DeadlineExceededError`).
 */
import { systemClock, type Clock } from './clock.js';
import { TimeoutError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { Context, PolicyBase, type Sink, type Step } from './policy.js';
import { Scope, type AbortListener } from './scope.js';
import { TimerQueue, type QueueEntry } from './timer-queue.js';
import { rejectUnknownKeys, requireObject, requirePositive } from './validate.js';

export interface TimeoutOptions {
  /** The limit for one run of the work, in milliseconds. Required. */
  timeoutMs: number;
  /** Name used in events and errors. Default `"timeout"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export interface TimeoutEvent {
  type: 'timeout.expired';
  policy: string;
  timeoutMs: number;
}

export class TimeoutPolicy extends PolicyBase {
  readonly name: string;
  readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly emitter = new Emitter<TimeoutEvent>();
  readonly onEvent: Subscribe<TimeoutEvent> = this.emitter.subscribe;

  constructor(options: TimeoutOptions) {
    super();
    requireObject('timeout', options);
    rejectUnknownKeys('timeout', options, ['timeoutMs', 'name', 'clock']);
    this.timeoutMs = requirePositive('timeout', 'timeoutMs', options.timeoutMs);
    this.name = options.name ?? 'timeout';
    this.clock = options.clock ?? systemClock;
  }

  compose(next: Step): Step {
    const queue = new TimerQueue<TimeoutCall<unknown>>(this.clock);
    const clock = this.clock;
    const timeoutMs = this.timeoutMs;
    return (work, context, sink) => {
      let expiresAt = clock.now() + timeoutMs;
      // An earlier outer limit (deadline or outer timeout) enforces itself through the parent
      // scope; this call only queues its own, earlier expiry.
      const queued = context.expiresAt > expiresAt;
      if (!queued) expiresAt = context.expiresAt;
      const call = new TimeoutCall(
        expiresAt,
        sink,
        context.scope,
        queued ? queue : undefined,
        this,
      );
      context.scope.add(call);
      if (call.settled) return; // the parent had already aborted
      if (queued) queue.add(call);
      next(work, new Context(call, expiresAt, context.attempt, clock), call);
    };
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

/** One timed run: the sink for the work, the child scope the work sees, and a queue entry. */
class TimeoutCall<T> extends Scope implements Sink<T>, QueueEntry, AbortListener {
  done = false;
  settled = false;
  constructor(
    readonly expiresAt: number,
    private readonly sink: Sink<T>,
    private readonly parent: Scope,
    private readonly queue: TimerQueue<TimeoutCall<unknown>> | undefined,
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
