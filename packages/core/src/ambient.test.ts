import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import { currentDeadline, runWithDeadline } from './ambient.js';
import { Deadline } from './deadline.js';

describe('ambient deadline', () => {
  it('is visible across awaits inside runWithDeadline and absent outside', async () => {
    const deadline = Deadline.after(100, { clock: new TestClock() });
    expect(currentDeadline()).toBeUndefined();
    const seen = await runWithDeadline(deadline, async () => {
      await Promise.resolve();
      return currentDeadline();
    });
    expect(seen).toBe(deadline);
    expect(currentDeadline()).toBeUndefined();
  });
});
