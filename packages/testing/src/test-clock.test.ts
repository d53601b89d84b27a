import { describe, expect, it } from 'vitest';
import { TestClock, observe } from './index.js';

describe('TestClock', () => {
  it('stands still until advanced, and fires due timers in order', async () => {
    const clock = new TestClock({ startMs: 5 });
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimer(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimer(() => fired.push(`c@${clock.now()}`), 20);
    expect(clock.now()).toBe(5);
    await clock.advance(15);
    expect(fired).toEqual(['a@15']);
    await clock.advance(100);
    expect(fired).toEqual(['a@15', 'b@25', 'c@25']);
    expect(clock.now()).toBe(120);
  });

  it('lets promise callbacks run between timers, so chained waits complete in one advance', async () => {
    const clock = new TestClock();
    const sleep = (ms: number) => new Promise<void>(resolve => clock.setTimer(resolve, ms));
    const chain = observe(
      (async () => {
        await sleep(10);
        await sleep(10);
        await sleep(10);
        return clock.now();
      })(),
    );
    await clock.advance(30);
    expect(chain.value).toBe(30);
  });

  it('clears timers and tracks which ones are referenced', async () => {
    const clock = new TestClock();
    let fired = false;
    const handle = clock.setTimer(() => (fired = true), 10);
    handle.unref();
    expect(clock.referencedTimers).toBe(0);
    handle.ref();
    expect(clock.referencedTimers).toBe(1);
    handle.clear();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(20);
    expect(fired).toBe(false);
  });

  it('gives a stable wall clock', async () => {
    const clock = new TestClock({ wallStartMs: 1_000_000 });
    await clock.advance(250);
    expect(clock.wallNow()).toBe(1_000_250);
    expect(new TestClock().wallNow()).toBe(Date.UTC(2026, 0, 1));
  });

  it('runAll stops a runaway timer loop', async () => {
    const clock = new TestClock();
    const loop = () => clock.setTimer(loop, 1);
    loop();
    await expect(clock.runAll(50)).rejects.toThrow(/more than 50 timers/);
  });

  it('refuses to go backwards', async () => {
    await expect(new TestClock().advance(-1)).rejects.toThrow(/ms must be >= 0/);
  });
});
