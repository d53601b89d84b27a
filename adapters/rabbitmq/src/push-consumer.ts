/**
 * One `basic.consume` on a work queue, held while a consumer of this backend runs on the queue
 * (from its `subscribe` to the dispose of the last subscription). The broker pushes deliveries
 * as acks free room under the consume's `basic.qos`; they wait here, unacked, until a fetch
 * leases them. A fetch then costs no round trip, where `basic.get` costs one per message.
 *
 * Why only while subscribed: a delivery waiting here is unacked at the broker, so if the process
 * dies it comes back with `x-delivery-count` raised and is charged an attempt, like a lease. The
 * window is therefore the consumer's own `prefetch` (the limit of its first fetch), so a crash
 * charges no more messages than the consumer would hold as leases anyway; and a consumer that
 * stops hands the waiting ones back without charging them (`PushConsumer.stop`).
 */
import type { Channel, ConsumeMessage, Message } from 'amqplib';

/**
 * A FIFO on an array with a moving head: `shift` and `take` do not move the rest (Array#shift
 * would, per message), and the consumed front is dropped once it is most of the array.
 */
class ArrayQueue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item `index` places from the front, if any. */
  at(index: number): T | undefined {
    return this.items[this.head + index];
  }

  shift(): void {
    this.head++;
    this.compact();
  }

  /** Removes and returns up to `limit` items from the front. */
  take(limit: number): T[] {
    const end = Math.min(this.items.length, this.head + limit);
    const taken = this.items.slice(this.head, end);
    this.head = end;
    this.compact();
    return taken;
  }

  find(match: (item: T) => boolean): T | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      if (match(this.items[i]!)) return this.items[i];
    }
    return undefined;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.items.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** An ack requested but not sent yet (`PENDING`), or sent on its own ahead of older ones (`SENT`). */
const PENDING = 0;
const SENT = 1;

export class PushConsumer {
  /** `basic.qos` of the current consume: at most this many unacked deliveries are pushed. */
  window = 0;
  /** Deliveries of this channel not acked yet: waiting here or leased. */
  unacked = 0;
  private readonly waiting = new ArrayQueue<ConsumeMessage>();
  /** Every unacked delivery of the channel in delivery-tag order (the order they arrived). */
  private readonly outstanding = new ArrayQueue<Message>();
  /** Delivery tag -> PENDING or SENT, for outstanding deliveries acked out of order. */
  private readonly acks = new Map<number, typeof PENDING | typeof SENT>();
  private tag: string | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<readonly ConsumeMessage[]> | undefined;

  constructor(
    /** The channel the consume runs on (opened once; leases of its deliveries stay on it). */
    readonly channel: Channel,
    /** Called when a delivery arrives and none was waiting (wake the queue's consumers). */
    private readonly onArrival: () => void,
  ) {}

  get running(): boolean {
    return this.tag !== undefined && this.stopping === undefined;
  }

  get size(): number {
    return this.waiting.length;
  }

  /** Starts the consume with `window` as its prefetch; resolves once the broker confirmed it. */
  start(workQueue: string, window: number): Promise<void> {
    if (this.running) return Promise.resolve();
    this.starting ??= (async () => {
      await this.stopping;
      // Per-consumer qos applies to consumes started after it, so it is set right before.
      await this.channel.prefetch(window);
      this.window = window;
      const { consumerTag } = await this.channel.consume(workQueue, message => {
        if (message === null) {
          // The broker cancelled the consume (queue deleted): fetches fall back to basic.get.
          this.tag = undefined;
          return;
        }
        this.unacked++;
        this.outstanding.push(message);
        this.waiting.push(message);
        if (this.size === 1) this.onArrival();
      });
      this.tag = consumerTag;
    })().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** Takes up to `limit` waiting deliveries, oldest first. */
  take(limit: number): ConsumeMessage[] {
    return this.waiting.take(limit);
  }

  /**
   * Cancels the consume and returns what was waiting (still unacked, for the caller to hand
   * back). After the broker's cancel-ok nothing more arrives.
   */
  stop(): Promise<readonly ConsumeMessage[]> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      const tag = this.tag;
      if (tag !== undefined) await this.channel.cancel(tag);
      this.tag = undefined;
      return this.take(Number.MAX_SAFE_INTEGER);
    })().finally(() => (this.stopping = undefined));
    return this.stopping;
  }

  /** Marks a delivery of this channel acked; `sendAcks` sends it (the caller flushes once a tick). */
  ack(message: Message): void {
    this.unacked--;
    this.acks.set(message.fields.deliveryTag, PENDING);
  }

  /** Returns a delivery to the queue now (`basic.nack` with requeue). */
  requeue(message: Message): void {
    this.unacked--;
    this.channel.nack(message, false, true);
    this.acks.set(message.fields.deliveryTag, SENT);
  }

  /**
   * Sends the pending acks: the run of oldest deliveries that are all acked as one `basic.ack`
   * with `multiple` (it covers every delivery up to its tag), the rest one by one. Handlers
   * finish roughly in delivery order, so a tick's acks are mostly one frame and one socket write
   * instead of one each.
   */
  sendAcks(): void {
    let last: Message | undefined;
    for (let message = this.outstanding.at(0); message !== undefined;) {
      const state = this.acks.get(message.fields.deliveryTag);
      if (state === undefined) break;
      if (state === PENDING) last = message;
      this.acks.delete(message.fields.deliveryTag);
      this.outstanding.shift();
      message = this.outstanding.at(0);
    }
    if (last !== undefined) this.channel.ack(last, true);
    for (const [tag, state] of this.acks) {
      if (state === SENT) continue;
      this.channel.ack(this.byTag(tag));
      this.acks.set(tag, SENT);
    }
  }

  private byTag(tag: number): Message {
    // Tags of one channel increase by one per delivery, so the offset is (almost always) exact.
    const base = this.outstanding.at(0)!.fields.deliveryTag;
    const guess = this.outstanding.at(tag - base);
    if (guess?.fields.deliveryTag === tag) return guess;
    return this.outstanding.find(message => message.fields.deliveryTag === tag)!;
  }

  /** The channel closed: its deliveries are back with the broker. */
  reset(): void {
    this.tag = undefined;
    this.waiting.clear();
    this.outstanding.clear();
    this.acks.clear();
    this.unacked = 0;
  }
}
