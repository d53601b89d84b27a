/**
 * httpDependency: one named downstream service. Requests go through an undici keep-alive Pool,
 * under the call's deadline (given, or the ambient one from the inbound request), through the
 * dependency's policy pipeline (retry + circuit breaker by default), and come back as a decoded
 * response or as a classified `HttpDependencyError`.
 *
 * Per attempt: refuse to send when the deadline has less than `minBudgetMs` left; send what is left
 * as budget headers; pass the attempt's AbortSignal to undici so a deadline, an outer timeout or
 * the caller's signal closes the socket; read the body under size and time limits.
 */
import {
  abortSourceOf,
  type AbortSource,
  deadlineToHeaders,
  InvalidOptionsError,
  isBulwarkError,
  pipeline,
  type Clock,
  type Deadline,
  type ExecuteOptions,
  type ExecutionContext,
  type Pipeline,
  type Subscribe,
} from '@bulwark/core';
import { currentDeadline } from '@bulwark/core/ambient';
import { Pool, type Dispatcher } from 'undici';
import { classifyTransportError, reportsDeadlineExceeded, statusError } from './classify.js';
import { ACCEPT_ENCODING, parseJson, readBody, type BodyLimits } from './decode.js';
import {
  HttpDeadlineExceededError,
  HttpDependencyError,
  isHttpDependencyError,
  type HttpCallInfo,
} from './errors.js';
import { DependencyEvents, observablePolicies, type HttpDependencyEvent } from './events.js';
import { IDEMPOTENCY_KEY_HEADER, mayRepeat } from './idempotency.js';
import { resolveOptions, type HttpDependencyOptions, type ResolvedOptions } from './options.js';

export type QueryValue = string | number | boolean;

export interface HttpRequestOptions {
  /** Default `'GET'`. Case-insensitive. */
  method?: string;
  /** Path under the base URL, starting with `/`. It may hold a query string already. */
  path: string;
  /** Added to the query string; `undefined` values are skipped, arrays repeat the key. */
  query?: Readonly<Record<string, QueryValue | readonly QueryValue[] | undefined>>;
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
  /** Cancels the call (the promise rejects with `CancelledError`, the socket is closed). */
  signal?: AbortSignal;
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

const bodyOf = <T>(response: HttpResponse<T>): T => response.body;

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
    readonly headers: Headers,
    readonly body: string | Uint8Array | undefined,
    readonly expect: 'json' | 'text' | 'buffer' | 'none',
    readonly acceptStatus: (status: number) => boolean,
    readonly mayRetry: boolean,
    readonly startedAt: number,
  ) {}
}

export class HttpDependency {
  readonly name: string;
  /** The policies requests run under (inspect or subscribe to them, e.g. the breaker). */
  readonly pipeline: Pipeline<unknown>;
  /** Subscribe to this dependency's events (see {@link HttpDependencyEvent}). */
  readonly onEvent: Subscribe<HttpDependencyEvent>;
  private readonly options: ResolvedOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly events: DependencyEvents;
  private readonly clock: Clock;
  private closed = false;

  constructor(options: HttpDependencyOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.name = o.name;
    this.clock = o.clock;
    this.pipeline = pipeline(...o.policies);
    this.events = new DependencyEvents(o.name, observablePolicies(o.policies));
    this.onEvent = this.events.subscribe;
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
        bodyTimeout: o.bodyTimeoutMs,
      });
      this.ownsDispatcher = true;
    }
  }

  /**
   * Sends a request through the policies. Resolves with the decoded response when the status is
   * accepted; rejects with an `HttpDependencyError` (or a core error: deadline, cancellation,
   * circuit open). When retrying stops, the last attempt's own error is thrown (its `attempt`
   * says how many attempts ran) rather than core's `RetriesExhaustedError` wrapper, so callers
   * and fallbacks see what actually went wrong.
   */
  async request<T = unknown>(options: HttpRequestOptions): Promise<HttpResponse<T>> {
    const call = this.prepare(options);
    const deadline = options.deadline ?? currentDeadline();
    const execute: ExecuteOptions = {};
    if (deadline !== undefined) execute.deadline = deadline;
    if (options.signal !== undefined) execute.signal = options.signal;
    try {
      const response = (await this.pipeline.execute(
        ctx => this.attempt<T>(call, ctx),
        execute,
      )) as HttpResponse<T>;
      this.emitCall(call, undefined);
      return response;
    } catch (error) {
      const surfaced = unwrapRetryError(error);
      this.emitCall(call, surfaced);
      throw surfaced;
    }
  }

  /** GET a JSON document: the parsed body of a 2xx response, or a classified error. */
  getJson<T = unknown>(
    path: string,
    options: Omit<HttpRequestOptions, 'path' | 'method' | 'expect' | 'json' | 'body'> = {},
  ): Promise<T> {
    // Not `async`: one promise fewer per call (the async wrapper), which counts on a fan-out path.
    return this.request<T>({ ...options, path, method: 'GET', expect: 'json' }).then(bodyOf);
  }

  /** POST a JSON value and parse the JSON answer. Pass `idempotencyKey` to make it retryable. */
  async postJson<T = unknown>(
    path: string,
    json: unknown,
    options: Omit<HttpRequestOptions, 'path' | 'method' | 'expect' | 'json' | 'body'> = {},
  ): Promise<T> {
    return (await this.request<T>({ ...options, path, json, method: 'POST', expect: 'json' })).body;
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

  private prepare(options: HttpRequestOptions): Call {
    const o = this.options;
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionsError(
        `${o.name}.request: expected an options object such as { path: '/users/42' }`,
      );
    }
    // GET (getJson, the default) skips the case folding and the check.
    const given = options.method;
    const method = given === undefined || given === 'GET' ? 'GET' : given.toUpperCase();
    if (method !== 'GET' && !/^[A-Z]+$/.test(method)) {
      throw new InvalidOptionsError(
        `${o.name}.request: method must be an HTTP method such as 'GET', got ${JSON.stringify(options.method)}`,
      );
    }
    const rawPath = options.path as unknown;
    if (typeof rawPath !== 'string' || !rawPath.startsWith('/')) {
      throw new InvalidOptionsError(
        `${o.name}.request: path must be a string starting with '/', relative to baseUrl (e.g. '/users/42'), got ${JSON.stringify(rawPath)}`,
      );
    }
    if (options.json !== undefined && options.body !== undefined) {
      throw new InvalidOptionsError(`${o.name}.request: pass either json or body, not both`);
    }
    const queryAt = rawPath.indexOf('?');
    const path = o.basePath + (queryAt === -1 ? rawPath : rawPath.slice(0, queryAt));
    let target = o.basePath + rawPath;
    const query = options.query === undefined ? '' : buildQuery(options.query);
    if (query !== '') target += (queryAt === -1 ? '?' : '&') + query;

    const expect = options.expect ?? 'json';
    const headers: Headers = { 'accept-encoding': ACCEPT_ENCODING };
    if (expect === 'json') headers['accept'] = 'application/json';
    Object.assign(headers, o.defaultHeaders);
    if (options.headers !== undefined) {
      for (const [name, value] of Object.entries(options.headers)) {
        if (value !== undefined) headers[name.toLowerCase()] = value;
      }
    }
    if (options.idempotencyKey !== undefined)
      headers[IDEMPOTENCY_KEY_HEADER] = options.idempotencyKey;
    if (o.getRequestId !== undefined && headers[o.requestIdHeader] === undefined) {
      const id = o.getRequestId();
      if (id !== undefined && id !== '') headers[o.requestIdHeader] = id;
    }
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    return new Call(
      method,
      path,
      target,
      headers,
      body,
      expect,
      options.acceptStatus ?? o.acceptStatus,
      mayRepeat(method, headers[IDEMPOTENCY_KEY_HEADER]),
      this.clock.now(),
    );
  }

  /** One attempt: the work the pipeline runs. */
  private async attempt<T>(call: Call, ctx: ExecutionContext): Promise<HttpResponse<T>> {
    const o = this.options;
    const info: Info = {
      dependency: o.name,
      method: call.method,
      path: call.path,
      attempt: ctx.attempt,
    };
    call.attempts = ctx.attempt;
    call.status = undefined;
    if (this.closed) {
      throw new HttpDependencyError(
        'DEPENDENCY_CLOSED',
        info,
        'not sent: the dependency was closed',
        {
          retryable: false,
        },
      );
    }
    let headers = call.headers;
    const deadline = ctx.deadline;
    if (deadline !== undefined) {
      const left = deadline.remainingMs();
      if (left < o.minBudgetMs || left <= 0) {
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
      // Each attempt tells the callee what is left now, not what the call started with.
      if (o.propagateDeadline) headers = { ...headers, ...deadlineToHeaders(deadline) };
    }
    // A call nothing can abort (no deadline, no caller signal, no timeout policy) gets core's
    // shared never-firing signal; handing it to undici would only pile one listener per
    // in-flight request onto one object (Node warns past 10).
    // Otherwise undici gets the attempt's scope itself (an AbortSource), not `ctx.signal`: reading
    // that would create an AbortController per attempt, about 2 µs plus an EventTarget on Node 20.
    const signal = ctx.cancellable ? abortSourceOf(ctx) : undefined;
    // The first attempt starts when the call does (a clock read saved per call; the policies in
    // between take well under a microsecond).
    const started = ctx.attempt === 1 ? call.startedAt : this.clock.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher.request({
        origin: o.origin,
        path: call.target,
        method: call.method,
        headers,
        body: call.body ?? null,
        // undici takes any EventTarget-like object with aborted/reason (see core's AbortSource).
        signal: signal ?? null,
        headersTimeout: o.firstByteTimeoutMs,
        bodyTimeout: o.bodyTimeoutMs,
      });
    } catch (error) {
      throw this.failed(error, info, signal, started, call);
    }

    const status = response.statusCode;
    call.status = status;
    const limits: BodyLimits = {
      maxBytes: o.maxResponseBytes,
      bodyTimeoutMs: o.bodyTimeoutMs,
      startedAt: this.clock.now(),
      clock: this.clock,
      info,
      mayRetry: call.mayRetry,
    };
    if (!call.acceptStatus(status)) {
      let excerpt: string | undefined;
      try {
        const buffer = await readBody(response.body, response.headers, limits, true);
        excerpt = buffer.length > 0 ? buffer.toString('utf8') : undefined;
      } catch {
        // The status is the news; a body we could not read does not change it.
      }
      if (
        deadline !== undefined &&
        o.propagateDeadline &&
        reportsDeadlineExceeded(status, response.headers, excerpt)
      ) {
        // The callee ran out of the budget we sent: our deadline, not a failing dependency.
        const error = new HttpDeadlineExceededError(info, deadline.remainingMs(), o.minBudgetMs, {
          downstream: true,
        });
        this.emitResponse(info, status, started, error.code);
        throw error;
      }
      const error = statusError(
        status,
        response.headers,
        info,
        call.mayRetry,
        this.clock.wallNow(),
        excerpt,
      );
      this.emitResponse(info, status, started, error.code);
      throw error;
    }
    let value: unknown;
    try {
      const buffer = await readBody(response.body, response.headers, limits);
      value = decodeAs(call.expect, buffer, info, status);
    } catch (error) {
      const final = this.failed(error, info, signal, started, call);
      throw final;
    }
    this.emitResponse(info, status, started, 'ok');
    return {
      status,
      headers: response.headers,
      body: value as T,
      durationMs: this.clock.now() - call.startedAt,
      attempts: ctx.attempt,
    };
  }

  /** The error an attempt ends with, and its event. */
  private failed(
    error: unknown,
    info: HttpCallInfo,
    signal: AbortSource | undefined,
    started: number,
    call: Call,
  ): unknown {
    let final: unknown;
    if (signal?.aborted === true) {
      // The deadline, a timeout policy or the caller stopped the attempt: their reason (a core
      // error) is the outcome, not the socket error undici saw as a consequence.
      final = signal.reason;
    } else if (isBulwarkError(error)) {
      final = error;
    } else {
      final = classifyTransportError(error, info, call.mayRetry);
    }
    const emitter = this.events.emitter;
    if (emitter.size > 0) {
      const code = isBulwarkError(final) ? final.code : 'UNKNOWN';
      if (call.status !== undefined) {
        this.emitResponse(info, call.status, started, code);
      } else {
        emitter.emit({
          type: 'http.failure',
          ...fields(info),
          code,
          retryable: isBulwarkError(final) ? final.retryable : false,
          durationMs: this.clock.now() - started,
          attempt: info.attempt,
        });
      }
    }
    return final;
  }

  private emitResponse(info: Info, status: number, started: number, outcome: string): void {
    const emitter = this.events.emitter;
    if (emitter.size === 0) return;
    emitter.emit({
      type: 'http.response',
      ...fields(info),
      status,
      durationMs: this.clock.now() - started,
      attempt: info.attempt,
      outcome,
    });
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

type Info = HttpCallInfo;

function fields(info: Info): { dependency: string; method: string; path: string } {
  return { dependency: info.dependency, method: info.method, path: info.path };
}

function decodeAs(
  expect: 'json' | 'text' | 'buffer' | 'none',
  buffer: Buffer,
  info: Info,
  status: number,
): unknown {
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

function buildQuery(query: NonNullable<HttpRequestOptions['query']>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const item of value as readonly QueryValue[]) params.append(key, String(item));
    } else {
      params.append(key, String(value));
    }
  }
  return params.toString();
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
