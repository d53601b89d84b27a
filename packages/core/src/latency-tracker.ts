/**
 * A streaming latency histogram: O(1) per sample, fixed memory, recent samples weigh most.
 *
 * Samples fall into logarithmic buckets (each `growthFactor` times wider than the last), so the
 * relative error of a percentile is bounded by the bucket width whatever the scale, from
 * sub-millisecond cache hits to minute-long batch calls. Old behaviour fades by halving every
 * bucket whenever the held weight reaches `decayAfter`: the estimate follows a shift in latency
 * within about `decayAfter` samples, and the halving costs O(buckets) once per `decayAfter / 2`
 * samples, i.e. amortised O(1).
 */
import { InvalidOptionsError } from './errors.js';
import { rejectUnknownKeys, requireInteger, requirePositive } from './validate.js';

export interface LatencyTrackerOptions {
  /** Samples at or below this many milliseconds share the first bucket. Default `0.1` ms. */
  lowestMs?: number;
  /** Samples above this many milliseconds count as this value. Default `600000` ms (10 min). */
  highestMs?: number;
  /**
   * Ratio between the bounds of consecutive buckets, in (1, 2]. The relative error of an estimate
   * is at most `growthFactor - 1`. Default `1.1` (about 165 buckets for the default range).
   */
  growthFactor?: number;
  /**
   * Halve every bucket when the held weight reaches this many samples, so the estimate tracks the
   * last few hundred to `decayAfter` samples. Integer >= 2. Default `1000`.
   */
  decayAfter?: number;
}

/**
 * Below this much held weight the percentile is recomputed on every read after a new sample;
 * above it, at most once per `REFRESH_EVERY` samples (the walk over the buckets is the only
 * non-O(1) part, so it is amortised).
 */
const EXACT_BELOW = 256;
const REFRESH_EVERY = 16;

export class LatencyTracker {
  readonly lowestMs: number;
  readonly highestMs: number;
  readonly growthFactor: number;
  readonly decayAfter: number;
  private readonly counts: Float64Array;
  private readonly invLogGrowth: number;
  private held = 0;
  private samples = 0;
  private cachedP = Number.NaN;
  private cachedValue = 0;
  private cachedAt = -1;

  constructor(options: LatencyTrackerOptions = {}) {
    const where = 'LatencyTracker';
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionsError(`${where}: expected an options object, got ${String(options)}`);
    }
    rejectUnknownKeys(where, options, ['lowestMs', 'highestMs', 'growthFactor', 'decayAfter']);
    this.lowestMs = requirePositive(where, 'lowestMs', options.lowestMs ?? 0.1);
    this.highestMs = requirePositive(where, 'highestMs', options.highestMs ?? 600_000);
    if (this.highestMs <= this.lowestMs) {
      throw new InvalidOptionsError(
        `${where}: highestMs (${this.highestMs}) must be greater than lowestMs (${this.lowestMs})`,
      );
    }
    const growth = options.growthFactor ?? 1.1;
    if (typeof growth !== 'number' || !(growth > 1 && growth <= 2)) {
      throw new InvalidOptionsError(
        `${where}: growthFactor must be a number in (1, 2], got ${String(growth)}; use e.g. 1.1 for ~10% precision`,
      );
    }
    this.growthFactor = growth;
    this.decayAfter = requireInteger(where, 'decayAfter', options.decayAfter ?? 1000, 2);
    this.invLogGrowth = 1 / Math.log(growth);
    const buckets = Math.ceil(Math.log(this.highestMs / this.lowestMs) * this.invLogGrowth) + 1;
    this.counts = new Float64Array(buckets);
  }

  /** The weight currently held (samples, after decay). */
  get weight(): number {
    return this.held;
  }

  /** Samples recorded since creation or the last `reset()`, without decay. */
  get recorded(): number {
    return this.samples;
  }

  /** Adds one latency sample in milliseconds. Negative or NaN samples are ignored. */
  record(ms: number): void {
    if (!(ms >= 0)) return;
    const counts = this.counts;
    let index = 0;
    if (ms > this.lowestMs) {
      index = Math.ceil(Math.log(ms / this.lowestMs) * this.invLogGrowth);
      if (index >= counts.length) index = counts.length - 1;
    }
    counts[index] = (counts[index] as number) + 1;
    this.samples++;
    if (++this.held >= this.decayAfter) {
      for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) / 2;
      this.held /= 2;
    }
  }

  /**
   * The estimated latency below which a fraction `p` (in [0, 1]) of the held samples fall, in
   * milliseconds (interpolated inside a bucket). `undefined` when nothing has been recorded.
   */
  percentile(p: number): number | undefined {
    if (this.held === 0) return undefined;
    if (
      p === this.cachedP &&
      this.cachedAt >= 0 &&
      (this.samples === this.cachedAt ||
        (this.held >= EXACT_BELOW && this.samples - this.cachedAt < REFRESH_EVERY))
    ) {
      return this.cachedValue;
    }
    const value = this.compute(p < 0 ? 0 : p > 1 ? 1 : p);
    this.cachedP = p;
    this.cachedValue = value;
    this.cachedAt = this.samples;
    return value;
  }

  /** Forgets every sample. */
  reset(): void {
    this.counts.fill(0);
    this.held = 0;
    this.samples = 0;
    this.cachedAt = -1;
  }

  private compute(p: number): number {
    const counts = this.counts;
    const target = p * this.held;
    let before = 0;
    let index = 0;
    for (; index < counts.length; index++) {
      const count = counts[index] as number;
      if (count > 0 && before + count >= target) break;
      before += count;
    }
    if (index >= counts.length) index = counts.length - 1;
    const count = counts[index] as number;
    const upper = Math.min(this.highestMs, this.lowestMs * this.growthFactor ** index);
    const lower = index === 0 ? 0 : this.lowestMs * this.growthFactor ** (index - 1);
    const fraction = count > 0 ? (target - before) / count : 1;
    return lower + (upper - lower) * (fraction < 0 ? 0 : fraction > 1 ? 1 : fraction);
  }
}
