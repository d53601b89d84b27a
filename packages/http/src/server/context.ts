/**
 * The per-request context that follows the request through every await: its id, for logs and for
 * outbound calls (`createClient({ getRequestId: currentRequestId })`). The deadline itself lives in
 * core's ambient storage (`@bulwark/core/ambient`), so code that only knows core still finds it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** @internal */
export interface RequestContext {
  readonly requestId: string;
}

/** @internal */
export const requestStorage = new AsyncLocalStorage<RequestContext>();

/**
 * The id of the request being served (the accepted or generated `x-request-id`), or undefined
 * outside a request handled by the bulwark plugin. Pass it as the HTTP client's `getRequestId`
 * option so downstream calls carry the same id.
 */
export function currentRequestId(): string | undefined {
  return requestStorage.getStore()?.requestId;
}
