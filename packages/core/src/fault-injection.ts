/**
 * faultInjection: chaos testing in the pipeline (Polly's chaos strategies / Simmy). A fraction
 * `rate` of calls, chosen with the injected `random`, gets a fault instead of (or before) the work:
 *
 * - `error`: the call rejects with `fault.error` (default a new `InjectedFaultError`, code
 *   `INJECTED_FAULT`, retryable) and the work is not called. A function is called with the
 *   execution context for each injection and its return value is the error.
 * - `latency`: the work runs after `delayMs`. The wait aborts at once with the scope's reason
 *   (caller cancel, outer timeout) and never outlasts the deadline: it is cut at `expiresAt`,
 *   where the call fails the way a slow dependency would, with the limit's own error
 *   (`DeadlineExceededError`, or the `TimeoutError` of a timeout policy outside). It does not fail
 *   early, so chaos runs see the same timing as a real slow dependency.
 * - `result`: the call resolves with `fault.value` and the work is not called. The value is typed
 *   `unknown` and the policy does not widen the pipeline's result type: it is for tests and demos.
 *
 * Enabled by default once added, like Polly; `enabled` (a boolean or a function read per call)
 * turns it off, e.g. `enabled: () => process.env.CHAOS === '1'`. If `enabled` (or the injected
 * `random`) throws, the call rejects with what it threw and the work is not run: the step may be
 * running from a timer (a retry's next attempt), where a throw would be uncaught and the call
 * would never settle.
 */
import { setLongTimer, systemClock, type Clock, type TimerHandle } from './clock.js';
import { InjectedFaultError, InvalidOptionsError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import {
  PolicyBase,
  type Context,
  type ExecutionContext,
  type Sink,
  type Step,
  type Work,
} from './policy.js';
import { systemRandom, type Random } from './random.js';
import type { AbortListener } from './scope.js';
import {
  checkClock,
  checkName,
  checkRandom,
  rejectUnknownKeys,
  requireNumber,
  requireObject,
  requireRatio,
} from './validate.js';

export type Fault =
  | {
      kind: 'error';
      /** The error to reject with, or a function returning it. Default: `new InjectedFaultError()`. */
      error?: unknown;
    }
  | {
      kind: 'latency';
      /** Milliseconds to wait before running the work. Required, >= 0. */
      delayMs: number;
    }
  | {
      kind: 'result';
      /** The value to resolve with instead of running the work (tests and demos only). */
      value: unknown;
    };

export interface FaultInjectionOptions {
  /** Fraction of calls that get the fault, in [0, 1]. Required. */
  rate: number;
  /** What to inject. Required. */
  fault: Fault;
  /**
   * Whether to inject at all; a function is read on every call. Default `true`. A function that
   * throws rejects the call with its error.
   */
  enabled?: boolean | (() => boolean);
  /** Name used in events. Default `"fault-injection"`. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: `systemRandom`. Use `seededRandom(seed)` for reproducible chaos. */
  random?: Random;
}

export interface FaultInjectionEvent {
  type: 'fault.injected';
  policy: string;
  kind: Fault['kind'];
}

export class FaultInjectionPolicy extends PolicyBase {
  readonly name: string;
  readonly rate: number;
  readonly fault: Fault;
  private readonly enabled: boolean | (() => boolean);
  private readonly random: Random;
  /** @internal */
  readonly clock: Clock;
  private readonly emitter = new Emitter<FaultInjectionEvent>();
  readonly onEvent: Subscribe<FaultInjectionEvent> = this.emitter.subscribe;

  constructor(options: FaultInjectionOptions) {
    super();
    const where = 'faultInjection';
    requireObject(where, options);
    rejectUnknownKeys(where, options, ['rate', 'fault', 'enabled', 'name', 'clock', 'random']);
    this.rate = requireRatio(where, 'rate', options.rate);
    const fault = options.fault as Fault | undefined;
    if (fault === null || typeof fault !== 'object') {
      throw new InvalidOptionsError(
        `${where}: fault is required, e.g. { kind: 'error' }, { kind: 'latency', delayMs: 100 } or { kind: 'result', value: x }; got ${String(fault)}`,
      );
    }
    switch (fault.kind) {
      case 'error':
        rejectUnknownKeys(`${where}: fault`, fault, ['kind', 'error']);
        break;
      case 'latency':
        rejectUnknownKeys(`${where}: fault`, fault, ['kind', 'delayMs']);
        requireNumber(where, 'fault.delayMs', fault.delayMs);
        break;
      case 'result':
        rejectUnknownKeys(`${where}: fault`, fault, ['kind', 'value']);
        if (!('value' in fault)) {
          throw new InvalidOptionsError(
            `${where}: fault.value is required for kind 'result' (it may be undefined, but name it)`,
          );
        }
        break;
      default:
        throw new InvalidOptionsError(
          `${where}: fault.kind must be 'error', 'latency' or 'result', got ${String((fault as { kind?: unknown }).kind)}`,
        );
    }
    this.fault = fault;
    const enabled = options.enabled ?? true;
    if (typeof enabled !== 'boolean' && typeof enabled !== 'function') {
      throw new InvalidOptionsError(
        `${where}: enabled must be a boolean or a function () => boolean, got ${String(enabled)}`,
      );
    }
    this.enabled = enabled;
    checkName(where, options.name);
    checkClock(where, options.clock);
    checkRandom(where, options.random);
    this.name = options.name ?? 'fault-injection';
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      let inject: boolean;
      try {
        inject = this.shouldInject();
      } catch (error) {
        sink.fail(error);
        return;
      }
      if (!inject) {
        next(work, context, sink);
        return;
      }
      if (this.emitter.size > 0) {
        this.emitter.emit({ type: 'fault.injected', policy: this.name, kind: this.fault.kind });
      }
      const fault = this.fault;
      if (fault.kind === 'error') {
        let error: unknown;
        try {
          error = this.makeError(fault.error, context);
        } catch (thrown) {
          error = thrown;
        }
        sink.fail(error);
      } else if (fault.kind === 'result') {
        sink.ok(fault.value as never);
      } else {
        new LatencyWait(next, work, context, sink, this.clock).start(fault.delayMs);
      }
    };
  }

  private shouldInject(): boolean {
    const rate = this.rate;
    if (rate === 0) return false;
    const enabled = this.enabled;
    if (enabled === false || (enabled !== true && !enabled())) return false;
    return rate === 1 || this.random.next() < rate;
  }

  private makeError(spec: unknown, context: ExecutionContext): unknown {
    if (spec === undefined) return new InjectedFaultError(`fault injected by "${this.name}"`);
    if (typeof spec === 'function')
      return (spec as (context: ExecutionContext) => unknown)(context);
    return spec;
  }
}

/** An injected delay before the work: abortable, and cut at the deadline. */
class LatencyWait<T> implements AbortListener {
  private timer: TimerHandle | undefined;
  private done = false;
  private atDeadline = false;

  constructor(
    private readonly next: Step,
    private readonly work: Work<T>,
    private readonly context: Context,
    private readonly sink: Sink<T>,
    private readonly clock: Clock,
  ) {}

  start(delayMs: number): void {
    const scope = this.context.scope;
    scope.add(this);
    if (this.done) return; // already aborted
    const left = this.context.expiresAt - this.clock.now();
    if (left < delayMs) {
      this.atDeadline = true;
      delayMs = left > 0 ? left : 0;
    }
    // setLongTimer: a delay beyond the largest timer delay must not end early.
    this.timer = setLongTimer(this.clock, () => this.fire(), delayMs);
  }

  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.timer?.clear();
    this.sink.fail(reason);
  }

  private fire(): void {
    if (this.done) return;
    this.done = true;
    const scope = this.context.scope;
    scope.remove(this);
    if (this.atDeadline) {
      // Normally whoever set the limit aborts the scope first; this covers a deadline nobody arms.
      this.sink.fail(this.context.limitError());
      return;
    }
    this.next(this.work, this.context, this.sink);
  }
}

/** Injects errors, latency or fixed results into a fraction of calls (chaos testing). */
export function faultInjection(options: FaultInjectionOptions): FaultInjectionPolicy {
  return new FaultInjectionPolicy(options);
}
