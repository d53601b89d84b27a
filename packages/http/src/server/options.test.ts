import { describe, expect, it } from 'vitest';
import { resolveOptions } from './options.js';

describe('plugin options', () => {
  it('fills documented defaults', () => {
    const o = resolveOptions();
    expect(o).toMatchObject({
      defaultMs: 10_000,
      maxMs: 60_000,
      requestIdHeader: 'x-request-id',
      readyCacheMs: 2_000,
      livePath: '/livez',
      readyPath: '/readyz',
      healthPath: '/health',
      handleSignals: true,
      drainTimeoutMs: 10_000,
      maxEventLoopDelayMs: 200,
      lowPriorityShare: 0.75,
      shedRetryAfterMs: 1_000,
    });
  });

  it.each([
    [{ timeouts: { defaultMs: 0 } }, /timeouts.defaultMs/],
    [{ timeouts: { defaultMs: 5_000, maxMs: 1_000 } }, /must not exceed timeouts.maxMs/],
    [{ timeouts: { defaultMs: 1, typo: 1 } }, /unknown option timeouts.typo/],
    [{ requestIdHeader: '' }, /requestIdHeader/],
    [
      { health: { checks: [{ name: 'a:b', critical: true, check: async () => {} }] } },
      /without ":"/,
    ],
    [
      { health: { checks: [{ name: 'db', check: async () => {} }] } },
      /critical must be true or false/,
    ],
    [{ health: { readyCacheMs: -1 } }, /readyCacheMs/],
    [{ health: { paths: { live: 'livez' } } }, /health.paths.live/],
    [{ shutdown: { drainTimeoutMs: 0 } }, /drainTimeoutMs/],
    [{ shedding: { lowPriorityShare: 2 } }, /lowPriorityShare/],
    [{ shedding: { concurrency: {} } }, /concurrencyLimit/],
    [{ nope: true }, /unknown option options.nope/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveOptions(options as never)).toThrow(message);
  });
});
