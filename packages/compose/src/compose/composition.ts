/**
 * `composition()` and `part()`: a declarative set of named parts, checked once, run many times.
 *
 * Two ways to declare parts, both checked when the composition is made:
 * - the builder, `composition<Input>({ name }).part('user', {...}).part('orders', {...})`, which
 *   infers every part's type and types `ctx.deps` from the parts already declared;
 * - a `parts` object of `part({...})` specs, where a part that depends on others annotates its
 *   `ctx` (`ctx: PartContext<{ user: User }>`), because TypeScript cannot infer one property of an
 *   object literal from its siblings.
 */
import {
  Emitter,
  InvalidOptionsError,
  systemClock,
  type Clock,
  type Subscribe,
} from '@bulwark/core';
import { currentDeadline } from '@bulwark/core/ambient';
import { checkPart, copyParts, orderParts, type PartDef, type Plan } from './plan.js';
import { Run } from './run.js';
import type {
  CompositionEvent,
  CompositionResult,
  Criticality,
  PartContext,
  PartSpec,
  RunOptions,
} from './types.js';
import {
  checkPublicName,
  describeValue,
  rejectUnknownKeys,
  requireFunction,
  requireMs,
  requireObject,
} from './validate.js';

/** Flattens an intersection for readable hover types. */
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** What `data.<name>` holds after a successful run: critical parts always have a value. */
type DataOf<T, C extends Criticality> = C extends 'critical' ? T : T | undefined;

/** A part built with {@link part}; `I` input, `T` value, `C` criticality, `Deps` dependencies. */
export type PartDefinition<
  I = never,
  T = unknown,
  C extends Criticality = Criticality,
  Deps = Record<never, never>,
> = PartSpec<I, T, C, Deps>;

export interface CompositionOptions<I = unknown> {
  /** Public name, used in events and problem documents. Required. */
  name: string;
  /** Default: the system clock. Tests pass a TestClock. */
  clock?: Clock;
  /**
   * The longest a run may take, in ms: the budget when the run has no deadline, and a cap on the
   * caller's deadline otherwise (a route maximum). Default 10 000.
   */
  timeoutMs?: number;
  /**
   * A part (or async fallback) is not started with less than this many milliseconds left; its
   * reason is then `deadline_exceeded`. Parts may override it. Default 5.
   */
  minRemainingMs?: number;
  /**
   * Called once per run (unless the run says `shed` itself): true omits every sheddable part
   * without calling it (reason `load_shed`). Default: never shed.
   */
  shed?: (input: I) => boolean;
}

type AnyPart = PartSpec<never, unknown, Criticality, never>;
type PartsRecord = Record<string, AnyPart>;

type InputOfParts<P> = (
  P[keyof P] extends infer X
    ? X extends PartSpec<infer I, unknown, Criticality, never>
      ? (input: I) => void
      : never
    : never
) extends (input: infer R) => void
  ? R
  : never;
type ValueOfPart<X> = X extends PartSpec<never, infer T, Criticality, never> ? Awaited<T> : never;
type ValuesOfParts<P> = { [K in keyof P]: ValueOfPart<P[K]> };
type DataOfParts<P> = {
  [K in keyof P]: P[K] extends PartSpec<never, infer T, infer C, never>
    ? DataOf<Awaited<T>, C>
    : never;
};

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MIN_REMAINING_MS = 5;
const OPTION_KEYS = ['name', 'clock', 'timeoutMs', 'minRemainingMs', 'shed', 'parts'];

/**
 * A checked set of parts. Immutable: `part()` returns a new composition with one more part.
 * `I` is the run's input, `V` each part's value, `D` the shape of `data` after a successful run.
 */
export class Composition<I, V, D> {
  readonly name: string;
  /** Part outcomes and run outcomes; costs nothing while nobody listens. */
  readonly onEvent: Subscribe<CompositionEvent>;
  /** @internal */
  readonly plan: Plan;

  /** @internal Use {@link composition}. */
  constructor(plan: Plan) {
    this.plan = plan;
    this.name = plan.name;
    this.onEvent = plan.emitter.subscribe;
  }

  /** The part names, dependencies first. */
  get partNames(): readonly string[] {
    return this.plan.parts.map(part => part.name);
  }

  /**
   * Adds a part. `dependsOn` may name only parts already added (so no cycle can form), and
   * `ctx.deps` is typed from them. Throws `InvalidOptionsError` for a bad spec or a taken name.
   */
  part<const N extends string, T, C extends Criticality, K extends keyof V & string = never>(
    name: N extends keyof V ? never : N,
    spec: PartSpec<I, T, C, Pick<V, K>> & { readonly dependsOn?: readonly K[] },
  ): Composition<
    I,
    Simplify<V & Record<N, Awaited<T>>>,
    Simplify<D & Record<N, DataOf<Awaited<T>, C>>>
  > {
    const where = `composition "${this.name}": part "${String(name)}"`;
    checkPublicName(`composition "${this.name}"`, 'a part name', name);
    const plan = this.plan;
    if (plan.parts.some(existing => existing.name === name)) {
      throw new InvalidOptionsError(
        `${where}: a part with this name already exists; pick another name`,
      );
    }
    const def = checkPart(where, name, spec, {
      minRemainingMs: plan.minRemainingMs,
      clock: plan.clock,
      composition: plan.name,
    });
    for (const dep of def.dependsOn) {
      if (!plan.parts.some(existing => existing.name === dep)) {
        throw new InvalidOptionsError(
          `${where}: depends on "${dep}", which is not a part yet; add "${dep}" before the parts that depend on it (known: ${this.partNames.join(', ') || 'none'})`,
        );
      }
    }
    const parts = orderParts(`composition "${this.name}"`, [...copyParts(plan.parts), def]);
    return new Composition({ ...plan, parts });
  }

  /**
   * Runs every part for `input` and resolves with the outcome; it never rejects for a part's
   * failure (a failed run is `{ ok: false, failure }`). See {@link RunOptions}.
   */
  run(input: I, options: RunOptions = {}): Promise<CompositionResult<D>> {
    const plan = this.plan;
    const strict = options.strict === true;
    const shed = options.shed ?? (plan.shed === undefined ? false : plan.shed(input) === true);
    const run = new Run(plan, {
      input,
      parent: options.deadline ?? currentDeadline(),
      signal: options.signal,
      strict,
      shed,
      requestId: options.requestId,
    });
    return run.execute() as Promise<CompositionResult<D>>;
  }
}

/**
 * Makes a composition. Give the input type and add parts with `.part(name, spec)` for full type
 * inference, or pass a `parts` object of {@link part} specs. Every option, part and dependency is
 * checked here: unknown dependency names and cycles throw `InvalidOptionsError` naming the fix.
 */
export function composition<I = unknown>(
  options: CompositionOptions<I>,
): Composition<I, Record<never, never>, Record<never, never>>;
export function composition<const P extends PartsRecord>(
  options: CompositionOptions<InputOfParts<P>> & { parts: P },
): Composition<InputOfParts<P>, ValuesOfParts<P>, DataOfParts<P>>;
export function composition(
  options: CompositionOptions & { parts?: Record<string, unknown> },
): Composition<unknown, unknown, unknown> {
  requireObject('composition', options);
  rejectUnknownKeys('composition', options, OPTION_KEYS);
  const name = checkPublicName('composition', 'name', options.name);
  const where = `composition "${name}"`;
  const clock = options.clock ?? systemClock;
  if (
    typeof (clock as Partial<Clock>).now !== 'function' ||
    typeof (clock as Partial<Clock>).setTimer !== 'function'
  ) {
    throw new InvalidOptionsError(
      `${where}: clock must implement Clock (now(), wallNow(), setTimer()), got ${describeValue(clock)}; omit it to use the system clock`,
    );
  }
  const timeoutMs =
    options.timeoutMs === undefined
      ? DEFAULT_TIMEOUT_MS
      : requireMs(where, 'timeoutMs', options.timeoutMs);
  const minRemainingMs =
    options.minRemainingMs === undefined
      ? DEFAULT_MIN_REMAINING_MS
      : requireMs(where, 'minRemainingMs', options.minRemainingMs, true);
  if (options.shed !== undefined) requireFunction(where, 'shed', options.shed);
  const defs: PartDef[] = [];
  if (options.parts !== undefined) {
    requireObject(`${where}: parts`, options.parts);
    for (const [partName, spec] of Object.entries(options.parts)) {
      checkPublicName(where, 'a part name', partName);
      defs.push(
        checkPart(`${where}: part "${partName}"`, partName, spec, {
          minRemainingMs,
          clock,
          composition: name,
        }),
      );
    }
  }
  return new Composition({
    name,
    clock,
    timeoutMs,
    minRemainingMs,
    shed: options.shed,
    parts: orderParts(where, defs),
    emitter: new Emitter<CompositionEvent>(),
  });
}

/**
 * Declares a part for a `parts` object; its value type is inferred from `load`. A part with
 * `dependsOn` types its dependencies through its `ctx` annotation:
 * `load: (input: In, ctx: PartContext<{ user: User }>) => ...`.
 */
export function part<I, T, C extends Criticality, Deps = Record<never, never>>(
  spec: PartSpec<I, T, C, Deps>,
): PartDefinition<I, T, C, Deps> {
  // Checked (with its name) when the composition is made; here only the shape, for an early stack.
  requireObject('part', spec);
  return spec;
}

export type { PartContext };
