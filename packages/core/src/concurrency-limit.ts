/**
 * concurrencyLimit: an adaptive bulkhead. The number of calls allowed in flight is not a
 * constant but a limit that a limit algorithm (AIMD or a Gradient2-style latency gradient, after
 * Netflix concurrency-limits, research §5.4) moves from each call's outcome and round-trip time.
 *
 * Calls above the limit wait in a bounded priority queue (higher priority first, FIFO within a
 * priority) or are shed at once with `LoadShedError` (retryable). When the queue is full, the
 * lowest-priority waiter is shed first, so a high-priority arrival may evict a low-priority
 * waiter; among waiters of that lowest priority, the most recent one goes, keeping FIFO order for
 * the rest. Waiters leave the queue the moment their scope aborts.
 *
 * `tryAcquire` exposes the same limiter without `execute`, for HTTP servers that shed load before
 * they route a request.
 */
import { systemClock, type Clock } from './clock.js';
import { hasCode, InvalidOptionsError, LoadShedError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import {
  PolicyBase,
  type Context,
  type ExecutionContext,
  type Sink,
  type Step,
  type Work,
} from './policy.js';
import type { AbortListener } from './scope.js';
import { TimerQueue, type QueueEntry } from './timer-queue.js';
import {
  checkClock,
  checkName,
  describeValue,
  rejectUnknownKeys,
  requireInteger,
  requireObject,
  requirePositive,
} from './validate.js';
import { WaitList, type ListNode } from './wait-list.js';
import { AimdLimit, type AimdLimitOptions } from './limit/aimd.js';
import { GradientLimit, type GradientLimitOptions } from './limit/gradient.js';

/** How a finished call informs the limit. */
export type LimitOutcome = 'success' | 'dropped' | 'ignored';

/** @internal A limit algorithm: turns call samples into a new (integer) limit. */
export interface LimitAlgorithm {
  /** The current limit (an integer >= 1). */
  readonly limit: number;
  /** Whether `update` needs a real RTT; when false the clock is not read per call. */
  readonly needsRtt: boolean;
  /**
   * A call finished. `inFlight` is how many calls were in flight when it started (itself
   * included); `dropped` says it was shed or timed out downstream. Returns the new limit.
   */
  update(rttMs: number, inFlight: number, dropped: boolean): number;
}

export interface ConcurrencyLimitOptions {
  /** The limit algorithm and its settings. Required. */
  limit: AimdLimitOptions | GradientLimitOptions;
  /**
   * How many calls may wait when the limit is reached. Default 0: shed at once with
   * `LoadShedError`.
   */
  maxQueue?: number;
  /**
   * How long a queued call may wait, in milliseconds, before it is shed with `LoadShedError`.
   * Default: no limit of its own; a queued call never waits past its deadline or after its
   * signal aborts.
   */
  queueTimeoutMs?: number;
  /**
   * The call's priority; higher numbers are served first and shed last. Called only when the
   * call cannot start at once. Default: every call has priority 0.
   */
  priority?: (context: ExecutionContext) => number;
  /**
   * How a failed call informs the limit. Default: `LoadShedError` and `TimeoutError` (code
   * `LOAD_SHED` or `TIMEOUT`) are drops; every other error is ignored (an application error or a
   * cancelled call says nothing about capacity). Return `success` to count an error's latency.
   * If `classify` throws (or returns something else), the slot is still freed, as `ignored`, the
   * caller still gets the work's own error, and the bug is rethrown from a microtask, where it
   * surfaces as an uncaught exception instead of hanging the call.
   */
  classify?: (error: unknown) => LimitOutcome;
  /** Name used in events and errors. Default `"concurrency-limit"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export type ConcurrencyLimitEvent =
  | { type: 'limit.changed'; policy: string; from: number; to: number }
  | {
      type: 'limit.shed';
      policy: string;
      priority: number;
      /**
       * `limit`: at the limit with no queue (or `tryAcquire` refused); `queue_full`: the queue
       * was full of calls of equal or higher priority; `evicted`: pushed out of the queue by a
       * higher-priority call; `queue_timeout`: waited `queueTimeoutMs`.
       */
      reason: 'limit' | 'queue_full' | 'evicted' | 'queue_timeout';
      limit: number;
      inFlight: number;
      queued: number;
    };

/** A slot taken with `tryAcquire`. Release it exactly once when the work is done. */
export interface Permit {
  /**
   * Gives the slot back and feeds the limit. `rttMs` defaults to the time since `tryAcquire`
   * on the limiter's clock. A second call does nothing.
   */
  release(outcome: LimitOutcome, rttMs?: number): void;
}

function defaultClassify(error: unknown): LimitOutcome {
  return hasCode(error, 'LOAD_SHED') || hasCode(error, 'TIMEOUT') ? 'dropped' : 'ignored';
}

const OUTCOMES: readonly string[] = ['success', 'dropped', 'ignored'];

export class ConcurrencyLimitPolicy extends PolicyBase {
  readonly name: string;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number | undefined;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly emitter = new Emitter<ConcurrencyLimitEvent>();
  readonly onEvent: Subscribe<ConcurrencyLimitEvent> = this.emitter.subscribe;
  /** @internal */
  readonly waiters = new PriorityQueue<LimitWaiter<unknown>>();
  /** @internal */
  readonly timers: TimerQueue<LimitWaiter<unknown>> | undefined;
  /** @internal */
  readonly classify: (error: unknown) => LimitOutcome;
  private readonly algorithm: LimitAlgorithm;
  private readonly priorityOf: ((context: ExecutionContext) => number) | undefined;
  private inFlightCount = 0;
  private draining = false;

  constructor(options: ConcurrencyLimitOptions) {
    super();
    const where = 'concurrencyLimit';
    requireObject(where, options);
    rejectUnknownKeys(where, options, [
      'limit',
      'maxQueue',
      'queueTimeoutMs',
      'priority',
      'classify',
      'name',
      'clock',
    ]);
    this.algorithm = makeAlgorithm(options.limit);
    this.maxQueue =
      options.maxQueue === undefined ? 0 : requireInteger(where, 'maxQueue', options.maxQueue, 0);
    this.queueTimeoutMs =
      options.queueTimeoutMs === undefined
        ? undefined
        : requirePositive(where, 'queueTimeoutMs (milliseconds)', options.queueTimeoutMs);
    if (options.priority !== undefined && typeof options.priority !== 'function') {
      throw new InvalidOptionsError(
        `${where}: priority must be a function (context) => number, got ${describeValue(options.priority)}`,
      );
    }
    this.priorityOf = options.priority;
    if (options.classify !== undefined && typeof options.classify !== 'function') {
      throw new InvalidOptionsError(
        `${where}: classify must be a function (error) => 'success' | 'dropped' | 'ignored', got ${describeValue(options.classify)}`,
      );
    }
    this.classify = options.classify ?? defaultClassify;
    this.name = checkName(where, options.name) ?? 'concurrency-limit';
    this.clock = checkClock(where, options.clock) ?? systemClock;
    this.timers = this.queueTimeoutMs === undefined ? undefined : new TimerQueue(this.clock);
  }

  /** The current limit: how many calls may be in flight. */
  get limit(): number {
    return this.algorithm.limit;
  }

  /** Calls in flight now (through `execute` or `tryAcquire`). */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Calls waiting for the limit. */
  get queued(): number {
    return this.waiters.size;
  }

  /**
   * Takes a slot if one is free now, without waiting: returns a `Permit` to release when the work
   * is done, or undefined (and emits `limit.shed`) when the limit is reached. For callers that
   * run the work themselves, such as an HTTP server's load shedding.
   */
  tryAcquire(priority = 0): Permit | undefined {
    if (typeof priority !== 'number' || Number.isNaN(priority)) {
      throw new InvalidOptionsError(
        `concurrencyLimit.tryAcquire: priority must be a number, got ${String(priority)}`,
      );
    }
    if (this.inFlightCount < this.algorithm.limit && this.waiters.size === 0) {
      this.inFlightCount++;
      return new LimitPermit(this, this.clock.now(), this.inFlightCount, undefined);
    }
    this.shed(priority, 'limit');
    return undefined;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      if (context.scope.aborted) {
        sink.fail(context.scope.reason);
        return;
      }
      if (this.inFlightCount < this.algorithm.limit && this.waiters.size === 0) {
        this.start(next, work, context, sink);
        return;
      }
      this.overLimit(next, work, context, sink);
    };
  }

  /** @internal */
  start<T>(next: Step, work: Work<T>, context: Context, sink: Sink<T>): void {
    const inFlight = ++this.inFlightCount;
    const startedAt = this.algorithm.needsRtt ? this.clock.now() : 0;
    const permit = new LimitPermit(this, startedAt, inFlight, sink);
    try {
      next(work, context, permit);
    } catch (error) {
      permit.fail(error);
    }
  }

  /** @internal A permit came back. */
  complete(outcome: LimitOutcome, rttMs: number, inFlight: number): void {
    this.inFlightCount--;
    if (outcome !== 'ignored') {
      const from = this.algorithm.limit;
      const to = this.algorithm.update(rttMs, inFlight, outcome === 'dropped');
      if (to !== from && this.emitter.size > 0) {
        this.emitter.emit({ type: 'limit.changed', policy: this.name, from, to });
      }
    }
    this.drain();
  }

  /**
   * @internal How a failed call informs the limit. A `classify` that throws or answers nonsense
   * must not leak the slot or hang the call: the failure is ignored and the bug is rethrown from a
   * microtask (as events.ts does for listeners).
   */
  outcomeOf(error: unknown): LimitOutcome {
    let outcome: unknown;
    try {
      outcome = this.classify(error);
      if (outcome === 'success' || outcome === 'dropped' || outcome === 'ignored') return outcome;
      const bad = outcome;
      outcome = new InvalidOptionsError(
        `concurrencyLimit "${this.name}": classify must return "success", "dropped" or "ignored", got ${describeValue(bad)}`,
      );
    } catch (bug) {
      outcome = bug;
    }
    const bug = outcome;
    queueMicrotask(() => {
      throw bug;
    });
    return 'ignored';
  }

  /** @internal */
  get needsRtt(): boolean {
    return this.algorithm.needsRtt;
  }

  private drain(): void {
    // Admitting can run work synchronously that finishes and completes at once; the loop picks
    // that up instead of recursing once per queued call.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.inFlightCount < this.algorithm.limit) {
        const waiter = this.waiters.shift();
        if (waiter === undefined) break;
        waiter.admit();
      }
    } finally {
      this.draining = false;
    }
  }

  private overLimit<T>(next: Step, work: Work<T>, context: Context, sink: Sink<T>): void {
    let priority = 0;
    if (this.priorityOf !== undefined) {
      try {
        priority = this.priorityOf(context);
      } catch (error) {
        sink.fail(error);
        return;
      }
      if (typeof priority !== 'number' || Number.isNaN(priority)) {
        sink.fail(
          new InvalidOptionsError(
            `concurrencyLimit "${this.name}": the priority function must return a number, got ${String(priority)}`,
          ),
        );
        return;
      }
    }
    if (this.maxQueue === 0) {
      sink.fail(this.shed(priority, 'limit'));
      return;
    }
    const now = this.clock.now();
    if (context.expiresAt <= now) {
      // The limit that passed may be an outer timeout's (or the priority function cancelled the
      // call): its scope's reason is the right error when it has one.
      sink.fail(context.limitError());
      return;
    }
    if (this.waiters.size >= this.maxQueue) {
      const lowest = this.waiters.lowest() as LimitWaiter<unknown>;
      if (lowest.priority >= priority) {
        sink.fail(this.shed(priority, 'queue_full'));
        return;
      }
      lowest.evict();
    }
    const waiter = new LimitWaiter(
      this,
      priority,
      next,
      work,
      context,
      sink,
      this.queueTimeoutMs === undefined ? Infinity : now + this.queueTimeoutMs,
    );
    this.waiters.push(waiter);
    context.scope.add(waiter);
    this.timers?.add(waiter);
  }

  /** @internal */
  shed(
    priority: number,
    reason: 'limit' | 'queue_full' | 'evicted' | 'queue_timeout',
  ): LoadShedError {
    const limit = this.algorithm.limit;
    if (this.emitter.size > 0) {
      this.emitter.emit({
        type: 'limit.shed',
        policy: this.name,
        priority,
        reason,
        limit,
        inFlight: this.inFlightCount,
        queued: this.waiters.size,
      });
    }
    const why =
      reason === 'evicted'
        ? 'evicted from the queue by a higher-priority call'
        : reason === 'queue_timeout'
          ? `queue timeout: no slot within queueTimeoutMs = ${String(this.queueTimeoutMs)} ms`
          : reason === 'queue_full'
            ? 'limit reached and the queue is full'
            : 'limit reached';
    return new LoadShedError(
      `concurrency limit "${this.name}": ${why} (limit ${limit}, ${this.inFlightCount} in flight)`,
    );
  }
}

function makeAlgorithm(options: unknown): LimitAlgorithm {
  const kind = (options as { kind?: unknown } | null)?.kind;
  if (options === null || typeof options !== 'object' || (kind !== 'aimd' && kind !== 'gradient')) {
    throw new InvalidOptionsError(
      `concurrencyLimit: limit must be { kind: "aimd", ... } or { kind: "gradient", ... }, got ${
        options === null || typeof options !== 'object' ? String(options) : `kind ${String(kind)}`
      }`,
    );
  }
  return kind === 'aimd'
    ? new AimdLimit(options as AimdLimitOptions)
    : new GradientLimit(options as GradientLimitOptions);
}

/**
 * One call in flight. Through `execute` it is also the sink of the work; through `tryAcquire`
 * the caller releases it.
 */
class LimitPermit<T> implements Sink<T>, Permit {
  private released = false;
  constructor(
    private readonly policy: ConcurrencyLimitPolicy,
    private readonly startedAt: number,
    private readonly inFlight: number,
    private readonly sink: Sink<T> | undefined,
  ) {}

  ok(value: T): void {
    if (this.released) return;
    this.released = true;
    this.policy.complete('success', this.rtt(), this.inFlight);
    (this.sink as Sink<T>).ok(value);
  }

  fail(error: unknown): void {
    if (this.released) return;
    this.released = true;
    const outcome = this.policy.outcomeOf(error);
    this.policy.complete(outcome, outcome === 'ignored' ? 0 : this.rtt(), this.inFlight);
    (this.sink as Sink<T>).fail(error);
  }

  release(outcome: LimitOutcome, rttMs?: number): void {
    if (!OUTCOMES.includes(outcome)) {
      throw new InvalidOptionsError(
        `Permit.release: outcome must be "success", "dropped" or "ignored", got ${String(outcome)}`,
      );
    }
    if (rttMs !== undefined && !(typeof rttMs === 'number' && rttMs >= 0 && rttMs < Infinity)) {
      throw new InvalidOptionsError(
        `Permit.release: rttMs must be a finite number >= 0 (milliseconds), got ${String(rttMs)}`,
      );
    }
    if (this.released) return;
    this.released = true;
    this.policy.complete(outcome, rttMs ?? this.policy.clock.now() - this.startedAt, this.inFlight);
  }

  private rtt(): number {
    return this.policy.needsRtt ? this.policy.clock.now() - this.startedAt : 0;
  }
}

/** A call waiting for the limit: a priority-queue node, a scope listener and a timeout entry. */
class LimitWaiter<T> implements AbortListener, QueueEntry, ListNode<LimitWaiter<unknown>> {
  prev: LimitWaiter<unknown> | undefined = undefined;
  next: LimitWaiter<unknown> | undefined = undefined;
  list: WaitList<LimitWaiter<unknown>> | undefined = undefined;
  /** Set by the timer queue (or by `leave`) once this entry no longer needs its timeout. */
  done = false;
  constructor(
    private readonly policy: ConcurrencyLimitPolicy,
    readonly priority: number,
    private readonly step: Step,
    private readonly work: Work<T>,
    private readonly context: Context,
    private readonly sink: Sink<T>,
    readonly expiresAt: number,
  ) {}

  /** Taken off the queue by `drain`: run now. */
  admit(): void {
    this.leave();
    this.policy.start(this.step, this.work, this.context, this.sink);
  }

  /** The scope aborted while waiting: leave at once and settle with its reason. */
  abort(reason: unknown): void {
    if (!this.policy.waiters.remove(this)) return;
    this.leave();
    this.sink.fail(reason);
  }

  /** A higher-priority arrival needs this place in the full queue. */
  evict(): void {
    this.policy.waiters.remove(this);
    this.leave();
    this.sink.fail(this.policy.shed(this.priority, 'evicted'));
  }

  /** The queue timeout passed (the timer queue has already marked this entry done). */
  expire(): void {
    if (!this.policy.waiters.remove(this)) return;
    this.context.scope.remove(this);
    this.sink.fail(this.policy.shed(this.priority, 'queue_timeout'));
  }

  private leave(): void {
    this.context.scope.remove(this);
    if (!this.done && this.policy.timers !== undefined) {
      this.policy.timers.finish(this);
    }
  }
}

/** A FIFO per distinct priority. */
class Bucket<N extends ListNode<N>> extends WaitList<N> {
  constructor(readonly priority: number) {
    super();
  }
}

/**
 * @internal Waiters by priority, highest first, FIFO within a priority. There are usually only a
 * few distinct priorities, so buckets sit in a small array kept sorted (highest first).
 */
export class PriorityQueue<N extends ListNode<N> & { readonly priority: number }> {
  private buckets: Bucket<N>[] = [];
  size = 0;

  push(node: N): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && (buckets[i] as Bucket<N>).priority > node.priority) i++;
    let bucket = buckets[i];
    if (bucket === undefined || bucket.priority !== node.priority) {
      bucket = new Bucket<N>(node.priority);
      buckets.splice(i, 0, bucket);
    }
    bucket.push(node);
    this.size++;
  }

  /** Removes and returns the oldest waiter of the highest priority. */
  shift(): N | undefined {
    const bucket = this.buckets[0];
    if (bucket === undefined) return undefined;
    const node = bucket.head as N;
    this.remove(node);
    return node;
  }

  /** The newest waiter of the lowest priority: the first to shed. */
  lowest(): N | undefined {
    return this.buckets[this.buckets.length - 1]?.tail;
  }

  remove(node: N): boolean {
    if (!(node.list instanceof Bucket)) return false;
    const bucket = node.list as Bucket<N>;
    if (!bucket.remove(node)) return false;
    this.size--;
    if (bucket.size === 0) {
      const index = this.buckets.indexOf(bucket);
      if (index >= 0) this.buckets.splice(index, 1);
    }
    return true;
  }
}

/**
 * Limits calls in flight with an adaptive limit (AIMD or latency gradient); calls above it wait
 * in a bounded priority queue or are shed with `LoadShedError`.
 */
export function concurrencyLimit(options: ConcurrencyLimitOptions): ConcurrencyLimitPolicy {
  return new ConcurrencyLimitPolicy(options);
}
