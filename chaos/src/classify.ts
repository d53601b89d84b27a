/**
 * Reads one overview answer: is it a complete or degraded envelope, a problem, or something that
 * should never happen; and is its `meta` truthful (it agrees with `data` and `errors`).
 */
import { OVERVIEW_PARTS } from './faults.js';
import type { Sample } from './load.js';

export type Outcome = 'complete' | 'degraded' | 'problem' | 'unexpected' | 'hang' | 'network';

export interface PartMeta {
  status: string;
  criticality?: string;
  source?: string;
  reason?: string;
  ageMs?: number;
}

export interface Reading {
  outcome: Outcome;
  /** Per part status from `meta.parts` (200 answers only). */
  parts: Record<string, PartMeta>;
  /** Order lines in `data.orders` (200 answers with orders only): none means no catalog call. */
  orderLines?: number;
  /** Why `meta` is not truthful, or why the problem document is malformed; empty when fine. */
  defects: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The user id in `/api/users/:id/overview`. */
export function userIdOf(path: string): number {
  const match = /\/users\/(\d+)\//.exec(path);
  return match === null ? NaN : Number(match[1]);
}

function readEnvelope(sample: Sample, defects: string[]): Reading {
  const body = sample.body;
  const parts: Record<string, PartMeta> = {};
  if (!isObject(body) || !isObject(body.data) || !isObject(body.meta)) {
    defects.push('200 without a { data, meta } envelope');
    return { outcome: 'unexpected', parts, defects };
  }
  const { data, meta } = body;
  const metaParts = isObject(meta.parts) ? meta.parts : {};
  const errors = Array.isArray(body.errors) ? (body.errors as unknown[]) : [];
  const errorPaths = new Set(
    errors.map(e => (isObject(e) && Array.isArray(e.path) ? String(e.path[0]) : '')),
  );
  const user = data.user;
  if (!isObject(user) || user.id !== userIdOf(sample.path)) {
    defects.push('200 without the requested profile in data.user');
  }
  let allOk = true;
  for (const name of OVERVIEW_PARTS) {
    const part = metaParts[name];
    if (!isObject(part) || typeof part.status !== 'string') {
      defects.push(`meta.parts.${name} missing`);
      allOk = false;
      continue;
    }
    const status = part.status;
    parts[name] = {
      status,
      ...(typeof part.criticality === 'string' ? { criticality: part.criticality } : {}),
      ...(typeof part.source === 'string' ? { source: part.source } : {}),
      ...(typeof part.reason === 'string' ? { reason: part.reason } : {}),
      ...(typeof part.ageMs === 'number' ? { ageMs: part.ageMs } : {}),
    };
    if (status !== 'ok') allOk = false;
    const hasValue = data[name] !== null && data[name] !== undefined;
    if (status === 'omitted' || status === 'error') {
      if (hasValue) defects.push(`${name} is ${status} but data.${name} has a value`);
    } else if (!hasValue) {
      defects.push(`${name} is ${status} but data.${name} is null`);
    }
    if (status !== 'ok' && typeof part.reason === 'string' && !errorPaths.has(name)) {
      defects.push(`${name} is ${status} (${part.reason}) but errors has no entry for it`);
    }
    if (status === 'ok' && errorPaths.has(name)) {
      defects.push(`${name} is ok but errors has an entry for it`);
    }
    if (status === 'stale' && typeof part.ageMs !== 'number') {
      defects.push(`${name} is stale without ageMs`);
    }
  }
  const claimed = meta.status;
  if (claimed !== (allOk ? 'complete' : 'degraded')) {
    defects.push(
      `meta.status is ${String(claimed)} but parts say ${allOk ? 'complete' : 'degraded'}`,
    );
  }
  if (!allOk && sample.cacheControl !== 'no-store') {
    defects.push('degraded answer without Cache-Control: no-store');
  }
  const reading: Reading = { outcome: allOk ? 'complete' : 'degraded', parts, defects };
  if (Array.isArray(data.orders)) {
    reading.orderLines = (data.orders as unknown[]).reduce<number>(
      (n, order) => n + (isObject(order) && Array.isArray(order.lines) ? order.lines.length : 0),
      0,
    );
  }
  return reading;
}

/** Classifies one sample. */
export function read(sample: Sample): Reading {
  const defects: string[] = [];
  if (sample.failure !== undefined) return { outcome: sample.failure, parts: {}, defects };
  if (sample.status === 200) return readEnvelope(sample, defects);
  if (sample.status === 503 || sample.status === 504) {
    if (!sample.contentType.startsWith('application/problem+json')) {
      defects.push(`${sample.status} with content-type ${sample.contentType || 'none'}`);
    }
    const body = sample.body;
    if (!isObject(body) || body.status !== sample.status || typeof body.type !== 'string') {
      defects.push(`${sample.status} without a problem document`);
    }
    return { outcome: defects.length === 0 ? 'problem' : 'unexpected', parts: {}, defects };
  }
  defects.push(`unexpected status ${sample.status}`);
  return { outcome: 'unexpected', parts: {}, defects };
}
