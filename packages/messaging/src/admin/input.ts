/**
 * Query strings and JSON bodies of the admin routes, checked by hand (messaging has no schema
 * library). Every failing field is collected and reported at once, with where it was and what
 * would be accepted; unknown fields are refused so a typo (`error_code`) does not silently widen
 * a replay or a purge.
 */
import type { AuditAction, AuditQuery, DeadLetterCursor, DeadLetterFilter } from '../backend.js';
import { decodeDeadLetterCursor } from './cursor.js';
import { AdminInputError, type AdminFieldError } from './problem.js';
import { parseTimeInput, TIME_HINT } from './time.js';

const PAGE_MAX = 1_000;
const FILTER_QUERY_KEYS = ['queue', 'type', 'errorCode', 'from', 'to', 'text', 'id'];
const FILTER_BODY_KEYS = ['queue', 'type', 'errorCode', 'from', 'to', 'text', 'ids'];

class Fields {
  readonly errors: AdminFieldError[] = [];
  constructor(private readonly part: 'querystring' | 'body') {}

  add(field: string, message: string): void {
    this.errors.push({ field, in: this.part, message });
  }

  /** Object input with only `known` keys; anything else is recorded. */
  record(value: unknown, field: string, known: readonly string[]): Record<string, unknown> {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.add(field, 'must be a JSON object');
      return {};
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!known.includes(key)) {
        this.add(`${field}/${key}`, `unknown field; known fields are ${known.join(', ')}`);
      }
    }
    return record;
  }

  /** The top-level body: anything but a JSON object ends the check here. */
  body(value: unknown, known: readonly string[]): Record<string, unknown> {
    const record = this.record(value, '', known);
    if (
      value !== undefined &&
      value !== null &&
      (typeof value !== 'object' || Array.isArray(value))
    ) {
      this.done();
    }
    return record;
  }

  done(): void {
    if (this.errors.length > 0) throw new AdminInputError(this.errors);
  }
}

// ---- query strings (values are strings, or arrays when a key repeats) ----

function queryOne(f: Fields, query: Record<string, unknown>, key: string): string | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    f.add(key, 'give this parameter once');
    return undefined;
  }
  return value;
}

function queryInteger(
  f: Fields,
  query: Record<string, unknown>,
  key: string,
  max: number,
): number | undefined {
  const text = queryOne(f, query, key);
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    f.add(key, `must be an integer from 1 to ${max}, got ${JSON.stringify(text)}`);
    return undefined;
  }
  return n;
}

function queryTime(f: Fields, query: Record<string, unknown>, key: string): number | undefined {
  const text = queryOne(f, query, key);
  if (text === undefined) return undefined;
  const ms = parseTimeInput(text);
  if (ms === undefined) f.add(key, `${TIME_HINT}, got ${JSON.stringify(text)}`);
  return ms;
}

function queryRecord(f: Fields, query: unknown, known: readonly string[]): Record<string, unknown> {
  const record = (query ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) f.add(key, `unknown parameter; known ones are ${known.join(', ')}`);
  }
  return record;
}

function filterFromQuery(f: Fields, query: Record<string, unknown>): DeadLetterFilter {
  const filter: {
    -readonly [K in keyof DeadLetterFilter]: DeadLetterFilter[K];
  } = {};
  for (const key of ['queue', 'type', 'errorCode', 'text'] as const) {
    const value = queryOne(f, query, key);
    if (value !== undefined && value !== '') filter[key] = value;
  }
  const from = queryTime(f, query, 'from');
  if (from !== undefined) filter.from = from;
  const to = queryTime(f, query, 'to');
  if (to !== undefined) filter.to = to;
  const ids = query.id;
  if (ids !== undefined) {
    const list = Array.isArray(ids) ? ids : [ids];
    if (list.some(id => typeof id !== 'string' || id === '')) {
      f.add('id', 'must be non-empty dead letter ids (repeat id=... for several)');
    } else filter.ids = list as string[];
  }
  return filter;
}

export interface ListInput {
  readonly filter: DeadLetterFilter;
  readonly limit: number;
  readonly after?: DeadLetterCursor;
}

export function parseListQuery(query: unknown): ListInput {
  const f = new Fields('querystring');
  const q = queryRecord(f, query, [...FILTER_QUERY_KEYS, 'limit', 'after']);
  const filter = filterFromQuery(f, q);
  const limit = queryInteger(f, q, 'limit', PAGE_MAX) ?? 100;
  const afterText = queryOne(f, q, 'after');
  const after = afterText === undefined ? undefined : decodeDeadLetterCursor(afterText);
  if (afterText !== undefined && after === undefined) {
    f.add('after', 'must be the `next` value of a previous page');
  }
  f.done();
  return after === undefined ? { filter, limit } : { filter, limit, after };
}

export function parseSummaryQuery(query: unknown): DeadLetterFilter {
  const f = new Fields('querystring');
  const filter = filterFromQuery(f, queryRecord(f, query, FILTER_QUERY_KEYS));
  f.done();
  return filter;
}

const ACTIONS: readonly AuditAction[] = ['replay', 'purge'];

export function parseAuditQuery(query: unknown): AuditQuery {
  const f = new Fields('querystring');
  const q = queryRecord(f, query, ['from', 'to', 'action', 'limit']);
  const out: { -readonly [K in keyof AuditQuery]: AuditQuery[K] } = {};
  const from = queryTime(f, q, 'from');
  if (from !== undefined) out.from = from;
  const to = queryTime(f, q, 'to');
  if (to !== undefined) out.to = to;
  const action = queryOne(f, q, 'action');
  if (action !== undefined) {
    if ((ACTIONS as readonly string[]).includes(action)) out.action = action as AuditAction;
    else f.add('action', `must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
  }
  out.limit = queryInteger(f, q, 'limit', PAGE_MAX) ?? 100;
  f.done();
  return out;
}

// ---- JSON bodies ----

function bodyFilter(f: Fields, value: unknown, field: string): DeadLetterFilter {
  const record = f.record(value, field, FILTER_BODY_KEYS);
  const filter: { -readonly [K in keyof DeadLetterFilter]: DeadLetterFilter[K] } = {};
  for (const key of ['queue', 'type', 'errorCode', 'text'] as const) {
    const v = record[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') f.add(`${field}/${key}`, 'must be a string');
    else if (v !== '') filter[key] = v;
  }
  for (const key of ['from', 'to'] as const) {
    const v = record[key];
    if (v === undefined || v === null) continue;
    const ms = parseTimeInput(v);
    if (ms === undefined) f.add(`${field}/${key}`, TIME_HINT);
    else filter[key] = ms;
  }
  const ids = record.ids;
  if (ids !== undefined && ids !== null) {
    if (!Array.isArray(ids) || ids.some(id => typeof id !== 'string' || id === '')) {
      f.add(`${field}/ids`, 'must be an array of dead letter ids (non-empty strings)');
    } else filter.ids = ids as string[];
  }
  return filter;
}

function bodyBoolean(f: Fields, record: Record<string, unknown>, key: string): boolean {
  const v = record[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') f.add(`/${key}`, 'must be true or false');
  return v === true;
}

function bodyPositive(
  f: Fields,
  record: Record<string, unknown>,
  key: string,
  integer: boolean,
): number | undefined {
  const v = record[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    f.add(`/${key}`, `must be a ${integer ? 'whole' : 'finite'} number > 0`);
    return undefined;
  }
  return v;
}

function bodyText(f: Fields, record: Record<string, unknown>, key: string): string | undefined {
  const v = record[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') {
    f.add(`/${key}`, 'must be a non-empty string');
    return undefined;
  }
  return v;
}

export interface ReplayInput {
  readonly filter: DeadLetterFilter;
  readonly dryRun: boolean;
  readonly limit?: number;
  readonly ratePerSecond?: number;
  /** Present (even as null) when the body had a `payload` field. */
  readonly payload?: { readonly value: unknown };
  readonly toQueue?: string;
}

export function parseReplayBody(body: unknown): ReplayInput {
  const f = new Fields('body');
  const record = f.body(body, ['filter', 'dryRun', 'limit', 'ratePerSecond', 'payload', 'toQueue']);
  if (record.filter === undefined || record.filter === null) {
    f.add('/filter', 'is required: { "queue": "emails" }, or {} to replay every dead letter');
  }
  const filter = bodyFilter(f, record.filter, '/filter');
  const result = replayCommon(f, record);
  const limit = bodyPositive(f, record, 'limit', true);
  const ratePerSecond = bodyPositive(f, record, 'ratePerSecond', false);
  f.done();
  return {
    filter,
    ...result,
    ...(limit === undefined ? {} : { limit }),
    ...(ratePerSecond === undefined ? {} : { ratePerSecond }),
  };
}

/** The body of `POST /dead-letters/:id/replay`: the id is in the path. */
export function parseSingleReplayBody(body: unknown): Omit<ReplayInput, 'filter'> {
  const f = new Fields('body');
  const record = f.body(body, ['dryRun', 'payload', 'toQueue']);
  const result = replayCommon(f, record);
  f.done();
  return result;
}

function replayCommon(
  f: Fields,
  record: Record<string, unknown>,
): { dryRun: boolean; payload?: { value: unknown }; toQueue?: string } {
  const dryRun = bodyBoolean(f, record, 'dryRun');
  const toQueue = bodyText(f, record, 'toQueue');
  return {
    dryRun,
    ...('payload' in record ? { payload: { value: record.payload } } : {}),
    ...(toQueue === undefined ? {} : { toQueue }),
  };
}

export interface PurgeInput {
  readonly filter: DeadLetterFilter;
  readonly all: boolean;
  readonly dryRun: boolean;
}

export function parsePurgeBody(body: unknown): PurgeInput {
  const f = new Fields('body');
  const record = f.body(body, ['filter', 'all', 'dryRun']);
  if (record.filter === undefined || record.filter === null) {
    f.add('/filter', 'is required: { "queue": "emails" }, or {} with "all": true for everything');
  }
  const filter = bodyFilter(f, record.filter, '/filter');
  const all = bodyBoolean(f, record, 'all');
  const dryRun = bodyBoolean(f, record, 'dryRun');
  f.done();
  return { filter, all, dryRun };
}
