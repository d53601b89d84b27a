import { mkdtemp, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countOfKind, crashMessageKind } from './plan.js';
import { drained } from './protocol.js';
import { builtCopyOf } from './built.js';

describe('crash plan', () => {
  it('makes 5% of the messages poison and 10% fail once, never both', () => {
    expect(countOfKind(10_000, 'poison')).toBe(500);
    expect(countOfKind(10_000, 'transient')).toBe(1_000);
    expect(countOfKind(10_000, 'ok')).toBe(8_500);
    expect([0, 1, 2, 20, 21, 11].map(crashMessageKind)).toEqual([
      'poison',
      'transient',
      'ok',
      'poison',
      'transient',
      'transient',
    ]);
  });

  it('counts a queue as drained only from stats that say nothing is ready, scheduled or leased', () => {
    expect(drained(undefined)).toBe(false);
    expect(drained({ ready: 0, scheduled: 0, leased: 0, dead: 7 })).toBe(true);
    expect(drained({ ready: 0, scheduled: 1, leased: 0, dead: 0 })).toBe(false);
    expect(drained({ ready: 0, scheduled: 0, leased: 1, dead: 0 })).toBe(false);
  });
});

describe('builtCopyOf', () => {
  it('maps src/*.ts to dist/*.js and refuses a missing or stale build, naming the fix', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bulwark-built-'));
    try {
      await mkdir(join(root, 'src', 'a'), { recursive: true });
      const source = join(root, 'src', 'a', 'b.ts');
      await writeFile(source, 'export {};');
      expect(() => builtCopyOf(source)).toThrow(/missing: run `npx tsc -b` first/);
      await mkdir(join(root, 'dist', 'a'), { recursive: true });
      const built = join(root, 'dist', 'a', 'b.js');
      await writeFile(built, 'export {};');
      await utimes(source, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
      await utimes(built, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
      expect(() => builtCopyOf(source)).toThrow(/older than its source: run `npx tsc -b` first/);
      await utimes(built, new Date(2_000_000_001_000), new Date(2_000_000_001_000));
      expect(builtCopyOf(source)).toBe(built);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
