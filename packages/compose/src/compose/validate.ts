/**
 * Eager option checks for the engine. Core keeps its own helpers private, so the few we need live
 * here; messages follow core's form: the option, the value, and the fix.
 */
import { InvalidOptionsError } from '@bulwark/core';

/** Names a value in an error message without printing "[object Object]". */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `an object with keys ${Object.keys(value).join(', ') || '(none)'}`;
}

export function requireFunction(where: string, name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a function, got ${describeValue(value)}`,
    );
  }
}

/** A duration in milliseconds, > 0 (or >= 0 with `allowZero`), finite. */
export function requireMs(where: string, name: string, value: unknown, allowZero = false): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (value === 0 && !allowZero)
  ) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number ${allowZero ? '>= 0' : '> 0'} (milliseconds), got ${describeValue(value)}`,
    );
  }
  return value;
}

export function requireObject(where: string, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionsError(
      `${where}: expected an options object, got ${describeValue(value)}`,
    );
  }
}

/** Rejects option names the factory does not know (catches typos like `timeoutMS`). */
export function rejectUnknownKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown option "${key}"; known options are ${known.join(', ')}`,
      );
    }
  }
}

const PUBLIC_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Part and source names reach clients (envelope keys, `source: alternate:<name>`, Server-Timing
 * metric names), so they are restricted to a token that is safe in all three places.
 */
export function checkPublicName(where: string, what: string, name: unknown): string {
  if (typeof name !== 'string' || !PUBLIC_NAME.test(name)) {
    throw new InvalidOptionsError(
      `${where}: ${what} must be a public name (a letter, then up to 63 letters, digits, "_", "." or "-"), got ${describeValue(name)}; it is shown to clients, so never use an internal hostname`,
    );
  }
  return name;
}
