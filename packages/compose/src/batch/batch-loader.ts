/**
 * batchLoader: DataLoader-style batching, made per request, that knows about deadlines.
 *
 * Keys asked for during one turn of the event loop (or within `windowMs`) go to the origin in one
 * `load(keys)` call of at most `maxBatchSize` keys; duplicate keys are asked for once, and a key
 * already loaded by this loader is answered from memory. Unlike DataLoader:
 *
 * - A waiting batch is sent no later than `minBudgetMs` before the earliest waiting caller's
 *   deadline, so a window never eats a caller's budget; a caller with less than `minBudgetMs`
 *   left fails at once (`DeadlineExceededError`) instead of joining a batch it cannot use.
 * - Each caller can leave (its `signal` aborts or its deadline passes): it is rejected at once.
 *   The batch's own cancellation (`cancel`, a core Scope; `signal` on first read) aborts when
 *   every caller of the batch has left.
 * - A key the loader gives no value for fails with `BatchKeyMissingError` naming the key.
 * - Only values are remembered, never errors: a failed key is tried again on the next load.
 */
import {
  CancelledError,
  DeadlineExceededError,
  Emitter,
  NEVER_SCOPE,
  Scope,
  systemClock,
  type Clock,
  type Deadline,
  type Subscribe,
  type TimerHandle,
} from '@bulwark/core';
import { currentDeadline } from '@bulwark/core/ambient';
import {
  rejectUnknown,
  requireClock,
  requireCount,
  requireFn,
  requireMs,
  requireName,
  requireOptionsObject,
} from '../cache/validate.js';
import { LoadContext } from '../load-context.js';
import { BatchKeyMissingError, BatchResultError } from './errors.js';

export interface BatchLoadContext {
  /** Aborts when every caller waiting for this batch has left (signal aborted or deadline passed). */
  readonly signal: AbortSignal;
  /**
   * The same cancellation as a core `Scope`: pass it as `signal` to Bulwark's http client, which
   * then needs no AbortController (reading `signal` makes one).
   */
  readonly cancel: Scope;
}

/**
 * What `load` returns: a Map from key to value (or Error), or an array aligned with `keys`
 * (DataLoader's shape). An absent key, or `undefined`, fails that key with `BatchKeyMissingError`.
 */
export type BatchLoadResult<K, V> =
  ReadonlyMap<K, V | Error> | ReadonlyArray<V | Error | undefined>;

export interface BatchLoaderOptions<K, V> {
  /** Used in errors and events. Required. */
  name: string;
  /** Loads many keys in one call. Keys are distinct (by `cacheKey`). Required. */
  load: (keys: readonly K[], context: BatchLoadContext) => PromiseLike<BatchLoadResult<K, V>>;
  /** Most keys in one `load` call; a full batch is sent at once. Integer >= 1 or Infinity. Default 100. */
  maxBatchSize?: number;
  /**
   * How long a batch waits for more keys after its first, in ms. `0` sends it at the end of the
   * current turn of the event loop (after pending promise callbacks), as DataLoader does. Default 0.
   */
  windowMs?: number;
  /**
   * A batch is sent at least this many ms before the earliest waiting caller's deadline, and a
   * caller with less than this left is failed at once. Default 5.
   */
  minBudgetMs?: number;
  /** Maps a key to what identifies it (for object keys). Default: the key itself (Map equality). */
  cacheKey?: (key: K) => unknown;
  /** Drives `windowMs` and deadline-driven sends. Default: the system clock. */
  clock?: Clock;
}

export interface BatchLoadOptions {
  /**
   * This caller stops waiting when it aborts (rejecting with `CancelledError`). A core `Scope`
   * (a part's `ctx.cancel`) works too, without an AbortController.
   */
  readonly signal?: AbortSignal | Scope | undefined;
  /** This caller's deadline. Default: the ambient deadline (`currentDeadline()`), if any. */
  readonly deadline?: Deadline | undefined;
}

/** Why a batch was sent: full, its window ended, a caller's deadline was near, end of turn, or `dispatch()`. */
export type BatchDispatchReason = 'full' | 'window' | 'deadline' | 'tick' | 'manual';

export type BatchLoaderEvent =
  | { type: 'batch.dispatch'; loader: string; size: number; reason: BatchDispatchReason }
  | { type: 'batch.abandoned'; loader: string; size: number };

export interface BatchLoader<K, V> {
  readonly name: string;
  load(key: K, options?: BatchLoadOptions): Promise<V>;
  /** Loads several keys; each slot holds the value or the Error for that key. */
  loadMany(keys: readonly K[], options?: BatchLoadOptions): Promise<(V | Error)[]>;
  /** Sends the waiting batch now. */
  dispatch(): void;
  /** Forgets a remembered value, so the next load asks again. */
  clear(key: K): void;
  clearAll(): void;
  readonly onEvent: Subscribe<BatchLoaderEvent>;
}

interface Waiter<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
  /** Stops watching the caller's signal and deadline (`load` callers; a group watches itself). */
  detach: (() => void) | undefined;
  settled: boolean;
}

/** One key a batch asks for, and the callers waiting for it. */
interface Slot<K, V> {
  readonly key: K;
  readonly id: unknown;
  readonly batch: Batch<K, V>;
  /**
   * The first waiter, and any after it: most keys have one caller, which then costs no array
   * (an array of one per key was a tenth of what a request's loader allocated).
   */
  first: Waiter<V> | undefined;
  more: Waiter<V>[] | undefined;
  /** Every caller left before the batch was sent: it is not sent. */
  removed: boolean;
  /** Loaded: `value` is remembered for the loader's lifetime (until cleared). */
  loaded: boolean;
  value: V | undefined;
}

interface Batch<K, V> {
  /**
   * The keys in order of arrival, distinct (the loader's entries dedupe them), removed ones
   * included. An array, not a Map: a Map would be grown and rehashed key by key for each
   * request's batch.
   */
  readonly slots: Slot<K, V>[];
  /** Slots not removed: the batch's size. */
  size: number;
  /** Callers still waiting on this batch. */
  live: number;
  /** Callers that can never leave (no signal, no deadline): while any, the batch is never aborted. */
  fixed: number;
  /** Monotonic time by which the batch must be sent. */
  dueAt: number;
  timer: TimerHandle | undefined;
  immediate: boolean;
  /** The batch's cancellation once sent; NEVER_SCOPE when a caller can never leave. */
  cancel: Scope;
  sent: boolean;
}

/** One `load` caller's key, as a watch's member. */
interface KeyMember<K, V> {
  readonly slot: Slot<K, V>;
  readonly waiter: Waiter<V>;
}

/**
 * The `load` callers waiting on one signal or deadline: one abort listener for all of them
 * (a request that loads 50 keys one by one under one deadline adds one listener, not 50, which
 * also tripped Node's MaxListenersExceededWarning past 10). `abort` lets a Deadline call it.
 */
class Watch<K, V> {
  readonly members = new Set<KeyMember<K, V>>();
  constructor(readonly onAbort: (reason?: unknown) => void) {}
  abort(reason: unknown): void {
    this.onAbort(reason);
  }
  fire(error: unknown, loader: Loader<K, V>): void {
    for (const m of [...this.members]) loader.leave(m.slot, m.waiter, error);
    this.members.clear();
  }
}

/**
 * One `loadMany`: its result slots, and the keys it waits for in batches. It watches its signal
 * and deadline itself, once for all its keys (a request's 12 order lines: one listener each and
 * no closure per key), and stops watching when its last key settles.
 */
class Group<K, V> {
  readonly results: (V | Error)[];
  /** The keys waiting in batches. */
  readonly waiting: GroupWaiter<K, V>[] = [];
  private signal: AbortSignal | Scope | undefined = undefined;
  private deadline: Deadline | undefined = undefined;
  constructor(
    private left: number,
    private readonly done: (results: (V | Error)[]) => void,
    private readonly loader: Loader<K, V>,
  ) {
    this.results = new Array<V | Error>(left);
  }
  set(index: number, value: V | Error): void {
    this.results[index] = value;
    if (--this.left === 0) {
      this.unwatch();
      this.done(this.results);
    }
  }
  watch(signal: AbortSignal | Scope | undefined, deadline: Deadline | undefined): void {
    if (signal !== undefined) {
      this.signal = signal;
      // A Scope calls `abort` below; an AbortSignal calls `handleEvent`.
      if (signal instanceof Scope) signal.add(this);
      else signal.addEventListener('abort', this, { once: true });
    }
    if (deadline !== undefined) {
      this.deadline = deadline;
      deadline.onAbort(this);
    }
  }
  private unwatch(): void {
    const signal = this.signal;
    if (signal !== undefined) {
      this.signal = undefined;
      if (signal instanceof Scope) signal.remove(this);
      else signal.removeEventListener('abort', this);
    }
    const deadline = this.deadline;
    if (deadline !== undefined) {
      this.deadline = undefined;
      deadline.offAbort(this);
    }
  }
  /** The caller's AbortSignal aborted. */
  handleEvent(): void {
    this.leave(new CancelledError({ cause: (this.signal as AbortSignal).reason }));
  }
  /** The caller's Scope aborted, or its deadline passed (or was cancelled). */
  abort(reason: unknown): void {
    const signal = this.signal;
    this.leave(
      signal !== undefined && signal.aborted
        ? new CancelledError({ cause: signal.reason })
        : (reason ?? new DeadlineExceededError()),
    );
  }
  /** Every key still waiting leaves. */
  private leave(error: unknown): void {
    this.unwatch();
    for (const waiter of this.waiting) this.loader.leave(waiter.slot as Slot<K, V>, waiter, error);
  }
}

/** One key of a `loadMany`: a waiter without a promise of its own, watched through its group. */
class GroupWaiter<K, V> implements Waiter<V> {
  detach: (() => void) | undefined = undefined;
  settled = false;
  slot: Slot<K, V> | undefined = undefined;
  constructor(
    readonly group: Group<K, V>,
    private readonly index: number,
  ) {}
  resolve(value: V): void {
    this.group.set(this.index, value);
  }
  reject(error: unknown): void {
    this.group.set(this.index, error instanceof Error ? error : new Error(String(error)));
  }
}

const WHERE = 'batchLoader';

function sendAtEndOfTurn<K, V>(loader: Loader<K, V>, batch: Batch<K, V>): void {
  loader.send(batch, 'tick');
}

const scheduleTurn: <K, V>(loader: Loader<K, V>, batch: Batch<K, V>) => void =
  typeof setImmediate === 'function'
    ? (loader, batch) => void setImmediate(sendAtEndOfTurn, loader, batch)
    : (loader, batch) => void setTimeout(sendAtEndOfTurn, 0, loader, batch);

export function batchLoader<K, V>(options: BatchLoaderOptions<K, V>): BatchLoader<K, V> {
  requireOptionsObject(WHERE, options);
  rejectUnknown(WHERE, options, [
    'name',
    'load',
    'maxBatchSize',
    'windowMs',
    'minBudgetMs',
    'cacheKey',
    'clock',
  ]);
  const name = requireName(WHERE, options.name);
  requireFn(WHERE, 'load', options.load);
  const maxBatchSize = requireCount(WHERE, 'maxBatchSize', options.maxBatchSize ?? 100, 1, true);
  const windowMs = requireMs(WHERE, 'windowMs', options.windowMs ?? 0);
  const minBudgetMs = requireMs(WHERE, 'minBudgetMs', options.minBudgetMs ?? 5);
  if (options.cacheKey !== undefined) requireFn(WHERE, 'cacheKey', options.cacheKey);
  requireClock(WHERE, options.clock);
  return new Loader<K, V>(
    name,
    options.load,
    maxBatchSize,
    windowMs,
    minBudgetMs,
    options.cacheKey,
    options.clock ?? systemClock,
  );
}

/**
 * The loader. A class, not closures over the options: a loader is made per request, and one
 * object with its methods on the prototype costs a fraction of fifteen closures and four Maps
 * (the Maps of `load` callers' watches and the event emitter are made on first use).
 */
class Loader<K, V> implements BatchLoader<K, V> {
  /** Keys loaded (remembered) or waiting in a batch, by `cacheKey`. */
  private readonly entries = new Map<unknown, Slot<K, V>>();
  private gathering: Batch<K, V> | undefined = undefined;
  private emitter: Emitter<BatchLoaderEvent> | undefined = undefined;
  private callerWatches: Map<AbortSignal | Scope, Watch<K, V>> | undefined = undefined;
  private deadlineWatches: Map<Deadline, Watch<K, V>> | undefined = undefined;

  constructor(
    readonly name: string,
    private readonly loadBatch: BatchLoaderOptions<K, V>['load'],
    private readonly maxBatchSize: number,
    private readonly windowMs: number,
    private readonly minBudgetMs: number,
    private readonly cacheKey: ((key: K) => unknown) | undefined,
    private readonly clock: Clock,
  ) {}

  get onEvent(): Subscribe<BatchLoaderEvent> {
    return (this.emitter ??= new Emitter<BatchLoaderEvent>()).subscribe;
  }

  load(key: K, options?: BatchLoadOptions): Promise<V> {
    const signal = options?.signal;
    const deadline = options?.deadline ?? currentDeadline();
    const refused = this.refuses(signal, deadline);
    return new Promise<V>((resolve, reject) => {
      const waiter: Waiter<V> = { resolve, reject, detach: undefined, settled: false };
      const slot = this.enter(key, waiter, refused, signal, deadline);
      if (slot !== undefined && (signal !== undefined || deadline !== undefined)) {
        waiter.detach = this.watch({ slot, waiter }, signal, deadline);
      }
    });
  }

  /**
   * One promise for all the keys (not one per key, plus a catch each and a Promise.all): a
   * request's 20 order lines cost one allocation of bookkeeping instead of about 60 promises.
   */
  loadMany(keys: readonly K[], options?: BatchLoadOptions): Promise<(V | Error)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    const signal = options?.signal;
    const deadline = options?.deadline ?? currentDeadline();
    // The caller's time and signal are checked once for all its keys.
    const refused = this.refuses(signal, deadline);
    return new Promise<(V | Error)[]>(resolve => {
      const group = new Group<K, V>(keys.length, resolve, this);
      const watched = signal !== undefined || deadline !== undefined;
      for (let i = 0; i < keys.length; i++) {
        const waiter = new GroupWaiter(group, i);
        const slot = this.enter(keys[i] as K, waiter, refused, signal, deadline);
        if (slot === undefined) continue;
        waiter.slot = slot;
        if (watched) group.waiting.push(waiter);
      }
      // Watched once for all its keys, if any still waits (a batch settles them asynchronously,
      // so none of `waiting` has been settled yet).
      if (group.waiting.length > 0) group.watch(signal, deadline);
    });
  }

  dispatch(): void {
    if (this.gathering !== undefined) this.send(this.gathering, 'manual');
  }

  clear(key: K): void {
    const id = this.idOf(key);
    if (this.entries.get(id)?.loaded === true) this.entries.delete(id);
  }

  clearAll(): void {
    for (const [id, slot] of this.entries) if (slot.loaded) this.entries.delete(id);
  }

  // ---- entering keys -------------------------------------------------------------------------

  private idOf(key: K): unknown {
    return this.cacheKey === undefined ? key : this.cacheKey(key);
  }

  /** A caller whose signal has aborted, or who has less than minBudgetMs left, joins no batch. */
  private refuses(
    signal: AbortSignal | Scope | undefined,
    deadline: Deadline | undefined,
  ): boolean {
    if (signal?.aborted === true) return true;
    return (
      deadline !== undefined && (deadline.expired || deadline.remainingMs() < this.minBudgetMs)
    );
  }

  private refusal(signal: AbortSignal | Scope | undefined, deadline: Deadline): unknown {
    if (signal?.aborted === true) return new CancelledError({ cause: signal.reason });
    return deadline.expired
      ? new DeadlineExceededError()
      : new DeadlineExceededError(
          `batch loader "${this.name}": ${deadline.remainingMs()} ms left, less than minBudgetMs (${this.minBudgetMs} ms)`,
        );
  }

  /**
   * Answers `waiter` for `key` at once (remembered value, caller refused) and returns undefined,
   * or adds it to the key's slot (the waiting batch's, made if need be) and returns the slot.
   */
  private enter(
    key: K,
    waiter: Waiter<V>,
    refused: boolean,
    signal: AbortSignal | Scope | undefined,
    deadline: Deadline | undefined,
  ): Slot<K, V> | undefined {
    const id = this.idOf(key);
    const known = this.entries.get(id);
    if (known !== undefined && known.loaded) {
      waiter.settled = true;
      waiter.resolve(known.value as V);
      return undefined;
    }
    if (refused) {
      waiter.settled = true;
      waiter.reject(this.refusal(signal, deadline as Deadline));
      return undefined;
    }
    if (known !== undefined) {
      if (known.first === undefined) known.first = waiter;
      else (known.more ??= []).push(waiter);
      this.count(known.batch, signal, deadline);
      return known;
    }
    const batch = (this.gathering ??= this.newBatch());
    const slot: Slot<K, V> = {
      key,
      id,
      batch,
      first: waiter,
      more: undefined,
      removed: false,
      loaded: false,
      value: undefined,
    };
    batch.slots.push(slot);
    batch.size += 1;
    this.entries.set(id, slot);
    this.count(batch, signal, deadline);
    if (batch.size >= this.maxBatchSize) this.send(batch, 'full');
    return slot;
  }

  /** Counts a new waiter in its batch; a deadline may bring the batch's send forward. */
  private count(
    batch: Batch<K, V>,
    signal: AbortSignal | Scope | undefined,
    deadline: Deadline | undefined,
  ): void {
    batch.live += 1;
    if (signal === undefined && deadline === undefined) batch.fixed += 1;
    else if (deadline !== undefined && !batch.sent) this.hurry(batch, deadline);
  }

  // ---- batches -------------------------------------------------------------------------------

  private newBatch(): Batch<K, V> {
    const batch: Batch<K, V> = {
      slots: [],
      size: 0,
      live: 0,
      fixed: 0,
      dueAt: this.windowMs === 0 ? 0 : this.clock.now() + this.windowMs,
      timer: undefined,
      immediate: this.windowMs === 0,
      cancel: NEVER_SCOPE,
      sent: false,
    };
    if (batch.immediate) {
      scheduleTurn(this, batch);
    } else {
      batch.timer = this.clock.setTimer(() => this.send(batch, 'window'), this.windowMs);
    }
    return batch;
  }

  /** Brings the send forward for a caller whose deadline falls before the window ends. */
  private hurry(batch: Batch<K, V>, deadline: Deadline): void {
    if (batch.immediate) return;
    const clock = this.clock;
    const sendBy = clock.now() + deadline.remainingMs() - this.minBudgetMs;
    if (sendBy >= batch.dueAt) return;
    batch.dueAt = sendBy;
    batch.timer?.clear();
    batch.timer = clock.setTimer(() => this.send(batch, 'deadline'), sendBy - clock.now());
  }

  /** @internal */
  send(batch: Batch<K, V>, reason: BatchDispatchReason): void {
    if (batch.sent) return;
    batch.sent = true;
    batch.timer?.clear();
    batch.timer = undefined;
    if (this.gathering === batch) this.gathering = undefined;
    if (batch.size === 0) return;
    const slots =
      batch.size === batch.slots.length ? batch.slots : batch.slots.filter(slot => !slot.removed);
    const keys = slots.map(slot => slot.key);
    this.emit({ type: 'batch.dispatch', loader: this.name, size: keys.length, reason });
    // A Scope, not an AbortController (microseconds to make and to abort on Node 20), and only
    // if every caller can leave.
    if (batch.fixed === 0) batch.cancel = new Scope();
    let result: PromiseLike<BatchLoadResult<K, V>>;
    try {
      result = this.loadBatch(keys, new LoadContext(batch.cancel));
    } catch (error) {
      result = Promise.reject(error);
    }
    Promise.resolve(result).then(
      found => this.deliver(slots, found),
      (error: unknown) => {
        for (const slot of slots) this.settle(slot, error, false);
      },
    );
  }

  private deliver(slots: Slot<K, V>[], found: BatchLoadResult<K, V>): void {
    if (found instanceof Map) {
      for (const slot of slots) {
        this.settleFound(slot, (found as ReadonlyMap<K, V | Error>).get(slot.key));
      }
      return;
    }
    if (!Array.isArray(found)) {
      const error = new BatchResultError(
        this.name,
        `load() must return a Map or an array aligned with its keys, got ${typeof found}`,
      );
      for (const slot of slots) this.settle(slot, error, false);
      return;
    }
    const list = found as ReadonlyArray<V | Error | undefined>;
    if (list.length !== slots.length) {
      const error = new BatchResultError(
        this.name,
        `load() returned ${list.length} values for ${slots.length} keys; return one value or Error per key, in key order (or a Map)`,
      );
      for (const slot of slots) this.settle(slot, error, false);
      return;
    }
    for (let i = 0; i < slots.length; i++) this.settleFound(slots[i] as Slot<K, V>, list[i]);
  }

  private settleFound(slot: Slot<K, V>, value: V | Error | undefined): void {
    if (value === undefined)
      this.settle(slot, new BatchKeyMissingError(this.name, slot.key), false);
    else if (value instanceof Error) this.settle(slot, value, false);
    else this.settle(slot, value, true);
  }

  private settle(slot: Slot<K, V>, outcome: unknown, ok: boolean): void {
    const entries = this.entries;
    if (ok) {
      // The slot stays in `entries` as the remembered value: no delete and set per key.
      slot.loaded = true;
      slot.value = outcome as V;
      // Abandoned by all its callers (and so dropped) but loaded anyway: remember it still.
      if (!entries.has(slot.id)) entries.set(slot.id, slot);
    } else if (entries.get(slot.id) === slot) {
      // Errors are not remembered: the next load of the key asks again.
      entries.delete(slot.id);
    }
    const first = slot.first;
    const more = slot.more;
    slot.first = undefined;
    slot.more = undefined;
    if (first !== undefined) settleWaiter(first, outcome, ok);
    if (more !== undefined) for (const waiter of more) settleWaiter(waiter, outcome, ok);
  }

  /** @internal A waiter leaves its slot (its signal aborted or its deadline passed). */
  leave(slot: Slot<K, V>, waiter: Waiter<V>, error: unknown): void {
    if (waiter.settled) return;
    waiter.settled = true;
    waiter.detach?.();
    waiter.reject(error);
    if (slot.first === waiter) {
      slot.first = slot.more?.shift();
    } else if (slot.more !== undefined) {
      const at = slot.more.indexOf(waiter);
      if (at !== -1) slot.more.splice(at, 1);
    }
    const batch = slot.batch;
    batch.live -= 1;
    const entries = this.entries;
    if (!batch.sent) {
      if (slot.first === undefined) {
        slot.removed = true;
        batch.size -= 1;
        if (entries.get(slot.id) === slot) entries.delete(slot.id);
      }
      if (batch.size === 0) {
        batch.sent = true; // nothing left to send
        batch.timer?.clear();
        if (this.gathering === batch) this.gathering = undefined;
      }
      return;
    }
    if (batch.live === 0) {
      // Nobody wants this batch any more: stop it, and let later loads start afresh.
      for (const s of batch.slots) if (entries.get(s.id) === s) entries.delete(s.id);
      this.emit({ type: 'batch.abandoned', loader: this.name, size: batch.size });
      batch.cancel.abort(new CancelledError());
    }
  }

  private emit(event: BatchLoaderEvent): void {
    const emitter = this.emitter;
    if (emitter !== undefined && emitter.size > 0) emitter.emit(event);
  }

  // ---- watching `load` callers --------------------------------------------------------------

  // One abort listener per distinct signal or deadline, shared by every `load` caller waiting on
  // it. Deadlines are watched through their own listener list (`onAbort`), so no AbortController
  // is made for them.

  private watchSignal(signal: AbortSignal | Scope, member: KeyMember<K, V>): () => void {
    const watches = (this.callerWatches ??= new Map<AbortSignal | Scope, Watch<K, V>>());
    let entry = watches.get(signal);
    if (entry === undefined) {
      const created: Watch<K, V> = new Watch(() => {
        watches.delete(signal);
        created.fire(new CancelledError({ cause: signal.reason }), this);
      });
      entry = created;
      watches.set(signal, created);
      signal.addEventListener('abort', created.onAbort, { once: true });
    }
    const current = entry;
    current.members.add(member);
    return () => {
      current.members.delete(member);
      if (current.members.size === 0 && watches.get(signal) === current) {
        watches.delete(signal);
        signal.removeEventListener('abort', current.onAbort);
      }
    };
  }

  private watchDeadline(deadline: Deadline, member: KeyMember<K, V>): () => void {
    const watches = (this.deadlineWatches ??= new Map<Deadline, Watch<K, V>>());
    let entry = watches.get(deadline);
    if (entry === undefined) {
      const created: Watch<K, V> = new Watch((reason: unknown) => {
        watches.delete(deadline);
        created.fire(reason ?? new DeadlineExceededError(), this);
      });
      entry = created;
      watches.set(deadline, created);
      deadline.onAbort(created);
    }
    const current = entry;
    current.members.add(member);
    return () => {
      current.members.delete(member);
      if (current.members.size === 0 && watches.get(deadline) === current) {
        watches.delete(deadline);
        deadline.offAbort(current);
      }
    };
  }

  /** Watches a `load` caller's signal and deadline, so it can leave; returns what stops watching. */
  private watch(
    member: KeyMember<K, V>,
    signal: AbortSignal | Scope | undefined,
    deadline: Deadline | undefined,
  ): () => void {
    const unwatchSignal = signal === undefined ? undefined : this.watchSignal(signal, member);
    const unwatchDeadline =
      deadline === undefined ? undefined : this.watchDeadline(deadline, member);
    return () => {
      unwatchSignal?.();
      unwatchDeadline?.();
    };
  }
}

function settleWaiter<V>(waiter: Waiter<V>, outcome: unknown, ok: boolean): void {
  if (waiter.settled) return;
  waiter.settled = true;
  waiter.detach?.();
  if (ok) waiter.resolve(outcome as V);
  else waiter.reject(outcome);
}
