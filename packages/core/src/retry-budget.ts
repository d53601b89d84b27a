/**
 * A retry budget (Finagle's `RetryBudget`, research §5.3): retries may add at most `ratio` extra
 * load on top of a small floor, so a struggling dependency is not buried under a retry storm.
 *
 * Every request deposits `ratio` tokens, every retry withdraws one, and both expire after `ttlMs`.
 * A reserve of `minPerSecond * ttlMs / 1000` retries is always available on top, so rarely called
 * dependencies can still retry. Within any window of live buckets:
 *
 *     retries <= ratio * requests + minPerSecond * ttlMs / 1000
 *
 * Memory is O(1): two fixed rings of 10 time buckets (each `ttlMs / 10` wide), so credits expire in
 * steps of a tenth of the TTL: a deposit stays live for between 0.9 and 1.0 times `ttlMs`.
 *
 * Cost. `recordRequest` is on every call's success path, so it does not read the clock: it bumps
 * a counter, and the counter is folded into the ring only when time is next read (a withdrawal,
 * `available()`, or every {@link SYNC_EVERY}th request). Folded requests are credited to the
 * bucket of the previous clock reading, which is never later than when they really happened, so
 * they expire early rather than late: the budget can only err on the strict side, by at most
 * `SYNC_EVERY * ratio` tokens. Without the periodic reading, an hour of quiet success followed
 * by an outage would have credited the whole hour's requests to the present, and the budget
 * would have let the storm through at exactly the moment it exists for.
 */
import { systemClock, type Clock } from './clock.js';
import {
  checkClock,
  rejectUnknownKeys,
  requireNumber,
  requireObject,
  requirePositive,
} from './validate.js';

/** A shared allowance of retries for one dependency. Implement it to plug in another scheme. */
export interface RetryBudget {
  /** Counts one new request (not a retry). Called on every call, so it must be cheap. */
  recordRequest(): void;
  /** Takes one retry from the budget; false means "do not retry". */
  tryWithdraw(): boolean;
  /** Retries the budget would allow right now (for metrics); may be fractional, never negative. */
  available(): number;
}

export interface RetryBudgetOptions {
  /** Tokens each request deposits: the share of requests that may be retried. >= 0. Default 0.2. */
  ratio?: number;
  /** Retries per second always allowed, whatever the traffic. >= 0. Default 10. */
  minPerSecond?: number;
  /** How long a deposit or a withdrawal counts, in ms. > 0. Default 10_000. */
  ttlMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

/** Number of time buckets in the ring. */
const BUCKETS = 10;
/** `recordRequest` reads the clock once per this many calls (see the module comment). */
export const SYNC_EVERY = 32;

export class TokenRetryBudget implements RetryBudget {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly ttlMs: number;
  /** Retries allowed on top of deposits: minPerSecond over one TTL. */
  readonly reserve: number;
  private readonly clock: Clock;
  private readonly bucketMs: number;
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private requestTotal = 0;
  private retryTotal = 0;
  /** Requests recorded since the clock was last read, not yet in the ring. */
  private unsynced = 0;
  private head = 0;
  /** Start of the head bucket on the clock's timeline. */
  private headStart: number;

  constructor(options: RetryBudgetOptions = {}) {
    const where = 'retryBudget';
    requireObject(where, options);
    rejectUnknownKeys(where, options, ['ratio', 'minPerSecond', 'ttlMs', 'clock']);
    this.ratio =
      options.ratio === undefined ? 0.2 : requireNumber(where, 'ratio', options.ratio, 0);
    this.minPerSecond =
      options.minPerSecond === undefined
        ? 10
        : requireNumber(where, 'minPerSecond', options.minPerSecond, 0);
    this.ttlMs =
      options.ttlMs === undefined ? 10_000 : requirePositive(where, 'ttlMs', options.ttlMs);
    this.clock = checkClock(where, options.clock) ?? systemClock;
    this.reserve = (this.minPerSecond * this.ttlMs) / 1000;
    this.bucketMs = this.ttlMs / BUCKETS;
    this.headStart = this.clock.now();
  }

  recordRequest(): void {
    if (++this.unsynced >= SYNC_EVERY) this.sync();
  }

  tryWithdraw(): boolean {
    this.sync();
    // Tested as "room for one more" so that retries never pass ratio * requests + reserve.
    if (this.ratio * this.requestTotal + this.reserve - this.retryTotal < 1) return false;
    this.retries[this.head]! += 1;
    this.retryTotal += 1;
    return true;
  }

  available(): number {
    this.sync();
    const left = this.ratio * this.requestTotal + this.reserve - this.retryTotal;
    return left > 0 ? left : 0;
  }

  /** Folds unsynced requests into the head bucket (its time is before theirs), then moves to now. */
  private sync(): void {
    if (this.unsynced > 0) {
      this.requests[this.head]! += this.unsynced;
      this.requestTotal += this.unsynced;
      this.unsynced = 0;
    }
    const elapsed = this.clock.now() - this.headStart;
    if (!(elapsed >= this.bucketMs)) return;
    const steps = Math.floor(elapsed / this.bucketMs);
    if (steps >= BUCKETS) {
      this.requests.fill(0);
      this.retries.fill(0);
      this.requestTotal = 0;
      this.retryTotal = 0;
    } else {
      for (let i = 0; i < steps; i++) {
        this.head = (this.head + 1) % BUCKETS;
        this.requestTotal -= this.requests[this.head]!;
        this.retryTotal -= this.retries[this.head]!;
        this.requests[this.head] = 0;
        this.retries[this.head] = 0;
      }
    }
    this.headStart += steps * this.bucketMs;
  }
}

/**
 * A Finagle-style retry budget. Defaults: 20% of requests may be retried, plus 10 retries per
 * second, with credits expiring after 10 s. Share one budget between every policy that calls the
 * same dependency.
 */
export function retryBudget(options?: RetryBudgetOptions): TokenRetryBudget {
  return new TokenRetryBudget(options);
}
