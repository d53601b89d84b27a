/**
 * Shutdown state and the in-flight count that draining waits on. Readiness fails first (so the
 * load balancer stops sending), then new requests are refused, then in-flight ones finish (up
 * to the drain timeout), then `fastify.close()` runs the `onClose` hooks that close pools.
 */
import type { Clock } from '@bulwark/core';

/** @internal */
export class Lifecycle {
  /** Readiness reports 503 from here on. */
  notReady = false;
  /** New requests (other than health probes) are refused from here on. */
  refusing = false;
  private count = 0;
  private idle: (() => void) | undefined;

  get inFlight(): number {
    return this.count;
  }

  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
    if (this.count === 0 && this.idle !== undefined) this.idle();
  }

  /** Resolves true when nothing is in flight, or false when `timeoutMs` passes first. */
  waitIdle(timeoutMs: number, clock: Clock): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise(resolve => {
      const timer = clock.setTimer(() => {
        this.idle = undefined;
        resolve(false);
      }, timeoutMs);
      this.idle = () => {
        this.idle = undefined;
        timer.clear();
        resolve(true);
      };
    });
  }
}

/** @internal Waits `ms` on `clock`. */
export function delay(clock: Clock, ms: number): Promise<void> {
  return new Promise(resolve => clock.setTimer(resolve, ms));
}
