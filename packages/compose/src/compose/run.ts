/**
 * One run of a composition. Parts start as soon as their dependencies have values, each under its
 * own child of the run deadline; the run is decided the moment a critical part fails (or, in
 * strict mode, any part degrades), and cancelling the run deadline then aborts every part still
 * running. No timers of its own: the deadlines' timers are the only ones.
 */
import {
  abortSourceOf,
  BulwarkError,
  CancelledError,
  Deadline,
  DeadlineExceededError,
  retryAfterMsOf,
  runStepInto,
  type ExecuteOptions,
  type ExecutionContext,
  type Scope,
  type Sink,
} from '@bulwark/core';
import { provenanceOf, type CachedValue, type PartSource, type Provenance } from '../provenance.js';
import { NO_POLICY, type PartDef, type Plan } from './plan.js';
import { reasonOf } from './reasons.js';
import type {
  CompositionResult,
  FailureKind,
  FallbackContext,
  PartContext,
  PartOutcome,
  PartReason,
  PartStatus,
  RunFailure,
} from './types.js';

/**
 * The reason parts still running are aborted with once the run is decided without them. One
 * shared instance: building an Error (its stack) per run would cost more than the rest of a run.
 */
const RUN_DECIDED = new BulwarkError(
  'CANCELLED',
  'the composition was decided before this part finished',
  { retryable: false },
);

/**
 * Per-run state of one part; it is also the `ctx` its load receives and the sink its policy
 * settles (one object, not three).
 */
class PartRun implements PartContext<Record<string, unknown>>, Sink<unknown> {
  started = false;
  done = false;
  pendingDeps: number;
  depFailed = false;
  startedAt = 0;
  latencyMs = 0;
  status: PartStatus = 'omitted';
  value: unknown = undefined;
  source: PartSource | undefined = undefined;
  ageMs: number | undefined = undefined;
  reason: PartReason | undefined = undefined;
  error: unknown = undefined;
  retryAfterMs: number | undefined = undefined;
  deps: Record<string, unknown> = EMPTY;
  private exec: ExecutionContext | undefined = undefined;
  private reported: Provenance | undefined = undefined;

  constructor(
    readonly run: Run,
    readonly def: PartDef,
  ) {
    this.pendingDeps = def.deps.length;
  }

  /** @internal The part's policy settled with a value. */
  ok(value: unknown): void {
    this.run.loaded(this, value);
  }

  /** @internal The part's policy settled with an error. */
  fail(error: unknown): void {
    this.run.failed(this, error);
  }

  /** The work handed to the part's policy; a retry calls it once per attempt. */
  readonly work = (exec: ExecutionContext): unknown => {
    this.exec = exec;
    this.reported = undefined;
    return this.def.load(this.run.input, this);
  };

  get signal(): AbortSignal {
    return (this.exec ?? this.run.deadline).signal;
  }
  get cancel(): AbortSignal | Scope {
    // abortSourceOf answers with the execution's Scope (the policies of compose are core's);
    // only a foreign ExecutionContext would give its AbortSignal.
    const exec = this.exec;
    return exec === undefined
      ? this.run.deadline.cancellation
      : (abortSourceOf(exec) as AbortSignal | Scope);
  }
  get deadline(): Deadline {
    return this.exec?.deadline ?? this.run.deadline;
  }
  get attempt(): number {
    return this.exec?.attempt ?? 1;
  }
  get requestId(): string | undefined {
    return this.run.requestId;
  }
  provenance(provenance: Provenance | CachedValue<unknown>): void {
    this.reported = 'tier' in provenance ? provenanceOf(provenance) : provenance;
  }
  /** @internal What the last attempt reported. */
  get reportedProvenance(): Provenance | undefined {
    return this.reported;
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({});

/** The context a fallback receives. */
class FallbackRun implements FallbackContext {
  constructor(
    readonly deadline: Deadline,
    readonly reason: PartReason,
    readonly error: unknown,
    readonly requestId: string | undefined,
  ) {}
  get signal(): AbortSignal {
    return this.deadline.signal;
  }
  get cancel(): Scope {
    return this.deadline.cancellation;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

const ignore = (): void => {};

export interface RunSettings {
  readonly input: unknown;
  readonly parent: Deadline | undefined;
  readonly signal: AbortSignal | undefined;
  readonly strict: boolean;
  readonly shed: boolean;
  readonly requestId: string | undefined;
}

/** @internal */
export class Run {
  readonly input: unknown;
  readonly deadline: Deadline;
  readonly requestId: string | undefined;
  private readonly strict: boolean;
  private readonly shed: boolean;
  private readonly states: PartRun[];
  private readonly startedAt: number;
  private readonly budgetMs: number;
  private remaining: number;
  private settled = false;
  private resolve: (result: CompositionResult) => void = ignore;
  private readonly signal: AbortSignal | undefined;
  private readonly onCallerAbort: (() => void) | undefined;
  /** What every part runs under: one object per run. */
  private readonly partOptions: ExecuteOptions;

  constructor(
    private readonly plan: Plan,
    settings: RunSettings,
  ) {
    const clock = plan.clock;
    this.input = settings.input;
    this.requestId = settings.requestId;
    this.strict = settings.strict;
    this.shed = settings.shed;
    this.startedAt = clock.now();
    // A child of the caller's deadline, so deciding the run cancels our parts, not the caller.
    this.deadline =
      settings.parent === undefined
        ? Deadline.after(plan.timeoutMs, { clock })
        : settings.parent.child({ timeoutMs: plan.timeoutMs });
    this.budgetMs = Math.max(0, this.deadline.expiresAt - this.startedAt);
    this.partOptions = { deadline: this.deadline };
    this.states = plan.parts.map(def => new PartRun(this, def));
    this.remaining = this.states.length;
    const signal = settings.signal;
    this.signal = signal;
    if (signal !== undefined) {
      this.onCallerAbort = () => this.callerAborted(signal.reason);
      signal.addEventListener('abort', this.onCallerAbort, { once: true });
    }
  }

  execute(): Promise<CompositionResult> {
    const promise = new Promise<CompositionResult>(resolve => {
      this.resolve = resolve;
    });
    if (this.signal?.aborted === true) {
      this.callerAborted(this.signal.reason);
      return promise;
    }
    if (this.remaining === 0) {
      this.complete();
      return promise;
    }
    for (const state of this.states) {
      if (this.settled) break;
      if (!state.started && state.pendingDeps === 0) this.start(state);
    }
    return promise;
  }

  private start(state: PartRun): void {
    state.started = true;
    const def = state.def;
    state.startedAt = this.plan.clock.now();
    if (def.criticality === 'sheddable' && this.shed) {
      state.reason = 'load_shed';
      this.finish(state, 'omitted');
      return;
    }
    if (state.depFailed) {
      this.degrade(state, 'dependency_failed', undefined);
      return;
    }
    if (def.deps.length > 0) {
      const deps: Record<string, unknown> = {};
      for (const index of def.deps) {
        const dep = this.states[index] as PartRun;
        deps[dep.def.name] = dep.value;
      }
      state.deps = deps;
    }
    const runDeadline = this.deadline;
    const left = runDeadline.remainingMs();
    const budget = def.timeoutMs === undefined || def.timeoutMs > left ? left : def.timeoutMs;
    if (budget < def.minRemainingMs) {
      this.degrade(
        state,
        'deadline_exceeded',
        new DeadlineExceededError('too little time left to start'),
      );
      return;
    }
    // The part's slice (a timeout policy in def.policy) runs inside the run deadline, so a slice
    // never outlives the request: whichever ends first aborts the load. The outcome comes to
    // the part itself (its `ok` and `fail`), now if the load answers synchronously.
    runStepInto(def.step, state.work, this.partOptions, state);
  }

  /** @internal */
  loaded(state: PartRun, value: unknown): void {
    if (state.done || this.settled) return;
    state.value = value;
    const reported = state.reportedProvenance;
    if (reported === undefined || reported.source === 'origin') {
      state.source = 'origin';
      this.finish(state, 'ok');
      return;
    }
    state.source = reported.source;
    state.ageMs = reported.ageMs;
    this.finish(state, reported.stale === true ? 'stale' : 'ok');
  }

  /** @internal */
  failed(state: PartRun, error: unknown): void {
    if (state.done || this.settled) return;
    // A slice's TimeoutError is `timeout`; the request deadline's DeadlineExceededError is
    // `deadline_exceeded`: the first means this part is slow, the second the request is out of time.
    const reason = reasonOf(error);
    this.degrade(state, reason, error);
  }

  private degrade(state: PartRun, reason: PartReason, error: unknown): void {
    state.reason = reason;
    state.error = error;
    state.retryAfterMs = retryAfterMsOf(error);
    if (this.strict || state.def.fallbacks.length === 0) {
      this.exhausted(state);
    } else {
      void this.fallBack(state, reason, error);
    }
  }

  private exhausted(state: PartRun): void {
    state.value = undefined;
    this.finish(state, state.def.criticality === 'critical' ? 'error' : 'omitted');
  }

  /** Tries the part's fallbacks in order; the first that gives a value wins. */
  private async fallBack(state: PartRun, reason: PartReason, error: unknown): Promise<void> {
    const def = state.def;
    for (const fallback of def.fallbacks) {
      if (this.settled || state.done) return;
      if (fallback.kind === 'omit') break;
      if (fallback.kind === 'static') {
        try {
          state.value = fallback.make(this.input);
        } catch {
          continue;
        }
        state.source = 'static';
        this.finish(state, 'fallback');
        return;
      }
      const deadline =
        fallback.kind === 'alternate' && fallback.timeoutMs !== undefined
          ? this.deadline.child({ timeoutMs: fallback.timeoutMs })
          : this.deadline;
      // An alternate source is a call: not started without the time to finish it. A stale read
      // is tried regardless, because an in-process cache answers synchronously, at no cost.
      const enoughTime = !deadline.expired && deadline.remainingMs() >= def.minRemainingMs;
      if (fallback.kind === 'alternate' && !enoughTime) continue;
      const ctx = new FallbackRun(deadline, reason, error, this.requestId);
      let result: unknown;
      try {
        result =
          fallback.kind === 'stale'
            ? fallback.read(this.input, ctx)
            : fallback.load(this.input, ctx);
        if (isThenable(result)) {
          if (!enoughTime) {
            result.then(undefined, ignore);
            continue;
          }
          const pending = result;
          result = await NO_POLICY.execute(() => pending, { deadline });
          if (this.settled || state.done) return;
        }
      } catch {
        continue;
      }
      if (fallback.kind === 'stale') {
        if (result === undefined) continue;
        const cached = result as CachedValue<unknown>;
        state.value = cached.value;
        state.source = `cache:${cached.tier}`;
        state.ageMs = cached.ageMs;
        this.finish(state, 'stale');
      } else {
        state.value = result;
        state.source = `alternate:${fallback.name}`;
        this.finish(state, 'fallback');
      }
      return;
    }
    if (!this.settled && !state.done) this.exhausted(state);
  }

  private finish(state: PartRun, status: PartStatus): void {
    state.done = true;
    state.status = status;
    state.latencyMs = this.plan.clock.now() - state.startedAt;
    if (status === 'omitted' || status === 'error') state.source = undefined;
    const emitter = this.plan.emitter;
    if (emitter.size > 0) {
      emitter.emit({
        type: 'compose.part',
        composition: this.plan.name,
        part: state.def.name,
        criticality: state.def.criticality,
        status,
        reason: state.reason,
        source: state.source,
        latencyMs: state.latencyMs,
        error: state.error,
      });
    }
    if (this.settled) return;
    if (status === 'error') {
      this.fail(failureKindOf(state.reason), [state]);
      return;
    }
    if (this.strict && status !== 'ok') {
      this.fail('degraded', [state]);
      return;
    }
    const hasValue = status !== 'omitted';
    for (const index of state.def.dependents) {
      const dependent = this.states[index] as PartRun;
      if (!hasValue) dependent.depFailed = true;
      if (--dependent.pendingDeps === 0 && !dependent.started && !this.settled) {
        this.start(dependent);
      }
    }
    if (--this.remaining === 0 && !this.settled) this.complete();
  }

  private callerAborted(reason: unknown): void {
    if (this.settled) return;
    this.fail('cancelled', [], new CancelledError({ cause: reason }));
  }

  private fail(kind: FailureKind, culprits: PartRun[], error?: unknown): void {
    this.settled = true;
    const now = this.plan.clock.now();
    for (const state of this.states) {
      if (state.done) continue;
      // Parts still running (or never started) are given up: no value, reason `cancelled`.
      state.done = true;
      state.status = state.def.criticality === 'critical' ? 'error' : 'omitted';
      state.reason = 'cancelled';
      state.value = undefined;
      state.source = undefined;
      state.latencyMs = state.started ? now - state.startedAt : 0;
    }
    let retryAfterMs: number | undefined;
    for (const culprit of culprits) {
      const hint = culprit.retryAfterMs;
      if (hint !== undefined && (retryAfterMs === undefined || hint > retryAfterMs)) {
        retryAfterMs = hint;
      }
    }
    const failure: RunFailure = {
      kind,
      parts: culprits.map(state => state.def.name),
      retryAfterMs,
      error: error ?? culprits[0]?.error,
    };
    this.end('failed', failure);
  }

  private complete(): void {
    this.settled = true;
    let degraded = false;
    for (const state of this.states) if (state.status !== 'ok') degraded = true;
    this.end(degraded ? 'degraded' : 'complete', undefined);
  }

  private end(status: 'complete' | 'degraded' | 'failed', failure: RunFailure | undefined): void {
    if (this.onCallerAbort !== undefined) {
      this.signal?.removeEventListener('abort', this.onCallerAbort);
    }
    // Aborts parts (and fallbacks) still running and releases the deadline's timer.
    this.deadline.cancel(RUN_DECIDED);
    const elapsedMs = this.plan.clock.now() - this.startedAt;
    const data: Record<string, unknown> = {};
    const parts: Record<string, PartOutcome> = {};
    for (const state of this.states) {
      const name = state.def.name;
      data[name] = state.value;
      parts[name] = outcomeOf(state);
    }
    const emitter = this.plan.emitter;
    if (emitter.size > 0) {
      emitter.emit({
        type: 'compose.run',
        composition: this.plan.name,
        status,
        failure: failure?.kind,
        budgetMs: this.budgetMs,
        elapsedMs,
      });
    }
    // Two literals of one shape rather than `{ ...common, ok }`: V8 builds spread objects with
    // undefined members on a slow path that cost ~20 µs per run on Node 20 (measured).
    const result: CompositionResult =
      failure === undefined
        ? {
            composition: this.plan.name,
            ok: true,
            status: status as 'complete' | 'degraded',
            data,
            parts,
            failure: undefined,
            requestId: this.requestId,
            strict: this.strict,
            budgetMs: this.budgetMs,
            elapsedMs,
          }
        : {
            composition: this.plan.name,
            ok: false,
            status: 'failed',
            data,
            parts,
            failure,
            requestId: this.requestId,
            strict: this.strict,
            budgetMs: this.budgetMs,
            elapsedMs,
          };
    this.resolve(result);
  }
}

function failureKindOf(reason: PartReason | undefined): FailureKind {
  switch (reason) {
    case 'timeout':
    case 'deadline_exceeded':
      return 'deadline';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'unavailable';
  }
}

function outcomeOf(state: PartRun): PartOutcome {
  // Built member by member: with exactOptionalPropertyTypes, absent means absent, not undefined.
  const outcome: {
    -readonly [K in keyof PartOutcome]: PartOutcome[K];
  } = {
    status: state.status,
    criticality: state.def.criticality,
    latencyMs: state.latencyMs,
  };
  if (state.source !== undefined) outcome.source = state.source;
  if (state.ageMs !== undefined) outcome.ageMs = state.ageMs;
  if (state.reason !== undefined) outcome.reason = state.reason;
  if (state.retryAfterMs !== undefined) outcome.retryAfterMs = state.retryAfterMs;
  if (state.status !== 'omitted' && state.status !== 'error') outcome.value = state.value;
  if (state.error !== undefined) outcome.error = state.error;
  return outcome;
}
