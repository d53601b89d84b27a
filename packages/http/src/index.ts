// The outbound client's public API (see src/client/).
export {
  httpDependency,
  HttpDependency,
  type HttpRequestOptions,
  type HttpResponse,
  type QueryValue,
} from './client/dependency.js';
export {
  DEFAULTS as HTTP_DEPENDENCY_DEFAULTS,
  type HttpDependencyOptions,
} from './client/options.js';
export {
  HttpDependencyError,
  HttpDeadlineExceededError,
  HTTP_ERROR_CODES,
  isHttpDependencyError,
  isDependencyFailure,
  type HttpErrorCode,
  type HttpCallInfo,
  type HttpDependencyErrorOptions,
} from './client/errors.js';
export { parseRetryAfter } from './client/classify.js';
export { currentRequestId } from './request-context.js';
export { IDEMPOTENCY_KEY_HEADER, isIdempotentMethod } from './client/idempotency.js';
export type {
  HttpDependencyEvent,
  HttpResponseEvent,
  HttpFailureEvent,
  HttpNotSentEvent,
  HttpCallEvent,
  HttpPolicyEvent,
} from './client/events.js';
