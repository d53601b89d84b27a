/**
 * The ambient context: the deadline (and id) of the request being served, found without passing
 * them through every function. A separate subpath (`@bulwark/core/ambient`) because it needs
 * Node's AsyncLocalStorage, and the rest of core stays runtime-neutral.
 *
 * ONE AsyncLocalStorage holds one small object with everything ambient. On Node 20 every store
 * costs a property write on every async resource the process creates (each promise, tick, timer
 * and socket write) while it is enabled, so a second store for the request id cost a server
 * ~1-2 µs per request (bench/README.md, http-server). Add fields here rather than new stores.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Deadline } from './deadline.js';

/** What is ambient while a request is served. Immutable: derive a new one to change a field. */
export interface AmbientContext {
  /** The deadline work should respect, if any. */
  readonly deadline: Deadline | undefined;
  /** The id of the request being served (set by an HTTP server integration), if any. */
  readonly requestId: string | undefined;
}

const storage = new AsyncLocalStorage<AmbientContext>();

/**
 * Runs `fn` with `context` ambient for everything it calls, sync or async. Server integrations
 * enter a request's whole context in one call, once per request.
 */
export function runWithContext<T>(context: AmbientContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The ambient context, or undefined outside {@link runWithContext} / {@link runWithDeadline}. */
export function currentContext(): AmbientContext | undefined {
  return storage.getStore();
}

/**
 * Runs `fn` with `deadline` as the ambient deadline for everything it calls, sync or async. The
 * rest of the surrounding context (the request id) stays ambient.
 */
export function runWithDeadline<T>(deadline: Deadline, fn: () => T): T {
  // Always the same two fields in the same order: one hidden class for every context object.
  return storage.run({ deadline, requestId: storage.getStore()?.requestId }, fn);
}

/** The ambient deadline, or undefined outside a context that has one. */
export function currentDeadline(): Deadline | undefined {
  return storage.getStore()?.deadline;
}

/** The ambient request id, or undefined outside a context that has one. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
