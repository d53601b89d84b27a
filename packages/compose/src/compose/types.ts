/**
 * The public types of the composition engine: what a part is, what it is given, and what a run
 * reports. The envelope (envelope.ts) and the HTTP mapping (../http/) are built from these.
 */
import type { Deadline, Policy, Scope } from '@bulwark/core';
import type { CachedValue, PartSource, Provenance } from '../provenance.js';

/**
 * How much the response needs a part.
 * - `critical`: the response fails (503/504) when it cannot be loaded by origin or fallback.
 * - `optional`: on failure the fallback chain runs; at its end the part is omitted.
 * - `sheddable`: like `optional`, and also omitted without being called when the run sheds load.
 */
export type Criticality = 'critical' | 'optional' | 'sheddable';

/**
 * A part's outcome as shown in `meta.parts.<name>.status`.
 * `ok`: from origin (or a fresh read-through cache); `stale`: a cached value in place of origin;
 * `fallback`: an alternate source or static default; `omitted`: no value (null in `data`);
 * `error`: a critical part that could not be loaded (the run failed).
 */
export type PartStatus = 'ok' | 'stale' | 'fallback' | 'omitted' | 'error';

/**
 * Why a part is not `ok`. The first eight are the envelope's decided reasons (DESIGN.md);
 * `dependency_failed` (a part it depends on has no value) and `cancelled` (the caller went away,
 * or the run was decided before the part finished) are the engine's own.
 */
export type PartReason =
  | 'timeout'
  | 'deadline_exceeded'
  | 'circuit_open'
  | 'upstream_error'
  | 'rate_limited'
  | 'load_shed'
  | 'budget_exhausted'
  | 'invalid_response'
  | 'dependency_failed'
  | 'cancelled';

/** What a part's `load` receives besides the run's input. */
export interface PartContext<Deps = Record<never, never>> {
  /**
   * Aborts when the part's deadline slice passes, when the caller's signal fires, and when the
   * run is decided without this part (a critical part failed). Pass it to your I/O.
   */
  readonly signal: AbortSignal;
  /**
   * The same cancellation as a core `Scope`: pass it as `signal` to Bulwark's http client,
   * caches and batch loaders. Reading `signal` makes an AbortController (and aborting it
   * dispatches an event), microseconds each on Node 20; `cancel` makes nothing.
   */
  readonly cancel: AbortSignal | Scope;
  /** The part's slice of the request deadline: send `deadline.remainingMs()` downstream. */
  readonly deadline: Deadline;
  /** 1 for the first attempt; a retry policy in `policies` counts up. */
  readonly attempt: number;
  /** The values of the parts named in `dependsOn`. A part runs only when all of them have one. */
  readonly deps: Readonly<Deps>;
  /** The run's request id, if the caller gave one. */
  readonly requestId: string | undefined;
  /**
   * Says where the value this load returns came from, when it is not the origin: for example a
   * read-through cache (`provenanceOf(cached)`). A stale cached value makes the part `stale`;
   * a fresh one keeps it `ok` with `source: cache:l1|l2`. The last call before `load` settles wins.
   */
  provenance(provenance: Provenance | CachedValue<unknown>): void;
}

/** What a fallback receives. */
export interface FallbackContext {
  /** Aborts when the request deadline (or the fallback's own `timeoutMs`) passes. */
  readonly signal: AbortSignal;
  /** The same cancellation as a core `Scope`, without an AbortController (see PartContext). */
  readonly cancel: Scope;
  readonly deadline: Deadline;
  /** Why the origin has no value. */
  readonly reason: PartReason;
  /** The origin's error (undefined when the origin was not called), for logging only. */
  readonly error: unknown;
  readonly requestId: string | undefined;
}

/** One step of a fallback chain; build them with `staleFrom`, `alternate`, `staticValue`, `omit`. */
export type Fallback<I, T> =
  StaleFallback<I, T> | AlternateFallback<I, T> | StaticFallback<I, T> | OmitFallback;

export interface StaleFallback<I, T> {
  readonly kind: 'stale';
  readonly read: (
    input: I,
    ctx: FallbackContext,
  ) => CachedValue<T> | undefined | PromiseLike<CachedValue<T> | undefined>;
}

export interface AlternateFallback<I, T> {
  readonly kind: 'alternate';
  /** Public name, shown as `source: alternate:<name>`. */
  readonly name: string;
  readonly load: (input: I, ctx: FallbackContext) => T | PromiseLike<T>;
  /** At most this many milliseconds (within the request deadline). Default: what is left of it. */
  readonly timeoutMs: number | undefined;
}

export interface StaticFallback<I, T> {
  readonly kind: 'static';
  readonly make: (input: I) => T;
}

export interface OmitFallback {
  readonly kind: 'omit';
}

/** A part: how to load it, how much the response needs it, and how it degrades. */
export interface PartSpec<I, T, C extends Criticality = Criticality, Deps = Record<never, never>> {
  readonly criticality: C;
  /** Loads the part's value; its return type is the part's type. */
  readonly load: (input: I, ctx: PartContext<Deps>) => T | PromiseLike<T>;
  /** Parts whose values this one needs (`ctx.deps`). It starts when they all have a value. */
  readonly dependsOn?: readonly (keyof Deps & string)[];
  /**
   * The part's deadline slice: at most this many milliseconds from when it starts, never more
   * than the request has left. Default: whatever the request has left.
   */
  readonly timeoutMs?: number;
  /**
   * Do not start the load (or an async fallback) with less than this many milliseconds left;
   * the part goes to its fallbacks with reason `deadline_exceeded`. Default: the composition's.
   */
  readonly minRemainingMs?: number;
  /** A core policy or pipeline (breaker, retry, bulkhead...) the load runs through. */
  readonly policies?: Policy<T>;
  /** Tried in order after the origin fails. Without `omit()` an optional part is omitted at the end. */
  readonly fallbacks?: readonly Fallback<I, T>[];
}

/** A part's outcome, in `result.parts.<name>`. `error` is kept for logs and never serialised. */
export interface PartOutcome<T = unknown> {
  readonly status: PartStatus;
  readonly criticality: Criticality;
  /** Absent when the part has no value. */
  readonly source?: PartSource;
  readonly ageMs?: number;
  readonly reason?: PartReason;
  /** From the failure (for example an open breaker), when it gave one. */
  readonly retryAfterMs?: number;
  /** From the part's start to its outcome; 0 for parts never started. */
  readonly latencyMs: number;
  readonly value?: T;
  /** The original failure (may hold internal hostnames: log it, never send it). */
  readonly error?: unknown;
}

/** Why a run failed. */
export type FailureKind =
  /** The request deadline (or a critical part's slice) ran out before a critical part resolved: 504. */
  | 'deadline'
  /** A critical part failed otherwise (breaker open, upstream error, shed): 503. */
  | 'unavailable'
  /** `strict` was asked and some part degraded: 503. */
  | 'degraded'
  /** The caller's signal fired. */
  | 'cancelled';

export interface RunFailure {
  readonly kind: FailureKind;
  /** Public names of the parts that caused the failure. */
  readonly parts: readonly string[];
  /** The largest hint among those parts' errors, if any. */
  readonly retryAfterMs: number | undefined;
  /** The first of those parts' original errors, for logging only. */
  readonly error: unknown;
}

interface ResultCommon<D> {
  readonly composition: string;
  readonly parts: { readonly [K in keyof D]: PartOutcome<Exclude<D[K], undefined>> };
  readonly requestId: string | undefined;
  /** True when the run was asked to fail on any degradation. */
  readonly strict: boolean;
  /** The request budget when the run started, in ms. */
  readonly budgetMs: number;
  /** From the run's start to its outcome, in ms. */
  readonly elapsedMs: number;
}

/** Every critical part has a value (and, in strict mode, no part degraded). */
export interface CompositionSuccess<D> extends ResultCommon<D> {
  readonly ok: true;
  readonly status: 'complete' | 'degraded';
  readonly data: D;
  readonly failure: undefined;
}

export interface CompositionFailure<D> extends ResultCommon<D> {
  readonly ok: false;
  readonly status: 'failed';
  /** Whatever had a value when the run was decided. */
  readonly data: Partial<D>;
  readonly failure: RunFailure;
}

export type CompositionResult<D = Record<string, unknown>> =
  CompositionSuccess<D> | CompositionFailure<D>;

export interface RunOptions {
  /** The request deadline (for example from the Fastify plugin). Default: the ambient deadline. */
  readonly deadline?: Deadline | undefined;
  /** Cancels the run: every running part's signal aborts and the run fails with `cancelled`. */
  readonly signal?: AbortSignal | undefined;
  /** Any degradation fails the run (`Prefer: handling=strict`); fallbacks are not tried. */
  readonly strict?: boolean | undefined;
  /** Omit sheddable parts without calling them. Default: the composition's `shed` option. */
  readonly shed?: boolean | undefined;
  /** Shown as `meta.requestId`. */
  readonly requestId?: string | undefined;
}

export interface PartEvent {
  readonly type: 'compose.part';
  readonly composition: string;
  readonly part: string;
  readonly criticality: Criticality;
  readonly status: PartStatus;
  readonly reason: PartReason | undefined;
  readonly source: PartSource | undefined;
  readonly latencyMs: number;
  /** The original failure, for logging. */
  readonly error: unknown;
}

export interface RunEvent {
  readonly type: 'compose.run';
  readonly composition: string;
  readonly status: 'complete' | 'degraded' | 'failed';
  readonly failure: FailureKind | undefined;
  readonly budgetMs: number;
  readonly elapsedMs: number;
}

export type CompositionEvent = PartEvent | RunEvent;
