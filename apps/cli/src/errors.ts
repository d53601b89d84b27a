/** What the CLI tells apart: a wrong command line (exit 2) and a failure while running (exit 1). */
import { BulwarkError, hasCode, isInvalidOptionsError } from '@bulwark/core';

/** The command line is wrong; the message says how to fix it. Exit code 2. */
export class UsageError extends BulwarkError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Options the library refused are still the user's input: exit 2, like a bad flag. */
export function isUsageError(error: unknown): boolean {
  return hasCode(error, 'USAGE') || isInvalidOptionsError(error);
}
