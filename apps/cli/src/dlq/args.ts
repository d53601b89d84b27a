/**
 * Flags of the `dlq` commands, parsed with node:util `parseArgs` (strict: a misspelt flag is an
 * error, not a silently wider replay or purge) and turned into the library's option shapes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { AuditAction, DeadLetterCursor, DeadLetterFilter } from '@bulwark/messaging';
import { decodeDeadLetterCursor, parseTimeInput } from '@bulwark/messaging/admin';
import { UsageError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON = {
  url: { type: 'string' },
  schema: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

const FILTER = {
  queue: { type: 'string' },
  type: { type: 'string' },
  'error-code': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  text: { type: 'string' },
  id: { type: 'string', multiple: true },
} as const satisfies Options;

export const COMMAND_OPTIONS = {
  list: { ...COMMON, ...FILTER, limit: { type: 'string' }, after: { type: 'string' } },
  show: { ...COMMON },
  summary: { ...COMMON, ...FILTER },
  replay: {
    ...COMMON,
    ...FILTER,
    limit: { type: 'string' },
    'dry-run': { type: 'boolean' },
    all: { type: 'boolean' },
    rate: { type: 'string' },
    payload: { type: 'string' },
    'to-queue': { type: 'string' },
    actor: { type: 'string' },
  },
  purge: {
    ...COMMON,
    ...FILTER,
    'dry-run': { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    all: { type: 'boolean' },
    actor: { type: 'string' },
  },
  audit: {
    ...COMMON,
    from: { type: 'string' },
    to: { type: 'string' },
    action: { type: 'string' },
    limit: { type: 'string' },
  },
} as const satisfies Record<string, Options>;

export type DlqCommandName = keyof typeof COMMAND_OPTIONS;

export function isDlqCommand(name: string): name is DlqCommandName {
  return Object.hasOwn(COMMAND_OPTIONS, name);
}

export type Values = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export interface Parsed {
  readonly values: Values;
  readonly positionals: readonly string[];
}

export function parseCommand(name: DlqCommandName, argv: readonly string[]): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: COMMAND_OPTIONS[name],
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Values, positionals };
  } catch (error) {
    // parseArgs explains itself ("Unknown option '--queu'"); add where to look.
    // Node's hint about "--" for positionals is noise here: no command takes a "-" argument.
    const text =
      (error instanceof Error ? error.message : String(error)).split('. To specify')[0] ?? '';
    throw new UsageError(`${text}; see bulwark dlq ${name} --help`);
  }
}

export function text(values: Values, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} needs a value`);
  return v;
}

export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

export function texts(values: Values, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map(item => {
    if (typeof item !== 'string' || item === '') throw new UsageError(`--${name} needs a value`);
    return item;
  });
}

export function time(values: Values, name: string): number | undefined {
  const v = text(values, name);
  if (v === undefined) return undefined;
  const ms = parseTimeInput(v);
  if (ms === undefined) {
    throw new UsageError(
      `--${name} must be an ISO 8601 time with an offset (2026-01-31T12:00:00Z), a date (2026-01-31, UTC) or epoch milliseconds, got ${JSON.stringify(v)}`,
    );
  }
  return ms;
}

export function integer(
  values: Values,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const v = text(values, name);
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(
      `--${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

export function positive(values: Values, name: string): number | undefined {
  const v = text(values, name);
  if (v === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${name} must be a number > 0, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function filterOf(values: Values): DeadLetterFilter {
  const filter: { -readonly [K in keyof DeadLetterFilter]: DeadLetterFilter[K] } = {};
  const queue = text(values, 'queue');
  if (queue !== undefined) filter.queue = queue;
  const type = text(values, 'type');
  if (type !== undefined) filter.type = type;
  const errorCode = text(values, 'error-code');
  if (errorCode !== undefined) filter.errorCode = errorCode;
  const search = text(values, 'text');
  if (search !== undefined) filter.text = search;
  const from = time(values, 'from');
  if (from !== undefined) filter.from = from;
  const to = time(values, 'to');
  if (to !== undefined) filter.to = to;
  const ids = texts(values, 'id');
  if (ids.length > 0) filter.ids = ids;
  return filter;
}

export function isEmptyFilter(filter: DeadLetterFilter): boolean {
  return Object.values(filter).every(v => v === undefined);
}

export function cursor(values: Values): DeadLetterCursor | undefined {
  const v = text(values, 'after');
  if (v === undefined) return undefined;
  const decoded = decodeDeadLetterCursor(v);
  if (decoded === undefined) {
    throw new UsageError('--after must be the "next" value a previous page printed');
  }
  return decoded;
}

const ACTIONS: readonly AuditAction[] = ['replay', 'purge'];

export function action(values: Values): AuditAction | undefined {
  const v = text(values, 'action');
  if (v === undefined) return undefined;
  if (!(ACTIONS as readonly string[]).includes(v)) {
    throw new UsageError(`--action must be replay or purge, got ${JSON.stringify(v)}`);
  }
  return v as AuditAction;
}

export function noPositionals(name: string, positionals: readonly string[]): void {
  if (positionals.length > 0) {
    throw new UsageError(
      `bulwark dlq ${name} takes no arguments, got ${JSON.stringify(positionals[0])}; filters are flags (--id <id>)`,
    );
  }
}
