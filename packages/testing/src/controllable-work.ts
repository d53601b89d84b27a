/**
 * Work whose outcome the test decides: it records that it started (and with which context), and
 * its promise settles only when the test calls `resolve` or `reject`. With a TestClock this is how
 * tests hold a call in flight across timeouts, queues and probes.
 */
import type { ExecutionContext } from '@bulwark/core';

export interface ControllableWork<T> {
  /** Pass this to `policy.execute`. Each start replaces the promise `resolve`/`reject` settle. */
  readonly work: (context?: ExecutionContext) => Promise<T>;
  /** Settles the latest start with a value. */
  resolve(value: T): void;
  /** Settles the latest start with an error. */
  reject(error: unknown): void;
  /** Whether the work has started at least once. */
  readonly started: boolean;
  /** How many times the work has started. */
  readonly starts: number;
  /** The context of the latest start. */
  readonly context: ExecutionContext | undefined;
}

export function controllableWork<T = string>(): ControllableWork<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  let starts = 0;
  let context: ExecutionContext | undefined;
  return {
    work: ctx => {
      starts++;
      context = ctx;
      return new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
    },
    resolve: value => resolve(value),
    reject: error => reject(error),
    get started() {
      return starts > 0;
    },
    get starts() {
      return starts;
    },
    get context() {
      return context;
    },
  };
}
