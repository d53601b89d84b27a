/**
 * Scenario 2, failure path: every call rejects with one pre-allocated error and the breaker is
 * configured never to open. Measures ns per failing call in consecutive chunks, to show both the
 * cost and whether it grows with the number of calls in the breaker's window.
 * `node --expose-gc src/failure.mjs --variant <name> [--quick]`
 */
import * as core from '@bulwark/core';
import {
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker as cbCircuitBreaker,
  handleAll,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import { missingExports, now, nsPer, runScenario } from './lib.mjs';

const ERROR = new Error('boom');
const fn = async () => {
  throw ERROR;
};

const needs = names => () => missingExports(core, names);

/**
 * `make()` returns `{ call, check, close }`: `call` is awaited and must reject with ERROR,
 * `check()` returns a problem (e.g. the breaker opened) or undefined, `close()` releases timers.
 */
export const variants = {
  bare: {
    label: 'bare reject + catch',
    lib: 'node',
    role: 'baseline',
    make: () => ({ call: fn }),
  },
  bulwark: {
    label: 'bulwark circuitBreaker consecutive(1e9)',
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['circuitBreaker']),
    make: () => {
      const policy = core.circuitBreaker({
        trigger: { kind: 'consecutive', failures: 1e9 },
        openMs: 10_000,
      });
      return { call: () => policy.execute(fn), check: () => bulwarkOpen(policy) };
    },
  },
  'bulwark-time': {
    label:
      "bulwark circuitBreaker { kind: 'time', windowMs: 10s, failureRate: 1, minimumCalls: 1e9 }",
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['circuitBreaker']),
    make: () => {
      const policy = core.circuitBreaker({
        trigger: { kind: 'time', windowMs: 10_000, failureRate: 1, minimumCalls: 1e9 },
        openMs: 10_000,
      });
      return { call: () => policy.execute(fn), check: () => bulwarkOpen(policy) };
    },
  },
  cockatiel: {
    label: 'cockatiel breaker ConsecutiveBreaker(1e9)',
    lib: 'cockatiel',
    role: 'peer',
    make: () => {
      const policy = cbCircuitBreaker(handleAll, {
        halfOpenAfter: 10_000,
        breaker: new ConsecutiveBreaker(1e9),
      });
      return {
        call: () => policy.execute(fn),
        check: () =>
          policy.state === CircuitState.Closed ? undefined : `cockatiel state ${policy.state}`,
      };
    },
  },
  opossum: {
    label: 'opossum defaults, errorThresholdPercentage 100',
    lib: 'opossum',
    role: 'peer',
    make: () => opossum({ errorThresholdPercentage: 100 }),
  },
  'opossum-no-percentiles': {
    label: 'opossum, same + rollingPercentilesEnabled false',
    lib: 'opossum',
    role: 'info',
    make: () => opossum({ errorThresholdPercentage: 100, rollingPercentilesEnabled: false }),
  },
};

function opossum(options) {
  const breaker = new CircuitBreaker(fn, options);
  return {
    call: () => breaker.fire(),
    check: () => (breaker.opened ? 'opossum opened' : undefined),
    close: () => breaker.shutdown(),
  };
}

function bulwarkOpen(policy) {
  const state = policy.state;
  return state === undefined || state === 'closed' ? undefined : `bulwark state ${String(state)}`;
}

// One loop for warm-up and every chunk. Returns how many calls did not reject with ERROR.
async function loop(call, n) {
  let wrong = 0;
  for (let i = 0; i < n; i++) {
    try {
      await call();
      wrong++;
    } catch (error) {
      if (error !== ERROR) wrong++;
    }
  }
  return wrong;
}

async function measure(variant, { quick }) {
  const chunks = 10;
  const chunkSize = quick ? 200 : 2_000;
  const warmup = 5 * chunkSize;
  // Warm the JIT on a throwaway instance, so chunk 1 of the measured instance is not dominated
  // by compilation, while its window still starts empty. No gc() here: a full GC shrinks the
  // young generation, and the scavenges that follow inflate chunk 1 by 2-3x for every variant
  // that allocates per failure.
  const scratch = variant.make();
  let wrong = await loop(scratch.call, warmup);
  scratch.close?.();

  const subject = variant.make();
  const chunkNs = [];
  for (let c = 0; c < chunks; c++) {
    const start = now();
    wrong += await loop(subject.call, chunkSize);
    chunkNs.push(nsPer(start, now(), chunkSize));
  }
  const problem = subject.check?.();
  subject.close?.();
  if (wrong > 0) throw new Error(`${wrong} calls did not reject with the pre-allocated error`);
  if (problem !== undefined) throw new Error(`breaker did not stay closed: ${problem}`);
  return { warmup, chunks, chunkSize, chunkNs };
}

await runScenario(import.meta, 'failure', variants, measure);
