/**
 * The checked, ordered form of a composition's parts, built once when the composition is made so
 * a run only walks arrays. Every option problem is reported here, not at run time.
 */
import {
  InvalidOptionsError,
  invoke,
  pipeline,
  timeout,
  type Clock,
  type Emitter,
  type Policy,
  type Step,
} from '@bulwark/core';
import { checkFallback } from './fallbacks.js';
import type { CompositionEvent, Criticality, Fallback, PartContext } from './types.js';
import {
  describeValue,
  rejectUnknownKeys,
  requireFunction,
  requireMs,
  requireObject,
} from './validate.js';

/** @internal One part, checked. */
export interface PartDef {
  readonly name: string;
  readonly criticality: Criticality;
  readonly load: (input: unknown, ctx: PartContext<Record<string, unknown>>) => unknown;
  readonly dependsOn: readonly string[];
  readonly timeoutMs: number | undefined;
  readonly minRemainingMs: number;
  /** The part's own policies, inside a `timeout` for its slice when it has `timeoutMs`. */
  readonly policy: Policy<unknown>;
  /** `policy` composed once, run per part with `runStepInto` (no promise per run). */
  readonly step: Step;
  readonly fallbacks: readonly Fallback<unknown, unknown>[];
  /** Set by {@link orderParts}: indices into the plan's `parts`. */
  deps: number[];
  dependents: number[];
}

/** @internal Everything a run needs, shared by every run of one composition. */
export interface Plan {
  readonly name: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly minRemainingMs: number;
  readonly shed: ((input: unknown) => boolean) | undefined;
  /** In an order where every part comes after the parts it depends on. */
  readonly parts: readonly PartDef[];
  readonly emitter: Emitter<CompositionEvent>;
}

/** The policy of a part without `policies`: an empty pipeline still gives deadline and abort. */
export const NO_POLICY: Policy<unknown> = pipeline();

const PART_KEYS = [
  'criticality',
  'load',
  'dependsOn',
  'timeoutMs',
  'minRemainingMs',
  'policies',
  'fallbacks',
];
const CRITICALITIES: readonly string[] = ['critical', 'optional', 'sheddable'];

/** @internal What a part inherits from its composition. */
export interface PartDefaults {
  readonly minRemainingMs: number;
  readonly clock: Clock;
  readonly composition: string;
}

/** @internal Checks one part's spec. */
export function checkPart(
  where: string,
  name: string,
  spec: unknown,
  defaults: PartDefaults,
): PartDef {
  requireObject(where, spec);
  const s = spec as Record<string, unknown>;
  rejectUnknownKeys(where, s, PART_KEYS);
  if (typeof s.criticality !== 'string' || !CRITICALITIES.includes(s.criticality)) {
    throw new InvalidOptionsError(
      `${where}: criticality must be "critical", "optional" or "sheddable", got ${describeValue(s.criticality)}; say how much the response needs this part`,
    );
  }
  const criticality = s.criticality as Criticality;
  requireFunction(where, 'load', s.load);
  const dependsOn: string[] = [];
  if (s.dependsOn !== undefined) {
    if (!Array.isArray(s.dependsOn)) {
      throw new InvalidOptionsError(
        `${where}: dependsOn must be an array of part names, got ${describeValue(s.dependsOn)}`,
      );
    }
    for (const dep of s.dependsOn as unknown[]) {
      if (typeof dep !== 'string') {
        throw new InvalidOptionsError(
          `${where}: dependsOn must hold part names, got ${describeValue(dep)}`,
        );
      }
      if (dep === name) {
        throw new InvalidOptionsError(
          `${where}: a part cannot depend on itself; remove "${dep}" from dependsOn`,
        );
      }
      if (dependsOn.includes(dep)) {
        throw new InvalidOptionsError(`${where}: dependsOn names "${dep}" twice; list it once`);
      }
      dependsOn.push(dep);
    }
  }
  const timeoutMs =
    s.timeoutMs === undefined ? undefined : requireMs(where, 'timeoutMs', s.timeoutMs);
  const min =
    s.minRemainingMs === undefined
      ? defaults.minRemainingMs
      : requireMs(where, 'minRemainingMs', s.minRemainingMs, true);
  let policy = NO_POLICY;
  if (s.policies !== undefined) {
    const p: unknown = s.policies;
    if (
      typeof p !== 'object' ||
      p === null ||
      !('execute' in p) ||
      typeof p.execute !== 'function'
    ) {
      throw new InvalidOptionsError(
        `${where}: policies must be a core policy or pipeline (for example pipeline(retry(...), circuitBreaker(...))), got ${describeValue(s.policies)}`,
      );
    }
    policy = p as Policy<unknown>;
  }
  if (timeoutMs !== undefined) {
    // The slice is core's timeout policy, outermost so it covers retries: its timer queue is
    // shared by every run of this part, so a slice costs no timer of its own per run.
    const slice = timeout({
      timeoutMs,
      resolutionMs: 0,
      clock: defaults.clock,
      name: `${defaults.composition}.${name}`,
    });
    policy = policy === NO_POLICY ? slice : pipeline(slice, policy);
  }
  const fallbacks: Fallback<unknown, unknown>[] = [];
  if (s.fallbacks !== undefined) {
    if (!Array.isArray(s.fallbacks)) {
      throw new InvalidOptionsError(
        `${where}: fallbacks must be an array (for example [staleFrom(read), staticValue([])]), got ${describeValue(s.fallbacks)}`,
      );
    }
    (s.fallbacks as unknown[]).forEach((fallback, index) => {
      checkFallback(where, fallback, index);
      const kind = (fallback as Fallback<unknown, unknown>).kind;
      if (kind === 'omit' && criticality === 'critical') {
        throw new InvalidOptionsError(
          `${where}: a critical part cannot be omitted; remove omit() from its fallbacks or make it optional`,
        );
      }
      if (kind === 'omit' && index !== (s.fallbacks as unknown[]).length - 1) {
        throw new InvalidOptionsError(
          `${where}: omit() ends the chain, so it must be the last fallback (fallbacks[${index}])`,
        );
      }
      fallbacks.push(fallback as Fallback<unknown, unknown>);
    });
  }
  return {
    name,
    criticality,
    load: s.load as PartDef['load'],
    dependsOn,
    timeoutMs,
    minRemainingMs: min,
    policy,
    step: policy.compose(invoke),
    fallbacks,
    deps: [],
    dependents: [],
  };
}

/**
 * @internal Orders parts so each comes after its dependencies (stable: definition order where the
 * graph allows) and links them by index. Rejects unknown names and cycles, naming the fix.
 */
export function orderParts(where: string, defs: readonly PartDef[]): PartDef[] {
  const byName = new Map(defs.map(def => [def.name, def]));
  for (const def of defs) {
    for (const dep of def.dependsOn) {
      if (!byName.has(dep)) {
        throw new InvalidOptionsError(
          `${where}: part "${def.name}" depends on "${dep}", which is not a part; known parts are ${[...byName.keys()].join(', ')}. Fix the name in dependsOn or add the part`,
        );
      }
    }
  }
  const ordered: PartDef[] = [];
  const placed = new Set<string>();
  // Repeated passes keep definition order among parts that are ready at the same time; graphs are
  // small (a handful of parts), so O(n^2) costs nothing next to one run.
  while (ordered.length < defs.length) {
    const before = ordered.length;
    for (const def of defs) {
      if (!placed.has(def.name) && def.dependsOn.every(dep => placed.has(dep))) {
        placed.add(def.name);
        ordered.push(def);
      }
    }
    if (ordered.length === before) {
      const cycle = findCycle(
        defs.filter(def => !placed.has(def.name)),
        byName,
      );
      throw new InvalidOptionsError(
        `${where}: parts depend on each other in a cycle (${cycle.join(' -> ')}); remove one of these dependsOn entries`,
      );
    }
  }
  const index = new Map(ordered.map((def, i) => [def.name, i]));
  for (const def of ordered) {
    def.deps = def.dependsOn.map(dep => index.get(dep) as number);
    def.dependents = [];
  }
  ordered.forEach((def, i) => {
    for (const dep of def.deps) (ordered[dep] as PartDef).dependents.push(i);
  });
  return ordered;
}

function findCycle(rest: readonly PartDef[], byName: Map<string, PartDef>): string[] {
  // Every remaining part waits on another remaining part, so walking first dependencies must
  // revisit a part; the walk from that point is the cycle.
  const remaining = new Set(rest.map(def => def.name));
  let current = rest[0] as PartDef;
  const path: string[] = [];
  while (!path.includes(current.name)) {
    path.push(current.name);
    const next = current.dependsOn.find(dep => remaining.has(dep)) as string;
    current = byName.get(next) as PartDef;
  }
  return [...path.slice(path.indexOf(current.name)), current.name];
}

/** Copies a plan's parts so a derived composition can relink them without touching the original. */
export function copyParts(parts: readonly PartDef[]): PartDef[] {
  return parts.map(def => ({ ...def, deps: [], dependents: [] }));
}
