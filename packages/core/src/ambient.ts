/**
 * The ambient deadline: the deadline of the request being served, found without passing it through
 * every function. A separate subpath (`@bulwark/core/ambient`) because it needs Node's
 * AsyncLocalStorage, and the rest of core stays runtime-neutral.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Deadline } from './deadline.js';

const storage = new AsyncLocalStorage<Deadline>();

/** Runs `fn` with `deadline` as the ambient deadline for everything it calls, sync or async. */
export function runWithDeadline<T>(deadline: Deadline, fn: () => T): T {
  return storage.run(deadline, fn);
}

/** The ambient deadline, or undefined outside `runWithDeadline`. */
export function currentDeadline(): Deadline | undefined {
  return storage.getStore();
}
