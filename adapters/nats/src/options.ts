/** Options of `natsQueueBackend`, their defaults and eager validation. */
import { InvalidOptionsError } from '@bulwark/core';
import { PREFIX_PATTERN } from './names.js';

export interface NatsQueueBackendOptions {
  /** Server URL(s): `nats://host:4222` or `tls://host:4222`; a comma-separated list for a cluster. */
  url: string;
  /**
   * Starts the name of every stream, subject and consumer this backend creates. Letters, digits,
   * `-` and `_`, at most 32. Default `bulwark`.
   */
  prefix?: string;
  /**
   * How much longer than a fetch's `leaseMs` the broker's ack wait is, ms. Leases run on the
   * consumer's clock and expire through `recoverExpiredLeases`; the broker's own redelivery at
   * `leaseMs + ackWaitMarginMs` is the net under it for when no consumer is left to recover.
   * Default 5_000.
   */
  ackWaitMarginMs?: number;
  /**
   * Messages one queue may have delivered and unacknowledged at once (leased, plus waiting out a
   * retry, defer or send delay: JetStream counts a nak'd message as pending). Default 10_000.
   */
  maxAckPending?: number;
  /**
   * The queue stream's duplicate window, ms: re-sending a message id within it is skipped
   * (`Nats-Msg-Id`). Default 120_000.
   */
  duplicateWindowMs?: number;
  /** Stream replicas (1 on a single server, 3 on a cluster). Default 1. */
  replicas?: number;
  /** Where the streams live. Default `file`. */
  storage?: 'file' | 'memory';
  /** Time limit for each request to the server, ms. Default 5_000. */
  requestTimeoutMs?: number;
  /** Connection name shown by the server's monitoring. Default `bulwark-<prefix>`. */
  name?: string;
}

export interface ResolvedOptions {
  readonly url: string;
  readonly prefix: string;
  readonly ackWaitMarginMs: number;
  readonly maxAckPending: number;
  readonly duplicateWindowMs: number;
  readonly replicas: number;
  readonly storage: 'file' | 'memory';
  readonly requestTimeoutMs: number;
  readonly name: string;
}

const KNOWN = [
  'url',
  'prefix',
  'ackWaitMarginMs',
  'maxAckPending',
  'duplicateWindowMs',
  'replicas',
  'storage',
  'requestTimeoutMs',
  'name',
];

const WHERE = 'natsQueueBackend';

export function resolveOptions(options: NatsQueueBackendOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(
      `${WHERE}: expected an options object { url, prefix? }, got ${String(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) {
      throw new InvalidOptionsError(
        `${WHERE}: unknown option "${key}"; known options are ${KNOWN.join(', ')}`,
      );
    }
  }
  const url: unknown = options.url;
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidOptionsError(
      `${WHERE}: url is required, for example "nats://127.0.0.1:4222" (NATS_URL)`,
    );
  }
  for (const server of url.split(',').map(s => s.trim())) {
    if (!/^(nats|tls):\/\/[^\s/]+(:\d+)?\/?$/.test(server)) {
      throw new InvalidOptionsError(
        `${WHERE}: url must be nats://host:port or tls://host:port (comma-separated for a cluster), got ${JSON.stringify(server)}`,
      );
    }
  }
  const prefix = options.prefix ?? 'bulwark';
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionsError(
      `${WHERE}: prefix must be 1 to 32 letters, digits, "-" or "_" (it starts stream names and subjects), got ${JSON.stringify(prefix)}`,
    );
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') {
    throw new InvalidOptionsError(
      `${WHERE}: storage must be "file" or "memory", got ${JSON.stringify(storage)}`,
    );
  }
  const name = options.name ?? `bulwark-${prefix}`;
  if (typeof name !== 'string' || name === '') {
    throw new InvalidOptionsError(`${WHERE}: name must be a non-empty string`);
  }
  return {
    url,
    prefix,
    ackWaitMarginMs: integer('ackWaitMarginMs', options.ackWaitMarginMs ?? 5_000, 0),
    maxAckPending: integer('maxAckPending', options.maxAckPending ?? 10_000, 1),
    duplicateWindowMs: integer('duplicateWindowMs', options.duplicateWindowMs ?? 120_000, 1),
    replicas: integer('replicas', options.replicas ?? 1, 1),
    storage,
    requestTimeoutMs: integer('requestTimeoutMs', options.requestTimeoutMs ?? 5_000, 1),
    name,
  };
}

function integer(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionsError(
      `${WHERE}: ${option} must be an integer >= ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
