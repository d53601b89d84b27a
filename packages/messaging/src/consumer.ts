/**
 * The consumer: leases messages from a backend, runs the handler under a timeout with an
 * AbortSignal, keeps leases alive with heartbeats, and turns each outcome into a settlement by the
 * one policy every backend shares (attempt limit, backoff, dead-lettering).
 *
 * Flow control: at most `prefetch` messages are leased by this consumer at once (running plus
 * waiting in its buffer) and at most `concurrency` handlers run. The consumer fetches again as
 * soon as a slot frees, when the backend signals new messages (`subscribe`), when a scheduled
 * message falls due, or after `pollIntervalMs` at the latest.
 */
import { runWithContext, type AmbientContext } from '@bulwark/core/ambient';
import { AckBatcher } from './ack-batcher.js';
import {
  Emitter,
  exponentialBackoff,
  isRetryable,
  retryAfterMsOf,
  systemClock,
  systemRandom,
  timeout,
  InvalidOptionsError,
  Scope,
  type Backoff,
  type Clock,
  type Disposable,
  type ExecutionContext,
  type Random,
  type Subscribe,
  type TimeoutPolicy,
  type TimerHandle,
} from '@bulwark/core';
import type {
  Delivery,
  ExpiredLease,
  QueueBackend,
  RecoveryDecision,
  Settlement,
} from './backend.js';
import { MessagingError } from './errors.js';
import type { Message } from './message.js';
import { checkBackend } from './producer.js';
import { ack, errorRecord, isOutcome, type AttemptError, type Outcome } from './outcome.js';
import {
  checkClock,
  describeValue,
  rejectUnknownKeys,
  requireInteger,
  requireNumber,
  requireObject,
  requireText,
} from './validate.js';

export interface HandlerContext {
  /**
   * Aborts when the handler's time is up (`TimeoutError`), when the consumer lost the message's
   * lease (`MessagingError` LEASE_LOST), or when the consumer is stopped with `abort: true`.
   * Pass it to every I/O call the handler makes.
   */
  readonly signal: AbortSignal;
}

/** Returns an outcome (see outcome.ts), or nothing to ack. */
export type Handler<P = unknown> = (
  message: Message<P>,
  context: HandlerContext,
) => Outcome | void | Promise<Outcome | void>;

export interface ConsumerOptions<P = unknown> {
  backend: QueueBackend;
  queue: string;
  handler: Handler<P>;
  /**
   * Deliveries allowed per message, the first included; after the last one fails the message is
   * dead-lettered. Required (an integer >= 1): there is no safe default for "how often may this
   * be tried".
   */
  maxAttempts: number;
  /**
   * Delay before retry n (n = the attempt that just failed) when the handler did not give one.
   * Default `exponentialBackoff({ baseMs: 1_000, maxMs: 60_000 })` (full jitter). Backoffs get
   * `previousDelayMs: 0`: the delay is not stored with the message.
   */
  backoff?: Backoff;
  /** The handler's time limit per attempt, ms; its signal aborts then. Default 30_000. */
  handlerTimeoutMs?: number;
  /** Handlers running at once. Default 1. */
  concurrency?: number;
  /** Messages leased at once (running plus buffered); >= concurrency. Default `concurrency`. */
  prefetch?: number;
  /**
   * How long a lease lasts without a heartbeat, ms. A crashed consumer's messages come back
   * (as a spent attempt) after this. Default 15_000.
   */
  leaseMs?: number;
  /** How often held leases are extended, ms; < leaseMs. Default `leaseMs / 3`. */
  heartbeatMs?: number;
  /**
   * Longest wait between fetches when the queue looks empty, ms; expired leases are also looked
   * for at most this often. Default 1_000.
   */
  pollIntervalMs?: number;
  /** Source of jitter for the backoff. Default `Math.random`. */
  random?: Random;
  /** Default: the system clock. */
  clock?: Clock;
  /** Start fetching at once. Default true; with false, call `start()`. */
  autoStart?: boolean;
}

export type ConsumerEvent =
  | { readonly type: 'message.acked'; readonly message: Message }
  | {
      readonly type: 'message.retried';
      readonly message: Message;
      readonly delayMs: number;
      readonly error: AttemptError;
    }
  | { readonly type: 'message.deferred'; readonly message: Message; readonly delayMs: number }
  | {
      readonly type: 'message.dead';
      readonly message: Message;
      readonly reason: 'failed' | 'max-attempts';
      readonly error: AttemptError;
    }
  /** The consumer could not settle or extend a lease: the message is no longer ours. */
  | { readonly type: 'lease.lost'; readonly message: Message }
  /** Expired leases (of crashed or stalled consumers) this consumer put back or dead-lettered. */
  | { readonly type: 'lease.recovered'; readonly count: number }
  | { readonly type: 'backend.error'; readonly operation: string; readonly error: unknown };

export interface StopOptions {
  /**
   * Abort the running handlers' signals instead of letting them finish. Their messages are
   * settled by whatever the handlers then return or throw. Default false.
   */
  abort?: boolean;
}

export interface Consumer {
  readonly queue: string;
  /** Starts fetching (only needed with `autoStart: false`). */
  start(): void;
  /**
   * Stops fetching, hands buffered messages back (no attempt spent), waits for running handlers
   * and their settlements, then stops heartbeats.
   */
  stop(options?: StopOptions): Promise<void>;
  /** Handlers running now. */
  readonly running: number;
  /** Messages this consumer holds a lease on (running plus buffered). */
  readonly held: number;
  readonly onEvent: Subscribe<ConsumerEvent>;
  /**
   * Resolves when no backend call of this consumer is in flight (handlers may still be waiting on
   * their own I/O or timers). For tests that drive a TestClock: advance, then await this.
   */
  whenIdle(): Promise<void>;
}

interface Held {
  readonly delivery: Delivery;
  /** Aborts the handler (lease lost, consumer stopping): a core Scope, not an AbortController. */
  readonly cancel: Scope;
  lost: boolean;
  started: boolean;
}

/**
 * What a handler gets. Its `signal` is made when first read: a handler that never reads it (most
 * handlers without I/O of their own) costs no AbortController, which core makes per execution
 * on `context.signal`.
 */
class LazyHandlerContext implements HandlerContext {
  readonly #execution: ExecutionContext;
  constructor(execution: ExecutionContext) {
    this.#execution = execution;
  }
  get signal(): AbortSignal {
    return this.#execution.signal;
  }
}

/** No deadline, no request: the context a consumer's own work runs in. */
const DETACHED: AmbientContext = { deadline: undefined, requestId: undefined };

/**
 * Longest the fetch loop runs without giving the event loop a turn, ms. An embedded backend
 * (PGlite) and a handler without I/O resolve in microtasks only: fetch → handle → settle →
 * fetch then never leaves the microtask queue while work remains, and every timer — lease
 * heartbeats, handler timeouts, the rest of the process — starves until the queue is empty.
 */
const YIELD_EVERY_MS = 10;

const KNOWN = [
  'backend',
  'queue',
  'handler',
  'maxAttempts',
  'backoff',
  'handlerTimeoutMs',
  'concurrency',
  'prefetch',
  'leaseMs',
  'heartbeatMs',
  'pollIntervalMs',
  'random',
  'clock',
  'autoStart',
];

export function consume<P = unknown>(options: ConsumerOptions<P>): Consumer {
  return new QueueConsumer(options as ConsumerOptions);
}

class QueueConsumer implements Consumer {
  readonly queue: string;
  private readonly backend: QueueBackend;
  private readonly handler: Handler;
  private readonly maxAttempts: number;
  private readonly backoff: Backoff;
  private readonly timeoutPolicy: TimeoutPolicy;
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollIntervalMs: number;
  private readonly random: Random;
  private readonly clock: Clock;
  private readonly emitter = new Emitter<ConsumerEvent>();
  readonly onEvent: Subscribe<ConsumerEvent> = this.emitter.subscribe;

  private readonly heldLeases = new Map<string, Held>();
  private readonly buffer: Held[] = [];
  private active = 0;
  private started = false;
  private stopping = false;
  private fetching = false;
  private fetchAgain = false;
  /** When the fetch loop last gave the event loop a turn (clock.now(), ms). */
  private lastYieldAt: number;
  private waitTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private subscription: Disposable | undefined;
  private lastRecoveryAt = -Infinity;
  private busy = 0;
  /** Batches acks when the backend can apply several in one call. */
  private readonly acks: AckBatcher | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly runs = new Set<Promise<void>>();

  constructor(options: ConsumerOptions) {
    const where = 'consume';
    requireObject(where, options);
    rejectUnknownKeys(where, options, KNOWN);
    checkBackend(where, options.backend);
    this.backend = options.backend;
    const backend = options.backend;
    this.acks =
      typeof backend.ackMany === 'function'
        ? new AckBatcher((leases, now) =>
            (backend.ackMany as NonNullable<QueueBackend['ackMany']>).call(backend, leases, now),
          )
        : undefined;
    this.queue = requireText(where, 'queue', options.queue);
    if (typeof options.handler !== 'function') {
      throw new InvalidOptionsError(
        `${where}: handler must be a function (message, { signal }) => outcome, got ${describeValue(options.handler)}`,
      );
    }
    this.handler = options.handler;
    if (options.maxAttempts === undefined) {
      throw new InvalidOptionsError(
        `${where}: maxAttempts is required (deliveries per message, the first included), for example maxAttempts: 5`,
      );
    }
    this.maxAttempts = requireInteger(where, 'maxAttempts', options.maxAttempts, 1);
    if (options.backoff !== undefined && typeof options.backoff?.next !== 'function') {
      throw new InvalidOptionsError(
        `${where}: backoff must be a Backoff from @bulwark/core (exponentialBackoff(), constantBackoff({ delayMs })), got ${describeValue(options.backoff)}`,
      );
    }
    this.backoff = options.backoff ?? exponentialBackoff({ baseMs: 1_000, maxMs: 60_000 });
    this.clock = checkClock(where, options.clock) ?? systemClock;
    this.lastYieldAt = this.clock.now();
    const handlerTimeoutMs = requireNumber(
      where,
      'handlerTimeoutMs',
      options.handlerTimeoutMs ?? 30_000,
      1,
    );
    // resolutionMs 0: each handler is timed exactly; one clock read per message is nothing here.
    this.timeoutPolicy = timeout({
      timeoutMs: handlerTimeoutMs,
      resolutionMs: 0,
      clock: this.clock,
    });
    this.concurrency = requireInteger(where, 'concurrency', options.concurrency ?? 1, 1);
    this.prefetch = requireInteger(where, 'prefetch', options.prefetch ?? this.concurrency, 1);
    if (this.prefetch < this.concurrency) {
      throw new InvalidOptionsError(
        `${where}: prefetch (${this.prefetch}) must be >= concurrency (${this.concurrency}); raise prefetch or omit it`,
      );
    }
    this.leaseMs = requireNumber(where, 'leaseMs', options.leaseMs ?? 15_000, 1);
    this.heartbeatMs = requireNumber(
      where,
      'heartbeatMs',
      options.heartbeatMs ?? this.leaseMs / 3,
      1,
    );
    if (this.heartbeatMs >= this.leaseMs) {
      throw new InvalidOptionsError(
        `${where}: heartbeatMs (${this.heartbeatMs}) must be < leaseMs (${this.leaseMs}), or leases expire between heartbeats; a third of leaseMs is a good value`,
      );
    }
    this.pollIntervalMs = requireNumber(
      where,
      'pollIntervalMs',
      options.pollIntervalMs ?? 1_000,
      1,
    );
    if (
      options.random !== undefined &&
      (options.random === null || typeof options.random.next !== 'function')
    ) {
      throw new InvalidOptionsError(
        `${where}: random must implement Random (next()), got ${describeValue(options.random)}`,
      );
    }
    this.random = options.random ?? systemRandom;
    if (options.autoStart !== false) this.start();
  }

  get running(): number {
    return this.active;
  }

  get held(): number {
    return this.heldLeases.size;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.backend.subscribe !== undefined) {
      void this.track(
        this.backend
          .subscribe(this.queue, () => this.wake())
          .then(subscription => {
            if (this.stopping) subscription.dispose();
            else this.subscription = subscription;
          }),
        'subscribe',
      );
    }
    void this.pump();
  }

  async stop(options: StopOptions = {}): Promise<void> {
    if (this.stopping) {
      await this.drained();
      return;
    }
    this.stopping = true;
    this.waitTimer?.clear();
    this.waitTimer = undefined;
    this.subscription?.dispose();
    this.subscription = undefined;
    const buffered = this.buffer.splice(0);
    for (const entry of buffered) this.heldLeases.delete(entry.delivery.lease.id);
    await this.handBack(buffered.map(entry => entry.delivery));
    if (options.abort === true) {
      for (const entry of this.heldLeases.values()) {
        entry.cancel.abort(new MessagingError('LEASE_LOST', 'the consumer is stopping'));
      }
    }
    await this.drained();
  }

  async whenIdle(): Promise<void> {
    for (;;) {
      await macrotask();
      if (this.busy === 0) {
        await macrotask();
        if (this.busy === 0) return;
      } else {
        await new Promise<void>(resolve => this.idleWaiters.push(resolve));
      }
    }
  }

  // ---- fetching ----------------------------------------------------------------------------

  private wake(): void {
    if (!this.started || this.stopping) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    // Wake-ups arrive in the enqueuer's async context (a request's, say); the fetch loop and the
    // timers it arms must not keep that context (its deadline, its memory) alive.
    runWithContext(DETACHED, () => void this.pump());
  }

  private async pump(): Promise<void> {
    if (this.fetching || this.stopping) return;
    this.fetching = true;
    this.busy++;
    this.waitTimer?.clear();
    this.waitTimer = undefined;
    let waitMs = this.pollIntervalMs;
    try {
      for (;;) {
        this.fetchAgain = false;
        if (this.clock.now() - this.lastYieldAt >= YIELD_EVERY_MS) {
          await macrotask();
          this.lastYieldAt = this.clock.now();
        }
        await this.recoverIfDue();
        const room = this.prefetch - this.heldLeases.size;
        if (room <= 0 || this.stopping) {
          // Full: the next settlement pumps again.
          waitMs = -1;
          break;
        }
        const now = this.clock.wallNow();
        const result = await this.backend.fetch({
          queue: this.queue,
          limit: room,
          leaseMs: this.leaseMs,
          now,
        });
        for (const delivery of result.deliveries) this.accept(delivery);
        if (result.deliveries.length === room && !this.stopping) continue;
        if (this.fetchAgain) continue;
        if (result.nextAvailableAt !== undefined) {
          waitMs = Math.min(waitMs, Math.max(0, result.nextAvailableAt - this.clock.wallNow()));
        }
        break;
      }
    } catch (error) {
      this.emit({ type: 'backend.error', operation: 'fetch', error });
      waitMs = this.pollIntervalMs;
    } finally {
      this.fetching = false;
      this.done();
    }
    if (this.stopping) return;
    if (waitMs >= 0) {
      this.waitTimer = this.clock.setTimer(() => {
        this.waitTimer = undefined;
        void this.pump();
      }, waitMs);
    }
  }

  private async recoverIfDue(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastRecoveryAt < this.pollIntervalMs) return;
    this.lastRecoveryAt = now;
    try {
      const count = await this.backend.recoverExpiredLeases({
        queue: this.queue,
        now: this.clock.wallNow(),
        limit: 100,
        decide: expired => this.decideExpired(expired),
      });
      if (count > 0) this.emit({ type: 'lease.recovered', count });
    } catch (error) {
      this.emit({ type: 'backend.error', operation: 'recoverExpiredLeases', error });
    }
  }

  private decideExpired(expired: ExpiredLease): RecoveryDecision {
    const error: AttemptError = {
      code: 'LEASE_EXPIRED',
      message: `the consumer stopped heartbeating; the lease ran out after attempt ${expired.message.attempt}`,
    };
    return this.retryOrDie(expired.message, error, undefined);
  }

  /** Gives messages that never started back without spending their attempt. */
  private handBack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return Promise.resolve();
    const now = this.clock.wallNow();
    return this.track(
      Promise.all(
        deliveries.map(d => this.backend.settle(d.lease, { kind: 'defer', delayMs: 0 }, now)),
      ).then(() => undefined),
      'settle',
    );
  }

  private accept(delivery: Delivery): void {
    if (this.stopping) {
      void this.handBack([delivery]);
      return;
    }
    const entry: Held = {
      delivery,
      cancel: new Scope(),
      lost: false,
      started: false,
    };
    this.heldLeases.set(delivery.lease.id, entry);
    this.buffer.push(entry);
    this.armHeartbeat();
    this.startBuffered();
  }

  private startBuffered(): void {
    while (this.active < this.concurrency && this.buffer.length > 0 && !this.stopping) {
      const entry = this.buffer.shift();
      if (entry === undefined) break;
      this.active++;
      entry.started = true;
      const run = this.run(entry);
      this.runs.add(run);
      void run.finally(() => this.runs.delete(run));
    }
  }

  // ---- handling ----------------------------------------------------------------------------

  private async run(entry: Held): Promise<void> {
    const message = entry.delivery.message;
    let outcome: Outcome;
    let thrown: unknown;
    try {
      const result = await this.timeoutPolicy.execute(
        // The handler's ambient deadline is its own timeout, never the context of whoever woke
        // the consumer: an enqueue inside an HTTP request wakes local consumers synchronously,
        // and a handler that inherited that request's deadline (read by @bulwark/http's client)
        // would be cancelled when the response was sent.
        context =>
          runWithContext({ deadline: context.deadline, requestId: undefined }, () =>
            this.handler(message, new LazyHandlerContext(context)),
          ),
        { signal: entry.cancel },
      );
      if (result === undefined) outcome = ack();
      else if (isOutcome(result)) outcome = result;
      else {
        outcome = {
          kind: 'fail',
          error: {
            code: 'INVALID_OUTCOME',
            message: `the handler returned ${describeValue(result)}; return ack(), retry(), fail(reason), defer({ delayMs }) or nothing`,
          },
        };
      }
    } catch (error) {
      thrown = error;
      const record = errorRecord(error);
      outcome = isRetryable(error, true)
        ? { kind: 'retry', error: record }
        : { kind: 'fail', error: record };
    }
    this.active--;
    if (entry.lost) {
      this.finish(entry);
      return;
    }
    const settlement = this.settlementFor(message, outcome, thrown);
    this.busy++;
    try {
      const now = this.clock.wallNow();
      const ok =
        settlement.kind === 'ack' && this.acks !== undefined
          ? await this.acks.ack(entry.delivery.lease, now)
          : await this.backend.settle(entry.delivery.lease, settlement, now);
      if (ok) this.emitSettled(message, settlement);
      else this.emit({ type: 'lease.lost', message });
    } catch (error) {
      // The lease stays with us until it expires; recovery then counts the attempt.
      this.emit({ type: 'backend.error', operation: 'settle', error });
    } finally {
      this.finish(entry);
      this.done();
    }
  }

  private finish(entry: Held): void {
    this.heldLeases.delete(entry.delivery.lease.id);
    this.startBuffered();
    if (!this.stopping) this.wake();
    this.checkDrained();
  }

  private settlementFor(message: Message, outcome: Outcome, thrown: unknown): Settlement {
    switch (outcome.kind) {
      case 'ack':
        return outcome;
      case 'defer':
        return { kind: 'defer', delayMs: outcome.delayMs };
      case 'fail':
        return { kind: 'dead', reason: 'failed', error: outcome.error };
      case 'retry': {
        const error = outcome.error ?? { code: 'RETRY_REQUESTED', message: 'retry' };
        return this.retryOrDie(message, error, outcome.delayMs, thrown);
      }
    }
  }

  private retryOrDie(
    message: Message,
    error: AttemptError,
    delayMs: number | undefined,
    thrown?: unknown,
  ): RecoveryDecision {
    if (message.attempt >= this.maxAttempts) return { kind: 'dead', reason: 'max-attempts', error };
    let delay = delayMs;
    if (delay === undefined) {
      delay = this.backoff.next({
        attempt: message.attempt,
        previousDelayMs: 0,
        error: thrown,
        random: this.random,
      });
      // The failure's own hint (Retry-After) is a floor: retrying sooner is known to be useless.
      const hint = retryAfterMsOf(thrown);
      if (hint !== undefined && hint > delay) delay = hint;
    }
    return { kind: 'retry', delayMs: delay, error };
  }

  private emitSettled(message: Message, settlement: Settlement): void {
    if (this.emitter.size === 0) return;
    switch (settlement.kind) {
      case 'ack':
        this.emit({ type: 'message.acked', message });
        return;
      case 'retry':
        this.emit({
          type: 'message.retried',
          message,
          delayMs: settlement.delayMs,
          error: settlement.error,
        });
        return;
      case 'defer':
        this.emit({ type: 'message.deferred', message, delayMs: settlement.delayMs });
        return;
      case 'dead':
        this.emit({
          type: 'message.dead',
          message,
          reason: settlement.reason,
          error: settlement.error,
        });
        return;
    }
  }

  // ---- heartbeats --------------------------------------------------------------------------

  private armHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) return;
    this.heartbeatTimer = this.clock.setTimer(() => {
      this.heartbeatTimer = undefined;
      void this.beat();
    }, this.heartbeatMs);
  }

  private async beat(): Promise<void> {
    const entries = [...this.heldLeases.values()];
    if (entries.length === 0) return;
    this.busy++;
    try {
      const held = new Set(
        await this.backend.extendLeases(
          entries.map(e => e.delivery.lease),
          this.leaseMs,
          this.clock.wallNow(),
        ),
      );
      for (const entry of entries) {
        if (held.has(entry.delivery.lease.id) || entry.lost) continue;
        if (!this.heldLeases.has(entry.delivery.lease.id)) continue; // settled meanwhile
        entry.lost = true;
        entry.cancel.abort(
          new MessagingError('LEASE_LOST', `lost the lease on message ${entry.delivery.lease.id}`),
        );
        this.emit({ type: 'lease.lost', message: entry.delivery.message });
        if (!entry.started) {
          const i = this.buffer.indexOf(entry);
          if (i >= 0) this.buffer.splice(i, 1);
          this.finish(entry);
        }
      }
    } catch (error) {
      this.emit({ type: 'backend.error', operation: 'extendLeases', error });
    } finally {
      this.done();
    }
    if (this.heldLeases.size > 0) this.armHeartbeat();
  }

  // ---- bookkeeping -------------------------------------------------------------------------

  private track(promise: Promise<void>, operation: string): Promise<void> {
    this.busy++;
    return promise
      .catch((error: unknown) => this.emit({ type: 'backend.error', operation, error }))
      .finally(() => this.done());
  }

  private done(): void {
    this.busy--;
    if (this.busy === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.checkDrained();
  }

  private drainWaiters: (() => void)[] = [];

  private drained(): Promise<void> {
    return new Promise(resolve => {
      this.drainWaiters.push(resolve);
      this.checkDrained();
    });
  }

  private checkDrained(): void {
    if (!this.stopping || this.heldLeases.size > 0 || this.busy > 0) return;
    this.heartbeatTimer?.clear();
    this.heartbeatTimer = undefined;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private emit(event: ConsumerEvent): void {
    if (this.emitter.size > 0) this.emitter.emit(event);
  }
}

function macrotask(): Promise<void> {
  return new Promise(resolve => {
    if (typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}
