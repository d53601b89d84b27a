/**
 * retry: runs the work again when an attempt fails with a retryable error (or returns a result
 * `retryOnResult` rejects), waiting a backoff delay between attempts.
 *
 * Safe by default (research §10.3): `maxAttempts` is required (cockatiel's default is to retry
 * forever with no delay), the backoff is full-jitter exponential, each policy has a retry budget
 * unless told otherwise, a `Retry-After` hint on the error is honoured (capped), and no attempt is
 * started that the deadline cannot fit.
 *
 * Outcomes, in the order they are checked after a failed attempt:
 * - the call was cancelled (its scope aborted): reject with the scope's reason;
 * - the error is not retryable (`retryOn` said no): reject with **that error, unchanged**, so a
 *   `DeadlineExceededError`, a `CancelledError` or an application's validation error surfaces as
 *   itself, whichever attempt raised it;
 * - this was attempt `maxAttempts`: reject with `RetriesExhaustedError`, whose `attempts` holds
 *   every attempt's error in order;
 * - the delay would end at or after the deadline (`now + delay >= expiresAt`): do not sleep and do
 *   not start an attempt; reject at once with `RetriesExhaustedError` whose message says the
 *   deadline leaves no room;
 * - the retry budget refuses: reject with `RetryBudgetExhaustedError`;
 * - otherwise wait the delay (abortable) and run the next attempt.
 * When retrying stops after a *result* was rejected by `retryOnResult` (attempts, deadline or
 * budget), the call resolves with that last result instead of rejecting: it is a real answer, and
 * the caller is better placed to judge it than an error that hides it.
 */
import { exponentialBackoff, type Backoff } from './backoff.js';
import { setLongTimer, systemClock, type Clock, type TimerHandle } from './clock.js';
import {
  InvalidOptionsError,
  isRetryable,
  RetriesExhaustedError,
  RetryBudgetExhaustedError,
  retryAfterMsOf,
} from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { PolicyBase, type Context, type Sink, type Step, type Work } from './policy.js';
import { systemRandom, type Random } from './random.js';
import { retryBudget, type RetryBudget } from './retry-budget.js';
import type { AbortListener } from './scope.js';
import {
  checkClock,
  checkName,
  checkRandom,
  describeValue,
  rejectUnknownKeys,
  requireFunction,
  requireInteger,
  requireNumber,
  requireObject,
} from './validate.js';

export interface RetryOptions {
  /**
   * Total attempts, the first one included: 3 means one call and up to two retries. Required,
   * an integer >= 1, with no default (an unbounded default is how retry storms start).
   */
  maxAttempts: number;
  /**
   * The delay before each retry. Default `exponentialBackoff()`: full jitter, baseMs 100,
   * maxMs 30_000, factor 2.
   */
  backoff?: Backoff;
  /**
   * Whether a failed attempt should be retried. `attempt` is the attempt that failed (1-based).
   * Default: `isRetryable(error)`, i.e. errors whose `retryable` property is `false` (deadline,
   * cancellation, invalid options, or an application error marked so) are not retried; errors
   * without the property are. If it throws, the call rejects with what it threw.
   */
  retryOn?: (error: unknown, attempt: number) => boolean;
  /**
   * Whether a successful result should be retried anyway (e.g. a 503 response object). Default:
   * results are never retried. If the last attempt's result is rejected, the call resolves with it.
   */
  retryOnResult?: (value: unknown, attempt: number) => boolean;
  /**
   * The retry budget this policy draws from, or `false` for none. Default: a new
   * `retryBudget()` for this policy (20% of requests + 10 retries/s, 10 s TTL). Pass one shared
   * budget to every policy that calls the same dependency.
   */
  budget?: RetryBudget | false;
  /**
   * Honour the delay hint an error carries (`retryAfterMs`, e.g. from a `Retry-After` header or
   * an open circuit): the delay becomes `max(backoff delay, min(hint, maxMs))`. `maxMs` is in ms,
   * >= 0, default 60_000. `false` ignores hints. Default `{ maxMs: 60_000 }`.
   */
  retryAfter?: { maxMs?: number } | false;
  /** Name used in events. Default `"retry"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Randomness for the backoff's jitter. Default: `systemRandom`. */
  random?: Random;
}

/** A retry will run after `delayMs`. `attempt` is the attempt that will run (2 for the first retry). */
export interface RetryScheduledEvent {
  type: 'retry.scheduled';
  policy: string;
  attempt: number;
  delayMs: number;
  /** The previous attempt's error, or the result `retryOnResult` rejected. */
  error: unknown;
  /** Whether `error` is an error or a rejected result. */
  outcome: 'error' | 'result';
}

/** The call succeeded after at least one retry. Not emitted for first-attempt successes. */
export interface RetrySucceededEvent {
  type: 'retry.succeeded';
  policy: string;
  attempts: number;
}

/**
 * Retrying stopped: no attempts left, or the deadline leaves no room for another. Also emitted
 * when the last outcome was a result `retryOnResult` rejected (the call then resolves with it).
 */
export interface RetryExhaustedEvent {
  type: 'retry.exhausted';
  policy: string;
  attempts: number;
  /** Each attempt's error (or rejected result), in order. */
  errors: readonly unknown[];
  reason: 'attempts' | 'deadline';
}

/** A retry was wanted but the budget refused it. */
export interface RetryBudgetExhaustedEvent {
  type: 'retry.budget_exhausted';
  policy: string;
  attempts: number;
  error: unknown;
}

export type RetryEvent =
  RetryScheduledEvent | RetrySucceededEvent | RetryExhaustedEvent | RetryBudgetExhaustedEvent;

const KNOWN = [
  'maxAttempts',
  'backoff',
  'retryOn',
  'retryOnResult',
  'budget',
  'retryAfter',
  'name',
  'clock',
  'random',
];

export class RetryPolicy extends PolicyBase {
  readonly name: string;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  /** The budget this policy draws from, or undefined when disabled. */
  readonly budget: RetryBudget | undefined;
  /** The cap on a `retryAfterMs` hint, in ms, or undefined when hints are ignored. */
  readonly retryAfterMaxMs: number | undefined;
  /** @internal */ readonly retryOn: (error: unknown, attempt: number) => boolean;
  /** @internal */ readonly retryOnResult:
    ((value: unknown, attempt: number) => boolean) | undefined;
  /** @internal */ readonly clock: Clock;
  /** @internal */ readonly random: Random;
  /** @internal */ readonly emitter = new Emitter<RetryEvent>();
  readonly onEvent: Subscribe<RetryEvent> = this.emitter.subscribe;

  constructor(options: RetryOptions) {
    super();
    const where = 'retry';
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionsError(
        `${where}: expected an options object such as retry({ maxAttempts: 3 }), got ${describeValue(options)}`,
      );
    }
    rejectUnknownKeys(where, options, KNOWN);
    if (options.maxAttempts === undefined) {
      throw new InvalidOptionsError(
        `${where}: maxAttempts is required (total attempts including the first, an integer >= 1); ` +
          `there is no default because unbounded retries cause retry storms. ` +
          `For example retry({ maxAttempts: 3 })`,
      );
    }
    this.maxAttempts = requireInteger(where, 'maxAttempts', options.maxAttempts, 1);
    this.name = checkName(where, options.name) ?? 'retry';
    this.clock = checkClock(where, options.clock) ?? systemClock;
    checkRandom(where, options.random);
    this.random = options.random ?? systemRandom;
    const backoff = options.backoff ?? exponentialBackoff();
    if (backoff === null || typeof backoff !== 'object' || typeof backoff.next !== 'function') {
      throw new InvalidOptionsError(
        `${where}: backoff must be a Backoff (an object with next()), e.g. exponentialBackoff(); got ${describeValue(backoff)}`,
      );
    }
    this.backoff = backoff;
    if (options.retryOn !== undefined) requireFunction(where, 'retryOn', options.retryOn);
    this.retryOn = options.retryOn ?? defaultRetryOn;
    if (options.retryOnResult !== undefined) {
      requireFunction(where, 'retryOnResult', options.retryOnResult);
    }
    this.retryOnResult = options.retryOnResult;
    const budget = options.budget;
    if (budget === false) {
      this.budget = undefined;
    } else if (budget === undefined) {
      this.budget = retryBudget({ clock: this.clock });
    } else if (
      budget === null ||
      typeof budget !== 'object' ||
      typeof budget.recordRequest !== 'function' ||
      typeof budget.tryWithdraw !== 'function'
    ) {
      throw new InvalidOptionsError(
        `${where}: budget must be a RetryBudget (e.g. retryBudget()) or false, got ${describeValue(budget)}`,
      );
    } else {
      this.budget = budget;
    }
    const retryAfter = options.retryAfter;
    if (retryAfter === false) {
      this.retryAfterMaxMs = undefined;
    } else if (retryAfter === undefined) {
      this.retryAfterMaxMs = 60_000;
    } else {
      requireObject(`${where}: retryAfter`, retryAfter);
      rejectUnknownKeys(`${where}: retryAfter`, retryAfter, ['maxMs']);
      this.retryAfterMaxMs =
        retryAfter.maxMs === undefined
          ? 60_000
          : requireNumber(where, 'retryAfter.maxMs', retryAfter.maxMs, 0);
    }
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      this.budget?.recordRequest();
      new RetryCall(this, next, work, context, sink).start();
    };
  }
}

function defaultRetryOn(error: unknown): boolean {
  return isRetryable(error);
}

/**
 * One call: the sink every attempt settles, and the abort listener while it sleeps. It runs
 * attempts in a loop rather than by recursion, so synchronous failures with a zero delay cannot
 * grow the stack however large maxAttempts is.
 */
class RetryCall<T> implements Sink<T>, AbortListener {
  // Fields are `declare`d and set in the constructor: a per-call object, and ES2022 class fields
  // would define every field as undefined and then store it again (see scope.ts).
  declare private attempt: number;
  /** DONE, RUNNING and AGAIN bits: one small integer instead of three fields on every call. */
  declare private state: number;
  /**
   * Errors, delays and the sleep timer: allocated on the first failure, so a call whose first
   * attempt succeeds carries none of it.
   */
  declare private failure: RetryFailure | undefined;
  declare private readonly policy: RetryPolicy;
  declare private readonly next: Step;
  declare private readonly work: Work<T>;
  declare private readonly context: Context;
  declare private readonly sink: Sink<T>;

  constructor(policy: RetryPolicy, next: Step, work: Work<T>, context: Context, sink: Sink<T>) {
    this.attempt = 0;
    this.state = 0;
    this.failure = undefined;
    this.policy = policy;
    this.next = next;
    this.work = work;
    this.context = context;
    this.sink = sink;
  }

  start(): void {
    this.state |= RUNNING;
    do {
      this.state &= ~AGAIN;
      const n = ++this.attempt;
      const context = this.context;
      this.next(this.work, n === context.attempt ? context : context.withAttempt(n), this);
    } while ((this.state & AGAIN) !== 0);
    this.state &= ~RUNNING;
  }

  ok(value: T): void {
    if ((this.state & DONE) !== 0) return;
    const retryOnResult = this.policy.retryOnResult;
    if (retryOnResult !== undefined) {
      let retry: boolean;
      try {
        retry = retryOnResult(value, this.attempt);
      } catch (error) {
        this.finish();
        this.sink.fail(error);
        return;
      }
      if (retry) {
        this.failed(value, 'result');
        return;
      }
    }
    this.finish();
    const emitter = this.policy.emitter;
    if (this.attempt > 1 && emitter.size > 0) {
      emitter.emit({ type: 'retry.succeeded', policy: this.policy.name, attempts: this.attempt });
    }
    this.sink.ok(value);
  }

  fail(error: unknown): void {
    if ((this.state & DONE) !== 0) return;
    this.failed(error, 'error');
  }

  /** The scope aborted while sleeping: stop now, with its reason. */
  abort(reason: unknown): void {
    if ((this.state & DONE) !== 0) return;
    this.finish();
    this.sink.fail(reason);
  }

  private failed(outcome: unknown, kind: 'error' | 'result'): void {
    const policy = this.policy;
    const scope = this.context.scope;
    const attempt = this.attempt;
    if (scope.aborted) {
      // Whoever aborted has settled the caller already; never start another attempt.
      this.finish();
      this.sink.fail(scope.reason);
      return;
    }
    if (kind === 'error') {
      let retryable: boolean;
      try {
        retryable = policy.retryOn(outcome, attempt);
      } catch (thrown) {
        this.finish();
        this.sink.fail(thrown);
        return;
      }
      if (!retryable) {
        this.finish();
        this.sink.fail(outcome);
        return;
      }
    }
    const failure = (this.failure ??= new RetryFailure());
    const errors = failure.errors;
    errors.push(outcome);
    if (attempt >= policy.maxAttempts) {
      this.giveUp(outcome, kind, 'attempts', `all ${attempt} attempts failed`);
      return;
    }
    let delayMs: number;
    try {
      delayMs = policy.backoff.next({
        attempt,
        previousDelayMs: failure.previousDelayMs,
        error: outcome,
        random: policy.random,
      });
    } catch (thrown) {
      this.finish();
      this.sink.fail(thrown);
      return;
    }
    if (!(delayMs >= 0)) delayMs = 0;
    failure.previousDelayMs = delayMs;
    const capMs = policy.retryAfterMaxMs;
    if (capMs !== undefined) {
      const hint = retryAfterMsOf(outcome);
      if (hint !== undefined) {
        const capped = hint < capMs ? hint : capMs;
        if (capped > delayMs) delayMs = capped;
      }
    }
    const expiresAt = this.context.expiresAt;
    if (expiresAt !== Infinity) {
      const now = policy.clock.now();
      if (now + delayMs >= expiresAt) {
        const left = Math.max(0, expiresAt - now);
        this.giveUp(
          outcome,
          kind,
          'deadline',
          `gave up after ${attempt} of ${policy.maxAttempts} attempts: the deadline leaves no room ` +
            `for another (${round(left)} ms left, the next retry needs a ${round(delayMs)} ms delay first)`,
        );
        return;
      }
    }
    const budget = policy.budget;
    if (budget !== undefined && !budget.tryWithdraw()) {
      this.finish();
      if (policy.emitter.size > 0) {
        policy.emitter.emit({
          type: 'retry.budget_exhausted',
          policy: policy.name,
          attempts: attempt,
          error: outcome,
        });
      }
      if (kind === 'result') this.sink.ok(outcome as T);
      else this.sink.fail(new RetryBudgetExhaustedError(errors));
      return;
    }
    if (policy.emitter.size > 0) {
      policy.emitter.emit({
        type: 'retry.scheduled',
        policy: policy.name,
        attempt: attempt + 1,
        delayMs,
        error: outcome,
        outcome: kind,
      });
    }
    if (delayMs === 0) {
      this.retryNow();
      return;
    }
    scope.add(this);
    // add() calls abort() at once if the scope aborted during an event listener.
    if ((this.state & DONE) !== 0) return;
    // setLongTimer: a delay beyond the largest timer delay (a custom backoff's maxMs, a long
    // Retry-After) must not retry early.
    failure.timer = setLongTimer(policy.clock, () => this.wake(), delayMs);
  }

  private wake(): void {
    (this.failure as RetryFailure).timer = undefined;
    if ((this.state & DONE) !== 0) return;
    this.context.scope.remove(this);
    this.retryNow();
  }

  private retryNow(): void {
    if ((this.state & RUNNING) !== 0) this.state |= AGAIN;
    else this.start();
  }

  private giveUp(
    outcome: unknown,
    kind: 'error' | 'result',
    reason: 'attempts' | 'deadline',
    message: string,
  ): void {
    this.finish();
    const policy = this.policy;
    const errors = (this.failure as RetryFailure).errors;
    if (policy.emitter.size > 0) {
      policy.emitter.emit({
        type: 'retry.exhausted',
        policy: policy.name,
        attempts: this.attempt,
        errors,
        reason,
      });
    }
    if (kind === 'result') this.sink.ok(outcome as T);
    else this.sink.fail(new RetriesExhaustedError(errors, message));
  }

  private finish(): void {
    this.state |= DONE;
    const failure = this.failure;
    if (failure?.timer !== undefined) {
      // Only a sleeping call holds a timer and a place on the scope.
      failure.timer.clear();
      failure.timer = undefined;
      this.context.scope.remove(this);
    }
  }
}

/** RetryCall.state bits. */
const DONE = 1;
/** Inside `start`: a synchronous failure asks for the next attempt instead of recursing. */
const RUNNING = 2;
const AGAIN = 4;

/** What a call keeps once an attempt has failed. */
class RetryFailure {
  /** Each failed attempt's error (or rejected result), in order. */
  readonly errors: unknown[] = [];
  previousDelayMs = 0;
  timer: TimerHandle | undefined = undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Retries failed attempts with backoff, a retry budget, Retry-After hints and deadline awareness.
 * `maxAttempts` is required: `retry({ maxAttempts: 3 })`.
 */
export function retry(options: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
