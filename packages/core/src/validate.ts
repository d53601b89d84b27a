/** Eager option checks whose messages name the option, the value and the fix. */
import type { Clock } from './clock.js';
import { InvalidOptionsError } from './errors.js';
import type { Random } from './random.js';

/**
 * Names a value in an error message: strings quoted, objects as (short) JSON or by kind, never
 * "[object Object]". Shared by every policy's option checks.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'function':
      return 'a function';
    case 'object': {
      if (value === null) return 'null';
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch {
        json = undefined;
      }
      if (json !== undefined && json !== '{}') {
        return json.length > 80 ? `${json.slice(0, 77)}...` : json;
      }
      // JSON drops methods: name the class, or the keys, rather than print "{}".
      const kind = (value as { constructor?: { name?: unknown } }).constructor?.name;
      if (typeof kind === 'string' && kind !== '' && kind !== 'Object') return `a ${kind}`;
      const keys = Object.keys(value);
      return keys.length === 0 ? '{}' : `an object with keys ${keys.join(', ')}`;
    }
    default:
      return String(value);
  }
}

export function requireInteger(where: string, name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be an integer >= ${min}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A duration or count that must be finite and >= min (min defaults to 0). */
export function requireNumber(where: string, name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number >= ${min}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A number that must be > 0. */
export function requirePositive(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number > 0, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A ratio in [min, max]. */
export function requireRatio(
  where: string,
  name: string,
  value: unknown,
  min = 0,
  max = 1,
): number {
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a number in [${min}, ${max}], got ${describeValue(value)}`,
    );
  }
  return value;
}

export function requireFunction(where: string, name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a function, got ${describeValue(value)}`,
    );
  }
}

export function requireObject(where: string, value: unknown): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionsError(
      `${where}: expected an options object, got ${describeValue(value)}`,
    );
  }
}

/** Rejects option names the policy does not know (catches typos like `maxAttemps`). */
export function rejectUnknownKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown option "${key}"; known options are ${known.join(', ')}`,
      );
    }
  }
}

/** An injected clock must implement Clock; undefined means the system clock. */
export function checkClock(where: string, clock: unknown): Clock | undefined {
  if (clock === undefined) return undefined;
  const candidate = (typeof clock === 'object' ? clock : null) as Partial<Clock> | null;
  if (
    candidate === null ||
    typeof candidate.now !== 'function' ||
    typeof candidate.setTimer !== 'function'
  ) {
    throw new InvalidOptionsError(
      `${where}: clock must implement Clock (now(), wallNow(), setTimer()), got ${describeValue(clock)}; omit it to use the system clock`,
    );
  }
  return candidate as Clock;
}

/** An injected random must implement Random; undefined means the system random. */
export function checkRandom(where: string, random: unknown): void {
  if (
    random !== undefined &&
    (random === null || typeof random !== 'object' || typeof (random as Random).next !== 'function')
  ) {
    throw new InvalidOptionsError(
      `${where}: random must implement Random (next()), got ${describeValue(random)}; use seededRandom(seed) in tests`,
    );
  }
}

/** Names appear in events and errors: non-empty strings only. */
export function checkName(where: string, name: unknown): string | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || name === '') {
    throw new InvalidOptionsError(
      `${where}: name must be a non-empty string (used in events and errors), got ${describeValue(name)}`,
    );
  }
  return name;
}
