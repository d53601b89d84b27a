/** Human output of the `dlq` commands (with `--json` the results are printed as they are). */
import type {
  AuditEntry,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterSummary,
  PurgeResult,
  ReplayResult,
} from '@bulwark/messaging';
import { cell, iso, table } from '../table.js';

export function formatList(items: readonly DeadLetter[], next: string | undefined): string {
  if (items.length === 0) return 'no dead letters match\n';
  const rows = items.map(l => [
    iso(l.deadAt),
    l.id,
    l.sourceQueue,
    l.message.type,
    l.lastError.code,
    String(l.message.attempt),
    cell(l.lastError.message),
  ]);
  const out = table(['DEAD AT', 'ID', 'QUEUE', 'TYPE', 'ERROR', 'ATTEMPTS', 'MESSAGE'], rows);
  return next === undefined ? out : `${out}more: add --after ${next}\n`;
}

export function formatLetter(l: DeadLetter): string {
  const m = l.message;
  const fields: [string, string][] = [
    ['id', l.id],
    ['queue', l.sourceQueue],
    ['type', m.type],
    ['reason', l.reason],
    ['dead at', iso(l.deadAt)],
    ['first seen', iso(m.firstSeenAt)],
    ['attempts', String(m.attempt)],
    ['idempotency key', m.idempotencyKey ?? '(none)'],
    ['last error', `${l.lastError.code}: ${l.lastError.message}`],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  let out = fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
  const headers = Object.entries(m.headers);
  out += '\nheaders\n';
  out +=
    headers.length === 0
      ? '  (none)\n'
      : indent(
          table(
            ['NAME', 'VALUE'],
            headers.map(([k, v]) => [k, v]),
          ),
        );
  out += '\nhistory\n';
  out +=
    l.attempts.length === 0
      ? '  (none)\n'
      : indent(
          table(
            ['#', 'STARTED', 'ENDED', 'ERROR', 'MESSAGE'],
            l.attempts.map(a => [
              String(a.attempt),
              iso(a.startedAt),
              iso(a.endedAt),
              a.code,
              cell(a.message, 80),
            ]),
          ),
        );
  out += '\npayload\n' + indent(`${JSON.stringify(m.payload, null, 2) ?? 'undefined'}\n`);
  return out;
}

export function formatSummary(summary: DeadLetterSummary): string {
  if (summary.total === 0) return 'no dead letters match\n';
  return byQueue(summary.byQueue) + `total ${summary.total}\n`;
}

export function formatReplay(result: ReplayResult): string {
  if (result.dryRun) {
    const shown = result.ids.length;
    let out = `dry run: would replay ${shown} of ${result.matched} matching dead letters; nothing was replayed\n`;
    if (result.matched > 0) out += '\n' + byQueue(result.byQueue);
    if (shown > 0)
      out +=
        '\n' +
        table(
          ['ID'],
          result.ids.map(id => [id]),
        );
    return out;
  }
  let out = `replayed ${result.ids.length} of ${result.matched} matching dead letters`;
  out += result.skipped > 0 ? ` (${result.skipped} gone before their turn)\n` : '\n';
  if (result.ids.length > 0) {
    out +=
      '\n' +
      table(
        ['DEAD LETTER', 'NEW MESSAGE'],
        result.ids.map((id, i) => [id, result.messageIds[i] ?? '']),
      );
  }
  return out;
}

export function formatPurge(result: PurgeResult): string {
  const head = result.dryRun
    ? `dry run: would purge ${result.count} dead letters; nothing was deleted\n`
    : `purged ${result.count} dead letters\n`;
  return result.count === 0 ? head : `${head}\n${byQueue(result.byQueue)}`;
}

export function formatAudit(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return 'no audit entries match\n';
  return table(
    ['AT', 'ACTION', 'ACTOR', 'DRY RUN', 'COUNT', 'FILTER', 'NOTE'],
    entries.map(e => [
      iso(e.at),
      e.action,
      e.actor ?? '-',
      e.dryRun ? 'yes' : 'no',
      String(e.count),
      cell(describeFilter(e.filter), 50),
      e.note ?? '',
    ]),
  );
}

export function describeFilter(filter: DeadLetterFilter): string {
  const parts: string[] = [];
  if (filter.queue !== undefined) parts.push(`queue=${filter.queue}`);
  if (filter.type !== undefined) parts.push(`type=${filter.type}`);
  if (filter.errorCode !== undefined) parts.push(`error-code=${filter.errorCode}`);
  if (filter.from !== undefined) parts.push(`from=${iso(filter.from)}`);
  if (filter.to !== undefined) parts.push(`to=${iso(filter.to)}`);
  if (filter.text !== undefined) parts.push(`text=${JSON.stringify(filter.text)}`);
  if (filter.ids !== undefined) parts.push(`ids=${filter.ids.join(',')}`);
  return parts.length === 0 ? '(all)' : parts.join(' ');
}

function byQueue(counts: Readonly<Record<string, number>>): string {
  const rows = Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, n]) => [queue, String(n)]);
  return table(['QUEUE', 'COUNT'], rows);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map(line => (line === '' ? line : `  ${line}`))
    .join('\n');
}
