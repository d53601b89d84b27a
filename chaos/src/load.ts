/**
 * A bounded closed-loop load generator: `concurrency` workers send `requests` GETs in total and
 * stop by themselves. Every request has a hard client-side cap (`hangAfterMs`): an answer that
 * takes longer is recorded as a hang, so a scenario always ends.
 */
import { InvalidOptionsError } from '@bulwark/core';

export interface LoadOptions {
  /** Base URL of the gateway, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** The path of request `i` (0-based), e.g. a different user per request. */
  path: (i: number) => string;
  /** Requests in total. Default 200. */
  requests?: number;
  /** Requests in flight. Default 16. */
  concurrency?: number;
  /** A request still unanswered after this many ms is aborted and counted as a hang. Default 10_000. */
  hangAfterMs?: number;
  /** Sent with every request. Default none. */
  headers?: Record<string, string>;
}

export interface Sample {
  /** Index of the request. */
  i: number;
  path: string;
  /** HTTP status; 0 when there was no response (`failure` says why). */
  status: number;
  contentType: string;
  cacheControl: string | undefined;
  /** Parsed JSON body; undefined when the body was not JSON. */
  body: unknown;
  latencyMs: number;
  failure?: 'hang' | 'network';
  error?: string;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidOptionsError(`runLoad: ${name} must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** Sends one GET and records what came back, never throwing. */
export async function probe(
  baseUrl: string,
  path: string,
  hangAfterMs: number,
  headers: Record<string, string> = {},
  i = 0,
): Promise<Sample> {
  const started = performance.now();
  const signal = AbortSignal.timeout(hangAfterMs);
  try {
    const res = await fetch(new URL(path, baseUrl), { headers, signal });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return {
      i,
      path,
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      cacheControl: res.headers.get('cache-control') ?? undefined,
      body,
      latencyMs: performance.now() - started,
    };
  } catch (error) {
    const hang = signal.aborted;
    return {
      i,
      path,
      status: 0,
      contentType: '',
      cacheControl: undefined,
      body: undefined,
      latencyMs: performance.now() - started,
      failure: hang ? 'hang' : 'network',
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    };
  }
}

/** Runs the load and returns one sample per request, in request order. */
export async function runLoad(options: LoadOptions): Promise<Sample[]> {
  const requests = positiveInt('requests', options.requests ?? 200);
  const concurrency = Math.min(requests, positiveInt('concurrency', options.concurrency ?? 16));
  const hangAfterMs = positiveInt('hangAfterMs', options.hangAfterMs ?? 10_000);
  const samples: Sample[] = new Array<Sample>(requests);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < requests; i = next++) {
      samples[i] = await probe(options.baseUrl, options.path(i), hangAfterMs, options.headers, i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return samples;
}
