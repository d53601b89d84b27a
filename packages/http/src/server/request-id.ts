/**
 * Request ids in and out. An incoming id is accepted only when it is short and made of safe
 * characters: it ends up in logs and in headers we send downstream, so anything else (log
 * injection, header smuggling, megabyte ids) is replaced by a fresh one.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The longest incoming request id we keep, in characters. */
export const MAX_REQUEST_ID_LENGTH = 128;
const SAFE_ID = /^[A-Za-z0-9._:@/+=-]+$/;

/** The incoming id if it is sane (1–128 characters of `A-Za-z0-9._:@/+=-`), else undefined. */
export function acceptRequestId(value: string | string[] | undefined): string | undefined {
  const id = Array.isArray(value) ? value[0] : value;
  if (id === undefined || id.length === 0 || id.length > MAX_REQUEST_ID_LENGTH) return undefined;
  return SAFE_ID.test(id) ? id : undefined;
}

/** A fresh request id (a random UUID). */
export function generateRequestId(): string {
  return randomUUID();
}

/** @internal Marks ids produced by {@link requestIdGenerator}, so the plugin knows `request.id` is ours. */
export const kBulwarkRequestId = Symbol.for('bulwark.requestId');

/**
 * A Fastify `genReqId` that honours a sane incoming request id header and generates one
 * otherwise. Pass it to the Fastify factory so `request.id` and the logger's `reqId` binding are
 * right from the first log line:
 * `Fastify({ genReqId: requestIdGenerator() })`. Without it the plugin still fixes `request.id`
 * and `request.log` in its `onRequest` hook, after Fastify's own "incoming request" line.
 */
export function requestIdGenerator(
  options: { header?: string } = {},
): (raw: IncomingMessage) => string {
  const header = (options.header ?? 'x-request-id').toLowerCase();
  return raw => {
    const id = acceptRequestId(raw.headers[header]) ?? generateRequestId();
    (raw as unknown as Record<symbol, string>)[kBulwarkRequestId] = id;
    return id;
  };
}
