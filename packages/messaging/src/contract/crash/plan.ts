/**
 * What each message of a crash run does, decided by its index alone so that the parent, every
 * worker process and the assertions agree without talking: 5% poison, 10% failing once.
 */

export type CrashMessageKind = 'poison' | 'transient' | 'ok';

/** The payload every crash-run message carries. */
export interface CrashPayload {
  readonly index: number;
}

/** Message type of crash-run messages. */
export const CRASH_MESSAGE_TYPE = 'crash.effect';

/**
 * `index % 20 == 0`: poison (fails for good until "fixed"); `index % 10 == 1`: fails its first
 * attempt, then succeeds; anything else succeeds at once.
 */
export function crashMessageKind(index: number): CrashMessageKind {
  if (index % 20 === 0) return 'poison';
  if (index % 10 === 1) return 'transient';
  return 'ok';
}

/** How many of `total` messages (indices 0 .. total-1) are of `kind`. */
export function countOfKind(total: number, kind: CrashMessageKind): number {
  let n = 0;
  for (let i = 0; i < total; i++) if (crashMessageKind(i) === kind) n++;
  return n;
}

/** The idempotency key of message `index` in run `runId`: the inbox deduplicates on it. */
export function crashIdempotencyKey(runId: string, index: number): string {
  return `${runId}:${index}`;
}
