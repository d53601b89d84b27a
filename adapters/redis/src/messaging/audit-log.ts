/**
 * The audit log of replays and purges: one stream per prefix (`{prefix}:audit`), one JSON entry
 * per XADD, read newest first with XREVRANGE. Times (`at`) are the caller's clock, filtered here,
 * never the entry ids' server time.
 */
import type { AuditEntry, AuditQuery } from '@bulwark/messaging';
import type { Redis } from 'ioredis';

const CHUNK = 200;

export async function appendAuditEntry(
  client: Redis,
  key: string,
  entry: AuditEntry,
): Promise<void> {
  await client.xadd(key, '*', 'e', JSON.stringify(entry));
}

export async function listAuditEntries(
  client: Redis,
  key: string,
  query: AuditQuery,
): Promise<AuditEntry[]> {
  const limit = query.limit ?? 100;
  const out: AuditEntry[] = [];
  let end = '+';
  while (out.length < limit) {
    const rows = await client.xrevrange(key, end, '-', 'COUNT', CHUNK);
    for (const [id, fields] of rows) {
      end = `(${id}`;
      const json = fields[1];
      if (json === undefined) continue;
      const entry = JSON.parse(json) as AuditEntry;
      if (query.from !== undefined && !(entry.at >= query.from)) continue;
      if (query.to !== undefined && !(entry.at < query.to)) continue;
      if (query.action !== undefined && entry.action !== query.action) continue;
      out.push(entry);
      if (out.length >= limit) break;
    }
    if (rows.length < CHUNK) break;
  }
  return out;
}
