/**
 * Dead letter filtering and ordering for backends that filter in JavaScript (in-memory, and the
 * broker backends that mirror dead letters into a local store). SQL backends express the same
 * rules in their WHERE clause; the contract suite checks that both agree.
 */
import type { DeadLetter, DeadLetterCursor, DeadLetterFilter } from './backend.js';

export function matchesDeadLetterFilter(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.queue !== undefined && letter.sourceQueue !== filter.queue) return false;
  if (filter.type !== undefined && letter.message.type !== filter.type) return false;
  if (filter.errorCode !== undefined && letter.lastError.code !== filter.errorCode) return false;
  if (filter.from !== undefined && !(letter.deadAt >= filter.from)) return false;
  if (filter.to !== undefined && !(letter.deadAt < filter.to)) return false;
  if (filter.ids !== undefined && !filter.ids.includes(letter.id)) return false;
  if (filter.text !== undefined && filter.text !== '') {
    const needle = filter.text.toLowerCase();
    const inType = letter.message.type.toLowerCase().includes(needle);
    const inPayload = () => payloadText(letter.message.payload).includes(needle);
    const inErrors = () =>
      letter.attempts.some(a => a.message.toLowerCase().includes(needle)) ||
      letter.lastError.message.toLowerCase().includes(needle);
    if (!inType && !inPayload() && !inErrors()) return false;
  }
  return true;
}

function payloadText(payload: unknown): string {
  try {
    return (JSON.stringify(payload) ?? '').toLowerCase();
  } catch {
    return '';
  }
}

/** Ascending by `deadAt`, then `id`. */
export function compareDeadLetters(a: DeadLetterCursor, b: DeadLetterCursor): number {
  if (a.deadAt !== b.deadAt) return a.deadAt - b.deadAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
