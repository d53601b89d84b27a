/**
 * Fault descriptions for the fault proxy, their validation, and the per-connection (tcp) or
 * per-request (http) plan drawn from them.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { InvalidOptionsError, MAX_TIMER_DELAY_MS, type Random } from '@bulwark/core';

export type FaultProxyMode = 'tcp' | 'http';

/** `upstream` is client → target, `downstream` is target → client. */
export type ProxyFaultDirection = 'upstream' | 'downstream' | 'both';

interface Flapping {
  /** Chance in [0, 1] that the fault applies to a given connection (tcp) or request (http). Default 1. */
  probability?: number;
}

/**
 * Holds data back before it is forwarded. `upstream` (default): before the proxy contacts the
 * target (tcp: once per connection; http: once per request). `downstream`: before the first byte
 * of the answer goes back (tcp: once per connection; http: before each response head).
 * The delay is `latencyMs` plus a uniform extra in [0, jitterMs), so `latencyMs` is a floor.
 */
export interface LatencyFault extends Flapping {
  kind: 'latency';
  latencyMs: number;
  jitterMs?: number;
  direction?: ProxyFaultDirection;
}

/** http mode only: answers with this status without contacting the target. */
export interface HttpErrorFault extends Flapping {
  kind: 'http-error';
  /** 400..599. */
  status: number;
  /** Default: a problem+json body naming the injected status. */
  body?: string;
  headers?: Record<string, string>;
}

/** Contacts the target and forwards the request, but never answers and never closes. */
export interface HangFault extends Flapping {
  kind: 'hang';
}

/**
 * Closes the client connection with a TCP RST. `upstream` (default): right away, the target is
 * never contacted. `downstream`: after the target has received the request and starts to answer,
 * so the write happened but the client sees ECONNRESET.
 */
export interface ResetFault extends Flapping {
  kind: 'reset';
  direction?: 'upstream' | 'downstream';
}

/** Throttles bytes; `downstream` (target → client) by default. */
export interface SlowBodyFault extends Flapping {
  kind: 'slow-body';
  bytesPerSecond: number;
  direction?: ProxyFaultDirection;
}

/** Accepts and swallows everything, never answers, never contacts the target. */
export interface BlackholeFault extends Flapping {
  kind: 'blackhole';
}

/**
 * Closes the listener so connects are refused (and drops open connections); the proxy listens
 * again on the same port once the fault is removed. Has no `probability`: the port is either open
 * or closed (use `reset` with a probability for a flapping connection).
 */
export interface DownFault {
  kind: 'down';
}

export type ProxyFault =
  | LatencyFault
  | HttpErrorFault
  | HangFault
  | ResetFault
  | SlowBodyFault
  | BlackholeFault
  | DownFault;

export type ProxyFaultKind = ProxyFault['kind'];

export const FAULT_KINDS: readonly ProxyFaultKind[] = [
  'latency',
  'http-error',
  'hang',
  'reset',
  'slow-body',
  'blackhole',
  'down',
];

/**
 * A fault list failed validation. `field` names the offending value (`faults[1].latencyMs`),
 * `pointer` is the same place as a JSON Pointer into the submitted array (`/1/latencyMs`).
 */
export class FaultValidationError extends InvalidOptionsError {
  readonly field: string;
  readonly pointer: string;

  constructor(path: readonly (string | number)[], problem: string) {
    const field = path.reduce<string>(
      (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : `${acc}.${part}`),
      'faults',
    );
    super(`fault proxy: ${field} ${problem}`);
    this.field = field;
    this.pointer = path
      .map(part => `/${String(part).replace(/~/g, '~0').replace(/\//g, '~1')}`)
      .join('');
  }
}

const ALLOWED_KEYS: Record<ProxyFaultKind, readonly string[]> = {
  latency: ['kind', 'probability', 'latencyMs', 'jitterMs', 'direction'],
  'http-error': ['kind', 'probability', 'status', 'body', 'headers'],
  hang: ['kind', 'probability'],
  reset: ['kind', 'probability', 'direction'],
  'slow-body': ['kind', 'probability', 'bytesPerSecond', 'direction'],
  blackhole: ['kind', 'probability'],
  down: ['kind'],
};

const MAX_FAULTS = 64;

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return value === undefined ? 'undefined' : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function durationMs(path: (string | number)[], value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new FaultValidationError(
      path,
      `must be a finite number of milliseconds >= 0, got ${show(value)}`,
    );
  }
  if (value > MAX_TIMER_DELAY_MS) {
    throw new FaultValidationError(path, `must be <= ${MAX_TIMER_DELAY_MS} ms, got ${value}`);
  }
  return value;
}

function direction(
  path: (string | number)[],
  value: unknown,
  allowed: readonly string[],
): ProxyFaultDirection | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new FaultValidationError(
      path,
      `must be one of ${allowed.map(a => `'${a}'`).join(', ')}, got ${show(value)}`,
    );
  }
  return value as ProxyFaultDirection;
}

function validateOne(input: unknown, index: number, mode: FaultProxyMode): ProxyFault {
  if (!isPlainObject(input)) {
    throw new FaultValidationError(
      [index],
      `must be an object like { kind: 'latency', latencyMs: 100 }, got ${show(input)}`,
    );
  }
  const kind = input['kind'];
  if (typeof kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new FaultValidationError(
      [index, 'kind'],
      `must be one of ${FAULT_KINDS.map(k => `'${k}'`).join(', ')}, got ${show(kind)}`,
    );
  }
  const k = kind as ProxyFaultKind;
  for (const key of Object.keys(input)) {
    if (!ALLOWED_KEYS[k].includes(key)) {
      throw new FaultValidationError(
        [index, key],
        `is not a property of a '${k}' fault (allowed: ${ALLOWED_KEYS[k].join(', ')})`,
      );
    }
  }
  const probability = input['probability'];
  if (
    probability !== undefined &&
    (typeof probability !== 'number' || !(probability >= 0 && probability <= 1))
  ) {
    throw new FaultValidationError(
      [index, 'probability'],
      `must be a number in [0, 1], got ${show(probability)}`,
    );
  }
  const flap = probability === undefined ? {} : { probability };

  switch (k) {
    case 'latency': {
      const latencyMs = durationMs([index, 'latencyMs'], input['latencyMs']);
      const jitter = input['jitterMs'];
      const jitterMs = jitter === undefined ? undefined : durationMs([index, 'jitterMs'], jitter);
      if (latencyMs + (jitterMs ?? 0) > MAX_TIMER_DELAY_MS) {
        throw new FaultValidationError(
          [index, 'jitterMs'],
          `plus latencyMs must be <= ${MAX_TIMER_DELAY_MS} ms`,
        );
      }
      const dir = direction([index, 'direction'], input['direction'], [
        'upstream',
        'downstream',
        'both',
      ]);
      return {
        kind: 'latency',
        latencyMs,
        ...(jitterMs === undefined ? {} : { jitterMs }),
        ...(dir === undefined ? {} : { direction: dir }),
        ...flap,
      };
    }
    case 'http-error': {
      if (mode !== 'http') {
        throw new FaultValidationError(
          [index, 'kind'],
          `'http-error' needs a proxy in mode 'http' (this one is in mode '${mode}'); in tcp mode use 'reset', 'hang' or 'blackhole'`,
        );
      }
      const status = input['status'];
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
        throw new FaultValidationError(
          [index, 'status'],
          `must be an integer HTTP error status in [400, 599], got ${show(status)}`,
        );
      }
      const body = input['body'];
      if (body !== undefined && typeof body !== 'string') {
        throw new FaultValidationError([index, 'body'], `must be a string, got ${show(body)}`);
      }
      const headersIn = input['headers'];
      let headers: Record<string, string> | undefined;
      if (headersIn !== undefined) {
        if (!isPlainObject(headersIn)) {
          throw new FaultValidationError(
            [index, 'headers'],
            `must be an object of header name to string value, got ${show(headersIn)}`,
          );
        }
        headers = {};
        for (const [name, value] of Object.entries(headersIn)) {
          if (typeof value !== 'string') {
            throw new FaultValidationError(
              [index, 'headers', name],
              `must be a string, got ${show(value)}`,
            );
          }
          try {
            validateHeaderName(name);
          } catch {
            throw new FaultValidationError(
              [index, 'headers', name],
              'is not a valid HTTP header name',
            );
          }
          try {
            validateHeaderValue(name, value);
          } catch {
            throw new FaultValidationError(
              [index, 'headers', name],
              'has characters not allowed in an HTTP header value',
            );
          }
          headers[name] = value;
        }
      }
      return {
        kind: 'http-error',
        status,
        ...(body === undefined ? {} : { body }),
        ...(headers === undefined ? {} : { headers }),
        ...flap,
      };
    }
    case 'reset': {
      const dir = direction([index, 'direction'], input['direction'], ['upstream', 'downstream']);
      return {
        kind: 'reset',
        ...(dir === undefined ? {} : { direction: dir as 'upstream' | 'downstream' }),
        ...flap,
      };
    }
    case 'slow-body': {
      const bps = input['bytesPerSecond'];
      if (typeof bps !== 'number' || !Number.isFinite(bps) || bps <= 0) {
        throw new FaultValidationError(
          [index, 'bytesPerSecond'],
          `must be a finite number > 0, got ${show(bps)}`,
        );
      }
      const dir = direction([index, 'direction'], input['direction'], [
        'upstream',
        'downstream',
        'both',
      ]);
      return {
        kind: 'slow-body',
        bytesPerSecond: bps,
        ...(dir === undefined ? {} : { direction: dir }),
        ...flap,
      };
    }
    case 'hang':
      return { kind: 'hang', ...flap };
    case 'blackhole':
      return { kind: 'blackhole', ...flap };
    case 'down':
      return { kind: 'down' };
  }
}

/**
 * Checks a fault list (from code or from JSON) and returns a normalised, frozen copy. Throws a
 * `FaultValidationError` naming the first bad field.
 */
export function validateProxyFaults(input: unknown, mode: FaultProxyMode): readonly ProxyFault[] {
  if (!Array.isArray(input)) {
    throw new FaultValidationError(
      [],
      `must be an array of faults, e.g. [{ "kind": "latency", "latencyMs": 100 }], got ${show(input)}`,
    );
  }
  if (input.length > MAX_FAULTS) {
    throw new FaultValidationError(
      [],
      `may hold at most ${MAX_FAULTS} faults, got ${input.length}`,
    );
  }
  return Object.freeze(input.map((fault, index) => Object.freeze(validateOne(fault, index, mode))));
}

/** What happens to one connection (tcp) or request (http). */
export interface FaultPlan {
  /** The first fault that ends the exchange, if any applied. */
  outcome: 'forward' | 'http-error' | 'hang' | 'reset-upstream' | 'reset-downstream' | 'blackhole';
  httpError: HttpErrorFault | undefined;
  latencyUpMs: number;
  latencyDownMs: number;
  /** Bytes per second, or undefined for no throttle. */
  throttleUp: number | undefined;
  throttleDown: number | undefined;
}

function rolls(probability: number | undefined, random: Random): boolean {
  if (probability === undefined || probability >= 1) return true;
  if (probability <= 0) return false;
  return random.next() < probability;
}

function slowest(current: number | undefined, bps: number): number {
  return current === undefined ? bps : Math.min(current, bps);
}

/**
 * Draws one plan from the faults, in list order. Latency and slow-body combine (delays add up,
 * the slowest throttle wins); of the faults that end the exchange (http-error, hang, reset,
 * blackhole) the first one that applies wins and later ones are not rolled. `random` is consulted
 * once per fault whose probability is strictly between 0 and 1, and once per applied latency with
 * jitter, so a seed replays exactly.
 * `onApplied` is told each fault kind that applied.
 */
export function planFaults(
  faults: readonly ProxyFault[],
  random: Random,
  onApplied: (kind: ProxyFaultKind) => void,
): FaultPlan {
  const plan: FaultPlan = {
    outcome: 'forward',
    httpError: undefined,
    latencyUpMs: 0,
    latencyDownMs: 0,
    throttleUp: undefined,
    throttleDown: undefined,
  };
  for (const fault of faults) {
    if (fault.kind === 'down') continue;
    const ends = fault.kind !== 'latency' && fault.kind !== 'slow-body';
    if (ends && plan.outcome !== 'forward') continue;
    if (!rolls(fault.probability, random)) continue;
    onApplied(fault.kind);
    switch (fault.kind) {
      case 'latency': {
        const jitter = fault.jitterMs ? random.next() * fault.jitterMs : 0;
        const ms = fault.latencyMs + jitter;
        const dir = fault.direction ?? 'upstream';
        if (dir !== 'downstream') plan.latencyUpMs += ms;
        if (dir !== 'upstream') plan.latencyDownMs += ms;
        break;
      }
      case 'slow-body': {
        const dir = fault.direction ?? 'downstream';
        if (dir !== 'downstream') plan.throttleUp = slowest(plan.throttleUp, fault.bytesPerSecond);
        if (dir !== 'upstream')
          plan.throttleDown = slowest(plan.throttleDown, fault.bytesPerSecond);
        break;
      }
      case 'http-error':
        plan.outcome = 'http-error';
        plan.httpError = fault;
        break;
      case 'hang':
        plan.outcome = 'hang';
        break;
      case 'reset':
        plan.outcome = fault.direction === 'downstream' ? 'reset-downstream' : 'reset-upstream';
        break;
      case 'blackhole':
        plan.outcome = 'blackhole';
        break;
    }
  }
  return plan;
}
