/**
 * Which requests may be sent twice. RFC 9110 §9.2.2 makes GET, HEAD, OPTIONS, TRACE, PUT and
 * DELETE idempotent; a POST or PATCH becomes safe to repeat when it carries an `Idempotency-Key`
 * (IETF draft-ietf-httpapi-idempotency-key-header) that the server deduplicates on.
 */

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PUT',
  'DELETE',
]);

/** True when the method is idempotent by definition (`method` in upper case). */
export function isIdempotentMethod(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

/**
 * Whether a failed attempt of this request may be repeated: an idempotent method, or any method
 * with a non-empty idempotency key (the same key is sent on every attempt).
 */
export function mayRepeat(method: string, idempotencyKey: string | undefined): boolean {
  return IDEMPOTENT_METHODS.has(method) || (idempotencyKey !== undefined && idempotencyKey !== '');
}
