/**
 * Reading a response body with limits that hold while it streams: at most `maxBytes` on the wire
 * AND after decoding (a 10 KiB gzip or brotli bomb can expand to gigabytes, so the decoded size is
 * what protects memory), and at most `bodyTimeoutMs` for the whole body. The body is aborted the
 * moment a limit is crossed; it is never buffered first and measured after.
 */
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Clock } from '@bulwark/core';
import { HttpDependencyError, type HttpCallInfo } from './errors.js';

/** Bytes of an error response kept for `HttpDependencyError.bodyExcerpt`. */
export const EXCERPT_BYTES = 1024;

export interface BodyLimits {
  /** Largest body accepted, raw and decoded, in bytes. */
  readonly maxBytes: number;
  /** Longest the whole body may take, in ms from `startedAt`. */
  readonly bodyTimeoutMs: number;
  /** When the response headers arrived (`clock.now()`). */
  readonly startedAt: number;
  readonly clock: Clock;
  readonly info: HttpCallInfo;
  /** Whether errors may be marked retryable (false for non-idempotent requests). */
  readonly mayRetry: boolean;
}

/** A decoder for a `content-encoding`, `null` for identity, `undefined` when unsupported. */
export function decoderFor(encoding: string | undefined): Transform | null | undefined {
  const value = encoding?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'identity') return null;
  switch (value) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

/** What `accept-encoding` announces: every encoding {@link decoderFor} can undo. */
export const ACCEPT_ENCODING = 'gzip, deflate, br';

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Reads the whole body (decoded). With `excerpt`, never fails on size: it keeps the first
 * {@link EXCERPT_BYTES} bytes, discards the rest up to `maxBytes`, then stops reading.
 * Transport errors (reset, undici's idle body timeout, abort) are rejected unchanged for the
 * caller to classify.
 */
export function readBody(
  body: Readable,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  limits: BodyLimits,
  excerpt = false,
): Promise<Buffer> {
  const encoding = firstHeader(headers['content-encoding']);
  const decoder = decoderFor(encoding);
  if (decoder === undefined) {
    discard(body);
    return Promise.reject(
      new HttpDependencyError(
        'BAD_CONTENT_ENCODING',
        limits.info,
        `answered with content-encoding ${JSON.stringify(encoding)}, which this client does not decode (it accepts ${ACCEPT_ENCODING})`,
        { retryable: false },
      ),
    );
  }
  const declared = Number(firstHeader(headers['content-length']));
  if (!excerpt && declared > limits.maxBytes) {
    discard(body);
    return Promise.reject(tooLarge(limits, `declares ${declared} bytes`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    new BodyReader(body, decoder, limits, excerpt, resolve, reject).start();
  });
}

/** Aborts a body we will not read (undici then drops the connection). */
function discard(body: Readable): void {
  // Destroying an undici body emits an AbortError; nobody else listens, so it must not go uncaught.
  body.on('error', ignore);
  body.destroy();
}

function ignore(): void {}

function tooLarge(limits: BodyLimits, what: string): HttpDependencyError {
  return new HttpDependencyError(
    'BODY_TOO_LARGE',
    limits.info,
    `response body ${what}, more than maxResponseBytes (${limits.maxBytes})`,
    { retryable: false },
  );
}

class BodyReader {
  private readonly chunks: Buffer[] = [];
  private rawBytes = 0;
  private decodedBytes = 0;
  private kept = 0;
  private done = false;

  constructor(
    private readonly body: Readable,
    private readonly decoder: Transform | null,
    private readonly limits: BodyLimits,
    private readonly excerpt: boolean,
    private readonly resolve: (value: Buffer) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  start(): void {
    const { body, decoder } = this;
    body.on('error', error => this.fail(error));
    if (decoder === null) {
      body.on('data', (chunk: Buffer) => {
        if (this.raw(chunk)) this.decoded(chunk);
      });
      body.on('end', () => this.finish());
      return;
    }
    body.on('data', (chunk: Buffer) => {
      // Backpressure: a decoder producing far more than it receives must not queue unboundedly.
      if (this.raw(chunk) && !decoder.write(chunk)) body.pause();
    });
    decoder.on('drain', () => body.resume());
    body.on('end', () => decoder.end());
    decoder.on('data', (chunk: Buffer) => this.decoded(chunk));
    decoder.on('end', () => this.finish());
    decoder.on('error', (error: Error) =>
      this.fail(
        new HttpDependencyError(
          'BAD_CONTENT_ENCODING',
          this.limits.info,
          `answered with a body that does not decode as its content-encoding: ${error.message}`,
          { cause: error, retryable: false },
        ),
      ),
    );
  }

  /** Counts wire bytes; false once reading stopped. */
  private raw(chunk: Buffer): boolean {
    if (this.done) return false;
    this.rawBytes += chunk.length;
    if (this.rawBytes > this.limits.maxBytes) {
      // An identity error body: keep its start before we stop reading.
      if (this.excerpt && this.decoder === null) this.keep(chunk);
      this.overLimit(`exceeds ${this.limits.maxBytes} bytes on the wire`);
      return false;
    }
    const { clock, startedAt, bodyTimeoutMs } = this.limits;
    // One clock read per chunk instead of a timer per request: a body that trickles in is caught
    // at the first chunk past the limit, and a body that stalls is caught by undici's idle timeout.
    if (clock.now() - startedAt > bodyTimeoutMs) {
      this.fail(
        new HttpDependencyError(
          'BODY_TIMEOUT',
          this.limits.info,
          `response body took longer than bodyTimeoutMs (${bodyTimeoutMs} ms)`,
          { retryable: this.limits.mayRetry },
        ),
      );
      return false;
    }
    return true;
  }

  private decoded(chunk: Buffer): void {
    if (this.done) return;
    this.decodedBytes += chunk.length;
    if (this.excerpt) this.keep(chunk);
    if (this.decodedBytes > this.limits.maxBytes) {
      this.overLimit(`exceeds ${this.limits.maxBytes} bytes after decoding`);
      return;
    }
    if (!this.excerpt) this.chunks.push(chunk);
  }

  /** Excerpt mode: keeps up to EXCERPT_BYTES in total. */
  private keep(chunk: Buffer): void {
    if (this.kept >= EXCERPT_BYTES) return;
    const part = chunk.subarray(0, EXCERPT_BYTES - this.kept);
    this.kept += part.length;
    this.chunks.push(part);
  }

  private overLimit(what: string): void {
    if (this.excerpt) {
      // An error body: what we kept is enough; stop reading and drop the connection.
      this.done = true;
      this.teardown();
      this.resolve(Buffer.concat(this.chunks));
      return;
    }
    this.fail(tooLarge(this.limits, what));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.resolve(
      this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks),
    );
  }

  private fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.teardown();
    this.reject(error);
  }

  private teardown(): void {
    this.body.destroy();
    this.decoder?.destroy();
  }
}

/** Parses a JSON body; an empty body is `undefined`. Throws `BAD_JSON` with a short excerpt. */
export function parseJson(buffer: Buffer, info: HttpCallInfo, status: number): unknown {
  if (buffer.length === 0) return undefined;
  let text = buffer.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const excerpt = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    return throwBadJson(info, status, error, excerpt);
  }
}

function throwBadJson(info: HttpCallInfo, status: number, error: unknown, excerpt: string): never {
  throw new HttpDependencyError(
    'BAD_JSON',
    info,
    `answered ${status} with a body that is not JSON (${(error as Error).message}): ${JSON.stringify(excerpt)}`,
    { cause: error, retryable: false, status, bodyExcerpt: excerpt },
  );
}
