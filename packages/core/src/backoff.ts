/**
 * Backoff strategies: how long to wait before a retry (or before the next half-open probe).
 *
 * A backoff is a pure function of its {@link BackoffState}: the retry number, the previous delay
 * and the `Random` the caller passes in. It keeps no state of its own, so one instance can be
 * shared by every policy and call, and property tests can check its bounds from a seed.
 *
 * Every factory validates its options eagerly, and every result is clamped to the strategy's
 * bounds: a backoff never returns NaN, a negative number or more than its `maxMs`, however many
 * times it is called (cockatiel's decorrelated generator returned NaN after 1,025 attempts, #86,
 * so its retries ran with no delay at all). Should arithmetic ever produce NaN, the result is
 * `maxMs`: waiting too long is safer than hammering a struggling dependency.
 */
import { InvalidOptionsError } from './errors.js';
import type { Random } from './random.js';
import {
  describeValue,
  rejectUnknownKeys,
  requireFunction,
  requireNumber,
  requirePositive,
} from './validate.js';

/** What a backoff sees when asked for the next delay. */
export interface BackoffState {
  /**
   * Which retry this delay precedes: 1 for the wait before the second attempt, 2 before the
   * third, and so on (for a circuit breaker: how many times in a row it has opened).
   */
  readonly attempt: number;
  /** The delay this backoff returned for the previous retry, in ms; 0 before the first retry. */
  readonly previousDelayMs: number;
  /** The failure that caused this retry: the error, or the value `retryOnResult` rejected. */
  readonly error?: unknown;
  /** The only source of randomness a backoff may use. */
  readonly random: Random;
}

export interface Backoff {
  /** The delay in ms before retry `state.attempt`: finite, >= 0 and <= the strategy's maximum. */
  next(state: BackoffState): number;
}

export type Jitter = 'full' | 'equal' | 'none';

export interface ExponentialBackoffOptions {
  /** The ceiling of the first retry's delay, in ms. Must be > 0. Default 100. */
  baseMs?: number;
  /** The largest delay ever returned, in ms. Must be >= baseMs. Default 30_000. */
  maxMs?: number;
  /** Growth per retry: retry n's ceiling is `baseMs * factor^(n-1)`. Must be >= 1. Default 2. */
  factor?: number;
  /**
   * How the ceiling `d = min(maxMs, baseMs * factor^(n-1))` becomes a delay (AWS Architecture Blog):
   * `'full'` random in [0, d) (the fewest calls in our simulation, research §7.3; Envoy and gRPC
   * use it); `'equal'` random in [d/2, d); `'none'` exactly d (synchronises clients: avoid).
   * Default `'full'`.
   */
  jitter?: Jitter;
}

export interface DecorrelatedJitterBackoffOptions {
  /** The smallest delay, in ms. Must be > 0. Default 100. */
  baseMs?: number;
  /** The largest delay, in ms. Must be >= baseMs. Default 30_000. */
  maxMs?: number;
}

export interface ConstantBackoffOptions {
  /** The delay before every retry, in ms. Required; >= 0. */
  delayMs: number;
}

export interface CustomBackoffOptions {
  /** Results above this are lowered to it, in ms. Default 30_000. */
  maxMs?: number;
}

/**
 * A user function for the delay. `error` is the failure that caused the retry; use it to honour
 * a hint the retry policy does not already read (the policy itself handles `retryAfterMs`).
 */
export type BackoffFunction = (
  attempt: number,
  previousDelayMs: number,
  error: unknown,
  random: Random,
) => number;

const JITTERS: readonly Jitter[] = ['full', 'equal', 'none'];

/** Clamps to [min, max]; NaN becomes max (the safe side). */
function clamp(value: number, min: number, max: number): number {
  if (value >= min) return value <= max ? value : max;
  return value < min ? min : max;
}

/** A draw in [0, 1) even if a custom Random misbehaves (NaN counts as high: wait longer). */
function draw(random: Random): number {
  const r = random.next();
  if (r >= 0 && r < 1) return r;
  return r < 0 ? 0 : 1 - Number.EPSILON;
}

function retryNumber(state: BackoffState): number {
  const n = state.attempt;
  return n >= 1 ? n : 1;
}

class ExponentialBackoff implements Backoff {
  /** Retries from this one on always sit at the cap, so factor^n is never computed past it. */
  private readonly capAt: number;
  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
    readonly factor: number,
    readonly jitter: Jitter,
  ) {
    // factor^(n-1) >= maxMs/baseMs  <=>  n >= 1 + log(maxMs/baseMs)/log(factor)
    this.capAt = factor > 1 ? 1 + Math.log(maxMs / baseMs) / Math.log(factor) : Infinity;
  }
  next(state: BackoffState): number {
    const n = retryNumber(state);
    const ceiling =
      this.factor === 1
        ? this.baseMs
        : n >= this.capAt
          ? this.maxMs
          : clamp(this.baseMs * this.factor ** (n - 1), 0, this.maxMs);
    switch (this.jitter) {
      case 'full':
        return clamp(draw(state.random) * ceiling, 0, this.maxMs);
      case 'equal':
        return clamp(ceiling / 2 + (draw(state.random) * ceiling) / 2, 0, this.maxMs);
      case 'none':
        return ceiling;
    }
  }
}

class DecorrelatedJitterBackoff implements Backoff {
  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
  ) {}
  next(state: BackoffState): number {
    // AWS: sleep = min(cap, random_between(base, sleep * 3)), with sleep starting at base. A
    // previous delay outside [base, cap] (first retry, or a value from elsewhere) is clamped first.
    const previous = clamp(state.previousDelayMs, this.baseMs, this.maxMs);
    const high = previous * 3;
    return clamp(this.baseMs + draw(state.random) * (high - this.baseMs), this.baseMs, this.maxMs);
  }
}

class ConstantBackoff implements Backoff {
  constructor(readonly delayMs: number) {}
  next(): number {
    return this.delayMs;
  }
}

class CustomBackoff implements Backoff {
  constructor(
    private readonly fn: BackoffFunction,
    readonly maxMs: number,
  ) {}
  next(state: BackoffState): number {
    const value = this.fn(retryNumber(state), state.previousDelayMs, state.error, state.random);
    return typeof value === 'number' ? clamp(value, 0, this.maxMs) : this.maxMs;
  }
}

function optionsObject(where: string, options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(
      `${where}: expected an options object, got ${describeValue(options)}`,
    );
  }
  return options as Record<string, unknown>;
}

function bounds(where: string, o: Record<string, unknown>): { baseMs: number; maxMs: number } {
  const baseMs = o.baseMs === undefined ? 100 : requirePositive(where, 'baseMs', o.baseMs);
  const maxMs = o.maxMs === undefined ? 30_000 : requirePositive(where, 'maxMs', o.maxMs);
  if (maxMs < baseMs) {
    throw new InvalidOptionsError(
      `${where}: maxMs (${maxMs}) must be >= baseMs (${baseMs}); raise maxMs or lower baseMs`,
    );
  }
  return { baseMs, maxMs };
}

/**
 * Capped exponential backoff with jitter. Defaults: full jitter, baseMs 100, maxMs 30_000, factor 2,
 * so retry n waits a random time in [0, min(30 s, 100 ms * 2^(n-1))).
 */
export function exponentialBackoff(options?: ExponentialBackoffOptions): Backoff {
  const where = 'exponentialBackoff';
  const o = optionsObject(where, options);
  rejectUnknownKeys(where, o, ['baseMs', 'maxMs', 'factor', 'jitter']);
  const { baseMs, maxMs } = bounds(where, o);
  const factor = o.factor === undefined ? 2 : requireNumber(where, 'factor', o.factor, 1);
  const jitter = o.jitter ?? 'full';
  if (!JITTERS.includes(jitter as Jitter)) {
    throw new InvalidOptionsError(
      `${where}: jitter must be one of 'full', 'equal', 'none', got ${JSON.stringify(jitter)}`,
    );
  }
  return new ExponentialBackoff(baseMs, maxMs, factor, jitter as Jitter);
}

/**
 * The AWS "decorrelated jitter" formula: `min(maxMs, random(baseMs, previousDelayMs * 3))`.
 * Every delay is in [baseMs, maxMs]. It finishes a little sooner than full jitter but makes about
 * 11% more calls (research §7.3).
 */
export function decorrelatedJitterBackoff(options?: DecorrelatedJitterBackoffOptions): Backoff {
  const where = 'decorrelatedJitterBackoff';
  const o = optionsObject(where, options);
  rejectUnknownKeys(where, o, ['baseMs', 'maxMs']);
  const { baseMs, maxMs } = bounds(where, o);
  return new DecorrelatedJitterBackoff(baseMs, maxMs);
}

/** The same delay before every retry. Without jitter, clients that failed together retry together. */
export function constantBackoff(options: ConstantBackoffOptions): Backoff {
  const where = 'constantBackoff';
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(
      `${where}: expected an options object such as constantBackoff({ delayMs: 200 }), got ${describeValue(options)}`,
    );
  }
  rejectUnknownKeys(where, options, ['delayMs']);
  if (options.delayMs === undefined) {
    throw new InvalidOptionsError(
      `${where}: delayMs is required (milliseconds), for example constantBackoff({ delayMs: 200 })`,
    );
  }
  return new ConstantBackoff(requireNumber(where, 'delayMs', options.delayMs, 0));
}

/**
 * A delay from your own function `(attempt, previousDelayMs, error, random) => ms`. The result is
 * clamped to [0, maxMs]; a result that is not a number, or is NaN, becomes maxMs. If the function
 * throws, the retry policy fails the call with that error.
 */
export function customBackoff(fn: BackoffFunction, options?: CustomBackoffOptions): Backoff {
  const where = 'customBackoff';
  requireFunction(where, 'the first argument', fn);
  const o = optionsObject(where, options);
  rejectUnknownKeys(where, o, ['maxMs']);
  const maxMs = o.maxMs === undefined ? 30_000 : requireNumber(where, 'maxMs', o.maxMs, 0);
  return new CustomBackoff(fn, maxMs);
}
