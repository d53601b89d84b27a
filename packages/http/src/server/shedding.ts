/**
 * Load shedding at the door: a request is refused (503 + Retry-After) before routing when the
 * event loop is late or the adaptive concurrency limit is reached. Low-priority traffic (priority
 * below 0, e.g. batch jobs) only gets `lowPriorityShare` of either limit, so it is shed first and
 * leaves headroom for interactive traffic.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock, ConcurrencyLimitPolicy, Permit, TimerHandle } from '@bulwark/core';

/** Where the measured event-loop delay comes from. Injectable so tests can set it. */
export interface EventLoopDelaySource {
  /** The delay measured over the last window, in milliseconds. Called once per request: keep it O(1). */
  delayMs(): number;
  /** Stops measuring (called when the server closes). */
  close?(): void;
}

/**
 * The default source: `monitorEventLoopDelay` sampled every `windowMs`; each window's mean delay
 * (minus the histogram's resolution, which is noise) becomes the value requests compare against.
 * Requests read a cached number, so the cost per request is one comparison.
 */
export function eventLoopDelayMonitor(options: {
  windowMs?: number;
  resolutionMs?: number;
  clock: Clock;
}): EventLoopDelaySource {
  const windowMs = options.windowMs ?? 500;
  const resolutionMs = options.resolutionMs ?? 10;
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  let current = 0;
  let timer: TimerHandle | undefined;
  let closed = false;
  const sample = () => {
    if (closed) return;
    const meanMs = histogram.mean / 1e6;
    current = Number.isFinite(meanMs) ? Math.max(0, meanMs - resolutionMs) : 0;
    histogram.reset();
    schedule();
  };
  const schedule = () => {
    timer = options.clock.setTimer(sample, windowMs);
    // Measuring must never keep the process alive.
    timer.unref();
  };
  schedule();
  return {
    delayMs: () => current,
    close: () => {
      closed = true;
      timer?.clear();
      histogram.disable();
    },
  };
}

/** Why a request was shed. */
export type ShedReason = 'event_loop_delay' | 'concurrency';

/** @internal */
export class Shedder {
  constructor(
    private readonly maxDelayMs: number | undefined,
    private readonly delay: EventLoopDelaySource | undefined,
    private readonly limiter: ConcurrencyLimitPolicy | undefined,
    private readonly lowPriorityShare: number,
  ) {}

  /**
   * Admits the request (returning its permit, or `null` when no limiter is set) or says why it
   * must be shed.
   */
  admit(priority: number): Permit | null | ShedReason {
    const low = priority < 0;
    if (this.delay !== undefined && this.maxDelayMs !== undefined) {
      const threshold = low ? this.maxDelayMs * this.lowPriorityShare : this.maxDelayMs;
      if (this.delay.delayMs() > threshold) return 'event_loop_delay';
    }
    const limiter = this.limiter;
    if (limiter === undefined) return null;
    if (low && limiter.inFlight >= Math.floor(limiter.limit * this.lowPriorityShare)) {
      return 'concurrency';
    }
    return limiter.tryAcquire(priority) ?? 'concurrency';
  }

  close(): void {
    this.delay?.close?.();
  }
}
