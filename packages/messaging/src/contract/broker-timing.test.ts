import { describe, expect, it } from 'vitest';
import { memoryQueueBackend } from '../memory-backend.js';
import { ContractHarness } from './harness.js';
import { describeQueueBackendContract } from './queue-backend-contract.js';

// The broker-timing mode itself, proven on the in-memory backend running on real time: the same
// 29 tests with measured bounds instead of exact times (about 15 s of real waiting).
describeQueueBackendContract('memory on broker timing', () => ({
  backend: memoryQueueBackend(),
  timing: 'broker',
}));

describe('ContractHarness options', () => {
  it('rejects an unknown timing and a negative tolerance', () => {
    const backend = memoryQueueBackend();
    expect(() => new ContractHarness(backend, { timing: 'wall' as never })).toThrow(/timing/);
    expect(() => new ContractHarness(backend, { timing: 'broker', toleranceMs: -1 })).toThrow(
      /toleranceMs/,
    );
  });

  it('broker timing reads real time and run(ms, until) stops once until holds', async () => {
    const h = new ContractHarness(memoryQueueBackend(), { timing: 'broker', toleranceMs: 1_000 });
    expect(Math.abs(h.clock.wallNow() - Date.now())).toBeLessThanOrEqual(1);
    let ready = false;
    h.clock.setTimer(() => (ready = true), 30);
    const started = performance.now();
    await h.run(10, () => ready);
    const took = performance.now() - started;
    expect(ready).toBe(true);
    expect(took).toBeGreaterThanOrEqual(29);
    expect(took).toBeLessThan(1_000);
  });
});
