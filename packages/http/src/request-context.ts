/**
 * The per-request context that follows an inbound request through every await: its id, for logs
 * and for outbound calls. It lives here, outside `server/`, because both halves use it: the
 * Fastify plugin writes it and the client reads it (its default `getRequestId`), and the client
 * must not pull Fastify into its module graph.
 *
 * The id shares core's ambient context (`@bulwark/core/ambient`) with the deadline: one
 * AsyncLocalStorage entered once per request instead of two. On Node 20 each enabled store costs
 * a property write on every async resource the process creates, so a store of our own cost the
 * server more than everything else the plugin does per request (bench/README.md, http-server).
 */
import {
  currentContext,
  currentRequestId as ambientRequestId,
  runWithContext,
} from '@bulwark/core/ambient';

/** @internal */
export interface RequestContext {
  readonly requestId: string;
}

/**
 * @internal Runs code with a request id ambient (keeping the ambient deadline), as the plugin
 * does for a request; for tests and integrations other than the Fastify plugin.
 */
export const requestStorage = {
  run<T>(context: RequestContext, fn: () => T): T {
    return runWithContext(
      { deadline: currentContext()?.deadline, requestId: context.requestId },
      fn,
    );
  },
  getStore(): RequestContext | undefined {
    const requestId = ambientRequestId();
    return requestId === undefined ? undefined : { requestId };
  },
};

/**
 * The id of the request being served (the accepted or generated `x-request-id`), or undefined
 * outside a request handled by the bulwark plugin. `httpDependency` sends it downstream by
 * default (`getRequestId`).
 */
export function currentRequestId(): string | undefined {
  return ambientRequestId();
}
