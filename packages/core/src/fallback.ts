/**
 * fallback: when the work fails, answer with a default value or the result of a function instead.
 *
 * The policy's type parameter `R` is the fallback's value type, so
 * `pipeline(fallback({ value: [] as Item[] }), retry(...)).execute(fn)` is `Promise<T | Item[]>`.
 *
 * - `when` chooses which errors are replaced (default: every error). Helpers: {@link whenCode},
 *   {@link whenInstanceOf}.
 * - No fallback is produced once the call's scope has aborted (the caller cancelled, the deadline
 *   or an outer timeout passed): whoever aborted it has already settled the call with its reason.
 * - A fallback `fn` that throws or rejects makes the call reject with THAT error, unchanged (the
 *   policy does not wrap or mutate errors it does not own). To keep the original failure, throw
 *   `new Error('...', { cause: error })` from `fn`.
 */
import type { BulwarkErrorCode } from './errors.js';
import { hasCode, InvalidOptionsError } from './errors.js';
import { Emitter, type Subscribe } from './events.js';
import { PolicyBase, type Context, type ExecutionContext, type Sink, type Step } from './policy.js';
import { checkName, rejectUnknownKeys, requireFunction, requireObject } from './validate.js';

interface FallbackCommon {
  /** Which errors to replace. Default: every error. See `whenCode` and `whenInstanceOf`. */
  when?: (error: unknown) => boolean;
  /** Name used in events. Default `"fallback"`. */
  name?: string;
}

/** Answer failures with a fixed value (shared by every call: do not mutate it). */
export interface FallbackValueOptions<R> extends FallbackCommon {
  value: R;
}

/** Answer failures with the result of `fn(error, context)`; it may be async. */
export interface FallbackFnOptions<R> extends FallbackCommon {
  fn: (error: unknown, context: ExecutionContext) => R | PromiseLike<R>;
}

export type FallbackOptions<R> = FallbackValueOptions<R> | FallbackFnOptions<R>;

export interface FallbackEvent {
  type: 'fallback.used';
  policy: string;
  /** The error that was replaced. */
  error: unknown;
}

const always = (): boolean => true;

export class FallbackPolicy<R> extends PolicyBase<R> {
  readonly name: string;
  private readonly fn:
    ((error: unknown, context: ExecutionContext) => R | PromiseLike<R>) | undefined;
  private readonly value: R | undefined;
  private readonly when: (error: unknown) => boolean;
  private readonly emitter = new Emitter<FallbackEvent>();
  readonly onEvent: Subscribe<FallbackEvent> = this.emitter.subscribe;

  constructor(options: FallbackOptions<R>) {
    super();
    const where = 'fallback';
    requireObject(where, options);
    rejectUnknownKeys(where, options, ['value', 'fn', 'when', 'name']);
    const hasValue = 'value' in options;
    const hasFn = 'fn' in options;
    if (hasValue === hasFn) {
      throw new InvalidOptionsError(
        `${where}: give exactly one of value or fn, got ${hasValue ? 'both' : 'neither'}; e.g. fallback({ value: [] }) or fallback({ fn: error => ... })`,
      );
    }
    if (hasFn) {
      requireFunction(where, 'fn', options.fn);
      this.fn = options.fn;
      this.value = undefined;
    } else {
      this.fn = undefined;
      this.value = options.value;
    }
    if (options.when !== undefined) requireFunction(where, 'when', options.when);
    checkName(where, options.name);
    this.when = options.when ?? always;
    this.name = options.name ?? 'fallback';
  }

  compose(next: Step): Step {
    return (work, context, sink) => {
      next(work, context, new FallbackSink(this, context, sink as Sink<unknown>));
    };
  }

  /** @internal Settles `sink` with the fallback for `error`, or passes `error` on. */
  recover(error: unknown, context: Context, sink: Sink<unknown>): void {
    if (context.scope.aborted) {
      sink.fail(error);
      return;
    }
    let handled: boolean;
    try {
      handled = this.when(error);
    } catch (thrown) {
      // A throwing predicate is a bug in the caller's code: surface it instead of guessing.
      sink.fail(thrown);
      return;
    }
    if (!handled) {
      sink.fail(error);
      return;
    }
    if (this.emitter.size > 0)
      this.emitter.emit({ type: 'fallback.used', policy: this.name, error });
    const fn = this.fn;
    if (fn === undefined) {
      sink.ok(this.value);
      return;
    }
    let result;
    try {
      result = fn(error, context);
    } catch (thrown) {
      sink.fail(thrown);
      return;
    }
    if (
      result !== null &&
      (typeof result === 'object' || typeof result === 'function') &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(
        value => sink.ok(value),
        (thrown: unknown) => sink.fail(thrown),
      );
    } else {
      sink.ok(result);
    }
  }
}

class FallbackSink implements Sink<unknown> {
  constructor(
    private readonly policy: FallbackPolicy<unknown>,
    private readonly context: Context,
    private readonly sink: Sink<unknown>,
  ) {}
  ok(value: unknown): void {
    this.sink.ok(value);
  }
  fail(error: unknown): void {
    this.policy.recover(error, this.context, this.sink);
  }
}

/**
 * Replaces failures with a value or a function's result. The returned policy's type parameter is
 * the fallback value's type, so pipelines that contain it resolve to `T | R`.
 */
export function fallback<R>(options: FallbackOptions<R>): FallbackPolicy<R> {
  return new FallbackPolicy<R>(options);
}

/** A `when` predicate: true for Bulwark errors with one of these codes (e.g. `'CIRCUIT_OPEN'`). */
export function whenCode(...codes: BulwarkErrorCode[]): (error: unknown) => boolean {
  if (codes.length === 0) {
    throw new InvalidOptionsError(
      `whenCode: give at least one error code, e.g. whenCode('CIRCUIT_OPEN')`,
    );
  }
  return error => codes.some(code => hasCode(error, code));
}

/** A `when` predicate: true for errors that are instances of one of these classes. */
export function whenInstanceOf(
  ...classes: (abstract new (...args: never[]) => unknown)[]
): (error: unknown) => boolean {
  if (classes.length === 0) {
    throw new InvalidOptionsError(
      `whenInstanceOf: give at least one error class, e.g. whenInstanceOf(TypeError)`,
    );
  }
  return error => classes.some(type => error instanceof type);
}
