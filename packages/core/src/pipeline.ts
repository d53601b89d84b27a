/**
 * Composition. `pipeline(a, b, c)` runs `a` outermost and `c` innermost, closest to the work:
 * `a(b(c(work)))`. The recommended order for a remote call is documented in the README:
 * fallback → timeout (overall) → retry → circuit breaker → bulkhead / rate limit → timeout (per attempt).
 */
import { InvalidOptionsError } from './errors.js';
import {
  invoke,
  runStep,
  type Composable,
  type ExecuteOptions,
  type Policy,
  type Step,
  type Work,
} from './policy.js';

type ResultOf<P> = P extends Composable<infer R> ? R : never;

export interface Pipeline<R = never> extends Policy<R> {
  /** The policies, outermost first. */
  readonly policies: readonly Composable<unknown>[];
}

class ComposedPipeline<R> implements Pipeline<R> {
  declare readonly __result?: R;
  private readonly step: Step;
  constructor(readonly policies: readonly Composable<unknown>[]) {
    this.step = this.compose(invoke);
  }
  compose(next: Step): Step {
    let step = next;
    for (let i = this.policies.length - 1; i >= 0; i--) {
      step = (this.policies[i] as Composable<unknown>).compose(step);
    }
    return step;
  }
  execute<T>(work: Work<T>, options?: ExecuteOptions): Promise<T | R> {
    return runStep<T | R>(this.step, work, options);
  }
}

/** Composes policies, outermost first. The result type includes every fallback's value type. */
export function pipeline<const P extends readonly Composable<unknown>[]>(
  ...policies: P
): Pipeline<ResultOf<P[number]>> {
  policies.forEach((policy, index) => {
    if (policy === null || typeof policy !== 'object' || typeof policy.compose !== 'function') {
      throw new InvalidOptionsError(
        `pipeline: argument ${index} is not a policy (expected an object with compose(), got ${policy === null ? 'null' : typeof policy})`,
      );
    }
  });
  return new ComposedPipeline<ResultOf<P[number]>>(policies);
}
