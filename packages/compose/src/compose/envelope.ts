/**
 * The partial-response envelope (DESIGN.md "Partial responses"): GraphQL's `data` + `errors`, plus
 * `meta` with each part's status. Built from a run's result; nothing of an upstream error but its
 * classified reason reaches it.
 */
import type { PartSource } from '../provenance.js';
import { RawJson } from './raw-json.js';
import { codeOf, publicMessage, retryableReason } from './reasons.js';
import type { CompositionResult, Criticality, PartReason, PartStatus } from './types.js';

export interface EnvelopeError {
  message: string;
  path: [string];
  extensions: { code: string; retryable: boolean; part: string };
}

export interface EnvelopePartMeta {
  status: PartStatus;
  criticality: Criticality;
  source?: PartSource;
  ageMs?: number;
  reason?: PartReason;
  retryAfterMs?: number;
  latencyMs: number;
}

export interface Envelope {
  /** Every part by name; a part without a value is `null` and has an entry in `errors`. */
  data: Record<string, unknown>;
  /** One entry per part that is not `ok` (absent when there is none, as in GraphQL). */
  errors?: EnvelopeError[];
  meta: {
    status: 'complete' | 'degraded';
    requestId?: string;
    deadline: { budgetMs: number; elapsedMs: number };
    parts: Record<string, EnvelopePartMeta>;
  };
}

/** Whole milliseconds: sub-millisecond noise is not information for a client. */
const ms = (value: number): number => Math.round(value);

/**
 * The envelope of a run. A failed run has no envelope of its own (it is answered with a problem
 * document), but one can still be built, with `meta.status: 'degraded'`, for logs.
 */
export function toEnvelope(result: CompositionResult<object>): Envelope {
  const data: Record<string, unknown> = {};
  const errors: EnvelopeError[] = [];
  const parts: Record<string, EnvelopePartMeta> = {};
  const values = result.data as Record<string, unknown>;
  const outcomes = result.parts as Record<string, CompositionResult['parts'][string]>;
  for (const name of Object.keys(outcomes)) {
    const outcome = outcomes[name] as CompositionResult['parts'][string];
    const hasValue = outcome.status !== 'omitted' && outcome.status !== 'error';
    const value = hasValue ? values[name] : undefined;
    data[name] = value === undefined ? null : value;
    const meta: EnvelopePartMeta = {
      status: outcome.status,
      criticality: outcome.criticality,
      latencyMs: ms(outcome.latencyMs),
    };
    if (outcome.source !== undefined) meta.source = outcome.source;
    if (outcome.ageMs !== undefined) meta.ageMs = ms(outcome.ageMs);
    if (outcome.reason !== undefined) meta.reason = outcome.reason;
    if (outcome.retryAfterMs !== undefined) meta.retryAfterMs = ms(outcome.retryAfterMs);
    parts[name] = meta;
    if (outcome.status !== 'ok') {
      // A stale value served by a read-through cache has no failure behind it.
      const reason = outcome.reason;
      if (reason !== undefined) {
        errors.push({
          message: publicMessage(name, outcome.status, reason),
          path: [name],
          extensions: { code: codeOf(reason), retryable: retryableReason(reason), part: name },
        });
      }
    }
  }
  const meta: Envelope['meta'] = {
    status: result.status === 'complete' ? 'complete' : 'degraded',
    deadline: { budgetMs: ms(result.budgetMs), elapsedMs: ms(result.elapsedMs) },
    parts,
  };
  if (result.requestId !== undefined) meta.requestId = result.requestId;
  // Key order as in DESIGN.md: data, errors, meta.
  const envelope: Envelope = errors.length > 0 ? { data, errors, meta } : { data, meta };
  return envelope;
}

/**
 * The envelope as JSON text, as `JSON.stringify(envelope)` writes it, except that a part value
 * that is {@link RawJson} goes in as its text (no parse, no second serialization). Members are
 * written in the envelope's order (data, errors, meta), as {@link toEnvelope} builds it.
 */
export function envelopeJson(envelope: Envelope): string {
  const data = envelope.data;
  let raw = false;
  for (const name in data) {
    if (data[name] instanceof RawJson) {
      raw = true;
      break;
    }
  }
  if (!raw) return JSON.stringify(envelope);
  let out = '{"data":{';
  let first = true;
  for (const name of Object.keys(data)) {
    const value = data[name];
    const json =
      value instanceof RawJson ? value.json : (JSON.stringify(value) as string | undefined);
    // What JSON.stringify does with a property it cannot write (a function, undefined): skip it.
    if (json === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(name)}:${json}`;
    first = false;
  }
  out += '}';
  if (envelope.errors !== undefined) out += `,"errors":${JSON.stringify(envelope.errors)}`;
  return `${out},"meta":${JSON.stringify(envelope.meta)}}`;
}
