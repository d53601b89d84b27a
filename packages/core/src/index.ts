export {
  systemClock,
  clampDelay,
  MAX_TIMER_DELAY_MS,
  type Clock,
  type TimerHandle,
} from './clock.js';
export { systemRandom, seededRandom, type Random } from './random.js';
export * from './errors.js';
export { Emitter, type Disposable, type Listener, type Subscribe } from './events.js';
export { Deadline, type DeadlineOptions, type ChildDeadlineOptions } from './deadline.js';
export {
  GRPC_TIMEOUT_HEADER,
  ENVOY_TIMEOUT_HEADER,
  BULWARK_BUDGET_HEADER,
  parseGrpcTimeout,
  formatGrpcTimeout,
  parseMillisHeader,
  budgetFromHeaders,
  deadlineFromHeaders,
  deadlineToHeaders,
  type HeaderBag,
  type DeadlineFromHeadersOptions,
} from './deadline-headers.js';
export {
  PolicyBase,
  runStep,
  invoke,
  type Composable,
  type ExecuteOptions,
  type ExecutionContext,
  type Policy,
  type Sink,
  type Step,
  type Work,
} from './policy.js';
export { pipeline, type Pipeline } from './pipeline.js';
export { timeout, TimeoutPolicy, type TimeoutOptions, type TimeoutEvent } from './timeout.js';
export {
  circuitBreaker,
  CircuitBreakerPolicy,
  type CircuitBreakerOptions,
  type CircuitBreakerEvent,
  type BreakerState,
  type BreakerSnapshot,
  type BreakerTrigger,
  type ConsecutiveTrigger,
  type CountTrigger,
  type TimeTrigger,
  type SlowCallOptions,
  type OpenBackoffOptions,
  type HalfOpenOptions,
  type OpenReason,
  type WindowSnapshot,
} from './circuit-breaker.js';
