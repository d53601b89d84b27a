/**
 * AIMD (additive increase, multiplicative decrease), after Netflix concurrency-limits `AIMDLimit`:
 * a successful call made while the limiter was at least half used raises the limit by
 * `increaseBy`; a dropped call (shed or timed out downstream) or one slower than `timeoutMs`
 * multiplies it by `backoffRatio`. It reacts to loss rather than to latency, which is why the
 * Netflix README recommends it for clients (research §5.4).
 */
import { InvalidOptionsError } from '../errors.js';
import { rejectUnknownKeys, requireInteger, requireObject, requirePositive } from '../validate.js';
import type { LimitAlgorithm } from '../concurrency-limit.js';

export interface AimdLimitOptions {
  kind: 'aimd';
  /** The limit to start from (concurrent calls). Default 20. */
  initial?: number;
  /** The limit never goes below this. Default 1. */
  min?: number;
  /** The limit never goes above this. Default 200. */
  max?: number;
  /** Factor applied to the limit on a drop, in [0.5, 1). Default 0.9. */
  backoffRatio?: number;
  /** Added to the limit after a success while at least half of it was in use. Default 1. */
  increaseBy?: number;
  /**
   * A call slower than this (milliseconds) counts as a drop even when it succeeds. Default: none,
   * only errors classified as drops lower the limit (and the clock is not read per call).
   */
  timeoutMs?: number;
}

const WHERE = 'concurrencyLimit';

export class AimdLimit implements LimitAlgorithm {
  limit: number;
  readonly min: number;
  readonly max: number;
  readonly backoffRatio: number;
  readonly increaseBy: number;
  readonly timeoutMs: number;
  readonly needsRtt: boolean;

  constructor(options: AimdLimitOptions) {
    requireObject(`${WHERE} limit`, options);
    rejectUnknownKeys(`${WHERE} limit (kind "aimd")`, options, [
      'kind',
      'initial',
      'min',
      'max',
      'backoffRatio',
      'increaseBy',
      'timeoutMs',
    ]);
    const { min, max, initial } = checkBounds(options, 20, 200);
    this.min = min;
    this.max = max;
    this.limit = initial;
    const ratio = options.backoffRatio ?? 0.9;
    if (typeof ratio !== 'number' || !(ratio >= 0.5 && ratio < 1)) {
      throw new InvalidOptionsError(
        `${WHERE}: limit.backoffRatio must be a number in [0.5, 1) (the factor applied on a drop), got ${String(ratio)}`,
      );
    }
    this.backoffRatio = ratio;
    this.increaseBy =
      options.increaseBy === undefined
        ? 1
        : requireInteger(WHERE, 'limit.increaseBy', options.increaseBy, 1);
    this.timeoutMs =
      options.timeoutMs === undefined
        ? Infinity
        : requirePositive(WHERE, 'limit.timeoutMs (milliseconds)', options.timeoutMs);
    this.needsRtt = this.timeoutMs !== Infinity;
  }

  update(rttMs: number, inFlight: number, dropped: boolean): number {
    let next: number;
    if (dropped || rttMs > this.timeoutMs) {
      // The limit is an integer, so flooring always lowers it by at least one.
      next = Math.floor(this.limit * this.backoffRatio);
    } else if (inFlight * 2 >= this.limit) {
      next = this.limit + this.increaseBy;
    } else {
      // Far below the limit: success says nothing about how much more the dependency can take.
      return this.limit;
    }
    this.limit = next < this.min ? this.min : next > this.max ? this.max : next;
    return this.limit;
  }
}

/** @internal Validates `min`, `max` and `initial` (integers, min <= initial <= max). */
export function checkBounds(
  options: { initial?: number; min?: number; max?: number },
  defaultInitial: number,
  defaultMax: number,
): { min: number; max: number; initial: number } {
  const min = options.min === undefined ? 1 : requireInteger(WHERE, 'limit.min', options.min, 1);
  const max =
    options.max === undefined
      ? Math.max(defaultMax, min)
      : requireInteger(WHERE, 'limit.max', options.max, min);
  const initial =
    options.initial === undefined
      ? Math.min(Math.max(defaultInitial, min), max)
      : requireInteger(WHERE, 'limit.initial', options.initial, 1);
  if (initial < min || initial > max) {
    throw new InvalidOptionsError(
      `${WHERE}: limit.initial must be within [limit.min, limit.max] = [${min}, ${max}], got ${initial}`,
    );
  }
  return { min, max, initial };
}
