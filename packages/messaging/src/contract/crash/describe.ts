/**
 * The crash suite for vitest: one crash run (see scenario.ts) in `beforeAll`, then one test per
 * promise of the "nothing lost" issue, so a failure names which promise broke.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crashMessageKind } from './plan.js';
import { runCrashScenario, type CrashReport, type CrashScenarioOptions } from './scenario.js';

export interface CrashSuiteSetup extends CrashScenarioOptions {
  /** Drops what the run created (a schema, a data folder). */
  cleanup?: () => Promise<void>;
}

/** Indices whose effect count differs from `expected(index)`, at most 20, for readable failures. */
function effectMismatches(
  report: CrashReport,
  effects: ReadonlyMap<number, number>,
  expected: (index: number) => number,
): string[] {
  const wrong: string[] = [];
  for (let i = 0; i < report.total && wrong.length < 20; i++) {
    const got = effects.get(i) ?? 0;
    if (got !== expected(i)) wrong.push(`#${i} (${crashMessageKind(i)}): ${got} effects`);
  }
  for (const index of effects.keys()) {
    if ((index < 0 || index >= report.total) && wrong.length < 20) wrong.push(`#${index}: unknown`);
  }
  return wrong;
}

/**
 * Registers the crash suite. `setup` runs in `beforeAll` and returns the scenario options (it may
 * open a server schema or create a data folder first); `timeoutMs` bounds the whole run.
 */
export function describeCrashScenario(
  name: string,
  setup: () => CrashSuiteSetup | Promise<CrashSuiteSetup>,
  timeoutMs = 150_000,
): void {
  describe(`crash run: ${name}`, () => {
    let report: CrashReport;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      const options = await setup();
      cleanup = options.cleanup;
      report = await runCrashScenario(options);
      const t = report.timings;
      console.info(
        `crash run ${name}: ${report.total} messages, ${report.kills.length} kills, ` +
          `${report.recovered} leases recovered, ${report.duplicates.length} inbox duplicates; ` +
          `enqueue ${t.enqueueMs} ms, crash phase ${t.crashPhaseMs} ms, ` +
          `replay phase ${t.replayPhaseMs} ms, total ${t.totalMs} ms`,
      );
    }, timeoutMs);

    afterAll(async () => {
      await cleanup?.();
    });

    it('kills the worker mid-flight the planned number of times', () => {
      expect(report.workers).toBe(report.kills.length + 1);
      for (const kill of report.kills) {
        const done = kill.progress.effects + kill.progress.dead;
        expect(done).toBeGreaterThanOrEqual(kill.target);
        expect(done).toBeLessThan(report.total);
      }
      // Messages a killed worker held came back through lease expiry, not by luck.
      if (report.kills.length > 0) expect(report.recovered).toBeGreaterThan(0);
    });

    it('refuses the effect of each message redelivered after its effect but before its ack', () => {
      for (const kill of report.kills) {
        // Killed between commit and ack: redelivered, recognised by the inbox, applied once.
        expect(report.duplicates).toContain(kill.heldIndex);
        expect(report.afterCrash.effects.get(kill.heldIndex)).toBe(1);
      }
    });

    it('applies every non-poison effect exactly once', () => {
      const { effects } = report.afterCrash;
      expect(
        effectMismatches(report, effects, i => (crashMessageKind(i) === 'poison' ? 0 : 1)),
      ).toEqual([]);
    });

    it('dead-letters exactly the poison messages, each with its attempt history', () => {
      const letters = report.afterCrash.deadLetters;
      const indices = letters
        .map(l => (l.message.payload as { index: number }).index)
        .sort((a, b) => a - b);
      const poison = Array.from({ length: report.total }, (_, i) => i).filter(
        i => crashMessageKind(i) === 'poison',
      );
      expect(indices).toEqual(poison);
      for (const letter of letters) {
        expect(letter.sourceQueue).toBe(report.queue);
        expect(letter.reason).toBe('failed');
        expect(letter.lastError.code).toBe('POISON');
        // One record per attempt, numbered from 1; earlier ones can only be crash recoveries.
        expect(letter.attempts.map(a => a.attempt)).toEqual(
          Array.from({ length: letter.message.attempt }, (_, k) => k + 1),
        );
        expect(letter.attempts.at(-1)?.code).toBe('POISON');
        for (const attempt of letter.attempts.slice(0, -1)) {
          expect(attempt.code).toBe('LEASE_EXPIRED');
        }
        for (const attempt of letter.attempts) {
          expect(attempt.endedAt).toBeGreaterThanOrEqual(attempt.startedAt);
        }
      }
    });

    it('adds up: effects + dead letters = messages sent, nothing left queued', () => {
      const { effectRows, deadLetters, stats } = report.afterCrash;
      expect(effectRows).toBe(report.total - report.poison);
      expect(effectRows + deadLetters.length).toBe(report.total);
      expect(stats).toEqual({ ready: 0, scheduled: 0, leased: 0, dead: report.poison });
    });

    it('drains the DLQ by replaying the fixed poison, every effect once', ({ skip }) => {
      const replay = report.replay;
      if (replay === undefined) return skip('replay: false');
      expect(replay.replayed).toBe(report.poison);
      expect(replay.after.deadLetters).toEqual([]);
      expect(replay.after.stats).toEqual({ ready: 0, scheduled: 0, leased: 0, dead: 0 });
      expect(effectMismatches(report, replay.after.effects, () => 1)).toEqual([]);
      expect(replay.after.effectRows).toBe(report.total);
    });
  });
}
