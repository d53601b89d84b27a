/**
 * A cancellation scope: the cheap half of an AbortController. Policies link scopes to one
 * another with plain callbacks; a real AbortController is created only when someone reads
 * `signal`, because creating and aborting one costs microseconds on Node 20 (research §9.2).
 * Public so that a caller that makes one canceller per call (a queue consumer, per message) can
 * pass it as `execute`'s `signal` instead of an AbortController's signal.
 */

export interface AbortListener {
  abort(reason: unknown): void;
}

/**
 * The part of an AbortSignal that I/O libraries actually use (undici accepts any object with
 * `aborted`, `reason` and `addEventListener`/`removeEventListener` for 'abort'). A `Scope` is
 * one, so a client can hand a call's cancellation to undici without creating an AbortController:
 * about 2 µs and one EventTarget per attempt saved on Node 20.
 */
export interface AbortSource {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: unknown): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

type Listener = AbortListener | (() => void);

export class Scope implements AbortListener, AbortSource {
  // Per-call objects (timeouts make one per call) declare their fields and set them in the
  // constructor: an ES2022 class field would first define each one as undefined in a separate
  // initializer, then the constructor would store it a second time.
  declare aborted: boolean;
  declare reason: unknown;
  declare private controller: AbortController | undefined;
  /**
   * The listener while there is only one (the usual case: a call's attempt, a child scope), so
   * most scopes never make a Set: a Set made, added to and shrunk by a delete on every call was
   * about 4 KB of garbage per gateway overview (five calls). With two or more, all are in
   * `listeners`, in the order they were added.
   */
  declare private only: Listener | undefined;
  declare private listeners: Set<Listener> | undefined;

  constructor() {
    this.aborted = false;
    this.reason = undefined;
    this.controller = undefined;
    this.only = undefined;
    this.listeners = undefined;
  }

  /** The AbortSignal for this scope, created on first use. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const only = this.only;
    const listeners = this.listeners;
    this.only = undefined;
    this.listeners = undefined;
    if (only !== undefined) {
      if (typeof only === 'function') only();
      else only.abort(reason);
    }
    if (listeners === undefined) return;
    for (const listener of listeners) {
      if (typeof listener === 'function') listener();
      else listener.abort(reason);
    }
  }

  /** @internal Listeners registered now (tests prove that nothing accumulates). */
  get listenerCount(): number {
    return (this.only === undefined ? 0 : 1) + (this.listeners?.size ?? 0);
  }

  private listen(listener: Listener): void {
    const listeners = this.listeners;
    if (listeners !== undefined && listeners.size > 0) {
      listeners.add(listener);
      return;
    }
    const only = this.only;
    if (only === undefined) {
      this.only = listener;
    } else if (only !== listener) {
      // A second listener: both go to the Set, first one first.
      this.only = undefined;
      (this.listeners ??= new Set()).add(only).add(listener);
    }
  }

  private unlisten(listener: Listener): void {
    if (this.only === listener) this.only = undefined;
    else this.listeners?.delete(listener);
  }

  /** Calls `listener.abort` when this scope aborts (at once if it already has). */
  add(listener: AbortListener): void {
    if (this.aborted) {
      listener.abort(this.reason);
      return;
    }
    this.listen(listener);
  }

  remove(listener: AbortListener): void {
    this.unlisten(listener);
  }

  /**
   * EventTarget-style subscription for I/O libraries (see {@link AbortSource}). The listener is
   * called once, with no event; read `reason` for why. `once` is implied.
   */
  // `options` as EventTarget's (a caller passing `{ once: true }` to either kind of source).
  addEventListener(type: 'abort', listener: () => void, _options?: unknown): void {
    if (type !== 'abort') return;
    if (this.aborted) {
      listener();
      return;
    }
    this.listen(listener);
  }

  removeEventListener(type: 'abort', listener: () => void): void {
    if (type === 'abort') this.unlisten(listener);
  }

  /** A new scope that aborts when this one does. */
  child(): Scope {
    const child = new Scope();
    this.add(child);
    return child;
  }
}

/**
 * A scope that never aborts (its `abort`, `add` and listeners are no-ops), shared by calls that
 * have neither a signal nor a deadline, and by runs nobody can cancel.
 */
export const NEVER_SCOPE: Scope = new (class NeverScope extends Scope {
  override abort(): void {}
  override add(): void {}
  override remove(): void {}
  override addEventListener(): void {}
  override removeEventListener(): void {}
})();
