// HTTP rendering of composition results.
export {
  toHttpResponse,
  bodyJson,
  DEGRADED_PROBLEM_TYPE,
  JSON_CONTENT_TYPE,
  type CompositionHttpResponse,
  type CompositionProblem,
  type ToHttpResponseOptions,
} from './response.js';
export { parsePrefer, preferredHandling, prefersStrict, type HeaderValue } from './prefer.js';
