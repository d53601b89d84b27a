/**
 * The per-request context that follows an inbound request through every await: its id, for logs
 * and for outbound calls. It lives here, outside `server/`, because both halves use it: the
 * Fastify plugin writes it and the client reads it (its default `getRequestId`), and the client
 * must not pull Fastify into its module graph. The deadline itself lives in core's ambient
 * storage (`@bulwark/core/ambient`), so code that only knows core still finds it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** @internal */
export interface RequestContext {
  readonly requestId: string;
}

/** @internal One store per process (both entry points import this module). */
export const requestStorage = new AsyncLocalStorage<RequestContext>();

/**
 * The id of the request being served (the accepted or generated `x-request-id`), or undefined
 * outside a request handled by the bulwark plugin. `httpDependency` sends it downstream by
 * default (`getRequestId`).
 */
export function currentRequestId(): string | undefined {
  return requestStorage.getStore()?.requestId;
}
