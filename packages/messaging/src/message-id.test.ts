import { describe, expect, it, vi } from 'vitest';
import { newMessageId } from './message-id.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit time in ms an id carries. */
const timeOf = (id: string): number => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('newMessageId', () => {
  it('is a UUID v7 carrying the given time in ms', () => {
    const at = Date.UTC(2030, 0, 1) + 123;
    const id = newMessageId(at);
    expect(id).toMatch(UUID_V7);
    expect(timeOf(id)).toBe(at);
    expect(newMessageId()).toMatch(UUID_V7);
  });

  it('orders ids by time, and within one ms by the order they were made', () => {
    const base = Date.UTC(2031, 5, 1);
    const ids = [
      ...Array.from({ length: 1_000 }, () => newMessageId(base)),
      ...Array.from({ length: 10 }, () => newMessageId(base + 1)),
      newMessageId(base + 60_000),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(timeOf(ids[999]!)).toBe(base);
    expect(timeOf(ids.at(-1)!)).toBe(base + 60_000);
  });

  it('past 4,096 ids in one ms, or when the clock steps back, moves on from the last id', () => {
    const base = Date.UTC(2032, 0, 1);
    const burst = Array.from({ length: 5_000 }, () => newMessageId(base));
    expect([...burst].sort()).toEqual(burst);
    expect(new Set(burst).size).toBe(burst.length);
    // 4,096 fit in `base`; the rest went on into the next ms.
    expect(timeOf(burst[4_095]!)).toBe(base);
    expect(timeOf(burst[4_096]!)).toBe(base + 1);
    const back = newMessageId(base - 10_000);
    expect(back > burst.at(-1)!).toBe(true);
    expect(timeOf(back)).toBe(base + 1);
  });

  it('still makes a well-formed id for a time it cannot carry (NaN, before 1970)', async () => {
    for (const bad of [-5, Number.NaN, Number.NEGATIVE_INFINITY]) {
      // A fresh module each time: the first id a process makes has no earlier one to go by.
      vi.resetModules();
      const fresh = await import('./message-id.js');
      expect(fresh.newMessageId(bad)).toMatch(UUID_V7);
    }
  });

  it('draws fresh random bits for every id', () => {
    const at = Date.UTC(2033, 0, 1);
    const tails = new Set(Array.from({ length: 2_000 }, () => newMessageId(at).slice(19)));
    expect(tails.size).toBe(2_000);
  });
});
