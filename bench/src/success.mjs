/**
 * Scenario 1, success path: ns per sequential `await` of a call whose work already resolves.
 * `node --expose-gc src/success.mjs --variant <name> [--quick]`
 */
import * as core from '@bulwark/core';
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker as cbCircuitBreaker,
  handleAll,
  retry as cbRetry,
  timeout as cbTimeout,
  wrap,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import { missingExports, now, nsPer, runScenario, settleHeap } from './lib.mjs';

const fn = async () => 42;

const needs = names => () => missingExports(core, names);

/** Each `make()` builds the policy once and returns the function the loop awaits. */
export const variants = {
  bare: {
    label: 'bare `await fn()`',
    lib: 'node',
    role: 'baseline',
    make: () => fn,
  },
  bulwark: {
    label: 'bulwark pipeline(retry, circuitBreaker, timeout)',
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['pipeline', 'retry', 'circuitBreaker', 'timeout']),
    make: () => {
      const policy = core.pipeline(
        core.retry({ maxAttempts: 3 }),
        core.circuitBreaker({ trigger: { kind: 'consecutive', failures: 5 }, openMs: 10_000 }),
        core.timeout({ timeoutMs: 1000 }),
      );
      return () => policy.execute(fn);
    },
  },
  'bulwark-timeout': {
    label: 'bulwark timeout only',
    lib: '@bulwark/core',
    role: 'single',
    requires: needs(['timeout']),
    make: () => {
      const policy = core.timeout({ timeoutMs: 1000 });
      return () => policy.execute(fn);
    },
  },
  'bulwark-retry': {
    label: 'bulwark retry only',
    lib: '@bulwark/core',
    role: 'single',
    requires: needs(['retry']),
    make: () => {
      const policy = core.retry({ maxAttempts: 3 });
      return () => policy.execute(fn);
    },
  },
  'bulwark-breaker': {
    label: 'bulwark circuitBreaker only',
    lib: '@bulwark/core',
    role: 'single',
    requires: needs(['circuitBreaker']),
    make: () => {
      const policy = core.circuitBreaker({
        trigger: { kind: 'consecutive', failures: 5 },
        openMs: 10_000,
      });
      return () => policy.execute(fn);
    },
  },
  'bulwark-empty': {
    label: 'bulwark empty pipeline() (protocol cost)',
    lib: '@bulwark/core',
    role: 'info',
    requires: needs(['pipeline']),
    make: () => {
      const policy = core.pipeline();
      return () => policy.execute(fn);
    },
  },
  cockatiel: {
    label: 'cockatiel wrap(retry, breaker, timeout Aggressive)',
    lib: 'cockatiel',
    role: 'peer',
    make: () => {
      const policy = wrap(
        cbRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
        cbCircuitBreaker(handleAll, {
          halfOpenAfter: 10_000,
          breaker: new ConsecutiveBreaker(5),
        }),
        cbTimeout(1000, TimeoutStrategy.Aggressive),
      );
      return () => policy.execute(fn);
    },
  },
  'cockatiel-no-timeout': {
    label: 'cockatiel wrap(retry, breaker), no timeout',
    lib: 'cockatiel',
    role: 'info',
    make: () => {
      const policy = wrap(
        cbRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
        cbCircuitBreaker(handleAll, {
          halfOpenAfter: 10_000,
          breaker: new ConsecutiveBreaker(5),
        }),
      );
      return () => policy.execute(fn);
    },
  },
  opossum: {
    label: 'opossum breaker { timeout: 1000 }',
    lib: 'opossum',
    role: 'peer',
    make: () => {
      const breaker = new CircuitBreaker(fn, { timeout: 1000 });
      return () => breaker.fire();
    },
  },
};

// One loop for warm-up and measurement, so the timed loop runs already optimised code.
async function loop(call, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += await call();
  return sum;
}

async function measure(variant, { quick }) {
  const warmup = quick ? 5_000 : 50_000;
  const calls = quick ? 20_000 : 200_000;
  const call = variant.make();
  const warmSum = await loop(call, warmup);
  await settleHeap();
  const start = now();
  const sum = await loop(call, calls);
  const end = now();
  if (warmSum !== 42 * warmup || sum !== 42 * calls) {
    throw new Error(`wrong results: ${warmSum} / ${sum}`);
  }
  return { warmup, calls, nsPerCall: nsPer(start, end, calls) };
}

await runScenario(import.meta, 'success', variants, measure);
