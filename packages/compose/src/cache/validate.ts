/**
 * Eager option checks for the cache and the batch loader. Core keeps its own helpers internal, so
 * these are the few compose needs, with the same message style: option, value, fix.
 */
import { InvalidOptionsError } from '@bulwark/core';

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return 'an object';
  }
}

export function requireOptionsObject(where: string, value: unknown): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionsError(`${where}: expected an options object, got ${describe(value)}`);
  }
}

export function rejectUnknown(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown option "${key}"; known options are ${known.join(', ')}`,
      );
    }
  }
}

export function requireName(where: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidOptionsError(
      `${where}: name must be a non-empty string (used in events, keys and errors), got ${describe(value)}`,
    );
  }
  return value;
}

/** A duration in ms that must be finite and >= min. */
export function requireMs(where: string, name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number of milliseconds >= ${min}, got ${describe(value)}`,
    );
  }
  return value;
}

export function requirePositiveMs(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number of milliseconds > 0, got ${describe(value)}`,
    );
  }
  return value;
}

/** An integer count >= min; `Infinity` allowed when `allowInfinity`. */
export function requireCount(
  where: string,
  name: string,
  value: unknown,
  min: number,
  allowInfinity = false,
): number {
  if (allowInfinity && value === Infinity) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be an integer >= ${min}${allowInfinity ? ' (or Infinity)' : ''}, got ${describe(value)}`,
    );
  }
  return value;
}

export function requireFn(where: string, name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new InvalidOptionsError(`${where}: ${name} must be a function, got ${describe(value)}`);
  }
}

export function requireClock(where: string, value: unknown): void {
  if (value === undefined) return;
  const c: { now?: unknown; wallNow?: unknown; setTimer?: unknown } =
    typeof value === 'object' && value !== null ? value : {};
  if (
    typeof c.now !== 'function' ||
    typeof c.wallNow !== 'function' ||
    typeof c.setTimer !== 'function'
  ) {
    throw new InvalidOptionsError(
      `${where}: clock must implement Clock (now(), wallNow(), setTimer()), got ${describe(value)}; omit it to use the system clock`,
    );
  }
}
