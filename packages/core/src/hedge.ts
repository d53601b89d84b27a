/**
 * hedge: when an attempt is slow, start another one and take whichever succeeds first ("The Tail at
 * Scale", Dean & Barroso 2013; gRPC `hedgingPolicy`; Polly's hedging strategy).
 *
 * Hedging runs the work more than once at the same time, so it is for IDEMPOTENT work only (reads,
 * or writes protected by an idempotency key).
 *
 * - The first attempt starts at once. If it has not settled after the hedge delay, another attempt
 *   starts with its own cancellation scope; up to `maxHedges` more. Attempt scopes are not linked
 *   into the call's scope: the call listens once and relays an abort to the attempts still
 *   running, so a finished attempt leaves nothing registered on the call's scope.
 * - The first SUCCESS wins. Every other attempt still running is cancelled: its signal aborts with a
 *   {@link HedgeCancelledError} (code `CANCELLED`).
 * - A failure while other attempts run does not settle the call; like a non-fatal status in gRPC,
 *   it starts the next hedge at once (when hedges and budget remain, and `hedgeOnError` allows it).
 * - When every attempt has failed, the call rejects with the LAST error to arrive, unchanged. A
 *   hedge that never fired is therefore invisible, and error kinds (`CIRCUIT_OPEN`, `TIMEOUT`, ...)
 *   still reach outer policies such as `retry` and `fallback`.
 * - If `hedgeOnError` throws, the failed attempt starts no hedge (as if it returned false), the
 *   call settles as it otherwise would, and the bug is rethrown from a microtask, where it
 *   surfaces as an uncaught exception instead of hanging the call.
 * - Hedges never outlive the deadline: no hedge starts at or after `expiresAt`, and when the call's
 *   scope aborts (deadline, caller cancel, outer timeout) every attempt is aborted and the call
 *   rejects at once with the scope's reason.
 * - A budget keeps the extra load small: hedges started <= `budgetRatio` x calls, plus
 *   `budgetMinPerSecond`, over a sliding 10 s window (Finagle-style). Above it, slow calls simply
 *   wait for their first attempt.
 */
import { setLongTimer, systemClock, type Clock, type TimerHandle } from './clock.js';
import { CancelledError, InvalidOptionsError, isRetryable } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { LatencyTracker } from './latency-tracker.js';
import { Context, PolicyBase, type Sink, type Step, type Work } from './policy.js';
import type { Random } from './random.js';
import { Scope, type AbortListener } from './scope.js';
import {
  checkClock,
  checkName,
  checkRandom,
  describeValue,
  rejectUnknownKeys,
  requireInteger,
  requireNumber,
  requireObject,
  requireRatio,
} from './validate.js';

/** Start a hedge a fixed time after the call started (and after each previous hedge). */
export interface FixedHedgeDelay {
  kind: 'fixed';
  /** Milliseconds to wait before each hedge. `0` starts all attempts together. Required. */
  delayMs: number;
}

/**
 * Start a hedge once the call has been outstanding longer than a percentile of recent attempt
 * latencies (the paper's "defer until the p95 for this class of request").
 */
export interface PercentileHedgeDelay {
  kind: 'percentile';
  /** Which percentile of observed latencies to wait, as a fraction in (0, 1]. Default `0.95`. */
  percentile?: number;
  /** Never hedge sooner than this many milliseconds. Default `0`. */
  minDelayMs?: number;
  /** Never wait longer than this many milliseconds. Default: no limit. */
  maxDelayMs?: number;
  /** Samples needed before the percentile is trusted; until then `fallbackDelayMs` is used. Default `20`. */
  minSamples?: number;
  /** The delay in milliseconds until `minSamples` latencies have been recorded. Required. */
  fallbackDelayMs: number;
}

export type HedgeDelay = FixedHedgeDelay | PercentileHedgeDelay;

export interface HedgeOptions {
  /** When to start a hedge. Required. */
  delay: HedgeDelay;
  /** Extra attempts at most (so `maxHedges + 1` attempts in all). Integer >= 1. Default `1`. */
  maxHedges?: number;
  /**
   * Hedges allowed per call over the sliding 10 s window, in [0, 1]. Default `0.05`: hedging adds
   * at most about 5% load (plus `budgetMinPerSecond`).
   */
  budgetRatio?: number;
  /**
   * Hedges always allowed per second on top of the ratio, so a quiet service can still hedge.
   * Default `1`.
   */
  budgetMinPerSecond?: number;
  /**
   * Whether a failed attempt may start the next hedge at once rather than waiting for the delay.
   * Default: errors that do not say `retryable: false` (see `isRetryable`). A function that throws
   * counts as false; its error is rethrown from a microtask.
   */
  hedgeOnError?: boolean | ((error: unknown) => boolean);
  /** Name used in events. Default `"hedge"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /**
   * Reserved: hedging makes no random decisions today (accepted and validated so a shared options
   * object with `clock` and `random` can be passed to every policy). Default: `systemRandom`.
   */
  random?: Random;
}

export type HedgeEvent =
  | {
      type: 'hedge.started';
      policy: string;
      /** 2 for the first hedge, 3 for the second, ... (1 is the first attempt). */
      attempt: number;
      /** Milliseconds since the call started. */
      delayMs: number;
      /** `delay`: the hedge delay passed; `error`: an attempt failed and another was started at once. */
      trigger: 'delay' | 'error';
    }
  | { type: 'hedge.won'; policy: string; attempt: number }
  | { type: 'hedge.budget_exhausted'; policy: string };

/** The reason a losing attempt's signal aborts with: another attempt of the same call succeeded. */
export class HedgeCancelledError extends CancelledError {
  constructor(
    /** The attempt that won (1 = the first attempt). */
    readonly winner: number,
  ) {
    super();
    this.message = `hedged attempt cancelled: attempt ${winner} succeeded first`;
  }
}

const BUCKETS = 10;
const BUCKET_MS = 1000;

/** Sliding-window hedge budget: O(1) per call, 10 one-second buckets. */
class HedgeBudget {
  private readonly calls = new Float64Array(BUCKETS);
  private readonly hedges = new Float64Array(BUCKETS);
  private callSum = 0;
  private hedgeSum = 0;
  private bucket = -1;
  /** Calls that settled synchronously (no clock read); placed in the bucket at the next read. */
  unplaced = 0;

  constructor(
    private readonly ratio: number,
    private readonly minPerSecond: number,
  ) {}

  deposit(now: number): void {
    this.roll(now);
    const index = this.bucket % BUCKETS;
    const add = 1 + this.unplaced;
    this.unplaced = 0;
    this.calls[index] = (this.calls[index] as number) + add;
    this.callSum += add;
  }

  tryTake(now: number): boolean {
    this.roll(now);
    const allowed = this.minPerSecond * ((BUCKETS * BUCKET_MS) / 1000) + this.ratio * this.callSum;
    if (this.hedgeSum + 1 > allowed) return false;
    const index = this.bucket % BUCKETS;
    this.hedges[index] = (this.hedges[index] as number) + 1;
    this.hedgeSum++;
    return true;
  }

  private roll(now: number): void {
    const bucket = Math.floor(now / BUCKET_MS);
    if (bucket === this.bucket) return;
    if (this.bucket < 0 || bucket - this.bucket >= BUCKETS) {
      this.calls.fill(0);
      this.hedges.fill(0);
      this.callSum = 0;
      this.hedgeSum = 0;
    } else if (bucket > this.bucket) {
      for (let b = this.bucket + 1; b <= bucket; b++) {
        const index = b % BUCKETS;
        this.callSum -= this.calls[index] as number;
        this.hedgeSum -= this.hedges[index] as number;
        this.calls[index] = 0;
        this.hedges[index] = 0;
      }
    } else {
      return; // a clock that went backwards: keep the current bucket
    }
    this.bucket = bucket;
  }
}

export class HedgePolicy extends PolicyBase {
  readonly name: string;
  readonly maxHedges: number;
  readonly budgetRatio: number;
  readonly budgetMinPerSecond: number;
  /** Recent attempt latencies (percentile mode only). */
  readonly latency: LatencyTracker | undefined;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly budget: HedgeBudget;
  private readonly fixedDelayMs: number;
  private readonly percentile: number;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly minSamples: number;
  private readonly hedgeOnError: boolean | ((error: unknown) => boolean);
  private readonly emitter = new Emitter<HedgeEvent>();
  readonly onEvent: Subscribe<HedgeEvent> = this.emitter.subscribe;

  constructor(options: HedgeOptions) {
    super();
    const where = 'hedge';
    requireObject(where, options);
    rejectUnknownKeys(where, options, [
      'delay',
      'maxHedges',
      'budgetRatio',
      'budgetMinPerSecond',
      'hedgeOnError',
      'name',
      'clock',
      'random',
    ]);
    const delay = options.delay as HedgeDelay | undefined;
    if (delay === null || typeof delay !== 'object') {
      throw new InvalidOptionsError(
        `${where}: delay is required, e.g. { kind: 'percentile', fallbackDelayMs: 50 } or { kind: 'fixed', delayMs: 50 }; got ${String(delay)}`,
      );
    }
    if (delay.kind === 'fixed') {
      rejectUnknownKeys(`${where}: delay`, delay, ['kind', 'delayMs']);
      this.fixedDelayMs = requireNumber(where, 'delay.delayMs', delay.delayMs);
      this.percentile = 0;
      this.minDelayMs = 0;
      this.maxDelayMs = Infinity;
      this.minSamples = 0;
      this.latency = undefined;
    } else if (delay.kind === 'percentile') {
      rejectUnknownKeys(`${where}: delay`, delay, [
        'kind',
        'percentile',
        'minDelayMs',
        'maxDelayMs',
        'minSamples',
        'fallbackDelayMs',
      ]);
      const p = delay.percentile ?? 0.95;
      if (typeof p !== 'number' || !(p > 0 && p <= 1)) {
        throw new InvalidOptionsError(
          `${where}: delay.percentile must be a fraction in (0, 1], got ${String(p)}; use 0.95 for p95`,
        );
      }
      this.percentile = p;
      this.fixedDelayMs = requireNumber(where, 'delay.fallbackDelayMs', delay.fallbackDelayMs);
      this.minDelayMs = requireNumber(where, 'delay.minDelayMs', delay.minDelayMs ?? 0);
      this.maxDelayMs =
        delay.maxDelayMs === undefined
          ? Infinity
          : requireNumber(where, 'delay.maxDelayMs', delay.maxDelayMs);
      if (this.maxDelayMs < this.minDelayMs) {
        throw new InvalidOptionsError(
          `${where}: delay.maxDelayMs (${this.maxDelayMs}) must be >= delay.minDelayMs (${this.minDelayMs})`,
        );
      }
      this.minSamples = requireInteger(where, 'delay.minSamples', delay.minSamples ?? 20, 1);
      this.latency = new LatencyTracker();
    } else {
      throw new InvalidOptionsError(
        `${where}: delay.kind must be 'fixed' or 'percentile', got ${String((delay as { kind?: unknown }).kind)}`,
      );
    }
    this.maxHedges = requireInteger(where, 'maxHedges', options.maxHedges ?? 1, 1);
    this.budgetRatio = requireRatio(where, 'budgetRatio', options.budgetRatio ?? 0.05);
    this.budgetMinPerSecond = requireNumber(
      where,
      'budgetMinPerSecond',
      options.budgetMinPerSecond ?? 1,
    );
    const hedgeOnError = options.hedgeOnError ?? isRetryable;
    if (typeof hedgeOnError !== 'boolean' && typeof hedgeOnError !== 'function') {
      throw new InvalidOptionsError(
        `${where}: hedgeOnError must be a boolean or a function (error) => boolean, got ${describeValue(hedgeOnError)}`,
      );
    }
    this.hedgeOnError = hedgeOnError;
    checkName(where, options.name);
    checkClock(where, options.clock);
    checkRandom(where, options.random);
    this.name = options.name ?? 'hedge';
    this.clock = options.clock ?? systemClock;
    this.budget = new HedgeBudget(this.budgetRatio, this.budgetMinPerSecond);
  }

  /** The delay, in milliseconds, a call starting now would wait before its first hedge. */
  currentDelayMs(): number {
    const latency = this.latency;
    if (latency === undefined || latency.recorded < this.minSamples) return this.fixedDelayMs;
    const value = latency.percentile(this.percentile) as number;
    return value < this.minDelayMs
      ? this.minDelayMs
      : value > this.maxDelayMs
        ? this.maxDelayMs
        : value;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      new HedgeCall(this, next, work, context, sink).start();
    };
  }

  /** @internal */
  mayHedgeOn(error: unknown): boolean {
    const rule = this.hedgeOnError;
    if (typeof rule === 'boolean') return rule;
    try {
      return rule(error);
    } catch (bug) {
      // The call must still settle; surface the bug outside its control flow (as events.ts does).
      queueMicrotask(() => {
        throw bug;
      });
      return false;
    }
  }

  /** @internal */
  get listening(): boolean {
    return this.emitter.size > 0;
  }

  /** @internal */
  emit(event: HedgeEvent): void {
    this.emitter.emit(event);
  }
}

/** One attempt: its own scope (a loser can be aborted alone) and its own sink. */
class Attempt<T> extends Scope implements Sink<T> {
  running = true;
  constructor(
    private readonly call: HedgeCall<T>,
    readonly index: number,
    public startedAt: number,
  ) {
    super();
  }
  ok(value: T): void {
    if (!this.running) return;
    this.running = false;
    this.call.succeeded(this, value);
  }
  fail(error: unknown): void {
    if (!this.running) return;
    this.running = false;
    this.call.failed(this, error);
  }
}

/** One hedged call: launches attempts, arms the hedge timer, settles the caller's sink once. */
class HedgeCall<T> implements AbortListener {
  settled = false;
  /** True once the first attempt did not settle synchronously (the call waits). */
  private pending = false;
  private startedAt = 0;
  private first: Attempt<T> | undefined;
  private others: Attempt<T>[] | undefined;
  private running = 0;
  private hedges = 0;
  private noBudget = false;
  private timer: TimerHandle | undefined;
  private onTimer: (() => void) | undefined;

  constructor(
    private readonly policy: HedgePolicy,
    private readonly next: Step,
    private readonly work: Work<T>,
    private readonly context: Context,
    private readonly sink: Sink<T>,
  ) {}

  start(): void {
    const parent = this.context.scope;
    if (parent.aborted) {
      this.settled = true;
      this.sink.fail(parent.reason);
      return;
    }
    this.launch(0, 0);
    if (this.settled || this.first === undefined) {
      // Settled synchronously: no clock read, no timer, no listener. Counted for the budget later.
      this.policy.budget.unplaced++;
      return;
    }
    const policy = this.policy;
    const now = policy.clock.now();
    this.pending = true;
    this.startedAt = now;
    this.first.startedAt = now;
    policy.budget.deposit(now);
    parent.add(this);
    if (!this.settled) this.arm(policy.currentDelayMs(), now);
  }

  /** The call's scope aborted: stop every attempt and reject with its reason now. */
  abort(reason: unknown): void {
    if (this.settled) return;
    this.finish();
    this.abortRunning(reason);
    this.sink.fail(reason);
  }

  succeeded(attempt: Attempt<T>, value: T): void {
    if (this.settled) return;
    const policy = this.policy;
    this.finish();
    if (this.pending && policy.latency !== undefined) {
      const now = policy.clock.now();
      policy.latency.record(now - attempt.startedAt);
      // The first attempt is cut short when a hedge wins; its elapsed time is a lower bound of its
      // latency. Dropping it would keep only the fast samples and pull the percentile down.
      const first = this.first as Attempt<T>;
      if (first !== attempt && first.running) policy.latency.record(now - first.startedAt);
    }
    if (this.hedges > 0) {
      this.abortRunning(new HedgeCancelledError(attempt.index + 1));
      if (policy.listening) {
        policy.emit({ type: 'hedge.won', policy: policy.name, attempt: attempt.index + 1 });
      }
    }
    this.sink.ok(value);
  }

  failed(_attempt: Attempt<T>, error: unknown): void {
    if (this.settled) return;
    this.running--;
    if (this.pending && this.policy.mayHedgeOn(error)) {
      if (this.timer !== undefined) {
        this.timer.clear();
        this.timer = undefined;
      }
      this.hedge('error');
      if (this.settled) return;
    }
    if (this.running > 0) return; // another attempt may still succeed
    this.finish();
    this.sink.fail(error);
  }

  private launch(index: number, now: number): Attempt<T> {
    const context = this.context;
    const attempt = new Attempt(this, index, now);
    if (index === 0) this.first = attempt;
    else (this.others ??= []).push(attempt);
    this.running++;
    this.next(
      this.work,
      new Context(
        attempt,
        context.expiresAt,
        context.attempt + index,
        context.clock,
        undefined,
        context.limit,
      ),
      attempt,
    );
    return attempt;
  }

  private arm(delayMs: number, now: number): void {
    if (this.hedges >= this.policy.maxHedges || this.noBudget) return;
    // A hedge that would start at or after the deadline could not finish in time.
    if (now + delayMs >= this.context.expiresAt) return;
    // setLongTimer: a delay beyond the largest timer delay must not hedge early.
    this.timer = setLongTimer(this.policy.clock, (this.onTimer ??= () => this.fire()), delayMs);
  }

  private fire(): void {
    this.timer = undefined;
    if (!this.settled) this.hedge('delay');
  }

  private hedge(trigger: 'delay' | 'error'): void {
    const policy = this.policy;
    if (this.hedges >= policy.maxHedges || this.noBudget) return;
    const now = policy.clock.now();
    if (now >= this.context.expiresAt) return;
    if (!policy.budget.tryTake(now)) {
      this.noBudget = true;
      if (policy.listening) policy.emit({ type: 'hedge.budget_exhausted', policy: policy.name });
      return;
    }
    const index = ++this.hedges;
    if (policy.listening) {
      policy.emit({
        type: 'hedge.started',
        policy: policy.name,
        attempt: index + 1,
        delayMs: now - this.startedAt,
        trigger,
      });
    }
    this.launch(index, now);
    if (!this.settled && this.timer === undefined) this.arm(policy.currentDelayMs(), now);
  }

  /** Marks the call settled and releases the timer and the parent listener. */
  private finish(): void {
    this.settled = true;
    if (this.timer !== undefined) {
      this.timer.clear();
      this.timer = undefined;
    }
    if (this.pending) this.context.scope.remove(this);
  }

  private abortRunning(reason: unknown): void {
    const first = this.first;
    if (first?.running) {
      first.running = false;
      first.abort(reason);
    }
    const others = this.others;
    if (others !== undefined) {
      for (const attempt of others) {
        if (attempt.running) {
          attempt.running = false;
          attempt.abort(reason);
        }
      }
    }
  }
}

/**
 * Hedges slow attempts of IDEMPOTENT work: starts another attempt when the first is slow and keeps
 * the first success, cancelling the rest. See the module comment for the exact rules.
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
