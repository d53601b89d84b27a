/**
 * bulkhead: runs at most `maxConcurrent` calls at once. Extra calls wait in a bounded FIFO queue
 * (`maxQueue`, default 0: reject at once). A waiter leaves the queue the moment its scope aborts
 * (caller cancelled, deadline passed), so aborted waiters never hold or block a slot, and it can
 * be given a queue timeout (`queueTimeoutMs`), which cockatiel's bulkhead lacks (research §1.1).
 * The slot is released when the work settles, whether it returned, rejected or threw.
 */
import { systemClock, type Clock } from './clock.js';
import { BulkheadFullError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { PolicyBase, type Context, type Sink, type Step, type Work } from './policy.js';
import type { AbortListener } from './scope.js';
import { TimerQueue, type QueueEntry } from './timer-queue.js';
import {
  checkClock,
  checkName,
  rejectUnknownKeys,
  requireInteger,
  requireObject,
  requirePositive,
} from './validate.js';
import { WaitList, type ListNode } from './wait-list.js';

export interface BulkheadOptions {
  /** How many calls may run at the same time. Required; an integer >= 1. */
  maxConcurrent: number;
  /**
   * How many calls may wait for a slot. Default 0: a call that finds every slot taken is rejected
   * at once with `BulkheadFullError`.
   */
  maxQueue?: number;
  /**
   * How long a queued call may wait for a slot, in milliseconds; after that it is rejected with
   * `BulkheadFullError` (queue timeout). Default: no limit of its own; a queued call still never
   * waits past its deadline or after its signal aborts.
   */
  queueTimeoutMs?: number;
  /** Name used in events and errors. Default `"bulkhead"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export type BulkheadEvent =
  | {
      type: 'bulkhead.rejected';
      policy: string;
      /** `full`: every slot and queue place was taken; `queue_timeout`: waited `queueTimeoutMs`. */
      reason: 'full' | 'queue_timeout';
      running: number;
      queued: number;
    }
  | { type: 'bulkhead.queued'; policy: string; running: number; queued: number }
  | {
      type: 'bulkhead.dequeued';
      policy: string;
      /** `admitted`: the call got a slot; `aborted`: its scope aborted while it waited. */
      outcome: 'admitted' | 'aborted';
      waitedMs: number;
      queued: number;
    };

export class BulkheadPolicy extends PolicyBase {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number | undefined;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly emitter = new Emitter<BulkheadEvent>();
  readonly onEvent: Subscribe<BulkheadEvent> = this.emitter.subscribe;
  /** @internal */
  readonly waiters = new WaitList<BulkheadWaiter<unknown>>();
  /** @internal one shared timer for every queue timeout (they all have the same length) */
  readonly timers: TimerQueue<BulkheadWaiter<unknown>> | undefined;
  private runningCount = 0;
  private draining = false;

  constructor(options: BulkheadOptions) {
    super();
    const where = 'bulkhead';
    requireObject(where, options);
    rejectUnknownKeys(where, options, [
      'maxConcurrent',
      'maxQueue',
      'queueTimeoutMs',
      'name',
      'clock',
    ]);
    this.maxConcurrent = requireInteger(where, 'maxConcurrent', options.maxConcurrent, 1);
    this.maxQueue =
      options.maxQueue === undefined ? 0 : requireInteger(where, 'maxQueue', options.maxQueue, 0);
    this.queueTimeoutMs =
      options.queueTimeoutMs === undefined
        ? undefined
        : requirePositive(where, 'queueTimeoutMs (milliseconds)', options.queueTimeoutMs);
    this.name = checkName(where, options.name) ?? 'bulkhead';
    this.clock = checkClock(where, options.clock) ?? systemClock;
    this.timers = this.queueTimeoutMs === undefined ? undefined : new TimerQueue(this.clock);
  }

  /** Calls running now. */
  get running(): number {
    return this.runningCount;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiters.size;
  }

  /** Free slots. */
  get available(): number {
    return this.maxConcurrent - this.runningCount;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      if (context.scope.aborted) {
        sink.fail(context.scope.reason);
        return;
      }
      // New calls queue behind waiters even when a slot is free, so the queue stays FIFO.
      if (this.runningCount < this.maxConcurrent && this.waiters.size === 0) {
        this.start(next, work, context, sink);
        return;
      }
      this.enqueue(next, work, context, sink);
    };
  }

  /** @internal */
  start<T>(next: Step, work: Work<T>, context: Context, sink: Sink<T>): void {
    this.runningCount++;
    const slot = new BulkheadSlot(this, sink);
    try {
      next(work, context, slot);
    } catch (error) {
      // Steps do not throw, but a broken one must not leak the slot.
      slot.fail(error);
    }
  }

  /** @internal Called once per slot when its work settles. */
  release(): void {
    this.runningCount--;
    this.drain();
  }

  private drain(): void {
    // Admitting a waiter can run its work synchronously, which can settle and release at once;
    // the loop picks that up instead of recursing once per queued call.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.runningCount < this.maxConcurrent) {
        const waiter = this.waiters.shift();
        if (waiter === undefined) break;
        waiter.admit();
      }
    } finally {
      this.draining = false;
    }
  }

  private enqueue<T>(next: Step, work: Work<T>, context: Context, sink: Sink<T>): void {
    if (this.waiters.size >= this.maxQueue) {
      sink.fail(this.rejected('full', `bulkhead "${this.name}" is full`));
      return;
    }
    const now = this.clock.now();
    if (context.expiresAt <= now) {
      // No time left to wait in: do not queue a call that could only run past its deadline. When
      // the limit's owner (an outer timeout, say) has already aborted the scope, its reason is the
      // error; otherwise its timer has not fired yet and the deadline's error stands in.
      sink.fail(context.limitError());
      return;
    }
    const waiter = new BulkheadWaiter(
      this,
      next,
      work,
      context,
      sink,
      now,
      this.queueTimeoutMs === undefined ? Infinity : now + this.queueTimeoutMs,
    );
    this.waiters.push(waiter);
    context.scope.add(waiter);
    this.timers?.add(waiter);
    if (this.emitter.size > 0) {
      this.emitter.emit({
        type: 'bulkhead.queued',
        policy: this.name,
        running: this.runningCount,
        queued: this.waiters.size,
      });
    }
  }

  /** @internal */
  rejected(reason: 'full' | 'queue_timeout', message: string): BulkheadFullError {
    if (this.emitter.size > 0) {
      this.emitter.emit({
        type: 'bulkhead.rejected',
        policy: this.name,
        reason,
        running: this.runningCount,
        queued: this.waiters.size,
      });
    }
    return new BulkheadFullError(this.name, message);
  }
}

/** The sink for running work: gives the slot back once, then passes the outcome on. */
class BulkheadSlot<T> implements Sink<T> {
  private released = false;
  constructor(
    private readonly policy: BulkheadPolicy,
    private readonly sink: Sink<T>,
  ) {}
  ok(value: T): void {
    if (this.released) return;
    this.released = true;
    this.policy.release();
    this.sink.ok(value);
  }
  fail(error: unknown): void {
    if (this.released) return;
    this.released = true;
    this.policy.release();
    this.sink.fail(error);
  }
}

/** A call waiting for a slot: a queue node, a scope listener and a queue-timeout entry. */
class BulkheadWaiter<T> implements AbortListener, QueueEntry, ListNode<BulkheadWaiter<unknown>> {
  prev: BulkheadWaiter<unknown> | undefined = undefined;
  next: BulkheadWaiter<unknown> | undefined = undefined;
  list: WaitList<BulkheadWaiter<unknown>> | undefined = undefined;
  /** Set by the timer queue (or by `leave`) once this entry no longer needs its timeout. */
  done = false;
  constructor(
    private readonly policy: BulkheadPolicy,
    private readonly step: Step,
    private readonly work: Work<T>,
    private readonly context: Context,
    private readonly sink: Sink<T>,
    private readonly enqueuedAt: number,
    readonly expiresAt: number,
  ) {}

  /** Taken off the queue by `drain`: run now. */
  admit(): void {
    this.leave();
    this.dequeued('admitted');
    this.policy.start(this.step, this.work, this.context, this.sink);
  }

  /** The scope aborted while waiting: leave at once, so no slot is ever handed to this call. */
  abort(reason: unknown): void {
    if (!this.policy.waiters.remove(this)) return;
    this.leave();
    this.dequeued('aborted');
    this.sink.fail(reason);
  }

  /** The queue timeout passed (the timer queue has already marked this entry done). */
  expire(): void {
    if (!this.policy.waiters.remove(this)) return;
    this.context.scope.remove(this);
    this.sink.fail(
      this.policy.rejected(
        'queue_timeout',
        `bulkhead "${this.policy.name}": queue timeout, no slot free within queueTimeoutMs = ${String(this.policy.queueTimeoutMs)} ms`,
      ),
    );
  }

  private leave(): void {
    this.context.scope.remove(this);
    if (!this.done && this.policy.timers !== undefined) {
      this.policy.timers.finish(this);
    }
  }

  private dequeued(outcome: 'admitted' | 'aborted'): void {
    const emitter = this.policy.emitter;
    if (emitter.size > 0) {
      emitter.emit({
        type: 'bulkhead.dequeued',
        policy: this.policy.name,
        outcome,
        waitedMs: this.policy.clock.now() - this.enqueuedAt,
        queued: this.policy.waiters.size,
      });
    }
  }
}

/**
 * Limits how many calls run at once; extra calls wait in a bounded FIFO queue or are rejected with
 * `BulkheadFullError`.
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
