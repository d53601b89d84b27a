/**
 * Reading a response body with limits that hold while it arrives: at most `maxBytes` on the wire
 * AND after decoding (a 10 KiB gzip or brotli bomb can expand to gigabytes, so the decoded size is
 * what protects memory), and at most `bodyTimeoutMs` for the whole body. The body is aborted the
 * moment a limit is crossed; it is never buffered first and measured after.
 *
 * {@link BodyCollector} is fed chunk by chunk. The client's undici dispatch handler is one (the
 * chunks come straight from the HTTP parser, with no stream in between); {@link readBody} feeds
 * one from a Readable.
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

type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** A decoder for a `content-encoding`, `null` for identity, `undefined` when unsupported. */
export function decoderFor(encoding: string | undefined): Transform | null | undefined {
  if (encoding === undefined || encoding === '') return null;
  const value = encoding.trim().toLowerCase();
  switch (value) {
    case '':
    case 'identity':
      return null;
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

function tooLarge(info: HttpCallInfo, maxBytes: number, what: string): HttpDependencyError {
  return new HttpDependencyError(
    'BODY_TOO_LARGE',
    info,
    `response body ${what}, more than maxResponseBytes (${maxBytes})`,
    { retryable: false },
  );
}

/**
 * Collects one response body under the limits, decoding it on the way. A subclass connects it to
 * where the chunks come from: it calls {@link beginBody} once the headers are known, then
 * {@link bodyChunk} per chunk, then {@link bodyEnd} (or {@link bodyError} for a transport error),
 * and gets exactly one of {@link bodyDone} / {@link bodyFailed}. When the collector gives up
 * early (a limit, a decode error) it calls {@link stopBody} first, so the source stops sending.
 *
 * With `excerpt` (an error response), it never fails on size: it keeps the first
 * {@link EXCERPT_BYTES} decoded bytes, discards the rest up to `maxBytes`, then stops reading.
 *
 * Fields are declared and set in {@link resetBody}, not as class fields: the client makes one of
 * these per attempt, and initialisers would store every field twice.
 */
export abstract class BodyCollector {
  declare protected maxBytes: number;
  declare protected bodyTimeoutMs: number;
  declare protected bodyStartedAt: number;
  /** The latest clock reading of the body: at its end, when it has ended. */
  declare protected bodyNow: number;
  declare protected clock: Clock;
  /** What failed calls report: dependency, method, path, attempt. */
  declare protected bodyInfo: HttpCallInfo;
  declare protected mayRetry: boolean;
  declare private excerpt: boolean;
  declare private decoder: Transform | null;
  /** The first chunk; most small bodies are one chunk and need no array and no copy. */
  declare private first: Buffer | undefined;
  declare private rest: Buffer[] | undefined;
  declare private rawBytes: number;
  declare private decodedBytes: number;
  declare private kept: number;
  /** True once the body is settled (done, failed or given up). */
  declare protected bodySettled: boolean;

  protected resetBody(
    maxBytes: number,
    bodyTimeoutMs: number,
    clock: Clock,
    info: HttpCallInfo,
    mayRetry: boolean,
  ): void {
    this.maxBytes = maxBytes;
    this.bodyTimeoutMs = bodyTimeoutMs;
    this.bodyStartedAt = 0;
    this.bodyNow = 0;
    this.clock = clock;
    this.bodyInfo = info;
    this.mayRetry = mayRetry;
    this.excerpt = false;
    this.decoder = null;
    this.first = undefined;
    this.rest = undefined;
    this.rawBytes = 0;
    this.decodedBytes = 0;
    this.kept = 0;
    this.bodySettled = false;
  }

  /** The complete (decoded) body, or with `excerpt` its first bytes. Called at most once. */
  protected abstract bodyDone(body: Buffer): void;
  /** The body cannot be read: a limit, a decode error or the transport. Called at most once. */
  protected abstract bodyFailed(error: unknown): void;
  /** Stop the transfer: the collector will not take more chunks. */
  protected abstract stopBody(): void;
  /** The decoder drained: chunks may flow again after {@link bodyChunk} returned false. */
  protected abstract resumeBody(): void;

  /**
   * Starts a body from its response headers. False when it is refused at once (an encoding we
   * cannot decode, a declared length over the limit); `bodyFailed` has then been called.
   */
  protected beginBody(headers: ResponseHeaders, excerpt: boolean): boolean {
    this.bodyStartedAt = this.clock.now();
    this.bodyNow = this.bodyStartedAt;
    this.excerpt = excerpt;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined) {
      const name = firstHeader(encoding);
      const decoder = decoderFor(name);
      if (decoder === undefined) {
        this.giveUp(
          new HttpDependencyError(
            'BAD_CONTENT_ENCODING',
            this.bodyInfo,
            `answered with content-encoding ${JSON.stringify(name)}, which this client does not decode (it accepts ${ACCEPT_ENCODING})`,
            { retryable: false },
          ),
        );
        return false;
      }
      if (decoder !== null) this.attachDecoder(decoder);
    }
    if (!excerpt) {
      const length = headers['content-length'];
      if (length !== undefined) {
        const declared = Number(firstHeader(length));
        if (declared > this.maxBytes) {
          this.giveUp(tooLarge(this.bodyInfo, this.maxBytes, `declares ${declared} bytes`));
          return false;
        }
      }
    }
    return true;
  }

  /** True when the body goes through a decoder (it then ends asynchronously, after bodyEnd). */
  protected get bodyDecoded(): boolean {
    return this.decoder !== null;
  }

  /** A chunk from the wire. Returns false when the source should pause (decoder backpressure). */
  protected bodyChunk(chunk: Buffer): boolean {
    if (this.bodySettled) return true;
    this.rawBytes += chunk.length;
    if (this.rawBytes > this.maxBytes) {
      // An identity error body: keep its start before we stop reading.
      if (this.excerpt && this.decoder === null) this.keep(chunk);
      this.overLimit(`exceeds ${this.maxBytes} bytes on the wire`);
      return true;
    }
    // One clock read per chunk instead of a timer per request: a body that trickles in is caught
    // at the first chunk past the limit, and a body that stalls is caught by undici's idle timeout.
    // The first chunk is checked at the end of the body instead (see bodyEnd): most bodies are
    // one chunk, and one clock read then serves both.
    if (this.rawBytes !== chunk.length && this.timedOut()) return true;
    const decoder = this.decoder;
    if (decoder === null) {
      this.decoded(chunk);
      return true;
    }
    // Backpressure: a decoder producing far more than it receives must not queue unboundedly.
    return decoder.write(chunk);
  }

  /** The last chunk has arrived. */
  protected bodyEnd(): void {
    if (this.bodySettled || this.timedOut()) return;
    if (this.decoder === null) this.finish();
    else this.decoder.end();
  }

  /** The transport failed: passed on unchanged for the caller to classify. */
  protected bodyError(error: unknown): void {
    if (this.bodySettled) return;
    this.bodySettled = true;
    this.decoder?.destroy();
    this.bodyFailed(error);
  }

  /**
   * Reads the clock (kept in `bodyNow` for the subclass) and gives up with `BODY_TIMEOUT` when
   * the body has taken longer than `bodyTimeoutMs` since its headers.
   */
  private timedOut(): boolean {
    const now = this.clock.now();
    this.bodyNow = now;
    if (now - this.bodyStartedAt <= this.bodyTimeoutMs) return false;
    this.giveUp(
      new HttpDependencyError(
        'BODY_TIMEOUT',
        this.bodyInfo,
        `response body took longer than bodyTimeoutMs (${this.bodyTimeoutMs} ms)`,
        { retryable: this.mayRetry },
      ),
    );
    return true;
  }

  private attachDecoder(decoder: Transform): void {
    this.decoder = decoder;
    decoder.on('data', (chunk: Buffer) => this.decoded(chunk));
    decoder.on('end', () => this.finish());
    decoder.on('drain', () => this.resumeBody());
    decoder.on('error', (error: Error) =>
      this.giveUp(
        new HttpDependencyError(
          'BAD_CONTENT_ENCODING',
          this.bodyInfo,
          `answered with a body that does not decode as its content-encoding: ${error.message}`,
          { cause: error, retryable: false },
        ),
      ),
    );
  }

  private decoded(chunk: Buffer): void {
    if (this.bodySettled) return;
    this.decodedBytes += chunk.length;
    if (this.excerpt) {
      this.keep(chunk);
      if (this.decodedBytes > this.maxBytes) {
        this.overLimit(`exceeds ${this.maxBytes} bytes after decoding`);
      }
      return;
    }
    if (this.decodedBytes > this.maxBytes) {
      this.overLimit(`exceeds ${this.maxBytes} bytes after decoding`);
      return;
    }
    this.store(chunk);
  }

  private store(chunk: Buffer): void {
    if (this.first === undefined) this.first = chunk;
    else (this.rest ??= []).push(chunk);
  }

  /** Excerpt mode: keeps up to EXCERPT_BYTES in total. */
  private keep(chunk: Buffer): void {
    if (this.kept >= EXCERPT_BYTES) return;
    const part =
      chunk.length <= EXCERPT_BYTES - this.kept
        ? chunk
        : chunk.subarray(0, EXCERPT_BYTES - this.kept);
    this.kept += part.length;
    this.store(part);
  }

  private collected(): Buffer {
    const first = this.first;
    if (first === undefined) return Buffer.alloc(0);
    const rest = this.rest;
    if (rest === undefined) return first;
    return Buffer.concat([first, ...rest]);
  }

  private overLimit(what: string): void {
    if (this.excerpt) {
      // An error body: what we kept is enough; stop reading and drop the connection.
      this.bodySettled = true;
      this.decoder?.destroy();
      this.stopBody();
      this.bodyDone(this.collected());
      return;
    }
    this.giveUp(tooLarge(this.bodyInfo, this.maxBytes, what));
  }

  private finish(): void {
    if (this.bodySettled) return;
    this.bodySettled = true;
    this.bodyDone(this.collected());
  }

  /** The collector fails the body itself: stop the source, then report. */
  private giveUp(error: unknown): void {
    if (this.bodySettled) return;
    this.bodySettled = true;
    this.decoder?.destroy();
    this.stopBody();
    this.bodyFailed(error);
  }
}

/**
 * Reads a whole Readable body (decoded) under the limits. With `excerpt`, never fails on size
 * (see {@link BodyCollector}). Transport errors (reset, timeout, abort) are rejected unchanged
 * for the caller to classify.
 */
export function readBody(
  body: Readable,
  headers: ResponseHeaders,
  limits: BodyLimits,
  excerpt = false,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    new StreamBody(body, limits, resolve, reject).start(headers, excerpt);
  });
}

class StreamBody extends BodyCollector {
  constructor(
    private readonly body: Readable,
    limits: BodyLimits,
    private readonly resolve: (value: Buffer) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    super();
    this.resetBody(
      limits.maxBytes,
      limits.bodyTimeoutMs,
      limits.clock,
      limits.info,
      limits.mayRetry,
    );
  }

  start(headers: ResponseHeaders, excerpt: boolean): void {
    const { body } = this;
    // Destroying a body emits an error nobody else may listen to: it must not go uncaught.
    body.on('error', error => this.bodyError(error));
    if (!this.beginBody(headers, excerpt)) return;
    body.on('data', (chunk: Buffer) => {
      if (!this.bodyChunk(chunk)) body.pause();
    });
    body.on('end', () => this.bodyEnd());
  }

  protected bodyDone(value: Buffer): void {
    this.resolve(value);
  }
  protected bodyFailed(error: unknown): void {
    this.reject(error);
  }
  protected stopBody(): void {
    this.body.destroy();
  }
  protected resumeBody(): void {
    this.body.resume();
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
