import { describe, expect, it } from 'vitest';
import { seededRandom } from '@bulwark/core';
import { TestClock } from '@bulwark/testing';
import { runDemo } from './scenario.js';

describe('demo scenario', () => {
  it('tells the whole story on a virtual clock', async () => {
    const clock = new TestClock();
    const lines: string[] = [];
    const done = runDemo({ clock, random: seededRandom(7), print: line => lines.push(line) });
    // Drive virtual time until the story ends; each step fires the next due timer.
    let finished = false;
    void done.then(() => (finished = true));
    for (let step = 0; step < 10_000 && !finished; step++) {
      const next = clock.nextTimerAt();
      await clock.advanceTo(next ?? clock.now());
    }
    const summary = await done;

    expect(summary.retriesScheduled).toBeGreaterThan(0);
    expect(summary.breakerTransitions).toEqual([
      'closed -> open',
      'open -> half-open',
      'half-open -> closed',
    ]);
    expect(summary.fastRejections).toBeGreaterThan(0);
    expect(summary.deadlineRanOut).toBe(true);
    expect(summary.dependencyAborted).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/breaker "inventory": closed -> open/);
    // The last phase ends within its 500 ms deadline: the retry never sleeps past it.
    expect(lines.at(-3)).toMatch(/failed in (4\d\d|500) ms/);
  });
});
