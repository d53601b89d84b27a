import { seededRandom } from '@bulwark/core';
import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { DeadlineSweep, type SweepEntry } from './deadline-sweep.js';

class Entry implements SweepEntry {
  heapIndex = -1;
  constructor(
    readonly expiresAt: number,
    readonly expired: string[],
    readonly name: string,
  ) {}
  expire(): void {
    this.expired.push(this.name);
  }
}

describe('DeadlineSweep', () => {
  it('expires entries at their exact expiry, earliest first, whatever the order they came in', async () => {
    const clock = new TestClock();
    const sweep = new DeadlineSweep<Entry>(clock);
    const expired: string[] = [];
    for (const [name, at] of [
      ['c', 300],
      ['a', 100],
      ['d', 400],
      ['b', 200],
    ] as const) {
      sweep.add(new Entry(at, expired, name));
    }
    await clock.advance(99);
    expect(expired).toEqual([]);
    await clock.advance(1);
    expect(expired).toEqual(['a']);
    await clock.advance(250);
    expect(expired).toEqual(['a', 'b', 'c']);
    await clock.advance(50);
    expect(expired).toEqual(['a', 'b', 'c', 'd']);
    expect(sweep.size).toBe(0);
  });

  it('never expires a removed entry, and removal keeps the rest in order', async () => {
    const clock = new TestClock();
    const sweep = new DeadlineSweep<Entry>(clock);
    const expired: string[] = [];
    const random = seededRandom(7);
    const entries = Array.from(
      { length: 200 },
      (_, i) => new Entry(1 + Math.floor(random.next() * 1_000), expired, `e${i}`),
    );
    for (const entry of entries) sweep.add(entry);
    const removed = new Set<Entry>();
    for (const entry of entries) {
      if (random.next() < 0.5) {
        sweep.remove(entry);
        removed.add(entry);
      }
    }
    sweep.remove(entries[0] as Entry); // twice: a no-op
    await clock.advance(1_000);
    const kept = entries.filter(e => !removed.has(e));
    expect(expired).toHaveLength(kept.length);
    expect(new Set(expired)).toEqual(new Set(kept.map(e => e.name)));
    const order = expired.map(name => (entries.find(e => e.name === name) as Entry).expiresAt);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  });

  it('arms one timer for entries that expire in arrival order, not one per entry', async () => {
    const clock = new TestClock();
    let timers = 0;
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (callback, delayMs) => {
      timers++;
      return setTimer(callback, delayMs);
    };
    const sweep = new DeadlineSweep<Entry>(clock);
    const expired: string[] = [];
    const entries: Entry[] = [];
    for (let i = 0; i < 100; i++) {
      const entry = new Entry(clock.now() + 1_000, expired, `e${i}`);
      entries.push(entry);
      sweep.add(entry);
      await clock.advance(1);
      sweep.remove(entry);
    }
    expect(timers).toBe(1);
    // The timer then fires for a finished request, finds nothing due and stays idle.
    await clock.advance(2_000);
    expect(expired).toEqual([]);
    expect(timers).toBe(1);
  });

  it('re-aims when a shorter deadline arrives, and after close expires nothing', async () => {
    const clock = new TestClock();
    const sweep = new DeadlineSweep<Entry>(clock);
    const expired: string[] = [];
    sweep.add(new Entry(1_000, expired, 'long'));
    sweep.add(new Entry(10, expired, 'short'));
    await clock.advance(10);
    expect(expired).toEqual(['short']);
    sweep.close();
    await clock.advance(5_000);
    expect(expired).toEqual(['short']);
  });
});
