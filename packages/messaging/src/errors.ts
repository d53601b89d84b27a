/** Errors raised by the messaging package. Codes are stable; see the README. */
import { BulwarkError, type BulwarkErrorOptions } from '@bulwark/core';

export type MessagingErrorCode =
  /** The consumer lost a message's lease (it expired, or another consumer took it over). */
  | 'LEASE_LOST'
  /** Recorded in a message's history when its consumer stopped heartbeating (crash or stall). */
  | 'LEASE_EXPIRED'
  /** A dead letter id that is not (or no longer) in the dead letter queue. */
  | 'DEAD_LETTER_NOT_FOUND'
  /** The handler returned something that is not an outcome. */
  | 'INVALID_OUTCOME'
  /** A backend refused or failed an operation. */
  | 'BACKEND_ERROR';

export class MessagingError extends BulwarkError {
  declare readonly code: MessagingErrorCode;
  constructor(code: MessagingErrorCode, message: string, options: BulwarkErrorOptions = {}) {
    super(code, message, options);
  }
}
