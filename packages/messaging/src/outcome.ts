/**
 * What a handler decides about a message. The same four outcomes mean the same thing on every
 * backend (DESIGN.md, "Message outcomes"):
 * - `ack`: done; the message is removed.
 * - `retry`: try again after `delayMs` (default: the consumer's backoff). Spends an attempt; on
 *   the last attempt the message goes to the dead letter queue instead.
 * - `fail`: will never succeed (bad input, permanent refusal): straight to the dead letter queue.
 * - `defer`: not now (a dependency is paused, a rate limit): deliver again after `delayMs`
 *   without spending an attempt.
 * A handler that returns nothing acks. A thrown error retries when it is retryable (core's
 * `retryable` flag; errors without one count as retryable) and fails when it is not.
 */
import { InvalidOptionsError } from '@bulwark/core';

/** An error as recorded in a message's attempt history and dead letter. */
export interface AttemptError {
  /** Stable code: the error's `code` when it has one, else its name (`"Error"`, `"TypeError"`). */
  readonly code: string;
  readonly message: string;
}

export interface AckOutcome {
  readonly kind: 'ack';
}
export interface RetryOutcome {
  readonly kind: 'retry';
  /** Wait this long before the next attempt, ms. Undefined: the consumer's backoff decides. */
  readonly delayMs?: number;
  /** Recorded in the attempt history. Default code `RETRY_REQUESTED`. */
  readonly error?: AttemptError;
}
export interface FailOutcome {
  readonly kind: 'fail';
  readonly error: AttemptError;
}
export interface DeferOutcome {
  readonly kind: 'defer';
  readonly delayMs: number;
}
export type Outcome = AckOutcome | RetryOutcome | FailOutcome | DeferOutcome;

const ACK: AckOutcome = Object.freeze({ kind: 'ack' });

export function ack(): AckOutcome {
  return ACK;
}

export interface RetryInput {
  /** Wait this long before the next attempt, ms; omit to use the consumer's backoff. */
  delayMs?: number;
  /** Why, for the attempt history. */
  reason?: string;
  /** Code for the attempt history. Default `RETRY_REQUESTED`. */
  code?: string;
}

export function retry(input: RetryInput = {}): RetryOutcome {
  if (input.delayMs !== undefined && !(input.delayMs >= 0 && Number.isFinite(input.delayMs))) {
    throw new InvalidOptionsError(
      `retry: delayMs must be a finite number >= 0 (milliseconds), got ${String(input.delayMs)}; omit it to use the consumer's backoff`,
    );
  }
  const error = {
    code: input.code ?? 'RETRY_REQUESTED',
    message: input.reason ?? 'the handler asked for a retry',
  };
  return input.delayMs === undefined
    ? { kind: 'retry', error }
    : { kind: 'retry', delayMs: input.delayMs, error };
}

/** Straight to the dead letter queue. `reason` is a message, or `{ code, message }`. */
export function fail(reason: string | AttemptError): FailOutcome {
  const error =
    typeof reason === 'string' ? { code: 'FAILED', message: reason } : errorRecord(reason);
  return { kind: 'fail', error };
}

export interface DeferInput {
  /** Deliver again after this many ms. Required. */
  delayMs: number;
}

export function defer(input: DeferInput): DeferOutcome {
  const delayMs = (input as Partial<DeferInput> | undefined)?.delayMs;
  if (typeof delayMs !== 'number' || !(delayMs >= 0) || !Number.isFinite(delayMs)) {
    throw new InvalidOptionsError(
      `defer: delayMs is required, a finite number >= 0 (milliseconds), got ${String(delayMs)}; for example defer({ delayMs: 5_000 })`,
    );
  }
  return { kind: 'defer', delayMs };
}

/** The `{ code, message }` record of anything thrown. */
export function errorRecord(error: unknown): AttemptError {
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; name?: unknown; message?: unknown };
    const code =
      typeof e.code === 'string' && e.code !== ''
        ? e.code
        : typeof e.name === 'string' && e.name !== ''
          ? e.name
          : 'ERROR';
    const message = typeof e.message === 'string' ? e.message : safeString(error);
    return { code, message };
  }
  return { code: 'ERROR', message: safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

export function isOutcome(value: unknown): value is Outcome {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return kind === 'ack' || kind === 'retry' || kind === 'fail' || kind === 'defer';
}
