/**
 * The failure-detection windows behind the circuit breaker. A window sees one outcome per finished
 * call (in the closed state only) and answers whether the breaker should open. Every window does
 * O(1) work per call, whatever its size, and keeps no per-call storage beyond a fixed ring.
 */

/** Outcome bit: the call failed (error counted by `isFailure`, or result counted by `isResultFailure`). */
export const FAILURE = 1;
/** Outcome bit: the call took longer than `slowCall.thresholdMs`. */
export const SLOW = 2;

/** `record` result: stay closed. */
export const NO_TRIP = 0;
/** `record` result: open because of failures. */
export const TRIP_FAILURE = 1;
/** `record` result: open because of slow calls. */
export const TRIP_SLOW = 2;

/** JSON form of a window, part of `BreakerSnapshot`. */
export type WindowSnapshot =
  | {
      readonly kind: 'consecutive';
      /** Consecutive failing (or slow) calls so far. */
      readonly failures: number;
      /** How many calls of that run were slow. Omitted when 0. */
      readonly slowCalls?: number;
    }
  | {
      readonly kind: 'count';
      /**
       * The outcomes in the window, oldest first, one character per call: `0` success, `1` failure,
       * `2` slow success, `3` slow failure.
       */
      readonly outcomes: string;
    }
  | {
      readonly kind: 'time';
      /** Width of one bucket in milliseconds; a snapshot with another width is not restored. */
      readonly bucketMs: number;
      /** `[calls, failures, slowCalls]` per bucket, oldest first; the last one is the current bucket. */
      readonly buckets: readonly (readonly [number, number, number])[];
    };

export interface FailureWindow {
  /** Counts one outcome (a combination of FAILURE and SLOW bits) and returns a TRIP_* code. */
  record(outcome: number, now: number): number;
  /** Forgets every outcome. */
  reset(): void;
  /** Calls currently counted. */
  calls(now: number): number;
  /** Failures currently counted. */
  failures(now: number): number;
  /** Slow calls currently counted. */
  slowCalls(now: number): number;
  snapshot(now: number): WindowSnapshot;
  /**
   * Loads a snapshot taken `elapsedMs` ago (wall time). A snapshot of another kind or shape is
   * ignored: the window starts empty rather than failing a process that changed its configuration.
   */
  restore(snapshot: WindowSnapshot, now: number, elapsedMs: number): void;
}

/** Rate check shared by the count and time windows: `>=`, as in resilience4j. */
export function evaluate(
  calls: number,
  failures: number,
  slow: number,
  minimumCalls: number,
  failureRate: number,
  slowRate: number,
): number {
  if (calls < minimumCalls || calls === 0) return NO_TRIP;
  if (failures / calls >= failureRate) return TRIP_FAILURE;
  if (slow / calls >= slowRate) return TRIP_SLOW;
  return NO_TRIP;
}

/** A non-negative integer from untrusted snapshot data, or 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
}
