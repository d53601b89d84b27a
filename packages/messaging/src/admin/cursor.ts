/**
 * Page cursors as opaque strings (base64url of `[deadAt, id]`), so HTTP clients and the CLI pass
 * `next` back as `after` without knowing the keyset behind it.
 */
import type { DeadLetterCursor } from '../backend.js';

export function encodeDeadLetterCursor(cursor: DeadLetterCursor): string {
  return Buffer.from(JSON.stringify([cursor.deadAt, cursor.id]), 'utf8').toString('base64url');
}

/** Undefined when `text` is not a cursor this module made. */
export function decodeDeadLetterCursor(text: string): DeadLetterCursor | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [deadAt, id] = value as unknown[];
  if (typeof deadAt !== 'number' || !Number.isFinite(deadAt) || typeof id !== 'string') {
    return undefined;
  }
  return { deadAt, id };
}
