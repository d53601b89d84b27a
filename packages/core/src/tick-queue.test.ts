import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import { TickQueue, type TickEntry } from './tick-queue.js';

/** An entry that records when it expired. */
function entry(clock: TestClock, log: { name: string; at: number }[], name: string): TickEntry {
  return {
    done: false,
    expire() {
      log.push({ name, at: clock.now() });
    },
  };
}

/** Adds an entry the way the timeout step does: exact when the ticker was idle. */
function start(queue: TickQueue<TickEntry>, item: TickEntry): number {
  const exact = !queue.ticking;
  const expiresAt = queue.begin();
  if (exact) queue.addExact(item, expiresAt);
  else queue.add(item);
  return expiresAt;
}

describe('TickQueue', () => {
  it('expires an idle start exactly and later starts at their tick + timeoutMs, never early', async () => {
    const clock = new TestClock();
    const log: { name: string; at: number }[] = [];
    const queue = new TickQueue<TickEntry>(clock, 100, 10);
    expect(start(queue, entry(clock, log, 'a'))).toBe(100); // idle: exact
    await clock.advance(3);
    // Joins the current generation: told the conservative expiry (last tick 0 + 100).
    expect(start(queue, entry(clock, log, 'b'))).toBe(100);
    await clock.advance(12); // tick at 10 seals b: fires at 110
    expect(start(queue, entry(clock, log, 'c'))).toBe(110); // sealed by the tick at 20: 120
    await clock.advance(200);
    expect(log).toEqual([
      { name: 'a', at: 100 },
      { name: 'b', at: 110 },
      { name: 'c', at: 120 },
    ]);
    expect(queue.pending).toBe(0);
    expect(queue.ticking).toBe(false);
  });

  it('skips finished entries and keeps each generation expiry after compaction', async () => {
    const clock = new TestClock();
    const log: { name: string; at: number }[] = [];
    const queue = new TickQueue<TickEntry>(clock, 1000, 10);
    const generations: TickEntry[][] = [];
    // Five generations of 600 entries, one per tick, so the head passes 1024 and compacts.
    for (let g = 0; g < 5; g++) {
      const items: TickEntry[] = [];
      for (let i = 0; i < 600; i++) {
        const item = entry(clock, log, `${g}:${i}`);
        start(queue, item);
        items.push(item);
      }
      generations.push(items);
      await clock.advance(10);
    }
    // Finish generations 0 and 1, and all but the last entry of the others: the head passes
    // 1024 and half the queue, so the queue compacts and shifts the generation starts.
    generations.forEach((items, g) => {
      (g < 2 ? items : items.slice(0, -1)).forEach(item => queue.finish(item));
    });
    expect(queue.pending).toBe(1201);
    await clock.advance(2000);
    // Entries added at 10 * g (after that tick) are sealed by the tick at 10 * (g + 1).
    expect(log).toEqual([
      { name: '2:599', at: 1030 },
      { name: '3:599', at: 1040 },
      { name: '4:599', at: 1050 },
    ]);
    expect(queue.pending).toBe(0);
  });

  it('lets an expiring entry add a new one without expiring it early', async () => {
    const clock = new TestClock();
    const log: { name: string; at: number }[] = [];
    const queue = new TickQueue<TickEntry>(clock, 50, 5);
    start(queue, {
      done: false,
      expire() {
        log.push({ name: 'first', at: clock.now() });
        start(queue, entry(clock, log, 'second'));
      },
    });
    await clock.advance(200);
    // The second joins while the ticker runs: sealed at the next tick (55), so it fires at 105.
    expect(log).toEqual([
      { name: 'first', at: 50 },
      { name: 'second', at: 105 },
    ]);
  });
});
