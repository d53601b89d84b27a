/**
 * circuitBreaker: stops calling a dependency that keeps failing, and lets a few probes find out
 * when it has recovered.
 *
 * - closed: every call runs; its outcome goes into a failure-detection window (consecutive
 *   failures, the last N calls, or the last `windowMs`), optionally with a slow-call rate.
 * - open: every call is rejected at once with `CircuitOpenError` (with `retryAfterMs`). There is no
 *   timer: the first call after the open period moves the breaker to half-open.
 * - half-open: at most `halfOpen.probes` calls run at a time; everyone else is rejected at once
 *   (never queued). `successesToClose` successful probes close the breaker; one failed probe opens
 *   it again, for longer each time when `openBackoff` is set.
 * - isolated: opened by hand with `isolate()` until every holder disposes its handle.
 *
 * State lives on the policy object, so one breaker placed in several pipelines is one circuit.
 *
 * Recording rules:
 * - Rates open the breaker when they reach the threshold (`>=`, as in resilience4j), and only once
 *   the window holds `minimumCalls` calls. Every outcome is evaluated, a success included: the call
 *   that brings the window to `minimumCalls` can open it.
 * - The window is emptied on every state change. An outcome is recorded only under the state the
 *   call was admitted in: a call admitted while closed that ends after the breaker opened, or a
 *   probe from an earlier half-open period, is passed to its caller but not counted.
 * - Slow calls (longer than `slowCall.thresholdMs`) count as failures for a half-open probe.
 * - Errors that say nothing about the dependency's health are IGNORED (resilience4j's
 *   `ignoreExceptions`): not counted at all, neither failure nor success, and not timed as slow.
 *   By default these are the codes in {@link BREAKER_IGNORED_CODES}: the caller's own
 *   cancellation (`CANCELLED`, which includes a hedge's losing attempts) and rejections by a limiter
 *   or another breaker inside this one (`BULKHEAD_FULL`, `RATE_LIMITED`, `LOAD_SHED`,
 *   `CIRCUIT_OPEN`). An ignored probe frees its slot without deciding anything. `ignore` is checked
 *   before `isFailure`.
 * - A probe whose call is aborted (deadline, outer timeout, caller's signal) before its work
 *   settles frees its slot at once. The abort reason is then classified like an error: ignored
 *   (a caller's cancellation, by default), or a failed probe unless `isFailure` returns false.
 *   So work that ignores its signal cannot hold the breaker in half-open, PROVIDED something can
 *   abort or settle the call: a deadline, a caller's signal, a timeout outside, or (best) the
 *   per-attempt `timeout` inside the breaker. A probe with none of these whose work never settles
 *   holds its slot, and the breaker stays half-open, rejecting every other call, until it does.
 * - Put the per-attempt `timeout` inside the breaker (`pipeline(retry, breaker, timeout)`) so
 *   that timeouts are counted as failures in the closed state too, and a hung probe ends as a
 *   failed probe.
 */
import { ConsecutiveWindow } from './breaker/consecutive.js';
import { CountWindow } from './breaker/count-window.js';
import { TimeWindow } from './breaker/time-window.js';
import {
  FAILURE,
  SLOW,
  TRIP_FAILURE,
  type FailureWindow,
  type WindowSnapshot,
} from './breaker/window.js';
import { systemClock, type Clock } from './clock.js';
import {
  CircuitOpenError,
  InvalidOptionsError,
  isBulwarkError,
  type BulwarkErrorCode,
} from './errors.js';
import { Emitter, type Disposable, type Subscribe } from './events.js';
import { PolicyBase, type Context, type Sink, type Step, type Work } from './policy.js';
import type { AbortListener, Scope } from './scope.js';
import {
  checkClock,
  checkName,
  describeValue,
  rejectUnknownKeys,
  requireFunction,
  requireInteger,
  requireNumber,
  requireObject,
  requirePositive,
} from './validate.js';

export type { WindowSnapshot } from './breaker/window.js';

const WHERE = 'circuitBreaker';

/**
 * Error codes a circuit breaker ignores by default: they say nothing about the dependency's
 * health. `CANCELLED`: the caller gave up (or a hedge cancelled a losing attempt).
 * `BULKHEAD_FULL`, `RATE_LIMITED`, `LOAD_SHED`: a limiter inside the breaker turned the call away
 * before it reached the dependency. `CIRCUIT_OPEN`: another breaker inside this one is open; it
 * already counted the failures that opened it.
 */
export const BREAKER_IGNORED_CODES: readonly BulwarkErrorCode[] = Object.freeze([
  'CANCELLED',
  'BULKHEAD_FULL',
  'RATE_LIMITED',
  'LOAD_SHED',
  'CIRCUIT_OPEN',
]);

/**
 * The default `ignore` of a circuit breaker: true for Bulwark errors whose code is in
 * {@link BREAKER_IGNORED_CODES}. Extend it rather than replace it, e.g.
 * `ignore: e => isIgnoredByBreaker(e) || e instanceof ClientAbortError`.
 */
export function isIgnoredByBreaker(error: unknown): boolean {
  return isBulwarkError(error) && BREAKER_IGNORED_CODES.includes(error.code);
}

// ---- options ------------------------------------------------------------------------------------

/** Opens after `failures` failing calls in a row. */
export interface ConsecutiveTrigger {
  kind: 'consecutive';
  /** Failing calls in a row that open the breaker. Integer >= 1. Required. */
  failures: number;
}

/** Opens when the failure rate over the last `windowSize` calls reaches `failureRate`. */
export interface CountTrigger {
  kind: 'count';
  /** Number of most recent calls the rate is computed over. Integer >= 1. Required. */
  windowSize: number;
  /**
   * Opens when failures / calls >= this (the threshold itself opens: 0.5 opens at exactly half).
   * In (0, 1]. Required.
   */
  failureRate: number;
  /** Calls needed in the window before any rate is evaluated. Integer in [1, windowSize]. Default `windowSize`. */
  minimumCalls?: number;
}

/** Opens when the failure rate over the last `windowMs` milliseconds reaches `failureRate`. */
export interface TimeTrigger {
  kind: 'time';
  /** Length of the sliding window in milliseconds. > 0. Required. */
  windowMs: number;
  /** Opens when failures / calls >= this. In (0, 1]. Required. */
  failureRate: number;
  /** Calls needed in the window before any rate is evaluated. Integer >= 1. Default 10. */
  minimumCalls?: number;
  /**
   * Buckets the window is split into; old calls leave the window one bucket (`windowMs / buckets`)
   * at a time. Integer in [1, 1000]. Default 10.
   */
  buckets?: number;
}

export type BreakerTrigger = ConsecutiveTrigger | CountTrigger | TimeTrigger;

export interface SlowCallOptions {
  /** A call that takes longer than this many milliseconds (strictly) is slow. > 0. Required. */
  thresholdMs: number;
  /**
   * Opens when slow calls / calls >= this over the trigger's window. In (0, 1]. Required. With a
   * `consecutive` trigger the rate is not used: a slow call counts as a failure toward `failures`.
   */
  rate: number;
}

export interface OpenBackoffOptions {
  /** Each open without a close in between lasts this many times longer than the previous one. >= 1. Default 2. */
  factor?: number;
  /** Longest open period in milliseconds. >= `openMs`. Required. */
  maxMs: number;
}

export interface HalfOpenOptions {
  /** Probe calls allowed to run at the same time in half-open. Integer >= 1. Default 1. */
  probes?: number;
  /** Successful probes needed to close. Integer >= 1. Default `probes`. */
  successesToClose?: number;
}

export interface CircuitBreakerOptions {
  /** When the closed breaker opens. Required. */
  trigger: BreakerTrigger;
  /** Also open when too many calls are slow (resilience4j's slow-call rate). Default: off. */
  slowCall?: SlowCallOptions;
  /** How long the breaker stays open before it lets probes through, in milliseconds. >= 0. Default 30 000. */
  openMs?: number;
  /** Make each open longer when probes keep failing. Default: off (every open lasts `openMs`). */
  openBackoff?: OpenBackoffOptions;
  /** Probing in half-open. Default `{ probes: 1, successesToClose: 1 }`. */
  halfOpen?: HalfOpenOptions;
  /**
   * Errors that say nothing about the dependency's health: passed to the caller unchanged and not
   * counted at all (neither failure nor success, nor slow); an ignored half-open probe frees its
   * slot without deciding. Checked before `isFailure`, also for the reason a probe was aborted
   * with. Default {@link isIgnoredByBreaker}: the codes in {@link BREAKER_IGNORED_CODES}
   * (caller cancellation and inner limiter or breaker rejections). `() => false` counts every
   * error through `isFailure`.
   */
  ignore?: (error: unknown) => boolean;
  /**
   * Whether an error (not ignored) counts as a failure. Default: every error does. An error for
   * which this returns false is passed to the caller unchanged and counts as a success (the
   * dependency answered), e.g. `e => !(e instanceof NotFoundError)`.
   */
  isFailure?: (error: unknown) => boolean;
  /** Whether a returned value counts as a failure (e.g. an HTTP 503 response). The value is still returned. Default: none does. */
  isResultFailure?: (value: unknown) => boolean;
  /** Name used in events and in `CircuitOpenError`. Default `"circuit-breaker"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Start from a snapshot taken with `snapshot()` (possibly in another process). Default: closed and empty. */
  initialState?: BreakerSnapshot;
}

// ---- state, snapshot and events -----------------------------------------------------------------

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * A breaker's state as plain JSON. Monotonic clocks differ between processes, so an open period
 * is stored as the time it had left plus the wall time of the snapshot; restoring subtracts the
 * wall time that passed since (never less than zero).
 */
export interface BreakerSnapshot {
  /** Format version. */
  readonly version: 1;
  readonly state: BreakerState;
  /** Milliseconds the open period still had to run (0 unless open). */
  readonly openRemainingMs: number;
  /** Wall-clock time of the snapshot, in ms since the Unix epoch. */
  readonly takenAtWallMs: number;
  /** Opens since the last close (drives `openBackoff`). */
  readonly opens: number;
  /** The closed-state window. */
  readonly window: WindowSnapshot;
}

/** Why the breaker opened. */
export type OpenReason = 'failures' | 'slow_calls' | 'probe_failed';

export type CircuitBreakerEvent =
  | {
      type: 'breaker.opened';
      policy: string;
      from: BreakerState;
      to: 'open';
      reason: OpenReason;
      /** How long this open period lasts. */
      openMs: number;
    }
  | { type: 'breaker.half_opened'; policy: string; from: 'open'; to: 'half-open' }
  | { type: 'breaker.closed'; policy: string; from: BreakerState; to: 'closed' }
  | { type: 'breaker.isolated'; policy: string; from: BreakerState; to: 'isolated' }
  | {
      type: 'breaker.rejected';
      policy: string;
      state: BreakerState;
      /** Time left in the open period; undefined in half-open and isolated. */
      retryAfterMs: number | undefined;
    }
  | { type: 'breaker.success'; policy: string; state: BreakerState }
  | {
      type: 'breaker.ignored';
      policy: string;
      state: BreakerState;
      /** The error `ignore` matched (for an aborted probe, the abort reason). */
      error: unknown;
    }
  | {
      type: 'breaker.failure';
      policy: string;
      state: BreakerState;
      /** `error`: the work threw; `result`: `isResultFailure` matched; `slow`: it succeeded too slowly. */
      cause: 'error' | 'result' | 'slow';
      /** The error the work threw (undefined unless cause is `error`). */
      error: unknown;
    };

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;
const ISOLATED = 3;
const STATE_NAMES: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];

// ---- the policy ---------------------------------------------------------------------------------

export class CircuitBreakerPolicy extends PolicyBase {
  readonly name: string;
  readonly openMs: number;
  private readonly clock: Clock;
  private readonly window: FailureWindow;
  private readonly ignore: (error: unknown) => boolean;
  private readonly isFailure: ((error: unknown) => boolean) | undefined;
  private readonly isResultFailure: ((value: unknown) => boolean) | undefined;
  /** Infinity when there is no slow-call trigger. */
  private readonly slowMs: number;
  /** Read the clock when a call starts (to time it) / when it ends (to time it or to bucket it). */
  private readonly timeStart: boolean;
  private readonly timeEnd: boolean;
  private readonly backoffFactor: number;
  private readonly maxOpenMs: number;
  private readonly probes: number;
  private readonly successesToClose: number;
  private readonly emitter = new Emitter<CircuitBreakerEvent>();
  readonly onEvent: Subscribe<CircuitBreakerEvent> = this.emitter.subscribe;

  private code = CLOSED;
  /** Bumped on every state change; outcomes of calls admitted under an older one are not recorded. */
  private generation = 0;
  /** Monotonic time at which an open breaker lets probes through. */
  private openUntil = 0;
  /** Opens since the last close. */
  private opens = 0;
  private probing = 0;
  private probeSuccesses = 0;
  private isolations = 0;
  /** Bumped by `reset()`, which cancels every outstanding `isolate()` handle. */
  private isolationEpoch = 0;

  constructor(options: CircuitBreakerOptions) {
    super();
    requireObject(WHERE, options);
    rejectUnknownKeys(WHERE, options, [
      'trigger',
      'slowCall',
      'openMs',
      'openBackoff',
      'halfOpen',
      'ignore',
      'isFailure',
      'isResultFailure',
      'name',
      'clock',
      'initialState',
    ]);
    let slowRate = Infinity;
    this.slowMs = Infinity;
    if (options.slowCall !== undefined) {
      const slow = options.slowCall;
      requireSubObject('slowCall', slow);
      rejectUnknownKeys(`${WHERE}: slowCall`, slow, ['thresholdMs', 'rate']);
      this.slowMs = requirePositive(WHERE, 'slowCall.thresholdMs', slow.thresholdMs);
      slowRate = requireRate('slowCall.rate', slow.rate);
    }
    this.window = makeWindow(options.trigger, slowRate);
    this.timeStart = this.slowMs !== Infinity;
    this.timeEnd = this.timeStart || options.trigger.kind === 'time';

    this.openMs =
      options.openMs === undefined ? 30_000 : requireNumber(WHERE, 'openMs', options.openMs);
    this.backoffFactor = 1;
    this.maxOpenMs = this.openMs;
    if (options.openBackoff !== undefined) {
      const backoff = options.openBackoff;
      requireSubObject('openBackoff', backoff);
      rejectUnknownKeys(`${WHERE}: openBackoff`, backoff, ['factor', 'maxMs']);
      this.backoffFactor =
        backoff.factor === undefined
          ? 2
          : requireNumber(WHERE, 'openBackoff.factor', backoff.factor, 1);
      this.maxOpenMs = requireNumber(WHERE, 'openBackoff.maxMs', backoff.maxMs, this.openMs);
    }

    this.probes = 1;
    if (options.halfOpen !== undefined) {
      const halfOpen = options.halfOpen;
      requireSubObject('halfOpen', halfOpen);
      rejectUnknownKeys(`${WHERE}: halfOpen`, halfOpen, ['probes', 'successesToClose']);
      if (halfOpen.probes !== undefined) {
        this.probes = requireInteger(WHERE, 'halfOpen.probes', halfOpen.probes, 1);
      }
      this.successesToClose =
        halfOpen.successesToClose === undefined
          ? this.probes
          : requireInteger(WHERE, 'halfOpen.successesToClose', halfOpen.successesToClose, 1);
    } else {
      this.successesToClose = 1;
    }

    if (options.ignore !== undefined) requireFunction(WHERE, 'ignore', options.ignore);
    this.ignore = options.ignore ?? isIgnoredByBreaker;
    if (options.isFailure !== undefined) requireFunction(WHERE, 'isFailure', options.isFailure);
    this.isFailure = options.isFailure;
    if (options.isResultFailure !== undefined) {
      requireFunction(WHERE, 'isResultFailure', options.isResultFailure);
    }
    this.isResultFailure = options.isResultFailure;

    this.name = checkName(WHERE, options.name) ?? 'circuit-breaker';
    this.clock = checkClock(WHERE, options.clock) ?? systemClock;
    if (options.initialState !== undefined) this.restore(options.initialState);
  }

  /** The current state. Open becomes half-open on the first call after the open period, not before. */
  get state(): BreakerState {
    return STATE_NAMES[this.code] as BreakerState;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      if (this.code === CLOSED) {
        const startedAt = this.timeStart ? this.clock.now() : 0;
        next(work, context, new BreakerCall(this, sink, this.generation, startedAt, undefined));
      } else {
        // Kept out of the step so that the closed path stays small enough to inline.
        this.admitNotClosed(next, work, context, sink);
      }
    };
  }

  /** A call that finds the breaker not closed: rejected, or admitted as a half-open probe. */
  private admitNotClosed<T>(next: Step, work: Work<T>, context: Context, sink: Sink<T>): void {
    if (this.code === OPEN) {
      const now = this.clock.now();
      if (now < this.openUntil) {
        this.reject(sink, this.openUntil - now);
        return;
      }
      this.transition(HALF_OPEN);
    }
    if (this.code !== HALF_OPEN || this.probing >= this.probes) {
      this.reject(sink, undefined);
      return;
    }
    const scope = context.scope;
    if (scope.aborted) {
      // The caller has already given up: do not spend a probe on it.
      sink.fail(scope.reason);
      return;
    }
    this.probing++;
    const startedAt = this.timeStart ? this.clock.now() : 0;
    const probe = new BreakerCall(this, sink, this.generation, startedAt, scope);
    // A probe whose work never settles would hold its slot forever; the call's own cancellation
    // (deadline, outer timeout, caller's signal) frees it instead.
    scope.add(probe);
    next(work, context, probe);
  }

  /**
   * Opens the breaker by hand until the returned handle is disposed. Reference-counted: it stays
   * isolated until every handle is disposed, then closes. Calls are rejected with
   * `CircuitOpenError` (no `retryAfterMs`) meanwhile. `reset()` ends every isolation.
   */
  isolate(): Disposable {
    const epoch = this.isolationEpoch;
    if (this.isolations++ === 0) this.transition(ISOLATED);
    let disposed = false;
    return {
      dispose: () => {
        if (disposed || epoch !== this.isolationEpoch) return;
        disposed = true;
        if (--this.isolations === 0) this.transition(CLOSED);
      },
    };
  }

  /** Closes the breaker, forgets every recorded outcome and the open backoff, and ends isolation. */
  reset(): void {
    this.isolationEpoch++;
    this.isolations = 0;
    this.transition(CLOSED);
  }

  /** The state as JSON, to restore later (or elsewhere) with the `initialState` option. */
  snapshot(): BreakerSnapshot {
    const now = this.clock.now();
    return {
      version: 1,
      state: this.state,
      openRemainingMs: this.code === OPEN ? Math.max(0, this.openUntil - now) : 0,
      takenAtWallMs: this.clock.wallNow(),
      opens: this.opens,
      window: this.window.snapshot(now),
    };
  }

  /** Calls, failures and slow calls in the closed-state window right now (for metrics and tests). */
  metrics(): { calls: number; failures: number; slowCalls: number } {
    const now = this.timeEnd ? this.clock.now() : 0;
    return {
      calls: this.window.calls(now),
      failures: this.window.failures(now),
      slowCalls: this.window.slowCalls(now),
    };
  }

  /**
   * @internal A call admitted by this breaker returned a value. The success path of the closed
   * breaker, kept small enough to inline: without a clock to read, a result predicate, listeners
   * or a probe it is `settle(call, false, value)` reduced to what that does in that case.
   */
  settleOk(call: BreakerCall<unknown>, value: unknown): void {
    if (
      this.timeEnd ||
      this.isResultFailure !== undefined ||
      call.scope !== undefined ||
      this.emitter.size > 0
    ) {
      this.settle(call, false, value);
    } else if (call.generation === this.generation) {
      // Admitted while closed, and the generation says it still is. A success can still trip a
      // rate window that reaches minimumCalls.
      const trip = this.window.record(0, 0);
      if (trip !== 0) this.open(trip === TRIP_FAILURE ? 'failures' : 'slow_calls');
    }
  }

  /** @internal A call admitted by this breaker finished. */
  settle(call: BreakerCall<unknown>, threw: boolean, payload: unknown): void {
    if (threw && this.ask(this.ignore, payload, false)) {
      this.ignored(call, payload);
      return;
    }
    const now = this.timeEnd ? this.clock.now() : 0;
    let outcome = 0;
    let cause: 'error' | 'result' | 'slow' = 'error';
    if (threw) {
      outcome =
        this.isFailure === undefined || this.ask(this.isFailure, payload, true) ? FAILURE : 0;
    } else if (
      this.isResultFailure !== undefined &&
      this.ask(this.isResultFailure, payload, true)
    ) {
      outcome = FAILURE;
      cause = 'result';
    }
    if (now - call.startedAt > this.slowMs) {
      if (outcome === 0) cause = 'slow';
      outcome |= SLOW;
    }
    if (this.emitter.size > 0) {
      this.emitter.emit(
        outcome === 0
          ? { type: 'breaker.success', policy: this.name, state: this.state }
          : {
              type: 'breaker.failure',
              policy: this.name,
              state: this.state,
              cause,
              error: cause === 'error' ? payload : undefined,
            },
      );
    }
    if (call.scope !== undefined) call.scope.remove(call);
    if (call.generation !== this.generation) return;
    if (call.scope === undefined) {
      // Admitted while closed, and the generation says it still is.
      const trip = this.window.record(outcome, now);
      if (trip !== 0) this.open(trip === TRIP_FAILURE ? 'failures' : 'slow_calls');
      return;
    }
    this.probing--;
    if (outcome !== 0) this.open('probe_failed');
    else if (++this.probeSuccesses >= this.successesToClose) this.transition(CLOSED);
  }

  /** @internal A probe's call was aborted before its work settled. */
  abandon(call: BreakerCall<unknown>, reason: unknown): void {
    if (this.ask(this.ignore, reason, false)) {
      // Say, the caller's own cancellation: it tells nothing about the dependency.
      this.ignored(call, reason);
      return;
    }
    if (call.generation !== this.generation) return;
    this.probing--;
    // The dependency did not answer in time: a failed probe, unless `isFailure` says otherwise.
    if (this.isFailure === undefined || this.ask(this.isFailure, reason, true)) {
      this.open('probe_failed');
    }
  }

  /** An ignored outcome: counted nowhere; a probe of the current half-open period frees its slot. */
  private ignored(call: BreakerCall<unknown>, error: unknown): void {
    if (this.emitter.size > 0) {
      this.emitter.emit({ type: 'breaker.ignored', policy: this.name, state: this.state, error });
    }
    if (call.scope === undefined) return;
    call.scope.remove(call);
    if (call.generation === this.generation) this.probing--;
  }

  private reject(sink: Sink<never>, retryAfterMs: number | undefined): void {
    if (this.emitter.size > 0) {
      this.emitter.emit({
        type: 'breaker.rejected',
        policy: this.name,
        state: this.state,
        retryAfterMs,
      });
    }
    sink.fail(new CircuitOpenError(this.name, retryAfterMs));
  }

  private open(reason: OpenReason): void {
    this.opens++;
    let openMs = this.openMs;
    if (this.backoffFactor !== 1 && this.opens > 1) {
      openMs = Math.min(this.maxOpenMs, this.openMs * this.backoffFactor ** (this.opens - 1));
    }
    this.openUntil = this.clock.now() + openMs;
    this.transition(OPEN, reason, openMs);
  }

  private transition(to: number, reason: OpenReason = 'failures', openMs = 0): void {
    const from = this.code;
    this.code = to;
    this.generation++;
    this.probing = 0;
    this.probeSuccesses = 0;
    if (to === CLOSED) this.opens = 0;
    // The window restarts empty on every close; emptying it on leaving closed also frees its ring
    // while the breaker is open.
    this.window.reset();
    if (from === to || this.emitter.size === 0) return;
    const policy = this.name;
    const fromName = STATE_NAMES[from] as BreakerState;
    switch (to) {
      case OPEN:
        this.emitter.emit({
          type: 'breaker.opened',
          policy,
          from: fromName,
          to: 'open',
          reason,
          openMs,
        });
        break;
      case HALF_OPEN:
        this.emitter.emit({ type: 'breaker.half_opened', policy, from: 'open', to: 'half-open' });
        break;
      case CLOSED:
        this.emitter.emit({ type: 'breaker.closed', policy, from: fromName, to: 'closed' });
        break;
      default:
        this.emitter.emit({ type: 'breaker.isolated', policy, from: fromName, to: 'isolated' });
    }
  }

  /**
   * Runs a user predicate. One that throws is reported and answers `onThrow`: `isFailure` and
   * `isResultFailure` then count the call as a failure, `ignore` does not ignore it.
   */
  private ask(predicate: (value: unknown) => boolean, value: unknown, onThrow: boolean): boolean {
    try {
      return predicate(value) === true;
    } catch (error) {
      // The call's own outcome must still reach the caller; surface the bug outside its control flow.
      queueMicrotask(() => {
        throw error;
      });
      return onThrow;
    }
  }

  private restore(snapshot: BreakerSnapshot): void {
    const state = (snapshot as Partial<BreakerSnapshot> | null)?.state;
    if (
      snapshot === null ||
      typeof snapshot !== 'object' ||
      typeof state !== 'string' ||
      !STATE_NAMES.includes(state) ||
      snapshot.window === null ||
      typeof snapshot.window !== 'object'
    ) {
      throw new InvalidOptionsError(
        `${WHERE}: initialState must be a BreakerSnapshot from snapshot() (with a state and a window), got ${describeValue(snapshot)}`,
      );
    }
    const now = this.clock.now();
    const elapsedMs = Math.max(
      0,
      this.clock.wallNow() - finite(snapshot.takenAtWallMs, this.clock.wallNow()),
    );
    this.opens = Math.max(0, Math.floor(finite(snapshot.opens, 0)));
    switch (state) {
      case 'closed':
        this.window.restore(snapshot.window, now, elapsedMs);
        break;
      case 'open':
        this.code = OPEN;
        this.opens = Math.max(1, this.opens);
        this.openUntil =
          now + Math.max(0, finite(snapshot.openRemainingMs, this.openMs) - elapsedMs);
        break;
      case 'half-open':
        // Probes in flight died with the process that took the snapshot.
        this.code = HALF_OPEN;
        this.opens = Math.max(1, this.opens);
        break;
      default:
        // Isolation belongs to whoever holds the handle, in the process that took it. Fail safe:
        // stay open for one open period, then probe.
        this.code = OPEN;
        this.opens = Math.max(1, this.opens);
        this.openUntil = now + this.openMs;
    }
  }
}

/** The sink a breaker puts between a call and the caller. Probes (with `scope`) also watch for abort. */
class BreakerCall<T> implements Sink<T>, AbortListener {
  // `declare`d fields set in the constructor: made on every call (see scope.ts).
  declare private done: boolean;
  declare private readonly policy: CircuitBreakerPolicy;
  declare private readonly sink: Sink<T>;
  declare readonly generation: number;
  declare readonly startedAt: number;
  /** The call's scope, for probes only. */
  declare readonly scope: Scope | undefined;

  constructor(
    policy: CircuitBreakerPolicy,
    sink: Sink<T>,
    generation: number,
    startedAt: number,
    scope: Scope | undefined,
  ) {
    this.done = false;
    this.policy = policy;
    this.sink = sink;
    this.generation = generation;
    this.startedAt = startedAt;
    this.scope = scope;
  }

  ok(value: T): void {
    if (!this.done) {
      this.done = true;
      this.policy.settleOk(this, value);
    }
    this.sink.ok(value);
  }

  fail(error: unknown): void {
    if (!this.done) {
      this.done = true;
      this.policy.settle(this, true, error);
    }
    this.sink.fail(error);
  }

  /** The probe's call was aborted. Whoever aborted it settles the caller; this only frees the slot. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.policy.abandon(this, reason);
  }
}

/**
 * A circuit breaker. One policy object is one circuit, shared by every pipeline it is placed in.
 *
 * @example
 * const breaker = circuitBreaker({
 *   trigger: { kind: 'count', windowSize: 50, failureRate: 0.5, minimumCalls: 20 },
 *   slowCall: { thresholdMs: 2_000, rate: 0.8 },
 *   openMs: 10_000,
 *   openBackoff: { maxMs: 120_000 },
 *   halfOpen: { probes: 3 },
 * });
 */
export function circuitBreaker(options: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}

// ---- validation helpers -------------------------------------------------------------------------

function makeWindow(trigger: BreakerTrigger, slowRate: number): FailureWindow {
  if (trigger === undefined) {
    throw new InvalidOptionsError(
      `${WHERE}: trigger is required, e.g. { kind: 'consecutive', failures: 5 } or { kind: 'count', windowSize: 100, failureRate: 0.5 }`,
    );
  }
  requireSubObject('trigger', trigger);
  switch (trigger.kind) {
    case 'consecutive':
      rejectUnknownKeys(`${WHERE}: trigger`, trigger, ['kind', 'failures']);
      return new ConsecutiveWindow(requireInteger(WHERE, 'trigger.failures', trigger.failures, 1));
    case 'count': {
      rejectUnknownKeys(`${WHERE}: trigger`, trigger, [
        'kind',
        'windowSize',
        'failureRate',
        'minimumCalls',
      ]);
      const size = requireInteger(WHERE, 'trigger.windowSize', trigger.windowSize, 1);
      const failureRate = requireRate('trigger.failureRate', trigger.failureRate);
      let minimumCalls = size;
      if (trigger.minimumCalls !== undefined) {
        minimumCalls = requireInteger(WHERE, 'trigger.minimumCalls', trigger.minimumCalls, 1);
        if (minimumCalls > size) {
          throw new InvalidOptionsError(
            `${WHERE}: trigger.minimumCalls must be <= trigger.windowSize (${size}), got ${minimumCalls}; the window never holds more calls than windowSize`,
          );
        }
      }
      return new CountWindow(size, minimumCalls, failureRate, slowRate);
    }
    case 'time': {
      rejectUnknownKeys(`${WHERE}: trigger`, trigger, [
        'kind',
        'windowMs',
        'failureRate',
        'minimumCalls',
        'buckets',
      ]);
      const windowMs = requirePositive(WHERE, 'trigger.windowMs', trigger.windowMs);
      const failureRate = requireRate('trigger.failureRate', trigger.failureRate);
      const minimumCalls =
        trigger.minimumCalls === undefined
          ? 10
          : requireInteger(WHERE, 'trigger.minimumCalls', trigger.minimumCalls, 1);
      const buckets =
        trigger.buckets === undefined
          ? 10
          : requireInteger(WHERE, 'trigger.buckets', trigger.buckets, 1);
      if (buckets > 1000) {
        throw new InvalidOptionsError(
          `${WHERE}: trigger.buckets must be <= 1000, got ${buckets}; a few tens of buckets are enough`,
        );
      }
      return new TimeWindow(windowMs, buckets, minimumCalls, failureRate, slowRate);
    }
    default:
      throw new InvalidOptionsError(
        `${WHERE}: trigger.kind must be "consecutive", "count" or "time", got ${describeValue((trigger as { kind?: unknown }).kind)}`,
      );
  }
}

function requireRate(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw new InvalidOptionsError(
      `${WHERE}: ${name} must be a number in (0, 1] (a fraction, e.g. 0.5 for 50%), got ${describeValue(value)}`,
    );
  }
  return value;
}

function requireSubObject(name: string, value: unknown): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionsError(
      `${WHERE}: ${name} must be an object, got ${describeValue(value)}`,
    );
  }
}

function finite(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
