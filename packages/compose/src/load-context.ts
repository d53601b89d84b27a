/**
 * What a shared load (a cache loader, a batch load) gets to cancel its I/O: the run's core
 * `Scope` as `cancel`, and an AbortSignal made from it only when `signal` is read — an
 * AbortController, and the event dispatch of aborting one, cost microseconds each on Node 20.
 */
import type { Scope } from '@bulwark/core';

export class LoadContext {
  constructor(readonly cancel: Scope) {}
  get signal(): AbortSignal {
    return this.cancel.signal;
  }
}
