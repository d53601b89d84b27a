/**
 * A latency-gradient limit in the style of Netflix concurrency-limits `Gradient2Limit`
 * (research §5.4). It keeps two exponential averages of the round-trip time: a long one (the
 * latency the dependency has when it is not queueing) and a short one (what it has now). When
 * the short one rises above `tolerance` times the long one, requests are queueing somewhere and
 * the limit shrinks in proportion:
 *
 *   gradient = clamp(tolerance * longRtt / shortRtt, 0.5, 1)
 *   newLimit = limit * gradient + queueSize            (queueSize: headroom to probe upwards)
 *   limit    = limit * (1 - smoothing) + newLimit * smoothing, clamped to [min, max]
 *
 * As in Gradient2, the limit does not move while fewer than half of it are in use (the caller,
 * not the dependency, is the bottleneck), and the long average is pulled down quickly once the
 * short one falls below half of it, so the limiter recovers after a long overload.
 *
 * Also as in Gradient2, the `dropped` flag is ignored: a drop (a shed call, a timeout) moves the
 * limit only through its round-trip time, which for a timeout is long and so pulls the short
 * average up. To cut the limit on every drop, use the AIMD limit.
 */
import { rejectUnknownKeys, requireInteger, requireNumber, requireObject } from '../validate.js';
import { InvalidOptionsError } from '../errors.js';
import type { LimitAlgorithm } from '../concurrency-limit.js';
import { checkBounds } from './aimd.js';

export interface GradientLimitOptions {
  kind: 'gradient';
  /** The limit to start from (concurrent calls). Default 20. */
  initial?: number;
  /** The limit never goes below this. Default 1. */
  min?: number;
  /** The limit never goes above this. Default 1000. */
  max?: number;
  /** Weight of each new limit estimate, in (0, 1]. Default 0.2. */
  smoothing?: number;
  /**
   * How much slower than the long-term RTT the short-term RTT may get before the limit shrinks
   * (Gradient2's `rttTolerance`), >= 1. Default 1.5.
   */
  tolerance?: number;
  /** Headroom added to each estimate so the limit keeps probing upwards (calls). Default 4. */
  queueSize?: number;
  /** Samples in the long-term RTT average (exponential). Default 600. */
  longWindow?: number;
  /**
   * Samples in the short-term RTT average (exponential). Default 10; 1 uses the last sample
   * alone, as Gradient2 does when it is not wrapped in a windowed limit.
   */
  shortWindow?: number;
}

const WHERE = 'concurrencyLimit';

/** An exponential moving average that starts as a plain average over its first samples. */
class ExpAverage {
  value = 0;
  private count = 0;
  private readonly factor: number;
  private readonly warmup: number;
  constructor(window: number) {
    this.factor = 2 / (window + 1);
    this.warmup = Math.min(window, 10);
  }
  add(sample: number): number {
    if (this.count < this.warmup) {
      this.count++;
      this.value += (sample - this.value) / this.count;
    } else {
      this.value += (sample - this.value) * this.factor;
    }
    return this.value;
  }
}

export class GradientLimit implements LimitAlgorithm {
  readonly min: number;
  readonly max: number;
  readonly smoothing: number;
  readonly tolerance: number;
  readonly queueSize: number;
  readonly needsRtt = true;
  /** The fractional estimate; `limit` is its integer part. */
  estimate: number;
  private readonly longRtt: ExpAverage;
  private readonly shortRtt: ExpAverage;

  constructor(options: GradientLimitOptions) {
    requireObject(`${WHERE} limit`, options);
    rejectUnknownKeys(`${WHERE} limit (kind "gradient")`, options, [
      'kind',
      'initial',
      'min',
      'max',
      'smoothing',
      'tolerance',
      'queueSize',
      'longWindow',
      'shortWindow',
    ]);
    const { min, max, initial } = checkBounds(options, 20, 1000);
    this.min = min;
    this.max = max;
    this.estimate = initial;
    const smoothing = options.smoothing ?? 0.2;
    if (typeof smoothing !== 'number' || !(smoothing > 0 && smoothing <= 1)) {
      throw new InvalidOptionsError(
        `${WHERE}: limit.smoothing must be a number in (0, 1], got ${String(smoothing)}`,
      );
    }
    this.smoothing = smoothing;
    this.tolerance =
      options.tolerance === undefined
        ? 1.5
        : requireNumber(WHERE, 'limit.tolerance', options.tolerance, 1);
    this.queueSize =
      options.queueSize === undefined
        ? 4
        : requireNumber(WHERE, 'limit.queueSize (calls)', options.queueSize, 0);
    const longWindow =
      options.longWindow === undefined
        ? 600
        : requireInteger(WHERE, 'limit.longWindow (samples)', options.longWindow, 1);
    const shortWindow =
      options.shortWindow === undefined
        ? 10
        : requireInteger(WHERE, 'limit.shortWindow (samples)', options.shortWindow, 1);
    this.longRtt = new ExpAverage(longWindow);
    this.shortRtt = new ExpAverage(shortWindow);
  }

  get limit(): number {
    return Math.floor(this.estimate);
  }

  /** The long-term RTT average (ms), for diagnostics. */
  get longRttMs(): number {
    return this.longRtt.value;
  }

  /** The short-term RTT average (ms), for diagnostics. */
  get shortRttMs(): number {
    return this.shortRtt.value;
  }

  update(rttMs: number, inFlight: number): number {
    const short = this.shortRtt.add(rttMs);
    const long = this.longRtt.add(rttMs);
    // Zero RTTs happen with a virtual clock or very fast local work; they mean "no queueing".
    const ratio = short > 0 ? long / short : long > 0 ? Infinity : 1;
    if (ratio > 2) {
      // Latency is back to normal after a long overload: forget the inflated baseline faster
      // than the long window would.
      this.longRtt.value *= 0.95;
    }
    if (inFlight < this.estimate / 2) return this.limit;
    const scaled = this.tolerance * ratio;
    const gradient = scaled < 0.5 ? 0.5 : scaled > 1 ? 1 : scaled;
    const target = this.estimate * gradient + this.queueSize;
    const next = this.estimate * (1 - this.smoothing) + target * this.smoothing;
    this.estimate = next < this.min ? this.min : next > this.max ? this.max : next;
    return this.limit;
  }
}
