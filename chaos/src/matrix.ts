/** Runs the healthy baseline and then {dependency} x {fault}, one scenario after the other. */
import { DEPENDENCIES, FAULT_NAMES, type Dependency, type FaultName } from './faults.js';
import { runScenario, warmUp, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import type { ShopStack } from './stack.js';

export interface MatrixEntry {
  dependency: Dependency;
  fault: FaultName;
}

/** Every pair, users first (the critical one), in a stable order. */
export function fullMatrix(): MatrixEntry[] {
  return DEPENDENCIES.flatMap(dependency => FAULT_NAMES.map(fault => ({ dependency, fault })));
}

/**
 * Filters the matrix by `users/down`, `users` (every fault) or `hang` (every dependency) terms;
 * unknown terms throw, naming the known ones.
 */
export function selectMatrix(terms: readonly string[] | undefined): MatrixEntry[] {
  const all = fullMatrix();
  if (terms === undefined || terms.length === 0) return all;
  const known = new Set<string>([
    ...DEPENDENCIES,
    ...FAULT_NAMES,
    ...all.map(e => `${e.dependency}/${e.fault}`),
  ]);
  for (const term of terms) {
    if (!known.has(term)) {
      throw new TypeError(
        `unknown scenario ${JSON.stringify(term)}; use <dependency>/<fault>, a dependency ` +
          `(${DEPENDENCIES.join(', ')}) or a fault (${FAULT_NAMES.join(', ')})`,
      );
    }
  }
  return all.filter(e =>
    terms.some(t => t === e.dependency || t === e.fault || t === `${e.dependency}/${e.fault}`),
  );
}

export async function runMatrix(
  stack: ShopStack,
  entries: readonly MatrixEntry[],
  options: Omit<ScenarioOptions, 'dependency' | 'fault' | 'firstUserId'> = {},
  onResult: (result: ScenarioResult) => void = () => {},
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const requests = options.requests ?? 200;
  let firstUserId = 1;
  // Each scenario starts where the previous one's users ended, so a user's orders are rarely
  // still fresh in the gateway's cache from the scenario before.
  const next = (): number => {
    const id = firstUserId;
    firstUserId = 1 + ((firstUserId - 1 + requests + 10) % stack.seed.users);
    return id;
  };
  await warmUp(stack);
  const healthy = await runScenario(stack, { ...options, firstUserId: next() });
  results.push(healthy);
  onResult(healthy);
  for (const entry of entries) {
    const result = await runScenario(stack, { ...options, ...entry, firstUserId: next() });
    results.push(result);
    onResult(result);
  }
  return results;
}
