/**
 * Opens after N failing calls in a row; any non-failing call starts the count again. With a slow-call
 * trigger a slow call counts toward the same N as a failure (a rate over a run of consecutive calls
 * would always be 0 or 1, so one threshold is the only meaningful reading).
 */
import {
  count,
  FAILURE,
  NO_TRIP,
  SLOW,
  TRIP_FAILURE,
  TRIP_SLOW,
  type FailureWindow,
  type WindowSnapshot,
} from './window.js';

export class ConsecutiveWindow implements FailureWindow {
  private run = 0;
  private slowRun = 0;

  constructor(private readonly threshold: number) {}

  record(outcome: number): number {
    if (outcome === 0) {
      // The success path of the whole breaker ends here: two stores, nothing allocated.
      this.run = 0;
      this.slowRun = 0;
      return NO_TRIP;
    }
    if ((outcome & SLOW) !== 0) this.slowRun++;
    if (++this.run < this.threshold) return NO_TRIP;
    // Blame slow calls only when every call of the run was slow and none of them failed outright.
    return (outcome & FAILURE) === 0 && this.slowRun >= this.run ? TRIP_SLOW : TRIP_FAILURE;
  }

  reset(): void {
    this.run = 0;
    this.slowRun = 0;
  }

  calls(): number {
    return this.run;
  }

  failures(): number {
    return this.run;
  }

  slowCalls(): number {
    return this.slowRun;
  }

  snapshot(): WindowSnapshot {
    // The slow part of the run decides whether a trip blames slow calls; omitted when 0, which
    // is also how snapshots from before it was recorded read.
    return this.slowRun === 0
      ? { kind: 'consecutive', failures: this.run }
      : { kind: 'consecutive', failures: this.run, slowCalls: this.slowRun };
  }

  restore(snapshot: WindowSnapshot): void {
    this.reset();
    if (snapshot.kind !== 'consecutive') return;
    this.run = count(snapshot.failures);
    this.slowRun = Math.min(this.run, count(snapshot.slowCalls));
  }
}
