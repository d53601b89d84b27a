/**
 * The NATS JetStream queue backend.
 *
 * - Messages live in one work-queue stream per prefix, one subject per queue, each queue read by
 *   its own durable pull consumer (explicit acks). Removing a message is acking it.
 * - What JetStream does not keep — attempts spent, the failure history and the port's lease
 *   (token, expiry on the consumer's clock) — is one document per message in a state stream,
 *   written compare-and-set on the subject's last sequence: that is the fencing.
 * - Dead letters are `DeadLetter` records in a third stream (Limits retention, so they can be
 *   browsed, searched and replayed without consuming them); the audit log is a fourth.
 *
 * Who owns time: the consumer's clock (`now`) decides when a lease has expired, what the history
 * records and when a send delay is over; the broker owns every wait: `nak(delayMs)` for retry,
 * defer and send delays, and the ack wait (`leaseMs + ackWaitMarginMs`, reset by `working()` on
 * each heartbeat) as the net for when no consumer is left to recover an expired lease.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Disposable } from '@bulwark/core';
import {
  compareDeadLetters,
  matchesDeadLetterFilter,
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
import {
  ackRequest,
  apiCode,
  backendError,
  CONSUMER_NOT_FOUND,
  Documents,
  STREAM_NOT_FOUND,
  parseJson,
  pullNow,
  deliveryCountOf,
  streamSeqOf,
  type Doc,
} from './jetstream.js';
import { names, type Names } from './names.js';
import { resolveOptions, type NatsQueueBackendOptions, type ResolvedOptions } from './options.js';
import {
  isStoredMessage,
  toMessage,
  type LeaseState,
  type MessageState,
  type StoredMessage,
} from './records.js';

/**
 * A lease this process handed out, cached so settling need not read the state first.
 * `stateSeq` 0: a first delivery leased in memory only, with no state document (see `accept`).
 */
interface Held {
  readonly queue: string;
  readonly stored: StoredMessage;
  state: MessageState;
  stateSeq: number;
}

export class NatsQueueBackend implements QueueBackend {
  readonly name = 'nats';
  readonly names: Names;
  private readonly state: Documents;
  private readonly dead: Documents;
  private readonly audit: Documents;
  /** Queue → the ack wait its consumer has, ms. */
  private readonly consumers = new Map<string, number>();
  private readonly held = new Map<string, Held>();
  /** The `flush` (PING/PONG) that confirms the acks published in this tick (see `ackSoon`). */
  private flushing: Promise<void> | undefined;

  constructor(
    readonly connection: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: ResolvedOptions,
  ) {
    this.names = names(options.prefix);
    this.state = new Documents(js, jsm, this.names.stateStream);
    this.dead = new Documents(js, jsm, this.names.deadStream);
    this.audit = new Documents(js, jsm, this.names.auditStream);
  }

  /** Creates the four streams, or brings their settings up to date (idempotent). */
  async setup(): Promise<void> {
    const { replicas, duplicateWindowMs } = this.options;
    const storage = this.options.storage === 'memory' ? StorageType.Memory : StorageType.File;
    const n = this.names;
    const p = this.options.prefix;
    await this.ensureStream({
      name: n.queueStream,
      subjects: [`${p}.q.*`],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: nanos(duplicateWindowMs),
      storage,
      num_replicas: replicas,
    });
    for (const [name, subjects] of [
      [n.stateStream, [`${p}.s.*.*`]],
      [n.deadStream, [`${p}.d.*.*`]],
    ] as const) {
      await this.ensureStream({
        name,
        subjects: [...subjects],
        retention: RetentionPolicy.Limits,
        max_msgs_per_subject: 1,
        allow_direct: true,
        storage,
        num_replicas: replicas,
      });
    }
    await this.ensureStream({
      name: n.auditStream,
      subjects: [n.auditSubject],
      retention: RetentionPolicy.Limits,
      allow_direct: true,
      storage,
      num_replicas: replicas,
    });
  }

  private async ensureStream(config: Parameters<JetStreamManager['streams']['add']>[0]) {
    try {
      await this.jsm.streams.info(config.name);
      await this.jsm.streams.update(config.name, config);
    } catch (error) {
      if (apiCode(error) !== STREAM_NOT_FOUND) {
        throw backendError(`create stream ${config.name}`, error);
      }
      // Another process may create it at the same moment: theirs is as good as ours.
      await this.jsm.streams.add(config).catch(async (addError: unknown) => {
        await this.jsm.streams.info(config.name).catch(() => {
          throw backendError(`create stream ${config.name}`, addError);
        });
      });
    }
  }

  // ---- enqueue -------------------------------------------------------------------------------

  async enqueue(records: readonly EnqueueRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Issued together on one connection: the stream stores them in this order.
    const results = await Promise.allSettled(
      records.map(r =>
        this.js.publish(this.names.queueSubject(r.queue), JSON.stringify(r), { msgID: r.id }),
      ),
    );
    const failed = results.find(r => r.status === 'rejected');
    if (failed === undefined) return;
    // All or none: take back what was stored (duplicates were stored earlier, by someone else).
    await Promise.allSettled(
      results.map(r =>
        r.status === 'fulfilled' && !r.value.duplicate
          ? this.jsm.streams.deleteMessage(this.names.queueStream, r.value.seq)
          : Promise.resolve(true),
      ),
    );
    throw backendError('enqueue', failed.reason);
  }

  // ---- fetch ---------------------------------------------------------------------------------

  async fetch(request: FetchRequest): Promise<FetchResult> {
    const { queue, limit, leaseMs, now } = request;
    try {
      const consumer = await this.ensureConsumer(queue, leaseMs);
      const msgs = await pullNow(
        this.connection,
        this.names.queueStream,
        consumer,
        limit,
        this.options.requestTimeoutMs,
        () => this.saturated(consumer),
      );
      // Each message has its own state document: accept them concurrently, keep stream order.
      // Leases already written are handed out even if another message failed: dropping them
      // would cost their attempt at recovery.
      const accepted = await Promise.allSettled(
        msgs.map(msg => this.accept(queue, msg.reply ?? '', msg.data, leaseMs, now)),
      );
      const deliveries: Delivery[] = [];
      for (const result of accepted) {
        if (result.status === 'fulfilled' && result.value !== undefined) {
          deliveries.push(result.value);
        }
      }
      const failed = accepted.find(r => r.status === 'rejected');
      if (failed !== undefined && deliveries.length === 0) throw failed.reason;
      return { deliveries };
    } catch (error) {
      throw backendError('fetch', error);
    }
  }

  /** Whether the consumer holds as many unacked messages as it may (the server then stays silent). */
  private async saturated(consumer: string): Promise<boolean> {
    const info = await this.jsm.consumers.info(this.names.queueStream, consumer);
    const max = info.config.max_ack_pending ?? -1;
    return max > 0 && info.num_ack_pending >= max;
  }

  /** Turns one JetStream delivery into a port delivery, or settles it if it is not one. */
  private async accept(
    queue: string,
    reply: string,
    data: Uint8Array,
    leaseMs: number,
    now: number,
  ): Promise<Delivery | undefined> {
    const timeoutMs = this.options.requestTimeoutMs;
    let stored: unknown;
    try {
      stored = parseJson(data);
    } catch {
      stored = undefined;
    }
    if (!isStoredMessage(stored)) {
      // Not written by a Bulwark producer: it can never be handled, and would block the queue.
      await ackRequest(this.connection, reply, '+TERM', undefined, timeoutMs);
      return undefined;
    }
    // The common case first: a first delivery that is due needs nothing from the server.
    const first = deliveryCountOf(reply) === 1;
    if (first && stored.availableAt <= now) {
      return this.leaseInMemory(queue, stored, reply, leaseMs, now);
    }
    const subject = this.names.stateSubject(queue, stored.id);
    // A send delay the broker does not know about: wait it out without spending an attempt. A
    // document with no attempt spent records it, so the next delivery (count > 1) is not read as
    // a lost first lease (below); the put is refused when one exists already, which is as good.
    if (stored.availableAt > now) {
      await this.state.put(subject, { attempt: 0, history: [] }, 0);
      await ackRequest(this.connection, reply, '-NAK', stored.availableAt - now, timeoutMs);
      return undefined;
    }
    const doc = await this.state.get<MessageState>(subject);
    const current = doc?.value;
    if (doc === undefined) {
      // Delivered before and no document: the delivery before was a first lease, held in the
      // memory of a process that never settled it (it died, or lost its connection, and the ack
      // wait ran out). That attempt was spent. Hold it as a lease that has already expired, so
      // the next recovery (any process) applies the consumer's policy to it: retry with backoff
      // or, on the last attempt, the DLQ — as with a lease whose document ran out.
      const lost = newLease(reply, now, now);
      if (
        (await this.state.put(subject, { attempt: 1, history: [], lease: lost }, 0)) !== undefined
      ) {
        await ackRequest(this.connection, reply, '+WPI', undefined, timeoutMs);
      }
      return undefined;
    }
    if (current?.dead !== undefined) {
      // Dead-lettered by a process that died before the term: finish it.
      await this.finishDead(stored, current, reply, doc.seq);
      return undefined;
    }
    if (current?.lease !== undefined) {
      // The broker redelivered a message whose lease nobody settled (its ack wait ran out).
      // Whether that attempt is retried or dead is the consumer's policy, applied by
      // recoverExpiredLeases; point the lease at this delivery so its nak reaches the broker.
      const moved: MessageState = { ...current, lease: { ...current.lease, reply } };
      await this.state.put(subject, moved, doc.seq);
      await ackRequest(this.connection, reply, '+WPI', undefined, timeoutMs);
      return undefined;
    }
    return this.grant(queue, stored, reply, subject, current, doc?.seq ?? 0, leaseMs, now);
  }

  /**
   * Leases a first delivery without writing anything: attempt 1, no history, the lease in this
   * process's memory. Most messages are acked on their first attempt, and then never need a
   * document: the ack is the only command sent (a state put at fetch and a delete at ack cost
   * two round trips per message). The document is written only when the attempt ends
   * otherwise (retry, defer, dead letter, an expired lease) — compare-and-set on "none", the
   * fencing against a process that found the message redelivered and took it over.
   */
  private leaseInMemory(
    queue: string,
    stored: StoredMessage,
    reply: string,
    leaseMs: number,
    now: number,
  ): Delivery {
    const lease = newLease(reply, now, now + leaseMs);
    this.held.set(lease.token, {
      queue,
      stored,
      state: { attempt: 1, history: [], lease },
      stateSeq: 0,
    });
    return {
      message: toMessage(stored, 1),
      lease: { id: stored.id, token: tokenOf(queue, lease.token) },
      leaseExpiresAt: lease.expiresAt,
    };
  }

  /**
   * Leases one delivery: the next attempt written to the state document if its last sequence is
   * still `expectedSeq`; undefined when someone else moved it meanwhile (the broker redelivers).
   */
  private async grant(
    queue: string,
    stored: StoredMessage,
    reply: string,
    subject: string,
    current: MessageState | undefined,
    expectedSeq: number,
    leaseMs: number,
    now: number,
  ): Promise<Delivery | undefined> {
    const attempt = (current?.attempt ?? 0) + 1;
    const lease = newLease(reply, now, now + leaseMs);
    const next: MessageState = { attempt, history: current?.history ?? [], lease };
    const seq = await this.state.put(subject, next, expectedSeq);
    if (seq === undefined) return undefined;
    this.held.set(lease.token, { queue, stored, state: next, stateSeq: seq });
    return {
      message: toMessage(stored, attempt),
      lease: { id: stored.id, token: tokenOf(queue, lease.token) },
      leaseExpiresAt: lease.expiresAt,
    };
  }

  private async ensureConsumer(queue: string, leaseMs: number): Promise<string> {
    const name = this.names.consumerName(queue);
    const ackWaitMs = Math.ceil(leaseMs) + this.options.ackWaitMarginMs;
    const known = this.consumers.get(queue);
    if (known !== undefined && known >= ackWaitMs) return name;
    const stream = this.names.queueStream;
    let current: number | undefined;
    try {
      const info = await this.jsm.consumers.info(stream, name);
      current = (info.config.ack_wait ?? 0) / 1e6;
    } catch (error) {
      if (apiCode(error) !== CONSUMER_NOT_FOUND) throw error;
    }
    if (current === undefined) {
      await this.addConsumer(queue, name, ackWaitMs);
      current = ackWaitMs;
    } else if (current < ackWaitMs) {
      await this.jsm.consumers.update(stream, name, { ack_wait: nanos(ackWaitMs) });
      current = ackWaitMs;
    }
    this.consumers.set(queue, current);
    return name;
  }

  private async addConsumer(queue: string, name: string, ackWaitMs: number): Promise<void> {
    const stream = this.names.queueStream;
    try {
      await this.jsm.consumers.add(stream, {
        durable_name: name,
        filter_subject: this.names.queueSubject(queue),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(ackWaitMs),
        deliver_policy: DeliverPolicy.All,
        replay_policy: ReplayPolicy.Instant,
        // Attempts are counted in the state stream: JetStream's count includes defers.
        max_deliver: -1,
        max_ack_pending: this.options.maxAckPending,
      });
    } catch (error) {
      // Another fetch (here or in another process) created it first with other settings.
      const info = await this.jsm.consumers.info(stream, name).catch(() => undefined);
      if (info === undefined) throw error;
      if ((info.config.ack_wait ?? 0) / 1e6 < ackWaitMs) {
        await this.jsm.consumers.update(stream, name, { ack_wait: nanos(ackWaitMs) });
      }
    }
  }

  // ---- leases --------------------------------------------------------------------------------

  async extendLeases(leases: readonly Lease[], leaseMs: number, now: number): Promise<string[]> {
    const held: string[] = [];
    try {
      for (const lease of leases) {
        const parsed = parseToken(lease.token);
        const cached = parsed === undefined ? undefined : this.held.get(parsed.token);
        const inMemory = cached?.state.lease;
        if (cached?.stateSeq === 0 && inMemory !== undefined) {
          // No document to move: the expiry is ours; working() resets the broker's ack wait.
          await ackRequest(
            this.connection,
            inMemory.reply,
            '+WPI',
            undefined,
            this.options.requestTimeoutMs,
          );
          if (this.held.get(parsed!.token) === cached) {
            cached.state = { ...cached.state, lease: { ...inMemory, expiresAt: now + leaseMs } };
            held.push(lease.id);
          }
          continue;
        }
        const ok = await this.withLease(lease, true, async (found, put) => {
          const current = found.state.lease;
          if (current === undefined) return false;
          const next: MessageState = {
            ...found.state,
            lease: { ...current, expiresAt: now + leaseMs },
          };
          if (!(await put(next))) return false;
          // Resets the broker's ack wait: the heartbeat reaches both clocks.
          await ackRequest(
            this.connection,
            current.reply,
            '+WPI',
            undefined,
            this.options.requestTimeoutMs,
          );
          return true;
        });
        if (ok) held.push(lease.id);
      }
      return held;
    } catch (error) {
      throw backendError('extendLeases', error);
    }
  }

  async settle(lease: Lease, settlement: Settlement, now: number): Promise<boolean> {
    if (settlement.kind === 'ack') {
      // The common case without the general path's snapshot and closures: a first lease held
      // here, acked — nothing to write, only the ack to send.
      const parsed = parseToken(lease.token);
      const held = parsed === undefined ? undefined : this.held.get(parsed.token);
      const inMemory = held?.stateSeq === 0 ? held.state.lease : undefined;
      if (inMemory !== undefined && held!.stored.id === lease.id) {
        try {
          await this.ackSoon(inMemory.reply);
        } catch (error) {
          // Still held: the lease runs out and recovery counts the attempt.
          throw backendError('settle', error);
        }
        this.held.delete(parsed!.token);
        return true;
      }
    }
    try {
      return await this.withLease(lease, false, (found, put, remove) =>
        this.apply(found, settlement, now, now, put, remove),
      );
    } catch (error) {
      throw backendError('settle', error);
    }
  }

  /**
   * Runs `work` with the lease's current state if `lease` is still current, retrying once on a
   * lost compare-and-set (a fetch elsewhere may have moved the lease's reply subject). `keep`:
   * the lease stays held afterwards (a heartbeat), else it is forgotten (a settlement).
   */
  private async withLease(
    lease: Lease,
    keep: boolean,
    work: (
      found: Held,
      put: (next: MessageState) => Promise<boolean>,
      remove: () => Promise<boolean>,
    ) => Promise<boolean>,
  ): Promise<boolean> {
    const parsed = parseToken(lease.token);
    if (parsed === undefined) return false;
    const { queue, token } = parsed;
    const subject = this.names.stateSubject(queue, lease.id);
    const cached = this.held.get(token);
    for (let round = 0; round < 2; round++) {
      // Each operation works on its own snapshot and writes compare-and-set against the
      // snapshot's sequence: a heartbeat racing a settlement of the same lease in this process
      // then loses on the server instead of writing over it.
      let snapshot: Held | undefined =
        round === 0 && cached !== undefined ? { ...cached } : undefined;
      if (snapshot?.state.lease?.token !== token || snapshot.state.dead !== undefined) {
        const doc = await this.state.get<MessageState>(subject);
        if (doc?.value.lease?.token !== token || doc.value.dead !== undefined) {
          this.held.delete(token);
          return false;
        }
        const stored = cached?.stored ?? (await this.storedMessage(doc.value.lease.seq))?.value;
        if (stored === undefined) return false;
        snapshot = { queue, stored, state: doc.value, stateSeq: doc.seq };
      }
      const entry: Held = snapshot;
      let lost = false;
      const put = async (next: MessageState): Promise<boolean> => {
        const seq = await this.putState(subject, entry, next);
        if (seq === undefined) {
          lost = true;
          return false;
        }
        entry.state = next;
        entry.stateSeq = seq;
        return true;
      };
      const remove = async (): Promise<boolean> => {
        if (entry.stateSeq === 0) return true; // leased in memory: there is no document
        const ok = await this.state.delete(entry.stateSeq);
        if (!ok) lost = true;
        return ok;
      };
      const ok = await work(entry, put, remove);
      if (ok || !lost) {
        // A settlement forgets the lease; a heartbeat refreshes the cache unless a settlement
        // removed it meanwhile.
        if (ok && keep) {
          if (this.held.has(token)) this.held.set(token, entry);
        } else {
          this.held.delete(token);
        }
        return ok;
      }
    }
    this.held.delete(token);
    return false;
  }

  /**
   * Writes a lease's next state, compare-and-set on the sequence it was read at. A lease held in
   * memory (`stateSeq` 0) expects no document; if there is one, it is refused only when it is
   * about this very message (same stream sequence: a process found it redelivered and took it
   * over); one left by an earlier message with the same id is overwritten.
   */
  private async putState(
    subject: string,
    entry: Held,
    next: MessageState,
  ): Promise<number | undefined> {
    const seq = await this.state.put(subject, next, entry.stateSeq);
    if (seq !== undefined || entry.stateSeq !== 0) return seq;
    const doc = await this.state.get<MessageState>(subject);
    if (doc === undefined || doc.value.lease?.seq === entry.state.lease?.seq) return undefined;
    return this.state.put(subject, next, doc.seq);
  }

  /**
   * Acks by a plain publish and waits for one PING/PONG shared by every ack of this tick (the
   * server handles a connection's messages in order, so the PONG means it has them): one
   * round trip per tick instead of a request per message, and no ack left in a socket buffer
   * when `settle` returns.
   */
  private ackSoon(reply: string): Promise<void> {
    this.connection.publish(reply, ACK);
    this.flushing ??= new Promise<void>(resolve => setImmediate(resolve)).then(() => {
      this.flushing = undefined;
      return this.connection.flush();
    });
    return this.flushing;
  }

  /**
   * Applies a settlement to a message whose state we hold: first the state (compare-and-set:
   * the fencing), then the broker.
   */
  private async apply(
    found: Held,
    settlement: Settlement,
    now: number,
    endedAt: number,
    put: (next: MessageState) => Promise<boolean>,
    remove: () => Promise<boolean>,
  ): Promise<boolean> {
    const lease = found.state.lease!;
    const timeoutMs = this.options.requestTimeoutMs;
    const { history, attempt } = found.state;
    switch (settlement.kind) {
      case 'ack':
        if (found.stateSeq === 0) {
          await this.ackSoon(lease.reply);
          return true;
        }
        // A crash between these two redelivers the message after the ack wait, as attempt 1.
        if (!(await remove())) return false;
        await ackRequest(this.connection, lease.reply, '+ACK', undefined, timeoutMs);
        return true;
      case 'defer':
        if (!(await put({ attempt: attempt - 1, history }))) return false;
        await ackRequest(this.connection, lease.reply, '-NAK', settlement.delayMs, timeoutMs);
        return true;
      case 'retry': {
        const record = { attempt, startedAt: lease.leasedAt, endedAt, ...settlement.error };
        if (!(await put({ attempt, history: [...history, record] }))) return false;
        await ackRequest(this.connection, lease.reply, '-NAK', settlement.delayMs, timeoutMs);
        return true;
      }
      case 'dead': {
        const record = { attempt, startedAt: lease.leasedAt, endedAt, ...settlement.error };
        const marked: MessageState = {
          attempt,
          history: [...history, record],
          lease,
          dead: { reason: settlement.reason, error: settlement.error, deadAt: now },
        };
        if (!(await put(marked))) return false;
        await this.finishDead(found.stored, marked, lease.reply, found.stateSeq);
        return true;
      }
    }
  }

  /** Writes the dead letter, terms the delivery and drops the state (each step idempotent). */
  private async finishDead(
    stored: StoredMessage,
    state: MessageState,
    reply: string,
    stateSeq: number,
  ): Promise<void> {
    const dead = state.dead!;
    const letter: DeadLetter = {
      id: stored.id,
      message: toMessage(stored, state.attempt),
      sourceQueue: stored.queue,
      reason: dead.reason,
      attempts: state.history,
      lastError: { code: dead.error.code, message: dead.error.message },
      deadAt: dead.deadAt,
    };
    // One subject per letter, one message per subject: writing it twice keeps one.
    await this.js.publish(this.names.deadSubject(stored.queue, stored.id), JSON.stringify(letter));
    await ackRequest(this.connection, reply, '+TERM', undefined, this.options.requestTimeoutMs);
    await this.state.delete(stateSeq);
  }

  private async storedMessage(seq: number): Promise<Doc<StoredMessage> | undefined> {
    const stored = await this.jsm.streams.getMessage(this.names.queueStream, { seq });
    if (stored === null) return undefined;
    const value = parseJson<unknown>(stored.data);
    return isStoredMessage(value) ? { value, seq, subject: stored.subject } : undefined;
  }

  async recoverExpiredLeases(request: RecoverRequest): Promise<number> {
    const { queue, now, limit, decide } = request;
    let recoveredInMemory: number;
    try {
      recoveredInMemory = await this.recoverInMemory(request);
    } catch (error) {
      throw backendError('recoverExpiredLeases', error);
    }
    if (recoveredInMemory >= limit) return recoveredInMemory;
    try {
      const expired: Doc<MessageState>[] = [];
      for await (const doc of this.state.scan<MessageState>(this.names.stateFilter(queue))) {
        const lease = doc.value.lease;
        if (lease === undefined || lease.expiresAt > now) continue;
        if (doc.value.dead === undefined) expired.push(doc);
        else await this.dropFinishedDead(doc);
      }
      expired.sort((a, b) => a.value.lease!.expiresAt - b.value.lease!.expiresAt || a.seq - b.seq);
      let count = recoveredInMemory;
      let failure: unknown;
      for (const doc of expired.slice(0, limit - recoveredInMemory)) {
        // One message that cannot be recovered must not hold up the others.
        try {
          if (await this.recoverOne(queue, doc, now, decide)) count++;
        } catch (error) {
          failure ??= error;
        }
      }
      if (failure !== undefined && count === 0) throw backendError('recoverExpiredLeases', failure);
      return count;
    } catch (error) {
      throw backendError('recoverExpiredLeases', error);
    }
  }

  /**
   * A dead mark whose message is gone: the process dead-lettering it died after the term and
   * before deleting the state (finishDead). Nothing redelivers that message, so nobody else
   * would ever remove the mark, and it would count as a lease forever. A mark whose message is
   * still there is left alone: its redelivery finishes the dead-lettering (`accept`).
   */
  private async dropFinishedDead(doc: Doc<MessageState>): Promise<void> {
    if ((await this.storedMessage(doc.value.lease!.seq)) === undefined)
      await this.state.delete(doc.seq);
  }

  /** Expired first leases this process holds in memory (no document: the scan cannot see them). */
  private async recoverInMemory(request: RecoverRequest): Promise<number> {
    const { queue, now, limit, decide } = request;
    const expired = [...this.held.entries()]
      .filter(([, h]) => h.queue === queue && h.stateSeq === 0 && h.state.lease!.expiresAt <= now)
      .sort(([, a], [, b]) => a.state.lease!.expiresAt - b.state.lease!.expiresAt)
      .slice(0, limit);
    let count = 0;
    for (const [token, found] of expired) {
      if (this.held.get(token) !== found) continue;
      const lease = found.state.lease!;
      this.held.delete(token);
      const decision = decide({
        message: toMessage(found.stored, found.state.attempt),
        leasedAt: lease.leasedAt,
        leaseExpiresAt: lease.expiresAt,
      });
      const subject = this.names.stateSubject(queue, found.stored.id);
      const put = async (next: MessageState) => {
        const seq = await this.putState(subject, found, next);
        if (seq === undefined) return false;
        found.state = next;
        found.stateSeq = seq;
        return true;
      };
      // The attempt ended when the lease ran out, not when somebody noticed.
      if (
        await this.apply(found, decision, now, lease.expiresAt, put, () => Promise.resolve(true))
      ) {
        count++;
      }
    }
    return count;
  }

  private async recoverOne(
    queue: string,
    doc: Doc<MessageState>,
    now: number,
    decide: RecoverRequest['decide'],
  ): Promise<boolean> {
    const lease = doc.value.lease!;
    const stored = await this.storedMessage(lease.seq);
    if (stored === undefined) {
      // The message is gone (acked by a process that died before dropping the state).
      await this.state.delete(doc.seq);
      return false;
    }
    const found: Held = { queue, stored: stored.value, state: doc.value, stateSeq: doc.seq };
    const decision = decide({
      message: toMessage(stored.value, doc.value.attempt),
      leasedAt: lease.leasedAt,
      leaseExpiresAt: lease.expiresAt,
    });
    const put = async (next: MessageState) => {
      const seq = await this.state.put(doc.subject, next, found.stateSeq);
      if (seq === undefined) return false;
      found.state = next;
      found.stateSeq = seq;
      return true;
    };
    const remove = () => this.state.delete(found.stateSeq);
    // The attempt ended when the lease ran out, not when somebody noticed.
    const applied = await this.apply(found, decision, now, lease.expiresAt, put, remove);
    if (applied) this.held.delete(lease.token);
    return applied;
  }

  async stats(queue: string, _now: number): Promise<QueueStats> {
    try {
      let ready = 0;
      let pending = 0;
      try {
        const info = await this.jsm.consumers.info(
          this.names.queueStream,
          this.names.consumerName(queue),
        );
        ready = info.num_pending;
        pending = info.num_ack_pending;
      } catch (error) {
        if (apiCode(error) !== CONSUMER_NOT_FOUND) throw error;
        // Nobody fetched from this queue yet: everything in it is waiting.
        const subject = this.names.queueSubject(queue);
        const info = await this.jsm.streams.info(this.names.queueStream, {
          subjects_filter: subject,
        });
        ready = info.state.subjects?.[subject] ?? 0;
      }
      let leased = 0;
      for await (const doc of this.state.scan<MessageState>(this.names.stateFilter(queue))) {
        if (doc.value.lease !== undefined) leased++;
      }
      // First leases held in this process's memory (other processes' ones count as scheduled).
      for (const h of this.held.values()) if (h.queue === queue && h.stateSeq === 0) leased++;
      const deadInfo = await this.jsm.streams.info(this.names.deadStream, {
        subjects_filter: this.names.deadFilter(queue),
      });
      const dead = Object.keys(deadInfo.state.subjects ?? {}).length;
      return { ready, scheduled: Math.max(0, pending - leased), leased, dead };
    } catch (error) {
      throw backendError('stats', error);
    }
  }

  // ---- dead letters --------------------------------------------------------------------------

  /** Dead letters matching `filter`, read from the dead letter stream (O(letters scanned)). */
  private async matching(filter: DeadLetterFilter): Promise<Doc<DeadLetter>[]> {
    const out: Doc<DeadLetter>[] = [];
    if (filter.ids !== undefined) {
      for (const id of new Set(filter.ids)) {
        const doc = await this.deadDoc(id);
        if (doc !== undefined && matchesDeadLetterFilter(doc.value, filter)) out.push(doc);
      }
      return out;
    }
    for await (const doc of this.dead.scan<DeadLetter>(this.names.deadFilter(filter.queue))) {
      if (matchesDeadLetterFilter(doc.value, filter)) out.push(doc);
    }
    return out;
  }

  private deadDoc(id: string): Promise<Doc<DeadLetter> | undefined> {
    return this.dead.next<DeadLetter>(this.names.deadByIdFilter(id), 0);
  }

  async listDeadLetters(filter: DeadLetterFilter, page: DeadLetterPage): Promise<DeadLetter[]> {
    try {
      const after = page.after;
      return (await this.matching(filter))
        .map(d => d.value)
        .filter(letter => after === undefined || compareDeadLetters(letter, after) > 0)
        .sort(compareDeadLetters)
        .slice(0, page.limit);
    } catch (error) {
      throw backendError('listDeadLetters', error);
    }
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    try {
      return (await this.deadDoc(id))?.value;
    } catch (error) {
      throw backendError('getDeadLetter', error);
    }
  }

  async summarizeDeadLetters(filter: DeadLetterFilter): Promise<DeadLetterSummary> {
    try {
      const byQueue: Record<string, number> = {};
      let total = 0;
      for (const { value } of await this.matching(filter)) {
        total++;
        byQueue[value.sourceQueue] = (byQueue[value.sourceQueue] ?? 0) + 1;
      }
      return { total, byQueue };
    } catch (error) {
      throw backendError('summarizeDeadLetters', error);
    }
  }

  async replayDeadLetter(id: string, record: EnqueueRecord): Promise<boolean> {
    try {
      const doc = await this.deadDoc(id);
      if (doc === undefined) return false;
      // Enqueue first, then take the letter (delete by its exact sequence: someone else's
      // replay or purge makes that fail) and take the copy back if we lost. A crash between
      // the two leaves the letter beside its replayed copy; both carry the idempotency key.
      const ack = await this.js.publish(
        this.names.queueSubject(record.queue),
        JSON.stringify(record),
        { msgID: record.id },
      );
      if (await this.dead.delete(doc.seq)) return true;
      if (!ack.duplicate) await this.jsm.streams.deleteMessage(this.names.queueStream, ack.seq);
      return false;
    } catch (error) {
      throw backendError('replayDeadLetter', error);
    }
  }

  async purgeDeadLetters(filter: DeadLetterFilter): Promise<string[]> {
    try {
      const ids: string[] = [];
      for (const doc of await this.matching(filter)) {
        if (await this.dead.delete(doc.seq)) ids.push(doc.value.id);
      }
      return ids;
    } catch (error) {
      throw backendError('purgeDeadLetters', error);
    }
  }

  // ---- audit ---------------------------------------------------------------------------------

  async appendAudit(entry: AuditEntry): Promise<void> {
    try {
      await this.js.publish(this.names.auditSubject, JSON.stringify(entry));
    } catch (error) {
      throw backendError('appendAudit', error);
    }
  }

  /** Newest first: reads the audit stream backwards from its last sequence. */
  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    try {
      const limit = query.limit ?? 100;
      const info = await this.jsm.streams.info(this.names.auditStream);
      const out: AuditEntry[] = [];
      for (let seq = info.state.last_seq; seq >= info.state.first_seq && seq > 0; seq--) {
        if (out.length >= limit) break;
        const doc = await this.audit.bySeq<AuditEntry>(seq);
        if (doc === undefined) continue;
        const e = doc.value;
        if (query.from !== undefined && e.at < query.from) continue;
        if (query.to !== undefined && e.at >= query.to) continue;
        if (query.action !== undefined && e.action !== query.action) continue;
        out.push(e);
      }
      return out;
    } catch (error) {
      throw backendError('listAudit', error);
    }
  }

  // ---- wake-ups and lifecycle ----------------------------------------------------------------

  /**
   * A JetStream publish is a NATS message like any other: a core subscription on the queue's
   * subject sees every enqueue, from any process, without touching the stream.
   */
  subscribe(queue: string, listener: () => void): Promise<Disposable> {
    const sub = this.connection.subscribe(this.names.queueSubject(queue), {
      callback: () => listener(),
    });
    return Promise.resolve({ dispose: () => sub.unsubscribe() });
  }

  /** Drains the connection: in-flight requests finish, then it closes. */
  async close(): Promise<void> {
    this.held.clear();
    if (this.connection.isClosed()) return;
    await this.connection.drain();
  }
}

/** The ack command, encoded once (a string would be encoded on every publish). */
const ACK = new TextEncoder().encode('+ACK');

/** A fresh lease on the delivery whose ack subject is `reply`, from `now` until `expiresAt`. */
function newLease(reply: string, now: number, expiresAt: number): LeaseState {
  return {
    token: globalThis.crypto.randomUUID(),
    reply,
    seq: streamSeqOf(reply),
    leasedAt: now,
    expiresAt,
  };
}

/** The port's lease token: the queue rides along so any process can find the message's state. */
function tokenOf(queue: string, token: string): string {
  return `${token}:${queue}`;
}

function parseToken(text: string): { token: string; queue: string } | undefined {
  const i = text.indexOf(':');
  if (i <= 0) return undefined;
  return { token: text.slice(0, i), queue: text.slice(i + 1) };
}

/**
 * Connects to NATS, creates (or updates) the backend's streams and returns it. `close()` drains
 * the connection.
 */
export async function natsQueueBackend(
  options: NatsQueueBackendOptions,
): Promise<NatsQueueBackend> {
  const resolved = resolveOptions(options);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: resolved.url.split(',').map(s => s.trim()),
      name: resolved.name,
      timeout: resolved.requestTimeoutMs,
      // Every driver error is wrapped as BACKEND_ERROR naming the operation; the client's own
      // async stack capture would cost an Error per request on the hot path.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw backendError(`connect to ${resolved.url}`, error);
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: resolved.requestTimeoutMs });
    const js = jetstream(nc, { timeout: resolved.requestTimeoutMs });
    const backend = new NatsQueueBackend(nc, js, jsm, resolved);
    await backend.setup();
    return backend;
  } catch (error) {
    await nc.close();
    throw backendError('setup (is JetStream enabled on the server?)', error);
  }
}
