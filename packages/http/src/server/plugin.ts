/**
 * The Fastify plugin: deadline in (caller's budget, clamped), request id in and out, every error
 * as problem+json, health routes, graceful shutdown and load shedding. Registered with
 * fastify-plugin, so its hooks and handlers apply to the whole app; register it before routes.
 */
import type { ServerResponse } from 'node:http';
import {
  BULWARK_BUDGET_HEADER,
  budgetFromHeaders,
  CancelledError,
  Deadline,
  DeadlineExceededError,
  ENVOY_TIMEOUT_HEADER,
  GRPC_TIMEOUT_HEADER,
  hasCode,
  LoadShedError,
  type DeadlineOptions,
  type Permit,
} from '@bulwark/core';
import { runWithContext, type AmbientContext } from '@bulwark/core/ambient';
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify';
import fp from 'fastify-plugin';
import { DeadlineSweep, type SweepEntry } from './deadline-sweep.js';
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

/** The ambient context of one request: its deadline and id, in ONE AsyncLocalStorage store. */
class RequestContext implements AmbientContext {
  constructor(
    readonly deadline: Deadline,
    readonly requestId: string,
  ) {}
}

type TrackedResponse = ServerResponse & { [kTracker]?: RequestTracker };

/**
 * Follows one request from `onRequest` until its response closes. It is the request's entry in
 * the deadline sweep (no timer of its own) and its deadline's abort listener.
 */
class RequestTracker implements SweepEntry {
  done = false;
  heapIndex = -1;
  readonly expiresAt: number;

  constructor(
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    readonly deadline: Deadline,
    readonly permit: Permit | null,
    readonly lifecycle: Lifecycle,
    readonly sweep: DeadlineSweep<RequestTracker>,
  ) {
    this.expiresAt = deadline.expiresAt;
  }

  /** The sweep found the deadline passed: cancel it, which reaches {@link abort} (504). */
  expire(): void {
    if (!this.done) this.deadline.cancel(new DeadlineExceededError());
  }

  /** The deadline passed or was cancelled (the sweep, its own timer, or someone's `cancel`). */
  abort(reason: unknown): void {
    if (this.done || !hasCode(reason, 'DEADLINE_EXCEEDED')) return;
    const reply = this.reply;
    if (reply.sent || reply.raw.headersSent) return;
    this.request.log.warn('request deadline exceeded; answering 504');
    sendProblem(reply, toProblem(reason, this.request));
  }

  /** Shutdown began: this response tells a keep-alive client not to reuse the connection. */
  closeConnection(): void {
    const reply = this.reply;
    if (!this.done && !reply.sent && !reply.raw.headersSent) reply.header('connection', 'close');
  }

  /** The response closed: sent in full, or the connection went away first. */
  close(): void {
    if (this.done) return;
    this.done = true;
    const res = this.reply.raw;
    const finished = res.writableFinished;
    this.lifecycle.leave();
    this.sweep.remove(this);
    if (this.permit !== null) {
      const status = res.statusCode;
      // A client that left says nothing about capacity; 503/504 are overload signals.
      this.permit.release(
        !finished ? 'ignored' : status === 503 || status === 504 ? 'dropped' : 'success',
      );
    }
    // Like Go's request context: once the exchange is over (or the client is gone), work still
    // running for it is cancelled (and a timer armed by a handler reading the signal is freed).
    // The normal case shares one reason: a fresh error per request spent ~10% of the plugin's
    // CPU capturing stack traces nobody reads (see bench/README.md, http-server). `abort` above
    // ignores it (done), so the tracker need not leave the deadline's listeners first.
    this.deadline.cancel(
      finished ? RESPONSE_SENT : new CancelledError({ cause: 'client disconnected' }),
    );
  }
}

/** One shared 'close' listener for every response (no closure per request). */
function onResponseClose(this: TrackedResponse): void {
  this[kTracker]?.close();
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
  const { defaultMs, maxMs } = o;
  const deadlineOptions: DeadlineOptions = { clock };
  const sweep = new DeadlineSweep<RequestTracker>(clock);
  /** Shutdown began: responses in flight tell keep-alive clients not to reuse the connection. */
  const closeConnections = () => sweep.forEach(tracker => tracker.closeConnection());

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (reason = 'shutdown requested'): Promise<void> => {
    shutdownPromise ??= (async () => {
      lifecycle.notReady = true;
      closeConnections();
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
    if (reason === 'closing' || lifecycle.notReady) reply.header('connection', 'close');
    if (reason !== 'closing')
      problem.headers['retry-after'] = retryAfterSeconds(o.shedRetryAfterMs);
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
      // The caller's budget (deadline-headers.ts rules), with a fast path for the usual request
      // that sends none.
      const headers = request.headers;
      const ms =
        headers[GRPC_TIMEOUT_HEADER] === undefined &&
        headers[ENVOY_TIMEOUT_HEADER] === undefined &&
        headers[BULWARK_BUDGET_HEADER] === undefined
          ? defaultMs
          : Math.min(budgetFromHeaders(headers) ?? defaultMs, maxMs);
      const deadline = Deadline.after(ms, deadlineOptions);
      request.deadline = deadline;
      const tracker = new RequestTracker(request, reply, deadline, permit, lifecycle, sweep);
      lifecycle.enter();
      // While draining, tell keep-alive clients not to reuse this connection (requests already
      // in flight when shutdown began are told by `closeConnections`). No onSend hook: running
      // Fastify's hook chain for every response cost more than this check.
      if (lifecycle.notReady) reply.header('connection', 'close');
      const res = reply.raw as TrackedResponse;
      res[kTracker] = tracker;
      res.on('close', onResponseClose);
      // The deadline is enforced by the shared sweep, not by a timer of its own; the tracker
      // listens without arming it, to answer 504 when someone cancels it as exceeded.
      deadline.scope.add(tracker);
      sweep.add(tracker);
      if (ms <= 0) tracker.expire();
      // Everything after this hook (parsing, validation, handler, later hooks) continues inside
      // this context; Fastify binds body parsing to the request's async context.
      runWithContext(new RequestContext(deadline, id), done);
    },
  );

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
    if (!lifecycle.notReady) {
      lifecycle.notReady = true;
      closeConnections();
    }
    lifecycle.refusing = true;
    done();
  });
  app.addHook('onClose', (_app, done) => {
    if (signalsOn) {
      for (const signal of o.signals) process.off(signal, signalHandler);
      signalsOn = false;
    }
    shedder?.close();
    sweep.close();
    if (shedder === undefined) delaySource?.close?.();
    done();
  });
  await Promise.resolve();
};

/**
 * The Bulwark Fastify plugin. `await app.register(bulwark, { ... })` before declaring routes.
 */
export const bulwark = fp(bulwarkPlugin, { fastify: '5.x', name: '@bulwark/http' });
