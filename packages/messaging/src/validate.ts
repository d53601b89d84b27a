/**
 * Option checks. `@bulwark/core` keeps its validate.ts helpers internal (not in its `exports`), so
 * this file holds the few the messaging package needs, with the same wording.
 */
import { InvalidOptionsError, type Clock } from '@bulwark/core';

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (json !== undefined && json !== '{}')
      return json.length > 80 ? `${json.slice(0, 77)}...` : json;
    const kind = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof kind === 'string' && kind !== '' && kind !== 'Object' ? `a ${kind}` : '{}';
  }
  return String(value);
}

export function requireObject(where: string, value: unknown): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionsError(
      `${where}: expected an options object, got ${describeValue(value)}`,
    );
  }
}

export function rejectUnknownKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown option "${key}"; known options are ${known.join(', ')}`,
      );
    }
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

/** A duration that must be finite and >= min. */
export function requireNumber(where: string, name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a finite number >= ${min}, got ${describeValue(value)}`,
    );
  }
  return value;
}

export function requireText(where: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidOptionsError(
      `${where}: ${name} must be a non-empty string, got ${describeValue(value)}`,
    );
  }
  return value;
}

export function checkClock(where: string, clock: unknown): Clock | undefined {
  if (clock === undefined) return undefined;
  const c = (typeof clock === 'object' ? clock : null) as Partial<Clock> | null;
  if (
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.wallNow !== 'function' ||
    typeof c.setTimer !== 'function'
  ) {
    throw new InvalidOptionsError(
      `${where}: clock must implement Clock (now(), wallNow(), setTimer()), got ${describeValue(clock)}; omit it to use the system clock`,
    );
  }
  return c as Clock;
}
