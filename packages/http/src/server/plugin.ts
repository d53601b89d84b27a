/**
 * The Fastify plugin: deadline in (caller's budget, clamped), request id in and out, every error
 * as problem+json, health routes, graceful shutdown and load shedding. Registered with
 * fastify-plugin, so its hooks and handlers apply to the whole app; register it before routes.
 */
import {
  CancelledError,
  deadlineFromHeaders,
  hasCode,
  LoadShedError,
  type Deadline,
  type Permit,
} from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/ambient';
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify';
import fp from 'fastify-plugin';
import { requestStorage } from '../request-context.js';
import { HEALTH_CONTENT_TYPE, HealthRegistry, type HealthDocument } from './health.js';
import { resolveOptions, type BulwarkOptions, type ResolvedOptions } from './options.js';
import {
  ProblemError,
  ProblemTypes,
  instanceOf,
  retryAfterSeconds,
  sendProblem,
  toProblem,
} from './problem.js';
import { acceptRequestId, generateRequestId, kBulwarkRequestId } from './request-id.js';
import { eventLoopDelayMonitor, Shedder, type ShedReason } from './shedding.js';
import { delay, Lifecycle } from './shutdown.js';

/** What the plugin adds to the Fastify instance as `app.bulwark`. */
export interface BulwarkControl {
  /**
   * Graceful shutdown: readiness fails, (after `shutdown.delayMs`) new requests are refused,
   * in-flight ones drain for up to `drainTimeoutMs`, then `app.close()`. Idempotent: every call
   * returns the same promise. Never exits the process.
   */
  shutdown(reason?: string): Promise<void>;
  /** True from the moment shutdown starts. */
  readonly shuttingDown: boolean;
  /** Requests being served now (health probes included). */
  readonly inFlight: number;
  /** Evaluates the health checks (cached for `readyCacheMs`), as `/health` does. */
  health(): Promise<HealthDocument>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's deadline: the caller's budget clamped to `timeouts.maxMs`, or
     * `timeouts.defaultMs`. Its `signal` aborts when it runs out, when the client disconnects
     * and when the response is done. Set in the plugin's `onRequest` hook.
     */
    deadline: Deadline;
  }
  interface FastifyInstance {
    bulwark: BulwarkControl;
  }
}

const kTracker = Symbol('bulwark.tracker');

/** The reason a request's deadline is cancelled with once its response went out. */
const RESPONSE_SENT = new CancelledError({ cause: 'response sent' });

/** Follows one request from `onRequest` until its response closes. */
class RequestTracker {
  done = false;

  constructor(
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    readonly deadline: Deadline,
    readonly permit: Permit | null,
    readonly lifecycle: Lifecycle,
  ) {}

  /** The deadline passed or was cancelled. */
  abort(reason: unknown): void {
    if (this.done || !hasCode(reason, 'DEADLINE_EXCEEDED')) return;
    const reply = this.reply;
    if (reply.sent || reply.raw.headersSent) return;
    this.request.log.warn('request deadline exceeded; answering 504');
    sendProblem(reply, toProblem(reason, this.request));
  }

  /** The response closed: sent in full, or the connection went away first. */
  readonly onClose = (): void => {
    if (this.done) return;
    this.done = true;
    const res = this.reply.raw;
    const finished = res.writableFinished;
    this.lifecycle.leave();
    if (this.permit !== null) {
      const status = res.statusCode;
      // A client that left says nothing about capacity; 503/504 are overload signals.
      this.permit.release(
        !finished ? 'ignored' : status === 503 || status === 504 ? 'dropped' : 'success',
      );
    }
    this.deadline.offAbort(this);
    // Like Go's request context: once the exchange is over (or the client is gone), work still
    // running for it is cancelled and the deadline's timer is freed. The normal case shares one
    // reason: a fresh error per request spent ~10% of the plugin's CPU capturing stack traces
    // nobody reads (see bench/README.md, http-server).
    this.deadline.cancel(
      finished ? RESPONSE_SENT : new CancelledError({ cause: 'client disconnected' }),
    );
  };
}

function sendHealth(reply: FastifyReply, status: number, doc: HealthDocument): FastifyReply {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type(HEALTH_CONTENT_TYPE)
    .send(JSON.stringify(doc));
}

const bulwarkPlugin: FastifyPluginAsync<BulwarkOptions> = async (app, rawOptions) => {
  const o: ResolvedOptions = resolveOptions(rawOptions);
  const clock = o.clock;
  const lifecycle = new Lifecycle();
  const registry = new HealthRegistry(o.checks, o.readyCacheMs, clock, o.exposeErrors, app.log);
  const probePaths = new Set(
    [o.livePath, o.readyPath, o.healthPath].filter((p): p is string => p !== undefined),
  );
  const delaySource =
    o.maxEventLoopDelayMs === undefined
      ? undefined
      : (o.eventLoopDelay ?? eventLoopDelayMonitor({ windowMs: o.eventLoopDelayWindowMs, clock }));
  const shedder =
    delaySource === undefined && o.concurrency === undefined
      ? undefined
      : new Shedder(o.maxEventLoopDelayMs, delaySource, o.concurrency, o.lowPriorityShare);
  const header = o.requestIdHeader;
  const priorityOf = o.priority;
  const timeouts = { defaultMs: o.defaultMs, maxMs: o.maxMs, clock };

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (reason = 'shutdown requested'): Promise<void> => {
    shutdownPromise ??= (async () => {
      lifecycle.notReady = true;
      app.log.info(
        { reason, inFlight: lifecycle.inFlight },
        'graceful shutdown: readiness failing',
      );
      if (o.shutdownDelayMs > 0) await delay(clock, o.shutdownDelayMs);
      lifecycle.refusing = true;
      const drained = await lifecycle.waitIdle(o.drainTimeoutMs, clock);
      if (!drained) {
        app.log.warn(
          { inFlight: lifecycle.inFlight, drainTimeoutMs: o.drainTimeoutMs },
          'graceful shutdown: drain timeout passed with requests in flight; closing anyway',
        );
      }
      const closed = app.close();
      // Past the drain timeout the remaining requests are given up: without this, close would
      // wait for them (or for their own deadlines) however long that takes.
      if (!drained) app.server.closeAllConnections();
      await closed;
    })();
    return shutdownPromise;
  };

  const control: BulwarkControl = {
    shutdown,
    get shuttingDown() {
      return lifecycle.notReady;
    },
    get inFlight() {
      return lifecycle.inFlight;
    },
    health: () => registry.evaluate(false),
  };
  app.decorate('bulwark', control);
  app.decorateRequest('deadline', null as unknown as Deadline);

  const refuse = (request: FastifyRequest, reply: FastifyReply, reason: ShedReason | 'closing') => {
    const problem =
      reason === 'closing'
        ? toProblem(
            new ProblemError({
              status: 503,
              type: ProblemTypes.shuttingDown,
              title: 'Shutting Down',
              detail: 'This instance is shutting down; retry on another instance.',
              code: 'SHUTTING_DOWN',
              retryable: true,
            }),
            request,
          )
        : toProblem(
            new LoadShedError(`load shed: ${reason}`, { retryAfterMs: o.shedRetryAfterMs }),
            request,
          );
    if (reason === 'closing') reply.header('connection', 'close');
    else problem.headers['retry-after'] = retryAfterSeconds(o.shedRetryAfterMs);
    request.log.info({ reason }, 'request refused');
    sendProblem(reply, problem);
  };

  app.addHook(
    'onRequest',
    function bulwarkOnRequest(
      this: FastifyInstance,
      request: FastifyRequest,
      reply: FastifyReply,
      done: HookHandlerDoneFunction,
    ) {
      let id = request.id;
      if (header !== undefined) {
        const fromGenerator =
          (request.raw as unknown as Record<symbol, unknown>)[kBulwarkRequestId] === id;
        if (!fromGenerator) {
          id = acceptRequestId(request.headers[header]) ?? generateRequestId();
          request.id = id;
          // A child of the server logger, not of request.log: pino would repeat the reqId key.
          request.log = this.log.child({ reqId: id });
          reply.log = request.log;
        }
        reply.header(header, id);
      }
      // The path, not `request.routeOptions.url`: that getter builds a 12-field object on every
      // access, a measurable share of the plugin's per-request cost (bench/README.md).
      const isProbe = probePaths.size > 0 && probePaths.has(instanceOf(request));
      if (lifecycle.refusing && !isProbe) {
        refuse(request, reply, 'closing');
        return;
      }
      let permit: Permit | null = null;
      if (shedder !== undefined && !isProbe) {
        const admitted = shedder.admit(priorityOf === undefined ? 0 : priorityOf(request));
        if (typeof admitted === 'string') {
          refuse(request, reply, admitted);
          return;
        }
        permit = admitted;
      }
      const deadline = deadlineFromHeaders(request.headers, timeouts);
      request.deadline = deadline;
      const tracker = new RequestTracker(request, reply, deadline, permit, lifecycle);
      (request as unknown as Record<symbol, unknown>)[kTracker] = tracker;
      lifecycle.enter();
      reply.raw.once('close', tracker.onClose);
      deadline.onAbort(tracker);
      // Everything after this hook (parsing, validation, handler, later hooks) continues inside
      // these stores; Fastify binds body parsing to the request's async context.
      runWithDeadline(deadline, () => requestStorage.run({ requestId: id }, done));
    },
  );

  app.addHook('onSend', (_request, reply, payload, done) => {
    // While draining, tell keep-alive clients not to reuse this connection.
    if (lifecycle.refusing || lifecycle.notReady) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler(function bulwarkErrorHandler(error, request, reply) {
    const problem = toProblem(error, request);
    if (problem.status >= 500) {
      request.log.error({ err: error, problem: problem.body.code }, 'request failed');
    } else {
      request.log.info({ err: error, problem: problem.body.code }, 'request rejected');
    }
    return sendProblem(reply, problem);
  });

  app.setNotFoundHandler(function bulwarkNotFound(request, reply) {
    return sendProblem(
      reply,
      toProblem(
        new ProblemError({
          status: 404,
          type: ProblemTypes.notFound,
          title: 'Not Found',
          detail: `No route for ${request.method} ${instanceOf(request)}.`,
          code: 'NOT_FOUND',
        }),
        request,
      ),
    );
  });

  // Probes are frequent and boring: log them only when something is wrong.
  const probeRoute = { logLevel: 'warn' as const };
  if (o.livePath !== undefined) {
    // Liveness says the process works. It stays 200 while draining: restarting a pod that is
    // shutting down on purpose would only drop its in-flight requests.
    app.get(o.livePath, probeRoute, (_request, reply) =>
      sendHealth(reply, 200, { status: 'pass' }),
    );
  }
  if (o.readyPath !== undefined) {
    app.get(o.readyPath, probeRoute, async (_request, reply) => {
      if (lifecycle.notReady) {
        return sendHealth(reply, 503, { status: 'fail', notes: ['shutting down'] });
      }
      const doc = await registry.evaluate(true);
      return sendHealth(reply, doc.status === 'fail' ? 503 : 200, doc);
    });
  }
  if (o.healthPath !== undefined) {
    app.get(o.healthPath, probeRoute, async (_request, reply) => {
      const doc = await registry.evaluate(false);
      if (lifecycle.notReady) {
        doc.status = 'fail';
        doc.notes = ['shutting down'];
      }
      return sendHealth(reply, doc.status === 'fail' ? 503 : 200, doc);
    });
  }

  const signalHandler = (signal: NodeJS.Signals) => {
    shutdown(signal).catch((error: unknown) => {
      app.log.error({ err: error }, 'graceful shutdown failed');
    });
  };
  let signalsOn = false;
  if (o.handleSignals) {
    // Only a listening server owns the process's signals; inject()-only apps never take them.
    app.addHook('onListen', done => {
      if (!signalsOn) {
        signalsOn = true;
        for (const signal of o.signals) process.on(signal, signalHandler);
      }
      done();
    });
  }
  app.addHook('preClose', done => {
    // app.close() called directly (not through shutdown): still fail readiness and refuse.
    lifecycle.notReady = true;
    lifecycle.refusing = true;
    done();
  });
  app.addHook('onClose', (_app, done) => {
    if (signalsOn) {
      for (const signal of o.signals) process.off(signal, signalHandler);
      signalsOn = false;
    }
    shedder?.close();
    if (shedder === undefined) delaySource?.close?.();
    done();
  });
  await Promise.resolve();
};

/**
 * The Bulwark Fastify plugin. `await app.register(bulwark, { ... })` before declaring routes.
 */
export const bulwark = fp(bulwarkPlugin, { fastify: '5.x', name: '@bulwark/http' });
