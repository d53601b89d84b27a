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
  runStepInto,
  invoke,
  abortSourceOf,
  type Composable,
  type ExecuteOptions,
  type ExecutionContext,
  type Context,
  type Policy,
  type Sink,
  type Step,
  type Work,
} from './policy.js';
export { pipeline, type Pipeline } from './pipeline.js';
export { NEVER_SCOPE, Scope, type AbortSource } from './scope.js';
export { timeout, TimeoutPolicy, type TimeoutOptions, type TimeoutEvent } from './timeout.js';
export {
  circuitBreaker,
  CircuitBreakerPolicy,
  BREAKER_IGNORED_CODES,
  isIgnoredByBreaker,
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
export {
  hedge,
  HedgePolicy,
  HedgeCancelledError,
  type HedgeOptions,
  type HedgeDelay,
  type FixedHedgeDelay,
  type PercentileHedgeDelay,
  type HedgeEvent,
} from './hedge.js';
export {
  fallback,
  FallbackPolicy,
  whenCode,
  whenInstanceOf,
  type FallbackOptions,
  type FallbackValueOptions,
  type FallbackFnOptions,
  type FallbackEvent,
} from './fallback.js';
export {
  faultInjection,
  FaultInjectionPolicy,
  type FaultInjectionOptions,
  type Fault,
  type FaultInjectionEvent,
} from './fault-injection.js';
export { LatencyTracker, type LatencyTrackerOptions } from './latency-tracker.js';
export { bulkhead, BulkheadPolicy, type BulkheadOptions, type BulkheadEvent } from './bulkhead.js';
export {
  rateLimiter,
  RateLimiterPolicy,
  type RateLimiterOptions,
  type RateLimiterEvent,
} from './rate-limiter.js';
export {
  concurrencyLimit,
  ConcurrencyLimitPolicy,
  type ConcurrencyLimitOptions,
  type ConcurrencyLimitEvent,
  type LimitOutcome,
  type Permit,
} from './concurrency-limit.js';
export type { AimdLimitOptions } from './limit/aimd.js';
export type { GradientLimitOptions } from './limit/gradient.js';
export {
  exponentialBackoff,
  decorrelatedJitterBackoff,
  constantBackoff,
  customBackoff,
  type Backoff,
  type BackoffState,
  type BackoffFunction,
  type Jitter,
  type ExponentialBackoffOptions,
  type DecorrelatedJitterBackoffOptions,
  type ConstantBackoffOptions,
  type CustomBackoffOptions,
} from './backoff.js';
export {
  retryBudget,
  TokenRetryBudget,
  type RetryBudget,
  type RetryBudgetOptions,
} from './retry-budget.js';
export {
  retry,
  RetryPolicy,
  type RetryOptions,
  type RetryEvent,
  type RetryScheduledEvent,
  type RetrySucceededEvent,
  type RetryExhaustedEvent,
  type RetryBudgetExhaustedEvent,
} from './retry.js';
