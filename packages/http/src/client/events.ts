/**
 * Events of one dependency, for metrics and logs. Nothing is built unless someone listens, and the
 * dependency subscribes to its policies' events (retry, circuit breaker, ...) only while it has a
 * listener itself, so an unobserved dependency costs the policies nothing either.
 */
import { Emitter, type Disposable, type Subscribe } from '@bulwark/core';

interface CallFields {
  /** The dependency's name. */
  dependency: string;
  /** Upper-case method. */
  method: string;
  /** The request path without its query string. */
  path: string;
}

/** An attempt got a response (status line and headers) and its body was handled. */
export interface HttpResponseEvent extends CallFields {
  type: 'http.response';
  status: number;
  /** From the start of the attempt to the end of the body (or the error), in ms. */
  durationMs: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** `ok`, or the code of the error the response became (e.g. `UPSTREAM_5XX`, `BAD_JSON`). */
  outcome: string;
}

/** An attempt failed without a usable response (connect, reset, timeout, abort). */
export interface HttpFailureEvent extends CallFields {
  type: 'http.failure';
  code: string;
  retryable: boolean;
  durationMs: number;
  attempt: number;
}

/** An attempt was not sent because the deadline had less than `minBudgetMs` left. */
export interface HttpNotSentEvent extends CallFields {
  type: 'http.not_sent';
  attempt: number;
  remainingMs: number;
}

/** A call finished, after all its attempts. */
export interface HttpCallEvent extends CallFields {
  type: 'http.call';
  outcome: 'ok' | 'error';
  /** The final status, when the last attempt got a response. */
  status: number | undefined;
  /** The error code when `outcome` is `error`. */
  code: string | undefined;
  /** Whole call, retries and their delays included, in ms. */
  durationMs: number;
  attempts: number;
  /** `attempts - 1`. */
  retries: number;
}

/**
 * An event of one of the dependency's policies (e.g. `breaker.opened`, `retry.scheduled`),
 * tagged with the dependency's name.
 */
export interface HttpPolicyEvent {
  type: 'http.policy';
  dependency: string;
  event: { readonly type: string; readonly policy?: string };
}

export type HttpDependencyEvent =
  HttpResponseEvent | HttpFailureEvent | HttpNotSentEvent | HttpCallEvent | HttpPolicyEvent;

interface Observable {
  onEvent: Subscribe<{ readonly type: string }>;
}

/** Every policy with `onEvent` in a policy list, looking inside nested pipelines. */
export function observablePolicies(policies: readonly unknown[]): Observable[] {
  const found: Observable[] = [];
  const visit = (policy: unknown) => {
    if (typeof policy !== 'object' || policy === null) return;
    const nested = (policy as { policies?: unknown }).policies;
    if (Array.isArray(nested)) nested.forEach(visit);
    if (typeof (policy as { onEvent?: unknown }).onEvent === 'function') {
      found.push(policy as Observable);
    }
  };
  policies.forEach(visit);
  return found;
}

/** The dependency's emitter, which forwards policy events while it has listeners. */
export class DependencyEvents {
  readonly emitter = new Emitter<HttpDependencyEvent>();
  private upstream: Disposable[] | undefined;

  constructor(
    private readonly dependency: string,
    private readonly policies: readonly Observable[],
  ) {}

  readonly subscribe: Subscribe<HttpDependencyEvent> = listener => {
    const inner = this.emitter.subscribe(listener);
    this.attach();
    return {
      dispose: () => {
        inner.dispose();
        if (this.emitter.size === 0) this.detach();
      },
    };
  };

  private attach(): void {
    if (this.upstream !== undefined) return;
    this.upstream = this.policies.map(policy =>
      policy.onEvent(event => {
        this.emitter.emit({ type: 'http.policy', dependency: this.dependency, event });
      }),
    );
  }

  private detach(): void {
    const upstream = this.upstream;
    this.upstream = undefined;
    upstream?.forEach(d => d.dispose());
  }
}
