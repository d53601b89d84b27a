/**
 * Wake-ups for consumers. Local: an enqueue through this backend wakes its own subscribers at once
 * (a microtask, no round trip). Across processes: the enqueue script PUBLISHes
 * `<instance>\n<queue>` on the prefix's channel, and one SUBSCRIBE connection, opened on the first
 * `subscribe()`, turns other instances' messages into local wake-ups (its own are skipped: they
 * were delivered locally already). A lost subscription only costs latency: consumers still poll.
 */
import type { Disposable } from '@bulwark/core';
import type { Redis } from 'ioredis';

export class WakeUps {
  private readonly listeners = new Map<string, Set<() => void>>();
  private subscriber: Redis | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly instance: string,
    private readonly channel: string,
    /** Opens the SUBSCRIBE connection; undefined for local wake-ups only. */
    private readonly connect: (() => Redis) | undefined,
  ) {}

  async subscribe(queue: string, listener: () => void): Promise<Disposable> {
    let set = this.listeners.get(queue);
    if (set === undefined) this.listeners.set(queue, (set = new Set()));
    const mine = set;
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry = (): void => listener();
    mine.add(entry);
    if (this.connect !== undefined) {
      this.ready ??= this.listen(this.connect);
      await this.ready;
    }
    return { dispose: () => void mine.delete(entry) };
  }

  wake(queue: string): void {
    const set = this.listeners.get(queue);
    if (set === undefined) return;
    for (const listener of [...set]) queueMicrotask(listener);
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.listeners.clear();
    if (subscriber === undefined) return;
    await this.ready?.catch(() => undefined);
    await subscriber.quit().catch(() => subscriber.disconnect());
  }

  private async listen(connect: () => Redis): Promise<void> {
    const subscriber = connect();
    this.subscriber = subscriber;
    // Errors surface as reconnects; the consumers' polling covers the gap.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const at = message.indexOf('\n');
      if (at < 0 || message.slice(0, at) === this.instance) return;
      this.wake(message.slice(at + 1));
    });
    try {
      // Once subscribed, ioredis resubscribes by itself after a reconnect.
      await subscriber.subscribe(this.channel);
    } catch {
      // Not fatal: consumers poll. Drop this connection so the next subscribe() tries again.
      if (this.subscriber === subscriber) {
        this.subscriber = undefined;
        this.ready = undefined;
      }
      subscriber.disconnect();
    }
  }
}
