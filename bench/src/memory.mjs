/**
 * Scenario 3, memory: retained heap per idle circuit breaker (created, never called), with every
 * instance kept alive. Also reports the creation time and the timers each instance leaves armed.
 * `node --expose-gc src/memory.mjs --variant <name> [--quick]`
 */
import process from 'node:process';
import * as core from '@bulwark/core';
import {
  ConsecutiveBreaker,
  SamplingBreaker,
  circuitBreaker as cbCircuitBreaker,
  handleAll,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import { missingExports, now, nsPer, runScenario, settleHeap } from './lib.mjs';

const fn = async () => 42;

const needs = names => () => missingExports(core, names);

/**
 * `make()` creates one breaker; `use(instance)`, when present, is awaited right after (a call);
 * `close(instance)` releases what it holds (timers).
 */
export const variants = {
  'bulwark-time': {
    label: "bulwark circuitBreaker { kind: 'time', windowMs: 10s, failureRate: 0.5 }",
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['circuitBreaker']),
    make: () =>
      core.circuitBreaker({
        trigger: { kind: 'time', windowMs: 10_000, failureRate: 0.5 },
        openMs: 10_000,
      }),
  },
  'bulwark-consecutive': {
    label: "bulwark circuitBreaker { kind: 'consecutive', failures: 5 }",
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['circuitBreaker']),
    make: () =>
      core.circuitBreaker({ trigger: { kind: 'consecutive', failures: 5 }, openMs: 10_000 }),
  },
  'bulwark-time-used': {
    label: 'bulwark-time after one call (window ring and composed step allocated)',
    lib: '@bulwark/core',
    role: 'subject',
    requires: needs(['circuitBreaker']),
    make: () =>
      core.circuitBreaker({
        trigger: { kind: 'time', windowMs: 10_000, failureRate: 0.5 },
        openMs: 10_000,
      }),
    use: async breaker => {
      if ((await breaker.execute(fn)) !== 42) throw new Error('wrong result');
    },
  },
  'cockatiel-sampling': {
    label: 'cockatiel breaker SamplingBreaker(0.5, 10s)',
    lib: 'cockatiel',
    role: 'peer',
    make: () =>
      cbCircuitBreaker(handleAll, {
        halfOpenAfter: 10_000,
        breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
      }),
  },
  'cockatiel-consecutive': {
    label: 'cockatiel breaker ConsecutiveBreaker(5)',
    lib: 'cockatiel',
    role: 'info',
    make: () =>
      cbCircuitBreaker(handleAll, {
        halfOpenAfter: 10_000,
        breaker: new ConsecutiveBreaker(5),
      }),
  },
  opossum: {
    label: 'opossum breaker { enableSnapshots: false }',
    lib: 'opossum',
    role: 'peer',
    make: () => new CircuitBreaker(fn, { enableSnapshots: false }),
    close: breaker => breaker.shutdown(),
  },
};

/** V8 heap plus memory outside it (ArrayBuffer backing stores: a typed array over 64 bytes). */
function retained() {
  const { heapUsed, external } = process.memoryUsage();
  return { heap: heapUsed, external, total: heapUsed + external };
}

/**
 * Counts timers armed minus timers cleared while `body` runs. (Unref'd timers, which opossum
 * uses, do not show in `process.getActiveResourcesInfo()`, so the globals are wrapped instead.)
 */
function countTimers(body) {
  const saved = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  };
  let armed = 0;
  globalThis.setTimeout = (...args) => (armed++, saved.setTimeout(...args));
  globalThis.setInterval = (...args) => (armed++, saved.setInterval(...args));
  globalThis.clearTimeout = timer => (armed--, saved.clearTimeout(timer));
  globalThis.clearInterval = timer => (armed--, saved.clearInterval(timer));
  try {
    body();
  } finally {
    Object.assign(globalThis, saved);
  }
  return armed;
}

async function measure(variant, { quick }) {
  const count = quick ? 1_000 : 10_000;
  const close = variant.close ?? (() => {});
  const use = variant.use;
  // The array is allocated before the baseline, so only the breakers are counted.
  const keep = new Array(count).fill(null);
  // Load and compile the code paths, and let any lazily created shared state exist, first.
  for (let i = 0; i < 100; i++) {
    const instance = variant.make();
    if (use !== undefined) await use(instance);
    close(instance);
  }
  await settleHeap();

  const before = retained();
  const start = now();
  if (use === undefined) {
    for (let i = 0; i < count; i++) keep[i] = variant.make();
  } else {
    for (let i = 0; i < count; i++) await use((keep[i] = variant.make()));
  }
  const end = now();
  await settleHeap();
  const after = retained();
  // Counted on separate instances, so the wrappers stay out of the timing and the heap figures.
  const sample = [];
  const armed = countTimers(() => {
    for (let i = 0; i < 100; i++) sample.push(variant.make());
  });
  for (const instance of sample) close(instance);

  for (const instance of keep) close(instance);
  return {
    count,
    bytesPerInstance: (after.total - before.total) / count,
    heapBytesPerInstance: (after.heap - before.heap) / count,
    externalBytesPerInstance: (after.external - before.external) / count,
    nsToCreate: nsPer(start, end, count),
    timersPerInstance: armed / sample.length,
    alive: keep.filter(instance => instance !== null).length,
  };
}

await runScenario(import.meta, 'memory', variants, measure);
