import { describe, expect, it } from 'vitest';
import { TestClock } from '@bulwark/testing';
import {
  currentContext,
  currentDeadline,
  currentRequestId,
  runWithContext,
  runWithDeadline,
} from './ambient.js';
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

describe('ambient context', () => {
  it('carries the deadline and the request id in one context, across awaits and timers', async () => {
    const deadline = Deadline.after(100, { clock: new TestClock() });
    const context = { deadline, requestId: 'req-1' };
    const seen = await runWithContext(context, async () => {
      await new Promise(resolve => setImmediate(resolve));
      return { context: currentContext(), deadline: currentDeadline(), id: currentRequestId() };
    });
    expect(seen).toEqual({ context, deadline, id: 'req-1' });
    expect(currentContext()).toBeUndefined();
    expect(currentRequestId()).toBeUndefined();
  });

  it('runWithDeadline inside a context replaces the deadline and keeps the request id', async () => {
    const clock = new TestClock();
    const outer = Deadline.after(1_000, { clock });
    const inner = outer.child({ timeoutMs: 10 });
    const seen = await runWithContext({ deadline: outer, requestId: 'req-2' }, async () => {
      const nested = await runWithDeadline(inner, async () => {
        await Promise.resolve();
        return { deadline: currentDeadline(), id: currentRequestId() };
      });
      return { nested, after: currentDeadline() };
    });
    expect(seen.nested.deadline).toBe(inner);
    expect(seen.nested.id).toBe('req-2');
    expect(seen.after).toBe(outer);
  });

  it('concurrent contexts do not see each other', async () => {
    const clock = new TestClock();
    const run = (id: string) =>
      runWithContext({ deadline: Deadline.after(50, { clock }), requestId: id }, async () => {
        await new Promise(resolve => setImmediate(resolve));
        return currentRequestId();
      });
    expect(await Promise.all([run('a'), run('b'), run('c')])).toEqual(['a', 'b', 'c']);
  });
});
