import { getEventListeners } from 'node:events';
import { Deadline, isCancelledError, isDeadlineExceededError, Scope } from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/ambient';
import { TestClock, flushMicrotasks } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { batchLoader, type BatchLoaderEvent, type BatchLoadResult } from './batch-loader.js';
import { isBatchKeyMissingError, isBatchResultError } from './errors.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A loader over a fake table that records each batch it was asked for. */
function recording(missing: readonly number[] = []) {
  const batches: number[][] = [];
  const signals: AbortSignal[] = [];
  const load = (keys: readonly number[], { signal }: { signal: AbortSignal }) => {
    batches.push([...keys]);
    signals.push(signal);
    return Promise.resolve(
      new Map(keys.filter(k => !missing.includes(k)).map(k => [k, `v${k}`] as const)),
    );
  };
  return { batches, signals, load };
}

describe('batchLoader: batching', () => {
  it.each([
    [1, 1],
    [10, 3],
    [100, 40],
    [101, 25],
  ])('%i keys with maxBatchSize %i make ceil(N/max) load calls', async (n, max) => {
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', maxBatchSize: max, load });
    const keys = Array.from({ length: n }, (_, i) => i);
    const values = await Promise.all(keys.map(k => loader.load(k)));
    expect(values).toEqual(keys.map(k => `v${k}`));
    expect(batches).toHaveLength(Math.ceil(n / max));
    expect(batches.every(b => b.length <= max)).toBe(true);
  });

  it('asks for a duplicate key once and gives every caller its value', async () => {
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', load });
    const values = await Promise.all([1, 2, 1, 1, 2].map(k => loader.load(k)));
    expect(values).toEqual(['v1', 'v2', 'v1', 'v1', 'v2']);
    expect(batches).toEqual([[1, 2]]);
  });

  it('remembers loaded values for its lifetime (one request), until cleared', async () => {
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', load });
    await loader.load(1);
    await loader.load(1);
    expect(batches).toEqual([[1]]);
    loader.clear(1);
    await loader.load(1);
    expect(batches).toEqual([[1], [1]]);
  });

  it('batches loads made in promise callbacks of the same turn', async () => {
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', load });
    const a = Promise.resolve().then(() => loader.load(1));
    const b = Promise.resolve()
      .then(() => undefined)
      .then(() => loader.load(2));
    await Promise.all([a, b]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('with windowMs waits on the clock for more keys', async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', windowMs: 10, load, clock });
    const first = loader.load(1);
    await clock.advance(5);
    const second = loader.load(2);
    expect(batches).toEqual([]);
    await clock.advance(5);
    expect(await Promise.all([first, second])).toEqual(['v1', 'v2']);
    expect(batches).toEqual([[1, 2]]);
  });

  it('uses cacheKey to dedupe object keys', async () => {
    const seen: { id: number }[][] = [];
    const loader = batchLoader<{ id: number }, string>({
      name: 'users',
      cacheKey: k => k.id,
      load: keys => (seen.push([...keys]), Promise.resolve(keys.map(k => `v${k.id}`))),
    });
    expect(await Promise.all([loader.load({ id: 1 }), loader.load({ id: 1 })])).toEqual([
      'v1',
      'v1',
    ]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toHaveLength(1);
  });
});

describe('batchLoader: results and errors', () => {
  it('fails a missing key with BatchKeyMissingError naming the key, others succeed', async () => {
    const { load } = recording([2]);
    const loader = batchLoader({ name: 'users', load });
    const [one, two] = await loader.loadMany([1, 2]);
    expect(one).toBe('v1');
    expect(isBatchKeyMissingError(two)).toBe(true);
    expect((two as Error).message).toMatch(
      /batch loader "users": load\(\) returned no value for key 2/,
    );
  });

  it('accepts an array aligned with keys, with per-key Errors', async () => {
    const loader = batchLoader<string, number>({
      name: 'n',
      load: keys => Promise.resolve(keys.map(k => (k === 'bad' ? new Error('no such') : k.length))),
    });
    const [ok, bad, missing] = await loader.loadMany(['abc', 'bad', 'x']);
    expect(ok).toBe(3);
    expect((bad as Error).message).toBe('no such');
    expect(missing).toBe(1);
  });

  it('fails every key with BatchResultError when the array has the wrong length', async () => {
    const loader = batchLoader<number, number>({ name: 'n', load: () => Promise.resolve([1]) });
    const results = await loader.loadMany([1, 2]);
    expect(results.every(isBatchResultError)).toBe(true);
    expect((results[0] as Error).message).toMatch(/returned 1 values for 2 keys/);
  });

  it('a rejected batch fails its callers and is not remembered', async () => {
    let calls = 0;
    const loader = batchLoader<number, string>({
      name: 'n',
      load: keys => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error('down')) : Promise.resolve(keys.map(String));
      },
    });
    await expect(loader.load(1)).rejects.toThrow('down');
    await expect(loader.load(1)).resolves.toBe('1');
  });

  it('a load that throws synchronously fails its callers', async () => {
    const loader = batchLoader<number, string>({
      name: 'n',
      load: () => {
        throw new Error('sync');
      },
    });
    await expect(loader.load(1)).rejects.toThrow('sync');
  });

  it('validates options with messages that name the fix', () => {
    const load = () => Promise.resolve([]);
    expect(() => batchLoader({ name: 'n', load, maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => batchLoader({ name: 'n', load, windowMs: -1 })).toThrow(/windowMs/);
    expect(() => batchLoader({ name: 'n', load, batchSize: 3 } as never)).toThrow(
      /unknown option "batchSize"/,
    );
    expect(() => batchLoader({ name: 'n' } as never)).toThrow(/load must be a function/);
  });
});

describe('batchLoader: deadlines and cancellation', () => {
  it("sends a windowed batch minBudgetMs before the earliest caller's deadline", async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const events: BatchLoaderEvent[] = [];
    const loader = batchLoader({ name: 'users', windowMs: 100, minBudgetMs: 5, load, clock });
    loader.onEvent(e => events.push(e));
    const relaxed = loader.load(1);
    const hurried = loader.load(2, { deadline: Deadline.after(30, { clock }) });
    await clock.advance(24);
    expect(batches).toEqual([]);
    await clock.advance(1);
    expect(batches).toEqual([[1, 2]]);
    expect(await Promise.all([relaxed, hurried])).toEqual(['v1', 'v2']);
    expect(events).toEqual([
      { type: 'batch.dispatch', loader: 'users', size: 2, reason: 'deadline' },
    ]);
  });

  it('uses the ambient deadline when none is passed', async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', windowMs: 100, minBudgetMs: 2, load, clock });
    const pending = runWithDeadline(Deadline.after(10, { clock }), () => loader.load(1));
    await clock.advance(7);
    expect(batches).toEqual([]);
    await clock.advance(1);
    expect(batches).toEqual([[1]]);
    await expect(pending).resolves.toBe('v1');
  });

  it('fails at once a caller with less than minBudgetMs left', async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', minBudgetMs: 5, load, clock });
    const error: unknown = await loader
      .load(1, { deadline: Deadline.after(4, { clock }) })
      .catch((e: unknown) => e);
    expect(isDeadlineExceededError(error)).toBe(true);
    expect((error as Error).message).toMatch(/less than minBudgetMs/);
    await flushMicrotasks();
    expect(batches).toEqual([]);
  });

  it('a caller that aborts is rejected at once; the batch goes on for the others', async () => {
    const gate = deferred<BatchLoadResult<number, string>>();
    let signal: AbortSignal | undefined;
    const loader = batchLoader<number, string>({
      name: 'users',
      load: (_keys, ctx) => ((signal = ctx.signal), gate.promise),
    });
    const leaving = new AbortController();
    const left = loader.load(1, { signal: leaving.signal });
    const stays = loader.load(2);
    await flushMicrotasks();
    leaving.abort();
    await expect(left).rejects.toSatisfy(isCancelledError);
    expect(signal?.aborted).toBe(false);
    gate.resolve(
      new Map([
        [1, 'a'],
        [2, 'b'],
      ]),
    );
    await expect(stays).resolves.toBe('b');
  });

  it("aborts the batch's signal when every caller has left (deadline or signal)", async () => {
    const clock = new TestClock();
    let signal: AbortSignal | undefined;
    const events: BatchLoaderEvent[] = [];
    const loader = batchLoader<number, string>({
      name: 'users',
      minBudgetMs: 0,
      clock,
      load: (_keys, ctx) => ((signal = ctx.signal), new Promise(() => {})),
    });
    loader.onEvent(e => events.push(e));
    const a = new AbortController();
    // Handlers attached now: the rejections happen while the clock advances.
    const byDeadline = loader
      .load(1, { deadline: Deadline.after(50, { clock }) })
      .catch((e: unknown) => e);
    const bySignal = loader.load(2, { signal: a.signal });
    await flushMicrotasks();
    expect(signal?.aborted).toBe(false);
    a.abort();
    await expect(bySignal).rejects.toSatisfy(isCancelledError);
    expect(signal?.aborted).toBe(false);
    await clock.advance(50);
    expect(isDeadlineExceededError(await byDeadline)).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(events.at(-1)).toEqual({ type: 'batch.abandoned', loader: 'users', size: 2 });
  });

  it('adds one abort listener per signal however many keys wait on it, and removes it after', async () => {
    const clock = new TestClock();
    const gate = deferred<BatchLoadResult<number, string>>();
    const loader = batchLoader<number, string>({ name: 'users', clock, load: () => gate.promise });
    const caller = new AbortController();
    const deadline = Deadline.after(1_000, { clock });
    const keys = Array.from({ length: 50 }, (_, i) => i);
    const pending = loader.loadMany(keys, { signal: caller.signal, deadline });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    // Deadlines are watched through their own listener list: no AbortSignal listener at all.
    expect(getEventListeners(deadline.signal, 'abort')).toHaveLength(0);
    gate.resolve(keys.map(k => `v${k}`));
    expect(await pending).toEqual(keys.map(k => `v${k}`));
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(getEventListeners(deadline.signal, 'abort')).toHaveLength(0);
  });

  it("a loadMany's signal aborting fails its waiting keys across batches; other callers go on", async () => {
    const clock = new TestClock();
    const gates: ReturnType<typeof deferred<BatchLoadResult<number, string>>>[] = [];
    const cancels: Scope[] = [];
    const loader = batchLoader<number, string>({
      name: 'users',
      clock,
      maxBatchSize: 2,
      load: (keys, ctx) => {
        if (keys[0] === 9) return Promise.resolve(new Map([[9, 'v9']]));
        cancels.push(ctx.cancel);
        gates.push(deferred());
        return gates[gates.length - 1]!.promise;
      },
    });
    expect(await loader.load(9)).toBe('v9');
    // Keys 1 and 2 fill the first batch (sent at once); 3 waits in the second, which the end of
    // the turn sends; 9 is remembered. Key 1 has a second caller, who never leaves.
    const caller = new AbortController();
    const deadline = Deadline.after(1_000, { clock });
    const many = loader.loadMany([1, 9, 2, 3], { signal: caller.signal, deadline });
    const other = loader.load(1);
    await new Promise(resolve => setImmediate(resolve));
    expect(cancels).toHaveLength(2);
    caller.abort(new Error('client gone'));
    const results = await many;
    expect(results[1]).toBe('v9');
    expect([results[0], results[2], results[3]].every(isCancelledError)).toBe(true);
    // The first batch still has key 1's other caller; nobody waits for the second any more.
    expect(cancels[0]!.aborted).toBe(false);
    expect(cancels[1]!.aborted).toBe(true);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    gates[0]!.resolve(
      new Map([
        [1, 'v1'],
        [2, 'v2'],
      ]),
    );
    expect(await other).toBe('v1');
  });

  it('a deadline passing fails every key of a loadMany that waited under it', async () => {
    const clock = new TestClock();
    const loader = batchLoader<number, string>({
      name: 'users',
      clock,
      minBudgetMs: 0,
      load: () => new Promise(() => {}),
    });
    const keys = Array.from({ length: 30 }, (_, i) => i);
    const pending = loader.loadMany(keys, { deadline: Deadline.after(50, { clock }) });
    await flushMicrotasks();
    await clock.advance(50);
    const results = await pending;
    expect(results).toHaveLength(30);
    expect(results.every(isDeadlineExceededError)).toBe(true);
  });

  it('loadMany mixes remembered values, fresh loads and per-key errors in key order', async () => {
    const { batches, load } = recording([3]);
    const loader = batchLoader({ name: 'users', load });
    await loader.load(1);
    const results = await loader.loadMany([1, 2, 3, 2]);
    expect(results.slice(0, 2)).toEqual(['v1', 'v2']);
    expect(isBatchKeyMissingError(results[2])).toBe(true);
    expect(results[3]).toBe('v2');
    expect(batches).toEqual([[1], [2, 3]]);
    expect(await loader.loadMany([])).toEqual([]);
  });

  it('one abort rejects every caller that shared the signal', async () => {
    const loader = batchLoader<number, string>({
      name: 'users',
      load: () => new Promise(() => {}),
    });
    const caller = new AbortController();
    const pending = [1, 2, 3].map(k =>
      loader.load(k, { signal: caller.signal }).catch((e: unknown) => e),
    );
    await flushMicrotasks();
    caller.abort();
    const errors = await Promise.all(pending);
    expect(errors.every(isCancelledError)).toBe(true);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('takes a core Scope as the caller signal; the batch gets a Scope that aborts when all left', async () => {
    let batchCancel: Scope | undefined;
    const loader = batchLoader<number, string>({
      name: 'users',
      load: (_keys, batch) => {
        batchCancel = batch.cancel;
        return new Promise(() => {});
      },
    });
    const caller = new Scope();
    const pending = [1, 2].map(k => loader.load(k, { signal: caller }).catch((e: unknown) => e));
    await new Promise(resolve => setImmediate(resolve)); // the batch goes out on the next turn
    expect(batchCancel?.aborted).toBe(false);
    caller.abort(new Error('client gone'));
    const errors = await Promise.all(pending);
    expect(errors.every(isCancelledError)).toBe(true);
    expect(batchCancel?.aborted).toBe(true);
    expect((batchCancel as unknown as { controller: unknown }).controller).toBeUndefined();
  });

  it('a key whose callers all left before the send is not asked for', async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', windowMs: 10, load, clock });
    const a = new AbortController();
    const gone = loader.load(1, { signal: a.signal });
    const kept = loader.load(2);
    a.abort();
    await expect(gone).rejects.toSatisfy(isCancelledError);
    await clock.advance(10);
    await expect(kept).resolves.toBe('v2');
    expect(batches).toEqual([[2]]);
  });

  it('sends nothing when every caller left before the send', async () => {
    const clock = new TestClock();
    const { batches, load } = recording();
    const loader = batchLoader({ name: 'users', windowMs: 10, load, clock });
    const a = new AbortController();
    const gone = loader.load(1, { signal: a.signal });
    a.abort();
    await expect(gone).rejects.toSatisfy(isCancelledError);
    await clock.advance(10);
    expect(batches).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});
