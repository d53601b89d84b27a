import { isCancelledError, Scope } from '@bulwark/core';
import { controllableWork } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { singleflight } from './singleflight.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('singleflight', () => {
  it('runs the work once for 100 concurrent callers of one key', async () => {
    const group = singleflight<string, number>();
    const gate = deferred<number>();
    let calls = 0;
    const results = Array.from({ length: 100 }, () =>
      group.do('k', () => {
        calls += 1;
        return gate.promise;
      }),
    );
    expect(group.has('k')).toBe(true);
    gate.resolve(42);
    expect(await Promise.all(results)).toEqual(Array(100).fill(42));
    expect(calls).toBe(1);
    expect(group.size).toBe(0);
  });

  it('shares a failure and starts afresh afterwards', async () => {
    const group = singleflight<string, number>();
    let calls = 0;
    const fail = () => {
      calls += 1;
      return Promise.reject(new Error('boom'));
    };
    await expect(Promise.all([group.do('k', fail), group.do('k', fail)])).rejects.toThrow('boom');
    expect(calls).toBe(1);
    await expect(group.do('k', () => Promise.resolve(7))).resolves.toBe(7);
  });

  it('runs different keys separately', async () => {
    const group = singleflight<string, string>();
    const seen: string[] = [];
    const run = (key: string) =>
      group.do(key, () => {
        seen.push(key);
        return Promise.resolve(key.toUpperCase());
      });
    expect(await Promise.all([run('a'), run('b'), run('a')])).toEqual(['A', 'B', 'A']);
    expect(seen).toEqual(['a', 'b']);
  });

  it('turns a synchronous throw into a rejection', async () => {
    const group = singleflight<string, number>();
    await expect(
      group.do('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(group.size).toBe(0);
  });

  it('lets a caller leave at once without cancelling the run for the others', async () => {
    const group = singleflight<string, string>();
    const work = controllableWork<string>();
    let runSignal: Scope | undefined;
    const leaving = new AbortController();
    const first = group.do(
      'k',
      signal => {
        runSignal = signal;
        return work.work();
      },
      { signal: leaving.signal },
    );
    const staying = new AbortController();
    const second = group.do('k', () => Promise.resolve('unused'), { signal: staying.signal });

    leaving.abort(new Error('client gone'));
    const error: unknown = await first.catch((e: unknown) => e);
    expect(isCancelledError(error)).toBe(true);
    expect(runSignal?.aborted).toBe(false);

    work.resolve('value');
    await expect(second).resolves.toBe('value');
  });

  it('aborts the run when every caller has left, and the next caller starts a new run', async () => {
    const group = singleflight<string, string>();
    const signals: Scope[] = [];
    const never = () => new Promise<string>(() => {});
    const a = new AbortController();
    const b = new AbortController();
    const pa = group.do('k', s => (signals.push(s), never()), { signal: a.signal });
    const pb = group.do('k', s => (signals.push(s), never()), { signal: b.signal });
    a.abort();
    expect(signals[0]?.aborted).toBe(false);
    b.abort();
    expect(signals[0]?.aborted).toBe(true);
    await expect(pa).rejects.toSatisfy(isCancelledError);
    await expect(pb).rejects.toSatisfy(isCancelledError);
    expect(group.has('k')).toBe(false);
    await expect(group.do('k', () => Promise.resolve('fresh'))).resolves.toBe('fresh');
    expect(signals).toHaveLength(1);
  });

  it('never aborts a run joined by a caller without a signal', async () => {
    const group = singleflight<string, string>();
    let runSignal: Scope | undefined;
    const gate = deferred<string>();
    const leaving = new AbortController();
    const left = group.do(
      'k',
      s => {
        runSignal = s;
        return gate.promise;
      },
      { signal: leaving.signal },
    );
    const stays = group.do('k', () => Promise.resolve('x'));
    leaving.abort();
    await expect(left).rejects.toSatisfy(isCancelledError);
    expect(runSignal?.aborted).toBe(false);
    gate.resolve('done');
    await expect(stays).resolves.toBe('done');
  });

  it('rejects at once for a caller whose signal already aborted, without running the work', async () => {
    const group = singleflight<string, string>();
    let calls = 0;
    const promise = group.do(
      'k',
      () => {
        calls += 1;
        return Promise.resolve('x');
      },
      { signal: AbortSignal.abort() },
    );
    await expect(promise).rejects.toSatisfy(isCancelledError);
    expect(calls).toBe(0);
  });

  it('forget makes later callers start a new run', async () => {
    const group = singleflight<string, number>();
    const first = deferred<number>();
    const p1 = group.do('k', () => first.promise);
    group.forget('k');
    const p2 = group.do('k', () => Promise.resolve(2));
    first.resolve(1);
    expect(await Promise.all([p1, p2])).toEqual([1, 2]);
  });

  it('takes a core Scope as a caller signal, and makes no AbortSignal unless the work reads one', async () => {
    const group = singleflight<string, string>();
    let run: Scope | undefined;
    const leaving = new Scope();
    const first = group.do(
      'k',
      cancel => {
        run = cancel;
        return new Promise<string>(() => {});
      },
      { signal: leaving },
    );
    leaving.abort(new Error('client gone'));
    await expect(first).rejects.toSatisfy(isCancelledError);
    // Every caller left: the run's scope aborted, with no AbortController behind it.
    expect(run?.aborted).toBe(true);
    expect((run as unknown as { controller: unknown }).controller).toBeUndefined();
    expect(run?.signal.aborted).toBe(true); // made on demand, already aborted
  });
});
