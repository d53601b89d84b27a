/**
 * The dead letter store, kept in RabbitMQ itself: one stream (`x-queue-type: stream`) of records
 * (dead letters, replay claims, purges, restores, audit entries). Streams are append-only and
 * can be read from the first offset by anyone, non-destructively — which a queue cannot (a
 * browse of a queue is get + requeue, which counts deliveries).
 *
 * Each backend reads the stream from its first offset once, then follows it, and answers queries
 * from the view it built. A query first appends a marker and waits until it has read it back, so
 * it sees every record appended (by any process) before the query began. A replay appends a claim
 * and waits for it too: the first claim of a dead letter in stream order wins, so two processes
 * replaying the same letter at once replay it once.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import {
  compareDeadLetters,
  matchesDeadLetterFilter,
  MessagingError,
  type AuditEntry,
  type AuditQuery,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPage,
} from '@bulwark/messaging';
import { STREAM_ARGUMENTS } from './topology.js';

type StreamRecord =
  | { readonly k: 'dead'; readonly t: string; readonly letter: DeadLetter }
  | { readonly k: 'claim'; readonly t: string; readonly id: string }
  | { readonly k: 'restore'; readonly t: string; readonly letter: DeadLetter }
  | { readonly k: 'purge'; readonly t: string; readonly ids: readonly string[] }
  | { readonly k: 'audit'; readonly t: string; readonly entry: AuditEntry }
  | { readonly k: 'mark'; readonly t: string };

type RecordBody = StreamRecord extends infer R
  ? R extends StreamRecord
    ? Omit<R, 't'>
    : never
  : never;

/** Publishes one message with a publisher confirm. */
export type ConfirmedPublish = (queue: string, body: Buffer) => Promise<void>;

/** Longest wait for our own record to come back from the stream, ms. */
const READ_BACK_TIMEOUT_MS = 15_000;
/** Stream messages in flight to the reader (streams require a prefetch). */
const READER_PREFETCH = 1_000;

export class DeadLetterStream {
  private readonly letters = new Map<string, DeadLetter>();
  private readonly audit: AuditEntry[] = [];
  /** Our own records not yet read back: token -> what applying it returned. */
  private readonly waiters = new Map<string, (applied: DeadLetter | undefined) => void>();
  private declaring: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private reader: Channel | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly connection: ChannelModel,
    private readonly publish: ConfirmedPublish,
    readonly name: string,
  ) {}

  /**
   * Declares the stream (once). Publishing through the default exchange to a queue that does not
   * exist is silently dropped, so nothing is appended before this.
   */
  declare(): Promise<void> {
    this.declaring ??= (async () => {
      const channel = await this.connection.createChannel();
      channel.on('error', () => undefined);
      try {
        await channel.assertQueue(this.name, { durable: true, arguments: STREAM_ARGUMENTS });
      } finally {
        await channel.close().catch(() => undefined);
      }
    })().catch((error: unknown) => {
      this.declaring = undefined;
      throw backendError(
        `could not declare the dead letter stream ${this.name} (RabbitMQ >= 3.9 with streams is needed)`,
        error,
      );
    });
    return this.declaring;
  }

  /**
   * Starts following the stream from its first record (once, on the first query or claim: a
   * backend that only publishes and dead-letters never reads it).
   */
  start(): Promise<void> {
    this.starting ??= this.open().catch((error: unknown) => {
      this.starting = undefined;
      throw backendError(`could not open the dead letter stream ${this.name}`, error);
    });
    return this.starting;
  }

  private async open(): Promise<void> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    channel.on('close', () => {
      if (this.reader !== channel) return;
      this.reader = undefined;
      this.starting = undefined;
      // Everything applied so far is rebuilt from the first offset on the next start.
      this.letters.clear();
      this.audit.length = 0;
      this.fail(new MessagingError('BACKEND_ERROR', `rabbitmq: the reader of ${this.name} closed`));
    });
    await channel.assertQueue(this.name, { durable: true, arguments: STREAM_ARGUMENTS });
    await channel.prefetch(READER_PREFETCH);
    this.failure = undefined;
    await channel.consume(this.name, message => this.onMessage(channel, message), {
      noAck: false,
      arguments: { 'x-stream-offset': 'first' },
    });
    this.reader = channel;
  }

  async close(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    this.starting = undefined;
    await reader?.close().catch(() => undefined);
  }

  private onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) return; // cancelled by the broker (stream deleted)
    let record: StreamRecord | undefined;
    try {
      record = JSON.parse(message.content.toString('utf8')) as StreamRecord;
    } catch {
      record = undefined; // not ours: skip it
    }
    channel.ack(message);
    if (record === undefined || typeof record !== 'object' || typeof record.t !== 'string') return;
    const applied = this.apply(record);
    const waiter = this.waiters.get(record.t);
    if (waiter !== undefined) {
      this.waiters.delete(record.t);
      waiter(applied);
    }
  }

  /** Applies one record to the view; a claim returns the letter it took, if it was there. */
  private apply(record: StreamRecord): DeadLetter | undefined {
    switch (record.k) {
      case 'dead':
      case 'restore':
        this.letters.set(record.letter.id, record.letter);
        return undefined;
      case 'claim': {
        const letter = this.letters.get(record.id);
        this.letters.delete(record.id);
        return letter;
      }
      case 'purge':
        for (const id of record.ids) this.letters.delete(id);
        return undefined;
      case 'audit':
        this.audit.push(record.entry);
        return undefined;
      case 'mark':
        return undefined;
    }
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiters.values()) waiter(undefined);
    this.waiters.clear();
  }

  /** Appends a record and waits until this backend has read it back (and everything before it). */
  private async append(body: RecordBody): Promise<DeadLetter | undefined> {
    await this.start();
    const t = globalThis.crypto.randomUUID();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const readBack = new Promise<DeadLetter | undefined>((resolve, reject) => {
      this.waiters.set(t, applied => {
        clearTimeout(timer);
        if (this.failure !== undefined) reject(this.failure);
        else resolve(applied);
      });
      timer = setTimeout(() => {
        this.waiters.delete(t);
        reject(
          new MessagingError(
            'BACKEND_ERROR',
            `rabbitmq: a record appended to ${this.name} did not come back within ${READ_BACK_TIMEOUT_MS} ms`,
          ),
        );
      }, READ_BACK_TIMEOUT_MS);
    });
    try {
      await this.publish(this.name, Buffer.from(JSON.stringify({ ...body, t })));
    } catch (error) {
      clearTimeout(timer);
      this.waiters.delete(t);
      throw error;
    }
    return readBack;
  }

  /** Waits until the view holds every record appended before this call. */
  async sync(): Promise<void> {
    await this.append({ k: 'mark' });
  }

  /** Stores a dead letter (confirmed by the broker; not waited for in the view). */
  async addDead(letter: DeadLetter): Promise<void> {
    await this.declare();
    const record: StreamRecord = { k: 'dead', t: globalThis.crypto.randomUUID(), letter };
    await this.publish(this.name, Buffer.from(JSON.stringify(record)));
  }

  /** Takes dead letter `id` for a replay: the letter when this claim came first, else undefined. */
  claim(id: string): Promise<DeadLetter | undefined> {
    return this.append({ k: 'claim', id });
  }

  /** Puts back a letter whose replay could not be enqueued. */
  async restore(letter: DeadLetter): Promise<void> {
    await this.append({ k: 'restore', letter });
  }

  async purge(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.append({ k: 'purge', ids });
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await this.append({ k: 'audit', entry });
  }

  async list(filter: DeadLetterFilter, page?: DeadLetterPage): Promise<DeadLetter[]> {
    await this.sync();
    const after = page?.after;
    const matching = [...this.letters.values()]
      .filter(
        letter =>
          matchesDeadLetterFilter(letter, filter) &&
          (after === undefined || compareDeadLetters(letter, after) > 0),
      )
      .sort(compareDeadLetters);
    return page === undefined ? matching : matching.slice(0, page.limit);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    await this.sync();
    return this.letters.get(id);
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    await this.sync();
    return this.audit
      .filter(
        e =>
          (query.from === undefined || e.at >= query.from) &&
          (query.to === undefined || e.at < query.to) &&
          (query.action === undefined || e.action === query.action),
      )
      .reverse()
      .slice(0, query.limit ?? 100);
  }
}

export function backendError(what: string, cause: unknown): MessagingError {
  if (cause instanceof MessagingError) return cause;
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new MessagingError('BACKEND_ERROR', `rabbitmq: ${what}${detail}`, {
    cause,
    retryable: true,
  });
}
