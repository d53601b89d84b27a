/**
 * Names of the JetStream streams, subjects and consumers one backend uses. Everything a backend
 * creates starts with its prefix, so several backends (apps, test runs) share one server safely.
 *
 * Queue names and message ids are free text, but subject tokens and consumer names may not hold
 * `.`, `*`, `>` or spaces: they are escaped into `[A-Za-z0-9-_]` (every other byte, `_` included,
 * becomes `_XX` in hex), which is reversible and keeps plain names readable in the `nats` CLI.
 */

/** A prefix is one subject token and part of stream names: letters, digits, `-` and `_`. */
export const PREFIX_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function escapeToken(text: string): string {
  let out = '';
  for (const byte of encoder.encode(text)) {
    const isPlain =
      (byte >= 0x30 && byte <= 0x39) || // 0-9
      (byte >= 0x41 && byte <= 0x5a) || // A-Z
      (byte >= 0x61 && byte <= 0x7a) || // a-z
      byte === 0x2d; // -
    out += isPlain ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export function unescapeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '_') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

export interface Names {
  /** Work-queue stream holding the messages of every queue (WorkQueue retention). */
  readonly queueStream: string;
  /** Per-message state: attempt count, history and the current lease (one subject per message). */
  readonly stateStream: string;
  /** Dead letters as `DeadLetter` records (Limits retention: browsable, one subject per letter). */
  readonly deadStream: string;
  /** Append-only audit log of replays and purges. */
  readonly auditStream: string;
  readonly auditSubject: string;
  queueSubject(queue: string): string;
  /** The durable pull consumer of one queue. */
  consumerName(queue: string): string;
  stateSubject(queue: string, id: string): string;
  /** Every state subject of one queue. */
  stateFilter(queue: string): string;
  deadSubject(queue: string, id: string): string;
  /** Dead letters of one queue, or of all queues. */
  deadFilter(queue?: string): string;
  /** The dead letter with this id, whatever its queue. */
  deadByIdFilter(id: string): string;
}

export function names(prefix: string): Names {
  return {
    queueStream: `${prefix}_queues`,
    stateStream: `${prefix}_state`,
    deadStream: `${prefix}_dead`,
    auditStream: `${prefix}_audit`,
    auditSubject: `${prefix}.audit`,
    queueSubject: queue => `${prefix}.q.${escapeToken(queue)}`,
    consumerName: queue => `q-${escapeToken(queue)}`,
    stateSubject: (queue, id) => `${prefix}.s.${escapeToken(queue)}.${escapeToken(id)}`,
    stateFilter: queue => `${prefix}.s.${escapeToken(queue)}.*`,
    deadSubject: (queue, id) => `${prefix}.d.${escapeToken(queue)}.${escapeToken(id)}`,
    deadFilter: queue =>
      queue === undefined ? `${prefix}.d.>` : `${prefix}.d.${escapeToken(queue)}.*`,
    deadByIdFilter: id => `${prefix}.d.*.${escapeToken(id)}`,
  };
}
