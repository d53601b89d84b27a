/**
 * Typed events that cost nothing when nobody listens: policies check `emitter.size` before they
 * build an event object, so the hot path allocates nothing for observability it does not use.
 */

export interface Disposable {
  dispose(): void;
}

export type Listener<E> = (event: E) => void;

/** Subscribe to a policy's events; dispose the result to unsubscribe. */
export type Subscribe<E> = (listener: Listener<E>) => Disposable;

export class Emitter<E> {
  private listeners: Listener<E>[] = [];

  /** Number of listeners; check it before building an event. */
  get size(): number {
    return this.listeners.length;
  }

  readonly subscribe: Subscribe<E> = listener => {
    // Copy on write, so a listener that unsubscribes during emit does not skip another.
    this.listeners = [...this.listeners, listener];
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        this.listeners = this.listeners.filter(l => l !== listener);
      },
    };
  };

  emit(event: E): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // A broken listener must not break the call it observes, but it must not be silent
        // either: rethrow outside the policy's control flow, where it surfaces as uncaught.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
