/**
 * httpDependency: one named downstream service. Requests go through an undici keep-alive Pool,
 * under the call's deadline (given, or the ambient one from the inbound request), through the
 * dependency's policy pipeline (retry + circuit breaker by default), and come back as a decoded
 * response or as a classified `HttpDependencyError`.
 *
 * Per attempt: refuse to send when the deadline has less than `minBudgetMs` left; send what is left
 * as budget headers; abort the request when a deadline, an outer timeout or the caller's signal
 * fires (undici closes the socket); read the body under size and time limits.
 *
 * An attempt is one undici `dispatch` with our own handler ({@link Exchange}), not
 * `undici.request()`: the body's chunks go from the HTTP parser straight into the size-limited
 * collector and the decoder, with no Readable stream, no AsyncResource and no promise per step in
 * between. The handler settles one promise per attempt.
 */
import {
  abortSourceOf,
  type AbortSource,
  BULWARK_BUDGET_HEADER,
  ENVOY_TIMEOUT_HEADER,
  formatGrpcTimeout,
  GRPC_TIMEOUT_HEADER,
  InvalidOptionsError,
  invoke,
  isBulwarkError,
  pipeline,
  runStepInto,
  type Clock,
  type Deadline,
  type ExecuteOptions,
  type ExecutionContext,
  type Pipeline,
  Scope,
  type Sink,
  type Step,
  type Subscribe,
} from '@bulwark/core';
import { currentContext } from '@bulwark/core/ambient';
import { Pool, type Dispatcher } from 'undici';
import { currentRequestId } from '../request-context.js';
import { classifyTransportError, reportsDeadlineExceeded, statusError } from './classify.js';
import { ACCEPT_ENCODING, BodyCollector, parseJson } from './decode.js';
import {
  HttpDeadlineExceededError,
  HttpDependencyError,
  isHttpDependencyError,
  type HttpCallInfo,
} from './errors.js';
import { DependencyEvents, observablePolicies, type HttpDependencyEvent } from './events.js';
import { IDEMPOTENCY_KEY_HEADER, mayRepeat } from './idempotency.js';
import { resolveOptions, type HttpDependencyOptions, type ResolvedOptions } from './options.js';
import { buildQuery, type Query, type QueryValue } from './query.js';

export type { QueryValue };

export interface HttpRequestOptions {
  /** Default `'GET'`. Case-insensitive. */
  method?: string;
  /** Path under the base URL, starting with `/`. It may hold a query string already. */
  path: string;
  /** Added to the query string; `undefined` values are skipped, arrays repeat the key. */
  query?: Query;
  /** Request headers (names case-insensitive); `undefined` values are skipped. */
  headers?: Readonly<Record<string, string | undefined>>;
  /** A value sent as JSON (`content-type: application/json`). Not with `body`. */
  json?: unknown;
  /** A raw body. Streams are not accepted: a retry must be able to send the body again. */
  body?: string | Uint8Array;
  /**
   * Sent as `Idempotency-Key` on every attempt; it makes a POST or PATCH retryable. A key given
   * in `headers` works the same way.
   */
  idempotencyKey?: string;
  /** The deadline for this call. Default: the ambient deadline (`currentDeadline()`), if any. */
  deadline?: Deadline;
  /**
   * Cancels the call (the promise rejects with `CancelledError`, the socket is closed). A core
   * `Scope` works too (a composition part's `ctx.cancel`): linked by a callback, with no
   * AbortController or event listener.
   */
  signal?: AbortSignal | Scope;
  /**
   * How to decode the body: `'json'` (default; an empty body is `undefined`), `'text'` (UTF-8),
   * `'buffer'`, or `'none'` (read and discard).
   */
  expect?: 'json' | 'text' | 'buffer' | 'none';
  /** Overrides the dependency's `acceptStatus` for this call. */
  acceptStatus?: (status: number) => boolean;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: T;
  /** The whole call, retries and their delays included, in ms. */
  durationMs: number;
  /** How many attempts the call took (1 when the first succeeded). */
  attempts: number;
}

type Headers = Record<string, string>;
type Expect = 'json' | 'text' | 'buffer' | 'none';
type JsonCallOptions = Omit<HttpRequestOptions, 'path' | 'method' | 'expect' | 'json' | 'body'>;

const NO_OPTIONS: JsonCallOptions = Object.freeze({});

/** One call's fixed parts, prepared once and shared by its attempts. */
class Call {
  attempts = 0;
  status: number | undefined = undefined;
  constructor(
    readonly method: string,
    /** Path without the query string, for errors and events. */
    readonly path: string,
    /** Path with base path and query string, as sent. */
    readonly target: string,
    /** Shared with other calls when nothing is added per call: then never modified. */
    readonly headers: Readonly<Headers>,
    readonly body: string | Uint8Array | undefined,
    readonly expect: Expect,
    readonly acceptStatus: (status: number) => boolean,
    readonly mayRetry: boolean,
    readonly startedAt: number,
    /**
     * `headers` is this call's own copy and goes to our own Pool: each attempt writes its budget
     * into it instead of copying it again. The Pool reads it when the attempt gets a connection;
     * an attempt still queued for one when a later attempt (a hedge) writes tells the callee the
     * later, smaller budget, which is still true of it.
     */
    readonly ownHeaders: boolean,
  ) {}
}

export class HttpDependency {
  readonly name: string;
  /** The policies requests run under (inspect or subscribe to them, e.g. the breaker). */
  readonly pipeline: Pipeline<unknown>;
  /** `pipeline` composed once, for calls that run it without a promise of its own. */
  private readonly step: Step;
  /** Subscribe to this dependency's events (see {@link HttpDependencyEvent}). */
  readonly onEvent: Subscribe<HttpDependencyEvent>;
  private readonly options: ResolvedOptions;
  private readonly dispatcher: Dispatcher;
  private readonly events: DependencyEvents;
  private readonly clock: Clock;
  /** What every attempt needs, in one object shared by the dependency's attempts. */
  private readonly wire: Wire;
  private readonly ownsDispatcher: boolean;
  /** Request headers of a call that adds none of its own, by `expect` (shared, never modified). */
  private readonly jsonHeaders: Readonly<Headers>;
  private readonly otherHeaders: Readonly<Headers>;
  private closed = false;

  constructor(options: HttpDependencyOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.name = o.name;
    this.clock = o.clock;
    this.pipeline = pipeline(...o.policies);
    this.step = this.pipeline.compose(invoke);
    this.events = new DependencyEvents(o.name, observablePolicies(o.policies));
    this.onEvent = this.events.subscribe;
    this.jsonHeaders = Object.freeze({
      'accept-encoding': ACCEPT_ENCODING,
      accept: 'application/json',
      ...o.defaultHeaders,
    });
    this.otherHeaders = Object.freeze({ 'accept-encoding': ACCEPT_ENCODING, ...o.defaultHeaders });
    if (o.dispatcher !== undefined) {
      this.dispatcher = o.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Pool(o.origin, {
        connections: o.connections,
        connect: { timeout: o.connectTimeoutMs },
        keepAliveTimeout: o.keepAliveTimeoutMs,
        // Our limits apply per request; undici's own defaults (300 s) would only hide them.
        headersTimeout: o.firstByteTimeoutMs,
        bodyTimeout: o.stallTimeoutMs,
      });
      this.ownsDispatcher = true;
    }
    this.wire = {
      options: o,
      dispatcher: this.dispatcher,
      emitter: this.events.emitter,
      clock: o.clock,
    };
  }

  /**
   * Sends a request through the policies. Resolves with the decoded response when the status is
   * accepted; rejects with an `HttpDependencyError` (or a core error: deadline, cancellation,
   * circuit open). When retrying stops, the last attempt's own error is thrown (its `attempt`
   * says how many attempts ran) rather than core's `RetriesExhaustedError` wrapper, so callers
   * and fallbacks see what actually went wrong.
   */
  request<T = unknown>(options: HttpRequestOptions): Promise<HttpResponse<T>> {
    if (options === null || typeof options !== 'object') {
      return Promise.reject(
        new InvalidOptionsError(
          `${this.name}.request: expected an options object such as { path: '/users/42' }`,
        ),
      );
    }
    return this.call(
      options,
      options.path,
      options.method,
      options.expect ?? 'json',
      options.json,
      options.body,
      false,
    ) as Promise<HttpResponse<T>>;
  }

  /** GET a JSON document: the parsed body of a 2xx response, or a classified error. */
  getJson<T = unknown>(path: string, options: JsonCallOptions = NO_OPTIONS): Promise<T> {
    return this.call(options, path, 'GET', 'json', undefined, undefined, true) as Promise<T>;
  }

  /** POST a JSON value and parse the JSON answer. Pass `idempotencyKey` to make it retryable. */
  postJson<T = unknown>(
    path: string,
    json: unknown,
    options: JsonCallOptions = NO_OPTIONS,
  ): Promise<T> {
    return this.call(options, path, 'POST', 'json', json, undefined, true) as Promise<T>;
  }

  /**
   * Stops accepting requests, lets in-flight ones finish, and closes the dependency's sockets.
   * A dispatcher passed in the options is left open (it belongs to the caller). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  // ---- one call ---------------------------------------------------------------------------

  /**
   * One call: prepared once, run through the pipeline. `bodyOnly` resolves with the body alone
   * (getJson, postJson), without a promise of its own on top.
   */
  private call(
    options: JsonCallOptions,
    rawPath: unknown,
    method: string | undefined,
    expect: Expect,
    json: unknown,
    body: string | Uint8Array | undefined,
    bodyOnly: boolean,
  ): Promise<unknown> {
    const o = this.options;
    if (options === null || typeof options !== 'object') options = NO_OPTIONS;
    // One read of the ambient context for both the deadline and the request id.
    const needsDeadline = options.deadline === undefined;
    const needsId = o.getRequestId === currentRequestId;
    const ambient = needsDeadline || needsId ? currentContext() : undefined;
    let call: Call;
    try {
      call = this.prepare(options, rawPath, method, expect, json, body, ambient?.requestId);
    } catch (error) {
      return Promise.reject(error);
    }
    const deadline = needsDeadline ? ambient?.deadline : options.deadline;
    const signal = options.signal;
    let execute: ExecuteOptions | undefined;
    if (deadline !== undefined || signal !== undefined) {
      execute = {};
      if (deadline !== undefined) execute.deadline = deadline;
      if (signal !== undefined) execute.signal = signal;
    }
    const work = (ctx: ExecutionContext): Promise<HttpResponse> => this.attempt(call, ctx);
    if (this.events.emitter.size === 0) {
      // Nobody observes the call: its outcome goes straight to the caller's promise (one promise
      // per call, not a second one from a `.then` on the pipeline's).
      const step = this.step;
      return new Promise((resolve, reject) => {
        runStepInto(step, work, execute, new CallOutcome(resolve, reject, bodyOnly));
      });
    }
    // Observed: the call's event is emitted from a reaction of the caller's, so listeners run in
    // the caller's async context whatever settled the call (a timeout's timer, say).
    return this.pipeline.execute(work, execute).then(
      (response: unknown) => {
        this.emitCall(call, undefined);
        return bodyOnly ? (response as HttpResponse).body : response;
      },
      (error: unknown) => {
        const surfaced = unwrapRetryError(error);
        this.emitCall(call, surfaced);
        throw surfaced;
      },
    );
  }

  private prepare(
    options: JsonCallOptions,
    rawPath: unknown,
    given: string | undefined,
    expect: Expect,
    json: unknown,
    rawBody: string | Uint8Array | undefined,
    ambientRequestId: string | undefined,
  ): Call {
    const o = this.options;
    // GET (getJson, the default) skips the case folding and the check.
    const method = given === undefined || given === 'GET' ? 'GET' : given.toUpperCase();
    if (method !== 'GET' && method !== 'POST' && !/^[A-Z]+$/.test(method)) {
      throw new InvalidOptionsError(
        `${o.name}.request: method must be an HTTP method such as 'GET', got ${JSON.stringify(given)}`,
      );
    }
    if (typeof rawPath !== 'string' || !rawPath.startsWith('/')) {
      throw new InvalidOptionsError(
        `${o.name}.request: path must be a string starting with '/', relative to baseUrl (e.g. '/users/42'), got ${JSON.stringify(rawPath)}`,
      );
    }
    if (json !== undefined && rawBody !== undefined) {
      throw new InvalidOptionsError(`${o.name}.request: pass either json or body, not both`);
    }
    const queryAt = rawPath.indexOf('?');
    const path = o.basePath + (queryAt === -1 ? rawPath : rawPath.slice(0, queryAt));
    let target = o.basePath + rawPath;
    const query = options.query === undefined ? '' : buildQuery(options.query);
    if (query !== '') target += (queryAt === -1 ? '?' : '&') + query;

    // The shared headers, copied only when this call adds some.
    const base = expect === 'json' ? this.jsonHeaders : this.otherHeaders;
    let headers: Headers | undefined;
    if (options.headers !== undefined) {
      headers = copyHeaders(base);
      for (const [name, value] of Object.entries(options.headers)) {
        if (value !== undefined) headers[name.toLowerCase()] = value;
      }
    }
    if (options.idempotencyKey !== undefined) {
      (headers ??= copyHeaders(base))[IDEMPOTENCY_KEY_HEADER] = options.idempotencyKey;
    }
    const getRequestId = o.getRequestId;
    if (getRequestId !== undefined && (headers ?? base)[o.requestIdHeader] === undefined) {
      const id = getRequestId === currentRequestId ? ambientRequestId : getRequestId();
      if (id !== undefined && id !== '') (headers ??= copyHeaders(base))[o.requestIdHeader] = id;
    }
    let body = rawBody;
    if (json !== undefined) {
      body = JSON.stringify(json);
      (headers ??= copyHeaders(base))['content-type'] ??= 'application/json';
    }
    // Our own Pool never modifies the headers it is given; a dispatcher of the caller's (with
    // interceptors, say) gets an object of its own, as it always did.
    const sent = headers ?? (this.ownsDispatcher ? base : { ...base });
    return new Call(
      method,
      path,
      target,
      sent,
      body,
      expect,
      options.acceptStatus ?? o.acceptStatus,
      mayRepeat(method, sent[IDEMPOTENCY_KEY_HEADER]),
      this.clock.now(),
      headers !== undefined && this.ownsDispatcher,
    );
  }

  /** One attempt: the work the pipeline runs. */
  private attempt(call: Call, ctx: ExecutionContext): Promise<HttpResponse> {
    const o = this.options;
    call.attempts = ctx.attempt;
    call.status = undefined;
    if (this.closed) {
      throw new HttpDependencyError(
        'DEPENDENCY_CLOSED',
        infoOf(o.name, call, ctx.attempt),
        'not sent: the dependency was closed',
        { retryable: false },
      );
    }
    let headers = call.headers;
    const deadline = ctx.deadline;
    if (deadline !== undefined) {
      const left = deadline.remainingMs();
      if (left < o.minBudgetMs || left <= 0) {
        const info = infoOf(o.name, call, ctx.attempt);
        const emitter = this.events.emitter;
        if (emitter.size > 0) {
          emitter.emit({
            type: 'http.not_sent',
            ...fields(info),
            attempt: ctx.attempt,
            remainingMs: left,
          });
        }
        throw new HttpDeadlineExceededError(info, left, o.minBudgetMs);
      }
      // Each attempt tells the callee what is left now, not what the call started with (rounded
      // down, so the callee never believes it has more time than we do).
      if (o.propagateDeadline) {
        headers = call.ownHeaders
          ? setBudget(headers, left)
          : setBudget(copyHeaders(headers), left);
      }
    }
    // A call nothing can abort (no deadline, no caller signal, no timeout policy) gets no abort
    // listener at all. Otherwise the attempt listens to its scope as an AbortSource (not
    // `ctx.signal`: reading that would create an AbortController per attempt).
    const source = ctx.cancellable ? abortSourceOf(ctx) : undefined;
    // The first attempt starts when the call does (a clock read saved per call; the policies in
    // between take well under a microsecond).
    const started = ctx.attempt === 1 ? call.startedAt : this.clock.now();
    return new Exchange(this.wire, call, ctx.attempt, deadline, source, started).send(headers);
  }

  private emitCall(call: Call, error: unknown): void {
    const emitter = this.events.emitter;
    if (emitter.size === 0) return;
    const attempts = Math.max(call.attempts, 1);
    emitter.emit({
      type: 'http.call',
      dependency: this.name,
      method: call.method,
      path: call.path,
      outcome: error === undefined ? 'ok' : 'error',
      status: call.status,
      code: error === undefined ? undefined : isBulwarkError(error) ? error.code : 'UNKNOWN',
      durationMs: this.clock.now() - call.startedAt,
      attempts,
      retries: attempts - 1,
    });
  }
}

// ---- one attempt on the wire ------------------------------------------------------------------

/** A dependency's parts its attempts use. */
interface Wire {
  readonly options: ResolvedOptions;
  readonly dispatcher: Dispatcher;
  readonly emitter: DependencyEvents['emitter'];
  readonly clock: Clock;
}

/** Settles an unobserved call's promise from its pipeline's outcome. */
class CallOutcome implements Sink<HttpResponse> {
  constructor(
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (error: unknown) => void,
    private readonly bodyOnly: boolean,
  ) {}
  ok(response: HttpResponse): void {
    this.resolve(this.bodyOnly ? response.body : response);
  }
  fail(error: unknown): void {
    this.reject(unwrapRetryError(error));
  }
}

/** Passed to undici when we stop reading a response ourselves (the attempt is settled already). */
const STOPPED = new Error('response not read further');

// `new Promise(executor)` with one shared executor that parks resolve and reject here, so an
// attempt allocates no executor closure; they are picked up right after the constructor returns.
let parkedResolve: (value: HttpResponse) => void = () => {};
let parkedReject: (error: unknown) => void = () => {};
function park(resolve: (value: HttpResponse) => void, reject: (error: unknown) => void): void {
  parkedResolve = resolve;
  parkedReject = reject;
}

/**
 * One attempt: undici's dispatch handler (the documented `onRequestStart` / `onResponseStart` /
 * `onResponseData` / `onResponseEnd` / `onResponseError` API of undici 7), the body collector
 * with the size and time limits, and the `HttpCallInfo` its errors name, in one object.
 *
 * The handler's callbacks run in the socket's async context, not the caller's. Nothing in them
 * reads the ambient context (the status check calls `acceptStatus`, which should be a pure
 * function of the status); the events, whose listeners may log with the ambient request id, are
 * emitted from a reaction on the attempt's promise, which runs in the caller's context, before
 * the policies see the outcome.
 */
class Exchange extends BodyCollector implements Dispatcher.DispatchHandler, HttpCallInfo {
  declare readonly dependency: string;
  declare readonly method: string;
  declare readonly path: string;
  declare readonly attempt: number;
  declare private readonly owner: Wire;
  declare private readonly call: Call;
  declare private readonly deadline: Deadline | undefined;
  declare private readonly source: AbortSource | undefined;
  declare private readonly started: number;
  declare private onAbort: (() => void) | undefined;
  declare private controller: Dispatcher.DispatchController | null;
  declare private status: number | undefined;
  declare private headers: Record<string, string | string[] | undefined> | undefined;
  declare private accepted: boolean;
  declare private settled: boolean;
  /** Someone listened to the dependency's events when the attempt started. */
  declare private observed: boolean;
  /** For the events: the outcome (`ok` or an error code), its retryable flag and duration. */
  declare private outcome: string;
  declare private retryable: boolean;
  declare private durationMs: number;
  declare private resolve: (value: HttpResponse) => void;
  declare private reject: (error: unknown) => void;

  constructor(
    owner: Wire,
    call: Call,
    attempt: number,
    deadline: Deadline | undefined,
    source: AbortSource | undefined,
    started: number,
  ) {
    super();
    const o = owner.options;
    this.dependency = o.name;
    this.method = call.method;
    this.path = call.path;
    this.attempt = attempt;
    this.owner = owner;
    this.call = call;
    this.deadline = deadline;
    this.source = source;
    this.started = started;
    this.onAbort = undefined;
    this.controller = null;
    this.status = undefined;
    this.headers = undefined;
    this.accepted = false;
    this.settled = false;
    this.observed = false;
    this.outcome = 'ok';
    this.retryable = false;
    this.durationMs = 0;
    this.resetBody(o.maxResponseBytes, o.bodyTimeoutMs, owner.clock, this, call.mayRetry);
  }

  send(headers: Readonly<Headers>): Promise<HttpResponse> {
    const promise = new Promise<HttpResponse>(park);
    this.resolve = parkedResolve;
    this.reject = parkedReject;
    const owner = this.owner;
    if (owner.emitter.size > 0) {
      this.observed = true;
      // Observed: emit this attempt's event from the caller's async context (see the class doc).
      // Registered before the pipeline's own reaction, so the event comes before the policies'.
      const emit = (): void => this.emitOutcome();
      promise.then(emit, emit);
    }
    const source = this.source;
    if (source !== undefined) {
      if (source.aborted) {
        this.fail(source.reason);
        return promise;
      }
      // A Scope (what the pipeline gives every attempt) takes the attempt itself as its listener.
      // Not a closure kept in a field of the attempt (`this.onAbort = () => this.aborted()`): on
      // Node 20 that made V8's young-generation collections keep most of every response alive
      // and promote it (a naive handler on this client: 1,720 KB promoted and 7.8 ms of pause per
      // scavenge, against 402 KB and 3.0 ms this way; bench/src/gc-trace-summary.mjs).
      // bench/src/closure-field-gc.mjs shows it without the client; a bound function, which an
      // AbortSignal (a foreign execution context's) gets, costs nothing there either.
      if (source instanceof Scope) {
        source.add(this);
      } else {
        this.onAbort = this.aborted.bind(this);
        source.addEventListener('abort', this.onAbort);
      }
    }
    const o = owner.options;
    const call = this.call;
    try {
      // undici's own dispatchers report their errors through onResponseError; this catches
      // another Dispatcher that throws.
      owner.dispatcher.dispatch(
        {
          origin: o.origin,
          path: call.target,
          method: call.method,
          headers,
          body: call.body ?? null,
          headersTimeout: o.firstByteTimeoutMs,
          bodyTimeout: o.stallTimeoutMs,
        },
        this,
      );
    } catch (error) {
      this.fail(error);
    }
    return promise;
  }

  // ---- undici's handler API ----------------------------------------------------------------

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Aborted while queued for a connection: stop before anything is written.
    if (this.settled) controller.abort((this.source?.reason ?? STOPPED) as Error);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200 || this.settled) return; // 1xx: informational, the answer follows
    this.controller = controller;
    this.status = statusCode;
    this.call.status = statusCode;
    this.headers = headers;
    let accepted: boolean;
    try {
      accepted = this.call.acceptStatus(statusCode);
    } catch (error) {
      this.stopBody();
      this.settle(error);
      return;
    }
    this.accepted = accepted;
    // An unaccepted status keeps only an excerpt of its body for the error.
    this.beginBody(headers, !accepted);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.bodyChunk(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.bodyEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.settled) return;
    if (this.headers !== undefined) this.bodyError(error);
    else this.fail(error);
  }

  // ---- the body collector's outcomes ---------------------------------------------------------

  protected bodyDone(buffer: Buffer): void {
    if (!this.accepted) {
      this.statusFailure(buffer.length > 0 ? buffer.toString('utf8') : undefined);
      return;
    }
    const call = this.call;
    let value: unknown;
    try {
      value = decodeAs(call.expect, buffer, this, this.status as number);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.settle(undefined, {
      status: this.status as number,
      headers: this.headers as Record<string, string | string[] | undefined>,
      body: value,
      // Identity bodies end in the same tick as the clock read at their end (see bodyEnd).
      durationMs: (this.bodyDecoded ? this.owner.clock.now() : this.bodyNow) - call.startedAt,
      attempts: this.attempt,
    });
  }

  protected bodyFailed(error: unknown): void {
    // A body we could not read does not change the news of an unaccepted status.
    if (!this.accepted && !(this.source?.aborted ?? false)) this.statusFailure(undefined);
    else this.fail(error);
  }

  protected stopBody(): void {
    this.controller?.abort(STOPPED);
  }

  protected resumeBody(): void {
    this.controller?.resume();
  }

  // ---- settling ------------------------------------------------------------------------------

  /** The attempt's scope aborted (it listens as an `AbortListener`, with no closure). */
  abort(): void {
    this.aborted();
  }

  /** The deadline, a timeout policy or the caller stopped the attempt. */
  private aborted(): void {
    if (this.settled) return;
    const reason = (this.source as AbortSource).reason;
    // Settle first: undici reports the abort back through onResponseError, which then ignores it.
    this.fail(reason);
    this.controller?.abort(reason as Error);
  }

  /** The error an attempt ends with when it got no usable answer (or could not read it). */
  private fail(error: unknown): void {
    let final: unknown;
    const source = this.source;
    if (source !== undefined && source.aborted) {
      // The deadline, a timeout policy or the caller stopped the attempt: their reason (a core
      // error) is the outcome, not the socket error undici saw as a consequence.
      final = source.reason;
    } else if (isBulwarkError(error)) {
      final = error;
    } else {
      final = classifyTransportError(error, this, this.call.mayRetry);
    }
    this.settle(final);
  }

  /** A status the caller does not accept, with the excerpt of its body. */
  private statusFailure(excerpt: string | undefined): void {
    const o = this.owner.options;
    const status = this.status as number;
    const headers = this.headers as Record<string, string | string[] | undefined>;
    const deadline = this.deadline;
    if (
      deadline !== undefined &&
      o.propagateDeadline &&
      reportsDeadlineExceeded(status, headers, excerpt)
    ) {
      // The callee ran out of the budget we sent: our deadline, not a failing dependency.
      this.settle(
        new HttpDeadlineExceededError(this, deadline.remainingMs(), o.minBudgetMs, {
          downstream: true,
        }),
      );
      return;
    }
    this.settle(
      statusError(status, headers, this, this.call.mayRetry, this.owner.clock.wallNow(), excerpt),
    );
  }

  private settle(error: unknown, response?: HttpResponse): void {
    if (this.settled) return;
    this.settled = true;
    this.bodySettled = true;
    const source = this.source;
    if (source instanceof Scope) {
      source.remove(this);
    } else {
      const onAbort = this.onAbort;
      if (onAbort !== undefined) {
        this.onAbort = undefined;
        (source as AbortSource).removeEventListener('abort', onAbort);
      }
    }
    if (response !== undefined) {
      if (this.observed) this.durationMs = this.owner.clock.now() - this.started;
      this.resolve(response);
      return;
    }
    this.outcome = isBulwarkError(error) ? error.code : 'UNKNOWN';
    this.retryable = isBulwarkError(error) ? error.retryable : false;
    this.durationMs = this.owner.clock.now() - this.started;
    this.reject(error);
  }

  /** This attempt's event (only while someone listens). */
  private emitOutcome(): void {
    const emitter = this.owner.emitter;
    if (emitter.size === 0) return;
    const status = this.status;
    if (status !== undefined) {
      emitter.emit({
        type: 'http.response',
        dependency: this.dependency,
        method: this.method,
        path: this.path,
        status,
        durationMs: this.durationMs,
        attempt: this.attempt,
        outcome: this.outcome,
      });
    } else {
      emitter.emit({
        type: 'http.failure',
        dependency: this.dependency,
        method: this.method,
        path: this.path,
        code: this.outcome,
        retryable: this.retryable,
        durationMs: this.durationMs,
        attempt: this.attempt,
      });
    }
  }
}

type Info = HttpCallInfo;

function infoOf(dependency: string, call: Call, attempt: number): Info {
  return { dependency, method: call.method, path: call.path, attempt };
}

function fields(info: Info): { dependency: string; method: string; path: string } {
  return { dependency: info.dependency, method: info.method, path: info.path };
}

/**
 * A copy to add headers to. Not `{ ...headers }`: on Node 20 (V8 11.3) adding a property to an
 * object made by spread takes V8's slow path, over ten times what `Object.assign` costs, and
 * every call adds at least the request id and the budget headers.
 */
function copyHeaders(headers: Readonly<Headers>): Headers {
  return Object.assign({}, headers);
}

/** Writes the remaining budget into `headers`, in the three headers callees read. */
function setBudget(headers: Headers, leftMs: number): Headers {
  const ms = String(Math.floor(leftMs));
  headers[GRPC_TIMEOUT_HEADER] = formatGrpcTimeout(leftMs);
  headers[ENVOY_TIMEOUT_HEADER] = ms;
  headers[BULWARK_BUDGET_HEADER] = ms;
  return headers;
}

function decodeAs(expect: Expect, buffer: Buffer, info: Info, status: number): unknown {
  switch (expect) {
    case 'json':
      return parseJson(buffer, info, status);
    case 'text':
      return buffer.toString('utf8');
    case 'buffer':
      return buffer;
    case 'none':
      return undefined;
  }
}

/**
 * Core's retry wraps the last error in `RetriesExhaustedError` / `RetryBudgetExhaustedError`.
 * When that last error is ours, surface it: its code says what failed and `attempt` how often.
 */
function unwrapRetryError(error: unknown): unknown {
  if (
    isBulwarkError(error) &&
    (error.code === 'RETRIES_EXHAUSTED' || error.code === 'RETRY_BUDGET_EXHAUSTED') &&
    isHttpDependencyError(error.cause)
  ) {
    return error.cause;
  }
  return error;
}

/** Creates a named HTTP dependency. See {@link HttpDependencyOptions} for the defaults. */
export function httpDependency(options: HttpDependencyOptions): HttpDependency {
  return new HttpDependency(options);
}
