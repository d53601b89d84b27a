/** Options of `rabbitmqQueueBackend`, validated eagerly with messages that name the fix. */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';

export interface RabbitmqQueueBackendOptions {
  /** AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672`. Required. */
  url: string;
  /**
   * Prefix of every queue and stream the backend declares (`<prefix>.q.<queue>`, ...). Letters,
   * digits, `.`, `_`, `-`. Default `"bulwark"`.
   */
  prefix?: string;
  /**
   * How many recently enqueued ids this backend remembers to skip a re-publish of a message still
   * queued (RabbitMQ has no id lookup). Default 100_000; 0 turns the check off.
   */
  dedupIds?: number;
  /**
   * Turns `availableAt` of enqueued records into a delay (the port gives `enqueue` no `now`).
   * Default: the system clock.
   */
  clock?: Clock;
  /** Connection name shown in the management UI. Default `"bulwark"`. */
  connectionName?: string;
  /**
   * Channels a `basic.get` fetch asks on in parallel (one round trip per message, and a channel
   * answers one at a time). Used when no consumer of this backend runs on the queue (a running
   * consumer's messages are pushed, see push-consumer.ts). 1-32, default 16 (twice the
   * throughput of 4 in paired runs, see the README; channels are cheap on one connection).
   */
  fetchChannels?: number;
}

export interface ResolvedOptions {
  readonly url: string;
  readonly prefix: string;
  readonly dedupIds: number;
  readonly clock: Clock;
  readonly connectionName: string;
  readonly fetchChannels: number;
}

const KNOWN = new Set(['url', 'prefix', 'dedupIds', 'clock', 'connectionName', 'fetchChannels']);
const WHERE = 'rabbitmqQueueBackend';

export function resolveOptions(options: RabbitmqQueueBackendOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${WHERE}: pass an options object, e.g. { url: 'amqp://...' }`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new InvalidOptionsError(
        `${WHERE}: unknown option "${key}"; known options are ${[...KNOWN].join(', ')}`,
      );
    }
  }
  const { url } = options;
  if (typeof url !== 'string' || !/^amqps?:\/\/./.test(url)) {
    throw new InvalidOptionsError(
      `${WHERE}: url must be an amqp:// or amqps:// URL, e.g. amqp://guest:guest@127.0.0.1:5672`,
    );
  }
  const prefix = options.prefix ?? 'bulwark';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(prefix)) {
    throw new InvalidOptionsError(
      `${WHERE}: prefix must be 1-100 letters, digits, ".", "_" or "-", got ${JSON.stringify(prefix)}`,
    );
  }
  const dedupIds = options.dedupIds ?? 100_000;
  if (!Number.isInteger(dedupIds) || dedupIds < 0) {
    throw new InvalidOptionsError(
      `${WHERE}: dedupIds must be an integer >= 0 (0 turns re-publish detection off), got ${String(dedupIds)}`,
    );
  }
  const clock = options.clock ?? systemClock;
  if (clock === null || typeof clock !== 'object' || typeof clock.wallNow !== 'function') {
    throw new InvalidOptionsError(`${WHERE}: clock must be a Clock from @bulwark/core`);
  }
  const connectionName = options.connectionName ?? 'bulwark';
  if (typeof connectionName !== 'string' || connectionName === '') {
    throw new InvalidOptionsError(`${WHERE}: connectionName must be a non-empty string`);
  }
  const fetchChannels = options.fetchChannels ?? 16;
  if (!Number.isInteger(fetchChannels) || fetchChannels < 1 || fetchChannels > 32) {
    throw new InvalidOptionsError(
      `${WHERE}: fetchChannels must be an integer from 1 to 32, got ${String(fetchChannels)}`,
    );
  }
  return { url, prefix, dedupIds, clock, connectionName, fetchChannels };
}

/** Port queue names become part of AMQP queue names (at most 255 bytes with the prefix). */
export function checkQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue === '' || Buffer.byteLength(queue) > 200) {
    throw new InvalidOptionsError(
      `rabbitmq: queue names must be 1-200 bytes, got ${JSON.stringify(queue)}`,
    );
  }
}
