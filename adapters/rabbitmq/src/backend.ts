/**
 * `QueueBackend` on RabbitMQ (amqplib): quorum work queues, delay buckets (TTL queues that
 * dead-letter back to the work queue), publisher confirms on every publish, and a stream as the
 * dead letter store (dead-letter-stream.ts).
 *
 * Leases: a leased message is an unacked delivery, pushed by the queue's `basic.consume` while a
 * consumer of this backend runs on the queue (push-consumer.ts), else taken by a `basic.get`
 * without auto-ack on one of this backend's lease channels. The lease itself (token, expiry by the caller's `now`) lives
 * here; settling re-publishes (retry, defer: with the new attempt count and history) or appends
 * to the dead letter stream, then acks. If this process dies, its channel closes and the broker
 * puts the message back with `x-delivery-count` raised: the attempt it was on was spent and ended
 * when its lease was lost, so the next fetch holds such a message as an expired lease, and
 * `recoverExpiredLeases` applies the consumer's policy to it (retry or dead letter) like to any
 * other lease that ran out.
 */
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type GetMessage,
  type Message,
} from 'amqplib';
import type { Disposable } from '@bulwark/core';
import {
  MessagingError,
  type AttemptRecord,
  type AuditEntry,
  type AuditQuery,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPage,
  type DeadLetterSummary,
  type Delivery,
  type EnqueueRecord,
  type FetchRequest,
  type FetchResult,
  type Lease,
  type QueueBackend,
  type QueueStats,
  type RecoverRequest,
  type Settlement,
} from '@bulwark/messaging';
import { backendError, DeadLetterStream } from './dead-letter-stream.js';
import {
  comparePublished,
  decodeEnvelope,
  encodeEnvelope,
  envelopeOf,
  messageOf,
  type Envelope,
} from './envelope.js';
import {
  checkQueueName,
  resolveOptions,
  type RabbitmqQueueBackendOptions,
  type ResolvedOptions,
} from './options.js';
import { PushConsumer } from './push-consumer.js';
import {
  DELAY_BUCKET_IDLE_MS,
  delayBucketMs,
  delayQueueArguments,
  topology,
  WORK_QUEUE_ARGUMENTS,
  type Topology,
} from './topology.js';

interface HeldLease {
  readonly queue: string;
  readonly token: string;
  readonly delivery: Message;
  readonly channel: Channel;
  /** Set when the delivery was pushed by the queue's consume (not fetched by `basic.get`). */
  readonly push: PushConsumer | undefined;
  /** With the history records of earlier crash returns added (see `lease`). */
  readonly envelope: Envelope;
  readonly attempt: number;
  readonly leasedAt: number;
  expiresAt: number;
}

/** How long after a scheduled message falls due a fetch still reports it as coming, ms. */
const DUE_GRACE_MS = 100;
/** How soon to look again for a message that is due but not back from its delay bucket, ms. */
const DUE_RECHECK_MS = 5;

export interface RabbitmqQueueBackend extends QueueBackend {
  readonly name: 'rabbitmq';
  readonly prefix: string;
  /**
   * Names of the queues and the stream this backend declared (work queues, delay buckets, the
   * dead letter stream), for tooling and test clean-up.
   */
  declaredQueues(): readonly string[];
  /**
   * Deliveries the broker pushed to this backend's consume on `queue` that no fetch has leased
   * yet (0 when no consumer runs there). Part of `stats().ready`.
   */
  waiting(queue: string): Promise<number>;
  /**
   * Wake-ups, and the mark of a running consumer: from its first fetch the queue has a consume
   * (push-consumer.ts) until the last subscription is disposed.
   */
  subscribe(queue: string, listener: () => void): Promise<Disposable>;
  /** Closes the connection (and with it every unsettled lease: the broker redelivers those). */
  close(): Promise<void>;
}

/**
 * Connects and declares the dead letter stream; queues are declared on first use, and the stream
 * is read from the first dead letter query on.
 */
export async function rabbitmqQueueBackend(
  options: RabbitmqQueueBackendOptions,
): Promise<RabbitmqQueueBackend> {
  const resolved = resolveOptions(options);
  let connection: ChannelModel;
  try {
    connection = await amqp.connect(resolved.url, {
      clientProperties: { connection_name: resolved.connectionName },
      // Without it, an ack followed by a basic.get waits out TCP delayed-ACK (~40 ms) each time.
      noDelay: true,
    });
  } catch (error) {
    throw backendError(`could not connect to ${redact(resolved.url)}`, error);
  }
  const backend = new RabbitmqBackend(connection, resolved);
  try {
    await backend.start();
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  return backend;
}

class RabbitmqBackend implements RabbitmqQueueBackend {
  readonly name = 'rabbitmq' as const;
  readonly prefix: string;
  private readonly names: Topology;
  private readonly stream: DeadLetterStream;
  private readonly leases = new Map<string, HeldLease>();
  /** Channels that closed: their deliveries are back with the broker, so their leases are void. */
  private readonly closedChannels = new WeakSet<Channel>();
  /** Per lease channel, the round trip that will confirm the acks sent in this tick. */
  private readonly ackFlushes = new WeakMap<Channel, Promise<void>>();
  /** Ids this backend enqueued and has not seen settled for good (re-publish detection). */
  private readonly live = new Map<string, true>();
  private readonly declared = new Map<string, Promise<void>>();
  /** Delay bucket -> when it was last declared (x-expires restarts then), epoch ms. */
  private readonly bucketDeclaredAt = new Map<string, number>();
  /** Queue -> delay buckets this backend used (for stats). */
  private readonly buckets = new Map<string, Set<string>>();
  /** Queue -> due times of messages this backend scheduled, epoch ms. */
  private readonly due = new Map<string, number[]>();
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Queue -> running consumers of this backend on it (subscriptions not disposed). */
  private readonly subscribers = new Map<string, number>();
  /** Queue -> its consume (push-consumer.ts), opened by the first fetch while subscribed. */
  private readonly pushes = new Map<string, Promise<PushConsumer>>();
  /** Hand-backs of stopped consumes in progress (close waits for them). */
  private readonly handingBack = new Set<Promise<void>>();
  private publisher: Promise<ConfirmChannel> | undefined;
  /** Channels that `basic.get` and hold leases; a fetch asks on all of them at once. */
  private readonly leaseChannels: (Promise<Channel> | undefined)[];
  private admin: Promise<Channel> | undefined;
  private closed = false;
  private lost: Error | undefined;

  constructor(
    private readonly connection: ChannelModel,
    private readonly options: ResolvedOptions,
  ) {
    this.prefix = options.prefix;
    this.names = topology(options.prefix);
    this.leaseChannels = new Array<Promise<Channel> | undefined>(options.fetchChannels);
    this.stream = new DeadLetterStream(
      connection,
      (queue, body) => this.publish(queue, body),
      this.names.deadLetterStream,
    );
    connection.on('error', () => undefined);
    connection.on('close', (error?: Error) => {
      this.lost = error ?? new Error('connection closed');
      this.leases.clear();
    });
  }

  start(): Promise<void> {
    return this.stream.declare();
  }

  // ---- channels ------------------------------------------------------------------------------

  private alive(): void {
    if (this.closed) throw new MessagingError('BACKEND_ERROR', 'rabbitmq: the backend is closed');
    if (this.lost !== undefined) throw backendError('the connection was lost', this.lost);
  }

  private channel<C extends Channel>(
    open: () => Promise<C>,
    onClose: (channel: C) => void,
  ): Promise<C> {
    return open().then(channel => {
      channel.on('error', () => undefined);
      channel.on('close', () => {
        this.closedChannels.add(channel);
        onClose(channel);
      });
      return channel;
    });
  }

  private publisherChannel(): Promise<ConfirmChannel> {
    this.alive();
    this.publisher ??= this.channel(
      () => this.connection.createConfirmChannel(),
      () => (this.publisher = undefined),
    ).catch((error: unknown) => {
      this.publisher = undefined;
      throw backendError('could not open a confirm channel', error);
    });
    return this.publisher;
  }

  private leasesChannel(index: number): Promise<Channel> {
    this.alive();
    let channel = this.leaseChannels[index];
    if (channel === undefined) {
      channel = this.channel(
        () => this.connection.createChannel(),
        closed => {
          this.leaseChannels[index] = undefined;
          this.forgetLeasesOn(closed);
        },
      ).catch((error: unknown) => {
        this.leaseChannels[index] = undefined;
        throw backendError('could not open a channel', error);
      });
      this.leaseChannels[index] = channel;
    }
    return channel;
  }

  /** A channel's unacked deliveries go back to their queues when it closes: its leases are gone. */
  private forgetLeasesOn(closed: Channel): void {
    for (const [id, held] of this.leases) if (held.channel === closed) this.leases.delete(id);
  }

  /** The queue's consume, on its own channel (opened on first use, again after it closed). */
  private pushConsumer(queue: string): Promise<PushConsumer> {
    this.alive();
    let push = this.pushes.get(queue);
    if (push === undefined) {
      let opened: PushConsumer | undefined;
      push = this.channel(
        () => this.connection.createChannel(),
        closed => {
          if (this.pushes.get(queue) === push) this.pushes.delete(queue);
          opened?.reset();
          this.forgetLeasesOn(closed);
        },
      ).then(
        channel => (opened = new PushConsumer(channel, () => this.wake(queue))),
        (error: unknown) => {
          this.pushes.delete(queue);
          throw backendError('could not open a channel', error);
        },
      );
      this.pushes.set(queue, push);
    }
    return push;
  }

  private adminChannel(): Promise<Channel> {
    this.alive();
    this.admin ??= this.channel(
      () => this.connection.createChannel(),
      () => (this.admin = undefined),
    ).catch((error: unknown) => {
      this.admin = undefined;
      throw backendError('could not open a channel', error);
    });
    return this.admin;
  }

  /** Publishes to a queue through the default exchange and waits for the broker's confirm. */
  private async publish(
    queue: string,
    body: Buffer,
    messageId?: string,
    type?: string,
  ): Promise<void> {
    const channel = await this.publisherChannel();
    await new Promise<void>((resolve, reject) => {
      channel.sendToQueue(
        queue,
        body,
        {
          persistent: true,
          contentType: 'application/json',
          ...(messageId === undefined ? {} : { messageId }),
          ...(type === undefined ? {} : { type }),
        },
        error => {
          if (error === null || error === undefined) resolve();
          else reject(backendError(`the broker did not confirm a message to ${queue}`, error));
        },
      );
    });
  }

  private ensureWorkQueue(queue: string): Promise<string> {
    const name = this.names.workQueue(queue);
    let declared = this.declared.get(name);
    if (declared === undefined) {
      declared = this.declare(name, WORK_QUEUE_ARGUMENTS);
      this.declared.set(name, declared);
      declared.catch(() => this.declared.delete(name));
    }
    return declared.then(() => name);
  }

  /** Declares the bucket again when its idle expiry (x-expires) might come before its messages. */
  private async ensureDelayQueue(queue: string, bucketMs: number): Promise<string> {
    const work = await this.ensureWorkQueue(queue);
    const name = this.names.delayQueue(queue, bucketMs);
    const now = Date.now();
    const last = this.bucketDeclaredAt.get(name);
    if (last === undefined || now - last > DELAY_BUCKET_IDLE_MS / 2) {
      await this.declare(name, delayQueueArguments(work, bucketMs));
      this.bucketDeclaredAt.set(name, now);
      let mine = this.buckets.get(queue);
      if (mine === undefined) this.buckets.set(queue, (mine = new Set()));
      mine.add(name);
    }
    return name;
  }

  private async declare(name: string, args: Record<string, unknown>): Promise<void> {
    const channel = await this.adminChannel();
    try {
      await channel.assertQueue(name, { durable: true, arguments: args });
    } catch (error) {
      throw backendError(
        `could not declare ${name} (a queue of that name with other arguments, e.g. a classic queue, must be deleted first)`,
        error,
      );
    }
  }

  /** Ready messages in `name`, 0 when it does not exist (a passive declare closes its channel). */
  private async readyCount(name: string): Promise<number> {
    let channel: Channel | undefined;
    try {
      channel = await this.connection.createChannel();
      channel.on('error', () => undefined);
      return (await channel.checkQueue(name)).messageCount;
    } catch {
      return 0;
    } finally {
      await channel?.close().catch(() => undefined);
    }
  }

  // ---- enqueue -------------------------------------------------------------------------------

  async enqueue(records: readonly EnqueueRecord[]): Promise<void> {
    this.alive();
    const now = this.options.clock.wallNow();
    const fresh: { record: EnqueueRecord; target: string; bucketMs: number }[] = [];
    const seen = new Set<string>();
    for (const record of records) checkQueueName(record.queue);
    for (const record of records) {
      if (this.live.has(record.id) || seen.has(record.id)) continue;
      seen.add(record.id);
      const bucketMs = delayBucketMs(record.availableAt - now);
      const target =
        bucketMs === 0
          ? await this.ensureWorkQueue(record.queue)
          : await this.ensureDelayQueue(record.queue, bucketMs);
      fresh.push({ record, target, bucketMs });
    }
    for (const { record } of fresh) this.remember(record.id);
    try {
      // Sent in order on one channel, so a batch keeps its order in the queue.
      await Promise.all(
        fresh.map(({ record, target }) =>
          this.publish(target, encodeEnvelope(envelopeOf(record)), record.id, record.type),
        ),
      );
    } catch (error) {
      for (const { record } of fresh) this.live.delete(record.id);
      throw error;
    }
    for (const { record, bucketMs } of fresh) {
      if (bucketMs === 0) this.wake(record.queue);
      else this.scheduled(record.queue, now + bucketMs);
    }
  }

  private remember(id: string): void {
    if (this.options.dedupIds === 0) return;
    this.live.set(id, true);
    if (this.live.size > this.options.dedupIds) {
      const oldest = this.live.keys().next();
      if (oldest.done !== true) this.live.delete(oldest.value);
    }
  }

  // ---- fetch and leases ----------------------------------------------------------------------

  async fetch(request: FetchRequest): Promise<FetchResult> {
    checkQueueName(request.queue);
    const name = await this.ensureWorkQueue(request.queue);
    const deliveries: Delivery[] = [];
    if ((this.subscribers.get(request.queue) ?? 0) > 0) {
      const push = await this.pushConsumer(request.queue);
      if (!push.running) await push.start(name, request.limit);
      for (const message of push.take(request.limit)) {
        const delivery = await this.leasePushed(request, push, message);
        if (delivery !== undefined) deliveries.push(delivery);
      }
      // Room left in the consume's window: the broker pushes what the queue has (and wakes the
      // consumer); only when other consumers of this backend fill the window does basic.get help.
      if (deliveries.length > 0 || (push.running && push.unacked < push.window)) {
        return this.fetched(request, deliveries);
      }
    }
    let drained = false;
    while (!drained && deliveries.length < request.limit) {
      // One basic.get per channel at once (a channel answers one at a time).
      const want = Math.min(request.limit - deliveries.length, this.leaseChannels.length);
      const round = await Promise.allSettled(
        Array.from({ length: want }, (_, i) => this.getOne(i, name, request)),
      );
      const got = round.flatMap(r => (r.status === 'fulfilled' && r.value ? [r.value] : []));
      const failed = round.find(r => r.status === 'rejected');
      drained = got.length < want;
      got.sort((a, b) => comparePublished(a.envelope, b.envelope));
      for (const { channel, message, envelope } of got) {
        const delivery = this.lease(request, channel, message, envelope, undefined);
        if (delivery !== undefined) deliveries.push(delivery);
      }
      // What the other channels got is leased and returned; the failure shows on the next fetch.
      if (failed !== undefined && deliveries.length === 0) throw failed.reason;
    }
    return this.fetched(request, deliveries);
  }

  private fetched(request: FetchRequest, deliveries: Delivery[]): FetchResult {
    if (deliveries.length === request.limit) return { deliveries };
    const next = this.nextDue(request.queue, request.now);
    return next === undefined ? { deliveries } : { deliveries, nextAvailableAt: next };
  }

  /** Leases a pushed delivery; one that is not a Bulwark envelope becomes a dead letter. */
  private async leasePushed(
    request: FetchRequest,
    push: PushConsumer,
    message: ConsumeMessage,
  ): Promise<Delivery | undefined> {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(message.content);
    } catch (error) {
      await this.deadForeign(request.queue, message, request.now, error);
      void this.ack(push.channel, message, push);
      return undefined;
    }
    return this.lease(request, push.channel, message, envelope, push);
  }

  /** One `basic.get`; a message that is not a Bulwark envelope becomes a dead letter. */
  private async getOne(
    index: number,
    name: string,
    request: FetchRequest,
  ): Promise<{ channel: Channel; message: GetMessage; envelope: Envelope } | undefined> {
    const channel = await this.leasesChannel(index);
    let message: GetMessage | false;
    try {
      message = await channel.get(name, { noAck: false });
    } catch (error) {
      throw backendError(`basic.get on ${name} failed`, error);
    }
    if (message === false) return undefined;
    try {
      return { channel, message, envelope: decodeEnvelope(message.content) };
    } catch (error) {
      await this.deadForeign(request.queue, message, request.now, error);
      void this.ack(channel, message, undefined);
      return undefined;
    }
  }

  /**
   * Leases a message to the caller, or, when the broker took it back from a consumer that never
   * settled it (`x-delivery-count` > 0: the channel closed, the process died), holds it as a lease
   * that has already expired and delivers nothing: that attempt was spent, and whether the
   * message is retried or dead is the consumer's policy, applied by `recoverExpiredLeases`.
   * Delivering it as a fresh attempt would skip the policy (a crash on the last attempt would
   * give it one more than `maxAttempts`) and leave the lost attempt out of its history.
   */
  private lease(
    request: FetchRequest,
    channel: Channel,
    got: Message,
    envelope: Envelope,
    push: PushConsumer | undefined,
  ): Delivery | undefined {
    if (this.leases.has(envelope.id)) {
      // A second copy of a message this backend holds (a re-publish it could not detect).
      void this.ack(channel, got, push);
      return undefined;
    }
    const returned = Number(got.properties.headers?.['x-delivery-count'] ?? 0) || 0;
    const token = globalThis.crypto.randomUUID();
    if (returned > 0) {
      // More than one return: a process took it back as an expired lease and died too before
      // recovering it. Those returns count as spent attempts; the last one goes to recovery.
      const history: AttemptRecord[] = [...envelope.history];
      for (let i = 1; i < returned; i++) {
        history.push({
          attempt: envelope.spent + i,
          code: 'LEASE_EXPIRED',
          message:
            'the consumer channel closed before the message was settled; RabbitMQ redelivered it (time of the attempt unknown)',
          startedAt: request.now,
          endedAt: request.now,
        });
      }
      // The attempt's real start and end are unknown (they were in the dead process): the fetch
      // time stands for both. The token is never handed out: only recovery settles this lease.
      this.leases.set(envelope.id, {
        queue: request.queue,
        token,
        delivery: got,
        channel,
        push,
        envelope: returned === 1 ? envelope : { ...envelope, history },
        attempt: envelope.spent + returned,
        leasedAt: request.now,
        expiresAt: request.now,
      });
      return undefined;
    }
    const attempt = envelope.spent + 1;
    const held: HeldLease = {
      queue: request.queue,
      token,
      delivery: got,
      channel,
      push,
      envelope,
      attempt,
      leasedAt: request.now,
      expiresAt: request.now + request.leaseMs,
    };
    this.leases.set(envelope.id, held);
    return {
      message: messageOf(envelope, attempt),
      lease: { id: envelope.id, token },
      leaseExpiresAt: held.expiresAt,
    };
  }

  /** A message that is not ours cannot be delivered: keep it as a dead letter rather than drop it. */
  private async deadForeign(
    queue: string,
    got: Message,
    now: number,
    error: unknown,
  ): Promise<void> {
    const id =
      typeof got.properties.messageId === 'string' && got.properties.messageId !== ''
        ? got.properties.messageId
        : globalThis.crypto.randomUUID();
    const lastError = {
      code: 'INVALID_MESSAGE',
      message: error instanceof Error ? error.message : 'not a Bulwark message',
    };
    await this.stream.addDead({
      id,
      message: {
        id,
        queue,
        type: typeof got.properties.type === 'string' ? got.properties.type : 'unknown',
        payload: got.content.toString('utf8'),
        headers: {},
        attempt: 1,
        firstSeenAt: now,
      },
      sourceQueue: queue,
      reason: 'failed',
      attempts: [{ attempt: 1, ...lastError, startedAt: now, endedAt: now }],
      lastError,
      deadAt: now,
    });
  }

  private current(lease: Lease): HeldLease | undefined {
    const held = this.leases.get(lease.id);
    return held !== undefined && held.token === lease.token ? held : undefined;
  }

  extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<string[]> {
    const ids: string[] = [];
    for (const lease of leases) {
      const held = this.current(lease);
      if (held === undefined) continue;
      held.expiresAt = now + leaseMs;
      ids.push(lease.id);
    }
    return Promise.resolve(ids);
  }

  async settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean> {
    const held = this.current(lease);
    if (held === undefined) return false;
    this.leases.delete(lease.id);
    try {
      await this.apply(held, settlement, now, now);
    } catch (error) {
      // Still unacked on the channel: the lease runs out and recovery counts the attempt.
      this.keep(held);
      throw backendError('could not settle a message', error);
    }
    return true;
  }

  async recoverExpiredLeases(request: RecoverRequest): Promise<number> {
    const expired = [...this.leases.values()]
      .filter(held => held.queue === request.queue && held.expiresAt <= request.now)
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .slice(0, request.limit);
    let count = 0;
    for (const held of expired) {
      const id = held.envelope.id;
      if (this.leases.get(id) !== held) continue;
      const decision = request.decide({
        message: messageOf(held.envelope, held.attempt),
        leasedAt: held.leasedAt,
        leaseExpiresAt: held.expiresAt,
      });
      this.leases.delete(id);
      try {
        await this.apply(held, decision, request.now, held.expiresAt);
      } catch (error) {
        this.keep(held);
        throw backendError('could not recover an expired lease', error);
      }
      count++;
    }
    return count;
  }

  /** Puts back a lease whose settlement failed, unless its channel closed (the broker has it). */
  private keep(held: HeldLease): void {
    const id = held.envelope.id;
    if (!this.closedChannels.has(held.channel) && !this.leases.has(id)) this.leases.set(id, held);
  }

  /** Re-publishes or dead-letters first, then acks: a crash in between duplicates, never loses. */
  private async apply(
    held: HeldLease,
    settlement: Settlement,
    now: number,
    endedAt: number,
  ): Promise<void> {
    const { envelope, attempt } = held;
    switch (settlement.kind) {
      case 'ack':
        this.live.delete(envelope.id);
        break;
      case 'defer':
        await this.schedule({ ...envelope, spent: attempt - 1 }, settlement.delayMs, now);
        break;
      case 'retry':
        await this.schedule(
          {
            ...envelope,
            spent: attempt,
            history: [
              ...envelope.history,
              { attempt, ...errorOf(settlement.error), startedAt: held.leasedAt, endedAt },
            ],
          },
          settlement.delayMs,
          now,
        );
        break;
      case 'dead': {
        const error = errorOf(settlement.error);
        await this.stream.addDead({
          id: envelope.id,
          message: messageOf(envelope, attempt),
          sourceQueue: envelope.queue,
          reason: settlement.reason,
          attempts: [...envelope.history, { attempt, ...error, startedAt: held.leasedAt, endedAt }],
          lastError: error,
          deadAt: now,
        });
        this.live.delete(envelope.id);
        break;
      }
    }
    await this.ack(held.channel, held.delivery, held.push);
  }

  /**
   * Acks, then waits for one round trip on the same channel (shared by every ack of this tick):
   * AMQP acks are not confirmed, and one still in a socket buffer when the process dies would be
   * lost — the message redelivered as a spent attempt although `settle` said it was done. The
   * broker handles a channel's frames in order, so the reply means the ack was handled.
   */
  private ack(channel: Channel, delivery: Message, push: PushConsumer | undefined): Promise<void> {
    if (push === undefined) channel.ack(delivery);
    else push.ack(delivery); // sent with the tick's other acks (push-consumer.ts)
    let flush = this.ackFlushes.get(channel);
    if (flush === undefined) {
      flush = new Promise<void>(resolve => setImmediate(resolve)).then(async () => {
        this.ackFlushes.delete(channel);
        push?.sendAcks();
        // basic.qos is the cheapest round trip, and a no-op here: lease channels never consume,
        // and on a consume's channel it sets the value it has (and binds only later consumes).
        await channel.prefetch(push?.window ?? 0);
      });
      this.ackFlushes.set(channel, flush);
    }
    return flush;
  }

  private async schedule(envelope: Envelope, delayMs: number, now: number): Promise<void> {
    const bucketMs = delayBucketMs(delayMs);
    const target =
      bucketMs === 0
        ? await this.ensureWorkQueue(envelope.queue)
        : await this.ensureDelayQueue(envelope.queue, bucketMs);
    await this.publish(target, encodeEnvelope(envelope), envelope.id, envelope.type);
    if (bucketMs === 0) this.wake(envelope.queue);
    else this.scheduled(envelope.queue, now + bucketMs);
  }

  // ---- wake-ups ------------------------------------------------------------------------------

  private scheduled(queue: string, at: number): void {
    let times = this.due.get(queue);
    if (times === undefined) this.due.set(queue, (times = []));
    times.push(at);
  }

  /**
   * When the next message this backend scheduled falls due. A message is back from its bucket a
   * few ms after its TTL, so one due (within a grace period) is looked for again shortly.
   */
  private nextDue(queue: string, now: number): number | undefined {
    const times = this.due.get(queue);
    if (times === undefined) return undefined;
    let next: number | undefined;
    let keep = 0;
    for (const at of times) {
      if (at + DUE_GRACE_MS < now) continue;
      times[keep++] = at;
      const when = at > now ? at : now + DUE_RECHECK_MS;
      if (next === undefined || when < next) next = when;
    }
    times.length = keep;
    if (keep === 0) this.due.delete(queue);
    return next;
  }

  private wake(queue: string): void {
    const set = this.listeners.get(queue);
    if (set === undefined) return;
    for (const listener of [...set]) queueMicrotask(listener);
  }

  /**
   * Wake-ups when messages arrive: pushed by the queue's consume (any producer), or enqueued or
   * scheduled by this backend. A subscription also marks a running consumer: from its first
   * fetch the queue has a consume (push-consumer.ts) until the last subscription is disposed.
   */
  subscribe(queue: string, listener: () => void): Promise<Disposable> {
    let set = this.listeners.get(queue);
    if (set === undefined) this.listeners.set(queue, (set = new Set()));
    const mine = set;
    const entry = (): void => listener();
    mine.add(entry);
    this.subscribers.set(queue, (this.subscribers.get(queue) ?? 0) + 1);
    let disposed = false;
    return Promise.resolve({
      dispose: () => {
        if (disposed) return;
        disposed = true;
        mine.delete(entry);
        const left = (this.subscribers.get(queue) ?? 1) - 1;
        if (left > 0) {
          this.subscribers.set(queue, left);
          return;
        }
        this.subscribers.delete(queue);
        const stopping = this.stopPush(queue).catch(() => undefined);
        this.handingBack.add(stopping);
        void stopping.finally(() => this.handingBack.delete(stopping));
      },
    });
  }

  /**
   * Cancels the queue's consume and hands back what was waiting, without charging an attempt:
   * each is published again as it was (so it goes to the back of the queue) and then acked. A
   * `nack` with requeue would raise `x-delivery-count`, which fetch reads as a crashed attempt.
   * A waiting delivery that already is a crash return keeps that meaning: it is nacked.
   */
  private async stopPush(queue: string): Promise<void> {
    const push = await this.pushes.get(queue)?.catch(() => undefined);
    if (push === undefined || (!push.running && push.size === 0)) return;
    const waiting = await push.stop();
    if (waiting.length === 0 || this.lost !== undefined) return;
    const now = this.options.clock.wallNow();
    const work = this.names.workQueue(queue);
    await Promise.all(
      waiting.map(async message => {
        let envelope: Envelope;
        try {
          envelope = decodeEnvelope(message.content);
        } catch (error) {
          await this.deadForeign(queue, message, now, error);
          return this.ack(push.channel, message, push);
        }
        if (Number(message.properties.headers?.['x-delivery-count'] ?? 0) > 0) {
          push.requeue(message);
          return;
        }
        await this.publish(work, encodeEnvelope(envelope), envelope.id, envelope.type);
        return this.ack(push.channel, message, push);
      }),
    );
  }

  // ---- stats and dead letters ----------------------------------------------------------------

  async stats(queue: string, _now: number): Promise<QueueStats> {
    this.alive();
    checkQueueName(queue);
    const ready = await this.readyCount(this.names.workQueue(queue));
    let scheduled = 0;
    for (const bucket of this.buckets.get(queue) ?? []) scheduled += await this.readyCount(bucket);
    let leased = 0;
    for (const held of this.leases.values()) if (held.queue === queue) leased++;
    // Pushed to this backend's consume and not fetched yet: ready, from the consumers' side.
    const waiting = await this.waiting(queue);
    const dead = (await this.stream.list({ queue })).length;
    return { ready: ready + waiting, scheduled, leased, dead };
  }

  async waiting(queue: string): Promise<number> {
    const push = await this.pushes.get(queue)?.catch(() => undefined);
    return push?.size ?? 0;
  }

  listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<readonly DeadLetter[]> {
    return this.stream.list(filter, page);
  }

  getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return this.stream.get(id);
  }

  async summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary> {
    const byQueue: Record<string, number> = {};
    const letters = await this.stream.list(filter);
    for (const letter of letters)
      byQueue[letter.sourceQueue] = (byQueue[letter.sourceQueue] ?? 0) + 1;
    return { total: letters.length, byQueue };
  }

  async replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean> {
    this.alive();
    const letter = await this.stream.claim(id);
    if (letter === undefined) return false;
    try {
      await this.enqueue([record]);
    } catch (error) {
      await this.stream.restore(letter);
      throw error;
    }
    return true;
  }

  async purgeDeadLetters(filter: DeadLetterFilter): Promise<readonly string[]> {
    const ids = (await this.stream.list(filter)).map(letter => letter.id);
    await this.stream.purge(ids);
    return ids;
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.stream.appendAudit(entry);
  }

  listAudit(query: AuditQuery): Promise<readonly AuditEntry[]> {
    return this.stream.listAudit(query);
  }

  declaredQueues(): readonly string[] {
    const names = new Set([this.names.deadLetterStream, ...this.declared.keys()]);
    for (const name of this.bucketDeclaredAt.keys()) names.add(name);
    return [...names];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Consumers still subscribed: hand back what their consumes hold (see stopPush).
    this.subscribers.clear();
    await Promise.allSettled([
      ...[...this.pushes.keys()].map(queue => this.stopPush(queue)),
      ...this.handingBack,
    ]);
    this.closed = true;
    this.listeners.clear();
    await this.stream.close();
    if (this.lost === undefined) await this.connection.close().catch(() => undefined);
    this.leases.clear();
  }
}

/** Only `code` and `message` are stored: a settlement's error may carry more. */
function errorOf(error: { readonly code: string; readonly message: string }) {
  return { code: error.code, message: error.message };
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
