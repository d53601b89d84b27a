/**
 * Reading and writing the remaining budget on the wire. Deadlines travel as a *relative* budget
 * (what is left now), never as an absolute time, so clock skew between machines does not matter.
 */
import { systemClock, type Clock } from './clock.js';
import { Deadline } from './deadline.js';
import { InvalidOptionsError } from './errors.js';

export const GRPC_TIMEOUT_HEADER = 'grpc-timeout';
export const ENVOY_TIMEOUT_HEADER = 'x-envoy-expected-rq-timeout-ms';
/** Bulwark's own header: the caller's remaining budget in whole milliseconds. */
export const BULWARK_BUDGET_HEADER = 'x-bulwark-budget-ms';

const GRPC_UNITS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** Parses a `grpc-timeout` value (1 to 8 digits and a unit H, M, S, m, u, n) into milliseconds. */
export function parseGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (match === null) return undefined;
  const unit = GRPC_UNITS[match[2] as string];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

/** The coarser `grpc-timeout` units, finest first (microseconds are handled before them). */
const GRPC_COARSE_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['m', 1],
  ['S', 1_000],
  ['M', 60_000],
  ['H', 3_600_000],
];

/**
 * Formats milliseconds as a `grpc-timeout` value, choosing the finest unit that fits in 8 digits
 * and rounding down, so the callee never believes it has more time than the caller does.
 */
export function formatGrpcTimeout(ms: number): string {
  const safe = ms > 0 ? ms : 0;
  if (safe < 100_000) {
    const micros = Math.floor(safe * 1000);
    if (micros < 100_000_000) return `${micros}u`;
  }
  for (const [unit, size] of GRPC_COARSE_UNITS) {
    const amount = Math.floor(safe / size);
    if (amount < 100_000_000) return `${amount}${unit}`;
  }
  return '99999999H';
}

/** Parses a whole or fractional count of milliseconds; rejects negatives, blanks and garbage. */
export function parseMillisHeader(value: string): number | undefined {
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return undefined;
  const ms = Number(trimmed);
  return Number.isFinite(ms) ? ms : undefined;
}

export type HeaderBag =
  Record<string, string | string[] | undefined> | { get(name: string): string | null };

function readHeader(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The budget a caller gave us, in milliseconds: the smallest of the three headers that parse, or
 * `undefined` when none is present. Headers that do not parse are ignored, not trusted.
 */
export function budgetFromHeaders(headers: HeaderBag): number | undefined {
  let budget: number | undefined;
  const consider = (ms: number | undefined) => {
    if (ms !== undefined && (budget === undefined || ms < budget)) budget = ms;
  };
  const grpc = readHeader(headers, GRPC_TIMEOUT_HEADER);
  if (grpc !== undefined) consider(parseGrpcTimeout(grpc));
  const envoy = readHeader(headers, ENVOY_TIMEOUT_HEADER);
  if (envoy !== undefined) consider(parseMillisHeader(envoy));
  const own = readHeader(headers, BULWARK_BUDGET_HEADER);
  if (own !== undefined) consider(parseMillisHeader(own));
  return budget;
}

export interface DeadlineFromHeadersOptions {
  clock?: Clock;
  /** Budget when the caller sent none, in milliseconds. */
  defaultMs: number;
  /** The most a caller may ask for, in milliseconds; larger budgets are cut to this. */
  maxMs: number;
  signal?: AbortSignal;
}

/** The inbound deadline for a request: the caller's budget (clamped to `maxMs`) or `defaultMs`. */
export function deadlineFromHeaders(
  headers: HeaderBag,
  options: DeadlineFromHeadersOptions,
): Deadline {
  const { defaultMs, maxMs } = options;
  if (!(defaultMs > 0) || !(maxMs > 0) || defaultMs > maxMs) {
    throw new InvalidOptionsError(
      `deadlineFromHeaders: need 0 < defaultMs <= maxMs (milliseconds), got defaultMs=${String(defaultMs)}, maxMs=${String(maxMs)}`,
    );
  }
  const budget = budgetFromHeaders(headers);
  const ms = Math.min(budget ?? defaultMs, maxMs);
  return Deadline.after(ms, {
    clock: options.clock ?? systemClock,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
}

/** The three headers that tell a callee how much time is left, all carrying the same budget. */
export function deadlineToHeaders(deadline: Deadline): Record<string, string> {
  const ms = deadline.remainingMs();
  return {
    [GRPC_TIMEOUT_HEADER]: formatGrpcTimeout(ms),
    [ENVOY_TIMEOUT_HEADER]: String(Math.floor(ms)),
    [BULWARK_BUDGET_HEADER]: String(Math.floor(ms)),
  };
}
