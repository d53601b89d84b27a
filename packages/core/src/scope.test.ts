import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { abortSourceOf, pipeline, timeout, type ExecutionContext } from './index.js';
import { Deadline } from './deadline.js';
import { NEVER_SCOPE, Scope } from './scope.js';

describe('Scope as an AbortSource (EventTarget-like, for undici)', () => {
  it('calls abort listeners once, with the reason readable on the scope, and not after removal', () => {
    const scope = new Scope();
    const calls: unknown[] = [];
    const kept = () => calls.push(['kept', scope.reason]);
    const removed = () => calls.push('removed');
    scope.addEventListener('abort', kept);
    scope.addEventListener('abort', removed);
    scope.removeEventListener('abort', removed);
    scope.abort('why');
    scope.abort('again');
    expect(calls).toEqual([['kept', 'why']]);
    expect(scope.aborted).toBe(true);
  });

  it('calls every listener in the order added, once each, whatever was removed between', () => {
    const scope = new Scope();
    const calls: string[] = [];
    const listener = (name: string) => ({ abort: () => calls.push(name) });
    const a = listener('a');
    const b = listener('b');
    const c = () => calls.push('c');
    scope.add(a);
    scope.add(a); // twice is once, as with a Set
    expect(scope.listenerCount).toBe(1);
    scope.remove(a);
    expect(scope.listenerCount).toBe(0);
    scope.add(b);
    scope.add(a);
    scope.addEventListener('abort', c);
    scope.remove(b);
    scope.add(b);
    expect(scope.listenerCount).toBe(3);
    scope.abort('x');
    expect(calls).toEqual(['a', 'c', 'b']);
    expect(scope.listenerCount).toBe(0);
  });

  it('calls a listener added after the abort at once', () => {
    const scope = new Scope();
    scope.abort('early');
    let called = 0;
    scope.addEventListener('abort', () => (called += 1));
    expect(called).toBe(1);
  });

  it('ignores other event types, and the never-aborting scope keeps nothing', () => {
    const scope = new Scope();
    let called = 0;
    scope.addEventListener('other' as 'abort', () => (called += 1));
    scope.abort('x');
    expect(called).toBe(0);
    NEVER_SCOPE.addEventListener('abort', () => (called += 1));
    NEVER_SCOPE.abort('x');
    expect(called).toBe(0);
  });

  it("abortSourceOf gives a policy context's scope (no AbortController) and it fires with the timeout", async () => {
    let source: ReturnType<typeof abortSourceOf> | undefined;
    let aborted: unknown;
    const clock = new TestClock();
    const policy = pipeline(timeout({ timeoutMs: 20, resolutionMs: 0, clock }));
    const call = policy.execute(
      (ctx: ExecutionContext) =>
        new Promise((_resolve, reject) => {
          source = abortSourceOf(ctx);
          source.addEventListener('abort', () => {
            aborted = source?.reason;
            reject(source?.reason);
          });
        }),
    );
    const settled = expect(call).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(aborted).toBeUndefined();
    await clock.advance(20);
    await settled;
    expect(source).toBeInstanceOf(Scope);
    expect(aborted).toMatchObject({ code: 'TIMEOUT' });
  });

  it('abortSourceOf falls back to the signal of a context that is not one of ours', () => {
    const signal = new AbortController().signal;
    const foreign: ExecutionContext = {
      signal,
      deadline: Deadline.after(1_000),
      attempt: 1,
      cancellable: true,
    };
    expect(abortSourceOf(foreign)).toBe(signal);
  });
});
