/** Options of the admin plugin, checked when the plugin is made (not at the first request). */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import type { QueueBackend } from '../backend.js';
import { checkBackend } from '../producer.js';
import {
  checkClock,
  describeValue,
  rejectUnknownKeys,
  requireNumber,
  requireObject,
} from '../validate.js';

export interface DeadLetterAdminOptions {
  /** The queue backend whose dead letters the API serves. */
  backend: QueueBackend;
  /**
   * Required. Clients send `Authorization: Bearer <token>`. At least 16 characters, no
   * whitespace; generate one with `openssl rand -hex 32` and keep it out of source control.
   */
  token: string;
  /** Recorded as the actor of every replay and purge in the audit log. Default `'admin-api'`. */
  actor?: string;
  /** Times of audit entries, replayed messages and rate limiting. Default: the system clock. */
  clock?: Clock;
  /**
   * Longest a rate-limited replay may hold its request open, ms: a replay whose
   * `(count - 1) / ratePerSecond` exceeds it is refused with 400, asking for a smaller `limit`.
   * Default 60_000.
   */
  maxReplayMs?: number;
}

export interface ResolvedAdminOptions {
  readonly backend: QueueBackend;
  readonly token: string;
  readonly actor: string;
  readonly clock: Clock;
  readonly maxReplayMs: number;
}

const W = 'deadLetterAdmin';
export const TOKEN_MIN_LENGTH = 16;

export function resolveAdminOptions(options: DeadLetterAdminOptions): ResolvedAdminOptions {
  requireObject(W, options);
  rejectUnknownKeys(W, options, ['backend', 'token', 'actor', 'clock', 'maxReplayMs']);
  checkBackend(W, options.backend);
  const { token } = options;
  if (typeof token !== 'string' || token.length < TOKEN_MIN_LENGTH || /\s/.test(token)) {
    throw new InvalidOptionsError(
      `${W}: token must be a string of at least ${TOKEN_MIN_LENGTH} characters without whitespace, got ${
        typeof token === 'string' ? `${token.length} characters` : describeValue(token)
      }; generate one with \`openssl rand -hex 32\``,
    );
  }
  const actor = options.actor ?? 'admin-api';
  if (typeof actor !== 'string' || actor.trim() === '') {
    throw new InvalidOptionsError(
      `${W}: actor must be a non-empty string naming who holds the token (it goes into the audit log), got ${describeValue(actor)}`,
    );
  }
  return {
    backend: options.backend,
    token,
    actor,
    clock: checkClock(W, options.clock) ?? systemClock,
    maxReplayMs:
      options.maxReplayMs === undefined
        ? 60_000
        : requireNumber(W, 'maxReplayMs', options.maxReplayMs, 1),
  };
}
