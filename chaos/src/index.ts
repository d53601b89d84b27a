export {
  DEPENDENCIES,
  FAULTS,
  FAULT_NAMES,
  OVERVIEW_PARTS,
  PARTS_OF,
  isCritical,
  type Dependency,
  type FaultDefinition,
  type FaultName,
} from './faults.js';
export { probe, runLoad, type LoadOptions, type Sample } from './load.js';
export { read, userIdOf, type Outcome, type PartMeta, type Reading } from './classify.js';
export { percentile, summariseLatency, type LatencySummary } from './stats.js';
export {
  DEFAULT_SEED,
  chaosPolicies,
  scaledTimings,
  GATEWAY_ATTEMPT_TIMEOUT_MS,
  startShopStack,
  type SeedSizes,
  type ShopStack,
  type ShopStackOptions,
} from './stack.js';
export {
  awaitRecovery,
  runScenario,
  warmUp,
  type Check,
  type Counts,
  type RecoveryResult,
  type ScenarioOptions,
  type ScenarioResult,
} from './scenario.js';
export { fullMatrix, runMatrix, selectMatrix, type MatrixEntry } from './matrix.js';
export { scenarioTable, toMarkdown, writeReport, type ChaosReport } from './report.js';
