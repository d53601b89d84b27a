/**
 * The demo's story, phase by phase, on an injected clock: the terminal runs it in real time, the
 * test runs the same story on a TestClock in a few milliseconds and checks what it tells.
 */
import {
  circuitBreaker,
  Deadline,
  exponentialBackoff,
  isBulwarkError,
  isCircuitOpenError,
  isRetryable,
  pipeline,
  retry,
  timeout,
  type Clock,
  type Random,
} from '@bulwark/core';
import { FlakyDependency } from './flaky-dependency.js';

export interface DemoOptions {
  clock: Clock;
  random: Random;
  /** Prints one line of the story. */
  print: (line: string) => void;
  /** Styles text for the terminal; identity when colours are off. */
  style?: Style;
}

export interface Style {
  title: (text: string) => string;
  ok: (text: string) => string;
  warn: (text: string) => string;
  bad: (text: string) => string;
  dim: (text: string) => string;
}

const plain: Style = { title: t => t, ok: t => t, warn: t => t, bad: t => t, dim: t => t };

/** What happened, for the test and the closing summary. */
export interface DemoSummary {
  calls: number;
  succeeded: number;
  failed: number;
  retriesScheduled: number;
  breakerTransitions: string[];
  fastRejections: number;
  deadlineRanOut: boolean;
  dependencyRequests: number;
  dependencyAborted: number;
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { clock, random, print } = options;
  const style = options.style ?? plain;
  const started = clock.now();
  const stamp = () => style.dim(`[${((clock.now() - started) / 1000).toFixed(3)}s]`);
  const say = (line: string) => print(`${stamp()} ${line}`);
  const pause = (ms: number) => new Promise<void>(resolve => clock.setTimer(resolve, ms));

  const dependency = new FlakyDependency(clock, random);
  const breaker = circuitBreaker({
    name: 'inventory',
    trigger: { kind: 'consecutive', failures: 5 },
    openMs: 2_000,
    halfOpen: { probes: 1 },
    clock,
  });
  const retries = retry({
    name: 'inventory',
    maxAttempts: 4,
    backoff: exponentialBackoff({ baseMs: 50, maxMs: 400 }),
    // An open circuit answers for the dependency: waiting it out is the breaker's job, not ours.
    retryOn: error => isRetryable(error) && !isCircuitOpenError(error),
    clock,
    random,
  });
  const perAttempt = timeout({ name: 'inventory', timeoutMs: 150, clock });
  const policy = pipeline(retries, breaker, perAttempt);

  const summary: DemoSummary = {
    calls: 0,
    succeeded: 0,
    failed: 0,
    retriesScheduled: 0,
    breakerTransitions: [],
    fastRejections: 0,
    deadlineRanOut: false,
    dependencyRequests: 0,
    dependencyAborted: 0,
  };

  retries.onEvent(event => {
    if (event.type === 'retry.scheduled') {
      summary.retriesScheduled++;
      say(
        style.warn(
          `  retry: attempt ${event.attempt - 1} failed (${describe(event.error)}); attempt ${event.attempt} in ${Math.round(event.delayMs)} ms`,
        ),
      );
    }
  });
  breaker.onEvent(event => {
    if (
      event.type === 'breaker.opened' ||
      event.type === 'breaker.half_opened' ||
      event.type === 'breaker.closed'
    ) {
      const transition = `${event.from} -> ${event.to}`;
      summary.breakerTransitions.push(transition);
      const paint = event.to === 'open' ? style.bad : event.to === 'closed' ? style.ok : style.warn;
      say(paint(`  breaker "inventory": ${transition}`));
    }
  });

  const call = async (label: string, deadline?: Deadline) => {
    summary.calls++;
    const t0 = clock.now();
    try {
      await policy.execute(
        ctx => dependency.request(ctx.signal),
        deadline === undefined ? {} : { deadline },
      );
      summary.succeeded++;
      say(style.ok(`${label}: ok in ${elapsed(clock.now() - t0)}`));
    } catch (error) {
      summary.failed++;
      if (isCircuitOpenError(error)) summary.fastRejections++;
      if (isBulwarkError(error) && error.code === 'DEADLINE_EXCEEDED')
        summary.deadlineRanOut = true;
      if (isBulwarkError(error) && error.cause !== undefined && isBulwarkError(error.cause)) {
        if (error.cause.code === 'DEADLINE_EXCEEDED') summary.deadlineRanOut = true;
      }
      say(style.bad(`${label}: failed in ${elapsed(clock.now() - t0)}: ${describe(error)}`));
    }
  };

  print(style.title('1. Healthy dependency: every call succeeds on the first attempt.'));
  dependency.mode = { kind: 'healthy', latencyMs: 20 };
  for (let i = 1; i <= 3; i++) {
    await call(`call ${summary.calls + 1}`);
    await pause(100);
  }

  print(
    style.title('\n2. Flaky dependency (half the requests fail): retries with jittered backoff.'),
  );
  dependency.mode = { kind: 'flaky', latencyMs: 20, failureRate: 0.5 };
  for (let i = 1; i <= 5; i++) {
    await call(`call ${summary.calls + 1}`);
    await pause(100);
  }

  print(
    style.title('\n3. Outage: after 5 failures in a row the breaker opens and calls fail fast.'),
  );
  dependency.mode = { kind: 'down', latencyMs: 20 };
  for (let i = 1; i <= 5; i++) {
    await call(`call ${summary.calls + 1}`);
    await pause(50);
  }

  print(
    style.title('\n4. Recovery: after openMs (2 s) one probe goes through and closes the breaker.'),
  );
  dependency.mode = { kind: 'healthy', latencyMs: 20 };
  await pause(2_000);
  for (let i = 1; i <= 3; i++) {
    await call(`call ${summary.calls + 1}`);
    await pause(100);
  }

  print(
    style.title(
      '\n5. Slow dependency under a 500 ms deadline: each attempt times out at 150 ms,\n' +
        '   retries stop when the deadline cannot fit another attempt, aborted work is cancelled.',
    ),
  );
  breaker.reset();
  dependency.mode = { kind: 'slow', latencyMs: 400 };
  await call(`call ${summary.calls + 1}`, Deadline.after(500, { clock }));

  summary.dependencyRequests = dependency.calls;
  summary.dependencyAborted = dependency.aborted;
  print(style.title('\nSummary'));
  print(
    `  ${summary.calls} calls: ${summary.succeeded} ok, ${summary.failed} failed ` +
      `(${summary.fastRejections} rejected at once by the open breaker); ` +
      `${summary.retriesScheduled} retries; the dependency saw ${dependency.calls} requests, ` +
      `${dependency.aborted} of them aborted by a timeout or the deadline.`,
  );
  return summary;
}

function elapsed(ms: number): string {
  return ms < 1 ? `${Math.round(ms * 1000)} µs` : `${Math.round(ms)} ms`;
}

function describe(error: unknown): string {
  if (isBulwarkError(error)) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
