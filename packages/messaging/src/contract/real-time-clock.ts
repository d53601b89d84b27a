/**
 * The clock of the contract's `timing: 'broker'` mode. A broker (RabbitMQ TTLs, NATS redelivery)
 * keeps its own timers, which a TestClock cannot move, so the harness runs on real time instead.
 * It is a TestClock subclass only so `ContractHarness.clock` keeps one type for both modes: every
 * method reads or waits on the real clock, and `advance` really waits.
 */
import { systemClock, type TimerHandle } from '@bulwark/core';
import { TestClock } from '@bulwark/testing';

export class RealTimeClock extends TestClock {
  constructor() {
    super({ startMs: performance.now(), wallStartMs: Date.now() });
  }

  override now(): number {
    return performance.now();
  }

  override wallNow(): number {
    return Date.now();
  }

  override setTimer(callback: () => void, delayMs: number): TimerHandle {
    return systemClock.setTimer(callback, delayMs);
  }

  /** Real timers are not tracked: there is never a virtual timer to step to. */
  override nextTimerAt(): number | undefined {
    return undefined;
  }

  override get pendingTimers(): number {
    return 0;
  }

  override get referencedTimers(): number {
    return 0;
  }

  /** Waits `ms` of real time. */
  override async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) {
      throw new RangeError(`RealTimeClock.advance: ms must be >= 0, got ${String(ms)}`);
    }
    await realSleep(ms);
  }

  /** Waits until `now()` reaches `target`. */
  override async advanceTo(target: number): Promise<void> {
    await realSleep(target - performance.now());
  }

  override runAll(): Promise<number> {
    return Promise.resolve(0);
  }
}

/** A real wait, for broker mode only: the broker owns these timers, nothing else can move them. */
export function realSleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms > 0 ? ms : 0));
}
