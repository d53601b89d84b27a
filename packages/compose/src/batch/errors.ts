/** Errors of the batch loader. Stable codes; per-key, so one bad key fails only its own callers. */
import { BulwarkError, hasCode } from '@bulwark/core';

/** The batch's `load` gave no value (or `undefined`) for a key it was asked for. Not retryable. */
export class BatchKeyMissingError extends BulwarkError {
  constructor(
    readonly loader: string,
    readonly key: unknown,
  ) {
    super(
      'BATCH_KEY_MISSING',
      `batch loader "${loader}": load() returned no value for key ${describeKey(key)}; return a value (null for "known absent") or an Error for every key`,
      { retryable: false },
    );
  }
}

/** The batch's `load` returned something unusable (an array of the wrong length, not a Map/array). */
export class BatchResultError extends BulwarkError {
  constructor(
    readonly loader: string,
    message: string,
  ) {
    super('BATCH_INVALID_RESULT', `batch loader "${loader}": ${message}`, { retryable: false });
  }
}

export const isBatchKeyMissingError = (e: unknown): e is BatchKeyMissingError =>
  hasCode(e, 'BATCH_KEY_MISSING');
export const isBatchResultError = (e: unknown): e is BatchResultError =>
  hasCode(e, 'BATCH_INVALID_RESULT');

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean') {
    return String(key);
  }
  try {
    const json = JSON.stringify(key);
    if (json !== undefined) return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    // fall through
  }
  return String(key);
}
