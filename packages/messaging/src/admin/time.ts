/** Times in admin input: ISO 8601 for people, epoch milliseconds for scripts. */

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
// A time of day needs an explicit offset: "12:00" alone would mean the server's local zone.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

export const TIME_HINT =
  'must be an ISO 8601 time with an offset (2026-01-31T12:00:00Z), a date (2026-01-31, UTC) or epoch milliseconds';

/** Epoch ms, or undefined when `value` is not a time. */
export function parseTimeInput(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d{1,16}$/.test(text)) return Number(text);
  if (!DATE_ONLY.test(text) && !DATE_TIME.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}
