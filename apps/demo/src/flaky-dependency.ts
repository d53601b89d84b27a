/**
 * A simulated remote dependency whose behaviour the demo changes phase by phase. It honours the
 * AbortSignal it is given, as a well-behaved client would: an aborted call stops its timer at once.
 */
import { type Clock, type Random } from '@bulwark/core';

export type DependencyMode =
  | { kind: 'healthy'; latencyMs: number }
  | { kind: 'flaky'; latencyMs: number; failureRate: number }
  | { kind: 'down'; latencyMs: number }
  | { kind: 'slow'; latencyMs: number };

export class DependencyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  /** 5xx answers are worth another try; the retry policy reads this flag. */
  get retryable(): boolean {
    return this.status >= 500;
  }
}

export class FlakyDependency {
  mode: DependencyMode = { kind: 'healthy', latencyMs: 20 };
  calls = 0;
  aborted = 0;

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /** One request to the dependency. */
  request(signal: AbortSignal): Promise<string> {
    this.calls++;
    const mode = this.mode;
    return new Promise<string>((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        signal.removeEventListener('abort', onAbort);
        if (mode.kind === 'down') reject(new DependencyError(503, 'dependency unavailable (503)'));
        else if (mode.kind === 'flaky' && this.random.next() < mode.failureRate)
          reject(new DependencyError(500, 'dependency failed (500)'));
        else resolve('ok');
      }, mode.latencyMs);
      const onAbort = () => {
        timer.clear();
        this.aborted++;
        reject(signal.reason);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
