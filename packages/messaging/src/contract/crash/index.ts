// Crash harness: N messages, poison and transient failures, a worker process SIGKILLed mid-flight.
export { describeCrashScenario, type CrashSuiteSetup } from './describe.js';
export {
  runCrashScenario,
  type CrashScenarioOptions,
  type CrashReport,
  type CrashKill,
  type CrashSnapshot,
} from './scenario.js';
export { builtCopyOf } from './built.js';
export {
  crashMessageKind,
  countOfKind,
  crashIdempotencyKey,
  CRASH_MESSAGE_TYPE,
  type CrashMessageKind,
  type CrashPayload,
} from './plan.js';
export type { CrashSubject, CrashSubjectConfig, OpenCrashSubject } from './subject.js';
export type { CrashProgress } from './protocol.js';
