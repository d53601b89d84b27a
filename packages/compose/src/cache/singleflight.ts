/**
 * singleflight: at most one run of the work per key at a time; callers that ask for the same key
 * while it runs share its result (Go's `golang.org/x/sync/singleflight`).
 *
 * Unlike Go's, a caller can leave: when its `signal` aborts it stops waiting at once (rejecting
 * with `CancelledError`) and the run carries on for the others. The run's own cancellation aborts
 * only when every caller has left, so one impatient caller cannot cancel a load others still want
 * (the "cross-request coupling" Go users hit). A caller that passes no signal never leaves.
 *
 * Cost: one shared promise per run. A run started by a caller with a signal also gets a core
 * `Scope` (a few fields; its AbortSignal is made only if the work reads `cancel.signal` — an
 * AbortController, and the event dispatch of aborting one, cost microseconds each on Node 20);
 * a run started without one gets the shared NEVER_SCOPE, since its first caller never leaves. A
 * caller with a signal adds a promise and a listener.
 */
import { CancelledError, NEVER_SCOPE, Scope } from '@bulwark/core';

export interface SingleflightOptions {
  /**
   * This caller stops waiting when it aborts; the run continues while others wait. A core
   * `Scope` (a part's `ctx.cancel`) works too and costs no AbortController.
   */
  readonly signal?: AbortSignal | Scope | undefined;
}

export interface Singleflight<K, V> {
  /**
   * Runs `work` for `key` unless a run for `key` is in flight, in which case it waits for that
   * run. `work` gets the run's cancellation, a core `Scope` that aborts when every waiting
   * caller has left (`cancel.signal` makes an AbortSignal of it, on first read).
   */
  do(key: K, work: (cancel: Scope) => Promise<V>, options?: SingleflightOptions): Promise<V>;
  /** True while a run for `key` is in flight (a `do` now would join it). */
  has(key: K): boolean;
  /** Callers arriving after this start a new run; callers already waiting keep the old one. */
  forget(key: K): void;
  /** Number of keys with a run in flight. */
  readonly size: number;
}

interface Flight<V> {
  readonly promise: Promise<V>;
  /** NEVER_SCOPE for a run nobody can abort (its first caller passed no signal). */
  readonly cancel: Scope;
  /** Callers still waiting, or Infinity once a caller that cannot leave joined. */
  waiters: number;
}

export function singleflight<K, V>(): Singleflight<K, V> {
  const flights = new Map<K, Flight<V>>();

  function start(key: K, work: (cancel: Scope) => Promise<V>, abortable: boolean): Flight<V> {
    const cancel = abortable ? new Scope() : NEVER_SCOPE;
    let promise: Promise<V>;
    try {
      promise = Promise.resolve(work(cancel));
    } catch (error) {
      promise = Promise.reject(error);
    }
    const flight: Flight<V> = { promise, cancel, waiters: 0 };
    const done = (): void => {
      if (flights.get(key) === flight) flights.delete(key);
    };
    // The flight leaves the map when it settles; this branch also keeps the rejection handled
    // when every caller left before it settled.
    promise.then(done, done);
    flights.set(key, flight);
    return flight;
  }

  function leave(key: K, flight: Flight<V>): void {
    flight.waiters -= 1;
    if (flight.waiters > 0) return;
    // Everyone left: stop the work and let the next caller start afresh.
    if (flights.get(key) === flight) flights.delete(key);
    flight.cancel.abort(new CancelledError());
  }

  return {
    do(key, work, options) {
      const signal = options?.signal;
      if (signal?.aborted) return Promise.reject(new CancelledError({ cause: signal.reason }));
      const flight = flights.get(key) ?? start(key, work, signal !== undefined);
      if (signal === undefined) {
        flight.waiters = Infinity;
        return flight.promise;
      }
      flight.waiters += 1;
      return new Promise<V>((resolve, reject) => {
        const onAbort = (): void => {
          reject(new CancelledError({ cause: signal.reason }));
          leave(key, flight);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        flight.promise.then(
          value => {
            signal.removeEventListener('abort', onAbort);
            resolve(value);
          },
          (error: unknown) => {
            signal.removeEventListener('abort', onAbort);
            reject(error);
          },
        );
      });
    },
    has: key => flights.has(key),
    forget(key) {
      flights.delete(key);
    },
    get size() {
      return flights.size;
    },
  };
}
