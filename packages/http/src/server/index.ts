// The Fastify plugin's public API (`@bulwark/http/fastify`).
export { bulwark, type BulwarkControl } from './plugin.js';
export type {
  BulwarkOptions,
  BulwarkTimeoutOptions,
  BulwarkHealthOptions,
  BulwarkShutdownOptions,
  BulwarkSheddingOptions,
} from './options.js';
export {
  toProblem,
  sendProblem,
  retryAfterSeconds,
  ProblemError,
  ProblemTypes,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  type ProblemErrorOptions,
  type ProblemFieldError,
  type ProblemResponse,
} from './problem.js';
export {
  HEALTH_CONTENT_TYPE,
  type HealthCheck,
  type HealthCheckOutcome,
  type HealthCheckResult,
  type HealthDocument,
  type HealthStatus,
} from './health.js';
export { eventLoopDelayMonitor, type EventLoopDelaySource, type ShedReason } from './shedding.js';
export { currentRequestId } from '../request-context.js';
export {
  acceptRequestId,
  generateRequestId,
  requestIdGenerator,
  MAX_REQUEST_ID_LENGTH,
} from './request-id.js';
