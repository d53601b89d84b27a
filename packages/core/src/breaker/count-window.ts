/**
 * The last N calls (resilience4j's COUNT_BASED window): a ring of one byte per call with running
 * totals, so recording is O(1) and the rate is two divisions. The ring is allocated on the first
 * call, so an idle breaker costs only the object itself.
 */
import { evaluate, FAILURE, SLOW, type FailureWindow, type WindowSnapshot } from './window.js';

export class CountWindow implements FailureWindow {
  private ring: Uint8Array | undefined = undefined;
  private next = 0;
  private total = 0;
  private failed = 0;
  private slow = 0;

  /**
   * @param size calls in the window
   * @param minimumCalls calls needed before a rate is evaluated
   * @param failureRate open when failures / calls >= this
   * @param slowRate open when slow calls / calls >= this (Infinity: never)
   */
  constructor(
    private readonly size: number,
    private readonly minimumCalls: number,
    private readonly failureRate: number,
    private readonly slowRate: number,
  ) {}

  record(outcome: number): number {
    const ring = (this.ring ??= new Uint8Array(this.size));
    const at = this.next;
    if (this.total === this.size) {
      const evicted = ring[at] as number;
      this.failed -= evicted & FAILURE;
      this.slow -= (evicted & SLOW) >> 1;
    } else {
      this.total++;
    }
    ring[at] = outcome;
    this.next = at + 1 === this.size ? 0 : at + 1;
    this.failed += outcome & FAILURE;
    this.slow += (outcome & SLOW) >> 1;
    return evaluate(
      this.total,
      this.failed,
      this.slow,
      this.minimumCalls,
      this.failureRate,
      this.slowRate,
    );
  }

  reset(): void {
    // Drop the ring rather than zero it: a breaker that just opened may stay idle for a long time.
    this.ring = undefined;
    this.next = 0;
    this.total = 0;
    this.failed = 0;
    this.slow = 0;
  }

  calls(): number {
    return this.total;
  }

  failures(): number {
    return this.failed;
  }

  slowCalls(): number {
    return this.slow;
  }

  snapshot(): WindowSnapshot {
    let outcomes = '';
    const ring = this.ring;
    if (ring !== undefined) {
      const start = this.total === this.size ? this.next : 0;
      for (let i = 0; i < this.total; i++) outcomes += String(ring[(start + i) % this.size]);
    }
    return { kind: 'count', outcomes };
  }

  restore(snapshot: WindowSnapshot): void {
    this.reset();
    if (snapshot.kind !== 'count' || typeof snapshot.outcomes !== 'string') return;
    // A smaller window keeps the newest outcomes.
    const text = snapshot.outcomes.slice(-this.size);
    if (!/^[0-3]*$/.test(text)) return;
    for (let i = 0; i < text.length; i++) this.record(text.charCodeAt(i) - 48);
  }
}
